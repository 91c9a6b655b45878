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
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import RunConfig
from .data import load_splits
from .experiments import RESULTS_DIR, base_config, epoch_progress_callback, vary
from .family import FamilyConfig, FamilyTrainer, evaluate_family, lite_family
from .provenance import provenance, write_json
from .runner import Context, Job, JobKind, load_record, neutral, recorded_identity, register, run_jobs
from .spaces import arch_to_str, conv_only_archs, str_to_arch
from .yardsticks import live_op_counts, mean_ci95, within_group_tau

NAME = "sharing"
SEEDS = (0, 1, 2)
EPOCHS = 15                  # family epochs of every unit (v1's lite preset trains 60: shrunk 4x for the CPU budget)
GM_BATCHES = 10              # batches per GM distance (reference 100: shrunk 10x for the CPU budget)
EPOCH_RANK_IMAGES = 500      # test images of the per-epoch ranking of the 64 conv archs (top-1 changes)
PADA = {"path_sampler": "importance", "data_sampler": "importance"}
SPOS = {"path_sampler": "uniform", "data_sampler": "uniform"}
# how much more training the papers give a family than its one-shot supernet (the "at ...x" rows run these ratios)
PAPER_BUDGET_RATIOS = {"Few-Shot": "(600 + 5 x 300) / 600 = 3.5", "GM": "(15 + 2 x 15 + 4 x 30) / 60 = 2.75"}
FEW_SHOT_RATIO, GM_RATIO = "Few-Shot (5) at 3.5x", "GM (4) at 2.75x"
CONTROLS = {"GM (2)": "random (2)", "GM (4)": "random (4)", "Few-Shot (5)": "random (5)",
            "Few-Shot (5)~": "one-shot PA&DA", "GM (4)~": "one-shot PA&DA",
            FEW_SHOT_RATIO: "one-shot PA&DA", GM_RATIO: "one-shot PA&DA"}  # paired differences reported


def methods(epochs: int = EPOCHS, gm_batches: int = GM_BATCHES) -> dict[str, tuple[dict, FamilyConfig, int]]:
    """Every method of the experiment: name -> (path/data sampler fields of train, family config, family epochs).

    All but the two ``at ...x`` rows train ``epochs`` family epochs (equal steps). Those two give the family the
    papers' budget over the one-shot supernet: Few-Shot trains one-shot for all ``epochs``, then each of its five
    members for half as long (600 + 5 x 300 epochs in the paper); GM trains one-shot for a quarter of ``epochs``,
    each of two members for a quarter, each of four members for a half (15, 2 x 15, 4 x 30 of 60 in the paper).
    """
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
    rows = {name: (*row, epochs) for name, row in rows.items()}
    quarter = epochs / 4
    rows[FEW_SHOT_RATIO] = (PADA, FamilyConfig(grouping="edge", split_epochs=(epochs,)), epochs + round(5 * epochs / 2))
    rows[GM_RATIO] = (PADA, dataclasses.replace(gm, split_epochs=(round(quarter), round(3 * quarter))),
                      round(11 * quarter))
    return rows


@dataclass
class FamilyJob:
    """The config of a family job: train ``run``'s supernet family, then rank ``archs`` with their owners' weights."""

    run: RunConfig
    family: FamilyConfig
    archs: tuple                                   # official arch strings ranked at the end
    epoch_rank_images: int = EPOCH_RANK_IMAGES     # test images of the per-epoch ranking of the conv-only archs
    experiment: str = neutral("")                  # names only: the folder and setting the record belongs to
    label: str = neutral("")

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return {"run": self.run.to_dict(), "family": self.family.to_dict(), "archs": list(self.archs),
                "epoch_rank_images": self.epoch_rank_images, "experiment": self.experiment, "label": self.label}

    @classmethod
    def from_dict(cls, d: dict) -> "FamilyJob":
        """Inverse of :meth:`to_dict`."""
        return cls(RunConfig.from_dict(d["run"]), FamilyConfig(**d["family"]), tuple(d["archs"]),
                   int(d["epoch_rank_images"]), d.get("experiment", ""), d.get("label", ""))


def sharing_jobs(seeds: Sequence[int] = SEEDS, epochs: int = EPOCHS, gm_batches: int = GM_BATCHES,
                 results_dir: Path = RESULTS_DIR) -> list[Job]:
    """The jobs of the experiment (every method x every seed): records ``<results>/sharing/<method>-seed<s>.json``."""
    from .evalset import evaluation_archs
    archs = tuple(arch_to_str(a) for a in evaluation_archs())
    folder = Path(results_dir) / NAME
    jobs = []
    for name, (samplers, family, family_epochs) in methods(epochs, gm_batches).items():
        for seed in seeds:
            run = vary(base_config(), train={**samplers, "epochs": family_epochs, "seed": seed})
            key = "".join(c if c.isalnum() or c in "=.-" else "_" for c in name) + f"-seed{seed}"
            config = FamilyJob(run, family, archs, experiment=NAME, label=name)
            jobs.append(Job("family", key, config, folder / f"{key}.json", folder / "partial" / key))
    return jobs


def _epoch_ranking(archs, test, batch_size):
    def rank(trainer, summary):
        return {"epoch_supernet_acc": [round(float(a), 3) for a in evaluate_family(trainer.model, archs, test,
                                                                                    batch_size)]}
    return rank


def train_family_and_rank(job: FamilyJob, context: Context) -> dict:
    """Train the job's family (resuming its partial state), rank its archs with their owners' weights; the record."""
    config, splits = job.run, context.shared
    archs = [str_to_arch(a) for a in job.archs]
    conv = set(conv_only_archs())
    sub = splits.test.subset(np.arange(min(job.epoch_rank_images, len(splits.test))))
    callbacks = [_epoch_ranking([a for a in archs if a in conv], sub, config.rank.batch_size),
                 epoch_progress_callback(context.on_progress)]
    start = time.perf_counter()
    trainer = FamilyTrainer(config, job.family, context.partial, splits, callbacks)
    result = trainer.run()
    train_time = time.perf_counter() - start
    acc = evaluate_family(trainer.model, archs, splits.test, config.rank.batch_size)
    return {"experiment": job.experiment, "label": job.label, "seed": config.train.seed,
            "members": len(trainer.members), "member_names": [m.name for m in trainer.members],
            "split_log": trainer.split_log, "steps": trainer.config.train.epochs * trainer.steps_per_epoch,
            "archs": list(job.archs), "supernet_acc": [round(float(a), 3) for a in acc],
            "history": result.history, "train_time_s": round(train_time, 2),
            **provenance(config, config.train.seed, result.device, time.perf_counter() - start)}


register(JobKind("family", FamilyJob, train_family_and_rank, work=lambda job: job.run.train.epochs,
                 setup=lambda job: load_splits(job.run.data),
                 setup_key=lambda job: json.dumps(dataclasses.asdict(job.run.data), sort_keys=True)))


def run_sharing(force: bool = False, seeds: Sequence[int] = SEEDS, results_dir: Path = RESULTS_DIR,
                workers: int = 1, progress: bool = True) -> dict:
    """Run the jobs not done (all with ``force``) in ``workers`` processes, then write ``sharing.json``."""
    from .benchmark import load_lite_ground_truth
    load_lite_ground_truth()  # fail before training when the ground truth is missing
    jobs = sharing_jobs(seeds, results_dir=results_dir)
    run_jobs(jobs, NAME, workers, force, progress)
    summary = summarise([load_record(job) for job in jobs])
    write_json(Path(results_dir) / f"{NAME}.json", summary)
    return summary


# ------------------------------------------------------------------------------------------------ metrics
def t_interval(values: Sequence[float]) -> dict:
    """Mean, sd, n and the 95 % t-interval over seeds (:func:`pada_lite.yardsticks.mean_ci95`), with the values."""
    return {**mean_ci95(values), "values": np.round(np.asarray(values, float), 4).tolist()}


def unit_metrics(record: dict, truth) -> dict:
    """A unit's ranking against the lite ground truth, and how its top-1 arch moved during training."""
    from .metrics import kendall_tau, precision_at_top
    archs = [str_to_arch(a) for a in record["archs"]]
    true, predicted = truth.accuracies(archs), np.asarray(record["supernet_acc"], float)
    epochs = [h["epoch_supernet_acc"] for h in record["history"]]
    top1 = [int(np.argmax(e)) for e in epochs]
    groups = [live_op_counts(a) for a in archs]
    return {"kendall_tau": kendall_tau(true, predicted), "within_group_tau": within_group_tau(true, predicted, groups),
            "p_at_top5": 100 * precision_at_top(true, predicted, 5.0),
            "top1_changes_per_epoch": sum(a != b for a, b in zip(top1, top1[1:])) / max(len(top1) - 1, 1)}


def summarise(records: list[dict | None]) -> dict:
    """The artifact: one row per method (τ with a 95 % CI, within-group τ, P@Top5 %, S-tau, top-1 changes, steps,
    GM partitions and distance matrices) and paired differences against the controls."""
    from .benchmark import ground_truth_fingerprint, load_lite_ground_truth
    from .experiments import ExperimentError, by_label, supernet_seed_tau
    if any(r is None for r in records):
        raise ExperimentError(f"{sum(r is None for r in records)} unit(s) of experiment {NAME!r} are missing or stale:"
                              f" run `python -m pada_lite experiment {NAME}` to compute them")
    truth = load_lite_ground_truth()
    for r in records:
        r["metrics"] = unit_metrics(r, truth)
    groups = {label: sorted(group, key=lambda r: r["seed"]) for label, group in by_label(records).items()}
    rows = []
    for label, group in groups.items():
        row = {"name": label, "members": group[0]["members"], "seeds": [r["seed"] for r in group],
               "steps": group[0]["steps"], "family_config": group[0]["job"]["config"]["family"],
               "sampler": {k: group[0]["config"]["train"][k] for k in ("path_sampler", "data_sampler")},
               "s_tau": supernet_seed_tau(group).get("all", {}),
               "train_time_s": float(np.mean([r["train_time_s"] for r in group]))}
        for key in ("kendall_tau", "within_group_tau", "p_at_top5", "top1_changes_per_epoch"):
            row[key] = t_interval([r["metrics"][key] for r in group])
        row["splits"] = [{"seed": r["seed"], "split_log": r["split_log"]} for r in group if r["split_log"]]
        rows.append(row)
    return {"experiment": NAME, "rows": rows, "paired": paired_differences(groups),
            "epochs": records[0]["config"]["train"]["epochs"], "paper_budget_ratios": PAPER_BUDGET_RATIOS,
            "units": [f"{r['label']}-seed{r['seed']}" for r in records],
            "identities": sorted({recorded_identity(r) for r in records}), "ground_truth": ground_truth_fingerprint(),
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
