"""Full tier: the paper preset against the reference PA&DA NB201 CIFAR-10 run, its supernet, and bad full-tier input."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from pada_lite.artifacts import rank_artifact, write_rank_artifact
from pada_lite.config import ConfigError, override, paper
from pada_lite.data import DataConfig, DataError, load_cifar
from pada_lite.fast_eval import evaluate_archs_fast
from pada_lite.spaces.nb201 import NB201_OPS, NB201Supernet, str_to_arch
from pada_lite.training import Trainer, resolve_device

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: one CPU thread

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised on a machine without CUDA")
# reference: ShunLu91/PA-DA nasbench201/train_panda_201.py defaults + scripts/train_panda_201.sh
REFERENCE = {"channels": 16, "cells_per_stage": 5, "epochs": 250, "batch_size": 256, "lr": 0.05, "momentum": 0.9,
             "weight_decay": 2.5e-4, "grad_clip": 5.0, "seeds": (0, 1, 2), "rank_batch_size": 512}


# -------------------------------------------------------------------------------------------- the preset
def test_paper_preset_matches_the_reference_run():
    c = paper()
    assert (c.space.channels, c.space.cells_per_stage) == (REFERENCE["channels"], REFERENCE["cells_per_stage"])
    assert c.space.ops == NB201_OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert (c.space.in_channels, c.space.num_classes) == (3, 10)
    assert not c.space.bn_affine and not c.space.bn_track_running_stats        # BN of the reference supernet
    assert c.data.dataset == "cifar10" and c.data.augment                      # crop (pad 4) + flip
    assert (c.data.train_size, c.data.valid_size, c.data.test_size, c.data.image_size) == (None, 0, None, None)
    t = c.train
    assert (t.epochs, t.batch_size, t.lr, t.momentum, t.weight_decay, t.grad_clip) == (
        REFERENCE["epochs"], REFERENCE["batch_size"], REFERENCE["lr"], REFERENCE["momentum"],
        REFERENCE["weight_decay"], REFERENCE["grad_clip"])
    assert (t.nesterov, t.lr_min, t.importance_weighting, t.tau) == (False, 0.0, False, "linear")
    assert [override(c, [f"train.seed={s}"]).train.seed for s in REFERENCE["seeds"]] == [0, 1, 2]


def test_paper_preset_ranks_with_the_reference_batch():
    assert paper().rank.batch_size == REFERENCE["rank_batch_size"]


# -------------------------------------------------------------------------------------------- the supernet
def expected_parameter_counts(c: int, cells: int, in_channels: int, classes: int, ops) -> dict:
    """Parameters of the NB201 supernet counted from its architecture (BN without affine has none)."""
    kernel_area = {"nor_conv_1x1": 1, "nor_conv_3x3": 9}                   # bias-free c x c convs
    per_cell = lambda ch: 6 * sum(kernel_area.get(op, 0) for op in ops) * ch * ch   # noqa: E731 - 6 edges
    reduction = lambda ch: 9 * ch * 2 * ch + 9 * 2 * ch * 2 * ch + ch * 2 * ch      # noqa: E731 - 3x3 s2, 3x3, 1x1
    return {"stem": 9 * in_channels * c,
            "cells": sum(cells * per_cell(ch) for ch in (c, 2 * c, 4 * c)),
            "reductions": reduction(c) + reduction(2 * c),
            "classifier": 4 * c * classes + classes}


def counted(model: NB201Supernet) -> dict:
    counts = {"stem": 0, "cells": 0, "reductions": 0, "classifier": 0}
    for name, p in model.named_parameters():
        part = name.split(".")[0]
        if part == "cells":
            part = "cells" if ".edges." in name else "reductions"
        counts[part] += p.numel()
    return counts


def test_paper_supernet_parameter_count():
    s = paper().space
    expected = expected_parameter_counts(s.channels, s.cells_per_stage, s.in_channels, s.num_classes, s.ops)
    model = NB201Supernet(s)
    assert counted(model) == expected == {"stem": 432, "cells": 1_612_800, "reductions": 71_680, "classifier": 650}
    # 1,685,562 in all; the reference builds these convs with bias=not affine (a bias before every batch-statistics
    # BN, which the BN cancels), which adds 6,912 parameters: 1,692,474
    assert sum(p.numel() for p in model.parameters()) == 1_685_562


def test_paper_supernet_forward_on_two_cifar_images():
    torch.manual_seed(0)
    model = NB201Supernet(paper().space).eval()
    x = torch.randn(2, 3, 32, 32)
    archs = [str_to_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                         "nor_conv_3x3~2|"), ("none",) * 6, ("avg_pool_3x3", "skip_connect", "nor_conv_1x1") * 2]
    with torch.no_grad():
        logits = torch.stack([model(x, a) for a in archs])                         # [3, 2, 10]
    assert logits.shape == (3, 2, 10) and torch.isfinite(logits).all()
    assert torch.equal(logits[1, 0], logits[1, 1])                                 # a disconnected cell: constant
    data_x = (x * 40 + 128).clamp(0, 255).to(torch.uint8)
    from pada_lite.data import ImageData
    data = ImageData(data_x, torch.tensor([3, 7]), (0.5,) * 3, (0.25,) * 3, 10)
    fast = evaluate_archs_fast(model, archs, data, batch_size=2)
    with torch.no_grad():
        xs, ys = data.batch(torch.arange(2))
        expected = [100.0 * float((model(xs, a).argmax(1) == ys).float().mean()) for a in archs]
    np.testing.assert_array_equal(fast, np.array(expected, dtype=np.float32))


# -------------------------------------------------------------------------------------------- bad input
@NO_CUDA
def test_cuda_requested_without_cuda_is_a_config_error(tiny_config, tiny_splits):
    with pytest.raises(ConfigError, match="no CUDA GPU.*train.device=auto or cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="train.device='cuda:1'"):
        Trainer(override(tiny_config, ["train.device=cuda:1"]), splits=tiny_splits)


def write_cifar10(root, skip: tuple = ()) -> None:
    """A CIFAR-10 folder in the genuine python-pickle format, 4 images per batch (so md5s differ from the real)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        if name not in skip:
            batch = {"batch_label": name, "labels": rng.integers(0, 10, 4).tolist(),
                     "data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                     "filenames": [f"{i}.png" for i in range(4)]}
            (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
            "num_cases_per_batch": 4, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


@pytest.mark.parametrize("skip", [(), ("data_batch_3",)], ids=["complete-but-not-the-official-files", "missing-batch"])
def test_cifar10_folder_that_is_not_the_official_release_is_refused_with_the_fix(tmp_path, skip):
    write_cifar10(tmp_path, skip)
    with pytest.raises(DataError) as err:
        load_cifar(DataConfig(dataset="cifar10", root=str(tmp_path)), "train")
    message = str(err.value)
    assert str(tmp_path) in message and "data.download=true" in message and "cifar-10-batches-py" in message


# -------------------------------------------------------------------------------------------- artifacts
def test_rank_artifact_records_metrics_and_provenance(tmp_path):
    config = override(paper(), ["train.seed=2"])
    archs = [str_to_arch(f"|{a}~0|+|{b}~0|{a}~1|+|{b}~0|{a}~1|{b}~2|")
             for a in ("nor_conv_3x3", "skip_connect") for b in ("nor_conv_1x1", "avg_pool_3x3", "none")]
    predicted, truth = [60.0, 55.0, 40.0, 30.0, 20.0, 10.0], [93.0, 91.0, 80.0, 70.0, 85.0, 10.0]
    record = write_rank_artifact(tmp_path / "rank.json", archs, predicted, config, "cpu", 12.5, truth,
                                 batch_size=512)
    assert json.loads((tmp_path / "rank.json").read_text()) == record
    assert record["seed"] == 2 and record["config"] == config.to_dict() and record["wall_time_s"] == 12.5
    assert record["device"].startswith("cpu") and record["batch_size"] == 512
    assert record["archs"][0] == ("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
                                  "+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert record["metrics"]["kendall_tau"] == pytest.approx(11 / 15)      # 13 concordant, 2 discordant pairs
    assert record["metrics"]["p_at_top5"] == 1.0 and record["metrics"]["num_archs"] == 6
    with pytest.raises(ValueError, match="6 archs but 5"):
        rank_artifact(archs, predicted[:5])
