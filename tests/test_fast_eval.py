"""Fast ranking (dedupe, shared first cell, arch batching) against the per-arch loop, on tiny CPU supernets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pada_lite.data import ImageData
from pada_lite.evaluation import evaluate_archs, evaluate_archs_simple
from pada_lite.fast_eval import ChunkForward, distinct_archs, evaluate_archs_fast, plan_network, supports_fast
from pada_lite.spaces.nb201 import (
    NB201_OPS,
    NB201Supernet,
    SupernetConfig,
    conv_only_archs,
    enumerate_archs,
    prune_dead_edges,
)

ALL = enumerate_archs()


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: one CPU thread


def tiny_supernet(cells_per_stage: int = 2, **space) -> NB201Supernet:
    """A random supernet, by default with 2 cells per stage (so later cells and reduction blocks are exercised)."""
    torch.manual_seed(0)
    model = NB201Supernet(SupernetConfig(channels=4, cells_per_stage=cells_per_stage, in_channels=1, **space))
    for name, p in model.named_parameters():
        if name.endswith("bias") or name.endswith("weight") and p.dim() == 1:   # BN affine / classifier bias
            p.data.uniform_(-0.5, 0.5)
    return model


def tiny_data(n: int = 96) -> ImageData:
    gen = torch.Generator().manual_seed(1)
    return ImageData(torch.randint(0, 256, (n, 1, 8, 8), generator=gen, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=gen), (0.5,), (0.3,), 10)


def sample_archs(count: int = 20) -> list[tuple]:
    """Random archs plus the awkward ones: all-'none', a duplicate, dead edges, parameter-free only."""
    rng = np.random.default_rng(0)
    archs = [ALL[i] for i in rng.choice(len(ALL), count, replace=False)]
    dead = ("none", "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "none", "avg_pool_3x3")  # node 1 is always zero
    return archs + [ALL[0], archs[3], dead, ("skip_connect",) * 6, conv_only_archs()[17]]


# ------------------------------------------------------------------------------------------------ dedupe
def test_prune_dead_edges_drops_edges_that_cannot_reach_the_output():
    node1_zero = ("none", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert prune_dead_edges(node1_zero) == ("none", "nor_conv_3x3", "none", "nor_conv_1x1", "none", "avg_pool_3x3")
    node2_unused = ("skip_connect", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_1x1", "avg_pool_3x3", "none")
    assert prune_dead_edges(node2_unused) == ("skip_connect", "none", "none", "nor_conv_1x1", "avg_pool_3x3", "none")
    disconnected = ("none", "none", "nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3")
    assert prune_dead_edges(disconnected) == ("none",) * 6
    assert prune_dead_edges(conv_only_archs()[5]) == conv_only_archs()[5]


def test_nb201_space_has_9445_distinct_functions():
    unique, position = distinct_archs(ALL, NB201_OPS, merge_dead_edges=True)
    assert len(unique) == 9445 and len(position) == 15625
    assert [unique[p] for p in position] == [prune_dead_edges(a) for a in ALL]
    assert len(distinct_archs(ALL + ALL[:3], NB201_OPS, merge_dead_edges=False)[0]) == 15625


def test_first_cell_runs_each_distinct_input_once():
    model = tiny_supernet(ops=("nor_conv_1x1", "nor_conv_3x3"))
    plans, _ = plan_network(model, conv_only_archs())
    first = plans[0]
    assert [node.rows for node in first] == [2, 8, 64]             # node 1: 2 values, node 2: 2*2*2, node 3: all
    runs = [sum(len(rows) for _, rows in edge.groups) for node in first for edge in node.edges]
    assert runs == [2, 2, 4, 2, 4, 16]                             # op evaluations per edge, vs 64 each per arch
    assert [node.rows for node in plans[1]] == [64, 64, 64]        # later cells: one row per arch


# ------------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("space", [{}, {"bn_affine": True}, {"bn_affine": True, "bn_track_running_stats": True}])
def test_unbatched_fast_path_equals_per_arch_loop_bit_for_bit(space):
    model, data, archs = tiny_supernet(**space), tiny_data(), sample_archs()
    simple = evaluate_archs_simple(model, archs, data, batch_size=64)
    for chunk in (1, None):
        fast = evaluate_archs_fast(model, archs, data, batch_size=64, chunk_size=chunk, batched=False)
        assert np.array_equal(fast, simple)
    x, _ = data.batch(torch.arange(64))
    with torch.no_grad():
        logits = ChunkForward(model, archs[:12], batched=False)(model.forward_stem(x))     # [12, 64, 10]
        assert torch.equal(logits, torch.stack([model(x, a) for a in archs[:12]]))


@pytest.mark.parametrize("space", [{}, {"bn_affine": True}])
def test_batched_fast_path_matches_per_arch_loop_up_to_rounding(space):
    model, data, archs = tiny_supernet(**space), tiny_data(), sample_archs()
    x, _ = data.batch(torch.arange(len(data)))
    with torch.no_grad():
        batched = ChunkForward(model, archs, batched=True)(model.forward_stem(x))         # [A, B, 10]
        reference = torch.stack([model(x, a) for a in archs])
    torch.testing.assert_close(batched, reference, rtol=1e-4, atol=1e-5)
    flips = int((batched.argmax(-1) != reference.argmax(-1)).sum())
    assert flips <= 1, f"{flips} of {reference[..., 0].numel()} predictions differ"       # ties at float rounding
    simple = evaluate_archs_simple(model, archs, data, batch_size=64)
    fast = evaluate_archs_fast(model, archs, data, batch_size=64, chunk_size=9, batched=True)
    assert np.abs(fast - simple).max() <= 100.0 / len(data)


def test_dedupe_changes_nothing_and_is_skipped_when_ops_do_not_keep_zeros():
    data, archs = tiny_data(), sample_archs()
    model = tiny_supernet(cells_per_stage=1)
    with_dedupe = evaluate_archs_fast(model, archs, data, batch_size=64, batched=False)
    without = evaluate_archs_fast(model, archs, data, batch_size=64, batched=False, dedupe=False)
    assert np.array_equal(with_dedupe, without)
    affine = tiny_supernet(cells_per_stage=1, bn_affine=True)   # BN(0) = bias: an edge from a zero node is live
    canonical = [prune_dead_edges(a) for a in archs]
    assert not np.array_equal(evaluate_archs_fast(affine, archs, data, batch_size=64),
                              evaluate_archs_fast(affine, canonical, data, batch_size=64))
    assert np.array_equal(evaluate_archs_fast(affine, archs, data, batch_size=64),
                          evaluate_archs_simple(affine, archs, data, batch_size=64))


# ------------------------------------------------------------------------------------------------ dispatch
class CustomSupernet(NB201Supernet):
    def forward_from_stem(self, h, arch):
        return super().forward_from_stem(h, arch) * 2.0


def test_evaluate_archs_dispatches_and_validates_method():
    model, data, archs = tiny_supernet(cells_per_stage=1), tiny_data(), sample_archs(5)
    simple = evaluate_archs(model, archs, data, batch_size=64, method="simple")
    assert np.array_equal(evaluate_archs(model, archs, data, batch_size=64), simple)      # auto: fast, exact on CPU
    assert np.array_equal(evaluate_archs(model, archs, data, batch_size=64, method="fast"), simple)
    custom = CustomSupernet(model.config)
    assert supports_fast(model) and not supports_fast(custom)
    evaluate_archs(custom, archs, data, batch_size=64)                                     # falls back to the loop
    with pytest.raises(ValueError, match="method='simple'"):
        evaluate_archs(custom, archs, data, method="fast")
    with pytest.raises(ValueError, match="unknown"):
        evaluate_archs(model, archs, data, method="quick")
    with pytest.raises(ValueError, match="no architectures"):
        evaluate_archs_fast(model, [], data)
