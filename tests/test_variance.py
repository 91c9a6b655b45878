"""Gradient variance: the exact estimator variance (vs brute force and Monte Carlo), the optimum, and GV of a run."""
from __future__ import annotations

import pytest
import torch

from pada_lite.config import lite, override
from pada_lite.data import ImageData, load_splits
from pada_lite.samplers import DataSampler, PathSampler
from pada_lite.spaces.nb201 import NB201Supernet, SupernetConfig
from pada_lite.training import Trainer
from pada_lite.variance import (
    estimator_samples,
    exact_estimator_variance,
    gradient_variance_callback,
    measure_gradient_variance,
    monte_carlo_variance,
    optimal_distributions,
    per_coordinate_variance,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: one CPU thread


def random_problem(archs=4, samples=6, dim=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    grads = torch.randn(archs, samples, dim, generator=gen, dtype=torch.float64)
    p = torch.rand(archs, generator=gen, dtype=torch.float64) + 0.5
    q = torch.rand(samples, generator=gen, dtype=torch.float64) + 0.5
    return grads, p / p.sum(), q / q.sum()


def brute_force_variance(grads, p, q) -> float:
    """E||ĝ − G||² by enumerating every (a, i) with probability p(a) q(i)."""
    archs, samples, _ = grads.shape
    mean = grads.mean(dim=(0, 1))
    total = 0.0
    for a in range(archs):
        for i in range(samples):
            estimate = grads[a, i] / (archs * p[a] * samples * q[i])
            total += float(p[a] * q[i] * (estimate - mean).pow(2).sum())
    return total


def test_per_coordinate_variance_is_unbiased():
    assert per_coordinate_variance(torch.tensor([[1.0, 2.0], [3.0, 6.0]])).tolist() == [2.0, 8.0]
    with pytest.raises(ValueError, match="at least 2"):
        per_coordinate_variance(torch.ones(1, 3))


def test_exact_variance_matches_brute_force_and_the_estimator_is_unbiased():
    grads, p, q = random_problem()
    assert exact_estimator_variance(grads, p, q) == pytest.approx(brute_force_variance(grads, p, q), rel=1e-10)
    archs, samples, _ = grads.shape
    expectation = sum(p[a] * q[i] * grads[a, i] / (archs * p[a] * samples * q[i])
                      for a in range(archs) for i in range(samples))
    assert torch.allclose(expectation, grads.mean(dim=(0, 1)))


def test_monte_carlo_matches_the_formula():
    grads, p, q = random_problem(seed=1)
    exact = exact_estimator_variance(grads, p, q)
    mc = monte_carlo_variance(grads, p, q, num_draws=200_000, generator=torch.Generator().manual_seed(0))
    assert mc == pytest.approx(exact, rel=0.03)
    draws = estimator_samples(grads, p, q, 200_000, torch.Generator().manual_seed(1))
    assert torch.allclose(draws.mean(0), grads.mean(dim=(0, 1)), atol=0.03)


def test_optimum_is_never_above_uniform_or_random_distributions():
    grads, _, _ = random_problem(archs=5, samples=8, dim=4, seed=2)
    grads[1] *= 4.0                                        # one arch with much larger gradients
    p_opt, q_opt = optimal_distributions(grads)
    best = exact_estimator_variance(grads, p_opt, q_opt)
    uniform = exact_estimator_variance(grads, torch.full((5,), 0.2), torch.full((8,), 0.125))
    assert best < uniform
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        p, q = torch.rand(5, generator=gen) + 0.05, torch.rand(8, generator=gen) + 0.05
        assert best <= exact_estimator_variance(grads, p / p.sum(), q / q.sum()) + 1e-12


def test_optimum_of_separable_norms_is_proportional_to_the_norms():
    u, v = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64), torch.tensor([3.0, 1.0], dtype=torch.float64)
    grads = (u[:, None] * v[None, :])[..., None] * torch.tensor([1.0, 0.0], dtype=torch.float64)  # ||g(a,i)|| = u_a v_i
    p, q = optimal_distributions(grads)
    assert p.tolist() == pytest.approx((u / u.sum()).tolist()) and q.tolist() == pytest.approx((v / v.sum()).tolist())


def test_bad_distributions_are_errors():
    grads, p, q = random_problem()
    with pytest.raises(ValueError, match="p must be a probability vector of length 4"):
        exact_estimator_variance(grads, p[:3] / p[:3].sum(), q)
    with pytest.raises(ValueError, match="q must be"):
        exact_estimator_variance(grads, p, q * 2)


# ------------------------------------------------------------------------------------------ GV of a run
class FixedPath(PathSampler):
    """Always the same arch."""

    def __init__(self, arch):
        super().__init__(("nor_conv_1x1", "nor_conv_3x3"), torch.Generator())
        self.arch = arch

    def sample(self, generator=None):
        return [(self.arch, 1.0)]


def tiny_data(n: int) -> ImageData:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), generator=gen, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % 3, (0.5,), (0.25,), 3)


def tiny_model() -> NB201Supernet:
    torch.manual_seed(0)
    return NB201Supernet(SupernetConfig(channels=2, cells_per_stage=1, num_classes=3))


def test_gv_is_zero_without_randomness_and_zero_for_ops_off_the_path():
    model, data = tiny_model(), tiny_data(12)
    path = FixedPath(("nor_conv_3x3",) * 6)
    one_sample = DataSampler(torch.zeros(1, dtype=torch.long), torch.Generator())   # q is a point mass on sample 0
    assert measure_gradient_variance(model, data, path, one_sample, num_samples=4, batch_size=4).total == 0.0
    gv = measure_gradient_variance(model, data, path, DataSampler(data.labels, torch.Generator()), 6, 4)
    assert gv.per_op["nor_conv_1x1"] == 0.0 and gv.per_op["nor_conv_3x3"] > 0
    assert gv.total == pytest.approx((gv.per_op["nor_conv_3x3"] * 9 + gv.per_op["nor_conv_1x1"]) / 10)  # by size


def test_gv_leaves_weights_grads_and_every_rng_untouched():
    model, data = tiny_model(), tiny_data(12)
    path = PathSampler(("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
                       torch.Generator().manual_seed(1))
    sampler_state, global_state = path.generator.get_state(), torch.get_rng_state()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    first = measure_gradient_variance(model, data, path, DataSampler(data.labels, torch.Generator()), 5, 4, seed=7)
    second = measure_gradient_variance(model, data, path, DataSampler(data.labels, torch.Generator()), 5, 4, seed=7)
    assert first == second and first.total > 0
    assert torch.equal(path.generator.get_state(), sampler_state) and torch.equal(torch.get_rng_state(), global_state)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and not model.training


TINY = ["data.train_size=300", "data.test_size=100", "data.image_size=8", "space.channels=4",
        "space.cells_per_stage=1", "train.batch_size=50", "train.epochs=2", "train.progress=false",
        "train.path_sampler=importance", "train.data_sampler=importance"]


def test_gv_callback_logs_per_epoch_without_changing_training():
    config = override(lite(), TINY)
    splits = load_splits(config.data)
    plain = Trainer(config, splits=splits).run(resume=False)
    logged = Trainer(config, splits=splits, epoch_callbacks=[gradient_variance_callback(4, 16)]).run(resume=False)
    assert all(torch.equal(a, b) for a, b in zip(plain.model.state_dict().values(), logged.model.state_dict().values()))
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in logged.history]
    for summary in logged.history:
        assert summary["grad_var"] > 0 and {"grad_var/nor_conv_1x1", "grad_var/nor_conv_3x3"} <= set(summary)
