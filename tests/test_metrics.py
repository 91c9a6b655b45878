import itertools

import numpy as np
import pytest

from pada_lite.metrics import kendall_tau, precision_at_top, ranking_report, spearman_rho, top_n_rank


def kendall_by_pairs(a, b):
    """Kendall tau-a from its definition (no ties in the inputs used here)."""
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in itertools.combinations(range(len(a)), 2))
    return s / (len(a) * (len(a) - 1) / 2)


def test_kendall_matches_pair_counting():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=30), rng.normal(size=30)
    assert kendall_tau(a, b) == pytest.approx(kendall_by_pairs(a, b))
    assert kendall_tau(a, a) == pytest.approx(1.0) and kendall_tau(a, -a) == pytest.approx(-1.0)


def test_spearman_is_pearson_of_ranks():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=25), rng.normal(size=25)
    ra, rb = a.argsort().argsort(), b.argsort().argsort()
    assert spearman_rho(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])


def test_precision_at_top_and_top_n_rank():
    true = np.arange(20.0)          # arch 19 is best
    pred = true.copy()
    pred[19], pred[0] = -1.0, 100.0  # predictor misses the best and promotes the worst
    assert precision_at_top(true, pred, 10) == 0.5   # top-2 true {19, 18}; predicted {0, 18}
    assert top_n_rank(true, pred, 1) == 20           # predicted best is the truly worst
    assert top_n_rank(true, pred, 2) == 2            # second pick is truly 2nd
    assert precision_at_top(true, true, 5) == 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal length"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        spearman_rho([1, 2, float("nan")], [1, 2, 3])
    with pytest.raises(ValueError, match="percent"):
        precision_at_top([1, 2], [1, 2], 0)
    with pytest.raises(ValueError):
        top_n_rank([1, 2], [1, 2], 3)


def test_report_keys():
    r = ranking_report([1, 2, 3, 4], [1, 3, 2, 4], top_percent=25, top_n=1)
    assert set(r) == {"kendall_tau", "spearman_rho", "p_at_top25", "top1_rank", "num_archs"}
    assert r["top1_rank"] == 1 and r["num_archs"] == 4
