"""Stand-alone training of any fixed network (a searched genotype, a MobileNet child) with exact checkpoint/resume.

The protocol of the DARTS evaluation, made generic: SGD with momentum, a per-epoch cosine learning rate, gradient
clipping, cutout, drop-path, an auxiliary head and label smoothing, AMP and channels_last on CUDA.

What a model may expose (all optional):

- ``drop_path_prob``: an attribute; it is set before every epoch to ``config.drop_path_prob * epoch / epochs``
  (DARTS raises it linearly from 0).
- an auxiliary head: in training mode ``forward`` returns ``(logits, aux_logits)``; the loss is
  ``CE(logits) + config.auxiliary_weight * CE(aux_logits)``. In evaluation mode it returns logits.

Data sources: a :class:`pada_lite.data.ImageData` (held in memory; this module shuffles, crops/flips and applies
cutout on the device, from its own generators, so a resumed run sees the same batches) or any iterable of
``(images, labels, ...)`` batches such as a ``DataLoader`` (its own transforms augment; cutout is still applied here;
shuffling draws from torch's global RNG, which the checkpoint restores).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from .config import ConfigError
from .data import ImageData
from .provenance import provenance, torch_save, write_json
from .runner import config_diff, neutral
from .training import TrainingError, amp_dtype_for, progress_bar, resolve_device, rng_state, set_rng_state

CHECKPOINT = "retrain_checkpoint.pt"
RESULT = "retrain.json"


@dataclass
class RetrainConfig:
    """Stand-alone training (defaults: the DARTS CIFAR-10 evaluation protocol)."""

    epochs: int = 600                  # training epochs
    batch_size: int = 96               # images per step
    lr: float = 0.025                  # initial SGD learning rate, cosine-annealed per epoch to lr_min
    lr_min: float = 0.0                # final learning rate
    momentum: float = 0.9
    nesterov: bool = False             # DARTS: plain momentum
    weight_decay: float = 3e-4
    grad_clip: float = 5.0             # max global gradient L2 norm (<= 0: no clipping)
    augment: bool = True               # random crop (pad 4) + horizontal flip (ImageData sources only)
    cutout: int = 16                   # side of the cutout square in pixels (0: none)
    drop_path_prob: float = 0.2        # final drop-path probability (models with a drop_path_prob attribute)
    auxiliary_weight: float = 0.4      # weight of the auxiliary head's loss (models that return (logits, aux))
    label_smoothing: float = 0.0       # cross-entropy label smoothing (ImageNet protocols: 0.1)
    amp: bool = True                   # bfloat16/float16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True         # channels_last memory format on CUDA (ignored on CPU)
    device: str = neutral("auto")      # auto (cuda if available) | cpu | cuda | cuda:N (may change on resume)
    seed: int = 0                      # seeds data order, augmentation, drop-path (weights: the caller's model)
    eval_every: int = 0                # also measure test accuracy every N epochs (0: only after the last)
    eval_batch_size: int = 500
    progress: bool = neutral(False)    # tqdm progress bar (may change on resume)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"retrain.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"retrain.lr must be > 0, got {self.lr}")
        for name in ("drop_path_prob", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"retrain.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.cutout < 0 or self.auxiliary_weight < 0 or self.eval_every < 0:
            raise ConfigError("retrain.cutout, retrain.auxiliary_weight and retrain.eval_every must be >= 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RetrainResult:
    """What a stand-alone training run leaves behind."""

    model: torch.nn.Module
    test_acc: float
    params: int                        # parameters without the auxiliary head
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    device: str = "cpu"


def count_parameters(model: torch.nn.Module, exclude: str = "auxiliary") -> int:
    """Parameters of ``model`` except those whose name contains ``exclude`` (DARTS counts without its aux head)."""
    return sum(p.numel() for name, p in model.named_parameters() if not (exclude and exclude in name))


def cutout_(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square per image at a uniform centre, clipped at the border. x: [B,C,H,W]."""
    b, _, h, w = x.shape
    gen_device = generator.device if generator is not None else torch.device("cpu")
    centre = torch.stack([torch.randint(0, h, (b,), generator=generator, device=gen_device),
                          torch.randint(0, w, (b,), generator=generator, device=gen_device)], 1).to(x.device)  # [B, 2]
    rows = torch.arange(h, device=x.device).view(1, h) - centre[:, :1]              # [B, H]
    cols = torch.arange(w, device=x.device).view(1, w) - centre[:, 1:]              # [B, W]
    inside_r = (rows >= -(size // 2)) & (rows < size - size // 2)
    inside_c = (cols >= -(size // 2)) & (cols < size - size // 2)
    hole = inside_r.view(b, 1, h, 1) & inside_c.view(b, 1, 1, w)                     # [B, 1, H, W]
    return x.masked_fill_(hole, 0.0)


class Retrainer:
    """One stand-alone training run of ``model``; ``run()`` trains from scratch or resumes ``run_dir``'s checkpoint."""

    def __init__(self, model: torch.nn.Module, train_data: ImageData | Iterable, test_data: ImageData | Iterable,
                 config: RetrainConfig, run_dir: str | Path | None = None, info: dict | None = None):
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.info = dict(info or {})                     # what the model is (genotype, space, ...): recorded
        self.device = resolve_device(config.device)
        on_cuda = self.device.type == "cuda"
        self.channels_last = config.channels_last and on_cuda
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_model = self.model                    # what training steps call (a DDP wrapper under torchrun)
        self.train_data = train_data.to(self.device) if isinstance(train_data, ImageData) else train_data
        self.test_data = test_data.to(self.device) if isinstance(test_data, ImageData) else test_data
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=config.momentum,
                                         nesterov=config.nesterov, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, config.epochs, config.lr_min)
        self.order_gen = torch.Generator().manual_seed(config.seed + 1)
        self.augment_gen = torch.Generator(device=self.device).manual_seed(config.seed + 2)
        torch.manual_seed(config.seed + 3)               # drop-path masks and DataLoader shuffling
        self.amp_dtype = amp_dtype_for(self.device) if config.amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.epoch, self.history, self.elapsed = 0, [], 0.0

    # ------------------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly."""
        return {"config": self.config.to_dict(), "info": self.info, "epoch": self.epoch,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": rng_state({"order": self.order_gen, "augment": self.augment_gen}),
                "history": self.history, "elapsed": self.elapsed}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; refuses a checkpoint of another config or model."""
        diffs = config_diff(RetrainConfig(**state["config"]), self.config)  # the runner's one identity rule
        if json.loads(json.dumps(state.get("info"))) != json.loads(json.dumps(self.info)):
            diffs.append(f"model: checkpoint {state.get('info')} vs now {self.info}")
        if diffs:
            raise TrainingError("the retrain checkpoint belongs to another run (" + "; ".join(diffs) +
                                "): use a new run folder, or delete the checkpoint to start over")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], {"order": self.order_gen, "augment": self.augment_gen})
        self.epoch, self.history, self.elapsed = state["epoch"], state["history"], state["elapsed"]

    def try_resume(self) -> bool:
        """Load ``run_dir``'s checkpoint if there is one."""
        path = self.run_dir / CHECKPOINT if self.run_dir else None
        found = path is not None and path.exists()
        if found:
            try:  # on the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
                raise TrainingError(f"checkpoint {path} cannot be read ({err}): delete it to start again") from err
            self.load_state_dict(state)
        return found

    # ------------------------------------------------------------------------------------ training
    def _autocast(self):
        return nullcontext() if self.amp_dtype is None else torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        if isinstance(self.train_data, ImageData):
            order = torch.randperm(len(self.train_data), generator=self.order_gen).to(self.device)
            for idx in order.split(c.batch_size):
                yield self.train_data.batch(idx, c.augment, self.augment_gen)
        else:
            for batch in self.train_data:
                yield batch[0].to(self.device, non_blocking=True), batch[1].to(self.device, non_blocking=True)

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            out = self.train_model(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.config.label_smoothing)
        if aux is not None and self.config.auxiliary_weight > 0:
            loss = loss + self.config.auxiliary_weight * F.cross_entropy(
                aux.float(), y, label_smoothing=self.config.label_smoothing)
        return loss, logits

    def run_epoch(self) -> dict:
        """Train one epoch; returns its summary."""
        c = self.config
        self.model.train()
        if hasattr(self.model, "drop_path_prob"):
            self.model.drop_path_prob = c.drop_path_prob * self.epoch / c.epochs
        stats = torch.zeros(3, device=self.device)      # [loss_sum, correct, count]: one host sync per epoch
        start = time.perf_counter()
        bar = progress_bar(c.progress, None, 0, f"epoch {self.epoch + 1}/{c.epochs}")
        for x, y in self._train_batches():
            if c.cutout:
                x = cutout_(x, c.cutout, self.augment_gen)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            self.optimizer.zero_grad(set_to_none=True)
            loss, logits = self._loss(x, y)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            if c.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            stats += torch.stack([loss.detach() * len(y), (logits.argmax(1) == y).sum().float(),
                                  torch.full((), float(len(y)), device=self.device)])
            bar.update(1)
        bar.close()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.elapsed += time.perf_counter() - start
        loss_sum, correct, count = self.reduce_stats(stats).tolist()
        if not math.isfinite(loss_sum):
            raise TrainingError(f"the training loss became {loss_sum} in epoch {self.epoch + 1}: lower retrain.lr, "
                                "keep retrain.grad_clip > 0, or disable retrain.amp; the last good checkpoint is in "
                                f"{self.run_dir or '(no run_dir)'}")
        return {"epoch": self.epoch + 1, "train_loss": loss_sum / max(count, 1),
                "train_acc": 100.0 * correct / max(count, 1), "lr": lr, "elapsed_s": round(self.elapsed, 3)}

    def reduce_stats(self, stats: torch.Tensor) -> torch.Tensor:
        """The epoch's [loss_sum, correct, count] over all processes (one process: as they are)."""
        return stats

    @torch.no_grad()
    def evaluate(self) -> float:
        """Top-1 accuracy (%) on the test data, in evaluation mode."""
        self.model.eval()
        correct = torch.zeros((), device=self.device)
        count = 0
        if isinstance(self.test_data, ImageData):
            batches = (self.test_data.batch(idx) for idx in
                       torch.arange(len(self.test_data), device=self.device).split(self.config.eval_batch_size))
        else:
            batches = ((b[0].to(self.device), b[1].to(self.device)) for b in self.test_data)
        for x, y in batches:
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                logits = self.model(x)
            correct += (logits.argmax(1) == y).sum()
            count += len(y)
        return 100.0 * float(correct) / max(count, 1)

    def run(self, resume: bool = True) -> RetrainResult:
        """Train to ``config.epochs``, checkpointing every epoch; resumes when possible; writes retrain.json."""
        if resume:
            self.try_resume()
        c = self.config
        while self.epoch < c.epochs:
            summary = self.run_epoch()
            last = self.epoch + 1 == c.epochs
            if last or (c.eval_every and (self.epoch + 1) % c.eval_every == 0):
                summary["test_acc"] = self.evaluate()
            self.history.append(summary)
            self.epoch += 1
            if self.run_dir is not None:
                torch_save(self.run_dir / CHECKPOINT, self.state_dict())
        test_acc = self.history[-1]["test_acc"] if self.history and "test_acc" in self.history[-1] else self.evaluate()
        result = RetrainResult(self.model, test_acc, count_parameters(self.model), self.history, self.elapsed,
                               str(self.device))
        if self.run_dir is not None:
            write_json(self.run_dir / RESULT, {"test_acc": test_acc, "params": result.params, "info": self.info,
                                               "history": self.history,
                                               **provenance(c, c.seed, self.device, self.elapsed)})
        return result


def retrain(model: torch.nn.Module, train_data: ImageData | Iterable, test_data: ImageData | Iterable,
            config: RetrainConfig, run_dir: str | Path | None = None, info: dict | None = None,
            resume: bool = True) -> RetrainResult:
    """Train ``model`` stand-alone as ``config`` says (resuming ``run_dir`` if it holds a checkpoint)."""
    return Retrainer(model, train_data, test_data, config, run_dir, info).run(resume=resume)
