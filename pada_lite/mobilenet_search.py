"""Searching the MobileNet (ProxylessNAS) space under a FLOPs limit, as SPOS does: train a single-path supernet
(optionally only on paths within a FLOPs range), then run an evolution whose fitness is the validation accuracy of
each candidate with inherited weights after recalibrating its BN statistics on training batches; random search under
the same limit and budget is the baseline.

Presets: ``lite`` (Fashion-MNIST at 28 px, width 0.35, 11 choice blocks, CPU minutes, a shortened protocol) and
``full`` (ImageNet at 224 px, the ProxylessNAS space and SPOS's search settings, GPU).
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .config import DataConfig, RunConfig, TrainConfig
from .data import FolderSplits, ImageData, ImageFolderLoader, Splits, decode_all, imagenet_folder
from .evaluation import recalibrate_bn
from .paths import data_home
from .provenance import provenance, write_json
from .retrain import RetrainConfig, Retrainer, RetrainResult
from .search import SearchResult, evolutionary_search, random_search
from .spaces.mobilenet import (
    FlopsTable,
    MobileNetArchSpace,
    MobileNetNetwork,
    MobileNetSupernetConfig,
    arch_to_str,
    check_arch,
)


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
        """The number of distinct candidates evaluated, population x iterations (SPOS 50 x 20 = 1000)."""
        return self.population * self.iterations

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def lite() -> tuple[RunConfig, SearchConfig]:
    """CPU preset: the space shrunk to Fashion-MNIST (28 px, 1 channel, width 0.35, 2/2/2/2/2/1 blocks with strides
    1/2/2/1/2/1 after a stride-2 stem, head 256) and a shortened protocol sized for a shared 2-core machine (6 supernet
    epochs on 8k images; an evolution of 16 x 5 candidates, parents 4, BN recalibrated on 2 x 128 training images,
    fitness on 500 held-out images)."""
    space = MobileNetSupernetConfig(width_mult=0.35, input_size=28, in_channels=1, num_classes=10, stem_stride=2,
                                    stage_blocks=(2, 2, 2, 2, 2, 1), stage_strides=(1, 2, 2, 1, 2, 1),
                                    head_channels=256)
    run = RunConfig(name="mobilenet-lite", space=space,
                    data=DataConfig(image_size=28, train_size=8000, valid_size=500),
                    train=TrainConfig(epochs=6, batch_size=128, lr=0.1, weight_decay=4e-5, pa_scope="edge",
                                      progress=False, zero_filled_grads=False,  # as the committed lite run
                                      separate_data_rng=False))
    return run, SearchConfig(flops_limit=2.0, population=16, iterations=5, parents=4, bn_batches=2,
                             eval_batch_size=500)


def full() -> tuple[RunConfig, SearchConfig]:
    """GPU preset: the ProxylessNAS space on ImageNet at 224 px and SPOS's evolution under 400 M FLOPs.

    ImageNet is read from ``data.root`` (``root/train``, 50,000 of its images held out for the search's fitness, as SPOS
    does) through :class:`~pada_lite.data.ImageFolderLoader`; set ``data.root`` (CLI: ``--data``) before training.
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


def run_search(run: RunConfig, config: SearchConfig, out: str | Path, resume: bool = True,
               workers: int = 8) -> dict | None:
    """Train (or resume) the supernet of ``run`` in ``out/supernet``, search it, write ``out/search.json``.

    ImageNet (``data.dataset="imagenet"``, ``data.root``) is read through ``workers`` loader processes. Under torchrun
    every process trains its share of each batch; rank 0 alone then searches (the others return None).
    """
    from .data import load_data
    out = Path(out)
    data = load_data(run.data, workers)
    if data.valid is None:
        raise ValueError("the search validates on held-out training images: set data.valid_size > 0")
    start = time.perf_counter()
    trained = _train_for_search(run, out / "supernet", data, resume)
    if trained is None:
        return None
    device = next(trained.model.parameters()).device
    calibration, valid = search_images(data, config)
    record = search_supernet(trained.model, run.space, calibration.to(device), valid.to(device), config)
    best = record["evolution"]
    payload = {"arch": best["best"], "mflops": best["best_mflops"], "flops_limit": config.flops_limit,
               "flops_convention": "multiply-accumulates of convolutions and linear layers (ProxylessNAS/SPOS 'FLOPs')",
               "fitness": best["best_fitness"], "search_config": config.to_dict(), "supernet_history": trained.history,
               **record, **provenance(run, run.train.seed, device, time.perf_counter() - start)}
    write_json(out / "search.json", payload)
    return payload


def _train_for_search(run: RunConfig, run_dir: Path, data, resume: bool):
    """The trained supernet: in this process, or data-parallel under torchrun (None on ranks other than 0)."""
    from .training import train_supernet
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return train_supernet(run, run_dir, data, resume=resume)
    from .distributed import train_distributed
    trained = train_distributed(run, run_dir, data, resume=resume)
    return trained if int(os.environ["RANK"]) == 0 else None


def search_images(data: Splits | FolderSplits, config: SearchConfig) -> tuple[ImageData, ImageData]:
    """The training images BN is recalibrated on and the held-out images candidates are scored on, in memory.

    Folder data are decoded once through a loader (the calibration images: ``bn_batches * bn_batch_size`` training
    images, drawn by ``config.seed``, with a fixed training crop each; the held-out images: center crops), so the
    1000 candidates of an evolution do not decode the validation images 1000 times.
    """
    if isinstance(data, Splits):
        return data.train, data.valid
    count = min(config.bn_batches * config.bn_batch_size, len(data.train))
    pick = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(config.seed))[:count]
    return (decode_all(data.train.subset(pick, seed=config.seed), data.workers, config.bn_batch_size),
            decode_all(data.valid, data.workers, config.eval_batch_size))


# ---------------------------------------------------------------------------------------------- retraining
def retrain_preset(name: str) -> RetrainConfig:
    """Stand-alone training of a searched arch: ``full`` (ImageNet) or ``lite`` (Fashion-MNIST, CPU seconds).

    ``full`` follows the ProxylessNAS reference code's ImageNet defaults (mit-han-lab/proxylessnas,
    search/imagenet_run_exp.py): 300 epochs, batch 256, SGD Nesterov momentum 0.9, lr 0.05 cosine, weight decay 4e-5,
    label smoothing 0.1, no gradient clipping (their dropout, 0.1 for the mobile net, is ``space.dropout``).
    """
    if name == "full":
        return RetrainConfig(epochs=300, batch_size=256, lr=0.05, nesterov=True, weight_decay=4e-5, grad_clip=0.0,
                             augment=False, cutout=0, drop_path_prob=0.0, auxiliary_weight=0.0, label_smoothing=0.1,
                             eval_batch_size=500)
    if name == "lite":
        return RetrainConfig(epochs=3, batch_size=128, lr=0.1, nesterov=True, weight_decay=4e-5, grad_clip=5.0,
                             augment=False, cutout=0, drop_path_prob=0.0, auxiliary_weight=0.0, label_smoothing=0.0,
                             amp=False, eval_batch_size=1000)
    raise ValueError(f"unknown mobilenet retrain preset {name!r}; choose full or lite")


FULL_RETRAIN_DROPOUT = 0.1  # before the classifier when retraining on ImageNet (ProxylessNAS mobile: 0.1)


class EpochBatches:
    """An :class:`~pada_lite.data.ImageFolderLoader` as the per-epoch iterable a Retrainer reads: each pass is the
    next epoch (``advance=False``: always epoch 0, for evaluation)."""

    def __init__(self, loader: ImageFolderLoader, advance: bool = True):
        self.loader, self.advance, self.epoch = loader, advance, 0

    def __iter__(self):
        epoch = self.epoch
        if self.advance:
            self.epoch += 1
        return iter(self.loader.epoch(epoch))


def imagenet_sources(root: str | Path, image_size: int = 224, batch_size: int = 256, seed: int = 0,
                     workers: int = 8, device: str = "cuda", channels_last: bool = True, rank: int = 0,
                     world_size: int = 1) -> tuple[EpochBatches, EpochBatches]:
    """Training and validation batches of an ImageNet folder (``root/train``, ``root/val``) for a Retrainer; under
    torchrun the training batches are this rank's rows of each global batch of ``batch_size``."""
    train = imagenet_folder(root, "train", image_size, seed)
    val = imagenet_folder(root, "val", image_size, seed)
    return (EpochBatches(ImageFolderLoader(train, batch_size, seed, workers, device, True, channels_last,
                                           rank=rank, world_size=world_size)),
            EpochBatches(ImageFolderLoader(val, batch_size, seed, workers, device, False, channels_last), False))


def retrain_arch(arch, space: MobileNetSupernetConfig, config: RetrainConfig, train, test,
                 run_dir: str | Path | None = None, seed: int = 0, resume: bool = True) -> RetrainResult:
    """Train ``arch`` from scratch (weights seeded by ``seed``; data order by ``config.seed``), resuming ``run_dir``;
    data-parallel (``pada_lite.distributed.DistributedRetrainer``) when a torch.distributed group is up."""
    arch = check_arch(arch, space)
    torch.manual_seed(seed)
    info = {"space": dataclasses.asdict(space), "arch": arch_to_str(arch), "mflops": FlopsTable(space).mflops(arch),
            "init_seed": seed}
    trainer = _retrainer_class()(MobileNetNetwork(arch, space), train, test, config, run_dir, info)
    if resume:
        trainer.try_resume()
    if isinstance(train, EpochBatches):
        train.epoch = trainer.epoch  # a resumed run continues with the epoch it stopped in
    return trainer.run(resume=False)


def _retrainer_class() -> type[Retrainer]:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        from .distributed import DistributedRetrainer
        return DistributedRetrainer
    return Retrainer


# ------------------------------------------------------------------------------------- the lite experiment
LITE_ARTIFACT = data_home() / "results" / "mobilenet_lite.json"
LITE_WORKDIR = Path("runs/mobilenet_lite")


@dataclass
class LiteExperimentConfig:
    """The lite Pareto experiment: one SPOS supernet, searches under each limit, retraining over seeds."""

    flops_limits: tuple = (1.8, 2.4)   # M FLOPs; the lite space spans 0.55-4.07 M, random archs 1.6-2.9 M (5-95 %)
    random_archs: int = 4              # unconstrained random archs retrained beside the searched ones
    arch_seed: int = 0                 # draws those random archs
    seeds: tuple = (0, 1, 2)           # retraining seeds (weights and data order)
    retrain_train_size: int = 5000     # Fashion-MNIST training images for retraining (from the supernet's 8k)
    retrain_test_size: int = 5000      # Fashion-MNIST test images the retrained archs are scored on

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def lite_retrain_data(config: LiteExperimentConfig | None = None) -> DataConfig:
    """The Fashion-MNIST images lite retraining trains and is scored on."""
    config = config or LiteExperimentConfig()
    return dataclasses.replace(lite()[0].data, train_size=config.retrain_train_size, valid_size=0,
                               test_size=config.retrain_test_size)


def _unit_done(payload: dict, key: str, fingerprint: dict) -> dict | None:
    unit = payload["units"].get(key)
    return unit if unit is not None and unit.get("fingerprint") == json_clean(fingerprint) else None


def json_clean(value):
    """``value`` as it reads back from JSON (tuples become lists)."""
    import json
    return json.loads(json.dumps(value))


def lite_experiment(out: str | Path = LITE_ARTIFACT, workdir: str | Path = LITE_WORKDIR,
                    config: LiteExperimentConfig | None = None, limit_units: int | None = None,
                    log=print) -> dict:
    """Run (or continue) the lite experiment; each finished unit is written to ``out`` at once (resumable per unit)."""
    from .data import load_splits
    from .provenance import read_json
    from .training import load_supernet, train_supernet
    config = config or LiteExperimentConfig()
    out, workdir = Path(out), Path(workdir)
    run, search_config = lite()
    payload = read_json(out) if out.exists() else {"units": {}}
    payload.update(config=config.to_dict(), supernet_config=run.to_dict(), search_config=search_config.to_dict(),
                   retrain_config=retrain_preset("lite").to_dict())
    budget = [limit_units if limit_units is not None else float("inf")]

    def save(key: str, fingerprint: dict, record: dict, device) -> dict:
        payload["units"][key] = {"fingerprint": json_clean(fingerprint), **record,
                                 **provenance(None, None, device, record.get("wall_time_s"))}
        write_json(out, payload)
        budget[0] -= 1
        log(f"unit {key} done ({record.get('wall_time_s', 0):.0f} s)")
        return payload["units"][key]

    splits = load_splits(run.data)
    supernet_fp = {"run": run.to_dict()}
    model = None
    if _unit_done(payload, "supernet", supernet_fp) is None:
        if budget[0] <= 0:
            return payload
        trained = train_supernet(run, workdir / "supernet", splits)
        model = trained.model
        save("supernet", supernet_fp, {"history": trained.history, "wall_time_s": trained.wall_time_s}, "cpu")
    picks = []
    for limit in config.flops_limits:
        search_fp = {"supernet": supernet_fp, "search": dataclasses.replace(search_config, flops_limit=limit).to_dict()}
        key = f"search@{limit:g}"
        unit = _unit_done(payload, key, search_fp)
        if unit is None:
            if budget[0] <= 0:
                return payload
            if model is None:
                model = (load_supernet(workdir / "supernet")[0] if (workdir / "supernet" / "supernet.pt").exists()
                         else train_supernet(run, workdir / "supernet", splits).model)
            start = time.perf_counter()
            record = search_supernet(model, run.space, splits.train, splits.valid,
                                     dataclasses.replace(search_config, flops_limit=limit))
            unit = save(key, search_fp, {**record, "wall_time_s": time.perf_counter() - start}, "cpu")
        picks += [unit["evolution"]["best"], unit["random"]["best"]]
    rng = np.random.default_rng(config.arch_seed)
    randoms = [arch_to_str(a) for a in MobileNetArchSpace(run.space).sample_valid(config.random_archs, rng)]
    payload["archs"] = {"searched": picks, "random": randoms}
    retrain_data = lite_retrain_data(config)
    data = load_splits(retrain_data)
    retrain_config = retrain_preset("lite")
    for arch in dict.fromkeys(picks + randoms):
        for seed in config.seeds:
            fp = {"arch": arch, "space": dataclasses.asdict(run.space), "data": dataclasses.asdict(retrain_data),
                  "retrain": dataclasses.replace(retrain_config, seed=seed).to_dict()}
            key = f"retrain/{arch}/s{seed}"
            if _unit_done(payload, key, fp) is not None:
                continue
            if budget[0] <= 0:
                return payload
            result = retrain_arch(tuple(arch.split("-")), run.space, dataclasses.replace(retrain_config, seed=seed),
                                  data.train, data.test, workdir / "retrain" / arch / f"s{seed}", seed)
            save(key, fp, {"arch": arch, "seed": seed, "mflops": FlopsTable(run.space).mflops(arch.split("-")),
                           "test_acc": result.test_acc, "params": result.params, "history": result.history,
                           "wall_time_s": result.wall_time_s}, result.device)
    archs = list(dict.fromkeys(picks + randoms))
    fitness_fp = {"supernet": supernet_fp, "search": search_config.to_dict(), "archs": archs}
    if _unit_done(payload, "supernet_fitness", fitness_fp) is None and budget[0] > 0:
        if model is None:
            model = load_supernet(workdir / "supernet")[0]
        start = time.perf_counter()
        batches = calibration_batches(splits.train, search_config.bn_batches, search_config.bn_batch_size,
                                      search_config.seed)
        values = recalibrated_fitness(model, batches, splits.valid, search_config.eval_batch_size)(
            [tuple(a.split("-")) for a in archs])
        save("supernet_fitness", fitness_fp, {"archs": archs, "fitness": values.tolist(),
                                              "wall_time_s": time.perf_counter() - start}, "cpu")
    return payload
