"""Tests of ground truth and published predictions (mirrored files and the official NAS-Bench-201 API format)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from nas_201_api import ArchResults, ResultsCount

from pada_lite import groundtruth as gtm
from pada_lite import remote
from pada_lite.groundtruth import DataFileError, GroundTruth
from pada_lite.metrics import kendall_tau, precision_at_top, spearman_rho
from pada_lite.spaces.nb201 import ArchError, enumerate_archs, str_to_arch

SHARED_MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mirror"
SPOT_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def mirror_env(tmp_path_factory):
    """Point the fetcher at ../shared/data/mirror with a module-wide temporary cache."""
    if not SHARED_MIRROR.is_dir():
        pytest.skip(f"data mirror {SHARED_MIRROR} is absent")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(remote.MIRROR_ENV, str(SHARED_MIRROR))
        mp.setenv(remote.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def gt(mirror_env) -> GroundTruth:
    return GroundTruth.nb201()


@pytest.fixture(scope="module")
def predictions(mirror_env) -> dict:
    return {kind: gtm.nb201_supernet_predictions(kind) for kind in ("one-shot", "few-shot")}


# ------------------------------------------------------------------------------------------- mirrored JSON
def test_mirror_json_table(gt):
    values = np.array(list(gt.values()))
    assert len(gt) == 15625 and set(gt) == set(enumerate_archs())
    assert gt[SPOT_ARCH] == pytest.approx(93.66, abs=5e-3)
    assert gt[str_to_arch(SPOT_ARCH)] == gt[SPOT_ARCH]
    assert round(values.max(), 2) == 94.37 and round(values.mean(), 2) == 87.06
    assert gt[("none",) * 6] == 10.0  # disconnected cell


def test_accuracies_follow_requested_order(gt):
    archs = enumerate_archs()[100:105][::-1]
    assert gt.accuracies(archs).tolist() == [gt[a] for a in archs]
    with pytest.raises(KeyError, match="not in"):
        GroundTruth({archs[0]: 1.0})[archs[1]]


@pytest.mark.parametrize("kind, tau, rho, p5", [("one-shot", 0.485, 0.677, 0.014), ("few-shot", 0.551, 0.741, 0.128)])
def test_published_supernet_predictions(gt, predictions, kind, tau, rho, p5):
    pred = predictions[kind]
    assert set(pred) == set(gt)
    # product order (not NB201's official index); P@Top5% has ties at the cutoff, broken by this order
    archs = enumerate_archs()
    true, est = gt.accuracies(archs), np.array([pred[a] for a in archs])
    assert round(kendall_tau(true, est), 3) == tau
    assert round(spearman_rho(true, est), 3) == rho
    assert round(precision_at_top(true, est, 5.0), 3) == p5


def test_mirror_json_only_has_cifar10_200_epochs(mirror_env):
    with pytest.raises(ValueError, match="cifar10"):
        gtm.nb201_accuracies(gtm.MIRROR_JSON, dataset="cifar100")
    with pytest.raises(ValueError, match="one-shot"):
        gtm.nb201_supernet_predictions("two-shot")


def test_genotype_keys_parse_into_official_edge_order():
    key = ("[(('nor_conv_3x3', 0),), (('nor_conv_1x1', 0), ('avg_pool_3x3', 1)), "
           "(('skip_connect', 0), ('none', 1), ('nor_conv_3x3', 2))]")
    assert gtm.genotype_key_to_arch(key) == ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3",
                                             "skip_connect", "none", "nor_conv_3x3")
    with pytest.raises(ArchError):
        gtm.genotype_key_to_arch("[(('none', 0),), (('none', 1), ('none', 0)), "  # node 2's edges swapped
                                 "(('none', 0), ('none', 1), ('none', 2))]")
    with pytest.raises(ValueError):
        gtm.genotype_key_to_arch("__import__('os').system('true')")


def test_arch_json_with_wrong_number_of_entries(tmp_path):
    path = tmp_path / "partial.json"
    key = "[(('none', 0),), (('none', 0), ('none', 1)), (('none', 0), ('none', 1), ('none', 2))]"
    path.write_text(f'{{"{key}": 10.0}}')
    with pytest.raises(DataFileError, match="1 distinct archs, expected 15625"):
        gtm.read_arch_json(path)
    assert gtm.read_arch_json(path, expected=1) == {("none",) * 6: 10.0}
    path.write_text("{not json")
    with pytest.raises(DataFileError, match="not a JSON table"):
        gtm.read_arch_json(path)


# ------------------------------------------------------------------------------------------- official .pth format
FAKE_ACCS = {  # arch string -> CIFAR-10 test accuracy of each seed after the last of 200 epochs
    SPOT_ARCH: [93.5, 93.82],
    "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|": [10.0],
    "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|skip_connect~2|": [88.1, 88.3, 88.8],
}


def _trial(arch_str: str, seed: int, epochs: int, test_acc: float, arch_config: dict) -> ResultsCount:
    """One training run as the NB201 authors stored it: per-epoch train metrics and 'ori-test' evaluations."""
    curve = {e: test_acc * (e + 1) / epochs for e in range(epochs)}
    trial = ResultsCount("cifar10", None, curve, {e: 1.0 / (e + 1) for e in range(epochs)}, 0.5, 80.0,
                         dict(arch_config, arch_str=arch_str), seed, epochs, [0.01])
    trial.update_eval({f"ori-test@{e}": a for e, a in curve.items()},
                      {f"ori-test@{e}": 0.3 for e in range(epochs)}, {f"ori-test@{e}": 1.0 for e in range(epochs)})
    return trial


def _arch_results(index: int, arch_str: str, epochs: int, accs: list, arch_config: dict) -> dict:
    results = ArchResults(index, arch_str)
    for seed, acc in zip((777, 888, 999), accs):
        results.update("cifar10", seed, _trial(arch_str, seed, epochs, acc, arch_config))
    return results.state_dict()


def fake_nb201_dict(arch_config: dict | None = None) -> dict:
    """A small benchmark dict in the layout NASBench201API reads ('meta_archs', 'arch2infos', ...)."""
    arch_config = arch_config or {"channel": 16, "num_cells": 5, "class_num": 10}
    meta_archs = list(FAKE_ACCS)
    arch2infos = {i: {"less": _arch_results(i, a, 12, [acc - 5 for acc in FAKE_ACCS[a]], arch_config),
                      "full": _arch_results(i, a, 200, FAKE_ACCS[a], arch_config)}
                  for i, a in enumerate(meta_archs)}
    return {"meta_archs": meta_archs, "arch2infos": arch2infos, "evaluated_indexes": list(range(len(meta_archs)))}


@pytest.fixture(scope="module")
def fake_pth(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-fake.pth"
    torch.save(fake_nb201_dict(), path)
    return path


def _expected_fake(hp_offset: float = 0.0) -> dict:
    return {str_to_arch(a): pytest.approx(np.mean(accs) + hp_offset) for a, accs in FAKE_ACCS.items()}


def test_official_pth_through_nas_201_api(fake_pth):
    assert gtm.nb201_accuracies(fake_pth) == _expected_fake()
    assert gtm.nb201_accuracies(str(fake_pth), hp="12") == _expected_fake(-5.0)
    gt = GroundTruth.nb201(fake_pth)
    assert gt[SPOT_ARCH] == pytest.approx(93.66) and len(gt) == 3
    with pytest.raises(DataFileError, match="no cifar100 results"):
        gtm.nb201_accuracies(fake_pth, dataset="cifar100")


def test_loaded_dict_is_accepted():
    assert gtm.nb201_accuracies(fake_nb201_dict()) == _expected_fake()


def test_missing_pth(tmp_path):
    with pytest.raises(DataFileError, match="not found.*NAS-Bench-201-v1_0-e61699.pth"):
        gtm.nb201_accuracies(tmp_path / "NAS-Bench-201-v1_1-096897.pth")


def test_truncated_pth(fake_pth, tmp_path):
    broken = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    broken.write_bytes(fake_pth.read_bytes()[: fake_pth.stat().st_size // 2])
    with pytest.raises(DataFileError, match="truncated or of another version.*NAS-Bench-201-v1_1-096897.pth"):
        gtm.nb201_accuracies(broken)


def test_pth_of_another_format(tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"meta_archs": [SPOT_ARCH], "evaluated_indexes": [0]}, other)  # no 'arch2infos'
    with pytest.raises(DataFileError, match="re-?download|again"):
        gtm.nb201_accuracies(other)


def test_pth_that_needs_full_unpickling(tmp_path):
    path = tmp_path / "namespace.pth"
    torch.save(fake_nb201_dict({"channel": 16, "num_cells": 5, "class_num": 10, "args": argparse.Namespace(x=1)}),
               path)
    with pytest.raises(DataFileError, match="weights_only=False"):
        gtm.nb201_accuracies(path)
    loaded = torch.load(path, map_location="cpu", weights_only=False)
    assert gtm.nb201_accuracies(loaded) == _expected_fake()


# ------------------------------------------------------------------------------------------- Deeper Insights
def test_deeper_insights_ground_truth(mirror_env):
    mean, std = gtm.deeper_insights_ground_truth()
    assert mean.shape == std.shape == (64,)
    assert ((mean > 0) & (mean < 1)).all() and ((std > 0) & (std < mean)).all()


def test_deeper_insights_child_ops():
    ops = gtm.DEEPER_INSIGHTS_OPS
    assert gtm.deeper_insights_child_ops(0) == (ops[0],) * 3
    assert gtm.deeper_insights_child_ops(63) == (ops[3],) * 3
    assert gtm.deeper_insights_child_ops(27) == ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_5x5")  # 27 = 1*16+2*4+3
    assert len({gtm.deeper_insights_child_ops(i) for i in range(64)}) == 64
    with pytest.raises(ValueError):
        gtm.deeper_insights_child_ops(64)


def test_deeper_insights_last128_ranking_instability(mirror_env):
    steps, acc = gtm.deeper_insights_last128()
    mean, _ = gtm.deeper_insights_ground_truth()
    assert acc.shape == (128, 64) and steps.shape == (128,)
    assert (np.diff(steps) == 1).all() and ((acc > 0) & (acc < 1)).all()
    taus = np.array([kendall_tau(mean, row) for row in acc])
    assert 0.10 < taus.min() < 0.16 and 0.71 < taus.max() < 0.77
