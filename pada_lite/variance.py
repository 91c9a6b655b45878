"""Gradient variance (GV) of supernet training, and the exact variance of the PA&DA importance-sampling estimator.

**GV of a run** (:func:`measure_gradient_variance`). At fixed weights θ, draw M (path, batch) pairs with the run's own
samplers' current distributions: the path(s) of one step from the path sampler (``sample(generator)``: its current p;
FairNAS gives K paths whose gradients add up, as in a training step) and a batch of B indices drawn i.i.d. from the
data sampler's current q (``probabilities()``). For each pair compute the stochastic gradient the trainer would use,

    g_m = ∇_θ Σ_paths w_path · mean_b( w_b · CE(model(x_b, path), y_b) )

(w_path, w_b: the samplers' loss weights, 1 unless ``importance_weighting``), restricted to θ = the parameters of all
candidate ops of all edges of all cells, flattened to D coordinates. Parameters of ops that are not on the sampled
path get gradient 0: they belong to the stochastic gradient estimator (their update is zero at that step). Then

    GV = (1/D) Σ_j Var_m[g_m,j]        (unbiased, ddof = 1)

and GV of op k is the same mean over op k's coordinates only. The draws use their own generators (seeded from the
run's seed and the epoch), so measuring GV never changes the training RNG streams, the weights, ``.grad`` or the
BN buffers. Augmentation (if the run augments) is applied with that separate generator.

**Exact variance of the estimator** (the derivation in the book). With per-pair gradients g(a, x_i) for ``|A|`` = A
archs and N samples, G = (1/(A N)) Σ g(a, x_i), and ĝ = g(a, x_i) / (A p(a) · N q(i)) with a ~ p, i ~ q:

    Var(ĝ) = E||ĝ − G||² = Σ_a Σ_i ||g(a, x_i)||² / (A² N² p(a) q(i)) − ||G||²

(the trace of the covariance: GV of a run is that trace divided by D). :func:`exact_estimator_variance` computes it,
:func:`monte_carlo_variance` estimates it by drawing, and :func:`optimal_distributions` minimises it over product
distributions p × q.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class GradientVariance:
    """GV at one point of training: the total and per op (ops with parameters), with how it was measured."""

    total: float
    per_op: dict[str, float]
    num_samples: int
    batch_size: int

    def as_dict(self, prefix: str = "grad_var") -> dict:
        """Flat dict for a training history: ``grad_var`` and ``grad_var/<op>``."""
        return {prefix: self.total, **{f"{prefix}/{op}": v for op, v in self.per_op.items()}}


def per_coordinate_variance(samples: torch.Tensor) -> torch.Tensor:  # [M, D] -> [D]
    """Unbiased (ddof = 1) variance of every coordinate across M samples."""
    if samples.shape[0] < 2:
        raise ValueError(f"a variance needs at least 2 samples, got {samples.shape[0]}")
    return samples.var(dim=0, correction=1)


# ------------------------------------------------------------------------------------------ GV of a run
def candidate_op_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    """(op name, parameter) of every candidate op on every edge of every cell, in a fixed order."""
    return [(op, p) for op in model.ops for _, p in model.op_parameters(op)]


def stochastic_gradient(model, params: list[torch.nn.Parameter], data, path_sampler, data_sampler,
                        batch_size: int, generator: torch.Generator, augment: bool = False,
                        augment_generator: torch.Generator | None = None) -> torch.Tensor:  # -> [D]
    """One training-step gradient w.r.t. ``params`` (0 where unused), path and batch drawn with ``generator``."""
    paths = path_sampler.sample(generator)
    idx = torch.multinomial(data_sampler.probabilities(), batch_size, replacement=True, generator=generator)
    x, y = data.batch(idx, augment, augment_generator)
    weights = data_sampler.loss_weights(idx.to(x.device))
    loss = 0.0
    for arch, path_weight in paths:
        per_sample = F.cross_entropy(model(x, arch).float(), y, reduction="none")
        loss = loss + path_weight * (per_sample * weights if weights is not None else per_sample).mean()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


@contextmanager
def preserved_model_state(model: torch.nn.Module):
    """Restore the model's train/eval mode and buffers (e.g. BN running statistics) on exit."""
    training = model.training
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    try:
        model.train()
        yield model
    finally:
        model.train(training)
        for name, b in model.named_buffers():
            b.copy_(buffers[name])


def measure_gradient_variance(model, data, path_sampler, data_sampler, num_samples: int = 16,
                              batch_size: int = 64, seed: int = 0, augment: bool = False) -> GradientVariance:
    """GV of the candidate-op parameters at the current weights (definition in the module docstring)."""
    named = candidate_op_parameters(model)
    if not named:
        raise ValueError("the supernet has no candidate op with parameters: GV is undefined")
    params = [p for _, p in named]
    generator = torch.Generator().manual_seed(seed)
    augment_generator = torch.Generator(device=data.device).manual_seed(seed + 1)
    with preserved_model_state(model):
        samples = torch.stack([stochastic_gradient(model, params, data, path_sampler, data_sampler, batch_size,
                                                   generator, augment, augment_generator)
                               for _ in range(num_samples)])                       # [M, D]
    variance = per_coordinate_variance(samples)                                    # [D]
    op_names = list(dict.fromkeys(op for op, _ in named))
    owner = torch.cat([torch.full((p.numel(),), op_names.index(op)) for op, p in named]).to(variance.device)  # [D]
    per_op = {op: float(variance[owner == k].mean()) for k, op in enumerate(op_names)}
    return GradientVariance(float(variance.mean()), per_op, num_samples, batch_size)


def gradient_variance_callback(num_samples: int = 16, batch_size: int = 64, seed: int = 0):
    """Epoch callback for ``Trainer(..., epoch_callbacks=[...])`` that logs GV (``grad_var``, ``grad_var/<op>``)."""

    def log_gradient_variance(trainer, summary: dict) -> dict:
        run_seed = (trainer.config.train.seed + 1) * 1_000_003 + trainer.epoch * 7919 + seed
        gv = measure_gradient_variance(trainer.model, trainer.train_data, trainer.path_sampler, trainer.data_sampler,
                                       num_samples, batch_size, run_seed, trainer.config.data.augment)
        return gv.as_dict()

    return log_gradient_variance


# -------------------------------------------------------------------------- exact variance of the estimator
def _pair_norms(per_pair_grads: torch.Tensor) -> torch.Tensor:  # [A, N, D] -> [A, N]
    """Squared norms ||g(a, x_i)||², without materialising the [A, N, D] squares (4x faster on large inputs)."""
    return torch.linalg.vector_norm(per_pair_grads.double(), dim=-1).pow(2)


def _check_distribution(x, size: int, name: str) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.shape != (size,) or not bool(torch.isfinite(x).all()) or bool((x < 0).any()) or abs(float(x.sum()) - 1) > 1e-6:
        raise ValueError(f"{name} must be a probability vector of length {size} (finite, >= 0, sum 1), got {x}")
    return x


def _divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator with 0 / 0 = 0 (a pair that is never drawn and has no gradient costs nothing)."""
    return torch.where(numerator == 0, torch.zeros_like(numerator), numerator / denominator)


def exact_estimator_variance(per_pair_grads: torch.Tensor, p, q) -> float:
    """``Σ_a Σ_i ||g(a, x_i)||² / (A² N² p(a) q(i)) − ||G||²`` for per-pair gradients [A, N, D]."""
    a, n = per_pair_grads.shape[:2]
    p, q = _check_distribution(p, a, "p"), _check_distribution(q, n, "q")
    second_moment = _divide(_pair_norms(per_pair_grads), (a * n) ** 2 * p[:, None] * q[None, :]).sum()
    mean = per_pair_grads.double().mean(dim=(0, 1))                                 # G [D]
    return float(second_moment - mean.pow(2).sum())


def estimator_samples(per_pair_grads: torch.Tensor, p, q, num_draws: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:  # -> [M, D]
    """M draws of ĝ = g(a, x_i) / (A p(a) · N q(i)) with a ~ p, i ~ q."""
    a, n = per_pair_grads.shape[:2]
    p, q = _check_distribution(p, a, "p"), _check_distribution(q, n, "q")
    arch = torch.multinomial(p, num_draws, replacement=True, generator=generator)
    sample = torch.multinomial(q, num_draws, replacement=True, generator=generator)
    return per_pair_grads.double()[arch, sample] / (a * p[arch] * n * q[sample])[:, None]


def monte_carlo_variance(per_pair_grads: torch.Tensor, p, q, num_draws: int = 100_000,
                         generator: torch.Generator | None = None) -> float:
    """Σ_j Var_m[ĝ_m,j] over ``num_draws`` draws: a Monte-Carlo estimate of :func:`exact_estimator_variance`."""
    return float(per_coordinate_variance(estimator_samples(per_pair_grads, p, q, num_draws, generator)).sum())


def optimal_distributions(per_pair_grads: torch.Tensor, iterations: int = 500,
                          tol: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """(p*, q*) minimising :func:`exact_estimator_variance` over product distributions, by alternating updates.

    Fix q: p(a) ∝ sqrt(Σ_i ||g(a, x_i)||² / q(i)); fix p: q(i) ∝ sqrt(Σ_a ||g(a, x_i)||² / p(a)) (the Lagrange
    solutions of the derivation); the objective is convex in (log p, log q), so the alternation converges to the
    optimum. For separable norms ||g(a, x_i)|| = u_a v_i it is p ∝ u, q ∝ v after one round.
    """
    norms = _pair_norms(per_pair_grads)                                             # [A, N]
    if not bool((norms.sum(1) > 0).any()):
        raise ValueError("every per-pair gradient is zero: the variance is 0 for any p, q")
    a, n = norms.shape
    p = torch.full((a,), 1.0 / a, dtype=torch.float64)
    q = torch.full((n,), 1.0 / n, dtype=torch.float64)
    for _ in range(iterations):
        p_new = _divide(norms, q[None, :]).sum(1).sqrt()
        p_new /= p_new.sum()
        q_new = _divide(norms, p_new[:, None]).sum(0).sqrt()
        q_new /= q_new.sum()
        change = max(float((p_new - p).abs().max()), float((q_new - q).abs().max()))
        p, q = p_new, q_new
        if change < tol:
            break
    return p, q
