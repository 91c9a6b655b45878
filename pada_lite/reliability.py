"""How reliable a ground truth of averaged seeds is: seed-to-seed Kendall tau, split-half tau projected to the
whole mean (Spearman-Brown), accuracy spread and seed noise; and what it cost, per CPU kind."""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from .benchmark import complete_seeds, read_artifact
from .metrics import kendall_tau
from .provenance import label_cpu


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


MAX_SPLITS = 1000  # split-halves averaged at most: beyond, that many drawn at random (fixed seed)


def half_splits(seeds: int) -> list[tuple[list[int], list[int]]]:
    """Splits of ``seeds`` seeds into two disjoint halves of ``seeds // 2`` (seed 0 always in the first; for odd
    counts the last unused seed is left out): all of them, or MAX_SPLITS drawn at random without repeats."""
    half = seeds // 2
    rest = lambda a: [i for i in range(seeds) if i not in a][:half]  # noqa: E731
    if math.comb(seeds - 1, half - 1) <= MAX_SPLITS:
        return [(list(a), rest(a)) for a in itertools.combinations(range(seeds), half) if 0 in a]
    rng, drawn = np.random.default_rng(0), set()
    while len(drawn) < MAX_SPLITS:
        drawn.add((0, *sorted(rng.choice(np.arange(1, seeds), half - 1, replace=False).tolist())))
    return [(list(a), rest(a)) for a in sorted(drawn)]


def split_half(acc: np.ndarray, agreement) -> float:
    """Mean ``agreement(half_mean_a, half_mean_b)`` over the splits of the seeds of ``acc`` [S, N] into two disjoint
    halves (:func:`half_splits`)."""
    if len(acc) < 2:
        raise ValueError(f"a split-half agreement needs at least 2 seeds, got {len(acc)}")
    return float(np.mean([agreement(acc[a].mean(0), acc[b].mean(0)) for a, b in half_splits(len(acc))]))


def split_half_curve(acc: np.ndarray, sizes: Sequence[int]) -> list[float]:
    """Measured Kendall tau between the means of two disjoint k-seed halves of ``acc`` [S, N], for each k of
    ``sizes``: the mean over every pair of disjoint halves, or over MAX_SPLITS pairs drawn at random (fixed seed)."""
    seeds, curve = len(acc), []
    for k in sizes:
        if 2 * k > seeds:
            raise ValueError(f"two disjoint halves of {k} seeds need {2 * k} seeds, got {seeds}")
        pairs = math.comb(seeds, k) * math.comb(seeds - k, k) // 2
        if pairs <= MAX_SPLITS:
            halves = [(list(a), list(b)) for a in itertools.combinations(range(seeds), k)
                      for b in itertools.combinations([s for s in range(seeds) if s not in a], k) if a < b]
        else:
            rng = np.random.default_rng(0)
            halves = [(list(d[:k]), list(d[k:2 * k])) for d in (rng.permutation(seeds) for _ in range(MAX_SPLITS))]
        curve.append(float(np.mean([kendall_tau(acc[a].mean(0), acc[b].mean(0)) for a, b in halves])))
    return curve


def seeds_per_half_for(tau_k: float, k: float, target: float = 0.90) -> float:
    """Seeds per half projected to give a split-half tau of ``target``, from the measured ``tau_k`` at ``k`` seeds
    per half (Spearman-Brown on Greiner's r = sin(pi tau / 2)): a projection, not a measurement."""
    r, goal = np.sin(np.pi * tau_k / 2), np.sin(np.pi * target / 2)
    return float(k * goal * (1 - r) / (r * (1 - goal)))


def half_split_tau(acc: np.ndarray) -> dict:
    """Tau between the mean accuracies of two disjoint halves of the seeds (mean over the splits), for >= 4 seeds:
    how well a ground truth of ``h = S // 2`` averaged seeds reproduces (for odd S each split leaves one seed out);
    and that value projected to the whole S-seed mean (:func:`tau_of_averages` with ``S / h`` times as many runs).
    {} for fewer seeds."""
    seeds = len(acc)
    if seeds < 4:
        return {}
    half = seeds // 2
    half_tau = split_half(acc, kendall_tau)
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
