"""Yardsticks beside every ranking result: what a supernet's Kendall tau is worth.

- **Trivial baselines** (:func:`baseline_scores`), ranked against the same ground truth as the supernets: the
  parameter count and the FLOPs of the network the ground truth trains (:func:`network_cost`), minus the number of
  live avg_pool_3x3 edges, and the parameter proxy 9 x live conv3x3 + live conv1x1. A supernet that does not beat
  them has learnt nothing a count of ops does not give.
- **Within-group tau** (:func:`within_group_tau`): Kendall tau-b over the pairs of archs that have the same live
  op-count vector (:func:`live_op_counts`), pooled over the groups: what a ranking knows beyond counting ops. Every
  op-count baseline ties inside a group, so its within-group tau is undefined (None).
- **Seeds** (:func:`mean_ci95`, :func:`min_detectable_difference`): each method's mean tau with a 95 % t-interval
  over seeds; its paired difference (same seed) against SPOS with a 95 % t-interval; the smallest difference a
  two-sided paired t-test at alpha 0.05 detects with 80 % power, ``(t_{1-a/2, n-1} + t_{0.8, n-1}) sd / sqrt(n)``.
- **Cross-dataset** (:func:`nb201_cifar10_scores`): for NB201-space results also the tau against NAS-Bench-201's
  CIFAR-10 test accuracy (200 epochs) of the same archs: another data set and budget, not the benchmark's target.

:func:`main_yardsticks` gathers them for the lite benchmark's main experiment (``python -m pada_lite report --json``).
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Hashable, Sequence

import numpy as np
from scipy import stats

from .metrics import kendall_tau
from .reliability import split_half
from .spaces.nb201 import NB201_OPS, NUM_EDGES, Arch, live_edges
from .standalone import StandaloneConfig

LIVE_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")  # the op-count vector's entries
REFERENCE_METHOD = "SPOS"  # paired differences are taken against it
HEADLINE_METHOD = "PA&DA"  # the main comparison (against the reference), whose power the main table reports
CONFIDENCE = 0.95          # of every interval
ALPHA, POWER = 0.05, 0.80  # of the minimum detectable difference (two-sided paired t-test)
TARGET_MDD = 0.05          # the tau difference the main experiment should detect with 80 % power
MDD_FORMULA = "(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n), alpha 0.05, power 0.8, n seeds"
CROSS_DATASET = ("NAS-Bench-201 CIFAR-10 test accuracy (200 epochs) of the same archs: a cross-dataset yardstick "
                 "(other data, other training budget), not the lite benchmark's target")


# -------------------------------------------------------------------------------------------- baselines
def live_op_counts(arch: Sequence[str]) -> tuple[int, ...]:
    """Number of live edges (on an input-output path) carrying each op of LIVE_OPS: the arch's op-count vector."""
    ops = [op for op, live in zip(arch, live_edges(arch)) if live]
    return tuple(ops.count(op) for op in LIVE_OPS)


def network_cost(arch: Sequence[str], config: StandaloneConfig | None = None) -> tuple[int, int]:
    """(parameters, FLOPs of one image) of the stand-alone network the ground truth trains for ``arch``: that of the
    network with no cell op plus each edge's op, measured once per op (cached). Every edge of a stage maps C to C
    channels at one resolution, so an op costs the same on any edge, dead or live (tests check the sum against
    :func:`measure_network_cost`)."""
    config = config or StandaloneConfig.lite()
    base, per_op = _op_costs(json.dumps(config.to_dict(), sort_keys=True))
    params, flops = base + sum(per_op[op] for op in arch if op != "none")
    return int(params), int(flops)


@lru_cache(maxsize=None)
def _op_costs(config_json: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cost [params, FLOPs] of the network without cell ops, and what one edge's op adds, per op."""
    config = StandaloneConfig.from_dict(json.loads(config_json))
    empty = ("none",) * NUM_EDGES
    base = np.array(measure_network_cost(empty, config))
    return base, {op: np.array(measure_network_cost((op,) + empty[1:], config)) - base
                  for op in NB201_OPS if op != "none"}


def measure_network_cost(arch: Sequence[str], config: StandaloneConfig) -> tuple[int, int]:
    """(parameters, FLOPs of one image) of the network ``BatchedNB201([arch])`` (exactly the modules the ground
    truth trains), FLOPs counted by ``torch.utils.flop_counter`` (convolutions and the classifier's matmul, 2 per
    multiply-add; pooling, BN, ReLU and additions are not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .standalone import BatchedNB201
    space = config.space_config()
    model = BatchedNB201([tuple(arch)], space).eval()
    params = sum(p.numel() for p in model.parameters())
    image = torch.zeros(1, space.in_channels, config.image_size, config.image_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(image)
    return int(params), int(counter.get_total_flops())


def baseline_scores(archs: Sequence[Arch], config: StandaloneConfig | None = None) -> dict[str, np.ndarray]:
    """Trivial predictors (higher = predicted better) of every arch: network size and op counts on live edges."""
    costs = np.array([network_cost(a, config) for a in archs], dtype=float)  # [N, 2]
    counts = np.array([live_op_counts(a) for a in archs], dtype=float)      # [N, len(LIVE_OPS)]
    column = {op: counts[:, k] for k, op in enumerate(LIVE_OPS)}
    return {"parameters": costs[:, 0], "FLOPs": costs[:, 1],
            "minus live avg_pool_3x3": -column["avg_pool_3x3"],
            "9 x live conv3x3 + live conv1x1": 9 * column["nor_conv_3x3"] + column["nor_conv_1x1"]}


def op_count_fit(archs: Sequence[Arch], scores: Sequence[float]) -> dict:
    """Least-squares fit of ``scores`` on the live op counts (intercept + one slope per op of LIVE_OPS): R^2 and
    the coefficients (score change per extra live edge with that op); coefficients None when the counts do not
    identify them (e.g. every arch has the same number of live edges: the counts sum to a constant)."""
    y = np.asarray(scores, dtype=float)
    x = np.column_stack([np.ones(len(y)), np.array([live_op_counts(a) for a in archs], dtype=float)])
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    r2 = 1.0 - float(residual @ residual) / float(((y - y.mean()) ** 2).sum())
    if rank < x.shape[1]:
        return {"r2": r2, "intercept": None, "coefficients": None}
    return {"r2": r2, "intercept": float(coef[0]), "coefficients": dict(zip(LIVE_OPS, map(float, coef[1:])))}


# ---------------------------------------------------------------------------------------- within-group tau
def within_group_tau(true: Sequence[float], pred: Sequence[float], groups: Sequence[Hashable]) -> float | None:
    """Kendall tau-b over the pairs of items in the same group, pooled over groups:
    ``(C - D) / sqrt(U_true * U_pred)`` with C / D the concordant / discordant within-group pairs and U_x the
    within-group pairs not tied in x (groups of one item add no pair). None when U_true or U_pred is 0."""
    t, p = np.asarray(true, dtype=float), np.asarray(pred, dtype=float)
    if not len(t) == len(p) == len(groups):
        raise ValueError(f"true, pred and groups must have equal lengths, got {len(t)}, {len(p)}, {len(groups)}")
    codes = {g: k for k, g in enumerate(dict.fromkeys(groups))}
    g = np.array([codes[x] for x in groups])
    i, j = np.triu_indices(len(t), 1)
    same = g[i] == g[j]
    dt, dp = np.sign(t[i] - t[j])[same], np.sign(p[i] - p[j])[same]
    untied_t, untied_p = int((dt != 0).sum()), int((dp != 0).sum())
    if untied_t == 0 or untied_p == 0:
        return None
    return float((dt * dp).sum() / np.sqrt(untied_t * untied_p))


def rank_error_correlation(true: Sequence[float], pred: Sequence[float], covariate: Sequence[float]) -> float:
    """Spearman correlation between each item's rank error (its rank by ``pred`` minus its rank by ``true``;
    positive: placed too high) and ``covariate``: whether a ranking misplaces items in one direction of it."""
    error = stats.rankdata(pred) - stats.rankdata(true)
    return float(stats.spearmanr(covariate, error).statistic)


def skip_pool_edges(counts: tuple[int, ...]) -> int:
    """Live skip_connect + avg_pool_3x3 edges of an op-count vector (:func:`live_op_counts`): the ops PA starves."""
    return counts[LIVE_OPS.index("skip_connect")] + counts[LIVE_OPS.index("avg_pool_3x3")]


# ------------------------------------------------------------------------------------------------- seeds
def mean_ci95(values: Sequence[float]) -> dict:
    """Mean, sample sd, n and the 95 % t-interval of the mean ``[low, high]`` (None for fewer than 2 values)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "sd": None, "n": 1, "ci95": None}
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(v) - 1)) * sd / np.sqrt(len(v))
    return {"mean": mean, "sd": sd, "n": int(len(v)), "ci95": [mean - half, mean + half]}


def min_detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean difference a two-sided paired t-test at ``alpha`` detects with probability ``power`` from
    ``n`` pairs whose differences have sd ``sd``: ``(t_{1-alpha/2, n-1} + t_{power, n-1}) sd / sqrt(n)``."""
    if n < 2:
        raise ValueError(f"a paired test needs at least 2 pairs, got {n}")
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / np.sqrt(n))


def pairs_needed(sd: float, target: float, alpha: float = ALPHA, power: float = POWER, most: int = 1000) -> int | None:
    """Fewest pairs whose minimum detectable difference (sd ``sd``) is at most ``target``; None if over ``most``."""
    for n in range(2, most + 1):
        if min_detectable_difference(sd, n, alpha, power) <= target:
            return n
    return None


# ------------------------------------------------------------------------------------------ cross-dataset
def nb201_cifar10_scores(archs: Sequence[Arch]) -> np.ndarray:
    """NAS-Bench-201 CIFAR-10 test accuracy (%, 200 epochs) of ``archs`` (downloaded once, or $PADA_LITE_MIRROR)."""
    from .groundtruth import GroundTruth
    return GroundTruth.nb201().accuracies(archs)


# ---------------------------------------------------------------------------------------- the main table
def ranking_yardsticks(true: np.ndarray, pred: np.ndarray, groups: Sequence[tuple], nb201: np.ndarray) -> dict:
    """tau, within-group tau and the cross-dataset tau of one ranking ``pred`` of the archs, and how its rank errors
    go with the archs' live skip + pool edges (``groups``: their op-count vectors)."""
    return {"tau": kendall_tau(true, pred), "within_group_tau": within_group_tau(true, pred, groups),
            "nb201_cifar10_tau": kendall_tau(nb201, pred),
            "rank_error_vs_skip_pool": rank_error_correlation(true, pred, [skip_pool_edges(g) for g in groups])}


def method_rows(runs: dict[str, dict[int, dict]], reference: str = REFERENCE_METHOD) -> list[dict]:
    """Per method: its seeds, mean tau with CI, within-group and cross-dataset tau with CIs, and the paired
    difference against ``reference`` over the seeds both have. ``runs``: {method: {seed: ranking_yardsticks}}."""
    rows = []
    for name, by_seed in runs.items():
        seeds = sorted(by_seed)
        tau = mean_ci95([by_seed[s]["tau"] for s in seeds])
        within = mean_ci95([by_seed[s]["within_group_tau"] for s in seeds])
        cross = mean_ci95([by_seed[s]["nb201_cifar10_tau"] for s in seeds])
        bias = mean_ci95([by_seed[s]["rank_error_vs_skip_pool"] for s in seeds])
        row = {"name": name, "seeds": len(seeds), "seed_ids": seeds, "tau_per_seed": [by_seed[s]["tau"] for s in seeds],
               "tau_mean": tau["mean"], "tau_ci95": tau["ci95"], "tau_sd": tau["sd"],
               "within_group_tau": within["mean"], "within_group_tau_ci95": within["ci95"],
               "nb201_cifar10_tau": cross["mean"], "nb201_cifar10_tau_ci95": cross["ci95"],
               "rank_error_vs_skip_pool": bias["mean"], "rank_error_vs_skip_pool_ci95": bias["ci95"]}
        if name != reference:
            paired = [s for s in seeds if s in runs[reference]]
            diff = mean_ci95([by_seed[s]["tau"] - runs[reference][s]["tau"] for s in paired])
            row[f"difference_vs_{reference}"] = {
                "pairs": len(paired), "seed_ids": paired, "mean": diff["mean"], "ci95": diff["ci95"], "sd": diff["sd"],
                "min_detectable": None if diff["sd"] is None else min_detectable_difference(diff["sd"], len(paired))}
        rows.append(row)
    return rows


def headline_difference_sd(rows: list[dict], headline: str = HEADLINE_METHOD,
                           reference: str = REFERENCE_METHOD) -> tuple[float | None, int]:
    """The sd of ``headline``'s paired differences against ``reference`` and its number of pairs; (None, 0) while
    it has fewer than two pairs."""
    diff = next((r.get(f"difference_vs_{reference}") for r in rows if r["name"] == headline), None)
    if not diff or diff["sd"] is None:
        return None, 0
    return diff["sd"], diff["pairs"]


def pooled_difference_sd(rows: list[dict], reference: str = REFERENCE_METHOD) -> tuple[float | None, int]:
    """Root mean square of the methods' sds of paired differences against ``reference``, and the pairs per method
    (the smallest number any method has); (None, 0) while no method has two pairs."""
    diffs = [r[f"difference_vs_{reference}"] for r in rows if r.get(f"difference_vs_{reference}", {}).get("sd")
             is not None]
    if not diffs:
        return None, 0
    return float(np.sqrt(np.mean([d["sd"] ** 2 for d in diffs]))), min(d["pairs"] for d in diffs)


def ground_truth_yardsticks(payload: dict, archs: Sequence[Arch], nb201: np.ndarray) -> dict:
    """Reliability of the lite ground truth (split-half tau overall and within groups), its op-count fit and its
    agreement with NAS-Bench-201."""
    from .benchmark import complete_seeds
    from .reliability import ground_truth_report
    report = ground_truth_report(payload)
    seeds = complete_seeds(payload)
    acc = np.array([payload["eval_acc"][str(s)] for s in seeds], dtype=float)  # [S, N]
    groups = [live_op_counts(a) for a in archs]
    mean = np.asarray(payload["mean_eval_acc"], dtype=float)
    r = report["all"]
    return {"name": payload["name"], "seeds": len(seeds), "seed_ids": seeds, "num_archs": len(archs),
            "split_half_tau": r.get("half_tau"), "split_half_seeds": r.get("half_seeds"),
            "full_tau_projected": r.get("full_tau_projected"), "single_run_tau": r["seed_tau"],
            "mean_acc_min": r["mean_acc_min"], "mean_acc_max": r["mean_acc_max"], "seed_std": r["seed_std"],
            "within_group_split_half_tau": split_half(acc, lambda a, b: within_group_tau(a, b, groups)),
            "op_count_groups": len(set(groups)),
            "op_count_groups_with_pairs": sum(groups.count(g) > 1 for g in set(groups)),
            "within_group_pairs": sum(n * (n - 1) // 2 for n in map(groups.count, set(groups))),
            "op_count_fit": op_count_fit(archs, mean),
            "nb201_cifar10_tau": kendall_tau(nb201, mean)}


def run_scores(record: dict, archs: Sequence[Arch]) -> np.ndarray:
    """A supernet run's accuracy of each of ``archs`` ([A], in that order), from its record (any arch order)."""
    from .spaces import str_to_arch
    position = {str_to_arch(a): k for k, a in enumerate(record["archs"])}
    return np.asarray(record["supernet_acc"], dtype=float)[[position[tuple(a)] for a in archs]]


def main_yardsticks(experiment: str = "v2-main", partial: bool = False) -> dict:
    """The yardsticks of a main experiment (``python -m pada_lite report --json``): ground truth, methods (tau with
    CIs, within-group tau, paired differences against SPOS, cross-dataset tau), baselines, power. ``partial``: from
    the units finished so far instead of the complete experiment (``main.missing_units`` counts the runs not done)."""
    from .benchmark import PLANS, load_lite_ground_truth, read_artifact
    from .experiments import benchmark_of, experiment_units, finished_records, load_experiment
    from .spaces import str_to_arch
    if not partial:
        load_experiment(experiment)  # raises with the command to run when the saved runs are stale or missing
    path = PLANS[benchmark_of(experiment)].artifact()
    payload = read_artifact(path)
    archs = [str_to_arch(a) for a in payload["archs"]]
    truth = load_lite_ground_truth(path).accuracies(archs)
    nb201 = nb201_cifar10_scores(archs)
    groups = [live_op_counts(a) for a in archs]
    runs: dict[str, dict[int, dict]] = {}
    records = finished_records(experiment)
    missing = len(experiment_units(experiment)) - len(records)
    for record in records:
        pred = run_scores(record, archs)
        runs.setdefault(record["label"], {})[record["seed"]] = ranking_yardsticks(truth, pred, groups, nb201)
    rows = method_rows(runs)
    sd, pairs = headline_difference_sd(rows)
    pooled_sd, pooled_pairs = pooled_difference_sd(rows)
    baselines = [{"name": name, **ranking_yardsticks(truth, score, groups, nb201)}
                 for name, score in baseline_scores(archs).items()]
    return {"ground_truth": ground_truth_yardsticks(payload, archs, nb201),
            "main": {"experiment": experiment, "num_archs": len(archs), "reference": REFERENCE_METHOD,
                     "headline": HEADLINE_METHOD, "methods": rows, "baselines": baselines,
                     "paired_difference_sd": sd, "paired_seeds": pairs,
                     "min_detectable_tau_difference": None if sd is None else min_detectable_difference(sd, pairs),
                     "target_detectable_difference": TARGET_MDD,
                     "seeds_needed_for_target": None if sd is None else pairs_needed(sd, TARGET_MDD),
                     "all_methods_difference_sd": pooled_sd, "all_methods_paired_seeds": pooled_pairs,
                     "all_methods_min_detectable": (None if pooled_sd is None else
                                                    min_detectable_difference(pooled_sd, pooled_pairs)),
                     "missing_units": missing, "complete": missing == 0,
                     "min_detectable_formula": MDD_FORMULA + f"; sd: that of {HEADLINE_METHOD} - "
                                                             f"{REFERENCE_METHOD} over the paired seeds (all "
                                                             "methods: root mean square of their sds, over the "
                                                             "seeds every method has)"},
            "definitions": {
                "tau": "Kendall tau-b against the lite ground truth (mean over its seeds)",
                "tau_ci95": f"{CONFIDENCE:.0%} t-interval of the mean over seeds",
                "within_group_tau": "Kendall tau-b over the pairs of archs with the same live op-count vector "
                                    f"(counts of {', '.join(LIVE_OPS)} on live edges), pooled over groups",
                "split_half_tau": "mean Kendall tau between the mean accuracies of two disjoint halves of the "
                                  "ground truth's seeds (measured)",
                "nb201_cifar10_tau": CROSS_DATASET,
                "rank_error_vs_skip_pool": "Spearman correlation between each arch's rank error (supernet rank minus "
                                           "true rank; +: placed too high) and its live skip_connect + avg_pool_3x3 "
                                           "edges, mean over seeds"}}
