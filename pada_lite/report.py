"""Markdown tables of the lite results, made from the artifacts (README, notes): numbers are never typed by hand.

``python -m pada_lite report`` prints them; ``--update-readme`` rewrites the block between the README's
``<!-- results:start -->`` and ``<!-- results:end -->`` markers, and a test checks that the README matches the
artifacts.
"""
from __future__ import annotations

from pathlib import Path

from .paths import PACKAGE

README = PACKAGE.parent / "README.md"  # the checkout's README (``report --update-readme`` runs in a checkout)
START, END = "<!-- results:start -->", "<!-- results:end -->"


def pm(stat: dict, digits: int = 3) -> str:
    """'mean ± std' of a summary statistic (just the mean for one value)."""
    if stat["n"] < 2:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def ground_truth_table(report: dict) -> str:
    """Seed-to-seed Kendall tau (single runs; with >= 4 seeds also between two disjoint half-means and projected to
    the whole mean), accuracy range and seed noise of the lite ground truth, per arch subset."""
    halves = "half_tau" in report["all"]
    seeds = len(report["seeds"])
    rows = []
    for subset, name in (("all", "all"), ("conv_only", "64 conv-only"), ("sampled", "sampled")):
        r = report[subset]
        extra = [f"{r['half_tau']:.3f}", f"{r['full_tau_projected']:.3f}"] if halves else []
        rows.append([f"{name} ({r['num_archs']})", f"{r['seed_tau']:.3f}", *extra,
                     f"{r['mean_acc_min']:.1f}-{r['mean_acc_max']:.1f}", f"{r['seed_std']:.2f}"])
    extra = ([f"tau between two {report['all']['half_seeds']}-seed means",
              f"projected tau of the {seeds}-seed mean"] if halves else [])
    return _table(["archs", "seed-to-seed Kendall tau (single runs)", *extra, "mean accuracy (%)",
                   "seed std (%)"], rows)


def main_table(summary: dict) -> str:
    """Main experiment: ranking metrics (all evaluation archs), conv-only tau, GV and train time, mean ± std."""
    rows = []
    for row in summary["rows"]:
        a = row["all"]
        top_p = next(k for k in a if k.startswith("p_at_top"))
        top_n = next(k for k in a if k.endswith("_rank") and k.startswith("top"))
        rows.append([row["label"], pm(a["kendall_tau"]), pm(a["spearman_rho"]), pm(a[top_p], 2), pm(a[top_n], 1),
                     pm(row["conv64"]["kendall_tau"]), f"{row['grad_var_final']['mean']:.3g}",
                     f"{row['train_time_s']['mean']:.0f}"])
    seeds = summary["rows"][0]["all"]["kendall_tau"]["n"]
    n = top_n[len("top"):-len("_rank")]
    return _table([f"method ({seeds} seeds)", "Kendall tau", "Spearman", f"P@Top{top_p[len('p_at_top'):]}%",
                   f"Top-{n} rank (1 = best)", "tau conv-64", "GV (final)", "train s"], rows)


def interval(ci: list[float] | None, digits: int = 3) -> str:
    """'[low, high]' of a confidence interval ('' when there is none)."""
    return "" if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def yardsticks_table(yardsticks: dict) -> str:
    """Each method's tau with its 95 % CI over seeds, within-group tau, paired difference against the reference
    with its CI and the cross-dataset tau (NB201 CIFAR-10), then the trivial baselines (one value each)."""
    main = yardsticks["main"]
    reference = main["reference"]
    rows = []
    for m in main["methods"]:
        diff = m.get(f"difference_vs_{reference}")
        rows.append([f"{m['name']} ({len(m['seeds'])})", f"{m['tau_mean']:.3f} {interval(m['tau_ci95'])}",
                     f"{m['within_group_tau']:.3f} {interval(m['within_group_tau_ci95'])}",
                     "" if diff is None else f"{diff['mean']:+.3f} {interval(diff['ci95'])}",
                     f"{m['nb201_cifar10_tau']:.3f} {interval(m['nb201_cifar10_tau_ci95'])}"])
    for b in main["baselines"]:
        within = "undefined (ties in every group)" if b["within_group_tau"] is None else f"{b['within_group_tau']:.3f}"
        rows.append([f"baseline: {b['name']}", f"{b['tau']:.3f}", within, "", f"{b['nb201_cifar10_tau']:.3f}"])
    return _table(["ranking (seeds); 95 % CI over seeds", "Kendall tau", "within-group tau",
                   f"paired difference vs {reference}", "tau vs NB201 CIFAR-10 (cross-dataset)"], rows)


def needed(main: dict) -> str:
    """How many paired seeds reach the target detectable difference at the measured sd."""
    n, target = main["seeds_needed_for_target"], main["target_detectable_difference"]
    return f"{target:.2f} needs {n if n else 'over 1000'} paired seeds"


def yardsticks_sentence(yardsticks: dict) -> str:
    """Power of the main table and the ground truth's own reliability, overall and within op-count groups."""
    main, gt = yardsticks["main"], yardsticks["ground_truth"]
    fit = gt["op_count_fit"]
    slopes = (", ".join(f"{op} {b:+.2f}" for op, b in fit["coefficients"].items()) if fit["coefficients"]
              else "not identified: the live edges are as many in every arch")
    headline = main["headline"]
    power = (f"not measurable yet: {headline} has fewer than two seeds paired with {main['reference']}"
             if main["min_detectable_tau_difference"] is None else
             f"{main['min_detectable_tau_difference']:.3f} (sd of the paired differences "
             f"{main['paired_difference_sd']:.3f}; {needed(main)})")
    pooled = ("" if main["all_methods_min_detectable"] is None else
              f" Over every method (root mean square of their sds, {main['all_methods_paired_seeds']} seeds "
              f"each) it is {main['all_methods_min_detectable']:.3f}.")
    return (f"Smallest tau difference between {headline} and {main['reference']} that a paired t-test (alpha 0.05, "
            f"two-sided) detects with 80 % power from {main['paired_seeds']} seeds: {power}.{pooled} "
            f"The ground truth's split-half "
            f"tau (two {gt['split_half_seeds']}-seed means, measured) is {gt['split_half_tau']:.3f}; within op-count "
            f"groups ({gt['within_group_pairs']} pairs in {gt['op_count_groups_with_pairs']} groups) the two halves "
            f"agree at {gt['within_group_split_half_tau']:.3f}. A linear fit on live op counts explains "
            f"R^2 = {fit['r2']:.2f} of the ground truth (points per live edge: {slopes}); it agrees with NB201 "
            f"CIFAR-10 at tau {gt['nb201_cifar10_tau']:.3f}.")


def motivation_table(summary: dict) -> str:
    """Motivation experiment: final GV and Kendall tau on the 64 conv archs per number of candidate ops."""
    rows = [[row["label"], f"{row['grad_var_final']['mean']:.3g}", pm(row["conv64"]["kendall_tau"])]
            for row in summary["rows"]]
    return _table(["candidate ops per edge", "GV (final, mean)", "Kendall tau on the 64 conv archs"], rows)


def results_markdown() -> str:
    """All lite result tables, from data/groundtruth/lite.json and data/results/{main,motivation}.json."""
    from .benchmark import read_artifact
    from .experiments import load_experiment
    from .reliability import ground_truth_cost, ground_truth_report
    from .yardsticks import main_yardsticks
    main, motivation = load_experiment("main"), load_experiment("motivation")
    payload = read_artifact()
    cost, report = ground_truth_cost(payload), ground_truth_report(payload)
    yardsticks = main_yardsticks()
    return "\n\n".join([
        f"Lite ground truth (`data/groundtruth/lite.json`; 40k unseen images per arch; the mean of "
        f"{len(report['seeds'])} seeds):", ground_truth_table(report),
        f"Its {cost['units']} units took {cost['cpu_h']:.1f} CPU hours ({cost['cpu_h_per_seed']:.2f} per seed): "
        f"about {cost['wall_h']:.1f} h on two idle cores. {cost_by_cpu_sentence(cost)}",
        "Main experiment (`data/results/main.json`; scored against the lite ground truth; train s: one run's wall time "
        "on one core, including the GV measurement after every epoch and, for SPOS and PA&DA, the per-epoch ranking "
        "of the 64 conv archs):", main_table(main),
        "The main experiment beside its yardsticks (`python -m pada_lite report --json`; within-group tau: pairs of "
        "archs with the same live op counts; baselines: trivial predictors ranked against the same ground truth):",
        yardsticks_table(yardsticks), yardsticks_sentence(yardsticks),
        "Motivation (`data/results/motivation.json`; SPOS; the conv-only ground truth is itself noise, see above):",
        motivation_table(motivation),
        f"Recomputing these supernet runs (`python -m pada_lite reproduce --workers 2`) took "
        f"{reproduce_wall_hours():.2f} h on this project's 2-core CPU."])


def cost_by_cpu_sentence(cost: dict) -> str:
    """What the whole ground truth takes on each CPU kind its units ran on (they differ several-fold)."""
    parts = [f"{cpu}: {c['cpu_min_per_unit']:.1f} CPU minutes per unit ({c['timed_units']} units), "
             f"{c['wall_h_all_seeds']:.1f} h for all {cost['seeds']} seeds"
             for cpu, c in sorted(cost["by_cpu"].items(), key=lambda kv: kv[1]["cpu_min_per_unit"])]
    return f"By CPU kind, on {cost['cores']} idle cores: {'; '.join(parts)}." if len(parts) > 1 else ""


def reproduce_wall_hours(results_dir: Path | None = None) -> float:
    """Elapsed hours of the last `reproduce`: first unit start to last unit end, from the unit records."""
    from datetime import datetime, timedelta

    from .experiments import REPRODUCED, RESULTS_DIR, experiment_units, load_unit
    records = [load_unit(u, results_dir or RESULTS_DIR) for name in REPRODUCED for u in experiment_units(name)]
    records = [r for r in records if r is not None]
    ends = [datetime.fromisoformat(r["created"]) for r in records]
    starts = [e - timedelta(seconds=r["wall_time_s"]) for e, r in zip(ends, records)]
    return (max(ends) - min(starts)).total_seconds() / 3600


def readme_block(text: str) -> str:
    """The results block of a README text (between the markers)."""
    if START not in text or END not in text:
        raise ValueError(f"the README has no {START} ... {END} block")
    return text[text.index(START) + len(START):text.index(END)].strip()


def update_readme(path: Path = README) -> None:
    """Rewrite the README's results block from the artifacts."""
    text = path.read_text()
    readme_block(text)  # checks the markers
    head, rest = text.split(START, 1)
    path.write_text(f"{head}{START}\n{results_markdown()}\n{END}{rest.split(END, 1)[1]}")
