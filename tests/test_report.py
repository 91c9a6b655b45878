"""The README's result tables are made from the artifacts, and say what the artifacts say."""
import numpy as np
import pytest

from pada_lite.report import README, ground_truth_table, metrics_table, pm, readme_block, results_markdown


def _stat(mean, std=0.0, n=3):
    return {"mean": mean, "std": std, "n": n}


def test_mean_pm_std_formatting():
    assert pm(_stat(0.31234, 0.0456)) == "0.312 ± 0.046"
    assert pm(_stat(2.0, 0.0, 1), 1) == "2.0"


def test_metrics_table_has_one_row_per_setting_with_its_seeds_and_cpu_minutes():
    metrics = {"kendall_tau": _stat(0.4, 0.01), "spearman_rho": _stat(0.55, 0.02), "p_at_top5": _stat(0.1),
               "top5_rank": _stat(12.0, 3.0)}
    rows = [{"label": name, "seeds": seeds, "all": metrics, "grad_var_late": _stat(1e-3),
             "final_train_acc": _stat(70.0, 1.0), "cpu_time_s": _stat(600.0)}
            for name, seeds in (("SPOS", [0, 1, 2]), ("PA&DA", [0]))]
    table = metrics_table({"rows": rows}).splitlines()
    assert len(table) == 4 and "Top-5 rank" in table[0] and "P@Top5%" in table[0]
    assert table[2].startswith("| SPOS (3) | 0.550 ± 0.020 | 0.10 ± 0.00 | 12.0 ± 3.0 | 0.001 | 70.0 ± 1.0 | 10.0 |")
    assert table[3].startswith("| PA&DA (1) |")
    del rows[1]["cpu_time_s"]  # records without CPU time (v1) leave the cell empty
    assert metrics_table({"rows": rows}).splitlines()[3].endswith("|  |")


def test_ground_truth_table_reports_the_measured_split_half():
    from pada_lite.reliability import subset_report
    rng = np.random.default_rng(1)
    acc = rng.normal(size=12) + rng.normal(scale=0.5, size=(4, 12))  # [S, N]
    r = subset_report(acc)
    gt = {"num_archs": 12, "seeds": 4, "split_half_tau": 0.9123, "split_half_seeds": 2, "single_run_tau": r["seed_tau"],
          "mean_acc_min": r["mean_acc_min"], "mean_acc_max": r["mean_acc_max"], "seed_std": r["seed_std"],
          "within_group_split_half_tau": 0.5, "op_count_fit": {"r2": 0.55}, "nb201_cifar10_tau": 0.4}
    table = ground_truth_table(gt).splitlines()
    assert "split-half tau (measured)" in table[0]
    assert table[2].startswith(f"| 12 | 4 | {r['seed_tau']:.3f} | 0.912 (2 per half) | 0.500 | 0.55 |")
    assert table[2].endswith(f"| {r['mean_acc_min']:.1f}-{r['mean_acc_max']:.1f} | {r['seed_std']:.2f} |")


def test_readme_block_requires_the_markers():
    with pytest.raises(ValueError, match="results:start"):
        readme_block("no markers here")


def test_readme_results_match_the_artifacts():
    """Fails when an artifact changed and `python -m pada_lite report --update-readme` was not run."""
    assert readme_block(README.read_text()) == results_markdown()
