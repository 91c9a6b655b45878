"""Data-parallel training: 2 CPU processes on gloo against one process, and resume from rank 0's checkpoint."""
from __future__ import annotations

import json

import pytest
import torch
import torch.distributed as dist
from torch import nn

from pada_lite.config import ConfigError, RunConfig, lite, override
from pada_lite.data import ImageData, Splits
from pada_lite.distributed import DistributedTrainer, check_shardable, init_distributed, spawn_local, train_distributed
from pada_lite.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: one CPU thread

WORLD = 2
TINY_PADA = ["data.train_size=256", "data.image_size=8", "space.channels=4", "space.cells_per_stage=1",
             "train.batch_size=64", "train.epochs=3", "train.progress=false", "train.path_sampler=importance",
             "train.data_sampler=importance", "train.checkpoint_every_steps=2", "train.device=cpu"]


class Interrupted(Exception):
    """Stands for a crash at the end of the first epoch (before its end-of-epoch checkpoint)."""


def synthetic_splits() -> Splits:
    """256 learnable 1x8x8 images (class = brightest quadrant pattern) and a small test set."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (320,), generator=gen)
    images = torch.randint(0, 96, (320, 1, 8, 8), generator=gen, dtype=torch.uint8)
    images[torch.arange(320), 0, labels % 8, labels // 2] = 255
    data = ImageData(images, labels, (0.2,), (0.3,), 10)
    return Splits(data.subset(torch.arange(256)), None, data.subset(torch.arange(256, 320)))


def worker(rank: int, world: int, config: dict, splits: Splits, run_dir: str, out: str, crash: bool) -> None:
    """One rank: train (if ``crash``: stop after epoch 1, then resume in a new trainer) and save the final state."""
    torch.set_num_threads(1)
    config = RunConfig.from_dict(config)
    if not crash:
        result = train_distributed(config, run_dir, splits)
    else:
        init_distributed()
        with pytest.raises(Interrupted):
            DistributedTrainer(config, run_dir, splits, [crash_after_first_epoch]).run()
        dist.barrier()
        if rank == 0:
            saved = torch.load(f"{run_dir}/checkpoint.pt", weights_only=False)
            torch.save((saved["epoch"], saved["step"]), f"{out}/interrupted_at.pt")
        result = DistributedTrainer(config, run_dir, splits).run()
        dist.destroy_process_group()
    torch.save({"model": result.model.state_dict(), "history": result.history}, f"{out}/rank{rank}.pt")


def crash_after_first_epoch(trainer, summary):
    raise Interrupted


def ghost_batch_norm(shards: int):
    """BatchNorm2d.forward with statistics per strided shard, as each of ``shards`` ranks computes them."""
    forward = nn.BatchNorm2d.forward

    def sharded(self, x):
        return torch.stack([forward(self, x[s::shards]) for s in range(shards)], 1).flatten(0, 1)
    return sharded


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """An uninterrupted 2-rank PA&DA run: its folder and both ranks' final states."""
    root = tmp_path_factory.mktemp("ddp")
    config = override(lite(), TINY_PADA)
    spawn_local(WORLD, worker, (config.to_dict(), synthetic_splits(), str(root / "run"), str(root), False))
    states = [torch.load(root / f"rank{r}.pt") for r in range(WORLD)]
    return config, root / "run", states


def test_ranks_end_with_identical_weights_and_rank0_writes(two_rank_run):
    config, run_dir, (rank0, rank1) = two_rank_run
    assert all(torch.equal(v, rank1["model"][k]) for k, v in rank0["model"].items())
    drop_time = [[{k: v for k, v in h.items() if k != "elapsed_s"} for h in r["history"]] for r in (rank0, rank1)]
    assert drop_time[0] == drop_time[1] and len(drop_time[0]) == 3
    assert rank0["history"][0]["train_loss"] > rank0["history"][1]["train_loss"]
    assert {p.name for p in run_dir.iterdir()} == {"checkpoint.pt", "config.json", "supernet.pt", "train.json"}
    record = json.loads((run_dir / "train.json").read_text())
    assert record["config"] == config.to_dict() and record["world_size"] == WORLD and record["seed"] == 0


def test_two_ranks_equal_one_process_with_per_shard_batch_norm(two_rank_run, monkeypatch):
    config, _, (rank0, _) = two_rank_run
    monkeypatch.setattr(nn.BatchNorm2d, "forward", ghost_batch_norm(WORLD))
    single = Trainer(config, splits=synthetic_splits()).run(resume=False)
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(rank0["model"][k], v, rtol=1e-4, atol=1e-5)   # float summation order only
    for ours, theirs in zip(rank0["history"], single.history):
        assert ours["train_acc"] == theirs["train_acc"]
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)


def test_interrupted_run_resumes_from_rank0_checkpoint_exactly(two_rank_run, tmp_path):
    config, _, (rank0, _) = two_rank_run
    args = (config.to_dict(), synthetic_splits(), str(tmp_path / "run"), str(tmp_path))
    spawn_local(WORLD, worker, args + (True,))
    assert torch.load(tmp_path / "interrupted_at.pt") == (0, 2)   # the mid-epoch checkpoint written before the crash
    resumed = torch.load(tmp_path / "rank0.pt")
    assert all(torch.equal(v, resumed["model"][k]) for k, v in rank0["model"].items())
    assert resumed["history"][-1]["train_loss"] == rank0["history"][-1]["train_loss"]


def test_batches_too_small_to_share_are_refused():
    check_shardable(256, 64, 8)
    with pytest.raises(ConfigError, match="at least one image per process"):
        check_shardable(257, 64, 2)                       # the last batch holds 1 image for 2 processes


def test_init_without_torchrun_environment_says_how_to_start(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node"):
        init_distributed()
