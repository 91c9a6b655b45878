"""The README's result tables are made from the artifacts, and say what the artifacts say."""
import numpy as np
import pytest

from pada_lite.report import README, main_table, motivation_table, pm, readme_block, results_markdown


def _stat(mean, std=0.0, n=3):
    return {"mean": mean, "std": std, "n": n}


def test_mean_pm_std_formatting():
    assert pm(_stat(0.31234, 0.0456)) == "0.312 ± 0.046"
    assert pm(_stat(2.0, 0.0, 1), 1) == "2.0"


def test_main_table_has_one_row_per_method_with_its_numbers():
    metrics = {"kendall_tau": _stat(0.4, 0.01), "spearman_rho": _stat(0.55, 0.02), "p_at_top5": _stat(0.1),
               "top1_rank": _stat(12.0, 3.0)}
    rows = [{"label": name, "all": metrics, "conv64": {"kendall_tau": _stat(tau)},
             "grad_var_final": _stat(1e-3), "train_time_s": _stat(100.0)}
            for name, tau in (("SPOS", 0.1), ("PA&DA", 0.2))]
    table = main_table({"rows": rows}).splitlines()
    assert len(table) == 4 and table[0].startswith("| method (3 seeds)")
    assert table[3].startswith("| PA&DA | 0.400 ± 0.010 | 0.550 ± 0.020") and "0.200" in table[3]


def test_motivation_table_lists_every_op_count():
    rows = [{"label": f"{k} ops", "grad_var_final": _stat(k * 1e-3), "conv64": {"kendall_tau": _stat(0.5 - k / 10)}}
            for k in (2, 3, 4, 5)]
    assert [line.split("|")[1].strip() for line in motivation_table({"rows": rows}).splitlines()[2:]] == \
        ["2 ops", "3 ops", "4 ops", "5 ops"]


def test_readme_block_requires_the_markers():
    with pytest.raises(ValueError, match="results:start"):
        readme_block("no markers here")


def test_readme_results_match_the_artifacts():
    """Fails when an artifact changed and `python -m pada_lite report --update-readme` was not run."""
    assert readme_block(README.read_text()) == results_markdown()


def test_ground_truth_table_adds_the_split_half_columns_with_four_seeds():
    from pada_lite.reliability import subset_report
    from pada_lite.report import ground_truth_table
    rng = np.random.default_rng(1)
    acc = rng.normal(size=12) + rng.normal(scale=0.5, size=(4, 12))  # [S, N]
    conv = np.arange(12) < 5
    report = {"seeds": [0, 1, 2, 3], "all": subset_report(acc), "conv_only": subset_report(acc[:, conv]),
              "sampled": subset_report(acc[:, ~conv])}
    table = ground_truth_table(report).splitlines()
    assert "tau between two 2-seed means" in table[0] and "projected tau of the 4-seed mean" in table[0]
    assert f"{report['all']['half_tau']:.3f}" in table[2] and table[3].startswith("| 64 conv-only (5)")
    two = {k: (v if k == "seeds" else subset_report(acc[:2, conv if k == "conv_only" else slice(None)]))
           for k, v in report.items()}
    two["seeds"] = [0, 1]
    assert "2-seed means" not in ground_truth_table(two)
