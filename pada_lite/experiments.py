"""Named experiments on the lite benchmark; each writes result artifacts (JSON with provenance) under data/results/.

An experiment is a list of *units* (one supernet training + ranking each: a method, a setting and a seed), each a job
of kind ``supernet`` (:mod:`pada_lite.runner`). A unit's record (the supernet's accuracy for every evaluation arch,
its training history, provenance) is saved as soon as it finishes, and its training state after every epoch, so an
interrupted ``reproduce`` resumes where it stopped; a unit is re-run only when asked (``force``) or when its identity
changed. Units run in ``workers`` single-threaded processes (two on a 2-core CPU). Settings are typed: each is a
preset changed with :func:`vary` (``dataclasses.replace`` per section), never a list of strings. ``summarise`` turns
the units into the artifact the book loads and scores the rankings against the lite ground truth there, so a unit
never depends on the ground truth and the two can be computed in parallel.

- ``v2-main``: SPOS, FairNAS, PA only, DA only, PA&DA, PA&DA with unbiased weights, SPOS and PA&DA with freed
  gradients, on the lite benchmark v2 (the supernets have the ground truth's own networks); 5 paired seeds, the
  headline pair (SPOS, PA&DA) on 25; SPOS and PA&DA on the first 5 seeds also rank every 10 epochs.
- ``v2-ablations``: PA&DA with one setting changed (batch size at an equal number of steps, τ schedule, class-wise DA,
  per-edge PA), SPOS and PA&DA at twice the budget; 3 seeds; the reference rows are ``v2-main``'s units.
- ``v2-motivation``: SPOS supernets with 2, 3, 4, 5 candidate ops per edge, ranking the 13 archs built from 'none' and
  'nor_conv_3x3' against their own ground truth; 5 seeds.
- ``motivation`` (version 1, kept until ``v2-motivation`` replaces it in the book): the same on v1's 1-cell supernets,
  Kendall tau on the 64 conv archs. v1's ``main``, ``ablations`` and ``stability`` are retired (git history has them).
- ``smoke``: a seconds-long pipeline check with no ground truth.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .config import RunConfig, lite, lite_v1
from .paths import data_home, locate
from .provenance import provenance, read_json, write_json
from .runner import Context, Job, JobKind, load_record, neutral, recorded_identity, register, run_jobs
from .spaces import arch_to_str, conv_only_archs

SEEDS = (0, 1, 2)
RESULTS_DIR = data_home() / "results"
RANK_TEST_IMAGES = 3000         # test images each final ranking uses (169 archs x 3k images: ~90 s on one core)
EPOCH_RANK_TEST_IMAGES = 1000   # test images of the per-epoch rankings of the 64 conv archs (stability)
GV_SAMPLES, GV_BATCH = 16, 64   # gradient-variance measurement at every epoch end
LATE_EPOCHS = 10                # GV is also summarised as the mean over the last epochs: one 16-draw measurement
                                # is heavy-tailed under importance weights (1 / (N q) spans orders of magnitude)

METHODS = {  # name -> the train fields it sets
    "SPOS": {"path_sampler": "uniform", "data_sampler": "uniform"},
    "FairNAS": {"path_sampler": "fair", "data_sampler": "uniform"},
    "PA": {"path_sampler": "importance", "data_sampler": "uniform"},
    "DA": {"path_sampler": "uniform", "data_sampler": "importance"},
    "PA&DA": {"path_sampler": "importance", "data_sampler": "importance"},
}
MOTIVATION_OPS = {2: ["nor_conv_1x1", "nor_conv_3x3"],
                  3: ["skip_connect", "nor_conv_1x1", "nor_conv_3x3"],
                  4: ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"],
                  5: ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]}


class ExperimentError(RuntimeError):
    """Raised when an experiment's artifact is missing or stale; the message gives the command that fixes it."""


def vary(config: RunConfig, **sections: dict) -> RunConfig:
    """``config`` with fields of its sections replaced, e.g. ``vary(c, train={"epochs": 5})`` (validated)."""
    return dataclasses.replace(config, **{name: dataclasses.replace(getattr(config, name), **changes)
                                          for name, changes in sections.items()})


@dataclass
class SupernetJob:
    """The config of a supernet job: train ``run``'s supernet, then rank ``archs`` with its weights."""

    run: RunConfig
    archs: tuple                     # official arch strings ranked at the end
    rank_every_epoch: bool = False   # also rank the conv-only ones after every epoch (stability)
    experiment: str = neutral("")    # names only: the folder and setting the record belongs to
    label: str = neutral("")

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return {"run": self.run.to_dict(), "archs": list(self.archs), "rank_every_epoch": self.rank_every_epoch,
                "experiment": self.experiment, "label": self.label}

    @classmethod
    def from_dict(cls, d: dict) -> "SupernetJob":
        """Inverse of :meth:`to_dict`."""
        return cls(RunConfig.from_dict(d["run"]), tuple(d["archs"]), bool(d["rank_every_epoch"]),
                   d.get("experiment", ""), d.get("label", ""))


@dataclass
class Unit:
    """One supernet run of an experiment."""

    experiment: str                 # the folder its result is saved in (a shared reference run lives in one place)
    label: str                      # the setting, e.g. "PA&DA" or "batch=256"
    seed: int
    config: RunConfig
    rank_every_epoch: bool = False  # record per-epoch rankings (stability)

    @property
    def key(self) -> str:
        safe = "".join(c if c.isalnum() or c in "=.-" else "_" for c in self.label)
        return f"{safe}-seed{self.seed}"

    def job(self, results_dir: Path = RESULTS_DIR) -> Job:
        """The unit as a runner job: record ``<results>/<experiment>/<key>.json``, state in ``partial/<key>/``."""
        ops = set(self.config.space.ops)
        archs = tuple(arch_to_str(a) for a in evaluation_archs_for(self.experiment) if set(a) <= ops)
        folder = Path(results_dir) / self.experiment
        config = SupernetJob(self.config, archs, self.rank_every_epoch, self.experiment, self.label)
        return Job("supernet", self.key, config, folder / f"{self.key}.json", folder / "partial" / self.key)

    @property
    def identity(self) -> str:
        return self.job().identity


def base_config(**sections: dict) -> RunConfig:
    """The lite preset as every experiment uses it (no progress bars: the runner shows one), then ``sections``."""
    config = vary(lite_v1(), train={"progress": False, "zero_filled_grads": False,  # as v1 ran: freed gradients,
                                 "separate_data_rng": False},                  # one random stream
                  data={"test_size": RANK_TEST_IMAGES})
    return vary(config, **sections)


def _units(name: str, settings: dict[str, dict], seeds=SEEDS, base: dict | None = None, **kw) -> list[Unit]:
    """One unit per (setting, seed): ``settings`` maps a label to its section changes, applied after ``base``."""
    return [Unit(name, label, seed, vary(vary(base_config(**(base or {})), **changes), train={"seed": seed}), **kw)
            for label, changes in settings.items() for seed in seeds]


def motivation_units(seeds=(0, 1)) -> list[Unit]:
    settings = {f"{k} ops": {"space": {"ops": tuple(ops)}, "train": METHODS["SPOS"]}
                for k, ops in MOTIVATION_OPS.items()}
    return _units("motivation", settings, seeds)


# ---------------------------------------------------------------------------------- lite benchmark v2
V2_EPOCHS = 100        # supernet epochs of 20k images (157 steps of 128 each): where SPOS's tau levels off
V2_SEEDS = (0, 1, 2, 3, 4)
V2_ABLATION_SEEDS = (0, 1, 2)
V2_RANK_IMAGES = 10_000  # held-out training-set images of the final ranking (no network trained on them)
V2_METHODS = {**METHODS,  # the main table: the five methods, then the options whose effect the issue asks about
              "PA&DA unbiased": {**METHODS["PA&DA"], "importance_weighting": True},
              "SPOS freed grads": {**METHODS["SPOS"], "zero_filled_grads": False},
              "PA&DA freed grads": {**METHODS["PA&DA"], "zero_filled_grads": False}}
V2_POWER_METHODS = ("SPOS", "PA&DA")  # the headline comparison, run on more seeds for an 80 % power at 0.05
V2_POWER_SEEDS = tuple(range(25))  # its seeds: 25 reach 0.05 at the paired sd measured on V2_SEEDS (0.084)
V2_CURVES = ("SPOS", "PA&DA")  # methods ranked every 10 epochs (tau against epochs), at both budgets
V2_CURVE_SEEDS = (0, 1, 2, 3, 4)  # the seeds whose runs of those methods are ranked every 10 epochs


def v2_base_config(**sections: dict) -> RunConfig:
    """The v2 supernet: the lite preset (the ground truth's own networks on its 20k training images, ranked on 10k
    of its held-out images) named 'v2', without progress bars; then ``sections``."""
    config = dataclasses.replace(lite(), name="v2")
    return vary(vary(config, train={"epochs": V2_EPOCHS, "progress": False}), **sections)


def v2_units(name: str, settings: dict[str, dict], seeds) -> list[Unit]:
    """One v2 unit per (setting, seed), seed-major (every method of a seed before the next seed: paired
    differences exist from the first seeds on): ``settings`` maps a label to its train fields."""
    return [Unit(name, label, seed, v2_base_config(train={**changes, "seed": seed},
                                                    rank={"every_epochs": 10 if _curve(label, seed) else 0}))
            for seed in seeds for label, changes in settings.items()]


V2_MOTIVATION_OPS = {k: ("none", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3")[:k]
                     for k in (2, 3, 4, 5)}  # nested candidate op sets; each holds the ranked archs' two ops


def v2_motivation_units(seeds=V2_SEEDS) -> list[Unit]:
    """SPOS supernets with 2 to 5 candidate ops per edge, each ranking the 13 archs of 'none' and 'nor_conv_3x3'
    (:func:`pada_lite.evalset.motivation_archs`) against their own reliable ground truth."""
    return [Unit("v2-motivation", f"{k} ops", seed, v2_base_config(space={"ops": ops},
                                                                    train={**METHODS["SPOS"], "seed": seed}))
            for seed in seeds for k, ops in V2_MOTIVATION_OPS.items()]


def _curve(label: str, seed: int) -> bool:
    """Whether a v2 unit ranks every 10 epochs: SPOS and PA&DA (and their 2x-epoch runs) on the first five seeds
    (seeds added for power rank only at the end: measured, the curves and GV took 141 s of SPOS seed 1's 625 s)."""
    return seed in V2_CURVE_SEEDS and (label in V2_CURVES or label.removesuffix(" 2x epochs") in V2_CURVES)


def v2_main_units(seeds=None) -> list[Unit]:
    """SPOS, FairNAS, PA, DA, PA&DA, PA&DA with unbiased weights, SPOS and PA&DA with freed gradients on
    ``V2_SEEDS``, then the headline pair (SPOS, PA&DA) on the rest of ``V2_POWER_SEEDS``; every method on
    ``seeds`` when given."""
    if seeds is not None:
        return v2_units("v2-main", V2_METHODS, seeds)
    extra = [s for s in V2_POWER_SEEDS if s not in V2_SEEDS]
    return (v2_units("v2-main", V2_METHODS, V2_SEEDS) +
            v2_units("v2-main", {m: V2_METHODS[m] for m in V2_POWER_METHODS}, extra))


def v2_ablation_units(seeds=V2_ABLATION_SEEDS) -> list[Unit]:
    """PA&DA with one setting changed (batch size at an equal number of steps, tau schedule, class-wise DA, per-edge
    PA), and SPOS and PA&DA at twice the budget; the reference rows are the main experiment's units."""
    pada = V2_METHODS["PA&DA"]
    changes = {"batch=64": {"batch_size": 64, "epochs": V2_EPOCHS // 2},    # equal steps: epochs x 128 / batch
               "batch=256": {"batch_size": 256, "epochs": V2_EPOCHS * 2},
               "tau=constant 0.5": {"tau": 0.5}, "tau=cosine": {"tau": "cosine"},
               "DA class-wise": {"da_granularity": "class"}, "per-edge PA": {"pa_scope": "edge"}}
    settings = {k: {**pada, **v} for k, v in changes.items()}
    settings.update({f"{m} 2x epochs": {**V2_METHODS[m], "epochs": 2 * V2_EPOCHS} for m in V2_CURVES})
    reference = [u for u in v2_main_units(seeds) if u.label in V2_CURVES]
    return reference + v2_units("v2-ablations", settings, seeds)


SMOKE = {"data": {"train_size": 512, "test_size": 256, "image_size": 8}, "space": {"channels": 4, "cells_per_stage": 3},
         "train": {"epochs": 2, "batch_size": 64}, "rank": {"batch_size": 128}}


def smoke_units(seeds=(0,)) -> list[Unit]:
    """A seconds-long pipeline check (tiny data, no ground truth): SPOS and PA&DA, one seed."""
    settings = {k: {"train": METHODS[k]} for k in ("SPOS", "PA&DA")}
    return _units("smoke", settings, seeds[:1], base=SMOKE, rank_every_epoch=True)


EXPERIMENTS: dict[str, Callable[..., list[Unit]]] = {  # name -> units (each with its default seeds)
    "motivation": motivation_units, "smoke": smoke_units, "v2-main": v2_main_units, "v2-ablations": v2_ablation_units,
    "v2-motivation": v2_motivation_units}
BENCHMARK_OF = {"smoke": None, "v2-main": "v2", "v2-ablations": "v2",  # ground truth (benchmark.PLANS); else lite
                "v2-motivation": "v2-motivation"}


def benchmark_of(name: str) -> str | None:
    """The ground-truth plan experiment ``name`` is scored against (None: none, the smoke run)."""
    return BENCHMARK_OF.get(name, "lite")


# ------------------------------------------------------------------------------------------ running units
def unit_path(unit: Unit, results_dir: Path = RESULTS_DIR) -> Path:
    return unit.job(results_dir).path


def load_unit(unit: Unit, results_dir: Path = RESULTS_DIR) -> dict | None:
    """The saved record of ``unit`` if it has the unit's identity, else None."""
    return load_record(unit.job(results_dir))


@lru_cache(maxsize=None)
def evaluation_archs_for(name: str) -> tuple:
    """The archs the units of experiment ``name`` rank: the benchmark's evaluation set (16 conv archs for 'smoke')."""
    if name == "smoke":
        return tuple(conv_only_archs()[::4])
    from .benchmark import PLANS
    return tuple(PLANS[benchmark_of(name)].archs())


def _rank_callback(archs, test, batch_size, every: int = 1):
    """Epoch callback ranking ``archs`` on ``test`` every ``every`` epochs and after the last one."""
    from .evaluation import evaluate_archs

    def rank_epoch(trainer, summary):
        if (trainer.epoch + 1) % every and trainer.epoch + 1 != trainer.config.train.epochs:
            return {}
        acc = evaluate_archs(trainer.model, archs, test, batch_size)
        return {"epoch_supernet_acc": [round(float(a), 3) for a in acc]}

    return rank_epoch


def ranking_images(rank, splits):
    """The images a supernet is ranked on (``rank``: a RankConfig): the first ``rank.images`` of its split."""
    data = splits.valid if rank.split == "valid" else splits.test
    if data is None:
        raise ExperimentError("rank.split='valid' needs held-out images: set data.valid_size > 0")
    return data if rank.images is None else data.subset(np.arange(min(rank.images, len(data))))


def epoch_progress_callback(on_progress):
    """Epoch callback reporting one unit of work per epoch (and, once, the epochs restored from a checkpoint)."""
    reported = []

    def report(trainer, summary):
        if not reported and trainer.epoch:
            on_progress(trainer.epoch, True)
        reported.append(trainer.epoch)
        on_progress(1, False)

    return report


def train_and_rank(job: SupernetJob, context: Context) -> dict:
    """Train the job's supernet (resuming its partial state), rank its archs; the record."""
    from .evaluation import evaluate_archs
    from .spaces import str_to_arch
    from .training import Trainer
    from .variance import gradient_variance_callback
    config, splits = job.run, context.shared
    ranked = [str_to_arch(a) for a in job.archs]
    callbacks = [gradient_variance_callback(GV_SAMPLES, GV_BATCH)]
    if job.rank_every_epoch:
        sub = splits.test.subset(np.arange(min(EPOCH_RANK_TEST_IMAGES, len(splits.test))))
        conv = set(conv_only_archs())
        callbacks.append(_rank_callback([a for a in ranked if a in conv], sub, config.rank.batch_size))
    images = ranking_images(config.rank, splits)
    if config.rank.every_epochs:
        sub = images.subset(np.arange(min(config.rank.epoch_images, len(images))))
        callbacks.append(_rank_callback(ranked, sub, config.rank.batch_size, config.rank.every_epochs))
    callbacks.append(epoch_progress_callback(context.on_progress))
    start = time.perf_counter()
    result = Trainer(config, context.partial, splits, callbacks).run()
    train_time = result.wall_time_s  # the epochs' wall time across resumes (this process's alone undercounts)
    ranking_cpu = time.process_time()
    acc = evaluate_archs(result.model, ranked, images, config.rank.batch_size)
    cpu = result.cpu_time_s + time.process_time() - ranking_cpu
    return {"experiment": job.experiment, "label": job.label, "seed": config.train.seed, "archs": list(job.archs),
            "supernet_acc": [round(float(a), 3) for a in acc], "history": result.history,
            "train_time_s": round(train_time, 2), "cpu_time_s": round(cpu, 2),
            **provenance(config, config.train.seed, result.device, time.perf_counter() - start)}


def _data_key(job: SupernetJob) -> str:
    return json.dumps(dataclasses.asdict(job.run.data), sort_keys=True)


def _load_data(job: SupernetJob):
    from .data import load_splits
    return load_splits(job.run.data)


register(JobKind("supernet", SupernetJob, train_and_rank, work=lambda job: job.run.train.epochs, setup=_load_data,
                 setup_key=_data_key))


def ranking_metrics(record: dict, truth) -> dict:
    """Ranking metrics of a unit's supernet against ``truth`` (a GroundTruth): over all its archs and conv-only ones."""
    from .metrics import ranking_report
    from .spaces import str_to_arch
    config = RunConfig.from_dict(record["config"])
    archs = [str_to_arch(a) for a in record["archs"]]
    true, predicted = truth.accuracies(archs), np.asarray(record["supernet_acc"], dtype=float)
    conv = [k for k, a in enumerate(archs) if a in set(conv_only_archs())]
    metrics = {"all": ranking_report(true, predicted, config.rank.top_percent, config.rank.top_n)}
    if len(conv) >= 2:
        metrics["conv64"] = ranking_report(true[conv], predicted[conv], config.rank.top_percent, config.rank.top_n)
    return metrics


def run_units(units: list[Unit], name: str, force: bool = False, results_dir: Path = RESULTS_DIR,
              progress: bool = True, workers: int = 1) -> int:
    """Run and save the units not done (all with ``force``), with one progress bar and its ETA; the number run."""
    return run_jobs([u.job(results_dir) for u in units], name, workers, force, progress)


def run_experiment(name: str, force: bool = False, seeds=None, results_dir: Path = RESULTS_DIR,
                   progress: bool = True, workers: int = 1, labels: Sequence[str] | None = None) -> dict | None:
    """Run the units of experiment ``name`` not done (all with ``force``; only ``labels``' units when given), then
    write its summary; None while some of its units are still missing."""
    units = experiment_units(name, seeds)
    if name != "smoke":
        _ground_truth(name)  # fail before hours of training, not after, when the ground truth is missing
    run_units(select_labels(units, labels), name, force, results_dir, progress, workers)
    records = [load_unit(u, results_dir) for u in units]
    if labels is not None and any(r is None for r in records):
        return None
    summary = summarise(name, records)
    write_json(Path(results_dir) / f"{name}.json", summary)
    return summary


REPRODUCED = ("v2-main", "v2-ablations", "v2-motivation")  # the lite benchmark's experiments, in this order


def reproduce(force: bool = False, results_dir: Path = RESULTS_DIR, progress: bool = True, workers: int = 1) -> dict:
    """Recompute every lite experiment artifact (one progress bar with ETA over all runs); returns the summaries."""
    for name in REPRODUCED:
        _ground_truth(name)  # fail before hours of training, not after, when a ground truth is missing
    units = list({u.identity: u for name in REPRODUCED for u in experiment_units(name)}.values())  # shared once
    run_units(units, "reproduce", force, results_dir, progress, workers)
    return {name: run_experiment(name, results_dir=results_dir, progress=False) for name in REPRODUCED}


def select_labels(units: list[Unit], labels: Sequence[str] | None) -> list[Unit]:
    """The units whose label is in ``labels`` (all for None); an unknown label is an error naming the known ones."""
    if labels is None:
        return units
    known = list(dict.fromkeys(u.label for u in units))
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ExperimentError(f"unknown label(s) {unknown} for --only; choose among {known}")
    return [u for u in units if u.label in labels]


def experiment_units(name: str, seeds=None) -> list[Unit]:
    """The units of experiment ``name`` (``seeds``: None for the experiment's own default seeds)."""
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]() if seeds is None else EXPERIMENTS[name](seeds)


# ------------------------------------------------------------------------------------------- summaries
def _mean_std(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def _summarise_label(records: list[dict]) -> dict:
    row = {"label": records[0]["label"], "seeds": [r["seed"] for r in records]}
    for subset in ("all", "conv64"):
        if all(subset in r["metrics"] for r in records):
            keys = [k for k in records[0]["metrics"][subset] if k != "num_archs"]
            row[subset] = {k: _mean_std([r["metrics"][subset][k] for r in records]) for k in keys}
    row["grad_var_final"] = _mean_std([r["history"][-1]["grad_var"] for r in records])
    late = [[h["grad_var"] for h in r["history"][-LATE_EPOCHS:]] for r in records]  # [seeds, <= LATE_EPOCHS]
    row["grad_var_late"] = _mean_std([np.mean(g) for g in late])
    row["grad_var_late_swing"] = float(max(max(g) / max(min(g), 1e-30) for g in late))
    row["grad_var_curve"] = np.mean([[h["grad_var"] for h in r["history"]] for r in records], axis=0).tolist()
    row["supernet_seed_tau"] = supernet_seed_tau(records)
    row["train_time_s"] = _mean_std([r["train_time_s"] for r in records])
    if all(r.get("cpu_time_s") for r in records):  # CPU seconds across resumes (v1 records have none)
        row["cpu_time_s"] = _mean_std([r["cpu_time_s"] for r in records])
    row["final_train_acc"] = _mean_std([r["history"][-1]["train_acc"] for r in records])
    return row


def supernet_seed_tau(records: list[dict]) -> dict:
    """Kendall tau between the rankings of supernets trained with different seeds (all ranked archs, conv-only):
    the supernet's own consistency, which needs no ground truth. {} for one seed."""
    from .metrics import kendall_tau
    from .spaces import str_to_arch
    conv = set(conv_only_archs())
    conv_idx = [k for k, a in enumerate(records[0]["archs"]) if str_to_arch(a) in conv]
    pairs = [(a, b) for i, a in enumerate(records) for b in records[i + 1:]]
    if not pairs:
        return {}
    acc = [(np.asarray(a["supernet_acc"]), np.asarray(b["supernet_acc"])) for a, b in pairs]
    out = {"all": _mean_std([kendall_tau(x, y) for x, y in acc])}
    if len(conv_idx) >= 2:
        out["conv64"] = _mean_std([kendall_tau(x[conv_idx], y[conv_idx]) for x, y in acc])
    return out


def summarise(name: str, records: list[dict | None]) -> dict:
    """The experiment's artifact: metrics against the lite ground truth, mean ± std per setting over seeds (plus the
    stability analysis for 'stability'); 'smoke' has no ground truth and no metrics."""
    missing = sum(r is None for r in records)
    if missing:
        raise ExperimentError(f"{missing} unit(s) of experiment {name!r} are missing or stale: "
                              f"run `python -m pada_lite experiment {name}` to compute them")
    truth, fingerprint = _ground_truth(name)
    records = [{**r, "metrics": {} if truth is None else ranking_metrics(r, truth)} for r in records]
    groups = by_label(records)
    rows = [_summarise_label(group) for group in groups.values()]
    summary = {"experiment": name, "rows": rows, "units": [f"{r['label']}-seed{r['seed']}" for r in records],
               "identities": sorted({recorded_identity(r) for r in records}), "ground_truth": fingerprint,
               **provenance(None, None, "cpu")}
    summary["device"] = records[0]["device"]  # as recorded by the units (provenance() wants a torch device)
    summary["wall_time_s"] = round(sum(r["wall_time_s"] for r in records), 1)
    summary["per_seed"] = [{"label": r["label"], "seed": r["seed"], "metrics": r["metrics"],
                            "train_time_s": r["train_time_s"]} for r in records]
    if name in CURVE_EXPERIMENTS:
        with_curve = by_label([r for r in records if _has_curve(r)])  # v2: the curve seeds of the curve methods
        summary["stability"] = {label: stability_analysis(group, truth) for label, group in with_curve.items()}
    return summary


CURVE_EXPERIMENTS = ("smoke", "v2-main", "v2-ablations")  # summaries with the in-training rankings


def _has_curve(record: dict) -> bool:
    return any("epoch_supernet_acc" in h for h in record["history"])


def _ground_truth(name: str):
    """(GroundTruth, its fingerprint) the experiment is scored against, or (None, None) for 'smoke'."""
    plan = benchmark_of(name)
    if plan is None:
        return None, None
    from .benchmark import PLANS, ground_truth_fingerprint, load_lite_ground_truth
    path = PLANS[plan].artifact()
    return load_lite_ground_truth(path), ground_truth_fingerprint(path)


def stability_analysis(records: list[dict], truth=None) -> dict:
    """Kendall tau between consecutive in-training rankings (per seed), between seeds (final), top-1 arch moves;
    with ``truth`` (a GroundTruth) and rankings of every arch, also each in-training ranking's tau against it."""
    from .metrics import kendall_tau
    from .spaces import str_to_arch
    ranked = [[h for h in r["history"] if "epoch_supernet_acc" in h] for r in records]
    per_epoch = [np.asarray([h["epoch_supernet_acc"] for h in hs]) for hs in ranked]  # [evaluations, A] each
    consecutive = [[kendall_tau(e[i], e[i + 1]) for i in range(len(e) - 1)] for e in per_epoch]
    finals = [np.asarray(r["supernet_acc"]) for r in records]
    between = [kendall_tau(finals[i], finals[j]) for i in range(len(finals)) for j in range(i + 1, len(finals))]
    top1 = [[int(np.argmax(row)) for row in e] for e in per_epoch]
    out = {"epochs": [h.get("epoch") for h in ranked[0]], "tau_consecutive_epochs": consecutive,
           "tau_between_seeds": between, "top1_per_epoch": top1,
           "top1_changes": [sum(a != b for a, b in zip(t, t[1:])) for t in top1]}
    if truth is not None and per_epoch[0].shape[1] == len(records[0]["archs"]):
        true = truth.accuracies([str_to_arch(a) for a in records[0]["archs"]])
        out["tau_against_truth"] = [[kendall_tau(true, row) for row in e] for e in per_epoch]  # [seeds][evaluations]
    return out


def by_label(records: Sequence[dict]) -> dict[str, list[dict]]:
    """The records grouped by their setting's label, labels in order of first appearance."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["label"], []).append(r)
    return groups


def finished_records(name: str, results_dir: Path = RESULTS_DIR, units: list[Unit] | None = None) -> list[dict]:
    """The records of the units of ``name`` (or of ``units``) finished so far (current configs only), in order."""
    units = experiment_units(name) if units is None else units
    return [r for r in (load_unit(u, results_dir) for u in units) if r is not None]


def run_cost_by_cpu(name: str, results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """CPU cost of the finished runs of ``name`` per setting and CPU kind (``reliability.cost_by_cpu``: one unit
    per seed, two cores)."""
    from .reliability import cost_by_cpu
    return {label: cost_by_cpu(runs, 1, len(runs), 2)
            for label, runs in by_label(finished_records(name, results_dir)).items()}


def tau_against_epochs(name: str, results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """Per method with in-training rankings, from the finished units of ``name`` (a partial experiment too):
    ``{"epochs": [E], "seeds": [S], "tau": [S][E]}``, each ranking's Kendall tau against the ground truth."""
    truth, _ = _ground_truth(name)
    curves = {}
    for label, records in by_label([r for r in finished_records(name, results_dir) if _has_curve(r)]).items():
        analysis = stability_analysis(records, truth)
        curves[label] = {"epochs": analysis["epochs"], "seeds": [r["seed"] for r in records],
                         "tau": analysis["tau_against_truth"]}
    return curves


def history_curves(name: str, key: str, results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """Per setting, ``key`` of every epoch's record in the finished runs of ``name`` that record it at each epoch
    (e.g. 'effective_paths', 'grad_var'): ``{"epochs": [E], "seeds": [S], "values": [S][E]}``."""
    runs = [r for r in finished_records(name, results_dir) if all(key in h for h in r["history"])]
    return {label: {"epochs": [h["epoch"] for h in records[0]["history"]], "seeds": [r["seed"] for r in records],
                    "values": [[h[key] for h in r["history"]] for r in records]}
            for label, records in by_label(runs).items()}


def load_experiment(name: str, results_dir: Path = RESULTS_DIR, recompute: bool = False, seeds=None,
                    partial: bool = False) -> dict:
    """The artifact of experiment ``name`` if it matches the current configs and ground truth; recompute when asked
    or stale (a changed ground truth only re-scores the saved units: no supernet is retrained). ``partial``: while
    runs are missing, the summary of the finished ones instead (``missing_units`` counts the others; not saved)."""
    path = locate(Path(results_dir) / f"{name}.json")
    units = experiment_units(name, seeds)
    if not recompute and path.exists():
        summary = read_json(path)
        if sorted({u.job(results_dir).identity for u in units}) == summary.get("identities") and \
                len(summary.get("units", [])) == len(units) and summary.get("ground_truth") == _ground_truth(name)[1]:
            return {**summary, "missing_units": 0} if partial else summary
    if partial and not recompute:
        return partial_summary(name, units, results_dir)
    if not recompute:
        raise ExperimentError(f"{path} is missing or was made with other settings: run "
                              f"`python -m pada_lite experiment {name}` (or pass recompute=True)")
    return run_experiment(name, results_dir=results_dir, seeds=seeds)


def partial_summary(name: str, units: list[Unit], results_dir: Path = RESULTS_DIR) -> dict:
    """:func:`summarise` of the finished ``units`` of ``name``, with ``missing_units``: the number still to run."""
    records = finished_records(name, results_dir, units)
    if not records:
        raise ExperimentError(f"no run of experiment {name!r} has finished yet: run "
                              f"`python -m pada_lite experiment {name}`")
    return {**summarise(name, records), "missing_units": len(units) - len(records)}
