"""Ranking-consistency metrics: Kendall tau, Spearman rho, P@Top-k%, Top-n-rank."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats


def _pair(true: Sequence[float], pred: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(true, dtype=float), np.asarray(pred, dtype=float)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"true and predicted scores must be 1-D and of equal length, got {t.shape} and {p.shape}")
    if len(t) < 2:
        raise ValueError("ranking metrics need at least 2 architectures")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("ranking metrics got NaN or inf scores: check the evaluation that produced them")
    return t, p


def kendall_tau(true: Sequence[float], pred: Sequence[float]) -> float:
    """Kendall tau-b between true and predicted scores (scipy)."""
    t, p = _pair(true, pred)
    return float(stats.kendalltau(t, p).statistic)


def spearman_rho(true: Sequence[float], pred: Sequence[float]) -> float:
    """Spearman rank correlation (scipy)."""
    t, p = _pair(true, pred)
    return float(stats.spearmanr(t, p).statistic)


def _top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, ties broken by position (stable)."""
    return np.argsort(-scores, kind="stable")[:k]


def precision_at_top(true: Sequence[float], pred: Sequence[float], percent: float = 5.0) -> float:
    """P@Top-k%: share of the true top-k archs that the prediction also puts in its top k, with k = floor(p N / 100)
    archs (at least 1) for ``percent`` p of N archs (782 -> 781 of 15,625 at 5 %); ties broken by position."""
    t, p = _pair(true, pred)
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    k = max(1, math.floor(len(t) * percent / 100.0 + 1e-9))  # + 1e-9: 5 % of 100 is 5, not 4.999...
    return len(set(_top_indices(t, k)) & set(_top_indices(p, k))) / k


def top_n_rank(true: Sequence[float], pred: Sequence[float], n: int = 1) -> int:
    """Top-n-rank ("Deeper Insights"): best true rank (1 = best) among the prediction's top n archs."""
    t, p = _pair(true, pred)
    if not 1 <= n <= len(t):
        raise ValueError(f"n must be in [1, {len(t)}], got {n}")
    true_rank = np.empty(len(t), dtype=int)
    true_rank[np.argsort(-t, kind="stable")] = np.arange(1, len(t) + 1)
    return int(true_rank[_top_indices(p, n)].min())


def ranking_report(true: Sequence[float], pred: Sequence[float], top_percent: float = 5.0,
                   top_n: int = 1) -> dict:
    """All ranking metrics in one dict (the keys used in artifacts)."""
    return {"kendall_tau": kendall_tau(true, pred), "spearman_rho": spearman_rho(true, pred),
            f"p_at_top{top_percent:g}": precision_at_top(true, pred, top_percent),
            f"top{top_n}_rank": top_n_rank(true, pred, top_n), "num_archs": len(np.asarray(true))}
