"""GM-NAS: the gradient set excludes the split edge's ops, the min-cut, and the choice of the edge to split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pada_lite.gradient_matching as gm
from pada_lite.gradient_matching import choose_split, edge_distance, min_cut, shared_parameters
from pada_lite.spaces import NB201_OPS, NB201Supernet, SupernetConfig
from pada_lite.spaces.nb201 import SearchCell

EDGE = 3   # 0 -> 3


def tiny_model() -> NB201Supernet:
    torch.manual_seed(0)
    return NB201Supernet(SupernetConfig(channels=4, cells_per_stage=1, in_channels=1, num_classes=10))


def test_shared_parameters_are_all_but_the_edge_ops_stem_and_head():
    model = tiny_model()
    cells = [i for i, layer in enumerate(model.cells) if isinstance(layer, SearchCell)]
    own = tuple(f"cells.{i}.edges.{EDGE}." for i in cells)
    expected = {name for name, _ in model.named_parameters()
                if not name.startswith(("stem.", "head.", "classifier.") + own)}
    got = {name for name, p in model.named_parameters() if any(p is q for q in shared_parameters(model, EDGE))}
    assert got == expected
    assert any(name.startswith("cells.1.") for name in got)            # the reduction block is shared
    assert any(name.startswith(f"cells.0.edges.{EDGE + 1}.") for name in got)  # other edges of a cell are shared


def test_two_ops_computing_the_same_function_are_at_distance_zero():
    """A conv3x3 whose kernel is the conv1x1's kernel at its centre computes the same function: the shared-weight
    gradients agree (distance 0). Were the edge's own weights in the gradient, the two would differ (each op has
    gradients only in its own weights), so this answer is known only if they are left out."""
    model = tiny_model()
    with torch.no_grad():
        for layer in model.cells:
            if isinstance(layer, SearchCell):
                conv1 = layer.edges[EDGE]["nor_conv_1x1"][1].weight            # [C, C, 1, 1]
                conv3 = layer.edges[EDGE]["nor_conv_3x3"][1].weight            # [C, C, 3, 3]
                conv3.zero_()
                conv3[:, :, 1, 1] = conv1[:, :, 0, 0]
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8, generator=gen), torch.randint(10, (16,), generator=gen)
    path = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3", "nor_conv_3x3")
    ops = ["nor_conv_1x1", "nor_conv_3x3", "skip_connect"]
    d = edge_distance(model, EDGE, ops, [(x, y, path)])
    assert d[0, 1] == pytest.approx(0.0, abs=1e-5)
    assert d[0, 2] > 1e-3 and d[1, 2] > 1e-3
    own = [p for layer in model.cells if isinstance(layer, SearchCell) for p in layer.edges[EDGE].parameters()]
    with_own = []                                       # the same gradients with the edge's own weights included
    for op in ops[:2]:
        arch = path[:EDGE] + (op,) + path[EDGE + 1:]
        with_own.append(gm.shared_gradient(model, shared_parameters(model, EDGE) + own, x, y, arch))
    assert gm.cosine_distance_matrix(torch.stack(with_own))[0, 1] > 1e-3


def test_a_dead_edge_gives_every_op_the_same_gradient():
    model = tiny_model()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(10, (8,))
    path = ("nor_conv_3x3", "nor_conv_1x1", "none", "nor_conv_3x3", "none", "skip_connect")  # node 1 feeds nothing
    d = edge_distance(model, 0, list(NB201_OPS), [(x, y, path)])
    assert np.abs(d).max() < 1e-5


def test_min_cut_finds_the_crafted_partition():
    d = np.ones((5, 5)) - np.eye(5)
    for (i, j), v in {(1, 3): 0.1, (0, 2): 0.2, (0, 4): 0.1, (2, 4): 0.3}.items():
        d[i, j] = d[j, i] = v
    groups, score = min_cut(d)
    assert groups == [[1, 3], [0, 2, 4]]
    assert score == pytest.approx(6.7 - 0.7)                       # all pairs minus within-group pairs
    assert min_cut(np.triu(d)) == (groups, score)                   # only the upper triangle counts
    assert min_cut(np.ones((5, 5)))[0] == [[0, 1], [2, 3, 4]]       # the first of equal cuts
    with pytest.raises(ValueError, match="cannot cut"):
        min_cut(d, first_size=5)


def test_choose_split_takes_the_edge_with_the_largest_cross_group_distance(monkeypatch):
    crafted = {0: np.full((5, 5), 0.2), 1: np.full((5, 5), 0.9), 2: np.full((5, 5), 0.5)}
    crafted[1][0, 1] = crafted[1][1, 0] = 0.0
    monkeypatch.setattr(gm, "edge_distance", lambda model, edge, ops, draws: crafted[edge])
    split = choose_split(tiny_model(), [0, 1, 2], list(NB201_OPS), lambda: None, num_batches=3)
    assert split.edge == 1 and split.groups == [list(NB201_OPS[:2]), list(NB201_OPS[2:])]
    assert split.scores[1] == pytest.approx(6 * 0.9) and split.scores[0] == pytest.approx(6 * 0.2)
    assert set(split.to_dict()["distances"]) == {"0", "1", "2"}
