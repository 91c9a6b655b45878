"""The full tier's ImageNet path on a tiny fake ImageFolder (3 classes x 8 PNGs, 32 px crops, CPU): supernet training
from the loader with PA and DA and its exact mid-epoch resume, the search on the folder, 2-process gloo runs of the
supernet training and of retraining against one process, and the one-line errors of the command line."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from pada_lite.config import DataConfig, RunConfig, TrainConfig
from pada_lite.data import DataError, FolderSplits, ImageFolderLoader, folder_splits, imagenet_folder
from pada_lite.distributed import init_distributed, spawn_local, train_distributed
from pada_lite.spaces import build_supernet
from pada_lite.spaces.mobilenet import FlopsTable, MobileNetNetwork, MobileNetSupernetConfig
from pada_lite.training import Trainer
from tests.conftest import Interrupt, kill_after_steps
from tests.test_distributed import ghost_batch_norm

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: one CPU thread

SPACE = MobileNetSupernetConfig(width_mult=0.25, input_size=32, in_channels=3, num_classes=3, stem_stride=2,
                                stage_blocks=(1, 2, 1), stage_widths=(16, 24, 32), stage_strides=(2, 1, 2),
                                head_channels=64)
WORLD = 2
TRAIN = dict(epochs=3, batch_size=6, lr=0.05, progress=False, device="cpu", path_sampler="importance", pa_scope="edge",
             data_sampler="importance")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and val/: 3 classes x 8 random 40x40 PNGs each (train) and x 2 (val)."""
    from PIL import Image
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 2)):
        for c, label in enumerate(("ant", "bee", "cow")):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 160, (40, 40, 3), dtype=np.uint8)
                pixels[:, :, c] = 255 - pixels[:, :, c] // 4                  # learnable: the class's channel is bright
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")
    return root


def tiny_run(root, **train) -> RunConfig:
    """PA per block + DA on the folder's 18 training images (6 held out), batch 6 -> 3 steps per epoch."""
    return RunConfig(name="tiny-imagenet", space=SPACE,
                     data=DataConfig(dataset="imagenet", root=str(root), image_size=32, train_size=None, valid_size=6),
                     train=TrainConfig(**{**TRAIN, **train}))


def splits(config: RunConfig) -> FolderSplits:
    return folder_splits(config.data, workers=0)


def test_folder_splits_hold_out_valid_images_with_the_eval_transform(folder):
    data = folder_splits(tiny_run(folder).data, workers=0)
    assert (len(data.train), len(data.valid)) == (18, 6) and data.valid.classes == ["ant", "bee", "cow"]
    train_paths = {p for p, _ in data.train.samples}
    assert train_paths.isdisjoint(p for p, _ in data.valid.samples) and len(train_paths) == 18
    assert data.valid[2][0].shape == (3, 32, 32)


def test_supernet_trains_from_the_folder_and_resumes_mid_epoch_exactly(folder, tmp_path):
    """PA + DA from the loader; a run killed in epoch 2 resumes from its step checkpoint to the same bits."""
    config = tiny_run(folder, checkpoint_every_steps=1)
    reference = Trainer(config, tmp_path / "a", splits(config))
    reference.run()
    assert len(reference.history) == 3 and all(np.isfinite(h["train_loss"]) for h in reference.history)
    assert len(reference.data_sampler.q) == 18                             # DA drew epochs 1 and 2 from q

    killed = Trainer(config, tmp_path / "b", splits(config))
    kill_after_steps(killed, 5)  # epoch 1, step 3: the last checkpoint is after its step 2
    with pytest.raises(Interrupt):
        killed.run()
    resumed = Trainer(config, tmp_path / "b", splits(config))
    assert resumed.try_resume() and (resumed.epoch, resumed.step) == (1, 2)
    assert len(resumed.order) == 18 and len(set(resumed.order.tolist())) < 18   # DA draws with replacement
    resumed.run()
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(reference.path_sampler.probabilities(), resumed.path_sampler.probabilities())
    assert torch.equal(reference.data_sampler.q, resumed.data_sampler.q)
    assert [h["train_loss"] for h in reference.history] == [h["train_loss"] for h in resumed.history]


def test_loader_reads_an_order_with_repeats_as_rank_rows(folder):
    """Two ranks' rows of each batch make the one-process batch; a repeated image gets a second crop."""
    data = imagenet_folder(folder, "train", 32, seed=4)
    order = torch.tensor([3, 3, 7, 0, 11, 5, 3])
    whole = list(ImageFolderLoader(data, 4, workers=0).read(2, order))
    ranks = [list(ImageFolderLoader(data, 4, workers=0, rank=r, world_size=2).read(2, order)) for r in range(2)]
    for b, (x, y, i) in enumerate(whole):
        assert torch.equal(x[0::2], ranks[0][b][0]) and torch.equal(x[1::2], ranks[1][b][0])
        assert torch.equal(i, order[4 * b:4 * b + 4]) and torch.equal(y[1::2], ranks[1][b][1])
    assert not torch.equal(whole[0][0][0], whole[0][0][1])                 # image 3 twice, two random crops
    workers = ImageFolderLoader(data, 4, workers=2)
    next(workers.read(2, order))                                            # abandoned mid-epoch (a crash)
    tail = list(workers.read(2, order, start=1))                           # the persistent workers start over
    assert len(tail) == 1 and torch.equal(tail[0][0], whole[1][0])


def test_search_on_the_folder_returns_an_arch_under_the_limit_with_provenance(folder, tmp_path):
    from pada_lite.mobilenet_search import SearchConfig, run_search
    from pada_lite.provenance import read_json
    run = tiny_run(folder, path_sampler="uniform", data_sampler="uniform")
    run.train.epochs = 1
    table = FlopsTable(SPACE)
    limit = round(float(np.mean(table.bounds())), 3)
    search = SearchConfig(flops_limit=limit, population=4, iterations=2, parents=2, bn_batches=2, bn_batch_size=4,
                          eval_batch_size=4)
    record = run_search(run, search, tmp_path, workers=0)
    saved = read_json(tmp_path / "search.json")
    assert saved["arch"] == record["arch"] and saved["mflops"] == pytest.approx(table.mflops(saved["arch"].split("-")))
    assert max(saved["evolution"]["mflops"] + saved["random"]["mflops"]) <= limit
    assert saved["config"]["data"]["dataset"] == "imagenet" and {"git_commit", "device", "wall_time_s"} <= set(saved)
    assert 0 <= saved["fitness"] <= 100 and len(saved["supernet_history"]) == 1


# --------------------------------------------------------------------------------------------- torchrun
def supernet_worker(rank: int, world: int, config: dict, out: str) -> None:
    """One rank of a data-parallel supernet run on the folder; saves its final weights."""
    torch.set_num_threads(1)
    config = RunConfig.from_dict(config)
    result = train_distributed(config, f"{out}/run", splits(config))
    torch.save(result.model.state_dict(), f"{out}/rank{rank}.pt")


def test_two_ranks_on_the_folder_equal_one_process_with_per_shard_batch_norm(folder, tmp_path, monkeypatch):
    config = tiny_run(folder, epochs=2, lr=0.01)   # at lr 0.05 BN over 3-image shards amplifies rounding to 2e-4
    spawn_local(WORLD, supernet_worker, (config.to_dict(), str(tmp_path)))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    weights = [name for name, _ in build_supernet(SPACE).named_parameters()]   # BN running statistics: per rank
    assert weights and all(torch.equal(ranks[0][k], ranks[1][k]) for k in weights)
    monkeypatch.setattr(nn.BatchNorm2d, "forward", ghost_batch_norm(WORLD))
    single = Trainer(config, splits=splits(config)).run(resume=False).model.state_dict()
    for k in weights:
        torch.testing.assert_close(ranks[0][k], single[k], rtol=1e-4, atol=1e-5)   # float summation order only


# ------------------------------------------------------------------------------------------- bad input
def test_missing_root_and_oversized_subset_name_the_fix(folder, monkeypatch):
    monkeypatch.delenv("PADA_LITE_DATA", raising=False)
    with pytest.raises(DataError, match="pass --data <root holding train/>"):
        folder_splits(DataConfig(dataset="imagenet"))
    with pytest.raises(DataError, match="only 18 training images remain"):
        folder_splits(dataclasses.replace(tiny_run(folder).data, train_size=19))


def test_cli_full_search_errors_are_one_line(tmp_path, capsys):
    from pada_lite.cli import main
    out = ["--out", str(tmp_path / "run")]
    assert main(["search", "--space", "mobilenet", "--preset", "full", *out]) == 2
    assert main(["search", "--space", "mobilenet", "--preset", "full", "--data", str(tmp_path / "nowhere"), *out]) == 2
    assert main(["search", "--space", "mobilenet", "--data", str(tmp_path), *out]) == 2
    assert main(["search", "--space", "darts", "--preset", "full"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: the full preset reads ImageNet: pass --data <root holding train/>",
                     f"error: ImageNet split folder {tmp_path / 'nowhere' / 'train'} does not exist: pass the root "
                     "that holds train/ and val/ with one sub-folder per class",
                     "error: --data applies to --preset full (the lite preset reads Fashion-MNIST)",
                     "error: --preset full does not exist for search --space darts: choose lite or paper"]
    assert not (tmp_path / "run").exists()


ARCH = ("k3_e3", "k5_e6", "skip", "k3_e3")
LR = 0.003  # BN over 3-6-image shards amplifies float rounding: at 0.01 the ranks drift 2e-5 from one process
BATCH = 12


def retrain_worker(rank: int, world: int, root: str, out: str) -> None:
    """One rank of two DDP retrainings on the folder: straight, and killed in epoch 2 then resumed."""
    torch.set_num_threads(1)
    init_distributed()
    try:
        straight = retrain_on_folder(root, f"{out}/straight", rank, world)
        with pytest.raises(Interrupt):
            retrain_on_folder(root, f"{out}/resumed", rank, world, crash_epoch=2)
        resumed = retrain_on_folder(root, f"{out}/resumed", rank, world)
    finally:
        dist.destroy_process_group()
    torch.save({"straight": straight.model.state_dict(), "resumed": resumed.model.state_dict()}, f"{out}/rank{rank}.pt")


def retrain_on_folder(root, out, rank: int = 0, world: int = 1, crash_epoch: int | None = None):
    """ARCH retrained 2 epochs on the folder (global batch 12), optionally dying at the start of an epoch."""
    from pada_lite.mobilenet_search import imagenet_sources, retrain_arch, retrain_preset
    from pada_lite.retrain import Retrainer
    config = dataclasses.replace(retrain_preset("full"), epochs=2, batch_size=BATCH, lr=LR, device="cpu",
                                 eval_batch_size=6)
    sources = imagenet_sources(root, 32, BATCH, seed=1, workers=0, device="cpu", rank=rank, world_size=world)
    real, calls = Retrainer.run_epoch, []

    def run_epoch(self):
        calls.append(1)
        if len(calls) == crash_epoch:
            raise Interrupt
        return real(self)
    Retrainer.run_epoch = run_epoch
    try:
        return retrain_arch(ARCH, SPACE, config, *sources, f"{out}/run", seed=5)
    finally:
        Retrainer.run_epoch = real


def test_ddp_retraining_equals_one_process_and_resumes_exactly(folder, tmp_path, monkeypatch):
    """2 gloo ranks = one process with per-shard BN (weights); a DDP run killed in epoch 2 resumes bit for bit."""
    spawn_local(WORLD, retrain_worker, (str(folder), str(tmp_path)))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD))
    straight = rank0["straight"]
    assert all(torch.equal(v, rank0["resumed"][k]) for k, v in straight.items())
    record = json.loads((tmp_path / "resumed" / "run" / "retrain.json").read_text())
    assert [h["epoch"] for h in record["history"]] == [1, 2] and record["world_size"] == WORLD
    weights = [name for name, _ in MobileNetNetwork(ARCH, SPACE).named_parameters()]   # BN buffers: per rank
    assert all(torch.equal(straight[k], rank1["straight"][k]) for k in weights)
    monkeypatch.setattr(nn.BatchNorm2d, "forward", ghost_batch_norm(WORLD))
    single = retrain_on_folder(folder, tmp_path / "single").model.state_dict()
    for k in weights:
        torch.testing.assert_close(straight[k], single[k], rtol=1e-4, atol=1e-5)   # float summation order only
