"""The τ-schedule figure (plotly slider) and control (ipywidgets) draw what distributions_after_epoch gives."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pada_lite.config import ConfigError
from pada_lite.schedules import ScheduleError, distributions_after_epoch, make_schedule, mix_with_uniform
from pada_lite.widgets import (
    DEFAULT_SCHEDULES,
    DYNAMIC,
    TAU_VALUES,
    TRACES_PER_SCHEDULE,
    schedule_snapshot,
    tau_schedule_figure,
    tau_schedule_widget,
    tau_value_figure,
    tau_value_widget,
)

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EPOCHS, SAMPLES = 4, 40


@pytest.fixture
def scores():
    """Recorded-looking scores: parameter-free ops score 0, some samples were not drawn (score 0)."""
    gen = torch.Generator().manual_seed(0)
    ops = [torch.tensor([0.0, 0.0, 0.2 + e, 0.6 + 2 * e, 0.0], dtype=torch.float64) for e in range(EPOCHS)]
    samples = []
    for _ in range(EPOCHS):
        s = torch.rand(SAMPLES, generator=gen, dtype=torch.float64)
        s[torch.rand(SAMPLES, generator=gen) < 0.3] = 0.0
        samples.append(s)
    return ops, samples


def step_data(fig, step: int, trace: int):
    """(x, y) that slider step ``step`` gives trace ``trace``."""
    args = fig.layout.sliders[0].steps[step].args
    where = list(args[2]).index(trace)
    return args[0]["x"][where], args[0]["y"][where]


def test_slider_steps_carry_the_distributions_of_the_schedule_code(scores):
    ops, samples = scores
    fig = tau_schedule_figure(ops, samples, ops=OPS)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == [str(k) for k in range(1, EPOCHS + 1)]
    for s, spec in enumerate(DEFAULT_SCHEDULES.values()):
        for e in range(EPOCHS):
            p, q = distributions_after_epoch(ops[e], samples[e], spec, e, EPOCHS)
            tau_x, tau_y = step_data(fig, e, s * TRACES_PER_SCHEDULE + 1)
            bars_x, bars_y = step_data(fig, e, s * TRACES_PER_SCHEDULE + 2)
            _, curve_y = step_data(fig, e, s * TRACES_PER_SCHEDULE + 3)
            assert tau_x == [e + 1] and tau_y[0] == pytest.approx(make_schedule(spec)(e, EPOCHS), abs=1e-6)
            assert list(bars_x) == list(OPS)
            np.testing.assert_allclose(bars_y, p.numpy(), atol=1e-6)
            # N <= CURVE_POINTS: the curve holds every sample's N·q, largest first
            np.testing.assert_allclose(curve_y, np.sort(SAMPLES * q.numpy())[::-1], atol=1e-5)


def test_the_figure_shows_by_hand_values(scores):
    ops, samples = scores
    fig = tau_schedule_figure(ops, samples, {"half": 0.5, "linear": "linear"}, ops=OPS)
    # constant 0.5 after epoch 1, scores [0, 0, 0.2, 0.6, 0]: p = 0.5 * s / 0.8 + 0.5 / 5
    np.testing.assert_allclose(step_data(fig, 0, 2)[1], [0.1, 0.1, 0.225, 0.475, 0.1], atol=1e-6)
    # linear: epoch 1 mixes with τ(0) = 0 (uniform), the last with τ = (E - 1) / E
    np.testing.assert_allclose(step_data(fig, 0, TRACES_PER_SCHEDULE + 2)[1], [0.2] * 5, atol=1e-9)
    np.testing.assert_allclose(step_data(fig, 0, TRACES_PER_SCHEDULE + 3)[1], [1.0] * SAMPLES, atol=1e-9)
    assert step_data(fig, EPOCHS - 1, TRACES_PER_SCHEDULE + 1)[1] == [pytest.approx((EPOCHS - 1) / EPOCHS)]


def test_tau_curves_follow_make_schedule_and_the_figure_starts_at_step_one(scores):
    ops, samples = scores
    schedules = {"linear": "linear", "cosine": "cosine", "step": {"name": "step", "milestones": [0.5]}}
    fig = tau_schedule_figure(ops, samples, schedules, ops=OPS)
    assert len(fig.data) == TRACES_PER_SCHEDULE * len(schedules)
    for s, spec in enumerate(schedules.values()):
        curve = fig.data[s * TRACES_PER_SCHEDULE]
        assert list(curve.x) == list(range(1, EPOCHS + 1))
        assert list(curve.y) == pytest.approx([make_schedule(spec)(e, EPOCHS) for e in range(EPOCHS)])
        for t in DYNAMIC:  # what the page draws before the slider moves = the first step
            x, y = step_data(fig, 0, s * TRACES_PER_SCHEDULE + t)
            assert list(fig.data[s * TRACES_PER_SCHEDULE + t].x) == list(x)
            assert list(fig.data[s * TRACES_PER_SCHEDULE + t].y) == pytest.approx(list(y))
    assert "epoch 1 of 4" in fig.layout.title.text and "epoch 4 of 4" in fig.layout.sliders[0].steps[-1].args[1][
        "title.text"]


def test_steps_differ_so_moving_the_slider_changes_the_data(scores):
    ops, samples = scores
    fig = tau_schedule_figure(ops, samples, ops=OPS)
    first, last = fig.layout.sliders[0].steps[0].args[0], fig.layout.sliders[0].steps[-1].args[0]
    assert first["y"] != last["y"]


def test_single_epoch_figure_has_no_slider_and_fixed_scales(scores):
    ops, samples = scores
    fig = tau_schedule_figure(ops, samples, {"linear": "linear"}, ops=OPS, epoch=3)
    assert not fig.layout.sliders and list(fig.data[1].x) == [3]
    late = tau_schedule_figure(ops, samples, {"linear": "linear"}, ops=OPS, epoch=1)
    assert fig.layout.yaxis2.range == late.layout.yaxis2.range  # the same scale at every epoch


def test_per_edge_scores_are_averaged_over_edges(scores):
    ops, samples = scores
    per_edge = [torch.stack([s, s.flip(0)]) for s in ops]  # [2 edges, K]
    snap = schedule_snapshot(per_edge, samples, 0.5, 2)
    p, _ = distributions_after_epoch(per_edge[1], samples[1], 0.5, 1, EPOCHS)
    np.testing.assert_allclose(snap["p"], p.mean(0).numpy())
    assert snap["tau"] == 0.5 and snap["p"].sum() == pytest.approx(1.0)


def test_long_curves_are_subsampled_to_quantiles():
    ops = [torch.tensor([1.0, 2.0])] * 2
    samples = [torch.arange(1000, dtype=torch.float64)] * 2
    snap = schedule_snapshot(ops, samples, 1.0, 2, points=11)
    assert len(snap["nq"]) == 11 and snap["share"][-1] == 1.0
    assert snap["nq"][0] == pytest.approx(1000 * 999 / samples[0].sum().item())  # largest first


@pytest.mark.parametrize("bad", [1.5, "bogus", {"name": "linear", "slope": 1}])
def test_bad_schedules_raise_the_schedule_error(scores, bad):
    ops, samples = scores
    with pytest.raises(ScheduleError) as err:
        tau_schedule_figure(ops, samples, {"bad": bad})
    assert isinstance(err.value, ConfigError)
    with pytest.raises(ScheduleError):
        tau_schedule_widget(ops, samples, {"bad": bad})


def test_bad_inputs_name_the_problem(scores):
    ops, samples = scores
    with pytest.raises(ValueError, match="one op-score and one sample-score"):
        tau_schedule_figure(ops, samples[:-1])
    with pytest.raises(ValueError, match="epoch 9 was not recorded"):
        tau_schedule_figure(ops, samples, epoch=9)
    with pytest.raises(ValueError, match="no schedule"):
        tau_schedule_figure(ops, samples, {})


@pytest.fixture
def shown(monkeypatch):
    """The figures pada_lite.plotting.show was asked to draw."""
    from pada_lite import plotting

    figures = []
    monkeypatch.setattr(plotting, "show", lambda fig, *args, **kwargs: figures.append(fig))
    return figures


def test_widget_redraws_when_the_epoch_and_the_schedule_change(scores, shown):
    import ipywidgets

    ops, samples = scores
    control = tau_schedule_widget(ops, samples, ops=OPS)
    assert isinstance(control, ipywidgets.VBox)
    assert isinstance(control.schedule, ipywidgets.Dropdown) and isinstance(control.epoch, ipywidgets.IntSlider)
    assert list(control.schedule.options) == list(DEFAULT_SCHEDULES)
    assert (control.epoch.min, control.epoch.max, control.epoch.value) == (1, EPOCHS, 1)
    assert shown == [control.figure]
    before = [list(trace.y) for trace in control.figure.data]

    control.epoch.value = 3
    assert len(shown) == 2 and shown[-1] is control.figure
    assert [list(trace.y) for trace in control.figure.data] != before
    p, q = distributions_after_epoch(ops[2], samples[2], "linear", 2, EPOCHS)
    np.testing.assert_allclose(control.figure.data[2].y, p.numpy(), atol=1e-6)
    np.testing.assert_allclose(control.figure.data[3].y, np.sort(SAMPLES * q.numpy())[::-1], atol=1e-5)

    control.schedule.value = "constant 0.5"
    assert len(shown) == 3 and list(control.figure.data[1].y) == [0.5]
    assert control.figure.data[0].name == "constant 0.5"
    p, _ = distributions_after_epoch(ops[2], samples[2], 0.5, 2, EPOCHS)
    np.testing.assert_allclose(control.figure.data[2].y, p.numpy(), atol=1e-6)


def test_tau_value_slider_steps_carry_the_mixing_rule(scores):
    ops, samples = scores
    fig = tau_value_figure(ops[-1], samples[-1], OPS, epoch=EPOCHS)
    steps = fig.layout.sliders[0].steps
    assert [float(step.label) for step in steps] == list(TAU_VALUES) and TAU_VALUES[0] == 0 and TAU_VALUES[-1] == 1
    for step, tau in zip(steps, TAU_VALUES):
        (bars_x, _), (bars_y, curve_y) = step.args[0]["x"], step.args[0]["y"]
        assert list(bars_x) == list(OPS) and list(step.args[2]) == [0, 1]
        np.testing.assert_allclose(bars_y, mix_with_uniform(ops[-1], tau).numpy(), atol=1e-6)
        np.testing.assert_allclose(curve_y, np.sort(SAMPLES * mix_with_uniform(samples[-1], tau).numpy())[::-1],
                                   atol=1e-5)
        assert f"τ = {tau:.2f}" in step.args[1]["title.text"] and f"epoch {EPOCHS}" in step.args[1]["title.text"]
    # by hand: τ = 0 is uniform, τ = 1 the normalised scores [0, 0, 0.2 + e, 0.6 + 2e, 0] / (0.8 + 3e), e = 3
    np.testing.assert_allclose(steps[0].args[0]["y"][0], [0.2] * 5, atol=1e-9)
    np.testing.assert_allclose(steps[-1].args[0]["y"][0], [0, 0, 3.2 / 9.8, 6.6 / 9.8, 0], atol=1e-6)
    assert list(fig.data[0].y) == pytest.approx(steps[0].args[0]["y"][0])  # the page starts at the first step


def test_tau_value_figure_for_one_tau_has_no_slider_and_bad_input_is_named(scores):
    ops, samples = scores
    fig = tau_value_figure(ops[0], samples[0], OPS, tau=0.25)
    assert not fig.layout.sliders and "τ = 0.25" in fig.layout.title.text
    np.testing.assert_allclose(fig.data[0].y, mix_with_uniform(ops[0], 0.25).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="no τ value"):
        tau_value_figure(ops[0], samples[0], OPS, taus=())
    with pytest.raises(ConfigError):
        tau_value_figure(ops[0], samples[0], OPS, tau=1.5)


def test_tau_value_widget_redraws_for_the_chosen_epoch_and_tau(scores, shown):
    import ipywidgets

    ops, samples = scores
    control = tau_value_widget(ops, samples, OPS)
    assert isinstance(control.tau, ipywidgets.FloatSlider) and isinstance(control.epoch, ipywidgets.IntSlider)
    assert (control.epoch.value, control.tau.value) == (EPOCHS, 0.5) and shown == [control.figure]
    control.tau.value = 1.0
    np.testing.assert_allclose(control.figure.data[0].y, mix_with_uniform(ops[-1], 1.0).numpy(), atol=1e-6)
    control.epoch.value = 2
    assert len(shown) == 3 and "epoch 2" in control.figure.layout.title.text
    np.testing.assert_allclose(control.figure.data[1].y, np.sort(SAMPLES * mix_with_uniform(samples[1], 1.0).numpy())
                               [::-1], atol=1e-5)


def test_recorded_scores_give_the_distributions_the_samplers_used(tiny_config, tiny_splits, one_thread):
    """Scores recorded by an epoch callback reproduce, through the figure's code, what PA and DA sampled."""
    from pada_lite.config import override
    from pada_lite.training import Trainer

    config = override(tiny_config, ["train.path_sampler=importance", "train.data_sampler=importance",
                                    "train.epochs=3"])
    recorded = {"ops": [], "samples": [], "p": [], "q": []}

    def record(trainer, summary):
        recorded["ops"].append(trainer.path_sampler.op_scores())
        recorded["samples"].append(trainer.data_sampler.sampling_scores())
        recorded["p"].append(trainer.path_sampler.probabilities()[0])  # the distributions this epoch sampled
        recorded["q"].append(trainer.data_sampler.probabilities())

    Trainer(config, None, tiny_splits, [record]).run()
    for k in (1, 2):  # built at the end of epoch k, sampled in epoch k + 1
        snap = schedule_snapshot(recorded["ops"], recorded["samples"], config.train.tau, k, points=10**6)
        np.testing.assert_allclose(snap["p"], recorded["p"][k].numpy(), atol=1e-12)
        np.testing.assert_allclose(snap["nq"], np.sort(len(recorded["q"][k]) * recorded["q"][k].numpy())[::-1],
                                   atol=1e-9)
