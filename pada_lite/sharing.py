"""The ``sharing`` experiment: one-shot, Few-Shot, GM, random grouping and prefix sharing at equal training steps.

Every method is a :class:`pada_lite.family.FamilyConfig` trained by the same loop for the same number of steps (a
family epoch has a one-shot epoch's steps), with PA&DA inside every member; the one-shot SPOS row is the plain
baseline. A unit is one seed of one method (a record under ``data/results/sharing/``, saved when it finishes, with a
checkpoint under ``runs/sharing/`` while it trains, so an interrupted run resumes unit by unit and mid-unit). The
summary scores every unit against the lite ground truth: Kendall τ with a 95 % t-interval over seeds, within-group τ,
P@Top5 %, S-tau between seeds, top-1 changes per epoch, training steps, and the GM distance matrices and partitions.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats

from .experiments import RESULTS_DIR, Unit, base_config, load_unit, unit_path
from .family import FamilyConfig, FamilyTrainer, evaluate_family, lite_family
from .provenance import provenance, write_json
from .spaces import arch_to_str, conv_only_archs, str_to_arch

NAME = "sharing"
SEEDS = (0, 1, 2)
EPOCHS = 15                  # family epochs of every unit (the lite preset trains 60: shrunk 4x for the CPU budget)
GM_BATCHES = 10              # batches per GM distance (reference 100: shrunk 10x for the CPU budget)
EPOCH_RANK_IMAGES = 500      # test images of the per-epoch ranking of the 64 conv archs (top-1 changes)
RUNS_DIR = Path(__file__).resolve().parent.parent / "runs" / NAME
PADA = ["train.path_sampler=importance", "train.data_sampler=importance"]
SPOS = ["train.path_sampler=uniform", "train.data_sampler=uniform"]
# how much more training the papers give a family than its one-shot supernet (not run on the lite tier)
PAPER_BUDGET_RATIOS = {"Few-Shot": "(600 + 5 x 300) / 600 = 3.5", "GM": "(15 + 2 x 15 + 4 x 30) / 60 = 2.75"}
CONTROLS = {"GM (2)": "random (2)", "GM (4)": "random (4)", "Few-Shot (5)": "random (5)",
            "Few-Shot (5)~": "one-shot PA&DA", "GM (4)~": "one-shot PA&DA"}  # paired differences reported


def methods(epochs: int = EPOCHS, gm_batches: int = GM_BATCHES) -> dict[str, tuple[list[str], FamilyConfig]]:
    """Every method of the experiment: name -> (path/data sampler overrides, family config)."""
    fs = lite_family("edge", epochs)
    gm = lite_family("gm", epochs, gm_batches=gm_batches)
    rows = {
        "one-shot SPOS": (SPOS, FamilyConfig()),
        "one-shot PA&DA": (PADA, FamilyConfig()),
        "Few-Shot (5)": (PADA, fs),
        "random (5)": (PADA, FamilyConfig(grouping="random", split_epochs=fs.split_epochs,
                                           random_fractions=(0.2,) * 5)),
        "GM (2)": (PADA, dataclasses.replace(gm, split_epochs=gm.split_epochs[:1])),
        "random (2)": (PADA, FamilyConfig(grouping="random", split_epochs=gm.split_epochs[:1])),
        "GM (4)": (PADA, gm),
        "random (4)": (PADA, FamilyConfig(grouping="random", split_epochs=gm.split_epochs)),
    }
    for k in (0, 1, 2):  # Deeper Insights: five members (by the op of edge 0) from scratch, first k cells shared
        rows[f"prefix k={k}"] = (PADA, FamilyConfig(grouping="edge", split_epochs=(0,), share_prefix=k))
    return rows


@dataclass
class SharingUnit(Unit):
    """One seed of one method: a Unit of pada_lite.experiments plus its family config."""

    family: FamilyConfig = dataclasses.field(default_factory=FamilyConfig)

    @property
    def config_hash(self) -> str:
        blob = json.dumps([Unit.config_hash.fget(self), self.family.to_dict()], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def sharing_units(seeds: Sequence[int] = SEEDS, epochs: int = EPOCHS, gm_batches: int = GM_BATCHES,
                  extra: Sequence[str] = ()) -> list[SharingUnit]:
    """The units of the experiment (every method x every seed)."""
    return [SharingUnit(NAME, name, seed, base_config([*samplers, f"train.epochs={epochs}", f"train.seed={seed}",
                                                       *extra]), True, family)
            for name, (samplers, family) in methods(epochs, gm_batches).items() for seed in seeds]


def _epoch_ranking(archs, test, batch_size):
    def rank(trainer, summary):
        return {"epoch_supernet_acc": [round(float(a), 3) for a in evaluate_family(trainer.model, archs, test,
                                                                                    batch_size)]}
    return rank


def run_sharing_unit(unit: SharingUnit, archs: Sequence[tuple], splits=None, runs_dir: Path = RUNS_DIR,
                     resume: bool = True) -> dict:
    """Train the unit's family (resuming its checkpoint), rank ``archs`` with their owners' weights; its record."""
    from .data import load_splits
    config = unit.config
    splits = splits or load_splits(config.data)
    conv = set(conv_only_archs())
    sub = splits.test.subset(np.arange(min(EPOCH_RANK_IMAGES, len(splits.test))))
    callbacks = [_epoch_ranking([a for a in archs if a in conv], sub, config.rank.batch_size)]
    start = time.perf_counter()
    trainer = FamilyTrainer(config, unit.family, Path(runs_dir) / unit.key, splits, callbacks)
    result = trainer.run(resume=resume)
    train_time = time.perf_counter() - start
    acc = evaluate_family(trainer.model, archs, splits.test, config.rank.batch_size)
    return {"experiment": unit.experiment, "label": unit.label, "seed": unit.seed, "config_hash": unit.config_hash,
            "family_config": unit.family.to_dict(), "members": len(trainer.members),
            "member_names": [m.name for m in trainer.members], "split_log": trainer.split_log,
            "steps": trainer.config.train.epochs * trainer.steps_per_epoch,
            "archs": [arch_to_str(a) for a in archs], "supernet_acc": [round(float(a), 3) for a in acc],
            "history": result.history, "train_time_s": round(train_time, 2),
            **provenance(config, unit.seed, result.device, time.perf_counter() - start)}


def _run_and_save(unit: SharingUnit, results_dir: Path, force: bool = False) -> Path:
    import torch
    from .benchmark import evaluation_archs
    torch.set_num_threads(1)  # a unit's numbers must not depend on where it ran
    path = unit_path(unit, results_dir)
    write_json(path, run_sharing_unit(unit, evaluation_archs(), resume=not force))
    return path


def run_sharing(force: bool = False, seeds: Sequence[int] = SEEDS, results_dir: Path = RESULTS_DIR,
                workers: int = 1, progress: bool = True) -> dict:
    """Run the missing units (all with ``force``) in ``workers`` processes, then write ``sharing.json``."""
    from .benchmark import load_lite_ground_truth
    load_lite_ground_truth()  # fail before training when the ground truth is missing
    units = sharing_units(seeds)
    todo = [u for u in units if force or load_unit(u, results_dir) is None]
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), desc=f"{NAME}: family runs", disable=not progress or not todo, unit="run")
    if workers <= 1:
        for unit in todo:
            _run_and_save(unit, results_dir, force)
            bar.update(1)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn")) as pool:
            for job in as_completed([pool.submit(_run_and_save, u, results_dir, force) for u in todo]):
                job.result()
                bar.update(1)
    bar.close()
    summary = summarise([load_unit(u, results_dir) for u in units])
    write_json(Path(results_dir) / f"{NAME}.json", summary)
    return summary


# ------------------------------------------------------------------------------------------------ metrics
def live_op_counts(arch: Sequence[str]) -> tuple[int, ...]:
    """How many live edges carry each op (skip, conv1x1, conv3x3, avg-pool): the arch's group for within-group τ."""
    from .benchmark import live_edges
    ops = [op for op, live in zip(arch, live_edges(arch)) if live]
    return tuple(ops.count(op) for op in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"))


def within_group_tau(archs: Sequence[tuple], true: Sequence[float], predicted: Sequence[float]) -> float:
    """Kendall τ pooled over pairs of archs with the same live-op-count vector: (C − D) / (C + D) over those pairs
    (pairs tied in either score left out). It asks whether a supernet ranks archs that a parameter count cannot tell
    apart; NaN when no such pair exists."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    groups: dict[tuple, list[int]] = {}
    for i, arch in enumerate(archs):
        groups.setdefault(live_op_counts(arch), []).append(i)
    concordant = discordant = 0
    for members in groups.values():
        idx = np.asarray(members)
        if len(idx) < 2:
            continue
        i, j = np.triu_indices(len(idx), 1)
        s = np.sign(true[idx[i]] - true[idx[j]]) * np.sign(predicted[idx[i]] - predicted[idx[j]])
        concordant, discordant = concordant + int((s > 0).sum()), discordant + int((s < 0).sum())
    return (concordant - discordant) / (concordant + discordant) if concordant + discordant else float("nan")


def t_interval(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean and the t-interval of the mean over seeds (half-width 0 for one seed)."""
    v = np.asarray(values, float)
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "ci95": [float(v.mean() - half), float(v.mean() + half)],
            "half_width": half, "n": int(len(v)), "values": v.round(4).tolist()}


def unit_metrics(record: dict, truth) -> dict:
    """A unit's ranking against the lite ground truth, and how its top-1 arch moved during training."""
    from .metrics import kendall_tau, precision_at_top
    archs = [str_to_arch(a) for a in record["archs"]]
    true, predicted = truth.accuracies(archs), np.asarray(record["supernet_acc"], float)
    epochs = [h["epoch_supernet_acc"] for h in record["history"]]
    top1 = [int(np.argmax(e)) for e in epochs]
    return {"kendall_tau": kendall_tau(true, predicted), "within_group_tau": within_group_tau(archs, true, predicted),
            "p_at_top5": 100 * precision_at_top(true, predicted, 5.0),
            "top1_changes_per_epoch": sum(a != b for a, b in zip(top1, top1[1:])) / max(len(top1) - 1, 1)}


def summarise(records: list[dict | None]) -> dict:
    """The artifact: one row per method (τ with a 95 % CI, within-group τ, P@Top5 %, S-tau, top-1 changes, steps,
    GM partitions and distance matrices) and paired differences against the controls."""
    from .benchmark import ground_truth_fingerprint, load_lite_ground_truth
    from .experiments import ExperimentError, supernet_seed_tau
    if any(r is None for r in records):
        raise ExperimentError(f"{sum(r is None for r in records)} unit(s) of experiment {NAME!r} are missing or stale:"
                              f" run `python -m pada_lite experiment {NAME}` to compute them")
    truth = load_lite_ground_truth()
    for r in records:
        r["metrics"] = unit_metrics(r, truth)
    labels = list(dict.fromkeys(r["label"] for r in records))
    by_label = {label: sorted([r for r in records if r["label"] == label], key=lambda r: r["seed"]) for label in labels}
    rows = []
    for label, group in by_label.items():
        row = {"name": label, "members": group[0]["members"], "seeds": [r["seed"] for r in group],
               "steps": group[0]["steps"], "family_config": group[0]["family_config"],
               "sampler": {k: group[0]["config"]["train"][k] for k in ("path_sampler", "data_sampler")},
               "s_tau": supernet_seed_tau(group).get("all", {}),
               "train_time_s": float(np.mean([r["train_time_s"] for r in group]))}
        for key in ("kendall_tau", "within_group_tau", "p_at_top5", "top1_changes_per_epoch"):
            row[key] = t_interval([r["metrics"][key] for r in group])
        row["splits"] = [{"seed": r["seed"], "split_log": r["split_log"]} for r in group if r["split_log"]]
        rows.append(row)
    return {"experiment": NAME, "rows": rows, "paired": paired_differences(by_label),
            "epochs": records[0]["config"]["train"]["epochs"], "paper_budget_ratios": PAPER_BUDGET_RATIOS,
            "units": [f"{r['label']}-seed{r['seed']}" for r in records],
            "config_hashes": sorted({r["config_hash"] for r in records}), "ground_truth": ground_truth_fingerprint(),
            "unit_wall_time_s": round(sum(r["wall_time_s"] for r in records), 1), "device": records[0]["device"],
            **{k: v for k, v in provenance().items() if k != "device"}}


def paired_differences(by_label: dict[str, list[dict]]) -> list[dict]:
    """τ of a method minus τ of its control, seed by seed, with the 95 % t-interval of the mean difference."""
    out = []
    for method, control in CONTROLS.items():
        method = method.rstrip("~")
        if method not in by_label or control not in by_label:
            continue
        a = {r["seed"]: r["metrics"]["kendall_tau"] for r in by_label[method]}
        b = {r["seed"]: r["metrics"]["kendall_tau"] for r in by_label[control]}
        seeds = sorted(set(a) & set(b))
        diff = t_interval([a[s] - b[s] for s in seeds])
        out.append({"method": method, "control": control, "seeds": seeds, "tau_difference": diff,
                    "clears_ci": bool(diff["ci95"][0] > 0 or diff["ci95"][1] < 0)})
    return out


def load_sharing(results_dir: Path = RESULTS_DIR) -> dict:
    """The ``sharing.json`` artifact; an error with the command that makes it when it is missing."""
    from .experiments import ExperimentError
    from .provenance import read_json
    path = Path(results_dir) / f"{NAME}.json"
    if not path.exists():
        raise ExperimentError(f"{path} is missing: run `python -m pada_lite experiment {NAME}`")
    return read_json(path)


def print_summary(summary: dict) -> None:
    """One line per method: τ with its 95 % CI, within-group τ, P@Top5 %, members and steps."""
    print(f"{NAME}: {len(summary['units'])} runs -> data/results/{NAME}.json")
    for row in summary["rows"]:
        tau, lo, hi = row["kendall_tau"]["mean"], *row["kendall_tau"]["ci95"]
        print(f"  {row['name']:15s} members {row['members']}  tau {tau:.3f} [{lo:.3f}, {hi:.3f}]  within-group "
              f"{row['within_group_tau']['mean']:.3f}  P@Top5 {row['p_at_top5']['mean']:.1f} %  steps {row['steps']}")
