import json
import shutil

import numpy as np
import pytest

from pada_lite import experiments
from pada_lite.experiments import (RESULTS_DIR, ExperimentError, experiment_units, load_experiment, load_unit,
                                   run_experiment, unit_path)


@pytest.mark.slow
def test_smoke_experiment_reproduces_committed_artifact(tmp_path):
    committed = [load_unit(u) for u in experiment_units("smoke")]
    assert all(committed), "data/results/smoke/ is missing or stale: run `python -m pada_lite experiment smoke`"
    run_experiment("smoke", force=True, results_dir=tmp_path, progress=False)
    for unit, old in zip(experiment_units("smoke"), committed):
        new = json.loads(unit_path(unit, tmp_path).read_text())
        assert new["archs"] == old["archs"]
        assert new["supernet_acc"] == old["supernet_acc"]  # same seed, same CPU code path: identical
        for a, b in zip(new["history"], old["history"]):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
            assert a["grad_var"] == pytest.approx(b["grad_var"], rel=1e-5)
            assert a["epoch_supernet_acc"] == b["epoch_supernet_acc"]


def test_finished_units_are_not_rerun(tmp_path, monkeypatch):
    shutil.copytree(RESULTS_DIR / "smoke", tmp_path / "smoke")
    monkeypatch.setattr(experiments, "run_unit", lambda *a, **k: pytest.fail("a finished unit was re-run"))
    summary = run_experiment("smoke", results_dir=tmp_path, progress=False)
    assert [row["label"] for row in summary["rows"]] == ["SPOS", "PA&DA"]
    assert load_experiment("smoke", results_dir=tmp_path)["rows"] == summary["rows"]


def test_stale_or_missing_artifacts_are_reported(tmp_path):
    with pytest.raises(ExperimentError, match="python -m pada_lite experiment smoke"):
        load_experiment("smoke", results_dir=tmp_path)
    shutil.copytree(RESULTS_DIR / "smoke", tmp_path / "smoke")
    unit = experiment_units("smoke")[0]
    record = json.loads(unit_path(unit, tmp_path).read_text())
    record["config_hash"] = "other"
    unit_path(unit, tmp_path).write_text(json.dumps(record))
    assert load_unit(unit, tmp_path) is None
    with pytest.raises(ExperimentError, match="missing or stale"):
        experiments.summarise("smoke", [load_unit(u, tmp_path) for u in experiment_units("smoke")])


def test_unknown_experiment_and_unit_layout():
    with pytest.raises(ExperimentError, match="unknown experiment"):
        experiment_units("everything")
    main = experiment_units("main")
    assert len(main) == 15 and {u.label for u in main} == {"SPOS", "FairNAS", "PA", "DA", "PA&DA"}
    assert len({u.config_hash for u in main}) == 15
    motivation = experiment_units("motivation")
    assert sorted({len(u.config.space.ops) for u in motivation}) == [2, 3, 4, 5]


def test_stability_analysis_counts_top1_moves():
    records = [{"history": [{"epoch_supernet_acc": row} for row in ([1, 2, 3], [3, 2, 1], [3, 2, 1])],
                "supernet_acc": [3, 2, 1]},
               {"history": [{"epoch_supernet_acc": row} for row in ([1, 2, 3], [1, 2, 3], [1, 3, 2])],
                "supernet_acc": [1, 3, 2]}]
    out = experiments.stability_analysis(records)
    assert out["top1_per_epoch"] == [[2, 0, 0], [2, 2, 1]] and out["top1_changes"] == [1, 1]
    np.testing.assert_allclose(out["tau_consecutive_epochs"][0], [-1.0, 1.0])
    np.testing.assert_allclose(out["tau_between_seeds"], [-1 / 3])
