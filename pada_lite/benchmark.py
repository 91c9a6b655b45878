"""The lite benchmark's ground truth: every evaluation arch (:mod:`pada_lite.evalset`) trained stand-alone, resumably.

**Ground truth** (:func:`compute_ground_truth`): every evaluation arch trained stand-alone
(:mod:`pada_lite.standalone`) with each seed. The work is cut into units (a group of ``config.group_size``
consecutive archs, one seed); each unit is a job of kind ``groundtruth`` (:mod:`pada_lite.runner`): its record is
written at once to ``<out_dir>/units/<unit>.json`` and skipped when the computation is run again with the same
config, and the merged artifact ``<out_dir>.json`` (``data/groundtruth/lite.json``) is rewritten after every unit.
Inside a unit the training state is saved every 5 minutes to ``<out_dir>/partial/`` (git-ignored), so a run killed
with its session continues mid-unit: ``python -m pada_lite groundtruth`` again.

**Setting** (:meth:`pada_lite.standalone.StandaloneConfig.lite`): Fashion-MNIST at 8x8, C=4, three cells per stage,
20,000 training images, 6 epochs (474 SGD steps of 256): a short-budget accuracy, as NAS-Bench-201's 12-epoch table.
Each network is scored on 40,000 images it never trained on: the whole 10,000-image test set plus 30,000 held-out
training-set images (``eval_acc``; the test set alone is kept as ``test_acc``). The ground truth is the **mean over
seeds** ``SEEDS`` (0..8): single runs agree only to a Kendall tau of about 0.57, so the reliability that matters is
that of the mean, measured by splitting the seeds into two disjoint halves
(:func:`pada_lite.reliability.half_split_tau`) and projected to the whole mean by Spearman-Brown
(:func:`pada_lite.reliability.tau_of_averages`). Seeds are added without invalidating anything: the merged artifact
averages the seeds that every arch has (``complete_seeds``).

How it was chosen (``data/groundtruth/lite_pilot.json``; pilot archs: the first units' archs):

- 16x16, C=8, one cell per stage, 12k images, 8 epochs (the calibration setting): seed-to-seed tau 0.34 over 16
  archs, mean accuracies 87.2..88.6 %, seed std 0.26 %. With one cell per stage the stem and the ResNet blocks do
  the work and the cell barely matters: the spread of the archs is as small as the noise.
- Same cost, other shapes (seed 0, 16 archs): spread std 0.17 % (8x8, C=8, 1 cell), 0.36 % (8x8, C=8, 2 cells)
  and 1.71 % (8x8, C=4, 3 cells): thinner, deeper networks make the cell choice matter.
- 8x8, C=4, 3 cells, 20k images x 6 epochs over 32 archs: seed-to-seed tau 0.59, seed std 0.87 %.
- The same with 30k images x 10 epochs (2.5x the training): seed std 0.57 %, but the archs converge to similar
  accuracies (most within 85.6..87.8 %): tau 0.30 on the same 32 archs. Longer training hurt, so the short budget
  stayed.
- Four more settings on the first 16 archs, 2 seeds each (``benchmarks/pilot_groundtruth.py``): batch 128 at lr
  0.05, 16x16 with 3 cells (12k images) and with 1 cell, 28x28 with 1 cell (10k images, 4 epochs). Their ratio of
  seed noise to spread is 0.57-1.0 against 0.52 for the lite setting on the same archs: training the networks
  better shrinks the noise and the spread together. Hence the seeds are averaged instead.

**Version 2** (``PLANS["v2"]``, ``python -m pada_lite groundtruth --benchmark v2``, artifact
``data/groundtruth/v2.json``): the same networks and training, on the 105 stratified archs only (the 64 conv-only
archs differ by less than their seed noise) and averaged over 26 seeds, so that two halves of 13 seeds agree to a
Kendall tau of at least 0.90 (measured when complete; the pilots in ``benchmarks/pilot_v2.py`` projected 11.7 seeds
per half from v1's nine, and 12.4 with the tenth: 13 per half leaves a margin).
The results of v1's units are reused for the (arch, seed) pairs they hold (:func:`reusable_results`): a network's
result does not depend on the archs trained beside it. Units run seed-major, so a partial v2 has whole seeds.

Budget: 11 units of 16 archs per seed, two single-threaded workers on a 2-core machine.
:func:`pada_lite.reliability.ground_truth_cost` computes the CPU hours from the unit records, split by the CPU each
unit ran on (the README and the chapter print it): CPU kinds differ several-fold on this convolution-bound training,
so the same ground truth fits the 6-hour budget on one 2-core machine and not on another. Resumable across sessions.
``--seeds`` adds or removes seeds without recomputing the others."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .evalset import ARCH_SET_DOCS, EVALUATION_SET_DOC, evaluation_archs, is_conv_only, motivation_archs, sampled_archs
from .groundtruth import GroundTruth
from .paths import data_home, locate
from .provenance import provenance, read_json, write_json
from .runner import Context, Job, JobKind, config_diff, job_header, load_record, neutral, register, run_jobs
from .spaces.nb201 import Arch, arch_to_str, str_to_arch
from .standalone import StandaloneConfig, groups_of, total_steps

DEFAULT_OUT = data_home() / "groundtruth" / "lite"
PILOT_RECORD = locate(data_home() / "groundtruth" / "lite_pilot.json")  # the settings tried before the lite one
SEEDS = tuple(range(9))    # training seeds of the ground truth (its mean is over the seeds every arch has)
RESUME_COMMAND = "python -m pada_lite groundtruth"
PROVENANCE_KEYS = ("pada_lite_version", "torch_version", "python", "device", "git_commit", "created")
SCORES = ("eval_acc", "test_acc")  # accuracy on test + held-out images (the ground truth), on the test set alone


@dataclass(frozen=True)
class GroundTruthPlan:
    """A ground truth to compute: its archs and seeds, its folder, and the folders whose results it may reuse."""

    name: str                          # folder <data home>/groundtruth/<name>, artifact <name>.json
    archs: Callable[[], list]          # the archs, in unit order
    seeds: tuple                       # training seeds; the ground truth is the mean over them
    reuse: tuple = ()                  # sibling folders lending (arch, seed) results of the same config

    def folder(self) -> Path:
        """Where its units live."""
        return data_home() / "groundtruth" / self.name

    def artifact(self) -> Path:
        """Its merged artifact, ``<data home>/groundtruth/<name>.json``."""
        return artifact_path(self.folder())


PLANS = {  # lite (v1): all 169 evaluation archs, 9 seeds; v2: the 105 sampled archs, 26 seeds (v1's 9 reused);
    # v2-motivation: the 13 archs of 'none' and 'nor_conv_3x3' that every motivation supernet can rank, 24 seeds
    "lite": GroundTruthPlan("lite", evaluation_archs, SEEDS),
    "v2": GroundTruthPlan("v2", sampled_archs, tuple(range(26)), ("lite",)),
    "v2-motivation": GroundTruthPlan("v2-motivation", motivation_archs, tuple(range(24)), ("lite", "v2")),
}


class GroundTruthError(RuntimeError):
    """Raised when the lite ground truth is missing, partial, corrupt or of another config; says how to fix it."""


# -------------------------------------------------------------------------------------------------- units
@dataclass(frozen=True)
class Unit:
    """One piece of ground-truth work: a group of archs trained with one seed."""

    group: int
    seed: int
    archs: tuple

    @property
    def name(self) -> str:
        return f"g{self.group:02d}-s{self.seed}"


@dataclass
class StandaloneJob:
    """The config of a ground-truth job: ``archs`` trained stand-alone with run ``seed``."""

    config: StandaloneConfig
    seed: int
    archs: tuple                                # official arch strings
    checkpoint_every_s: float = neutral(300.0)  # the training state is saved this often (seconds)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return {"config": self.config.to_dict(), "seed": self.seed, "archs": list(self.archs),
                "checkpoint_every_s": self.checkpoint_every_s}

    @classmethod
    def from_dict(cls, d: dict) -> "StandaloneJob":
        """Inverse of :meth:`to_dict`."""
        return cls(StandaloneConfig.from_dict(d["config"]), int(d["seed"]), tuple(d["archs"]),
                   d.get("checkpoint_every_s", 300.0))


def plan_units(archs: Sequence[Arch], seeds: Sequence[int], group_size: int) -> list[Unit]:
    """Units covering every (arch, seed): groups of ``group_size`` consecutive archs, seed-major (a seed is complete
    before the next starts, so a partial ground truth already has whole seeds to measure reliability on)."""
    groups = groups_of([tuple(a) for a in archs], group_size)
    return [Unit(g, int(seed), tuple(group)) for seed in seeds for g, group in enumerate(groups)]


def unit_job(out_dir: Path, unit: Unit, config: StandaloneConfig) -> Job:
    """The job of ``unit``: record ``<out_dir>/units/<unit>.json``, partial state ``<out_dir>/partial/<unit>/``."""
    job_config = StandaloneJob(config, unit.seed, tuple(arch_to_str(a) for a in unit.archs))
    return Job("groundtruth", unit.name, job_config, Path(out_dir) / "units" / f"{unit.name}.json",
               Path(out_dir) / "partial" / unit.name)


def reusable_results(folders: Sequence[Path], config: StandaloneConfig) -> dict[tuple[str, int], dict]:
    """{(arch string, seed): its scores and CPU share} from the unit records in ``folders`` trained with ``config``.

    A network's result does not depend on the other archs of its unit (:mod:`pada_lite.standalone`), so another
    ground truth of the same config lends its (arch, seed) results.
    """
    found: dict[tuple[str, int], dict] = {}
    for folder in folders:
        for path in sorted((Path(folder) / "units").glob("*.json")):
            record = read_json(path)
            if record["job"]["kind"] != "groundtruth" or record["job"]["config"]["config"] != config.to_dict():
                continue
            share = {k: (record.get(k) or 0.0) / len(record["archs"]) for k in ("wall_time_s", "cpu_time_s")}
            for i, arch in enumerate(record["archs"]):
                found.setdefault((arch, int(record["seed"])), {
                    **{key: record[key][i] for key in SCORES}, **share, "device": record.get("device"),
                    "source": f"{Path(folder).name}/units/{path.name}"})
    return found


def reused_record(job: Job, unit: Unit, found: dict[tuple[str, int], dict]) -> dict | None:
    """A record of ``unit`` assembled from results of other folders, or None unless every (arch, seed) is there."""
    parts = [found.get((arch, unit.seed)) for arch in job.config.archs]
    if None in parts:
        return None
    devices = sorted({p["device"] for p in parts if p["device"]})
    return {**job_header(job), **provenance(job.config.config, unit.seed), "unit": unit.name,
            "archs": list(job.config.archs), **{key: [p[key] for p in parts] for key in SCORES},
            **{k: round(sum(p[k] for p in parts), 3) for k in ("wall_time_s", "cpu_time_s")},
            "device": "; ".join(devices) or None, "reused_from": sorted({p["source"] for p in parts})}


def artifact_path(out_dir: Path) -> Path:
    """The merged artifact next to the units folder: ``data/groundtruth/lite`` -> ``data/groundtruth/lite.json``."""
    return Path(out_dir).with_suffix(".json")


# --------------------------------------------------------------------------------------------- computing
def train_unit(job: StandaloneJob, context: Context) -> dict:
    """Train one unit's archs (resuming its partial state); its record."""
    from .standalone import train_and_evaluate
    archs = [str_to_arch(a) for a in job.archs]
    result = train_and_evaluate(archs, job.seed, job.config, context.shared, context.on_progress,
                                context.partial / "state.pt", job.checkpoint_every_s)
    return {"unit": context.name, "seed": job.seed, "archs": list(job.archs), **result,
            **provenance(job.config, job.seed, "cpu")}


def _data_key(config: StandaloneConfig) -> str:
    return json.dumps(config.data_config().__dict__, sort_keys=True)


@lru_cache(maxsize=8)
def _train_images(data_key: str) -> int:
    from .config import DataConfig
    from .data import load_splits
    return len(load_splits(DataConfig(**json.loads(data_key))).train)


def unit_steps(config: StandaloneConfig) -> int:
    """Optimiser steps of one unit (every network of a group trains together)."""
    return total_steps(config, _train_images(_data_key(config)))


def _unit_data(job: StandaloneJob):
    from .data import load_splits
    return load_splits(job.config.data_config())


register(JobKind("groundtruth", StandaloneJob, train_unit, work=lambda job: unit_steps(job.config), setup=_unit_data,
                 setup_key=lambda job: _data_key(job.config)))


def compute_ground_truth(out_dir: str | Path = DEFAULT_OUT, seeds: Sequence[int] = SEEDS,
                         config: StandaloneConfig | None = None, archs: Sequence[Arch] | None = None,
                         limit_units: int | None = None, workers: int = 2, progress: bool = True,
                         reuse: Sequence[str | Path] = (), name: str = "lite") -> dict:
    """Train the units not yet done (at most ``limit_units``), saving each as it finishes; the merged payload.

    ``workers`` single-threaded processes train units in parallel (on a 2-core CPU two single-threaded workers beat
    one two-threaded process, above all when the machine is shared); ``workers <= 1`` trains here. A unit whose
    every (arch, seed) is in the unit records of a ``reuse`` folder (same config) is assembled from them, not trained.
    """
    config = config or StandaloneConfig.lite()
    archs = [tuple(a) for a in (archs if archs is not None else evaluation_archs())]
    out_dir = Path(out_dir)
    units = plan_units(archs, seeds, config.group_size)
    jobs = {u.name: unit_job(out_dir, u, config) for u in units}
    done = {unit: record for unit, job in jobs.items() if (record := load_record(job)) is not None}
    found = reusable_results([Path(f) for f in reuse], config) if reuse else {}
    for unit in units:
        if unit.name not in done and (record := reused_record(jobs[unit.name], unit, found)) is not None:
            write_json(jobs[unit.name].path, record)
            done[unit.name] = record

    def save_artifact() -> dict:
        payload = merge_units(units, done, config, archs, seeds, name)
        path = artifact_path(out_dir)
        if not path.exists() or without_provenance(read_json(path)) != without_provenance(payload):
            write_json(path, payload)  # unchanged results keep their file (and its date) as committed
        return payload

    def on_record(job: Job, record: dict) -> None:
        done[job.name] = record
        save_artifact()

    pending = [job for unit, job in jobs.items() if unit not in done][:limit_units]
    run_jobs(pending, "ground truth", workers, progress=progress, on_record=on_record)
    return save_artifact()


def without_provenance(payload: dict) -> dict:
    """The payload without where and when it was written (compares two writes of the same results)."""
    return {k: v for k, v in payload.items() if k not in PROVENANCE_KEYS}


def merge_units(units: Sequence[Unit], done: dict[str, dict], config: StandaloneConfig, archs: Sequence[Arch],
                seeds: Sequence[int], name: str = "lite") -> dict:
    """The merged artifact: per-seed accuracies (None where a unit is missing), their mean over the seeds that every
    arch has (``complete_seeds``: more seeds can be added without the ground truth going partial), provenance."""
    tables = {key: seed_table(units, done, archs, seeds, key) for key in SCORES}
    complete_seeds = [int(s) for s in seeds if None not in tables["eval_acc"][str(s)]]
    means = {key: mean_over_seeds({str(s): tables[key][str(s)] for s in complete_seeds}) if complete_seeds
             else [None] * len(archs) for key in SCORES}
    groups = {u.name: u.group for u in units}
    unit_info = {unit: unit_summary(r, groups.get(unit, r.get("group"))) for unit, r in sorted(done.items())}
    missing = [u.name for u in units if u.name not in done]
    return {"name": name, "complete": not missing, "missing_units": missing,
            "archs": [arch_to_str(a) for a in archs], "conv_only": [is_conv_only(a) for a in archs],
            "seeds": [int(s) for s in seeds], "complete_seeds": complete_seeds, **tables,
            "mean_eval_acc": means["eval_acc"], "mean_test_acc": means["test_acc"],
            "wall_time_s_total": round(sum(r["wall_time_s"] for r in done.values()), 3),
            "cpu_time_s_total": round(sum(r.get("cpu_time_s") or 0.0 for r in done.values()), 3),
            "units": unit_info, "evaluation_set": ARCH_SET_DOCS.get(name, EVALUATION_SET_DOC),
            **provenance(config.to_dict())}


def unit_summary(record: dict, group: int | None) -> dict:
    """What the merged artifact keeps of a unit record (its cost and origin; ``reused`` if assembled from others)."""
    keys = ("seed", "wall_time_s", "cpu_time_s", "device", "created", "git_commit")
    return {"group": group, **{k: record.get(k) for k in keys}, **({"reused": True} if "reused_from" in record else {})}


def seed_table(units: Sequence[Unit], done: dict[str, dict], archs: Sequence[Arch], seeds: Sequence[int],
               key: str) -> dict[str, list]:
    """{seed: [score ``key`` of each arch, None where its unit is missing]}."""
    position = {a: i for i, a in enumerate(archs)}
    table = {str(s): [None] * len(archs) for s in seeds}
    for unit in units:
        if unit.name in done:
            for arch, value in zip(unit.archs, done[unit.name][key]):
                table[str(unit.seed)][position[arch]] = value
    return table


def mean_over_seeds(table: dict[str, list]) -> list:
    """Mean score of each arch over the seeds (None unless every seed has it)."""
    columns = list(zip(*table.values()))
    return [None if None in column else float(np.mean(column)) for column in columns]


# ------------------------------------------------------------------------------------------- reading back
def read_artifact(path: str | Path | None = None) -> dict:
    """The merged ground-truth payload; GroundTruthError with the command to make it when it is missing."""
    path = locate(path if path is not None else artifact_path(DEFAULT_OUT))
    if not path.exists():
        raise GroundTruthError(f"the lite ground truth {path} does not exist: compute it with `{RESUME_COMMAND}` "
                               "(CPU hours, resumable: re-run the command to continue)")
    try:
        return read_json(path)
    except ValueError as err:
        raise GroundTruthError(f"{err}; it is rebuilt from the unit files by `{RESUME_COMMAND} --status`") from None


def load_lite_ground_truth(path: str | Path | None = None, config: StandaloneConfig | None = None) -> GroundTruth:
    """Mean (over seeds) stand-alone test accuracy (%) of every evaluation arch of the lite benchmark."""
    payload = read_artifact(path)
    config = config or StandaloneConfig.lite()
    if payload["config"] != config.to_dict():
        diff = "; ".join(config_diff(StandaloneConfig.from_dict(payload["config"]), config))
        raise GroundTruthError(f"the ground truth was computed with another config ({diff}); recompute it with "
                               f"`{RESUME_COMMAND}` "
                               "into another folder, or pass the matching StandaloneConfig")
    seeds = complete_seeds(payload)
    if len(seeds) < 2:
        raise GroundTruthError(f"the lite ground truth is partial: units {payload['missing_units']} are missing and "
                               f"fewer than 2 seeds are complete; finish it with "
                               f"`{RESUME_COMMAND} --seeds {' '.join(map(str, payload['seeds']))}`")
    table = {str_to_arch(a): m for a, m in zip(payload["archs"], payload["mean_eval_acc"])}
    return GroundTruth(table, f"lite stand-alone ground truth (accuracy on test + held-out images, mean over seeds "
                              f"{seeds})")


def complete_seeds(payload: dict) -> list[int]:
    """The seeds every arch of the artifact has (all its seeds for an artifact written before they were listed)."""
    if "complete_seeds" in payload:
        return list(payload["complete_seeds"])
    return list(payload["seeds"]) if payload.get("complete") else []


def ground_truth_fingerprint(path: str | Path | None = None) -> str:
    """Short hash of the ground truth's archs and mean accuracies (an experiment summary is scored against it)."""
    payload = read_artifact(path)
    blob = json.dumps([payload["archs"], payload["mean_eval_acc"], payload["config"]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
