"""GM-NAS (Hu et al., ICLR 2022): which ops of an edge may keep sharing weights, measured by gradient matching.

For an edge of a (sub-)supernet, every op of the edge is fixed in turn on the same batch and the same path for the
other edges, and the gradient of the loss with respect to the *shared* weights is taken: every weight except the
edge's own ops (in every cell), the stem and the classifier head, as the reference code does (skhu101/GM-NAS,
``WS-GM/nasbench201``). Two ops whose gradients point the same way can share those weights; the distance
``1 − cos`` of the flattened gradients, averaged over batches, says how much they disagree. The edge's ops are split
in two groups (NB201: 2 and 3 ops) with the smallest within-group distance; the edge whose best cut leaves the largest
distance *across* the groups is split first.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .spaces.nb201 import NB201Supernet, SearchCell

COS_EPS = 1e-6   # the reference's epsilon in 1 − <a, b> / (|a| |b| + eps)


def shared_parameters(model: NB201Supernet, edge: int) -> list[torch.nn.Parameter]:
    """The weights whose gradients GM compares for ``edge``: all but that edge's ops, the stem and the head."""
    excluded = {id(p) for module in (model.stem, model.head, model.classifier) for p in module.parameters()}
    for layer in model.cells:
        if isinstance(layer, SearchCell):
            excluded |= {id(p) for p in layer.edges[edge].parameters()}
    return [p for p in model.parameters() if id(p) not in excluded]


def shared_gradient(model: NB201Supernet, params: Sequence[torch.nn.Parameter], x: torch.Tensor, y: torch.Tensor,
                    arch: tuple) -> torch.Tensor:  # -> [P] flattened gradient of the loss w.r.t. params
    """The gradient of the cross-entropy of path ``arch`` on (x, y) with respect to ``params``, flattened."""
    loss = F.cross_entropy(model(x, arch), y)
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def cosine_distance_matrix(grads: torch.Tensor) -> torch.Tensor:  # [K, P] -> [K, K]
    """``1 − cos`` between every pair of rows, with the reference's epsilon (a zero gradient is at distance 1)."""
    norms = grads.norm(dim=1)
    return 1 - (grads @ grads.t()) / (norms[:, None] * norms[None, :] + COS_EPS)


def edge_distance(model: NB201Supernet, edge: int, ops: Sequence[str],
                  draws: Sequence[tuple[torch.Tensor, torch.Tensor, tuple]]) -> np.ndarray:  # [K, K]
    """Mean ``1 − cos`` between the shared-weight gradients of ``ops`` on ``edge`` over ``draws`` (x, y, path).

    In each draw the path's other edges and the batch stay fixed and only ``edge`` changes, as in the reference.
    """
    params = shared_parameters(model, edge)
    total = torch.zeros(len(ops), len(ops), dtype=torch.float64)
    for x, y, path in draws:
        rows = [shared_gradient(model, params, x, y, path[:edge] + (op,) + path[edge + 1:]) for op in ops]
        total += cosine_distance_matrix(torch.stack(rows)).double().cpu()
    return (total / len(draws)).numpy()


def min_cut(distance: np.ndarray, first_size: int | None = None) -> tuple[list[list[int]], float]:
    """Split the ops of a distance matrix in two groups (sizes ``first_size`` and the rest; NB201: 2 and 3) with the
    smallest within-group distance; returns the groups and the edge score (the distance left across the groups).

    Exhaustive over the ``C(K, first_size)`` cuts (10 for NB201); the first of equal cuts wins.
    """
    d = np.triu(np.asarray(distance, dtype=float), 1)                     # each pair once
    k = len(d)
    first_size = k // 2 if first_size is None else first_size
    if not 1 <= first_size < k:
        raise ValueError(f"cannot cut {k} ops into groups of {first_size} and {k - first_size}")
    best, best_groups = np.inf, None
    for first in itertools.combinations(range(k), first_size):
        second = [j for j in range(k) if j not in first]
        within = sum(d[i, j] for group in (first, second) for i, j in itertools.combinations(group, 2))
        if within < best:
            best, best_groups = within, [list(first), second]
    return best_groups, float(d.sum() - best)


@dataclass
class EdgeSplit:
    """The chosen split of a sub-supernet: the edge, its op groups and everything measured to choose it."""

    edge: int
    groups: list[list[str]]                   # op names of each child's share of the edge
    score: float                              # cross-group distance of the chosen cut
    distances: dict[int, list[list[float]]]   # edge -> mean distance matrix of its ops
    scores: dict[int, float]                  # edge -> best-cut score

    def to_dict(self) -> dict:
        return {"edge": self.edge, "groups": self.groups, "score": self.score,
                "distances": {str(e): m for e, m in self.distances.items()},
                "scores": {str(e): s for e, s in self.scores.items()}}


def choose_split(model: NB201Supernet, edges: Sequence[int], ops: Sequence[str],
                 draw: Callable[[], tuple[torch.Tensor, torch.Tensor, tuple]], num_batches: int,
                 first_size: int | None = None) -> EdgeSplit:
    """Measure every candidate edge on ``num_batches`` draws (the same draws for every edge) and pick the split
    (cuts into ``first_size`` ops and the rest; default half, rounded down)."""
    if not edges:
        raise ValueError("no unsplit edge is left to split: use fewer splits")
    was_training = model.training
    model.train()                                           # as the reference: batch statistics, training mode
    draws = [draw() for _ in range(num_batches)]
    distances, scores, cuts = {}, {}, {}
    for edge in edges:
        matrix = edge_distance(model, edge, ops, draws)
        cuts[edge], scores[edge] = min_cut(matrix, first_size)
        distances[edge] = matrix.round(6).tolist()
    best = max(edges, key=lambda e: scores[e])              # the first of equal scores
    model.train(was_training)
    return EdgeSplit(best, [[ops[j] for j in group] for group in cuts[best]], scores[best], distances, scores)
