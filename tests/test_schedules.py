"""τ schedules, the score -> probability rule, and their errors."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from pada_lite.schedules import (
    ScheduleError,
    ScoreError,
    distributions_after_epoch,
    make_schedule,
    mix_with_uniform,
    tau_for_epoch,
)


def values(spec, num_epochs):
    schedule = make_schedule(spec)
    return [schedule(e, num_epochs) for e in range(num_epochs)]


def test_constant_linear_cosine_step_values():
    assert values(0.3, 3) == [0.3, 0.3, 0.3]
    assert values({"name": "constant", "value": 1}, 2) == [1.0, 1.0]
    assert values("linear", 4) == [0.0, 0.25, 0.5, 0.75]                      # the reference: e / E
    assert values({"name": "linear", "start": 0.2, "end": 0.6}, 2) == pytest.approx([0.2, 0.4])
    assert values("cosine", 4) == pytest.approx([0.0, (1 - math.cos(math.pi / 4)) / 2, 0.5,
                                                 (1 - math.cos(3 * math.pi / 4)) / 2])
    assert values("step", 4) == [0.0, 0.0, 1.0, 1.0]                          # switches at e/E >= 0.5
    assert values({"name": "step", "milestones": [0.25, 0.75], "values": [0.1, 0.5, 0.9]}, 4) == [0.1, 0.5, 0.5, 0.9]
    assert values(lambda e, n: e / (2 * n), 2) == [0.0, 0.25]


@pytest.mark.parametrize("spec, words", [
    (1.5, ["1.5", "[0, 1]"]), (-0.1, ["-0.1", "[0, 1]"]), (float("nan"), ["nan", "[0, 1]"]),
    (float("inf"), ["inf"]), ("bogus", ["'bogus'", "linear"]), (True, ["True"]), ([0.5], ["[0.5]"]),
    ("constant", ["needs a value"]), ({"name": "linear", "slope": 2}, ["slope", "start"]),
    ({"name": "step", "values": [0.0, 2.0]}, ["2.0", "[0, 1]"]), ({"name": "step", "values": [0.0]}, ["1 milestones"]),
    ({"name": "step", "milestones": [0.8, 0.2], "values": [0, 0.5, 1]}, ["increasing"]),
])
def test_bad_specs_name_the_value_and_the_fix(spec, words):
    with pytest.raises(ScheduleError) as err:
        make_schedule(spec)
    for word in words:
        assert word in str(err.value)


def test_a_callable_out_of_range_fails_when_called():
    schedule = make_schedule(lambda e, n: 2.0 * e)
    assert schedule(0, 3) == 0.0
    with pytest.raises(ScheduleError, match=r"epoch 1 of 3: tau=2\.0 is outside"):
        schedule(1, 3)
    with pytest.raises(ScheduleError, match="num_epochs"):
        schedule(0, 0)


def test_mix_with_uniform_by_hand():
    p = mix_with_uniform([1.0, 3.0, 0.0, 0.0], 0.5)
    assert p.tolist() == [0.5 * 0.25 + 0.125, 0.5 * 0.75 + 0.125, 0.125, 0.125]
    rows = mix_with_uniform(torch.tensor([[2.0, 2.0], [0.0, 1.0]]), 1.0)      # row-wise
    assert rows.tolist() == [[0.5, 0.5], [0.0, 1.0]]
    assert mix_with_uniform([5.0, 1.0], 0.0).tolist() == [0.5, 0.5]


def test_all_zero_scores_fall_back_to_uniform_with_a_warning():
    with pytest.warns(RuntimeWarning, match="zero"):
        p = mix_with_uniform(torch.tensor([[0.0, 0.0], [1.0, 3.0]]), 0.5)
    assert p.tolist() == [[0.5, 0.5], [0.25 + 0.125, 0.25 + 0.375]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                         # tau = 0: uniform anyway, no warning
        assert mix_with_uniform([0.0, 0.0], 0.0).tolist() == [0.5, 0.5]


@pytest.mark.parametrize("bad, word", [(float("nan"), "nan"), (float("inf"), "inf"), (-1.0, ">= 0")])
def test_bad_scores_are_errors_that_name_the_entry(bad, word):
    with pytest.raises(ScoreError, match=f"entry 1 .*{word}"):
        mix_with_uniform([1.0, bad, 2.0], 0.5)
    with pytest.raises(ScoreError, match=f"op 'conv' .*{word}"):
        mix_with_uniform([1.0, bad], 0.5, describe=lambda index: "op 'conv'")
    with pytest.raises(ScoreError, match="no entries"):
        mix_with_uniform([], 0.5)


def test_distributions_after_epoch_use_that_epochs_tau():
    p, q = distributions_after_epoch([0.0, 1.0], [3.0, 1.0, 0.0, 0.0], "linear", epoch=1, num_epochs=4)
    assert p.tolist() == [0.75 * 0.5, 0.25 + 0.75 * 0.5]                        # tau = 1/4
    assert q.tolist() == [0.25 * 0.75 + 0.75 * 0.25, 0.25 * 0.25 + 0.75 * 0.25, 0.1875, 0.1875]
    assert distributions_after_epoch(None, [1.0], 0.5, 0, 1) == (None, torch.tensor([1.0], dtype=torch.float64))


def test_epoch_e_samples_with_the_tau_of_epoch_e_minus_1():
    linear = make_schedule("linear")
    assert [tau_for_epoch(linear, e, 4) for e in range(4)] == [0.0, 0.0, 0.25, 0.5]
