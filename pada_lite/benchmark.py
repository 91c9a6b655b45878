"""The lite benchmark: a fixed set of evaluation archs and their stand-alone ground truth, computed resumably.

**Evaluation archs** (:func:`evaluation_archs`): the 64 archs built from nor_conv_1x1 / nor_conv_3x3 only (the PA&DA
motivation experiment) plus a stratified sample of the full 5-op space:

- every arch of the space is reduced to its :func:`canonical_arch` (dead edges -> 'none'; nodes 1 and 2 swapped when
  that gives a smaller index and edge 1->2 is 'none'); archs with the same canonical form compute the same function,
  so only canonical forms are candidates (8,764 of the 15,625 archs), and archs whose output is disconnected from the
  input (constant networks) are dropped. An edge is dead when its source is unreachable from the input (it only ever
  sees zeros) or its target cannot reach the output. One approximation: a conv edge fed by zeros still adds its BN
  bias (a learned constant per channel); the canonical form drops it, as NB201's own isomorphism hashing does;
- the candidates (conv-only archs excluded: they are already in) are stratified by (number of nor_conv_3x3,
  number of nor_conv_1x1) on live edges, 21 strata with at most 5 parametric ops, and ``SAMPLE_PER_STRATUM`` archs
  are drawn from each with ``numpy.random.default_rng(SAMPLE_SEED)`` (all of them where a stratum is smaller);
- both lists are shuffled with ``ORDER_SEED`` and interleaved in proportion (64 : 105), so that every unit of
  consecutive archs holds conv-only and sampled archs in about the overall ratio and the first units form the pilot.

**Ground truth** (:func:`compute_ground_truth`): every evaluation arch trained stand-alone (:mod:`pada_lite.standalone`)
with each seed. The work is cut into units (a group of ``config.group_size`` consecutive archs, one seed); each
finished unit is written at once to ``<out_dir>/units/<unit>.json`` and skipped when the computation is run again,
and the merged artifact ``<out_dir>.json`` (``data/groundtruth/lite.json``) is rewritten after every unit. Inside a
unit the training state is saved every 5 minutes to ``<out_dir>/partial/`` (git-ignored), so a run killed with its
session continues mid-unit: ``python -m pada_lite groundtruth`` again.

**Setting** (:meth:`pada_lite.standalone.StandaloneConfig.lite`): Fashion-MNIST at 8x8, C=4, three cells per
stage, 20,000 training images, 6 epochs (474 SGD steps of 256): a short-budget accuracy, as NAS-Bench-201's 12-epoch
table. Each network is scored on 40,000 images it never trained on: the whole 10,000-image test set plus 30,000
held-out training-set images (``eval_acc``; the test set alone is kept as ``test_acc``). The ground truth is the
**mean over seeds** ``SEEDS`` (0..8): single runs agree only to a Kendall tau of about 0.57, so the reliability that
matters is that of the mean, measured by splitting the seeds into two disjoint halves (:func:`half_split_tau`) and
projected to the whole mean by Spearman-Brown (:func:`tau_of_averages`). Seeds are added without invalidating
anything: the merged artifact averages the seeds that every arch has (``complete_seeds``).

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

Budget: 11 units of 16 archs per seed, two single-threaded workers on a 2-core machine. :func:`ground_truth_cost`
computes the CPU hours from the unit records, split by the CPU each unit ran on (the README and the chapter print
it): CPU kinds differ several-fold on this convolution-bound training, so the same ground truth fits the 6-hour
budget on one 2-core machine and not on another. Resumable across sessions. ``--seeds`` adds or removes seeds without recomputing the others.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .groundtruth import GroundTruth
from .metrics import kendall_tau
from .provenance import cpu_model, label_cpu, provenance, read_json, write_json
from .spaces.nb201 import (EDGES, NUM_NODES, PARAMETRIC_OPS, Arch, arch_to_product_index, arch_to_str, conv_only_archs,
                           enumerate_archs, str_to_arch)
from .standalone import StandaloneConfig, groups_of, total_steps

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "data" / "groundtruth" / "lite"
PILOT_RECORD = REPO / "data" / "groundtruth" / "lite_pilot.json"  # the settings tried before the lite one
SAMPLE_SEED = 0            # draws the stratified sample
SAMPLE_PER_STRATUM = 5     # archs per (n_conv3x3, n_conv1x1) stratum: 21 strata -> 105 archs
ORDER_SEED = 0             # fixed order of the evaluation archs (units mix conv-only and sampled archs)
MAX_SAMPLED_PARAMETRIC = 5  # strata of the sample: up to 5 convs (6 convs = the conv-only archs)
SEEDS = tuple(range(9))    # training seeds of the ground truth (its mean is over the seeds every arch has)
RESUME_COMMAND = "python -m pada_lite groundtruth"
UNIT_KEYS = ("unit", "group", "seed", "archs", "config", "test_acc", "eval_acc", "wall_time_s")
SCORES = ("eval_acc", "test_acc")  # accuracy on test + held-out images (the ground truth), on the test set alone


class GroundTruthError(RuntimeError):
    """Raised when the lite ground truth is missing, partial, corrupt or of another config; says how to fix it."""


# ------------------------------------------------------------------------------------------- the arch set
def live_edges(arch: Sequence[str]) -> list[bool]:
    """Whether each edge carries information from the input to the output (a non-'none' op on an in-out path)."""
    forward, backward = {0}, {NUM_NODES - 1}
    for (i, j), op in zip(EDGES, arch):
        if op != "none" and i in forward:
            forward.add(j)
    for (i, j), op in reversed(list(zip(EDGES, arch))):
        if op != "none" and j in backward:
            backward.add(i)
    return [op != "none" and i in forward and j in backward for (i, j), op in zip(EDGES, arch)]


def swap_middle_nodes(arch: Sequence[str]) -> Arch:
    """The arch with nodes 1 and 2 relabelled (only meaningful when edge 1->2 is 'none')."""
    e01, e02, e12, e03, e13, e23 = arch
    return (e02, e01, e12, e03, e23, e13)


def canonical_arch(arch: Sequence[str]) -> Arch:
    """Representative of the archs computing the same function: dead edges become 'none'; when edge 1->2 is
    'none' nodes 1 and 2 are interchangeable and the relabelling with the smaller index is kept; a disconnected
    arch becomes all-'none'."""
    arch = tuple(op if live else "none" for op, live in zip(arch, live_edges(arch)))
    if arch[2] == "none":
        arch = min(arch, swap_middle_nodes(arch), key=arch_to_product_index)
    return arch


def is_disconnected(arch: Sequence[str]) -> bool:
    """Whether the output does not depend on the input (a constant network)."""
    return not any(live_edges(arch))


def op_counts(arch: Sequence[str]) -> tuple[int, int]:
    """(number of nor_conv_3x3, number of nor_conv_1x1) on live edges: the stratum of an arch."""
    ops = [op for op, live in zip(arch, live_edges(arch)) if live]
    return ops.count("nor_conv_3x3"), ops.count("nor_conv_1x1")


def distinct_connected_archs() -> list[Arch]:
    """Canonical forms of every connected arch of the 5-op space (each function once), in index order."""
    return list(_distinct_connected_archs())


@lru_cache(maxsize=1)
def _distinct_connected_archs() -> tuple:
    forms = {canonical_arch(a) for a in enumerate_archs() if not is_disconnected(a)}
    return tuple(sorted(forms, key=arch_to_product_index))


def stratified_sample(per_stratum: int = SAMPLE_PER_STRATUM, seed: int = SAMPLE_SEED) -> list[Arch]:
    """``per_stratum`` distinct archs of every (n_conv3x3, n_conv1x1) stratum with at most 5 convs, fixed seed."""
    strata: dict[tuple[int, int], list[Arch]] = {}
    for arch in distinct_connected_archs():
        if sum(op_counts(arch)) <= MAX_SAMPLED_PARAMETRIC:
            strata.setdefault(op_counts(arch), []).append(arch)
    rng = np.random.default_rng(seed)
    sample = []
    for key in sorted(strata):
        members = strata[key]
        chosen = rng.choice(len(members), size=min(per_stratum, len(members)), replace=False)
        sample += [members[i] for i in sorted(chosen)]
    return sample


def evaluation_archs() -> list[Arch]:
    """The lite benchmark's evaluation archs: the 64 conv-only archs + the stratified sample, in the fixed order."""
    rng = np.random.default_rng(ORDER_SEED)
    conv, sampled = conv_only_archs(), stratified_sample()
    return proportional_merge([conv[i] for i in rng.permutation(len(conv))],
                              [sampled[i] for i in rng.permutation(len(sampled))])


def proportional_merge(first: Sequence, second: Sequence) -> list:
    """Interleave two lists so that every prefix holds them in (nearly) their overall proportion."""
    share, merged, i, j = len(first) / (len(first) + len(second)), [], 0, 0
    while i + j < len(first) + len(second):
        if j == len(second) or (i < len(first) and i < share * (i + j + 1)):
            merged.append(first[i])
            i += 1
        else:
            merged.append(second[j])
            j += 1
    return merged


def is_conv_only(arch: Sequence[str]) -> bool:
    """Whether every edge is nor_conv_1x1 or nor_conv_3x3."""
    return all(op in PARAMETRIC_OPS for op in arch)


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


def plan_units(archs: Sequence[Arch], seeds: Sequence[int], group_size: int) -> list[Unit]:
    """Units covering every (arch, seed): groups of ``group_size`` consecutive archs, group-major (both seeds of a
    group run one after the other, so partial results already give seed-to-seed taus)."""
    groups = groups_of([tuple(a) for a in archs], group_size)
    return [Unit(g, int(seed), tuple(group)) for g, group in enumerate(groups) for seed in seeds]


def unit_path(out_dir: Path, unit: Unit) -> Path:
    return Path(out_dir) / "units" / f"{unit.name}.json"


def checkpoint_path(out_dir: Path, unit: Unit) -> Path:
    """Mid-unit training state (git-ignored: ``partial/`` holds a ``.gitignore`` of ``*``), deleted when done."""
    folder = Path(out_dir) / "partial"
    if not (folder / ".gitignore").exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".gitignore").write_text("*\n")
    return folder / f"{unit.name}.pt"


def artifact_path(out_dir: Path) -> Path:
    """The merged artifact next to the units folder: ``data/groundtruth/lite`` -> ``data/groundtruth/lite.json``."""
    return Path(out_dir).with_suffix(".json")


def read_unit(path: Path, unit: Unit, config: StandaloneConfig) -> dict:
    """A finished unit's record, checked against the unit and config it must belong to."""
    fix = f"delete {path} and run `{RESUME_COMMAND}` again to recompute that unit"
    try:
        record = read_json(path)
        missing = [k for k in UNIT_KEYS if k not in record]
        if missing:
            raise ValueError(f"missing keys {missing}")
        if any(len(record[key]) != len(unit.archs) for key in SCORES):
            raise ValueError(f"{len(record['eval_acc'])} accuracies for {len(unit.archs)} archs")
    except (ValueError, TypeError, AttributeError) as err:
        raise GroundTruthError(f"unit file {path} is corrupt ({err}); {fix}") from None
    if record["config"] != config.to_dict():
        raise GroundTruthError(f"unit file {path} was computed with another config ({_config_diff(record['config'], config)}): "
                               f"use that config, or {fix}")
    if [str_to_arch(a) for a in record["archs"]] != list(unit.archs) or record["seed"] != unit.seed:
        raise GroundTruthError(f"unit file {path} holds other archs or another seed than unit {unit.name}: "
                               f"the evaluation set changed; {fix}")
    return record


def _config_diff(recorded: dict, config: StandaloneConfig) -> str:
    """'field: recorded -> current' for every differing config field."""
    current = config.to_dict()
    keys = sorted(set(recorded) | set(current))
    return ", ".join(f"{k}: {recorded.get(k)!r} -> {current.get(k)!r}" for k in keys if recorded.get(k) != current.get(k))


def finished_units(out_dir: Path, units: Sequence[Unit], config: StandaloneConfig) -> dict[str, dict]:
    """Records of the units already on disk (every file is validated; a bad one raises GroundTruthError)."""
    return {u.name: read_unit(unit_path(out_dir, u), u, config) for u in units if unit_path(out_dir, u).exists()}


# --------------------------------------------------------------------------------------------- computing
_WORKER: dict = {}


def _init_worker(config_dict: dict, threads: int | None, on_step) -> None:
    """Per process: thread count, the data (loaded once) and the step callback."""
    import torch
    from .data import load_splits
    if threads:
        torch.set_num_threads(threads)
    config = StandaloneConfig.from_dict(config_dict)
    _WORKER.update(config=config, splits=load_splits(config.data_config()), on_step=on_step)


def _count_steps(trained, resumed, parent: int, steps: int, restored: bool) -> None:
    """Add ``steps`` to the shared counter of trained or of restored steps; quit if the main process is gone
    (nobody would save the unit)."""
    if os.getppid() != parent:
        os._exit(1)
    counter = resumed if restored else trained
    with counter.get_lock():
        counter.value += steps


def _run_unit(unit: Unit, checkpoint: Path | None = None) -> dict:
    """Train one unit in this (worker) process, resuming ``checkpoint``; its record without provenance."""
    from .standalone import train_and_evaluate
    result = train_and_evaluate(list(unit.archs), unit.seed, _WORKER["config"], _WORKER["splits"],
                                on_step=_WORKER["on_step"], checkpoint_path=checkpoint)
    return {"unit": unit.name, "group": unit.group, "seed": unit.seed, "archs": [arch_to_str(a) for a in unit.archs],
            **result}


def _worker_main(config_dict: dict, threads: int | None, trained, resumed) -> None:
    """Initializer of a pool process: its steps are counted in the shared counters."""
    _init_worker(config_dict, threads, partial(_count_steps, trained, resumed, os.getppid()))


def _bar_callback(bar):
    """Step callback for a progress bar: trained steps advance it, restored steps shrink the work left (keeps the
    rate, hence the ETA, honest)."""
    def on_step(steps: int, restored: bool) -> None:
        if restored:
            bar.total -= steps
            bar.refresh()
        else:
            bar.update(steps)
    return on_step


def compute_ground_truth(out_dir: str | Path = DEFAULT_OUT, seeds: Sequence[int] = SEEDS,
                         config: StandaloneConfig | None = None, archs: Sequence[Arch] | None = None,
                         limit_units: int | None = None, workers: int = 2, threads_per_worker: int | None = 1,
                         progress: bool = True) -> dict:
    """Train the units not yet on disk (at most ``limit_units``), saving each as it finishes; the merged payload.

    ``workers`` processes train units in parallel with ``threads_per_worker`` torch threads each (on a 2-core CPU
    two single-threaded workers beat one two-threaded process, above all when the machine is shared); with
    ``workers <= 1`` the units run in this process (``threads_per_worker=None`` keeps torch's thread count).
    """
    config = config or StandaloneConfig.lite()
    archs = [tuple(a) for a in (archs if archs is not None else evaluation_archs())]
    out_dir = Path(out_dir)
    units = plan_units(archs, seeds, config.group_size)
    done = finished_units(out_dir, units, config)
    pending = [u for u in units if u.name not in done][:limit_units]

    def save_artifact() -> dict:
        payload = merge_units(units, done, config, archs, seeds)
        write_json(artifact_path(out_dir), payload)
        return payload

    if pending:
        _train_units(pending, out_dir, config, workers, threads_per_worker, progress, done, save_artifact)
    return save_artifact()


def _train_units(pending: list[Unit], out_dir: Path, config: StandaloneConfig, workers: int,
                 threads: int | None, progress: bool, done: dict, on_unit: Callable[[], object]) -> None:
    """Train ``pending`` units; as each finishes, write its record, add it to ``done`` and call ``on_unit``."""
    from tqdm.auto import tqdm
    bar = tqdm(total=unit_steps(config) * len(pending), unit="step", disable=not progress, smoothing=0.05,
               desc=f"ground truth: {len(pending)} units")
    label = (f"cpu ({os.cpu_count()} cores, {cpu_model()}), "
             f"{max(1, workers)} worker process(es) x {threads or 'default'} thread(s)")
    for unit, record in _unit_results(pending, out_dir, config, workers, threads, bar):
        record = {**record, **provenance(config, unit.seed, "cpu")}
        record["device"] = label
        write_json(unit_path(out_dir, unit), record)
        checkpoint_path(out_dir, unit).unlink(missing_ok=True)
        done[unit.name] = record
        on_unit()
        bar.write(f"unit {unit.name}: {len(unit.archs)} archs in {record['wall_time_s']:.0f} s "
                  f"(cpu {record['cpu_time_s']:.0f} s)")
    bar.close()


def unit_steps(config: StandaloneConfig) -> int:
    """Optimiser steps of one unit (every network of a group trains together)."""
    from .data import load_splits
    return total_steps(config, len(load_splits(config.data_config()).train))


def _unit_results(pending: list[Unit], out_dir: Path, config: StandaloneConfig, workers: int, threads: int | None,
                  bar):
    """Yield (unit, record) as units finish: in this process (workers <= 1) or in a pool of spawned processes."""
    if workers <= 1:
        import torch
        previous = torch.get_num_threads()
        _init_worker(config.to_dict(), threads, _bar_callback(bar))
        try:
            for unit in pending:
                yield unit, _run_unit(unit, checkpoint_path(out_dir, unit))
        finally:
            torch.set_num_threads(previous)
        return
    ctx = multiprocessing.get_context("spawn")  # fork after torch started its thread pool can hang
    trained, resumed = ctx.Value("q", 0), ctx.Value("q", 0)
    total = bar.total
    with ProcessPoolExecutor(workers, ctx, _worker_main, (config.to_dict(), threads, trained, resumed)) as pool:
        futures = {pool.submit(_run_unit, u, checkpoint_path(out_dir, u)): u for u in pending}
        while futures:
            finished, _ = wait(futures, timeout=2.0, return_when=FIRST_COMPLETED)
            bar.total = total - resumed.value
            bar.update(trained.value - bar.n)
            for future in finished:
                yield futures.pop(future), future.result()


def merge_units(units: Sequence[Unit], done: dict[str, dict], config: StandaloneConfig, archs: Sequence[Arch],
                seeds: Sequence[int]) -> dict:
    """The merged artifact: per-seed accuracies (None where a unit is missing), their mean over the seeds that every
    arch has (``complete_seeds``: more seeds can be added without the ground truth going partial), provenance."""
    tables = {key: seed_table(units, done, archs, seeds, key) for key in SCORES}
    complete_seeds = [int(s) for s in seeds if None not in tables["eval_acc"][str(s)]]
    means = {key: mean_over_seeds({str(s): tables[key][str(s)] for s in complete_seeds}) if complete_seeds
             else [None] * len(archs) for key in SCORES}
    unit_info = {name: {k: r.get(k) for k in ("group", "seed", "wall_time_s", "cpu_time_s", "device", "created",
                                               "git_commit")} for name, r in sorted(done.items())}
    missing = [u.name for u in units if u.name not in done]
    return {"name": "lite", "complete": not missing, "missing_units": missing,
            "archs": [arch_to_str(a) for a in archs], "conv_only": [is_conv_only(a) for a in archs],
            "seeds": [int(s) for s in seeds], "complete_seeds": complete_seeds, **tables,
            "mean_eval_acc": means["eval_acc"], "mean_test_acc": means["test_acc"],
            "wall_time_s_total": round(sum(r["wall_time_s"] for r in done.values()), 3),
            "cpu_time_s_total": round(sum(r.get("cpu_time_s") or 0.0 for r in done.values()), 3),
            "units": unit_info, "evaluation_set": EVALUATION_SET_DOC,
            **provenance(config.to_dict())}


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


EVALUATION_SET_DOC = (f"64 conv-only archs + {SAMPLE_PER_STRATUM} canonical connected archs per (n_conv3x3, n_conv1x1) "
                      f"stratum with <= {MAX_SAMPLED_PARAMETRIC} convs (numpy default_rng({SAMPLE_SEED})), each list shuffled "
                      f"with default_rng({ORDER_SEED}) and interleaved in proportion; see pada_lite.benchmark")


# ------------------------------------------------------------------------------------------- reading back
def read_artifact(path: str | Path | None = None) -> dict:
    """The merged ground-truth payload; GroundTruthError with the command to make it when it is missing."""
    path = Path(path) if path is not None else artifact_path(DEFAULT_OUT)
    if not path.exists():
        raise GroundTruthError(f"the lite ground truth {path} does not exist: compute it with `{RESUME_COMMAND}` "
                               "(about 6 CPU hours, resumable: re-run the command to continue)")
    try:
        return read_json(path)
    except ValueError as err:
        raise GroundTruthError(f"{err}; it is rebuilt from the unit files by `{RESUME_COMMAND} --status`") from None


def load_lite_ground_truth(path: str | Path | None = None, config: StandaloneConfig | None = None) -> GroundTruth:
    """Mean (over seeds) stand-alone test accuracy (%) of every evaluation arch of the lite benchmark."""
    payload = read_artifact(path)
    config = config or StandaloneConfig.lite()
    if payload["config"] != config.to_dict():
        raise GroundTruthError(f"the ground truth was computed with another config "
                               f"({_config_diff(payload['config'], config)}); recompute it with `{RESUME_COMMAND}` "
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


def ground_truth_report(payload: dict | str | Path | None = None, score: str = "eval_acc") -> dict:
    """Seed-to-seed Kendall tau (all archs, conv-only, sampled) and accuracy spread of ``score`` (eval_acc: test +
    held-out images, the ground truth; test_acc: test set alone), over the complete seeds (with fewer than two:
    over all seeds and the archs that have every one)."""
    payload = payload if isinstance(payload, dict) else read_artifact(payload)
    done = complete_seeds(payload)
    seeds = [str(s) for s in (done if len(done) >= 2 else payload["seeds"])]  # else: archs with every seed
    acc = np.array([[np.nan if v is None else v for v in payload[score][s]] for s in seeds])  # [S, N]
    have = ~np.isnan(acc).any(axis=0)
    conv = np.array(payload["conv_only"], dtype=bool)
    report = {"score": score, "num_archs": int(have.sum()), "seeds": [int(s) for s in seeds],
              "complete": payload["complete"]}
    for name, mask in (("all", have), ("conv_only", have & conv), ("sampled", have & ~conv)):
        report[name] = subset_report(acc[:, mask])
    return report


def ground_truth_cost(payload: dict, cores: int = 2) -> dict:
    """CPU hours of the units behind the mean (those of the complete seeds; their mean recorded CPU time x their
    number), per seed, and the elapsed hours on ``cores`` idle cores (one single-threaded unit per core)."""
    seeds = complete_seeds(payload) or list(payload["seeds"])
    units = [u for u in payload["units"].values() if u.get("seed") in seeds]
    timed = [u["cpu_time_s"] for u in units if u.get("cpu_time_s")]
    unit_h = float(np.mean(timed)) / 3600
    cpu_h = unit_h * len(units)
    units_per_seed = len(units) / len(seeds)
    return {"cpu_h": cpu_h, "cpu_h_per_seed": cpu_h / len(seeds), "wall_h": cpu_h / cores, "cores": cores,
            "seeds": len(seeds), "units": len(units), "timed_units": len(timed),
            "cpu_min_per_unit": unit_h * 60, "by_cpu": cost_by_cpu(units, units_per_seed, len(seeds), cores)}


def cost_by_cpu(units: Sequence[dict], units_per_seed: float, num_seeds: int, cores: int) -> dict:
    """Per CPU kind: timed units, CPU minutes per unit, and what the whole ground truth would take on it alone."""
    by_cpu: dict[str, list[float]] = {}
    for u in units:
        if u.get("cpu_time_s"):
            by_cpu.setdefault(label_cpu(u.get("device")) or "CPU not recorded", []).append(u["cpu_time_s"])
    out = {}
    for cpu, times in by_cpu.items():
        unit_s = float(np.mean(times))
        per_seed_h = unit_s * units_per_seed / 3600
        out[cpu] = {"timed_units": len(times), "cpu_min_per_unit": unit_s / 60,
                    "cpu_h_per_seed": per_seed_h, "wall_h_all_seeds": per_seed_h * num_seeds / cores}
    return out


def subset_report(acc: np.ndarray) -> dict:
    """Seed-to-seed tau (mean over seed pairs), spread of the mean accuracy and seed noise of acc [S, N]."""
    if acc.shape[1] < 2 or acc.shape[0] < 2:
        return {"num_archs": int(acc.shape[1])}
    pairs = list(itertools.combinations(range(len(acc)), 2))
    mean = acc.mean(axis=0)
    diffs = np.concatenate([acc[i] - acc[j] for i, j in pairs])
    return {"num_archs": int(acc.shape[1]),
            "seed_tau": float(np.mean([kendall_tau(acc[i], acc[j]) for i, j in pairs])),
            "mean_acc_min": float(mean.min()), "mean_acc_max": float(mean.max()),
            "mean_acc_std": float(mean.std()),
            "seed_abs_diff_mean": float(np.abs(diffs).mean()),
            "seed_std": float(diffs.std() / np.sqrt(2.0)), **half_split_tau(acc)}


def half_split_tau(acc: np.ndarray) -> dict:
    """Tau between the mean accuracies of two disjoint halves of the seeds (mean over the splits), for >= 4 seeds:
    how well a ground truth of ``h = S // 2`` averaged seeds reproduces (for odd S each split leaves one seed out);
    and that value projected to the whole S-seed mean (:func:`tau_of_averages` with ``S / h`` times as many runs).
    {} for fewer seeds."""
    seeds = len(acc)
    if seeds < 4:
        return {}
    half = seeds // 2
    splits = [(a, tuple(i for i in range(seeds) if i not in a)[:half])
              for a in itertools.combinations(range(seeds), half) if 0 in a]
    taus = [kendall_tau(acc[list(a)].mean(0), acc[list(b)].mean(0)) for a, b in splits]
    half_tau = float(np.mean(taus))
    return {"half_seeds": half, "half_tau": half_tau,
            "full_tau_projected": tau_of_averages(half_tau, seeds / half)}


def tau_of_averages(single_tau: float, num_averaged: float) -> float:
    """Projected tau between two independent means of ``num_averaged`` runs, from the tau between two single runs:
    Spearman-Brown ``r_k = k r / (1 + (k-1) r)`` on Greiner's ``r = sin(pi tau / 2)`` (normal scores); ``k`` may be
    a ratio (means of 4 runs -> means of 9: k = 9/4). A tau of at most 0 gives 0: there is no agreement for
    averaging to build on."""
    r = max(float(np.sin(np.pi * single_tau / 2)), 0.0)
    r_k = num_averaged * r / (1 + (num_averaged - 1) * r)
    return float(2 / np.pi * np.arcsin(r_k))
