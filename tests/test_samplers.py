"""Path samplers (uniform, strict fair, PA) and data samplers (uniform, DA): update rules pinned by hand."""
from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import pytest
import torch

from pada_lite.samplers import (
    DataSampler,
    FairPathSampler,
    ImportanceDataSampler,
    ImportancePathSampler,
    PathSampler,
    make_data_sampler,
    make_path_sampler,
    output_gradient_norm,
    running_halving_scores,
    running_pair_mean_,
    sampling_summary,
)
from pada_lite.schedules import ScoreError
from pada_lite.spaces.nb201 import NB201_OPS, NUM_EDGES, NB201Supernet, SearchCell, SupernetConfig

OPS = NB201_OPS  # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
C1, C3 = "nor_conv_1x1", "nor_conv_3x3"


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_supernet(**kwargs) -> NB201Supernet:
    return NB201Supernet(SupernetConfig(channels=2, cells_per_stage=1, **kwargs))  # 3 search cells


def cells(model) -> list[SearchCell]:
    return [layer for layer in model.cells if isinstance(layer, SearchCell)]


def set_conv_grad(model, cell: int, edge: int, op: str, norm: float) -> None:
    """Give the conv weight of one op instance a gradient of L2 norm ``norm`` (one non-zero entry)."""
    weight = cells(model)[cell].edges[edge][op][1].weight
    weight.grad = torch.zeros_like(weight)
    weight.grad.view(-1)[0] = norm


# ------------------------------------------------------------------------------------------------ PA
ARCH = (C3, C1, C3, "skip_connect", "none", "avg_pool_3x3")
CONV3_NORMS = {(0, 0): 3.0, (0, 2): 4.0, (1, 0): 1.0, (1, 2): 2.0, (2, 0): 5.0, (2, 2): 9.0}  # (cell, edge): norm
CONV1_NORMS = {(0, 1): 1.0, (1, 1): 2.0, (2, 1): 6.0}


def observe_hand_gradients(sampler, model) -> None:
    model.zero_grad(set_to_none=True)
    for (cell, edge), norm in CONV3_NORMS.items():
        set_conv_grad(model, cell, edge, C3, norm)
    for (cell, edge), norm in CONV1_NORMS.items():
        set_conv_grad(model, cell, edge, C1, norm)
    sampler.observe(model, [ARCH])


def test_pa_shared_scores_and_probabilities_by_hand():
    model = tiny_supernet()
    sampler = ImportancePathSampler(OPS, generator(), tau=0.5)
    sampler.start_epoch(0, 4)
    assert torch.equal(sampler.probabilities(), torch.full((NUM_EDGES, 5), 0.2, dtype=torch.float64))
    observe_hand_gradients(sampler, model)
    # conv3x3: 6 instances, (3+4+1+2+5+9)/6 = 4 -> (0+4)/2 = 2; conv1x1: (1+2+6)/3 = 3 -> 1.5
    assert sampler.op_scores().tolist() == [0.0, 0.0, 1.5, 2.0, 0.0]
    model.zero_grad(set_to_none=True)
    for cell in range(3):
        for edge in range(NUM_EDGES):
            set_conv_grad(model, cell, edge, C1, 0.5)
    sampler.observe(model, [(C1,) * NUM_EDGES])            # conv1x1: 18 instances of 0.5 -> (1.5 + 0.5)/2 = 1
    assert sampler.op_scores().tolist() == [0.0, 0.0, 1.0, 2.0, 0.0]
    sampler.start_epoch(1, 4)                              # constant tau 0.5
    expected = [0.1, 0.1, 0.5 * 1 / 3 + 0.1, 0.5 * 2 / 3 + 0.1, 0.1]
    assert sampler.probabilities() == pytest.approx(torch.tensor([expected] * NUM_EDGES, dtype=torch.float64))
    assert sampler.op_scores().tolist() == [0.0] * 5       # reset every epoch


def test_running_halving_scores_match_the_reference_loop():
    gen = generator(8)
    sums = torch.rand(40, 5, generator=gen, dtype=torch.float64) * (torch.rand(40, 5, generator=gen) < 0.6)
    counts = torch.randint(0, 4, (40, 5), generator=gen).double()
    sums[7, 2], counts[7, 2] = float("nan"), 2.0
    expected = [0.0] * 5
    for t in range(40):                                    # the reference: if sum != 0: g = mean([g, sum / count])
        for g in range(5):
            new = sums[t, g].item() / max(counts[t, g].item(), 1)
            if counts[t, g] > 0 and sums[t, g] != 0 and math.isfinite(new):
                expected[g] = (expected[g] + new) / 2
    scores, nonfinite = running_halving_scores(sums, counts)
    assert scores.tolist() == pytest.approx(expected, rel=1e-12)
    assert nonfinite.nonzero().tolist() == [[7, 2]]


def test_pa_edge_scope_scores_each_edge_from_its_own_gradients():
    model = tiny_supernet()
    sampler = ImportancePathSampler(OPS, generator(), tau=1.0, scope="edge")
    observe_hand_gradients(sampler, model)
    scores = sampler.op_scores()
    assert scores.shape == (NUM_EDGES, 5)
    assert scores[0].tolist() == [0.0, 0.0, 0.0, (3 + 1 + 5) / 3 / 2, 0.0]
    assert scores[1].tolist() == [0.0, 0.0, (1 + 2 + 6) / 3 / 2, 0.0, 0.0]
    assert scores[2].tolist() == [0.0, 0.0, 0.0, (4 + 2 + 9) / 3 / 2, 0.0]
    assert scores[3:].abs().sum() == 0
    with pytest.warns(RuntimeWarning, match="3 of 6 rows"):  # edges 3-5 had no parametric op: uniform
        sampler.start_epoch(1, 2)
    probs = sampler.probabilities()
    assert probs[0].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0] and probs[1].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert probs[4].tolist() == [0.2] * 5
    for _ in range(200):                                   # zero-probability ops are never drawn
        [(arch, _)] = sampler.sample()
        assert arch[:3] == (C3, C1, C3)


def test_pa_uses_the_reference_tau_of_the_previous_epoch():
    model = tiny_supernet()
    sampler = ImportancePathSampler(OPS, generator(), tau="linear")
    observe_hand_gradients(sampler, model)
    sampler.start_epoch(1, 4)                              # scores of epoch 0, tau(0) = 0: uniform
    assert torch.allclose(sampler.probabilities(), torch.full((NUM_EDGES, 5), 0.2, dtype=torch.float64))
    observe_hand_gradients(sampler, model)
    sampler.start_epoch(2, 4)                              # tau(1) = 1/4
    assert sampler.probabilities()[0, 3].item() == pytest.approx(0.25 * 2.0 / 3.5 + 0.75 / 5)


def test_pa_sums_every_parameter_norm_of_an_instance_and_counts_missing_gradients_as_zero():
    model = tiny_supernet(bn_affine=True)                  # conv weight + BN weight + BN bias per instance
    sampler = ImportancePathSampler(OPS, generator(), tau=1.0)
    model.zero_grad(set_to_none=True)
    op = cells(model)[0].edges[0][C3]
    op[1].weight.grad = torch.zeros_like(op[1].weight)
    op[1].weight.grad.view(-1)[0] = 3.0
    op[2].weight.grad = torch.tensor([0.0, 4.0])
    op[2].bias.grad = torch.tensor([6.0, 8.0])             # instance: 3 + 4 + 10 = 17; the other 2 cells: no grad
    sampler.observe(model, [(C3,) + ("none",) * 5])
    assert sampler.op_scores()[3].item() == pytest.approx(17 / 3 / 2)


def test_pa_skips_zero_and_non_finite_norms():
    model = tiny_supernet()
    sampler = ImportancePathSampler(OPS, generator(), tau=1.0)
    model.zero_grad(set_to_none=True)                      # sampled conv without gradient: sum 0, no update
    sampler.observe(model, [(C3,) * NUM_EDGES])
    assert sampler.op_scores().abs().sum() == 0
    observe_hand_gradients(sampler, model)
    set_conv_grad(model, 0, 0, C3, float("nan"))
    sampler.observe(model, [ARCH])                         # a NaN step (e.g. skipped fp16 step) is not scored
    assert sampler.op_scores().tolist() == [0.0, 0.0, 2.25, 2.0, 0.0]  # conv1x1 still updated: (1.5 + 3)/2
    with pytest.warns(RuntimeWarning, match="1 of 3 steps .* in PA op 'nor_conv_3x3'"):
        sampler.start_epoch(1, 2)


def test_pa_epoch_with_only_nan_gradients_is_an_error_naming_the_cause():
    model = tiny_supernet()
    sampler = ImportancePathSampler(OPS, generator(), tau=1.0)
    model.zero_grad(set_to_none=True)
    set_conv_grad(model, 0, 0, C3, float("inf"))
    sampler.observe(model, [(C3,) * NUM_EDGES])
    with pytest.raises(ScoreError, match="1 of 1 steps .* NaN/inf gradients in PA op 'nor_conv_3x3'.*lower train.lr"):
        sampler.start_epoch(1, 2)


def test_pa_all_zero_scores_fall_back_to_uniform_with_a_warning():
    sampler = ImportancePathSampler(OPS, generator(), tau=0.5)
    with pytest.warns(RuntimeWarning, match="zero"):
        sampler.start_epoch(1, 2)
    assert torch.equal(sampler.probabilities(), torch.full((NUM_EDGES, 5), 0.2, dtype=torch.float64))


def test_pa_parametric_ops_come_from_the_model():
    ops = ("none", C3, "avg_pool_3x3")
    model = NB201Supernet(SupernetConfig(ops=ops, channels=2, cells_per_stage=1))
    sampler = ImportancePathSampler(ops, generator(), tau=1.0)
    for cell in range(3):
        set_conv_grad(model, cell, 0, C3, 2.0)
    sampler.observe(model, [(C3, "avg_pool_3x3", "none", "none", "avg_pool_3x3", "none")])
    assert sampler.op_scores().tolist() == [0.0, 1.0, 0.0]


def test_pa_samples_follow_p_and_importance_weights_are_inverse_k_p():
    sampler = ImportancePathSampler(OPS, generator(1), tau=1.0, importance_weighting=True)
    p = torch.tensor([0.1, 0.1, 0.2, 0.4, 0.2], dtype=torch.float64)
    sampler.set_probabilities(p.expand(NUM_EDGES, -1))
    counts = torch.zeros(5)
    for _ in range(4000):
        [(arch, weight)] = sampler.sample()
        assert weight == pytest.approx(math.prod(1 / (5 * p[OPS.index(op)].item()) for op in arch))
        for op in arch:
            counts[OPS.index(op)] += 1
    assert (counts / counts.sum()).tolist() == pytest.approx(p.tolist(), abs=0.01)
    unweighted = ImportancePathSampler(OPS, generator(1), tau=1.0)
    unweighted.set_probabilities(sampler.probs)
    assert unweighted.sample()[0][1] == 1.0                # the reference: no importance weight


@pytest.mark.filterwarnings("ignore:all scores are zero")
def test_pa_state_round_trip_continues_identically():
    model = tiny_supernet()
    first = ImportancePathSampler(OPS, generator(3), tau=0.5, scope="edge")
    observe_hand_gradients(first, model)
    first.start_epoch(1, 3)
    observe_hand_gradients(first, model)
    second = ImportancePathSampler(OPS, generator(), tau=0.5, scope="edge")
    second.load_state_dict(first.state_dict())
    second.generator.set_state(first.generator.get_state())
    assert torch.equal(second.op_scores(), first.op_scores())
    assert [first.sample() for _ in range(5)] == [second.sample() for _ in range(5)]
    first.start_epoch(2, 3)
    second.start_epoch(2, 3)
    assert torch.equal(first.probabilities(), second.probabilities())
    with pytest.raises(ValueError, match="does not match"):
        ImportancePathSampler(OPS, generator(), scope="shared").load_state_dict(first.state_dict())
    with pytest.raises(ValueError, match="does not match"):
        ImportancePathSampler(OPS, generator()).load_state_dict({})


# --------------------------------------------------------------------------------------- uniform, fair
def test_fair_sampler_uses_every_op_of_every_edge_once_per_step():
    sampler = FairPathSampler(OPS, generator())
    steps = [sampler.sample() for _ in range(20)]
    for paths in steps:
        assert len(paths) == len(OPS) and all(weight == 1.0 for _, weight in paths)
        for edge in range(NUM_EDGES):
            assert sorted(arch[edge] for arch, _ in paths) == sorted(OPS)
    per_edge = {tuple(arch[edge] for arch, _ in paths) for paths in steps for edge in range(NUM_EDGES)}
    assert len(per_edge) > 20                              # fresh permutations across steps and edges
    assert len({tuple(arch for arch, _ in paths) for paths in steps}) == 20
    assert FairPathSampler(OPS, generator()).sample() == steps[0]


def test_uniform_samplers_and_sample_with_another_generator():
    sampler = PathSampler(OPS, generator(5))
    state = sampler.generator.get_state()
    other = sampler.sample(generator(9))
    assert torch.equal(sampler.generator.get_state(), state)   # the sampler's stream is untouched
    assert other == PathSampler(OPS, generator(9)).sample()
    data = DataSampler(torch.zeros(7, dtype=torch.long), generator())
    assert sorted(data.epoch_order(0, 1).tolist()) == list(range(7))
    assert data.loss_weights(torch.arange(3)) is None
    with pytest.raises(ValueError, match="empty"):
        DataSampler(torch.zeros(0, dtype=torch.long), generator())
    with pytest.raises(ValueError, match="empty"):
        ImportanceDataSampler(torch.zeros(0, dtype=torch.long), generator())


def test_factories_build_every_combination():
    labels = torch.arange(10) % 3
    for path, kind in (("uniform", PathSampler), ("fair", FairPathSampler), ("importance", ImportancePathSampler)):
        config = SimpleNamespace(path_sampler=path, data_sampler="importance", tau="cosine", pa_scope="edge",
                                 da_granularity="class", importance_weighting=True)
        assert type(make_path_sampler(config, OPS, generator())) is kind
        data = make_data_sampler(config, labels, generator())
        assert isinstance(data, ImportanceDataSampler) and data.granularity == "class" and data.importance_weighting


# ------------------------------------------------------------------------------------------------ DA
def test_output_gradient_norm_by_hand():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0, 0.0]])
    # softmax: [1/4]*4 and [1/2, 1/6, 1/6, 1/6]; minus onehot(0)
    expected = [math.sqrt(0.75 ** 2 + 3 * 0.25 ** 2), math.sqrt(0.5 ** 2 + 3 / 36)]
    assert output_gradient_norm(logits, torch.tensor([0, 0])).tolist() == pytest.approx(expected)


def sequential_pair_mean(scores, visited, indices, values):
    """The reference loop: first visit sets, later visits average with the running value."""
    for i, v in zip(indices.tolist(), values.tolist()):
        scores[i] = (scores[i] + v) / 2 if visited[i] else v
        visited[i] = True


def test_running_pair_mean_by_hand_and_against_the_reference_loop():
    scores, visited = torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.bool)
    running_pair_mean_(scores, visited, torch.tensor([1, 3, 1]), torch.tensor([2.0, 4.0, 6.0]))
    assert scores.tolist() == [0.0, 4.0, 0.0, 4.0] and visited.tolist() == [False, True, False, True]
    running_pair_mean_(scores, visited, torch.tensor([1, 1, 1, 0]), torch.tensor([8.0, 0.0, 4.0, 1.0]))
    assert scores.tolist() == [1.0, 3.5, 0.0, 4.0]         # 1: (4+8)/2=6, (6+0)/2=3, (3+4)/2=3.5
    gen = generator(2)
    fast, fast_seen = torch.zeros(10, dtype=torch.float64), torch.zeros(10, dtype=torch.bool)
    slow, slow_seen = fast.clone(), fast_seen.clone()
    for _ in range(30):
        idx, vals = torch.randint(10, (16,), generator=gen), torch.rand(16, generator=gen)
        running_pair_mean_(fast, fast_seen, idx, vals)
        sequential_pair_mean(slow, slow_seen, idx, vals.double())
    assert torch.allclose(fast, slow, rtol=1e-12, atol=1e-12) and torch.equal(fast_seen, slow_seen)


def test_da_visit_log_follows_the_reference_loop_across_batches():
    labels = torch.arange(5) % 2
    sampler = ImportanceDataSampler(labels, generator(), tau=1.0)
    expected, seen = torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.bool)
    gen = generator(6)
    for _ in range(4):                                     # 12 visits of 5 samples: the log grows past N
        idx, logits = torch.randint(5, (3,), generator=gen), torch.randn(3, 2, generator=gen)
        sampler.observe(idx, logits, labels[idx])
        sequential_pair_mean(expected, seen, idx, output_gradient_norm(logits, labels[idx]).double())
    scores, visited = sampler.epoch_scores()
    assert torch.allclose(scores, expected, rtol=1e-12, atol=0) and torch.equal(visited, seen)


def zero_logits(batch: int, classes: int = 4) -> torch.Tensor:
    return torch.zeros(batch, classes)


def test_da_sample_scores_to_distribution_by_hand():
    labels = torch.tensor([0, 1, 2, 3, 0])
    sampler = ImportanceDataSampler(labels, generator(), tau=0.5, importance_weighting=True)
    order = sampler.epoch_order(0, 3)                      # epoch 0: a permutation, weights 1 (None)
    assert sorted(order.tolist()) == list(range(5)) and sampler.loss_weights(torch.arange(5)) is None
    confident = torch.tensor([[40.0, 0.0, 0.0, 0.0]])      # label 0: score ~ 0
    sampler.observe(torch.tensor([0, 2, 0]), torch.cat([zero_logits(1), zero_logits(1), confident]),
                    torch.tensor([0, 2, 0]))
    a = math.sqrt(0.75)                                    # score of zero logits with 4 classes
    # sample 0: a then ~0 -> a/2; sample 2: a; samples 1, 3, 4 unvisited: 0; sum = 1.5 a
    scores, visited = sampler.epoch_scores()
    assert scores.tolist() == pytest.approx([a / 2, 0.0, a, 0.0, 0.0])
    assert visited.tolist() == [True, False, True, False, False]
    sampler.epoch_order(1, 3)
    expected = [0.5 * (1 / 3) + 0.1, 0.1, 0.5 * (2 / 3) + 0.1, 0.1, 0.1]
    assert sampler.probabilities().tolist() == pytest.approx(expected)
    weights = sampler.loss_weights(torch.tensor([2, 1]))
    assert weights.tolist() == pytest.approx([1 / (5 * expected[2]), 1 / (5 * expected[1])])
    scores, visited = sampler.epoch_scores()
    assert not visited.any() and scores.abs().sum() == 0   # scores reset every epoch


def test_da_draws_n_samples_with_replacement_from_q():
    sampler = ImportanceDataSampler(torch.zeros(6, dtype=torch.long), generator(), tau=1.0)
    sampler.observe(torch.tensor([4]), zero_logits(1), torch.tensor([0]))
    order = sampler.epoch_order(1, 2)                      # tau 1: only sample 4 has mass
    assert order.tolist() == [4] * 6
    assert sampler.loss_weights(order) is None             # the reference: no re-weighting


def test_da_class_granularity_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2])
    sampler = ImportanceDataSampler(labels, generator(), tau=1.0, granularity="class")
    confident = torch.tensor([[40.0, 0.0, 0.0, 0.0]])
    sampler.observe(torch.tensor([0, 1, 2]), torch.cat([zero_logits(1), confident, zero_logits(1)]),
                    torch.tensor([0, 0, 1]))
    a = math.sqrt(0.75)
    # class 0: mean(a, ~0) = a/2; class 1: a (sample 3 unvisited, gets its class's score); class 2 unvisited: 0
    assert sampler.sampling_scores().tolist() == pytest.approx([a / 2, a / 2, a, a, 0.0])
    sampler.epoch_order(1, 2)
    assert sampler.probabilities().tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 3, 1 / 3, 0.0])


def test_da_nan_scores_name_the_sample():
    sampler = ImportanceDataSampler(torch.tensor([0, 1, 1]), generator(), tau=0.5)
    sampler.observe(torch.tensor([0, 1]), torch.tensor([[0.0, float("nan")], [0.0, 0.0]]), torch.tensor([0, 1]))
    with pytest.raises(ScoreError, match=r"DA sample 0 \(label 0\) has score nan.*lower train.lr"):
        sampler.epoch_order(1, 2)


def test_da_state_round_trip_continues_identically():
    labels = torch.arange(8) % 3
    first = ImportanceDataSampler(labels, generator(4), tau=0.5, granularity="class", importance_weighting=True)
    first.epoch_order(0, 3)
    first.observe(torch.tensor([1, 5, 5]), torch.randn(3, 4, generator=generator(1)), torch.tensor([1, 2, 2]))
    order = first.epoch_order(1, 3)
    first.observe(order[:4], torch.randn(4, 4, generator=generator(2)), labels[order[:4]])
    second = ImportanceDataSampler(labels, generator(), tau=0.5, granularity="class", importance_weighting=True)
    second.load_state_dict(first.state_dict())
    second.generator.set_state(first.generator.get_state())
    assert torch.equal(second.probabilities(), first.probabilities())
    assert torch.equal(second.loss_weights(order), first.loss_weights(order))
    assert torch.equal(second.epoch_order(2, 3), first.epoch_order(2, 3))
    with pytest.raises(ValueError, match="does not match"):
        ImportanceDataSampler(torch.arange(9) % 3, generator(), granularity="class").load_state_dict(first.state_dict())


def test_no_warning_on_the_default_path():
    labels = torch.arange(6) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = ImportanceDataSampler(labels, generator())
        sampler.epoch_order(0, 2)
        sampler.observe(torch.arange(6), zero_logits(6, 2), labels)
        sampler.epoch_order(1, 2)
        path = ImportancePathSampler(OPS, generator())
        path.start_epoch(0, 2)
        path.start_epoch(1, 2)                             # tau(0) = 0: uniform, no all-zero warning


def _allowed_mask() -> torch.Tensor:
    """Edge 0 owns only conv3x3 (a Few-Shot member); edge 1 has conv1x1 or conv3x3; the rest everything."""
    allowed = torch.ones(NUM_EDGES, len(OPS), dtype=torch.bool)
    allowed[0] = torch.tensor([op == C3 for op in OPS])
    allowed[1] = torch.tensor([op in (C1, C3) for op in OPS])
    return allowed


def test_uniform_sampler_with_a_mask_draws_only_allowed_choices_uniformly():
    sampler = PathSampler(OPS, generator(), allowed=_allowed_mask())
    archs = [sampler.sample()[0][0] for _ in range(4000)]
    assert {a[0] for a in archs} == {C3}
    share = sum(a[1] == C1 for a in archs) / len(archs)
    assert abs(share - 0.5) < 0.03                       # 2 allowed ops: 1/2 each (4000 draws: sd 0.008)
    assert abs(sum(a[2] == "none" for a in archs) / len(archs) - 0.2) < 0.03
    assert torch.allclose(sampler.probabilities()[1], torch.tensor([0, 0, .5, .5, 0], dtype=torch.float64))


def test_importance_sampler_with_a_mask_renormalises_over_allowed_choices_and_weights_by_their_count():
    sampler = ImportancePathSampler(OPS, generator(), tau=1.0, importance_weighting=True, allowed=_allowed_mask())
    sampler.set_probabilities(torch.full((NUM_EDGES, len(OPS)), 0.2, dtype=torch.float64))
    probs = sampler.probabilities()
    assert probs[0].tolist() == [0, 0, 0, 1, 0] and probs[1].tolist() == [0, 0, .5, .5, 0]
    (arch, weight), = sampler.sample()
    # 1 / (K_e p_e) per edge: 1 on the masked edges (K_e p_e = 1), 1 on the unmasked uniform ones (5 * 0.2)
    assert arch[0] == C3 and weight == pytest.approx(1.0)


def test_fair_sampler_refuses_a_mask():
    config = SimpleNamespace(path_sampler="fair")
    with pytest.raises(ValueError, match="fair needs every choice"):
        make_path_sampler(config, OPS, generator(), allowed=_allowed_mask())


def test_pa_gradient_table_reads_choice_instances_of_the_supernet():
    model = tiny_supernet()
    instances = model.choice_instances()
    assert len(instances) == NUM_EDGES and all(len(row) == len(OPS) for row in instances)
    conv3 = OPS.index(C3)
    assert len(instances[0][conv3]) == 3                  # one parameter list per search cell
    assert instances[0][OPS.index("skip_connect")] == [[], [], []]
    assert instances[2][conv3][1][0] is cells(model)[1].edges[2][C3][1].weight


def test_sampling_summary_by_hand():
    labels = torch.tensor([0, 1, 2, 3, 0])
    uniform = sampling_summary(PathSampler(NB201_OPS, generator()), DataSampler(labels, generator()))
    assert uniform["effective_paths"] == pytest.approx(5.0 ** NUM_EDGES)
    assert uniform["data_effective_share"] == pytest.approx(1.0) and uniform["data_max_nq"] == pytest.approx(1.0)
    assert "path_probs" not in uniform
    data = ImportanceDataSampler(labels, generator(), tau=0.5)
    data.observe(torch.tensor([0, 2, 0]), zero_logits(3), torch.tensor([0, 2, 0]))
    data.epoch_order(1, 3)
    q = torch.tensor([0.5 * 0.5 + 0.1, 0.1, 0.5 * 0.5 + 0.1, 0.1, 0.1], dtype=torch.float64)  # two equal scores
    path = ImportancePathSampler(NB201_OPS, generator(), tau=1.0)
    path.probs = torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0]] * NUM_EDGES, dtype=torch.float64)
    peaked = sampling_summary(path, data)
    assert peaked["effective_paths"] == pytest.approx(2.0 ** NUM_EDGES)  # two equally likely ops per edge
    assert peaked["data_effective_share"] == pytest.approx(float(1 / (5 * (q * q).sum())))
    assert peaked["data_max_nq"] == pytest.approx(5 * 0.35)
    assert peaked["path_probs"] == [[0.5, 0.5, 0.0, 0.0, 0.0]] * NUM_EDGES
