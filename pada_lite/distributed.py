"""Data-parallel supernet training and retraining over several processes (``torchrun``; NCCL on GPUs, gloo on CPUs).

A thin layer over :class:`pada_lite.training.Trainer`; the run keeps the semantics of a one-process run with the
same global batch:

- ``train.batch_size`` is the *global* batch. Every rank builds the same epoch order and the same global batches
  (same sampler and augmentation generators, restored from rank 0's checkpoint) and trains on its shard
  ``batch[rank::world]``.
- Every rank samples the same path each step (the path sampler's generator is seeded alike on all ranks), so the
  set of parameters with gradients is the same everywhere and no DDP wrapper is needed (a single-path supernet has
  no static graph, which DDP would need ``find_unused_parameters=True`` for).
- One all-reduce per step carries, in one flat buffer: each rank's gradient weighted by its share of the global
  batch (their sum is the gradient of the global mean loss), the step statistics and the logits of the whole global
  batch (each rank fills its own rows). Every rank then passes the *global* batch's logits to the data sampler's
  ``observe``, so data importance sampling (DA) sees exactly what a one-process run sees, whatever the sampler
  stores, and all ranks draw the same next-epoch order. The path sampler reads the all-reduced gradients.
- Rank 0 writes checkpoints and results; on resume it reads the checkpoint and broadcasts it to the others.

In-memory data are sharded by slicing each global batch; an ImageNet folder is read by an
:class:`~pada_lite.data.ImageFolderLoader` that decodes only this rank's rows. Stand-alone retraining
(:class:`DistributedRetrainer`) wraps the network in ``DistributedDataParallel`` instead (a fixed graph).

BatchNorm uses batch statistics, so each rank normalises over its own shard: the run equals a one-process run
whose BatchNorm statistics are taken per shard (checked in the tests), which is how every data-parallel run of a
BatchNorm network without SyncBatchNorm behaves.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .config import ConfigError, RunConfig
from .data import FolderSplits, ImageData, Splits
from .provenance import read_json, write_json
from .retrain import RESULT, RetrainConfig, Retrainer, RetrainResult
from .training import Trainer, TrainingError, TrainResult


@dataclass
class DistEnv:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int


def init_distributed(backend: str | None = None) -> DistEnv:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)."""
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(f"distributed training needs {missing} in the environment: start it with "
                          "torchrun --nproc_per_node=N -m pada_lite train ...")
    env = DistEnv(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if torch.cuda.is_available():
        torch.cuda.set_device(env.local_rank)       # 'cuda' then means this rank's GPU
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return env


class _DeferredObserve:
    """Data sampler wrapper: ``observe`` is held until the step's logits of all ranks are known."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.pending = None

    def observe(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.pending = logits

    def __getattr__(self, name):
        return getattr(self.sampler, name)


class _ExchangeBeforeUnscale:
    """GradScaler wrapper that runs the step's all-reduce right after backward (before unscaling and clipping)."""

    def __init__(self, scaler, exchange: Callable[[], None]):
        self.scaler = scaler
        self.exchange = exchange

    def unscale_(self, optimizer) -> None:
        self.exchange()
        self.scaler.unscale_(optimizer)

    def __getattr__(self, name):
        return getattr(self.scaler, name)


@dataclass
class _Step:
    """What the all-reduce of one step needs to know about the global batch."""

    indices: torch.Tensor      # [N] dataset indices of the global batch
    labels: torch.Tensor       # [N]
    local_size: int            # this rank's shard size
    stats: torch.Tensor        # [3] this rank's [loss_sum, correct, count]; global after the exchange


class DistributedTrainer(Trainer):
    """A :class:`Trainer` whose steps are shared by the ranks of the default process group."""

    def __init__(self, config: RunConfig, run_dir: str | Path | None = None,
                 splits: Splits | FolderSplits | None = None, epoch_callbacks=None):
        if not dist.is_initialized():
            raise ConfigError("DistributedTrainer needs a process group: call init_distributed() first")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.shard = (self.rank, self.world_size)
        if self.rank != 0:                            # one progress bar (train.progress does not change results)
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, progress=False))
        super().__init__(config, run_dir, splits, epoch_callbacks)
        check_shardable(len(self.train_data), config.train.batch_size, self.world_size)
        if self.rank != 0:
            self.run_dir = None                       # only rank 0 writes
        self.data_sampler = _DeferredObserve(self.data_sampler)
        self.scaler = _ExchangeBeforeUnscale(self.scaler, self.exchange)
        self.step_state: _Step | None = None
        for tensor in self.model.state_dict().values():   # identical start even if initialisation differed
            dist.broadcast(tensor, src=0)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, stats: torch.Tensor) -> None:
        """One step on this rank's rows (x, y) of the global batch ``idx``; adds the global statistics to stats."""
        shard = slice(self.rank, None, self.world_size)
        self.step_state = _Step(idx, self.labels[idx], len(y), torch.zeros(3, device=stats.device))
        super().train_step(x, y, idx[shard], self.step_state.stats)
        stats += self.step_state.stats

    def exchange(self) -> None:
        """All-reduce gradients (weighted by shard share), step statistics and the global batch's logits at once."""
        step = self.step_state
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        local_logits = self.data_sampler.pending                              # [n, classes]
        logits = torch.zeros(len(step.labels), local_logits.shape[1], device=local_logits.device)   # [N, classes]
        logits[self.rank::self.world_size] = local_logits
        share = step.local_size / len(step.labels)
        buffer = torch.cat([torch.cat([g.reshape(-1) for g in grads]).float() * share, step.stats, logits.view(-1)])
        dist.all_reduce(buffer)
        flat, reduced_stats, reduced_logits = buffer.split([buffer.numel() - 3 - logits.numel(), 3, logits.numel()])
        for g, new in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(new.view(g.shape))
        step.stats.copy_(reduced_stats)
        self.data_sampler.sampler.observe(step.indices, reduced_logits.view(logits.shape), step.labels)

    def save_checkpoint(self) -> None:
        if self.rank == 0:
            super().save_checkpoint()

    def run(self, resume: bool = True) -> TrainResult:
        """Train like :meth:`Trainer.run`; rank 0's train.json also records the number of processes."""
        result = super().run(resume)
        _record_world_size(self.run_dir, "train.json", self.world_size)
        return result

    def try_resume(self) -> bool:
        """Rank 0 reads the checkpoint (if any) and broadcasts it; every rank restores it."""
        return _resume_from_rank0(self, super().try_resume)


def _record_world_size(run_dir: Path | None, name: str, world_size: int) -> None:
    """Add the number of processes to rank 0's result record ``run_dir/name``."""
    if run_dir is not None:
        write_json(run_dir / name, {**read_json(run_dir / name), "world_size": world_size})


def _resume_from_rank0(trainer, read_checkpoint: Callable[[], bool]) -> bool:
    """Rank 0 runs ``read_checkpoint()`` (True: a checkpoint was loaded) and broadcasts the state; all ranks load it."""
    message: list = [None]
    if trainer.rank == 0:
        try:
            message = [_to_cpu(trainer.state_dict()) if read_checkpoint() else None]
        except TrainingError as err:
            message = [err]
    dist.broadcast_object_list(message, src=0)
    if isinstance(message[0], TrainingError):
        raise message[0]
    if message[0] is not None and trainer.rank != 0:
        trainer.load_state_dict(message[0])
    return message[0] is not None


class DistributedRetrainer(Retrainer):
    """A :class:`~pada_lite.retrain.Retrainer` under torchrun: the model trains wrapped in ``DistributedDataParallel``.

    ``retrain.batch_size`` is the global batch: ``train_data`` must yield this rank's rows of every batch (an
    :class:`~pada_lite.data.ImageFolderLoader` built with ``rank`` and ``world_size``), equal shares, so DDP's average
    of the ranks' gradients is the gradient of the global batch's mean loss. BatchNorm normalises per shard and its
    running statistics are rank 0's (DDP broadcasts them every step). Every rank evaluates the whole test set; rank 0
    writes checkpoints and results, and on resume reads the checkpoint and broadcasts it.
    """

    def __init__(self, model: torch.nn.Module, train_data, test_data, config: RetrainConfig,
                 run_dir: str | Path | None = None, info: dict | None = None):
        if not dist.is_initialized():
            raise ConfigError("DistributedRetrainer needs a process group: call init_distributed() first")
        if isinstance(train_data, ImageData):
            raise ConfigError("distributed retraining reads an ImageFolder loader sharded by rank (the full preset); "
                              "retrain in-memory data in one process")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if config.batch_size % self.world_size:
            raise ConfigError(f"retrain.batch_size={config.batch_size} is not a multiple of the {self.world_size} "
                              "processes: every rank needs an equal share of each batch")
        super().__init__(model, train_data, test_data, config, run_dir if self.rank == 0 else None, info)
        devices = [torch.cuda.current_device()] if self.device.type == "cuda" else None
        self.train_model = DistributedDataParallel(self.model, device_ids=devices)   # broadcasts rank 0's weights

    def run(self, resume: bool = True) -> RetrainResult:
        """Train like :meth:`Retrainer.run`; rank 0's retrain.json also records the number of processes."""
        result = super().run(resume)
        _record_world_size(self.run_dir, RESULT, self.world_size)
        return result

    def reduce_stats(self, stats: torch.Tensor) -> torch.Tensor:
        """Sum [loss_sum, correct, count] over the ranks (one all-reduce per epoch)."""
        dist.all_reduce(stats)
        return stats

    def try_resume(self) -> bool:
        """Rank 0 reads the checkpoint (if any) and broadcasts it; every rank restores it."""
        return _resume_from_rank0(self, super().try_resume)


def check_shardable(num_samples: int, batch_size: int, world_size: int) -> None:
    """Every global batch, the last one included, must give each rank at least one sample."""
    last = num_samples % batch_size or batch_size
    if min(batch_size, last) < world_size:
        raise ConfigError(f"a global batch of {min(batch_size, last)} images cannot be shared by {world_size} "
                          f"processes (train.batch_size={batch_size}, {num_samples} training images): change "
                          "train.batch_size or data.train_size so that every batch has at least one image per process")


def _to_cpu(obj):
    """Copy of a nested state with every tensor on the CPU (safe to send to other ranks)."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def train_distributed(config: RunConfig, run_dir: str | Path | None = None, splits: Splits | FolderSplits | None = None,
                      resume: bool = True, epoch_callbacks=None) -> TrainResult:
    """Entry point under torchrun: join the group, train on this rank's shards, leave the group."""
    init_distributed()
    try:
        return DistributedTrainer(config, run_dir, splits, epoch_callbacks).run(resume=resume)
    finally:
        dist.barrier()
        dist.destroy_process_group()


def spawn_local(world_size: int, target: Callable, args: tuple = (), port: int | None = None) -> None:
    """Run ``target(rank, world_size, *args)`` in ``world_size`` local processes with torchrun's environment."""
    import torch.multiprocessing as mp
    mp.spawn(_spawned, args=(world_size, port or free_port(), target, args), nprocs=world_size, join=True)


def free_port() -> int:
    """A TCP port that is free on this machine right now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(rank: int, world_size: int, port: int, target: Callable, args: tuple) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    target(rank, world_size, *args)

