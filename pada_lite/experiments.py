"""Named experiments on the lite benchmark; each writes result artifacts (JSON with provenance) under data/results/.

An experiment is a list of *units* (one supernet training + ranking each: a method, a setting and a seed). A unit's
result (the supernet's accuracy for every evaluation arch, its training history, provenance) is saved as soon as it
finishes, so an interrupted ``reproduce`` resumes where it stopped; a unit is re-run only when asked (``force``) or
when its config changed. Units run in ``workers`` single-threaded processes (two on a 2-core CPU). ``summarise`` turns
the units into the artifact the book loads and scores the rankings against the lite ground truth there, so a unit
never depends on the ground truth and the two can be computed in parallel.

- ``motivation``: supernets with 2, 3, 4, 5 candidate ops per edge; GV during training, Kendall tau on the 64 conv archs.
- ``main``: SPOS, FairNAS, PA only, DA only, PA&DA at equal budget; all ranking metrics, GV, wall time; 3 seeds.
- ``ablations``: batch size, τ schedule, sample- vs class-wise DA, unweighted vs unbiased importance weighting,
  shared vs per-edge path distribution (all on PA&DA; its reference row is the ``main`` experiment's PA&DA units).
- ``stability`` ("Deeper Insights"): no training of its own; Kendall tau between consecutive epochs and between seeds,
  and how the supernet's top-1 arch moves, from the per-epoch rankings the ``main`` units record.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .config import RunConfig, lite, override
from .provenance import provenance, read_json, write_json
from .spaces import arch_to_str, conv_only_archs

SEEDS = (0, 1, 2)
RESULTS_DIR = Path(__file__).resolve().parent.parent / "data" / "results"
RANK_TEST_IMAGES = 3000         # test images each final ranking uses (169 archs x 3k images: ~90 s on one core)
EPOCH_RANK_TEST_IMAGES = 1000   # test images of the per-epoch rankings of the 64 conv archs (stability)
STABILITY_METHODS = ("SPOS", "PA&DA")  # main units that also rank after every epoch
GV_SAMPLES, GV_BATCH = 16, 64   # gradient-variance measurement at every epoch end
LATE_EPOCHS = 10                # GV is also summarised as the mean over the last epochs: one 16-draw measurement
                                # is heavy-tailed under importance weights (1 / (N q) spans orders of magnitude)

METHODS = {  # name -> config overrides
    "SPOS": ["train.path_sampler=uniform", "train.data_sampler=uniform"],
    "FairNAS": ["train.path_sampler=fair", "train.data_sampler=uniform"],
    "PA": ["train.path_sampler=importance", "train.data_sampler=uniform"],
    "DA": ["train.path_sampler=uniform", "train.data_sampler=importance"],
    "PA&DA": ["train.path_sampler=importance", "train.data_sampler=importance"],
}
MOTIVATION_OPS = {2: ["nor_conv_1x1", "nor_conv_3x3"],
                  3: ["skip_connect", "nor_conv_1x1", "nor_conv_3x3"],
                  4: ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"],
                  5: ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]}


class ExperimentError(RuntimeError):
    """Raised when an experiment's artifact is missing or stale; the message gives the command that fixes it."""


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

    @property
    def config_hash(self) -> str:
        return config_hash(self.config, self.rank_every_epoch)


def config_hash(config: RunConfig, rank_every_epoch: bool = False) -> str:
    """Short hash of everything in a unit's setup that changes its record (not the progress bar)."""
    d = config.to_dict()
    d["train"].pop("progress", None)
    d["rank_every_epoch"] = bool(rank_every_epoch)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def base_config(extra: Sequence[str] = ()) -> RunConfig:
    """The lite preset as every experiment uses it (no progress bars: the runner shows one)."""
    return override(lite(), ["train.progress=false", f"data.test_size={RANK_TEST_IMAGES}", *extra])


def _units(name: str, settings: dict[str, list[str]], seeds=SEEDS, base: Sequence[str] = (), **kw) -> list[Unit]:
    return [Unit(name, label, seed, base_config([*base, *items, f"train.seed={seed}"]), **kw)
            for label, items in settings.items() for seed in seeds]


def motivation_units(seeds=(0, 1)) -> list[Unit]:
    settings = {f"{k} ops": [f"space.ops={json.dumps(ops)}"] + METHODS["SPOS"] for k, ops in MOTIVATION_OPS.items()}
    return _units("motivation", settings, seeds)


def main_units(seeds=SEEDS) -> list[Unit]:
    units = _units("main", METHODS, seeds)
    for unit in units:
        unit.rank_every_epoch = unit.label in STABILITY_METHODS
    return units


def stability_units(seeds=SEEDS) -> list[Unit]:
    """The main units that rank after every epoch (no training of their own)."""
    return [u for u in main_units(seeds) if u.rank_every_epoch]


ABLATION_SEEDS = (0,)  # one seed per ablation setting (the main table has three): the 2-hour budget of `reproduce`


def ablation_units(seeds=ABLATION_SEEDS) -> list[Unit]:
    """PA&DA with one setting changed; the reference row (lite defaults) reuses the main experiment's PA&DA units."""
    pada = METHODS["PA&DA"]
    defaults = base_config().train
    settings = {f"batch={b}": pada + [f"train.batch_size={b}"] for b in (64, 256, 512)}
    settings["tau=constant 0.5"] = pada + ["train.tau=0.5"]  # half importance, half uniform from epoch 1 on
    settings["tau=cosine"] = pada + ["train.tau=cosine"]
    settings["DA class-wise"] = pada + ["train.da_granularity=class"]
    settings["unbiased weights"] = pada + ["train.importance_weighting=true"]
    settings["per-edge PA"] = pada + ["train.pa_scope=edge"]
    reference = [u for u in main_units(seeds) if u.label == "PA&DA"]
    assert (defaults.batch_size, defaults.tau, defaults.da_granularity, defaults.pa_scope) == (128, "linear", "sample",
                                                                                               "shared")
    return reference + _units("ablations", settings, seeds)


SMOKE = ["data.train_size=512", "data.test_size=256", "data.image_size=8", "space.channels=4",
         "space.cells_per_stage=3", "train.epochs=2",
         "train.batch_size=64", "rank.batch_size=128"]


def smoke_units(seeds=(0,)) -> list[Unit]:
    """A seconds-long pipeline check (tiny data, no ground truth): SPOS and PA&DA, one seed."""
    return _units("smoke", {k: METHODS[k] for k in ("SPOS", "PA&DA")}, seeds[:1], base=SMOKE, rank_every_epoch=True)


EXPERIMENTS: dict[str, Callable[..., list[Unit]]] = {  # name -> units (each with its default seeds)
    "motivation": motivation_units, "main": main_units, "ablations": ablation_units, "stability": stability_units,
    "smoke": smoke_units}


# ------------------------------------------------------------------------------------------ running units
def unit_path(unit: Unit, results_dir: Path = RESULTS_DIR) -> Path:
    return Path(results_dir) / unit.experiment / f"{unit.key}.json"


def load_unit(unit: Unit, results_dir: Path = RESULTS_DIR) -> dict | None:
    """The saved result of ``unit`` if it exists and was made with the same config, else None."""
    path = unit_path(unit, results_dir)
    if not path.exists():
        return None
    record = read_json(path)
    return record if record.get("config_hash") == unit.config_hash else None


def evaluation_archs_for(name: str) -> list[tuple]:
    """The archs the units of experiment ``name`` rank: the benchmark's evaluation set (16 conv archs for 'smoke')."""
    if name == "smoke":
        return conv_only_archs()[::4]
    from .benchmark import evaluation_archs
    return evaluation_archs()


def _rank_callback(archs, test, batch_size):
    from .evaluation import evaluate_archs

    def rank_epoch(trainer, summary):
        acc = evaluate_archs(trainer.model, archs, test, batch_size)
        return {"epoch_supernet_acc": [round(float(a), 3) for a in acc]}

    return rank_epoch


def run_unit(unit: Unit, archs: Sequence[tuple], splits=None, run_dir: Path | None = None) -> dict:
    """Train the unit's supernet, rank the ``archs`` of its space, and return its record (not yet saved)."""
    from .data import load_splits
    from .evaluation import evaluate_archs
    from .training import Trainer
    from .variance import gradient_variance_callback
    config = unit.config
    splits = splits or load_splits(config.data)
    ranked = [a for a in archs if set(a) <= set(config.space.ops)]
    callbacks = [gradient_variance_callback(GV_SAMPLES, GV_BATCH)]
    if unit.rank_every_epoch:
        sub = splits.test.subset(np.arange(min(EPOCH_RANK_TEST_IMAGES, len(splits.test))))
        conv = set(conv_only_archs())
        callbacks.append(_rank_callback([a for a in ranked if a in conv], sub, config.rank.batch_size))
    start = time.perf_counter()
    result = Trainer(config, run_dir, splits, callbacks).run()
    train_time = time.perf_counter() - start
    acc = evaluate_archs(result.model, ranked, splits.test, config.rank.batch_size)
    return {"experiment": unit.experiment, "label": unit.label, "seed": unit.seed, "config_hash": unit.config_hash,
            "archs": [arch_to_str(a) for a in ranked], "supernet_acc": [round(float(a), 3) for a in acc],
            "history": result.history, "train_time_s": round(train_time, 2),
            **provenance(config, unit.seed, result.device, time.perf_counter() - start)}


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


# ---------------------------------------------------------------------------------------- running units
_WORKER_SPLITS: dict = {}


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def _run_and_save(unit: Unit, archs: Sequence[tuple], results_dir: Path) -> Path:
    """Worker job: run ``unit`` (loading each dataset once per process) and save its record."""
    from .data import load_splits
    key = _data_key(unit)
    if key not in _WORKER_SPLITS:
        _WORKER_SPLITS[key] = load_splits(unit.config.data)
    path = unit_path(unit, results_dir)
    write_json(path, run_unit(unit, archs, _WORKER_SPLITS[key]))
    return path


def run_units(units: list[Unit], name: str, force: bool = False, results_dir: Path = RESULTS_DIR,
              progress: bool = True, workers: int = 1) -> None:
    """Run and save the missing or stale ``units`` (all with ``force``), with one progress bar and its ETA.

    ``workers > 1`` runs units in that many spawned processes, ``workers <= 1`` runs them here. Either way a unit
    trains with one torch thread: CPU results depend on the thread count (reductions are split differently), and a
    unit's numbers must not depend on where it ran.
    """
    todo = list({unit_path(u, results_dir): u for u in units
                 if force or load_unit(u, results_dir) is None}.values())
    if not todo:
        return
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), desc=f"{name}: supernet runs", disable=not progress, unit="run", smoothing=0.1)
    if workers <= 1:
        import torch
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for unit in todo:
                _run_and_save(unit, evaluation_archs_for(unit.experiment), results_dir)
                bar.update(1)
        finally:
            torch.set_num_threads(previous)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        ctx = multiprocessing.get_context("spawn")  # fork after torch started its thread pool can hang
        with ProcessPoolExecutor(workers, ctx, _init_worker, (1,)) as pool:
            jobs = [pool.submit(_run_and_save, u, evaluation_archs_for(u.experiment), results_dir) for u in todo]
            for job in as_completed(jobs):
                job.result()
                bar.update(1)
    bar.close()


def run_experiment(name: str, force: bool = False, seeds=None, results_dir: Path = RESULTS_DIR,
                   progress: bool = True, workers: int = 1) -> dict:
    """Run the missing or stale units of experiment ``name`` (all with ``force``), then write its summary."""
    units = experiment_units(name, seeds)
    run_units(units, name, force, results_dir, progress, workers)
    summary = summarise(name, [load_unit(u, results_dir) for u in units])
    write_json(Path(results_dir) / f"{name}.json", summary)
    return summary


REPRODUCED = ("motivation", "main", "ablations", "stability")


def reproduce(force: bool = False, results_dir: Path = RESULTS_DIR, progress: bool = True, workers: int = 1) -> dict:
    """Recompute every lite experiment artifact (one progress bar with ETA over all runs); returns the summaries."""
    from .benchmark import load_lite_ground_truth
    load_lite_ground_truth()  # fail before hours of training, not after, when the ground truth is missing
    units = [u for name in REPRODUCED for u in experiment_units(name)]
    run_units(units, "reproduce", force, results_dir, progress, workers)
    return {name: run_experiment(name, results_dir=results_dir, progress=False) for name in REPRODUCED}


def experiment_units(name: str, seeds=None) -> list[Unit]:
    """The units of experiment ``name`` (``seeds``: None for the experiment's own default seeds)."""
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]() if seeds is None else EXPERIMENTS[name](seeds)


def _data_key(unit: Unit) -> str:
    return json.dumps(dataclasses.asdict(unit.config.data), sort_keys=True)


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
    labels = list(dict.fromkeys(r["label"] for r in records))
    rows = [_summarise_label([r for r in records if r["label"] == label]) for label in labels]
    summary = {"experiment": name, "rows": rows, "units": [f"{r['label']}-seed{r['seed']}" for r in records],
               "config_hashes": sorted({r["config_hash"] for r in records}), "ground_truth": fingerprint,
               **provenance(None, None, "cpu")}
    summary["device"] = records[0]["device"]  # as recorded by the units (provenance() wants a torch device)
    summary["wall_time_s"] = round(sum(r["wall_time_s"] for r in records), 1)
    summary["per_seed"] = [{"label": r["label"], "seed": r["seed"], "metrics": r["metrics"],
                            "train_time_s": r["train_time_s"]} for r in records]
    if name in ("stability", "smoke"):
        summary["stability"] = {label: stability_analysis([r for r in records if r["label"] == label])
                                for label in labels}
    return summary


def _ground_truth(name: str):
    """(GroundTruth, its fingerprint) of the lite benchmark, or (None, None) for 'smoke'."""
    if name == "smoke":
        return None, None
    from .benchmark import ground_truth_fingerprint, load_lite_ground_truth
    return load_lite_ground_truth(), ground_truth_fingerprint()


def stability_analysis(records: list[dict]) -> dict:
    """Kendall tau between consecutive epochs (per seed), between seeds (final), and top-1 arch moves."""
    from .metrics import kendall_tau
    per_epoch = [np.asarray([h["epoch_supernet_acc"] for h in r["history"]]) for r in records]  # [E, A] each
    consecutive = [[kendall_tau(e[i], e[i + 1]) for i in range(len(e) - 1)] for e in per_epoch]
    finals = [np.asarray(r["supernet_acc"]) for r in records]
    between = [kendall_tau(finals[i], finals[j]) for i in range(len(finals)) for j in range(i + 1, len(finals))]
    top1 = [[int(np.argmax(row)) for row in e] for e in per_epoch]
    return {"tau_consecutive_epochs": consecutive, "tau_between_seeds": between,
            "top1_per_epoch": top1, "top1_changes": [sum(a != b for a, b in zip(t, t[1:])) for t in top1]}


def load_experiment(name: str, results_dir: Path = RESULTS_DIR, recompute: bool = False, seeds=None) -> dict:
    """The artifact of experiment ``name`` if it matches the current configs and ground truth; recompute when asked
    or stale (a changed ground truth only re-scores the saved units: no supernet is retrained)."""
    path = Path(results_dir) / f"{name}.json"
    units = experiment_units(name, seeds)
    if not recompute and path.exists():
        summary = read_json(path)
        if sorted({u.config_hash for u in units}) == summary.get("config_hashes") and \
                len(summary.get("units", [])) == len(units) and summary.get("ground_truth") == _ground_truth(name)[1]:
            return summary
    if not recompute:
        raise ExperimentError(f"{path} is missing or was made with other settings: run "
                              f"`python -m pada_lite experiment {name}` (or pass recompute=True)")
    return run_experiment(name, results_dir=results_dir, seeds=seeds)
