"""The lite benchmark: canonical archs, the evaluation set, resumable ground truth and its errors."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from pada_lite import benchmark as bm
from pada_lite import runner
from pada_lite.benchmark import GroundTruthError, compute_ground_truth, load_lite_ground_truth
from pada_lite.cli import main
from pada_lite.evalset import canonical_arch, evaluation_archs, is_conv_only, op_counts
from pada_lite.provenance import write_json
from pada_lite.reliability import ground_truth_report, subset_report
from pada_lite.runner import JobError
from pada_lite.spaces.nb201 import StandaloneNB201, SupernetConfig, arch_to_product_index, is_connected
from pada_lite.standalone import StandaloneConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: one CPU thread


C3, C1, SK, AP, NO = "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none"
TINY = StandaloneConfig(train_size=256, test_size=128, heldout_size=64, image_size=8, channels=4, epochs=1,
                        batch_size=128, group_size=2)


# ------------------------------------------------------------------------------------- canonical archs
@pytest.mark.parametrize("arch, canonical", [
    ((C3, C1, C3, C1, C3, C1), (C3, C1, C3, C1, C3, C1)),            # conv-only: every edge live
    ((NO, C3, C3, SK, C1, AP), (NO, C3, NO, SK, NO, AP)),            # node 1 unreachable: 1->2, 1->3 dead
    ((C3, SK, C1, SK, NO, NO), (NO, NO, NO, SK, NO, NO)),            # nodes 1, 2 never reach the output
    ((AP, C3, NO, NO, C1, SK), (C3, AP, NO, NO, SK, C1)),            # 1->2 'none': nodes 1, 2 swap, smaller index
    ((SK, SK, SK, NO, NO, NO), (NO,) * 6),                           # disconnected: a constant network
])
def test_canonical_arch_worked_examples(arch, canonical):
    assert canonical_arch(arch) == canonical
    assert canonical_arch(canonical) == canonical


def test_dead_edges_do_not_change_the_function():
    torch.manual_seed(0)
    space = SupernetConfig(channels=4, bn_affine=True, bn_track_running_stats=True)
    arch = (C3, SK, C1, SK, NO, NO)
    full, canonical = StandaloneNB201(arch, space), StandaloneNB201(canonical_arch(arch), space)
    canonical.load_state_dict(full.state_dict(), strict=False)  # shared stem, reductions, classifier
    x = torch.randn(8, 1, 8, 8)
    torch.testing.assert_close(full(x), canonical(x))


def test_disconnected_and_op_counts():
    assert not is_connected((SK, SK, SK, NO, NO, NO)) and is_connected((NO, NO, NO, SK, NO, NO))
    assert op_counts((NO, C3, C3, SK, C1, AP)) == (1, 0)  # only live edges count


def test_evaluation_set_is_fixed_distinct_and_stratified():
    archs = evaluation_archs()
    assert archs == evaluation_archs() and len(archs) == len(set(archs)) == 64 + 105
    assert sum(map(is_conv_only, archs)) == 64
    assert all(canonical_arch(a) == a and is_connected(a) for a in archs)
    strata = Counter(op_counts(a) for a in archs if not is_conv_only(a))
    assert set(strata) == {(i, j) for i in range(6) for j in range(6) if i + j <= 5}
    assert set(strata.values()) == {5}
    assert [sum(map(is_conv_only, archs[k:k + 16])) for k in (0, 16)] == [7, 6]  # units mix both kinds


# ---------------------------------------------------------------------------------------- ground truth
@pytest.fixture
def fake_training(monkeypatch):
    """Replace training by a deterministic record; returns the list of units that were 'trained'."""
    trained = []

    def fake_run(job, context):
        trained.append(context.name)
        acc = [80.0 + arch_to_product_index(bm.str_to_arch(a)) % 7 + job.seed * 0.1 for a in job.archs]
        return {"unit": context.name, "seed": job.seed, "archs": list(job.archs), "test_acc": acc, "eval_acc": acc,
                "wall_time_s": 1.0, "cpu_time_s": 1.0, "config": job.config.to_dict()}

    kind = runner.KINDS["groundtruth"]
    monkeypatch.setitem(runner.KINDS, "groundtruth", runner.JobKind(kind.name, kind.config_class, fake_run))
    return trained


def run(out, limit=None, config=TINY, archs=None):
    return compute_ground_truth(out, (0, 1), config, archs or evaluation_archs()[:4], limit_units=limit,
                                workers=1, progress=False)


def test_resume_skips_finished_units(tmp_path, fake_training, monkeypatch):
    out = tmp_path / "lite"
    written = []
    monkeypatch.setattr(bm, "write_json", lambda path, payload: written.append(path) or write_json(path, payload))
    partial = run(out, limit=3)
    assert fake_training == ["g00-s0", "g01-s0", "g00-s1"] and partial["missing_units"] == ["g01-s1"]  # seed-major
    assert written.count(out.with_suffix(".json")) == 3  # the merged artifact after every unit
    run(out, limit=0)                                      # --status: nothing new, the committed file stays as it is
    assert written.count(out.with_suffix(".json")) == 3
    with pytest.raises(GroundTruthError, match=r"partial: units \['g01-s1'\] are missing.*pada_lite groundtruth"):
        load_lite_ground_truth(out.with_suffix(".json"), TINY)
    complete = run(out)
    assert fake_training[3:] == ["g01-s1"] and complete["complete"]
    truth = load_lite_ground_truth(out.with_suffix(".json"), TINY)
    arch = evaluation_archs()[0]
    assert truth[arch] == pytest.approx(80.05 + arch_to_product_index(arch) % 7)
    assert sorted(p.name for p in (out / "units").iterdir()) == [f"g0{g}-s{s}.json" for g in (0, 1) for s in (0, 1)]


def test_units_are_assembled_from_the_results_of_another_folder_of_the_same_config(tmp_path, fake_training):
    archs = evaluation_archs()[:4]
    old = run(tmp_path / "old", archs=archs)                          # 4 archs x seeds 0, 1 in 2 units per seed
    fake_training.clear()
    picked = [archs[1], archs[2]]                                       # one group of 2, across the old units
    new = compute_ground_truth(tmp_path / "new", (0, 1, 2), TINY, picked, workers=1, progress=False,
                               reuse=[tmp_path / "old"], name="v2")
    assert fake_training == ["g00-s2"]                                  # seeds 0, 1 came from the old folder
    assert new["name"] == "v2" and new["complete"] and new["complete_seeds"] == [0, 1, 2]
    assert new["eval_acc"]["0"] == old["eval_acc"]["0"][1:3]
    assert new["units"]["g00-s0"]["reused"] and "reused" not in new["units"]["g00-s2"]
    record = json.loads((tmp_path / "new" / "units" / "g00-s1.json").read_text())
    assert record["reused_from"] == ["old/units/g00-s1.json", "old/units/g01-s1.json"]
    fake_training.clear()
    other = StandaloneConfig(**{**TINY.to_dict(), "epochs": 2})
    compute_ground_truth(tmp_path / "other", (0,), other, picked, workers=1, progress=False, reuse=[tmp_path / "old"])
    assert fake_training == ["g00-s0"]                                  # another config lends nothing


def test_corrupt_unit_is_reported_with_a_fix(tmp_path, fake_training):
    out = tmp_path / "lite"
    run(out, limit=1)
    (out / "units" / "g00-s0.json").write_text('{"unit": "g00-s0", "test_acc": [1.0')
    with pytest.raises(JobError, match=r"g00-s0.json is corrupt.*delete .*g00-s0.json"):
        run(out)


def test_missing_artifact_and_config_mismatch(tmp_path, fake_training):
    with pytest.raises(GroundTruthError, match=r"does not exist: compute it with `python -m pada_lite groundtruth`"):
        load_lite_ground_truth(tmp_path / "none.json")
    out = tmp_path / "lite"
    run(out)
    with pytest.raises(GroundTruthError, match="another config"):
        load_lite_ground_truth(out.with_suffix(".json"))  # the lite preset is not TINY


def test_report_gives_seed_taus_and_spread():
    payload = {"seeds": [0, 1], "complete": True, "conv_only": [True, True, True, False, False],
               "eval_acc": {"0": [1.0, 2.0, 3.0, 10.0, 20.0], "1": [1.0, 3.0, 2.0, 11.0, None]}}
    report = ground_truth_report(payload)
    assert report["num_archs"] == 4  # the arch missing seed 1 is left out
    assert report["conv_only"]["seed_tau"] == pytest.approx(1 / 3)
    assert report["all"]["seed_tau"] == pytest.approx(2 / 3)
    assert report["all"]["mean_acc_max"] == 10.5 and report["sampled"] == {"num_archs": 1}


def test_real_units_train_and_merge(tmp_path):
    payload = run(tmp_path / "lite", archs=evaluation_archs()[:2])
    assert payload["complete"] and all(0 <= a <= 100 for a in payload["mean_eval_acc"])
    unit = json.loads((tmp_path / "lite" / "units" / "g00-s1.json").read_text())
    weighted = [(128 * t + 64 * h) / 192 for t, h in zip(unit["test_acc"], unit["heldout_acc"])]
    assert unit["eval_acc"] == pytest.approx(weighted)  # accuracy over test + held-out images
    assert unit["config"] == TINY.to_dict() and unit["seed"] == 1 and unit["pada_lite_version"]
    assert unit["cpu_time_s"] > 0 and "cpu" in unit["device"]


def test_cli_status_reports_progress(tmp_path, capsys):
    assert main(["groundtruth", "--status", "--out", str(tmp_path / "v2")]) == 0  # the default: the v2 benchmark
    out = capsys.readouterr().out
    plan = bm.PLANS["v2"]
    groups = -(-len(plan.archs()) // bm.StandaloneConfig.lite().group_size)  # ceil(105 / 16) = 7
    assert f"0/{groups * len(plan.seeds)} units done" in out and "missing: g00-s0" in out
    assert json.loads((tmp_path / "v2.json").read_text())["complete"] is False


def test_fingerprint_follows_the_ground_truth_values(tmp_path, fake_training):
    from pada_lite.benchmark import ground_truth_fingerprint
    out = tmp_path / "lite"
    run(out)
    artifact = out.with_suffix(".json")
    first = ground_truth_fingerprint(artifact)
    assert ground_truth_fingerprint(artifact) == first  # deterministic
    payload = json.loads(artifact.read_text())
    payload["mean_eval_acc"][0] += 0.01
    artifact.write_text(json.dumps(payload))
    assert ground_truth_fingerprint(artifact) != first  # experiment summaries scored on the old values go stale


def test_half_split_tau_compares_means_of_disjoint_seed_halves():
    acc = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0], [2.0, 1.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])  # [S, N]
    report = subset_report(acc)
    # splits {0,1}|{2,3}, {0,2}|{1,3}, {0,3}|{1,2}: means [1, 2, 3.5, 3.5] vs [1.5, 1.5, 3, 4] etc.
    from pada_lite.metrics import kendall_tau
    expected = np.mean([kendall_tau(acc[[0, 1]].mean(0), acc[[2, 3]].mean(0)),
                        kendall_tau(acc[[0, 2]].mean(0), acc[[1, 3]].mean(0)),
                        kendall_tau(acc[[0, 3]].mean(0), acc[[1, 2]].mean(0))])
    assert report["half_seeds"] == 2 and report["half_tau"] == pytest.approx(expected)
    assert "half_tau" not in subset_report(acc[:3])


def test_tau_of_averages_is_spearman_brown_on_the_greiner_correlation():
    from pada_lite.reliability import tau_of_averages
    assert tau_of_averages(0.5, 1) == pytest.approx(0.5)
    r = np.sin(np.pi * 0.5 / 2)  # 0.707
    assert tau_of_averages(0.5, 2) == pytest.approx(2 / np.pi * np.arcsin(2 * r / (1 + r)))
    assert tau_of_averages(0.5, 2) < tau_of_averages(0.5, 4) < tau_of_averages(0.5, 8) < 1.0
    assert tau_of_averages(-0.2, 8) == 0.0 and tau_of_averages(1.0, 3) == pytest.approx(1.0)


def test_split_half_is_projected_to_the_whole_mean():
    from pada_lite.reliability import tau_of_averages
    rng = np.random.default_rng(0)
    acc = rng.normal(size=30) + rng.normal(scale=0.7, size=(6, 30))  # [S, N]: 6 noisy runs of 30 archs
    report = subset_report(acc)
    assert report["half_seeds"] == 3
    assert report["full_tau_projected"] == pytest.approx(tau_of_averages(report["half_tau"], 2))
    assert report["half_tau"] > report["seed_tau"]  # averaging 3 runs beats single runs on this noise
    odd = subset_report(acc[:5])  # halves of 2 seeds, one left out per split; the whole mean has 5/2 as many runs
    assert odd["half_seeds"] == 2
    assert odd["full_tau_projected"] == pytest.approx(tau_of_averages(odd["half_tau"], 2.5))
    assert tau_of_averages(odd["half_tau"], 2) < odd["full_tau_projected"]


def test_ground_truth_cost_scales_the_timed_units_of_the_complete_seeds():
    from pada_lite.reliability import ground_truth_cost
    payload = {"seeds": [0, 1, 2], "complete_seeds": [0, 1],
               "units": {"a": {"seed": 0, "cpu_time_s": 3600.0}, "b": {"seed": 1, "cpu_time_s": 7200.0},
                         "c": {"seed": 0, "cpu_time_s": None}, "d": {"seed": 1},
                         "e": {"seed": 2, "cpu_time_s": 99999.0}}}  # seed 2 is still training: not in the mean
    cost = ground_truth_cost(payload)
    assert cost["cpu_h"] == pytest.approx(1.5 * 4) and cost["cpu_h_per_seed"] == pytest.approx(3.0)
    assert cost["wall_h"] == pytest.approx(3.0) and cost["timed_units"] == 2 and cost["seeds"] == 2
    assert cost["by_cpu"] == {"CPU not recorded": pytest.approx(
        {"timed_units": 2, "cpu_min_per_unit": 90.0, "cpu_h_per_seed": 3.0, "wall_h_all_seeds": 3.0})}


def test_ground_truth_cost_is_split_by_the_cpu_each_unit_ran_on():
    from pada_lite.provenance import label_cpu
    from pada_lite.reliability import ground_truth_cost
    fast, slow = "cpu (2 cores, Intel Xeon, AVX512), 2 worker process(es) x 1 thread(s)", \
        "cpu (2 cores, AMD EPYC, AVX2), 2 worker process(es) x 1 thread(s)"
    assert label_cpu(slow) == "AMD EPYC, AVX2" and label_cpu("cpu (2 cores), 1 worker") == ""
    payload = {"seeds": [0, 1], "complete_seeds": [0, 1],
               "units": {"a": {"seed": 0, "cpu_time_s": 600.0, "device": fast},
                         "b": {"seed": 1, "cpu_time_s": 600.0, "device": fast},
                         "c": {"seed": 0, "cpu_time_s": 1800.0, "device": slow},
                         "d": {"seed": 1, "cpu_time_s": 1800.0, "device": slow}}}
    by_cpu = ground_truth_cost(payload)["by_cpu"]  # 2 units per seed, 2 seeds, 2 cores
    assert by_cpu["Intel Xeon, AVX512"]["cpu_h_per_seed"] == pytest.approx(2 * 600 / 3600)
    assert by_cpu["AMD EPYC, AVX2"]["wall_h_all_seeds"] == pytest.approx(2 * 1800 / 3600)


def test_label_cpu_reads_the_model_from_both_device_labels():
    from pada_lite.provenance import cpu_model, device_name, label_cpu
    assert label_cpu("cpu (AMD EPYC, AVX2, 1 thread)") == "AMD EPYC, AVX2"
    assert label_cpu("cpu (2 cores, AMD EPYC, AVX2), 2 worker process(es) x 1 thread(s)") == "AMD EPYC, AVX2"
    assert label_cpu("cpu (x86_64, 1 thread)") == "x86_64"
    assert label_cpu(None) == ""
    assert label_cpu(device_name("cpu")) == cpu_model()  # this machine's own label names its CPU
