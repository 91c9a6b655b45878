"""Supernet training (single path per step, any path sampler x data sampler) with exact checkpoint/resume.

Gradients between steps (``train.zero_filled_grads``): by default they are zeroed, not freed, as ``zero_grad()`` did
in the torch 1.x of the reference code. An op keeps a zero gradient once it has been sampled, so SGD's weight decay
and momentum move it on every later step, sampled or not. With ``zero_filled_grads=False`` (torch 2's default
``set_to_none=True``) only the sampled path is updated. The two differ most between methods that sample ops
unevenly (PA), which is why the v2 main experiment runs SPOS and PA&DA both ways.

Random streams: the weights come from ``torch.manual_seed(seed)``, paths from a generator seeded ``seed + 1``,
augmentation from ``seed + 2`` and, with ``train.separate_data_rng`` (default), the data order from ``seed + 3``: two
methods run with one seed start from the same weights and, when both shuffle uniformly, see the same batches, so
their paired difference measures the method, not the luck of the draw.
"""
from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .config import ConfigError, RunConfig
from .data import FolderSplits, ImageFolderLoader, Splits, load_data
from .provenance import provenance, torch_save, write_json
from .samplers import make_data_sampler, sampling_summary
from .spaces import build_supernet, make_path_sampler

CHECKPOINT = "checkpoint.pt"


class TrainingError(RuntimeError):
    """Raised when training cannot go on (NaN loss, mismatched checkpoint); the message says what to do."""


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; a CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but this machine has no CUDA GPU: use train.device=auto or cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (weights are initialised from this)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(generators: dict[str, torch.Generator]) -> dict:
    """Every RNG state a run depends on."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "generators": {k: g.get_state() for k, g in generators.items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    """Inverse of :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    for k, g in generators.items():
        g.set_state(state["generators"][k])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainResult:
    """What a training run leaves behind."""

    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    device: str = "cpu"
    run_dir: Path | None = None
    cpu_time_s: float = 0.0   # CPU seconds of the whole run (epochs and epoch callbacks), across resumes


class Trainer:
    """One supernet training run; ``run()`` trains from scratch or resumes ``run_dir/checkpoint.pt``.

    ``splits``: in-memory :class:`~pada_lite.data.Splits`, or :class:`~pada_lite.data.FolderSplits` (ImageNet) whose
    training images an :class:`~pada_lite.data.ImageFolderLoader` reads in the order the data sampler draws.
    """

    shard = (0, 1)  # (rank, world size): this process trains on rows rank::world of every global batch

    def __init__(self, config: RunConfig, run_dir: str | Path | None = None,
                 splits: Splits | FolderSplits | None = None,
                 epoch_callbacks: list[Callable[["Trainer", dict], dict | None]] | None = None):
        self.config = config
        tc = config.train
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.device = resolve_device(tc.device)
        splits = splits or load_data(config.data)
        self.loader = self._folder_loader(splits) if isinstance(splits, FolderSplits) else None
        self.train_data = splits.train if self.loader is not None else splits.train.to(self.device)
        self.labels = self.train_data.labels.to(self.device)                  # [N]
        self.splits = splits
        seed_everything(tc.seed)
        self.model = build_supernet(config.space).to(self.device)
        if tc.channels_last and self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.steps_per_epoch = math.ceil(len(self.train_data) / tc.batch_size)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=tc.lr, momentum=tc.momentum,
                                         nesterov=tc.nesterov, weight_decay=tc.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=tc.epochs * self.steps_per_epoch, eta_min=tc.lr_min)
        self.sample_gen = torch.Generator().manual_seed(tc.seed + 1)       # paths (and data order, unless separate)
        self.augment_gen = torch.Generator(device=self.device).manual_seed(tc.seed + 2)  # crop/flip
        self.data_gen = torch.Generator().manual_seed(tc.seed + 3) if tc.separate_data_rng else self.sample_gen
        self.path_sampler = make_path_sampler(tc, config.space, self.sample_gen)
        self.data_sampler = make_data_sampler(tc, self.train_data.labels.cpu(), self.data_gen)
        self.amp_dtype = amp_dtype_for(self.device) if tc.amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.epoch_callbacks = list(epoch_callbacks or [])
        self.epoch, self.step, self.order, self.history = 0, 0, None, []
        self.stats = torch.zeros(3, device=self.device)  # [loss_sum, correct, count] of the current epoch
        self.elapsed = 0.0
        self.cpu_s, self._cpu_mark = 0.0, time.process_time()  # CPU of the run so far (saved with checkpoints)

    def _folder_loader(self, splits: FolderSplits) -> ImageFolderLoader:
        """Loader of this process's rows of the training folder (augmentation seeded by train.seed)."""
        tc = self.config.train
        train = splits.train.subset(torch.arange(len(splits.train)), seed=tc.seed + 2)
        return ImageFolderLoader(train, tc.batch_size, tc.seed, splits.workers, self.device, True,
                                 tc.channels_last and self.device.type == "cuda", rank=self.shard[0],
                                 world_size=self.shard[1])

    # ------------------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly."""
        return {"config": self.config.to_dict(), "version": __version__, "epoch": self.epoch, "step": self.step,
                "order": self.order, "stats": self.stats, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "path_sampler": self.path_sampler.state_dict(), "data_sampler": self.data_sampler.state_dict(),
                "rng": rng_state(self.generators()),
                "with_grad": [i for i, p in enumerate(self.model.parameters()) if p.grad is not None],
                "history": self.history, "elapsed": self.elapsed, "cpu_s": self.cpu_s}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; refuses a checkpoint of another config."""
        check_same_config(state["config"], self.config.to_dict())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.path_sampler.load_state_dict(state["path_sampler"])
        self.data_sampler.load_state_dict(state["data_sampler"])
        set_rng_state(state["rng"], self.generators())
        self.epoch, self.step, self.order = state["epoch"], state["step"], state["order"]
        self.stats = state["stats"].to(self.device)
        self.history, self.elapsed = state["history"], state["elapsed"]
        self.cpu_s, self._cpu_mark = state.get("cpu_s", 0.0), time.process_time()
        restore_zero_grads(self.model, state.get("with_grad", []))

    def generators(self) -> dict[str, torch.Generator]:
        """The run's own random streams (saved with every checkpoint)."""
        own = {"sample": self.sample_gen, "augment": self.augment_gen}
        return {**own, "data": self.data_gen} if self.data_gen is not self.sample_gen else own

    def tick_cpu(self) -> float:
        """Add the CPU time used since the last tick to ``cpu_s``; returns it."""
        now = time.process_time()
        self.cpu_s, self._cpu_mark = self.cpu_s + now - self._cpu_mark, now
        return self.cpu_s

    def save_checkpoint(self) -> None:
        self.tick_cpu()
        if self.run_dir is not None:
            torch_save(self.run_dir / CHECKPOINT, self.state_dict())

    def try_resume(self) -> bool:
        """Load ``run_dir/checkpoint.pt`` if there is one."""
        path = self.run_dir / CHECKPOINT if self.run_dir else None
        if path is None or not path.exists():
            return False
        try:
            # on the CPU: RNG states must stay CPU ByteTensors; load_state_dict moves the rest to the device
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
            raise TrainingError(f"checkpoint {path} cannot be read ({err}); it is damaged: delete it to "
                                "start the run again, or restore it from a backup") from err
        self.load_state_dict(state)
        return True

    # ------------------------------------------------------------------------------------ training
    def train_step(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, stats: torch.Tensor) -> None:
        """One optimizer step over the sampled path(s); accumulates [loss_sum, correct, count] into stats."""
        tc = self.config.train
        self.optimizer.zero_grad(set_to_none=not tc.zero_filled_grads)
        paths = self.path_sampler.sample()
        weights = self.data_sampler.loss_weights(idx)
        if tc.channels_last and x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        for n, (arch, path_weight) in enumerate(paths):
            with self._autocast():
                logits = self.model(x, arch)
                per_sample = F.cross_entropy(logits.float(), y, reduction="none")
            loss = (per_sample * weights).mean() if weights is not None else per_sample.mean()
            self.scaler.scale(loss * path_weight).backward()
            if n == 0:
                self.data_sampler.observe(idx, logits.detach().float(), y)
                stats += torch.stack([per_sample.detach().sum(), (logits.argmax(1) == y).sum().float(),
                                      torch.full((), float(len(y)), device=y.device)])
        self.scaler.unscale_(self.optimizer)
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters(), tc.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.path_sampler.observe(self.model, [arch for arch, _ in paths])

    def parameters(self) -> list[torch.nn.Parameter]:
        """The model's parameters, listed once per model (walking a supernet's modules every step cost 8 %)."""
        if getattr(self, "_parameters_of", None) is not self.model:
            self._parameters, self._parameters_of = list(self.model.parameters()), self.model
        return self._parameters

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def run_epoch(self) -> dict:
        """Train the rest of the current epoch; returns its summary."""
        tc = self.config.train
        if self.step == 0:
            self.path_sampler.start_epoch(self.epoch, tc.epochs)
            self.order = self.data_sampler.epoch_order(self.epoch, tc.epochs)
            self.stats = torch.zeros(3, device=self.device)
        start = time.perf_counter()
        batches = self.epoch_batches()
        bar = progress_bar(tc.progress, len(batches), self.step, f"epoch {self.epoch + 1}/{tc.epochs}")
        for b, (x, y) in enumerate(self.epoch_images(batches), start=self.step):
            self.train_step(x, y, batches[b], self.stats)
            self.step = b + 1
            bar.update(1)
            if tc.checkpoint_every_steps and self.step % tc.checkpoint_every_steps == 0 and self.step < len(batches):
                self.elapsed += time.perf_counter() - start
                start = time.perf_counter()
                self.save_checkpoint()
        bar.close()
        self.elapsed += time.perf_counter() - start
        loss_sum, correct, count = self.stats.tolist()  # one host sync per epoch
        if not math.isfinite(loss_sum):
            raise TrainingError(f"the training loss became {loss_sum} in epoch {self.epoch + 1}: lower train.lr, keep "
                                "train.grad_clip > 0, or disable train.amp; the last good checkpoint is kept in "
                                f"{self.run_dir or '(no run_dir)'}")
        return {"epoch": self.epoch + 1, "train_loss": loss_sum / max(count, 1),
                "train_acc": 100.0 * correct / max(count, 1), "lr": self.optimizer.param_groups[0]["lr"],
                "elapsed_s": round(self.elapsed, 3), **sampling_summary(self.path_sampler, self.data_sampler)}

    def epoch_images(self, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Images x [b, C, H, W] and labels y [b] of this process's rows of ``batches[self.step:]``."""
        if self.loader is not None:
            for x, y, _ in self.loader.read(self.epoch, self.order, self.step):
                yield x, y
            return
        rows = slice(self.shard[0], None, self.shard[1])
        for idx in batches[self.step:]:
            x, y = self.train_data.batch(idx, self.config.data.augment, self.augment_gen)
            yield x[rows], y[rows]

    def epoch_batches(self) -> list[torch.Tensor]:
        """The dataset indices of every step of this epoch (a family interleaves its members' orders)."""
        return list(self.order.to(self.device).split(self.config.train.batch_size))  # one copy per epoch, no sync

    def run(self, resume: bool = True) -> TrainResult:
        """Train to ``config.train.epochs`` epochs, checkpointing every epoch; resumes when possible."""
        if resume:
            self.try_resume()
        if self.run_dir is not None:
            write_json(self.run_dir / "config.json", self.config.to_dict())
        while self.epoch < self.config.train.epochs:
            summary = self.run_epoch()
            for callback in self.epoch_callbacks:
                summary.update(callback(self, summary) or {})
            self.history.append(summary)
            self.epoch, self.step, self.order = self.epoch + 1, 0, None
            self.save_checkpoint()
        result = TrainResult(self.model, self.history, self.elapsed, str(self.device), self.run_dir, self.tick_cpu())
        if self.run_dir is not None:
            torch_save(self.run_dir / "supernet.pt",
                       {"config": self.config.to_dict(), "model": self.model.state_dict()})
            write_json(self.run_dir / "train.json", {"history": self.history, **provenance(
                self.config, self.config.train.seed, self.device, self.elapsed)})
        return result


def train_supernet(config: RunConfig, run_dir: str | Path | None = None, splits: Splits | FolderSplits | None = None,
                   resume: bool = True, epoch_callbacks=None) -> TrainResult:
    """Train a supernet (any space) as ``config`` says (resuming ``run_dir`` if it holds a checkpoint)."""
    return Trainer(config, run_dir, splits, epoch_callbacks).run(resume=resume)


def load_supernet(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """The trained supernet and config that a run directory holds."""
    path = Path(run_dir) / "supernet.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: train first (python -m pada_lite train --out {run_dir}) "
                                "or pass the folder of a finished run")
    state = torch.load(path, map_location=device, weights_only=False)
    config = RunConfig.from_dict(state["config"])
    model = build_supernet(config.space).to(device)
    model.load_state_dict(state["model"])
    return model.eval(), config


def restore_zero_grads(model: torch.nn.Module, indices: list[int]) -> None:
    """Give the parameters that had a gradient at the checkpoint a zero one again: with zero-filled gradients, SGD
    keeps updating (weight decay, momentum) every parameter that has one, so resuming must restore the set."""
    params = list(model.parameters())
    for i in indices:
        params[i].grad = torch.zeros_like(params[i])


def check_same_config(saved: dict, current: dict) -> None:
    """Raise when a checkpoint was written by a run of another identity (:func:`pada_lite.runner.identity`: the
    config's neutral fields, such as progress and device, may differ)."""
    from .runner import config_diff
    diffs = config_diff(RunConfig.from_dict(saved), RunConfig.from_dict(current))
    if diffs:
        raise TrainingError("the checkpoint belongs to a run with another config (" + "; ".join(diffs) +
                            "): use a new --out folder, or delete the checkpoint to start over")


def amp_dtype_for(device: torch.device):
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False, mininterval=1.0)
