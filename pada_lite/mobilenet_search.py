"""Searching the MobileNet (ProxylessNAS) space under a FLOPs limit, as SPOS does: train a single-path supernet
(optionally only on paths within a FLOPs range), then run an evolution whose fitness is the validation accuracy of
each candidate with inherited weights after recalibrating its BN statistics on training batches; random search under
the same limit and budget is the baseline.

Presets: ``lite`` (Fashion-MNIST at 28 px, width 0.35, 11 choice blocks, CPU minutes, a shortened protocol) and
``full`` (ImageNet at 224 px, the ProxylessNAS space and SPOS's search settings, GPU).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .config import DataConfig, RunConfig, TrainConfig
from .data import ImageData
from .evaluation import recalibrate_bn
from .provenance import provenance, write_json
from .search import SearchResult, evolutionary_search, random_search
from .spaces.mobilenet import FlopsTable, MobileNetArchSpace, MobileNetSupernetConfig, arch_to_str


@dataclass
class SearchConfig:
    """The search under a FLOPs limit (defaults: SPOS's evolution)."""

    flops_limit: float = 400.0         # M FLOPs (MACs) at the space's input size; PA&DA's ImageNet arch: ~399 M
    population: int = 50               # SPOS: 50 (half mutations, half crossovers per generation)
    iterations: int = 20               # SPOS: 20 generations -> population * iterations distinct candidates
    parents: int = 10                  # SPOS: the top 10 breed
    mutation_prob: float = 0.1         # SPOS: each block redrawn with p = 0.1
    random_search: bool = True         # also run random search with the same budget and limit (the baseline)
    bn_batches: int = 10               # training batches to recalibrate BN on, per candidate
    bn_batch_size: int = 128
    eval_batch_size: int = 500         # validation images per forward pass
    seed: int = 0

    @property
    def budget(self) -> int:
        """Distinct candidates evaluated (SPOS: 50 x 20 = 1000)."""
        return self.population * self.iterations

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def lite() -> tuple[RunConfig, SearchConfig]:
    """CPU preset: the space shrunk to Fashion-MNIST (28 px, 1 channel, width 0.35, 2/2/2/2/2/1 blocks with strides
    1/2/2/1/2/1 after a stride-2 stem, head 256) and a shortened protocol (10 supernet epochs on 10k images, an
    evolution of 20 x 8 candidates with BN recalibrated on 2 x 128 images and validated on 1000 held-out images)."""
    space = MobileNetSupernetConfig(width_mult=0.35, input_size=28, in_channels=1, num_classes=10, stem_stride=2,
                                    stage_blocks=(2, 2, 2, 2, 2, 1), stage_strides=(1, 2, 2, 1, 2, 1),
                                    head_channels=256)
    run = RunConfig(name="mobilenet-lite", space=space,
                    data=DataConfig(image_size=28, train_size=10000, valid_size=1000),
                    train=TrainConfig(epochs=10, batch_size=128, lr=0.1, weight_decay=4e-5, pa_scope="edge",
                                      progress=False))
    return run, SearchConfig(flops_limit=2.0, population=20, iterations=8, parents=5, bn_batches=2,
                             eval_batch_size=1000)


def full() -> tuple[RunConfig, SearchConfig]:
    """GPU preset: the ProxylessNAS space on ImageNet at 224 px and SPOS's evolution under 400 M FLOPs.

    The supernet needs ImageNet through :mod:`pada_lite.data` (ImageFolder), which the in-memory Trainer does not read.
    """
    run = RunConfig(name="mobilenet-full", space=MobileNetSupernetConfig(),
                    data=DataConfig(dataset="imagenet", image_size=224, train_size=None, valid_size=50000),
                    train=TrainConfig(epochs=120, batch_size=1024, lr=0.5, weight_decay=4e-5, pa_scope="edge",
                                      amp=True, channels_last=True))
    return run, SearchConfig()


PRESETS = {"lite": lite, "full": full}


def preset(name: str) -> tuple[RunConfig, SearchConfig]:
    """A named preset (``lite`` or ``full``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown mobilenet preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def calibration_batches(train: ImageData, count: int, batch_size: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` fixed batches of training images (the same for every candidate), normalised, on the data's device."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count * batch_size]
    return [train.batch(idx)[0] for idx in order.split(batch_size)]


@torch.no_grad()
def accuracy(model: torch.nn.Module, arch, data: ImageData, batch_size: int = 500) -> float:
    """Top-1 accuracy (%) of path ``arch`` of ``model`` on ``data`` (model in its current mode)."""
    correct = torch.zeros((), device=data.device)
    for idx in torch.arange(len(data), device=data.device).split(batch_size):
        x, y = data.batch(idx)
        correct += (model(x, arch).argmax(1) == y).sum()
    return float(100.0 * correct / len(data))


def recalibrated_fitness(model: torch.nn.Module, batches: Sequence[torch.Tensor], valid: ImageData,
                         batch_size: int = 500):
    """Fitness of archs: validation accuracy (%) with inherited weights after recalibrating BN on ``batches``."""
    def fitness(archs):
        return np.array([accuracy(recalibrate_bn(model, arch, batches), arch, valid, batch_size) for arch in archs])
    return fitness


def search_supernet(model: torch.nn.Module, space: MobileNetSupernetConfig, train: ImageData, valid: ImageData,
                    config: SearchConfig) -> dict:
    """Evolution (and random search) under ``config.flops_limit`` on a trained supernet; a JSON-able record."""
    archs = MobileNetArchSpace(space, config.flops_limit)
    batches = calibration_batches(train, config.bn_batches, config.bn_batch_size, config.seed)
    fitness = recalibrated_fitness(model, batches, valid, config.eval_batch_size)
    start = time.perf_counter()
    evolution = evolutionary_search(fitness, config.budget, config.population, config.parents, config.mutation_prob,
                                    config.seed, arch_space=archs)
    record = {"evolution": _summary(evolution, archs.table), "evolution_s": round(time.perf_counter() - start, 3)}
    if config.random_search:
        start = time.perf_counter()
        record["random"] = _summary(random_search(fitness, config.budget, config.seed, arch_space=archs), archs.table)
        record["random_s"] = round(time.perf_counter() - start, 3)
    return record


def _summary(result: SearchResult, table: FlopsTable) -> dict:
    return {**result.as_dict(), "best_mflops": table.mflops(result.best),
            "mflops": [table.mflops(a) for a in result.evaluated]}


def run_search(run: RunConfig, config: SearchConfig, out: str | Path, resume: bool = True) -> dict:
    """Train (or resume) the supernet of ``run`` in ``out/supernet``, search it, write ``out/search.json``."""
    from .data import load_splits
    from .training import train_supernet
    out = Path(out)
    splits = load_splits(run.data)
    if splits.valid is None:
        raise ValueError("the search validates on held-out training images: set data.valid_size > 0")
    start = time.perf_counter()
    trained = train_supernet(run, out / "supernet", splits, resume=resume)
    device = next(trained.model.parameters()).device
    record = search_supernet(trained.model, run.space, splits.train.to(device), splits.valid.to(device), config)
    best = record["evolution"]
    payload = {"arch": best["best"], "mflops": best["best_mflops"], "flops_limit": config.flops_limit,
               "flops_convention": "multiply-accumulates of convolutions and linear layers (ProxylessNAS/SPOS 'FLOPs')",
               "fitness": best["best_fitness"], "search_config": config.to_dict(), "supernet_history": trained.history,
               **record, **provenance(run, run.train.seed, device, time.perf_counter() - start)}
    write_json(out / "search.json", payload)
    return payload


def describe(arch, space: MobileNetSupernetConfig) -> str:
    """``arch`` as text with its FLOPs."""
    return f"{arch_to_str(arch)} ({FlopsTable(space).mflops(arch):.2f} M FLOPs)"
