"""Yardsticks: within-group tau, CIs, power and baselines against hand-computed values; `report --json` against the
artifacts."""
import itertools
import json

import numpy as np
import pytest
from scipy import stats

from pada_lite.standalone import StandaloneConfig
from pada_lite.yardsticks import (
    baseline_scores,
    live_op_counts,
    mean_ci95,
    measure_network_cost,
    min_detectable_difference,
    network_cost,
    op_count_fit,
    pairs_needed,
    split_half,
    within_group_tau,
)

NONE = ("none",) * 6
C3, C1, SKIP, POOL = "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3"


def t_quantile_df2(p):
    """Student t quantile with 2 degrees of freedom, in closed form."""
    return (2 * p - 1) / np.sqrt(2 * p * (1 - p))


# ------------------------------------------------------------------------------------------ within-group tau
def test_within_group_tau_pools_concordant_minus_discordant_pairs():
    true = [1, 2, 3, 4, 5]
    groups = ["a", "a", "a", "b", "b"]
    # group a: pairs (0,1) +, (0,2) +, (1,2) - ; group b: (3,4) +  -> (3 - 1) / 4
    assert within_group_tau(true, [1, 3, 2, 4, 5], groups) == pytest.approx(0.5)
    # a tie in pred: (0,1) tied; 3 concordant of 3 untied pred pairs, 4 untied true pairs -> 3 / sqrt(4 * 3)
    assert within_group_tau(true, [1, 1, 2, 4, 5], groups) == pytest.approx(3 / np.sqrt(12))


def test_within_group_tau_of_one_group_is_kendall_tau_b_and_singletons_add_nothing():
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 4, 12).astype(float), rng.integers(0, 4, 12).astype(float)  # with ties
    one = within_group_tau(true, pred, [0] * 12)
    assert one == pytest.approx(stats.kendalltau(true, pred).statistic)
    assert within_group_tau([*true, 9.0], [*pred, -9.0], [0] * 12 + [1]) == pytest.approx(one)


def test_within_group_tau_is_undefined_without_untied_pairs():
    assert within_group_tau([1, 2, 3], [5, 5, 7], ["a", "a", "b"]) is None   # the one pair ties in pred
    assert within_group_tau([1, 2, 3], [1, 2, 3], ["a", "b", "c"]) is None   # no within-group pair
    with pytest.raises(ValueError, match="equal lengths"):
        within_group_tau([1, 2], [1, 2], ["a"])


def test_split_half_averages_over_the_splits_with_seed_zero_in_the_first_half():
    acc = np.array([[0.0], [1.0], [2.0], [4.0]])  # [S=4, N=1]
    # splits {0,1}|{2,3}: 0.5 - 3 ; {0,2}|{1,3}: 1 - 2.5 ; {0,3}|{1,2}: 2 - 1.5
    assert split_half(acc, lambda a, b: float(a[0] - b[0])) == pytest.approx((-2.5 - 1.5 + 0.5) / 3)


# ------------------------------------------------------------------------------------------------ seeds
def test_mean_ci95_is_the_t_interval():
    ci = mean_ci95([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3
    half = t_quantile_df2(0.975) / np.sqrt(3)
    assert ci["mean"] == 2.0 and ci["sd"] == pytest.approx(1.0) and ci["n"] == 3
    assert ci["ci95"] == pytest.approx([2 - half, 2 + half])
    assert mean_ci95([0.4])["ci95"] is None


def test_min_detectable_difference_formula_and_power():
    expected = (t_quantile_df2(0.975) + t_quantile_df2(0.8)) * 0.1 / np.sqrt(3)  # 0.3097
    assert min_detectable_difference(0.1, 3) == pytest.approx(expected)
    # the true power of a two-sided paired t-test at that difference is about 80 % (noncentral t)
    for n in (5, 10):
        delta, crit = min_detectable_difference(1.0, n), stats.t.ppf(0.975, n - 1)
        nct = stats.nct(n - 1, delta * np.sqrt(n))
        assert 0.77 < nct.sf(crit) + nct.cdf(-crit) < 0.83
    # for many pairs it tends to the normal approximation (z_0.975 + z_0.8) sd / sqrt(n)
    assert min_detectable_difference(1.0, 2000) * np.sqrt(2000) == pytest.approx(1.95996 + 0.84162, rel=2e-3)
    with pytest.raises(ValueError, match="at least 2"):
        min_detectable_difference(0.1, 1)


def test_pairs_needed_is_the_first_n_whose_detectable_difference_reaches_the_target():
    n = pairs_needed(0.1, 0.05)
    assert min_detectable_difference(0.1, n) <= 0.05 < min_detectable_difference(0.1, n - 1)
    assert 33 <= n <= 36  # normal approximation: (1.96 + 0.84)^2 x (0.1 / 0.05)^2 = 31.4, plus the t's excess
    assert pairs_needed(0.01, 0.05) == 3  # n = 2: (12.71 + 1.38) x 0.01 / 1.41 = 0.0996 is still too wide
    assert pairs_needed(1.0, 0.05, most=50) is None


# --------------------------------------------------------------------------------------------- baselines
def test_live_op_counts_ignore_dead_edges():
    # edge 1->2 (conv3x3) is fed by node 1, which nothing reaches: dead
    assert live_op_counts(("none", "none", C3, C1, "none", "none")) == (0, 1, 0, 0)
    assert live_op_counts((SKIP, POOL, C3, C1, C3, POOL)) == (1, 1, 2, 2)


def test_network_cost_of_one_edge_op_by_hand():
    """Lite network C=4: a 3x3 ReLUConvBN in each of 3 cells per stage, 4/8/16 channels at 8x8/4x4/2x2."""
    base = np.array(network_cost(NONE))
    conv3 = np.array(network_cost((C3,) + NONE[1:])) - base
    conv1 = np.array(network_cost((NONE[0], C1) + NONE[2:])) - base
    params3 = 3 * sum(9 * c * c + 2 * c for c in (4, 8, 16))           # weights + BN affine
    flops3 = 3 * sum(2 * 9 * c * c * s * s for c, s in ((4, 8), (8, 4), (16, 2)))
    assert tuple(conv3) == (params3, flops3) == (9240, 165888)
    assert tuple(conv1) == (3 * sum(c * c + 2 * c for c in (4, 8, 16)), flops3 // 9)
    assert network_cost((SKIP, POOL) + NONE[2:]) == tuple(base)


def test_network_cost_sums_to_the_measured_network():
    config = StandaloneConfig.lite()
    for arch in ((C3, C1, SKIP, POOL, C3, "none"), ("none", "none", C3, C1, "none", POOL)):
        assert network_cost(arch, config) == measure_network_cost(arch, config)


def test_baseline_scores_by_hand():
    archs = [(C3, C3, POOL, C1, "none", C3), (POOL, C1, SKIP, POOL, C1, SKIP), (C3, C3, POOL, C1, "none", "none")]
    scores = baseline_scores(archs)
    assert list(scores["minus live avg_pool_3x3"]) == [-1, -2, 0]  # third: only edge 0->3 reaches the output
    assert list(scores["9 x live conv3x3 + live conv1x1"]) == [28, 2, 1]
    assert scores["parameters"][0] > scores["parameters"][1] and scores["FLOPs"][0] > scores["FLOPs"][1]


def test_op_count_fit_recovers_a_linear_truth():
    from pada_lite.spaces.nb201 import NB201_OPS
    archs = [a for a in itertools.product(NB201_OPS, repeat=6) if any(live_op_counts(a))][::97]
    y = [70 + 1.5 * live_op_counts(a)[2] - 0.5 * live_op_counts(a)[3] for a in archs]
    fit = op_count_fit(archs, y)
    assert fit["r2"] == pytest.approx(1.0) and fit["intercept"] == pytest.approx(70)
    assert fit["coefficients"] == pytest.approx({SKIP: 0, C1: 0, C3: 1.5, POOL: -0.5}, abs=1e-9)
    y = [v + (1 if k % 2 else -1) for k, v in enumerate(y)]  # +-1 noise: R^2 = 1 - 1 / var(y)
    assert op_count_fit(archs, y)["r2"] == pytest.approx(1 - 1 / np.var(y), abs=0.02)


def test_op_count_fit_leaves_unidentified_coefficients_out():
    archs = [tuple(a) for a in itertools.product((SKIP, C1, C3, POOL), repeat=6)][::97]  # always 6 live edges
    fit = op_count_fit(archs, [live_op_counts(a)[2] for a in archs])
    assert fit["coefficients"] is None and fit["r2"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ report --json
@pytest.fixture(scope="module")
def report_json():
    import contextlib
    import io

    from pada_lite.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", "--json"]) == 0
    return json.loads(out.getvalue())


def _t_interval(values):
    v = np.asarray(values, dtype=float)
    return list(stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v)))


def _v2_payload():
    from pada_lite.benchmark import PLANS, read_artifact
    return read_artifact(PLANS["v2"].artifact())


def test_report_json_ground_truth_matches_the_artifact(report_json):
    from pada_lite.reliability import half_splits
    payload = _v2_payload()
    gt = report_json["ground_truth"]
    seeds = payload["complete_seeds"]
    assert gt["seed_ids"] == seeds and gt["seeds"] == len(seeds) and gt["num_archs"] == len(payload["archs"]) == 105
    acc = np.array([payload["eval_acc"][str(s)] for s in seeds])  # [S, N]
    splits = half_splits(len(seeds))
    assert all(len(a) == len(b) == len(seeds) // 2 and not set(a) & set(b) for a, b in splits)
    taus = [stats.kendalltau(acc[a].mean(0), acc[b].mean(0)).statistic for a, b in splits]
    assert gt["split_half_tau"] == pytest.approx(np.mean(taus)) and gt["split_half_seeds"] == len(seeds) // 2
    assert np.asarray(payload["mean_eval_acc"]) == pytest.approx(acc.mean(0), abs=1e-6)


def _run_accuracies(file_label: str, seed: int, archs: list[str]) -> np.ndarray:
    """The committed v2-main run's supernet accuracies, in the order of ``archs`` (arch strings)."""
    from pada_lite.experiments import RESULTS_DIR
    record = json.loads((RESULTS_DIR / "v2-main" / f"{file_label}-seed{seed}.json").read_text())
    position = {a: k for k, a in enumerate(record["archs"])}
    return np.array(record["supernet_acc"])[[position[a] for a in archs]]


def _per_seed_taus():
    """{method: {seed: tau}} of the finished v2-main runs, scored by the experiment summary (not the yardsticks)."""
    from pada_lite.experiments import load_experiment
    per_seed = {}
    for r in load_experiment("v2-main", partial=True)["per_seed"]:
        per_seed.setdefault(r["label"], {})[r["seed"]] = r["metrics"]["all"]["kendall_tau"]
    return per_seed


def test_report_json_methods_match_the_runs(report_json):
    per_seed = _per_seed_taus()
    methods = {m["name"]: m for m in report_json["main"]["methods"]}
    assert list(methods) == list(per_seed) and report_json["main"]["experiment"] == "v2-main"
    for name, by_seed in per_seed.items():
        m, taus = methods[name], [by_seed[s] for s in sorted(by_seed)]
        assert m["seed_ids"] == sorted(by_seed) and m["seeds"] == len(by_seed)
        assert m["tau_mean"] == pytest.approx(np.mean(taus))
        if len(taus) > 1:
            assert m["tau_ci95"] == pytest.approx(_t_interval(taus))
        assert -1 <= m["within_group_tau"] <= 1 and -1 <= m["nb201_cifar10_tau"] <= 1
        if name != "SPOS":
            paired = [s for s in sorted(by_seed) if s in per_seed["SPOS"]]
            diffs = [by_seed[s] - per_seed["SPOS"][s] for s in paired]
            assert m["difference_vs_SPOS"]["mean"] == pytest.approx(np.mean(diffs))
            if len(diffs) > 1:
                assert m["difference_vs_SPOS"]["ci95"] == pytest.approx(_t_interval(diffs))


def test_report_json_power_is_that_of_the_headline_pair(report_json):
    per_seed = _per_seed_taus()
    paired = [s for s in sorted(per_seed["PA&DA"]) if s in per_seed["SPOS"]]
    diffs = [per_seed["PA&DA"][s] - per_seed["SPOS"][s] for s in paired]
    n = len(diffs)
    factor = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) / np.sqrt(n)
    main = report_json["main"]
    assert main["headline"] == "PA&DA" and main["paired_seeds"] == n
    assert main["min_detectable_tau_difference"] == pytest.approx(factor * np.std(diffs, ddof=1))
    assert main["complete"] == (main["missing_units"] == 0)


def _within_group_tau_pair_by_pair(truth, pred, keys):
    s = untied_t = untied_p = 0
    for i, j in itertools.combinations(range(len(keys)), 2):
        if keys[i] == keys[j]:
            dt, dp = np.sign(truth[i] - truth[j]), np.sign(pred[i] - pred[j])
            s, untied_t, untied_p = s + dt * dp, untied_t + (dt != 0), untied_p + (dp != 0)
    return s / np.sqrt(untied_t * untied_p)


def test_report_json_within_group_tau_of_spos(report_json):
    """SPOS's within-group tau, recomputed pair by pair from its unit files and the ground truth."""
    from pada_lite.spaces import str_to_arch
    from pada_lite.spaces.nb201 import live_edges
    payload = _v2_payload()
    truth = np.array(payload["mean_eval_acc"])
    keys = [tuple(sorted(op for op, on in zip(a, live_edges(a)) if on)) for a in map(str_to_arch, payload["archs"])]
    spos = [m for m in report_json["main"]["methods"] if m["name"] == "SPOS"][0]
    values = []
    for seed in spos["seed_ids"]:
        values.append(_within_group_tau_pair_by_pair(truth, _run_accuracies("SPOS", seed, payload["archs"]), keys))
    assert spos["within_group_tau"] == pytest.approx(np.mean(values))
    assert spos["within_group_tau_ci95"] == pytest.approx(_t_interval(values))


def test_report_json_baselines_include_size_and_op_counts(report_json):
    from pada_lite.spaces import str_to_arch
    payload = _v2_payload()
    baselines = {b["name"]: b for b in report_json["main"]["baselines"]}
    assert {"parameters", "FLOPs", "minus live avg_pool_3x3", "9 x live conv3x3 + live conv1x1"} <= set(baselines)
    pools = [-live_op_counts(str_to_arch(a))[3] for a in payload["archs"]]
    expected = stats.kendalltau(payload["mean_eval_acc"], pools).statistic
    assert baselines["minus live avg_pool_3x3"]["tau"] == pytest.approx(expected)
    assert baselines["parameters"]["within_group_tau"] is None  # the same op counts: the same size


def test_split_halves_are_all_enumerated_when_few_and_drawn_when_many():
    from pada_lite.reliability import MAX_SPLITS, half_splits
    few = half_splits(6)
    assert len(few) == 10 and all(0 in a and not set(a) & set(b) and len(a) == len(b) == 3 for a, b in few)
    assert half_splits(5)[0] == ([0, 1], [2, 3])  # odd: the last unused seed is left out
    many = half_splits(24)
    assert len(many) == MAX_SPLITS == len({tuple(a) for a, _ in many})
    assert all(0 in a and not set(a) & set(b) and len(a) == len(b) == 12 for a, b in many)


def test_partial_report_counts_the_finished_and_the_missing_units():
    from pada_lite.experiments import experiment_units
    from pada_lite.yardsticks import main_yardsticks
    report = main_yardsticks("v2-main", partial=True)
    finished = sum(m["seeds"] for m in report["main"]["methods"])
    assert finished + report["main"]["missing_units"] == len(experiment_units("v2-main"))
    assert report["ground_truth"]["num_archs"] == 105 and report["main"]["num_archs"] == 105
    assert {b["name"] for b in report["main"]["baselines"]} >= {"parameters", "FLOPs"}


def test_split_half_curve_and_its_projection_against_hand_values():
    from pada_lite.metrics import kendall_tau
    from pada_lite.reliability import seeds_per_half_for, split_half_curve
    acc = np.random.default_rng(0).normal(size=(4, 6)) + np.arange(6)  # [seeds, archs]
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    one = np.mean([kendall_tau(acc[i], acc[j]) for i, j in pairs])
    two = np.mean([kendall_tau(acc[list(a)].mean(0), acc[[s for s in range(4) if s not in a]].mean(0))
                   for a in ((0, 1), (0, 2), (0, 3))])
    assert split_half_curve(acc, [1, 2]) == pytest.approx([one, two])
    many = np.random.default_rng(1).normal(size=(24, 30))
    assert split_half_curve(many, [12]) == split_half_curve(many, [12])  # drawn halves: a fixed seed
    assert seeds_per_half_for(0.9, 3) == pytest.approx(3.0)  # already at the target
    assert seeds_per_half_for(0.5, 1, target=2 / np.pi * np.arcsin(2 * np.sin(np.pi / 4) / (1 + np.sin(np.pi / 4)))) \
        == pytest.approx(2.0)  # Spearman-Brown: twice the seeds
    with pytest.raises(ValueError, match="need 6 seeds"):
        split_half_curve(acc, [3])


def test_report_prints_the_v2_tables_with_their_baselines(capsys):
    from pada_lite.cli import main
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert "| baseline: parameters |" in out and "split-half tau" in out and "v2-main:" in out


def test_paired_verdict_reads_the_interval_and_the_table_keeps_the_asked_methods():
    from pada_lite.report import paired_verdict, yardsticks_table
    assert paired_verdict({"ci95": [0.01, 0.2]}) == "better than"
    assert paired_verdict({"ci95": [-0.2, -0.01]}) == "worse than"
    assert paired_verdict({"ci95": [-0.1, 0.1]}) == "not distinguishable from"
    assert paired_verdict({"ci95": None}).startswith("not yet comparable")
    assert paired_verdict(None).startswith("not yet comparable")
    method = {"tau_mean": 0.5, "tau_ci95": [0.4, 0.6], "within_group_tau": 0.2, "within_group_tau_ci95": None,
              "nb201_cifar10_tau": 0.3, "nb201_cifar10_tau_ci95": None, "seeds": 2}
    ys = {"main": {"reference": "A", "baselines": [],
                   "methods": [{**method, "name": "A"},
                               {**method, "name": "B", "difference_vs_A": {"mean": 0.1, "ci95": [0.05, 0.15]}}]}}
    table = yardsticks_table(ys, methods=["B", "missing"])
    assert "| B (2) |" in table and "| A (2) |" not in table and "+0.100 [+0.050, +0.150]" in table


def test_rank_error_correlation_by_hand():
    from pada_lite.yardsticks import rank_error_correlation, skip_pool_edges
    true = [1.0, 2.0, 3.0, 4.0]
    pred = [3.0, 4.0, 1.0, 2.0]           # ranks 3 4 1 2 against 1 2 3 4: errors +2 +2 -2 -2
    covariate = [0, 0, 1, 1]              # the items with the covariate are placed too low
    assert rank_error_correlation(true, pred, covariate) == pytest.approx(-1.0)
    assert rank_error_correlation(true, pred, [1, 1, 0, 0]) == pytest.approx(1.0)  # placed too high
    assert skip_pool_edges((1, 2, 0, 3)) == 4  # skip 1 + pool 3


def test_report_json_rank_error_of_pada_matches_its_runs(report_json):
    from pada_lite.spaces import str_to_arch
    payload = _v2_payload()
    archs = [str_to_arch(a) for a in payload["archs"]]
    rare = [live_op_counts(a)[0] + live_op_counts(a)[3] for a in archs]  # live skip + pool
    true_rank = stats.rankdata(payload["mean_eval_acc"])
    pada = [m for m in report_json["main"]["methods"] if m["name"] == "PA&DA"][0]
    values = []
    for seed in pada["seed_ids"]:
        pred = _run_accuracies("PA_DA", seed, payload["archs"])
        values.append(stats.spearmanr(rare, stats.rankdata(pred) - true_rank).statistic)
    assert pada["rank_error_vs_skip_pool"] == pytest.approx(np.mean(values))


def test_run_scores_follow_the_asked_arch_order():
    from pada_lite.spaces import arch_to_str, conv_only_archs
    from pada_lite.yardsticks import run_scores
    archs = conv_only_archs()[:3]
    record = {"archs": [arch_to_str(a) for a in reversed(archs)], "supernet_acc": [30.0, 20.0, 10.0]}
    assert run_scores(record, archs).tolist() == [10.0, 20.0, 30.0]


def test_mean_ci_trace_draws_the_mean_and_the_t_interval_over_seeds():
    from pada_lite.plotting import mean_ci_trace
    values = [[0.1, 0.5], [0.3, 0.5], [0.2, 0.8]]  # [seeds, x]
    trace = mean_ci_trace([10, 20], values, "SPOS", "#7f7f7f")
    assert trace.name == "SPOS (3 seeds)" and list(trace.y) == pytest.approx([0.2, 0.6])
    low, high = _t_interval([0.1, 0.3, 0.2])
    assert trace.error_y.array[0] == pytest.approx(high - 0.2)
    assert trace.error_y.arrayminus[0] == pytest.approx(0.2 - low)
    assert mean_ci_trace([10], [[0.4]], "one").error_y.visible is False
