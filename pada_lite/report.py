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


def ground_truth_table(gt: dict) -> str:
    """The ground truth's reliability, measured: single runs' seed-to-seed tau, the split-half tau of two disjoint
    halves of its seeds (overall and within op-count groups), its op-count fit and its agreement with NB201.
    ``gt``: the ``ground_truth`` entry of :func:`pada_lite.yardsticks.main_yardsticks`."""
    half = f"{gt['split_half_tau']:.3f} ({gt['split_half_seeds']} per half)" if gt["split_half_tau"] else "fewer than 4"
    within = gt["within_group_split_half_tau"]
    return _table(["archs", "complete seeds", "seed-to-seed tau (single runs)", "split-half tau (measured)",
                   "within-group split-half tau", "op-count fit R^2", "tau vs NB201 CIFAR-10", "mean accuracy (%)",
                   "seed std (%)"],
                  [[str(gt["num_archs"]), str(gt["seeds"]), f"{gt['single_run_tau']:.3f}", half,
                    "" if within is None else f"{within:.3f}", f"{gt['op_count_fit']['r2']:.2f}",
                    f"{gt['nb201_cifar10_tau']:.3f}", f"{gt['mean_acc_min']:.1f}-{gt['mean_acc_max']:.1f}",
                    f"{gt['seed_std']:.2f}"]])


def metrics_table(summary: dict) -> str:
    """Per setting of an experiment summary: its seeds, Spearman, P@Top-k %, Top-n rank, GV over the last epochs,
    final training accuracy and CPU minutes per run (mean ± std over seeds)."""
    from .experiments import LATE_EPOCHS
    first = summary["rows"][0]["all"]
    top_p = next(k for k in first if k.startswith("p_at_top"))
    top_n = next(k for k in first if k.startswith("top") and k.endswith("_rank"))
    rows = [[f"{row['label']} ({len(row['seeds'])})", pm(row["all"]["spearman_rho"]), pm(row["all"][top_p], 2),
             pm(row["all"][top_n], 1), f"{row['grad_var_late']['mean']:.3g}", pm(row["final_train_acc"], 1),
             f"{row['cpu_time_s']['mean'] / 60:.1f}" if "cpu_time_s" in row else ""] for row in summary["rows"]]
    n = top_n[len("top"):-len("_rank")]
    return _table(["setting (seeds)", "Spearman", f"P@Top{top_p[len('p_at_top'):]}%", f"Top-{n} rank (1 = best)",
                   f"GV, last {LATE_EPOCHS} epochs", "final train acc (%)", "CPU minutes per run"], rows)


def interval(ci: list[float] | None, digits: int = 3) -> str:
    """'[low, high]' of a confidence interval ('' when there is none)."""
    return "" if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def paired_verdict(difference: dict | None, better: str = "better than", worse: str = "worse than",
                   same: str = "not distinguishable from") -> str:
    """How a method compares with the reference by its paired difference's 95 % CI (``difference_vs_<reference>``
    of :func:`pada_lite.yardsticks.method_rows`): ``better`` / ``worse`` when the CI excludes 0, else ``same``."""
    if not difference or difference["ci95"] is None:
        return "not yet comparable (fewer than two paired seeds) with"
    low, high = difference["ci95"]
    return better if low > 0 else (worse if high < 0 else same)


def yardsticks_table(yardsticks: dict, methods: list[str] | None = None) -> str:
    """Each method's tau with its 95 % CI over seeds, within-group tau, paired difference against the reference
    with its CI and the cross-dataset tau (NB201 CIFAR-10), then the trivial baselines (one value each); only
    ``methods`` (in their order) when given."""
    main = yardsticks["main"]
    reference = main["reference"]
    by_name = {m["name"]: m for m in main["methods"]}
    rows = []
    for m in (main["methods"] if methods is None else [by_name[n] for n in methods if n in by_name]):
        diff = m.get(f"difference_vs_{reference}")
        rows.append([f"{m['name']} ({m['seeds']})", f"{m['tau_mean']:.3f} {interval(m['tau_ci95'])}",
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


def results_markdown() -> str:
    """The lite benchmark's results (ground truth, main experiment with its yardsticks, progress of the other
    experiments), from data/groundtruth/v2.json and the finished runs of data/results/v2-*/."""
    from .benchmark import PLANS, read_artifact
    from .experiments import experiment_units, finished_records, load_experiment
    from .reliability import ground_truth_cost
    from .yardsticks import main_yardsticks
    payload = read_artifact(PLANS["v2"].artifact())
    cost = ground_truth_cost(payload)
    yardsticks = main_yardsticks("v2-main", partial=True)
    main = load_experiment("v2-main", partial=True)
    progress = [f"v2-main: {len(main['units'])} of {len(main['units']) + main['missing_units']} runs finished"]
    progress += [f"{name}: {len(finished_records(name))} of {len(experiment_units(name))} runs finished"
                 for name in ("v2-ablations", "v2-motivation")]
    return "\n\n".join([
        f"Ground truth (`data/groundtruth/v2.json`): the mean accuracy of each of the {len(payload['archs'])} "
        f"architectures on 40k unseen images (10k test + 30k held out of training), over its complete seeds "
        f"({len(payload['complete_seeds'])} of the {len(payload['seeds'])} planned):",
        ground_truth_table(yardsticks["ground_truth"]),
        f"Its {cost['units']} finished units took {cost['cpu_h']:.1f} CPU hours. {cost_by_cpu_sentence(cost)}",
        "Main experiment (`data/results/v2-main/`; each supernet ranks the same 105 networks on 10k held-out images; "
        "within-group tau: pairs of archs with the same live op counts; baselines: trivial predictors ranked against "
        "the same ground truth):", yardsticks_table(yardsticks), yardsticks_sentence(yardsticks),
        "The same runs' other metrics (CPU minutes: one run on one thread, including a GV measurement after every "
        "epoch and, for SPOS and PA&DA on the first 5 seeds, a ranking every 10 epochs):",
        metrics_table(main), "Progress: " + "; ".join(progress) + "."])


def cost_by_cpu_sentence(cost: dict) -> str:
    """What the whole ground truth takes on each CPU kind its units ran on (they differ several-fold)."""
    parts = [f"{cpu}: {c['cpu_min_per_unit']:.1f} CPU minutes per unit ({c['timed_units']} units), "
             f"{c['wall_h_all_seeds']:.1f} h for all {cost['seeds']} seeds"
             for cpu, c in sorted(cost["by_cpu"].items(), key=lambda kv: kv[1]["cpu_min_per_unit"])]
    return f"By CPU kind, on {cost['cores']} idle cores: {'; '.join(parts)}." if len(parts) > 1 else ""


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
