"""Search and retrain in the DARTS cell space: presets, the supernet search, genotype files, the lite comparison.

A search trains a single-path DARTS supernet with :class:`pada_lite.training.Trainer` (SPOS or PA&DA samplers), then
scores candidates by their accuracy with inherited weights on a held-out split of the training set (the supernet's
BN uses batch statistics, so no per-candidate recalibration is needed), runs the SPOS evolution and a random search
of the same budget under a parameter limit, and writes the best genotype with provenance. A retrain trains a
genotype's stand-alone network with :mod:`pada_lite.retrain`.

The lite comparison (:func:`run_lite_comparison`) is a list of units (one search or one retrain each), every unit
written to its own JSON file when it finishes, so an interrupted run continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, DataConfig, RunConfig, TrainConfig
from .data import ImageData, load_splits
from .paths import data_home, locate
from .provenance import provenance, read_json, write_json
from .retrain import RetrainConfig, RetrainResult, retrain
from .search import SearchResult, evolutionary_search, random_search
from .spaces.darts import (
    GENOTYPES,
    DartsArchSpace,
    DartsNetwork,
    DartsNetworkConfig,
    DartsSupernetConfig,
    Genotype,
    arch_to_genotype,
    genotype_to_str,
    str_to_genotype,
)
from .training import Trainer, seed_everything


@dataclass
class EvolutionConfig:
    """The SPOS evolutionary search and its random-search baseline (defaults: SPOS's settings)."""

    population: int = 50               # candidates per generation
    parents: int = 10                  # top candidates that mutate and cross over
    mutation_prob: float = 0.1         # per node: resample its input pair, and each of its two ops, with this prob
    budget: int = 1000                 # distinct candidates evaluated (SPOS: 20 generations x 50)
    random_budget: int = 1000          # candidates of the random-search baseline
    max_params: int | None = 4_000_000  # limit on the stand-alone network's parameters (None: no limit)
    eval_images: int | None = 10000    # held-out images per candidate (None: the whole held-out split)
    eval_batch_size: int = 500         # BN normalises with the statistics of each batch of this size
    seed: int = 0


@dataclass
class DartsPreset:
    """Everything a DARTS-space search and its retraining need."""

    name: str
    search: RunConfig                  # supernet training (space: DartsSupernetConfig; data.valid_size: held-out)
    evolution: EvolutionConfig
    network: DartsNetworkConfig        # the stand-alone network of a searched genotype
    retrain_data: DataConfig           # retraining data (train split) and test data
    retrain: RetrainConfig

    def to_dict(self) -> dict:
        return {"name": self.name, "search": self.search.to_dict(), "evolution": dataclasses.asdict(self.evolution),
                "network": dataclasses.asdict(self.network), "retrain_data": dataclasses.asdict(self.retrain_data),
                "retrain": self.retrain.to_dict()}


def lite() -> DartsPreset:
    """CPU: Fashion-MNIST 28x28. Supernet C=8, 5 cells, 6 epochs on 1.2k images; stand-alone C=8, 5 cells, 4 epochs.

    Sized for a 2-core CPU shared with other jobs (about 2 CPU-min per search, 0.5 per retrain). Short epochs give
    PA&DA several distribution updates (once per epoch). The regularisers of DARTS's 600-epoch schedule (cutout,
    drop-path, crop/flip) are off, as they only slow a 4-epoch training; the auxiliary head (weight 0.4) stays.
    """
    space = DartsSupernetConfig(channels=8, cells=5, in_channels=1, num_classes=10)
    network = DartsNetworkConfig(channels=8, cells=5, in_channels=1, num_classes=10, image_size=28)
    return DartsPreset(
        name="lite",
        search=RunConfig(name="darts-lite", space=space,
                         data=DataConfig(image_size=28, train_size=1200, valid_size=400, test_size=400),
                         train=TrainConfig(epochs=6, batch_size=32, lr=0.05, lr_min=0.001, weight_decay=3e-4,
                                           grad_clip=5.0, pa_scope="edge", progress=False,
                                           zero_filled_grads=False, separate_data_rng=False)),  # as it ran
        evolution=EvolutionConfig(population=8, parents=3, mutation_prob=0.1, budget=24, random_budget=24,
                                  max_params=50_000, eval_images=400, eval_batch_size=200),
        network=network,
        retrain_data=DataConfig(image_size=28, train_size=2000, test_size=2000),
        retrain=RetrainConfig(epochs=4, batch_size=64, lr=0.05, augment=False, cutout=0, drop_path_prob=0.0,
                              auxiliary_weight=0.4))


def paper() -> DartsPreset:
    """GPU, CIFAR-10: supernet 8 cells, C=16 on a 25k/25k split; retrain 20 cells, C=36, 600 epochs on 50k (DARTS)."""
    cifar = dict(dataset="cifar10", image_size=None, augment=True)
    return DartsPreset(
        name="paper",
        search=RunConfig(name="darts-paper", space=DartsSupernetConfig(channels=16, cells=8, in_channels=3),
                         data=DataConfig(**cifar, train_size=25000, valid_size=25000),
                         train=TrainConfig(epochs=50, batch_size=64, lr=0.025, lr_min=0.001, weight_decay=3e-4,
                                           grad_clip=5.0, pa_scope="edge", amp=True, channels_last=True)),
        evolution=EvolutionConfig(),
        network=DartsNetworkConfig(),
        retrain_data=DataConfig(dataset="cifar10", image_size=None, train_size=None, test_size=None),  # crop: retrain
        retrain=RetrainConfig())  # 600 epochs, batch 96, lr 0.025 cosine, wd 3e-4, cutout 16, drop-path 0.2, aux 0.4


PRESETS = {"lite": lite, "paper": paper}
SAMPLERS = {"spos": dict(path_sampler="uniform", data_sampler="uniform"),
            "pada": dict(path_sampler="importance", data_sampler="importance")}


def preset(name: str) -> DartsPreset:
    """A named DARTS preset (``lite`` or ``paper``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown DARTS preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def override_preset(p: DartsPreset, assignments: Sequence[str]) -> DartsPreset:
    """Apply ``part.field=value`` overrides (``--set``) to the preset's search, evolution, network, retrain_data and
    retrain parts; ``search.<section>.<field>`` reaches the supernet run (e.g. ``search.train.epochs=1``)."""
    from .config import override_parts
    names = ("search", "evolution", "network", "retrain_data", "retrain")
    return dataclasses.replace(p, **override_parts({n: getattr(p, n) for n in names}, assignments))


# ------------------------------------------------------------------------------------------------- search
def arch_space(p: DartsPreset) -> DartsArchSpace:
    """The search's space: the supernet's ops, the stand-alone network's parameter limit."""
    return DartsArchSpace(p.network, p.evolution.max_params, p.search.space.ops)


def supernet_fitness(model: torch.nn.Module, data: ImageData, batch_size: int):
    """archs -> accuracy (%) with inherited weights on ``data`` (batch-statistics BN: no recalibration)."""
    device = next(model.parameters()).device
    data = data.to(device)
    batches = torch.arange(len(data), device=device).split(batch_size)

    @torch.no_grad()
    def fitness(archs: Sequence[tuple]) -> np.ndarray:
        model.eval()
        correct = torch.zeros(len(archs), device=device)
        for idx in batches:
            x, y = data.batch(idx)
            for a, arch in enumerate(archs):
                correct[a] += (model(x, arch).argmax(1) == y).sum()
        return (100.0 * correct / len(data)).cpu().numpy()
    return fitness


def search(p: DartsPreset, sampler: str, out: str | Path, seed: int = 0, splits=None) -> dict:
    """Train the supernet with ``sampler`` (spos | pada; resumes ``out``), search it, write ``out/genotype.json``.

    ``splits``: the data (default: loaded as ``p.search.data`` says; its ``valid`` split scores the candidates)."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
    out = Path(out)
    config = dataclasses.replace(p.search, train=dataclasses.replace(p.search.train, seed=seed, **SAMPLERS[sampler]))
    if not config.data.valid_size:
        raise ConfigError("the search scores candidates on held-out training images: set search data.valid_size > 0")
    start = time.perf_counter()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:     # torchrun: data-parallel supernet training, rank 0 searches
        from .distributed import train_distributed
        trained = train_distributed(config, out / "supernet", splits)
        if int(os.environ.get("RANK", "0")) != 0:
            return {}
    else:
        trained = Trainer(config, out / "supernet", splits).run()
    held_out = (splits or load_splits(config.data)).valid
    device = next(trained.model.parameters()).device
    if p.evolution.eval_images is not None:
        held_out = held_out.subset(torch.arange(min(p.evolution.eval_images, len(held_out))))
    fitness = supernet_fitness(trained.model, held_out, p.evolution.eval_batch_size)
    space = arch_space(p)
    ev, search_start = p.evolution, time.perf_counter()
    evolution = evolutionary_search(fitness, ev.budget, ev.population, ev.parents, ev.mutation_prob, seed=ev.seed,
                                    arch_space=space)
    baseline = random_search(fitness, ev.random_budget, seed=ev.seed, arch_space=space)
    search_s = time.perf_counter() - search_start
    genotype = arch_to_genotype(evolution.best)
    record = {"genotype": genotype_to_str(genotype), "sampler": sampler, "supernet_accuracy": evolution.best_fitness,
              "params": space.params(evolution.best), "max_params": ev.max_params,
              "random_genotype": space.to_str(baseline.best), "random_supernet_accuracy": baseline.best_fitness,
              "evolution": _search_record(evolution, space), "random": _search_record(baseline, space),
              "supernet_train_s": trained.wall_time_s, "search_s": search_s,
              "supernet_history": trained.history,
              **provenance(p, seed, device, time.perf_counter() - start)}
    write_json(out / "genotype.json", record)
    return record


def _search_record(result: SearchResult, space: DartsArchSpace) -> dict:
    record = result.as_dict()
    record["params"] = [space.params(a) for a in result.evaluated]
    return record


def load_genotype(spec: str | Path) -> Genotype:
    """A genotype from a name (DARTS_V2), a genotype.json written by :func:`search`, or a genotype string."""
    text = str(spec)
    if text in GENOTYPES:
        return GENOTYPES[text]
    path = Path(text)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"genotype file {path} does not exist: pass a genotype.json written by "
                                    f"`search`, a name in {sorted(GENOTYPES)}, or a Genotype(...) string")
        text = path.read_text()
        if path.suffix == ".json":
            text = json.loads(text).get("genotype", "")
    return str_to_genotype(text)


# ------------------------------------------------------------------------------------------------ retrain
def count_macs(model: torch.nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass of one image (convolutions and linear layers), in eval mode."""
    from torch.utils.flop_counter import FlopCounterMode
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2


def build_network(p: DartsPreset, genotype: Genotype, seed: int) -> DartsNetwork:
    """The stand-alone network of ``genotype``, its weights initialised from ``seed``."""
    seed_everything(seed)
    return DartsNetwork(genotype, p.network)


def retrain_genotype(p: DartsPreset, genotype: Genotype, out: str | Path | None = None, seed: int = 0,
                     splits=None) -> tuple[RetrainResult, dict]:
    """Train ``genotype``'s network stand-alone with the preset's protocol; returns the result and its record."""
    splits = splits or load_splits(p.retrain_data)
    model = build_network(p, genotype, seed)
    macs = count_macs(model, splits.test.images.shape[1:])
    config = dataclasses.replace(p.retrain, seed=seed)
    info = {"space": "darts", "genotype": genotype_to_str(genotype), "network": dataclasses.asdict(p.network)}
    result = retrain(model, splits.train, splits.test, config, out, info)
    record = {"genotype": info["genotype"], "seed": seed, "test_acc": result.test_acc, "params": result.params,
              "macs": macs, "history": result.history,
              **provenance(config, seed, result.device, result.wall_time_s)}
    return result, record


# ------------------------------------------------------------------------------------------ lite comparison
LITE_OUT = data_home() / "results" / "darts_lite"  # units; summary: .json
PAPER_TEST_ACC = {"PA&DA (paper, CIFAR-10)": (97.52, 0.07), "DARTS V2 (paper, CIFAR-10)": (97.24, 0.09)}


@dataclass
class LiteComparison:
    """Issue 16's lite comparison: SPOS- and PA&DA-searched genotypes vs DARTS V2 and random genotypes."""

    seeds: tuple = (0, 1, 2)           # retraining seeds of every genotype
    random_genotypes: int = 5          # random genotypes under the search's parameter limit
    random_seed: int = 123             # draws them
    search_seed: int = 0


def comparison_units(c: LiteComparison) -> list[str]:
    """Unit names in run order: the two searches, then every genotype's retrain per seed."""
    labels = ["spos", "pada", "DARTS_V2"] + [f"random{i}" for i in range(c.random_genotypes)]
    return ["search_spos", "search_pada"] + [f"retrain_{g}_s{s}" for s in c.seeds for g in labels]


def random_genotypes(p: DartsPreset, c: LiteComparison) -> list[Genotype]:
    """``c.random_genotypes`` distinct genotypes drawn uniformly under the parameter limit."""
    space, rng, found = arch_space(p), np.random.default_rng(c.random_seed), {}
    while len(found) < c.random_genotypes:
        arch = space.random(rng)
        if space.is_valid(arch):
            found.setdefault(arch, None)
    return [arch_to_genotype(a) for a in found]


def _unit_genotype(name: str, units: Path, p: DartsPreset, c: LiteComparison) -> Genotype:
    label = name.split("_")[1] if not name.startswith("retrain_DARTS_V2") else "DARTS_V2"
    if label in SAMPLERS:
        return str_to_genotype(read_json(units / f"search_{label}.json")["genotype"])
    if label == "DARTS_V2":
        return GENOTYPES["DARTS_V2"]
    return random_genotypes(p, c)[int(label.removeprefix("random"))]


def load_lite_comparison(path: str | Path = LITE_OUT.with_suffix(".json")) -> dict:
    """The lite comparison's artifact, or an error naming the command that writes it."""
    path = locate(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `python -m pada_lite search --space darts --comparison` "
                                "(about 30 CPU-minutes, resumable)")
    return read_json(path)


def run_lite_comparison(out: str | Path = LITE_OUT, limit_units: int | None = None, work: str | Path = "runs",
                        p: DartsPreset | None = None, c: LiteComparison | None = None, workers: int = 1) -> dict:
    """Run the missing units (at most ``limit_units``; searches first, then retrains, each phase split over
    ``workers`` single-threaded processes), then write ``<out>.json``; finished units are kept."""
    p, c, out = p or lite(), c or LiteComparison(), Path(out)
    todo = [u for u in comparison_units(c) if not (out / f"{u}.json").exists()][:limit_units]
    for phase in ([u for u in todo if u.startswith("search_")], [u for u in todo if u.startswith("retrain_")]):
        shards = [phase[i::workers] for i in range(workers) if phase[i::workers]]
        if len(shards) <= 1:
            _run_units(phase, out, Path(work), p, c)
            continue
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(len(shards)) as pool:
            pool.starmap(_run_units, [(shard, out, Path(work), p, c) for shard in shards])
    return write_lite_summary(out, p, c)


def _run_units(names: Sequence[str], out: Path, work: Path, p: DartsPreset, c: LiteComparison) -> None:
    """Run comparison units one after the other, each written to ``out/<unit>.json`` when it finishes."""
    import multiprocessing
    if multiprocessing.current_process().name != "MainProcess":
        torch.set_num_threads(1)                       # a worker of a pool: one thread each
    for name in names:
        start_cpu = time.process_time()
        if name.startswith("search_"):
            record = search(p, name.removeprefix("search_"), work / out.name / name, seed=c.search_seed)
            record.pop("supernet_history", None)
        else:
            seed = int(name.rsplit("_s", 1)[1])
            _, record = retrain_genotype(p, _unit_genotype(name, out, p, c), work / out.name / name, seed)
        record["cpu_time_s"] = round(time.process_time() - start_cpu, 2)
        write_json(out / f"{name}.json", record)


def mean_ci(values: Sequence[float]) -> dict:
    """Mean and the half-width of its 95 % t confidence interval."""
    from scipy import stats
    v = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "ci95": half, "n": len(v), "values": v.tolist()}


def write_lite_summary(out: Path, p: DartsPreset, c: LiteComparison) -> dict:
    """Merge the finished units into ``<out>.json``: per genotype, test accuracy mean ± CI over seeds."""
    units = {path.stem: read_json(path) for path in sorted(out.glob("*.json"))}
    rows = []
    labels = ["spos", "pada", "DARTS_V2"] + [f"random{i}" for i in range(c.random_genotypes)]
    for label in labels:
        records = [units[f"retrain_{label}_s{s}"] for s in c.seeds if f"retrain_{label}_s{s}" in units]
        if records:
            rows.append({"label": label, "genotype": records[0]["genotype"], "params": records[0]["params"],
                         "macs": records[0]["macs"], "test_acc": mean_ci([r["test_acc"] for r in records]),
                         "seeds": [r["seed"] for r in records]})
    searches = {k.removeprefix("search_"): v for k, v in units.items() if k.startswith("search_")}
    summary = {"rows": rows, "searches": searches, "missing_units": [u for u in comparison_units(c) if u not in units],
               "cpu_time_s_total": round(sum(u.get("cpu_time_s", 0.0) for u in units.values()), 1),
               "wall_time_s_total": round(sum(u.get("wall_time_s", 0.0) for u in units.values()), 1),
               "paper": PAPER_TEST_ACC, "comparison": dataclasses.asdict(c),
               **provenance(p, None, "cpu")}
    write_json(out.with_suffix(".json"), summary)
    return summary
