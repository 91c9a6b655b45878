"""Path samplers (which sub-network trains at a step) and data samplers (which samples an epoch visits).

Interface used by :class:`pada_lite.training.Trainer`:

- ``PathSampler.start_epoch(epoch, num_epochs)``; ``sample(generator=None) -> list[(arch, loss_weight)]`` (the
  paths of one step, gradients accumulated over them); ``observe(model, archs)`` after the optimizer step (reads
  ``.grad``); ``probabilities() -> Tensor[E, K]``; ``state_dict()`` / ``load_state_dict()``.
- ``DataSampler.epoch_order(epoch, num_epochs) -> LongTensor[N]`` (dataset indices of one epoch);
  ``observe(indices, logits, labels)`` after each forward pass; ``loss_weights(indices) -> Tensor[B] | None``;
  ``probabilities() -> Tensor[N]``; ``state_dict()`` / ``load_state_dict()``.

All randomness comes from the ``torch.Generator`` a sampler is given (or the one passed to ``sample``), so a
checkpoint restores it exactly. ``observe`` never syncs with the host: it appends norms to logs kept on the model's
device; the scores are reduced from the logs and the distributions rebuilt once per epoch (one sync). A sampler's
``state_dict`` holds its logs and distributions, so a resumed run continues bit for bit.

Samplers: uniform (SPOS), strict fair (FairNAS), importance over ops (PA) and importance over data (DA); PA and
DA follow the reference PA&DA code (see :class:`ImportancePathSampler`, :class:`ImportanceDataSampler` and
:mod:`pada_lite.schedules` for when τ applies).
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import torch

from .schedules import ScoreError, check_scores, make_schedule, mix_with_uniform, tau_for_epoch
from .spaces.nb201 import NUM_EDGES


# ================================================================================================ paths
class PathSampler:
    """Uniform single-path sampling (SPOS): every edge draws its op uniformly at random.

    ``allowed`` (optional bool [num_edges, K]) restricts each edge (a *decision* in general spaces) to some of the
    K choices: a block where skip is impossible, or a member of a split supernet that owns one op of an edge.
    """

    def __init__(self, ops: Sequence[str], generator: torch.Generator, num_edges: int = NUM_EDGES,
                 allowed: torch.Tensor | None = None):
        self.ops = tuple(ops)
        self.num_edges = num_edges
        self.generator = generator
        self.allowed = None if allowed is None else check_allowed(allowed, num_edges, len(self.ops))

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        """Called before the first step of every epoch."""

    def sample(self, generator: torch.Generator | None = None) -> list[tuple[tuple, float]]:
        """The (arch, loss weight) pairs trained at this step (``generator`` overrides the sampler's own)."""
        generator = generator or self.generator
        if self.allowed is None:
            idx = torch.randint(len(self.ops), (self.num_edges,), generator=generator).tolist()
        else:
            counts = self.allowed.sum(1)                                              # [E]
            pick = (torch.rand(self.num_edges, generator=generator, dtype=torch.float64) * counts).long()  # [E]
            idx = [int(row.nonzero()[k]) for row, k in zip(self.allowed, pick.tolist())]
        return [(tuple(self.ops[i] for i in idx), 1.0)]

    def observe(self, model: torch.nn.Module, archs: Sequence[tuple]) -> None:
        """Called after the optimizer step with the archs trained at that step."""

    def probabilities(self) -> torch.Tensor:  # [num_edges, K]
        """The current op distribution of every edge."""
        if self.allowed is None:
            return torch.full((self.num_edges, len(self.ops)), 1.0 / len(self.ops), dtype=torch.float64)
        mask = self.allowed.double()
        return mask / mask.sum(1, keepdim=True)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def check_allowed(allowed: torch.Tensor, num_edges: int, k: int) -> torch.Tensor:
    """A valid ``allowed`` mask: bool [num_edges, K] with at least one choice per edge (CPU)."""
    allowed = torch.as_tensor(allowed, dtype=torch.bool).cpu()
    if tuple(allowed.shape) != (num_edges, k):
        raise ValueError(f"allowed mask has shape {tuple(allowed.shape)}, expected ({num_edges}, {k})")
    if not bool(allowed.any(1).all()):
        empty = (~allowed.any(1)).nonzero().flatten().tolist()
        raise ValueError(f"allowed mask leaves edge(s) {empty} without a choice")
    return allowed


class FairPathSampler(PathSampler):
    """Strict fairness (FairNAS): K paths per step that together use every op of every edge exactly once.

    Each edge draws an independent random permutation of its K ops at every step (the reference FairNAS code reuses
    the first permutation for a whole epoch; this does not); path n takes op ``perm[e][n]`` on edge e. The trainer
    accumulates the K gradients (loss weight 1 each, a sum as in FairNAS) and makes one update.
    """

    def sample(self, generator: torch.Generator | None = None) -> list[tuple[tuple, float]]:
        k = len(self.ops)
        perms = torch.rand(self.num_edges, k, generator=generator or self.generator).argsort(dim=1)  # [E, K]
        columns = perms.t().tolist()  # [K][E]: op index of each edge in path n
        return [(tuple(self.ops[i] for i in column), 1.0) for column in columns]


class _GrowingLog:
    """A 1-D tensor that values are appended to without a host sync; it follows the device of what is appended."""

    def __init__(self, dtype: torch.dtype, capacity: int = 1024):
        self.data = torch.zeros(capacity, dtype=dtype)
        self.size = 0

    def append(self, values: torch.Tensor) -> None:  # [n]
        stop = self.size + len(values)
        if stop > len(self.data) or self.data.device != values.device:
            grown = torch.zeros(max(len(self.data), 2 * stop), dtype=self.data.dtype, device=values.device)
            grown[:self.size] = self.data[:self.size]
            self.data = grown
        self.data[self.size:stop] = values
        self.size = stop

    def values(self) -> torch.Tensor:  # [size]
        return self.data[:self.size]

    def clear(self) -> None:
        self.size = 0


class OpGradientTable:
    """Where the parameters of every (edge, op) live in a supernet, and which score group they feed.

    A group is an op (shared scope) or an (edge, op) pair (edge scope). Ops without parameters feed no group.
    """

    def __init__(self, model: torch.nn.Module, ops: Sequence[str], num_edges: int, per_edge: bool):
        k = len(ops)
        instances = model.choice_instances()                           # [E][K] -> one parameter list per instance
        if len(instances) != num_edges or any(len(row) != k for row in instances):
            raise ValueError(f"the supernet has {len(instances)} decisions x {len(instances[0]) if instances else 0} "
                             f"choices, the sampler {num_edges} x {k}")
        self.params = [[[p for params in instances[e][j] for p in params] for j in range(k)]
                       for e in range(num_edges)]                      # [E][K] -> parameters over all instances
        self.instances = [[sum(bool(params) for params in instances[e][j]) for j in range(k)]
                          for e in range(num_edges)]                   # [E][K] -> instances that have parameters
        self.group = [[e * k + j if per_edge else j for j in range(k)] for e in range(num_edges)]
        self.zero = torch.zeros((), device=next(model.parameters()).device)

    def parametric_pairs(self, op_indices: Sequence[int]) -> list[tuple[int, int]]:
        """The (edge, op) pairs of an arch whose op has parameters."""
        return [(e, j) for e, j in enumerate(op_indices) if self.params[e][j]]

    def gradients(self, pairs: list[tuple[int, int]]) -> list[torch.Tensor]:
        """Gradients of every parameter of ``pairs`` (a zero for a parameter the step left without one)."""
        return [p.grad if p.grad is not None else self.zero for e, j in pairs for p in self.params[e][j]]

    def groups(self, pairs: list[tuple[int, int]]) -> list[int]:
        """The score group of every parameter of ``pairs`` (same order as :meth:`gradients`)."""
        return [self.group[e][j] for e, j in pairs for _ in self.params[e][j]]

    def instance_counts(self, pairs: list[tuple[int, int]]) -> dict[int, int]:
        """Op instances (cell, edge) per score group."""
        counts: dict[int, int] = {}
        for e, j in pairs:
            counts[self.group[e][j]] = counts.get(self.group[e][j], 0) + self.instances[e][j]
        return counts


def running_halving_scores(sums: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores after applying, row by row, ``g = (g + sums/counts) / 2`` from g = 0 where counts > 0 and sums != 0.

    ``sums``, ``counts``: [T, G] per observed arch and group; entries whose mean is not finite are skipped. Returns
    the scores [G] and where the mean was not finite [T, G]. Closed form: an update at row t is halved once per
    update at rows >= t.
    """
    new = sums / counts.clamp(min=1)                                                 # [T, G]
    finite = torch.isfinite(new)
    update = (counts > 0) & (sums != 0) & finite
    halvings = update.flip(0).cumsum(0).flip(0)                                      # updates at rows >= t
    scores = torch.where(update, new * 0.5 ** halvings.to(new.dtype), 0.0).sum(0)   # [G]
    return scores, (counts > 0) & ~finite


class ImportancePathSampler(PathSampler):
    """PA: ops sampled with probabilities that follow their gradient norms (reference PA&DA NB201 code).

    After every optimizer step, each sampled op with parameters gets ``new = Σ ||grad(param)||₂ / n`` over the
    parameters of its n sampled instances (every (cell, edge) that carries it) and a running score
    ``g = (g + new) / 2`` (only where the sum is non-zero, as the reference). Ops without parameters keep score 0.
    At the start of epoch e ≥ 1, ``p = mix_with_uniform(g, τ(e − 1))`` (the reference computes it at the end of
    epoch e − 1 with that epoch's τ) and the scores are reset; epoch 0 samples uniformly.

    ``scope="shared"``: one vector over the K ops for all edges and cells (reference). ``scope="edge"``: each edge
    has its own scores, from that edge's op gradients only. ``importance_weighting=True`` gives each path the loss
    weight ``Π_e 1 / (K p_e(op_e))`` (unbiased estimator; the reference uses none). Dividing by the instance count
    rather than the reference's per-cell count scales all scores by 1/cells, which the normalisation cancels.
    Steps whose gradients are not finite (float16 loss scaling skips them) are not scored; an epoch with only such
    steps is an error.

    Each step only appends its parameter-gradient norms to a log on the device (one ``_foreach_norm``); the running
    scores are computed from the log when asked (:func:`running_halving_scores`), once per epoch in training.
    """

    def __init__(self, ops: Sequence[str], generator: torch.Generator, num_edges: int = NUM_EDGES,
                 tau="linear", scope: str = "shared", importance_weighting: bool = False,
                 allowed: torch.Tensor | None = None):
        super().__init__(ops, generator, num_edges, allowed)
        if scope not in ("shared", "edge"):
            raise ValueError(f"PA scope must be 'shared' or 'edge', got {scope!r}")
        self.schedule = make_schedule(tau)
        self.scope = scope
        self.importance_weighting = importance_weighting
        self.score_shape = (num_edges, len(self.ops)) if scope == "edge" else (len(self.ops),)
        self.set_probabilities(super().probabilities())
        self.norms = _GrowingLog(torch.float32)                      # parameter-gradient norms of this epoch
        self.norm_rows: list[int] = []                               # observed arch of each logged norm
        self.norm_groups: list[int] = []                             # score group of each logged norm
        self.row_instances: list[dict[int, int]] = []                # op instances per group of each arch
        self.table: OpGradientTable | None = None
        self.op_index = {op: j for j, op in enumerate(self.ops)}

    # ---------------------------------------------------------------------------------- per epoch
    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        """Turn the previous epoch's scores into this epoch's distribution, then reset them."""
        if epoch > 0:
            scores, nonfinite = self._running_scores()
            self._check_nonfinite(nonfinite, epoch - 1)
            probs = mix_with_uniform(scores.view(self.score_shape), tau_for_epoch(self.schedule, epoch, num_epochs),
                                     self._describe)
            self.set_probabilities(probs.expand(self.num_edges, -1) if self.scope == "shared" else probs)
        self.norms.clear()
        self.norm_rows, self.norm_groups, self.row_instances = [], [], []

    def set_probabilities(self, probs: torch.Tensor) -> None:  # [E, K]
        """Sample from ``probs`` (rows: edges; masked to the allowed choices, renormalised) until the next epoch."""
        self.probs = probs.to("cpu", torch.float64).clone()                            # [E, K]
        if self.allowed is not None:
            self.probs = self.probs * self.allowed
            self.probs = self.probs / self.probs.sum(1, keepdim=True)
        cumulative = self.probs.cumsum(1)
        self.cdf = cumulative / cumulative[:, -1:]                                     # [E, K], last column 1

    def _running_scores(self) -> tuple[torch.Tensor, torch.Tensor]:  # [G] float64 CPU, non-finite [T, G]
        groups = math.prod(self.score_shape)
        sums = torch.zeros(len(self.row_instances), groups, dtype=torch.float64)
        where = (torch.tensor(self.norm_rows, dtype=torch.long), torch.tensor(self.norm_groups, dtype=torch.long))
        sums.index_put_(where, self.norms.values().cpu().double(), accumulate=True)
        counts = torch.zeros_like(sums)
        for row, instances in enumerate(self.row_instances):
            for group, count in instances.items():
                counts[row, group] = count
        return running_halving_scores(sums, counts)

    def _check_nonfinite(self, nonfinite: torch.Tensor, epoch: int) -> None:  # [T, G]
        bad, steps = int(nonfinite.any(1).sum()), len(self.row_instances)
        if not bad:
            return
        k = len(self.ops)
        where = ", ".join(self._describe(divmod(g, k) if self.scope == "edge" else (g,))
                          for g in nonfinite.any(0).nonzero().flatten().tolist())
        message = f"{bad} of {steps} steps of epoch {epoch + 1} had NaN/inf gradients in {where}"
        if bad == steps:
            raise ScoreError(f"{message}, so PA has no scores: lower train.lr, keep train.grad_clip > 0, or "
                             "disable train.amp")
        warnings.warn(f"{message} (skipped float16 steps?); PA did not score them", RuntimeWarning, stacklevel=3)

    def _describe(self, index: tuple) -> str:
        return f"PA op {self.ops[index[-1]]!r}" + (f" on edge {index[0]}" if self.scope == "edge" else "")

    # ----------------------------------------------------------------------------------- per step
    def sample(self, generator: torch.Generator | None = None) -> list[tuple[tuple, float]]:
        u = torch.rand(self.num_edges, 1, dtype=torch.float64, generator=generator or self.generator)
        idx = torch.searchsorted(self.cdf, u, right=True).view(-1)                      # [E]: inverse CDF
        weight = 1.0
        if self.importance_weighting:
            choices = self.allowed.sum(1, keepdim=True) if self.allowed is not None else len(self.ops)  # K per edge
            weight = float((1.0 / (choices * self.probs.gather(1, idx.view(-1, 1)))).prod())
        return [(tuple(self.ops[i] for i in idx.tolist()), weight)]

    def observe(self, model: torch.nn.Module, archs: Sequence[tuple]) -> None:
        """Log the gradient norms of the sampled ops' parameters (on the device, no host sync)."""
        if self.table is None:
            self.table = OpGradientTable(model, self.ops, self.num_edges, self.scope == "edge")
        for arch in archs:
            pairs = self.table.parametric_pairs([self.op_index[op] for op in arch])
            if pairs:
                grads = self.table.gradients(pairs)
                self.norms.append(torch.stack(torch._foreach_norm(grads)).float())    # [P]
                self.norm_rows += [len(self.row_instances)] * len(grads)
                self.norm_groups += self.table.groups(pairs)
            self.row_instances.append(self.table.instance_counts(pairs))

    # ---------------------------------------------------------------------------------- reporting
    def probabilities(self) -> torch.Tensor:  # [E, K]
        return self.probs.clone()

    def op_scores(self) -> torch.Tensor:  # [K] (shared) or [E, K] (edge)
        """The running scores recorded so far in this epoch (CPU, float64)."""
        return self._running_scores()[0].view(self.score_shape)

    def state_dict(self) -> dict:
        return {"kind": "importance", "ops": list(self.ops), "scope": self.scope, "probabilities": self.probs.clone(),
                "norms": self.norms.values().cpu().clone(), "norm_rows": list(self.norm_rows),
                "norm_groups": list(self.norm_groups), "row_instances": [dict(d) for d in self.row_instances]}

    def load_state_dict(self, state: dict) -> None:
        expected = {"kind": "importance", "ops": list(self.ops), "scope": self.scope}
        found = {key: state.get(key) for key in expected}
        if found != expected:
            raise ValueError(f"the checkpoint's path sampler state {found} does not match this run's {expected}: "
                             "resume with the config that wrote the checkpoint")
        self.set_probabilities(state["probabilities"])
        self.norms.clear()
        self.norms.append(state["norms"].to(self.norms.data.device, torch.float32))
        self.norm_rows, self.norm_groups = list(state["norm_rows"]), list(state["norm_groups"])
        self.row_instances = [dict(d) for d in state["row_instances"]]


class ArchListSampler:
    """Draws whole archs from an explicit list (a sub-supernet owning an arbitrary group of archs).

    Per-edge masks cannot express a random group of archs, so this sampler keeps the list and draws one of its archs
    with probability ``∝ Π_e p_e(op_e)``, the per-edge op distribution of its ``base`` path sampler restricted to the
    list: uniform over the list for a uniform base, PA's op scores for an importance base (which also does the
    scoring: ``start_epoch``, ``observe`` and the state are the base's).
    """

    def __init__(self, base: PathSampler, archs: Sequence[tuple]):
        if not archs:
            raise ValueError("an arch-list sampler needs at least one arch")
        if getattr(base, "importance_weighting", False):
            raise ValueError("importance weights are not defined for an arch list: "
                             "set train.importance_weighting=false")
        self.base, self.ops, self.num_edges = base, base.ops, base.num_edges
        index = {op: j for j, op in enumerate(self.ops)}
        self.archs = [tuple(a) for a in archs]
        self.codes = torch.tensor([[index[op] for op in a] for a in self.archs], dtype=torch.long)  # [A, E]
        self._weights: torch.Tensor | None = None                                                  # [A]

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        self.base.start_epoch(epoch, num_epochs)
        self._weights = None

    def weights(self) -> torch.Tensor:  # [A] float64, sums to 1
        """The probability of every arch of the list."""
        if self._weights is None:
            probs = self.base.probabilities()                                                      # [E, K]
            w = probs.gather(1, self.codes.t()).prod(0)                                            # [A]
            self._weights = w / w.sum()
        return self._weights

    def sample(self, generator: torch.Generator | None = None) -> list[tuple[tuple, float]]:
        k = int(torch.multinomial(self.weights(), 1, generator=generator or self.base.generator))
        return [(self.archs[k], 1.0)]

    def observe(self, model: torch.nn.Module, archs: Sequence[tuple]) -> None:
        self.base.observe(model, archs)

    def probabilities(self) -> torch.Tensor:  # [E, K]
        return self.base.probabilities()

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)
        self._weights = None


# ================================================================================================= data
class DataSampler:
    """Uniform data order: a fresh random permutation of the training set every epoch."""

    def __init__(self, labels: torch.Tensor, generator: torch.Generator):
        if len(labels) == 0:
            raise ValueError("the training set is empty: nothing to sample")
        self.num_samples = len(labels)
        self.generator = generator

    def epoch_order(self, epoch: int, num_epochs: int) -> torch.Tensor:  # [N] dataset indices
        return torch.randperm(self.num_samples, generator=self.generator)

    def observe(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Called after each training forward pass (detached logits)."""

    def loss_weights(self, indices: torch.Tensor) -> torch.Tensor | None:
        return None

    def probabilities(self) -> torch.Tensor:  # [N]
        """The probability of each sample being drawn (a permutation visits all: uniform)."""
        return torch.full((self.num_samples,), 1.0 / self.num_samples, dtype=torch.float64)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def output_gradient_norm(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # [B, C], [B] -> [B]
    """``||softmax(z) − onehot(y)||₂``: the norm of the cross-entropy gradient w.r.t. the logits."""
    probs = torch.softmax(logits.float(), dim=1)                                     # [B, C]
    probs.scatter_add_(1, labels.view(-1, 1), torch.full((len(labels), 1), -1.0, device=probs.device))
    return torch.linalg.vector_norm(probs, dim=1)


def running_pair_mean_(scores: torch.Tensor, visited: torch.Tensor, indices: torch.Tensor,
                       values: torch.Tensor) -> None:
    """In place, as if visiting ``indices`` in order: ``s[i] = v`` on a first visit, else ``s[i] = (s[i] + v) / 2``.

    Duplicates in one batch are resolved in closed form on the device (no host sync, deterministic): a group of
    m visits v_1..v_m of sample i ends at ``s/2^m + Σ_r v_r / 2^(m-r+1)`` (``v_1`` counts twice if i was unvisited).
    """
    order = indices.argsort(stable=True)
    idx, vals = indices[order], values[order].to(scores.dtype)                      # [B], sorted by index
    pos = torch.arange(len(idx), device=idx.device)
    first = torch.ones_like(idx, dtype=torch.bool)
    first[1:] = idx[1:] != idx[:-1]
    last = torch.ones_like(first)
    last[:-1] = first[1:]
    start = torch.where(first, pos, 0).cummax(0).values                              # group's first position
    end = torch.where(last, pos, len(idx)).flip(0).cummin(0).values.flip(0)          # group's last position
    rank, size = pos - start, end - start + 1
    seen = visited[idx]
    weight = 0.5 ** (size - rank).to(scores.dtype)
    weight = torch.where((rank == 0) & ~seen, 2 * weight, weight)
    contrib = weight * vals + torch.where((rank == 0) & seen, 0.5 ** size.to(scores.dtype) * scores[idx], 0.0)
    cumulative = contrib.cumsum(0)
    total = cumulative[end] - cumulative[start] + contrib[start]                     # same value for a whole group
    scores.index_put_((idx,), total)
    visited.index_put_((idx,), torch.ones_like(seen))


class ImportanceDataSampler(DataSampler):
    """DA: each epoch draws N samples with replacement, with probabilities that follow per-sample scores.

    The score of a visit is ``||softmax(z) − onehot(y)||₂`` from the training forward pass; repeated visits of a
    sample within an epoch keep the running mean ``(s + new) / 2`` in visit order (reference). Scores are reset every
    epoch, so a sample not drawn in epoch e has score 0 afterwards (reference). At the start of epoch e ≥ 1 (the
    reference: end of epoch e − 1, with τ(e − 1)), ``q = mix_with_uniform(s, τ)`` and N indices are drawn from q.
    Epoch 0 is a uniform permutation.

    ``granularity="class"``: the score of class c is the mean score of its samples visited in the epoch (0 if
    none), every sample i of the class gets ``s_i = S_{y_i}``, and q uses those, so a class's total probability is
    ``τ n_c S_c / Σ_c' n_c' S_c' + (1 − τ) n_c / N``. ``importance_weighting=True``: loss weights ``1 / (N q(i))``
    (the reference uses none).

    Each step only appends (index, score) to a visit log on the device; the running means are computed from the log
    once per epoch (:func:`running_pair_mean_`), which is the same rule at a fraction of the per-step cost.
    """

    def __init__(self, labels: torch.Tensor, generator: torch.Generator, tau="linear", granularity: str = "sample",
                 importance_weighting: bool = False):
        super().__init__(labels, generator)
        if granularity not in ("sample", "class"):
            raise ValueError(f"DA granularity must be 'sample' or 'class', got {granularity!r}")
        self.labels = torch.as_tensor(labels).long().cpu()                    # [N]
        self.schedule = make_schedule(tau)
        self.granularity = granularity
        self.importance_weighting = importance_weighting
        self.visit_indices = _GrowingLog(torch.long, self.num_samples)          # visits of this epoch, in order
        self.visit_scores = _GrowingLog(torch.float32, self.num_samples)
        self.q: torch.Tensor | None = None                                     # [N] float64 CPU; None: uniform
        self.weights: torch.Tensor | None = None                               # [N] 1 / (N q) on the device

    def epoch_order(self, epoch: int, num_epochs: int) -> torch.Tensor:  # [N] dataset indices
        if self.visit_indices.size == 0:  # nothing scored yet (epoch 0): a permutation, like the uniform sampler
            self._set_distribution(None)
            return torch.randperm(self.num_samples, generator=self.generator)
        tau = tau_for_epoch(self.schedule, epoch, num_epochs)
        self._set_distribution(mix_with_uniform(self.sampling_scores(), tau))
        self.visit_indices.clear()
        self.visit_scores.clear()
        return torch.multinomial(self.q, self.num_samples, replacement=True, generator=self.generator)

    def _set_distribution(self, q: torch.Tensor | None) -> None:
        self.q = q
        self.weights = None
        if q is not None and self.importance_weighting:
            self.weights = (1.0 / (self.num_samples * q)).float().to(self.visit_scores.data.device)

    def epoch_scores(self) -> tuple[torch.Tensor, torch.Tensor]:  # [N] float64, [N] bool (CPU)
        """Every sample's running-mean score over its visits in this epoch so far, and whether it was visited."""
        scores = torch.zeros(self.num_samples, dtype=torch.float64)
        visited = torch.zeros(self.num_samples, dtype=torch.bool)
        running_pair_mean_(scores, visited, self.visit_indices.values().cpu(), self.visit_scores.values().cpu())
        return scores, visited

    def sampling_scores(self) -> torch.Tensor:  # [N] float64, CPU
        """The per-sample scores q is built from (class means in class granularity)."""
        scores, visited = self.epoch_scores()
        check_scores(scores, lambda i: f"DA sample {i[0]} (label {int(self.labels[i[0]])})")
        if self.granularity == "sample":
            return scores
        classes = int(self.labels.max()) + 1
        sums = torch.zeros(classes, dtype=torch.float64).index_add_(0, self.labels[visited], scores[visited])
        counts = torch.bincount(self.labels[visited], minlength=classes).to(torch.float64)
        return (sums / counts.clamp(min=1))[self.labels]

    def observe(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Log the output-gradient norm of every sample of the batch (on the device, no host sync)."""
        self.visit_indices.append(indices.to(logits.device))
        self.visit_scores.append(output_gradient_norm(logits, labels))

    def loss_weights(self, indices: torch.Tensor) -> torch.Tensor | None:  # [B] or None
        if self.weights is None:
            return None
        if self.weights.device != indices.device:
            self.weights = self.weights.to(indices.device)
        return self.weights[indices]

    def probabilities(self) -> torch.Tensor:  # [N]
        return super().probabilities() if self.q is None else self.q.clone()

    def state_dict(self) -> dict:
        return {"kind": "importance", "granularity": self.granularity, "num_samples": self.num_samples,
                "visit_indices": self.visit_indices.values().cpu().clone(),
                "visit_scores": self.visit_scores.values().cpu().clone(),
                "q": None if self.q is None else self.q.clone()}

    def load_state_dict(self, state: dict) -> None:
        expected = {"kind": "importance", "granularity": self.granularity, "num_samples": self.num_samples}
        found = {key: state.get(key) for key in expected}
        if found != expected:
            raise ValueError(f"the checkpoint's data sampler state {found} does not match this run's {expected}: "
                             "resume with the config (and data) that wrote the checkpoint")
        for log, key, dtype in ((self.visit_indices, "visit_indices", torch.long),
                                (self.visit_scores, "visit_scores", torch.float32)):
            log.clear()
            log.append(state[key].to(log.data.device, dtype))
        self._set_distribution(None if state["q"] is None else state["q"].to("cpu", torch.float64).clone())


# ============================================================================================ factories
def make_path_sampler(config, ops: Sequence[str], generator: torch.Generator, num_edges: int = NUM_EDGES,
                      allowed: torch.Tensor | None = None) -> PathSampler:
    """The path sampler named by ``config.path_sampler`` (a TrainConfig) over ``num_edges`` decisions of ``ops``."""
    if config.path_sampler == "uniform":
        return PathSampler(ops, generator, num_edges, allowed)
    if config.path_sampler == "fair":
        if allowed is not None:
            raise ValueError("train.path_sampler=fair needs every choice allowed on every edge (strict fairness "
                             "trains each once per step); use uniform or importance with restricted choices")
        return FairPathSampler(ops, generator, num_edges)
    if config.path_sampler == "importance":
        return ImportancePathSampler(ops, generator, num_edges, tau=config.tau, scope=config.pa_scope,
                                     importance_weighting=config.importance_weighting, allowed=allowed)
    raise ValueError(f"unknown path sampler {config.path_sampler!r}: use uniform, fair or importance")


def make_data_sampler(config, labels: torch.Tensor, generator: torch.Generator) -> DataSampler:
    """The data sampler named by ``config.data_sampler`` (a TrainConfig)."""
    if config.data_sampler == "uniform":
        return DataSampler(labels, generator)
    if config.data_sampler == "importance":
        return ImportanceDataSampler(labels, generator, tau=config.tau, granularity=config.da_granularity,
                                     importance_weighting=config.importance_weighting)
    raise ValueError(f"unknown data sampler {config.data_sampler!r}: use uniform or importance")


def sampling_summary(path_sampler: PathSampler, data_sampler: DataSampler) -> dict:
    """How peaked this epoch's sampling distributions are: effective number of paths (exp of the entropy of the
    product of the edges' op distributions; K^E when uniform), the data distribution's effective share of the
    training set (1 / (N sum q^2); 1 when uniform) and its largest N q; importance paths also give their [E, K]
    probabilities."""
    p = path_sampler.probabilities().double().cpu()                                          # [E, K]
    entropy = float(-(p * p.clamp_min(1e-300).log()).sum())
    q = data_sampler.probabilities().double().cpu()                                          # [N]
    n = len(q)
    out = {"effective_paths": math.exp(entropy), "data_effective_share": float(1.0 / (n * (q * q).sum())),
           "data_max_nq": float(n * q.max())}
    if isinstance(path_sampler, ImportancePathSampler):
        out["path_probs"] = [[round(float(x), 5) for x in row] for row in p]
    return out
