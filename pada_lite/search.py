"""Architecture search on top of a fitness estimate: random search and the evolutionary search of SPOS.

A *fitness* is any function ``archs -> accuracies`` (one number per arch, higher is better): a trained supernet
(:func:`supernet_fitness`, inherited weights on validation images), a table of published predictions
(:func:`table_fitness`, e.g. the one-shot supernet of NAS-Bench-201), or a ground truth. Searches count how many
*distinct* archs they evaluate (the budget) and cache fitness values, so the same budget means the same cost.

Evolution follows SPOS (Guo et al., 2020): keep the ``parents`` best archs seen so far; each generation makes
``population / 2`` children by mutation (each edge resampled with probability ``mutation_prob``) and the rest by
uniform crossover of two parents; children already evaluated or outside the space are redrawn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .spaces.nb201 import NB201_OPS, NUM_EDGES, Arch, arch_to_str

Fitness = Callable[[Sequence[Arch]], np.ndarray]


class SearchError(ValueError):
    """Raised for an invalid search setting; the message names it and the fix."""


@dataclass
class SearchResult:
    """The best arch found, its fitness, and the whole trace of evaluations in order."""

    best: Arch
    best_fitness: float
    evaluated: list[Arch] = field(default_factory=list)     # distinct archs, in evaluation order
    fitness: list[float] = field(default_factory=list)      # their fitness, same order
    best_per_generation: list[float] = field(default_factory=list)

    def best_after(self, budget: int) -> Arch:
        """The best arch among the first ``budget`` evaluations.

        For :func:`random_search` and :func:`evolutionary_search` this is exactly what the same search (same seed and
        settings) returns when run with ``budget``: their first ``budget`` evaluations do not depend on the budget.
        One long search thus gives the whole curve of "what would the search have found with a smaller budget".
        """
        if budget < 1:
            raise SearchError(f"budget={budget} must be at least 1")
        k = int(np.argmax(self.fitness[:budget]))
        return self.evaluated[k]

    def as_dict(self) -> dict:
        """JSON-able summary."""
        return {"best": arch_to_str(self.best), "best_fitness": self.best_fitness,
                "evaluated": [arch_to_str(a) for a in self.evaluated], "fitness": self.fitness,
                "best_per_generation": self.best_per_generation}


class CachedFitness:
    """Evaluates each distinct arch once and records the order of first evaluation."""

    def __init__(self, fitness: Fitness):
        self.fitness, self.values, self.order = fitness, {}, []

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        new = list(dict.fromkeys(a for a in archs if a not in self.values))
        if new:
            for arch, value in zip(new, np.asarray(self.fitness(new), dtype=float)):
                self.values[arch] = float(value)
            self.order.extend(new)
        return np.array([self.values[a] for a in archs])

    def result(self, best_per_generation: list[float] | None = None) -> SearchResult:
        fitness = [self.values[a] for a in self.order]
        k = int(np.argmax(fitness))
        return SearchResult(self.order[k], fitness[k], list(self.order), fitness, best_per_generation or [])


def _check_space(space: Sequence[Arch] | None, ops: Sequence[str]) -> set | None:
    if space is not None and not space:
        raise SearchError("the search space is empty: pass archs or space=None for every arch over `ops`")
    if not ops:
        raise SearchError("no candidate ops: pass ops, e.g. pada_lite.spaces.NB201_OPS")
    return None if space is None else {tuple(a) for a in space}


def random_arch(rng: np.random.Generator, ops: Sequence[str] = NB201_OPS) -> Arch:
    """One arch with every edge's op drawn uniformly."""
    return tuple(ops[i] for i in rng.integers(len(ops), size=NUM_EDGES))


def _draw(rng, space_list, ops) -> Arch:
    return space_list[int(rng.integers(len(space_list)))] if space_list is not None else random_arch(rng, ops)


def random_search(fitness: Fitness, budget: int, seed: int = 0, space: Sequence[Arch] | None = None,
                  ops: Sequence[str] = NB201_OPS) -> SearchResult:
    """Evaluate ``budget`` distinct random archs (from ``space``, else over ``ops``) and keep the best."""
    allowed = _check_space(space, ops)
    limit = len(allowed) if allowed is not None else len(ops) ** NUM_EDGES
    if not 1 <= budget <= limit:
        raise SearchError(f"budget={budget} must be between 1 and the size of the space ({limit})")
    rng, cached = np.random.default_rng(seed), CachedFitness(fitness)
    space_list = sorted(allowed) if allowed is not None else None
    picked: dict[Arch, None] = {}  # insertion-ordered set: O(1) membership (a budget can be the whole space)
    while len(picked) < budget:
        picked.setdefault(_draw(rng, space_list, ops))
    cached(list(picked))
    return cached.result()


def mutate(arch: Arch, rng: np.random.Generator, prob: float, ops: Sequence[str] = NB201_OPS) -> Arch:
    """Each edge's op replaced by a uniformly drawn op with probability ``prob``."""
    resample = rng.random(len(arch)) < prob        # two vectorised draws per child: evolution makes thousands
    new = rng.integers(len(ops), size=len(arch))
    return tuple(ops[n] if r else op for op, r, n in zip(arch, resample.tolist(), new.tolist()))


def crossover(a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
    """Uniform crossover: each edge's op from ``a`` or ``b`` with probability 1/2."""
    return tuple(x if pick else y for x, y, pick in zip(a, b, (rng.random(len(a)) < 0.5).tolist()))


def _two_distinct(rng: np.random.Generator, n: int) -> tuple[int, int]:
    """Two distinct indices below ``n``, uniformly (as ``rng.choice(n, 2, replace=False)``, without its overhead)."""
    i, j = int(rng.integers(n)), int(rng.integers(n - 1))
    return i, j + (j >= i)


def evolutionary_search(fitness: Fitness, budget: int, population: int = 50, parents: int = 10,
                        mutation_prob: float = 0.1, seed: int = 0, space: Sequence[Arch] | None = None,
                        ops: Sequence[str] = NB201_OPS, max_tries: int = 1000) -> SearchResult:
    """SPOS-style evolution until ``budget`` distinct archs are evaluated; returns the best by fitness."""
    allowed = _check_space(space, ops)
    if not 2 <= parents <= population <= budget:
        raise SearchError(f"need 2 <= parents ({parents}) <= population ({population}) <= budget ({budget})")
    if not 0.0 < mutation_prob <= 1.0:
        raise SearchError(f"mutation_prob={mutation_prob} must be in (0, 1]")
    rng, cached = np.random.default_rng(seed), CachedFitness(fitness)
    space_list = sorted(allowed) if allowed is not None else None
    valid = (lambda a: a in allowed) if allowed is not None else (lambda a: True)
    generation = _fresh(population, cached, valid, lambda: _draw(rng, space_list, ops), max_tries)
    curve = [float(cached(generation).max())]
    while len(cached.order) < budget:
        top = sorted(cached.values, key=cached.values.get, reverse=True)[:parents]
        half = population // 2
        children = _fresh(min(half, budget - len(cached.order)), cached, valid,
                          lambda: mutate(top[int(rng.integers(len(top)))], rng, mutation_prob, ops), max_tries)
        crossovers = min(population - half, budget - len(cached.order) - len(children)) if len(top) >= 2 else 0
        children += _fresh(crossovers, cached, valid,
                           lambda: crossover(*[top[i] for i in _two_distinct(rng, len(top))], rng),
                           max_tries, taken=children)
        if not children:
            break  # the neighbourhood of the parents is exhausted
        cached(children)
        curve.append(max(cached.values.values()))
    return cached.result(curve)


def _fresh(count: int, cached: CachedFitness, valid, make: Callable[[], Arch], max_tries: int,
           taken: Sequence[Arch] = ()) -> list[Arch]:
    """Up to ``count`` new valid archs from ``make`` that are not evaluated yet (gives up after ``max_tries``)."""
    out: list[Arch] = []
    for _ in range(max_tries):
        if len(out) >= count:
            break
        arch = make()
        if valid(arch) and arch not in cached.values and arch not in out and arch not in taken:
            out.append(arch)
    return out


def true_accuracy_after(results: SearchResult | Sequence[SearchResult], truth: Mapping,
                        budgets: Sequence[int]) -> np.ndarray:
    """True score (``truth[arch]``, e.g. a GroundTruth) of the arch each search returns after each budget.

    The search picks by its fitness; this looks its choice up in the truth. Returns ``[len(budgets)]`` for one result,
    ``[len(results), len(budgets)]`` for a sequence of them (e.g. one per seed).
    """
    single = isinstance(results, SearchResult)
    rows = [[float(truth[r.best_after(b)]) for b in budgets] for r in ([results] if single else results)]
    return np.array(rows[0] if single else rows, dtype=float)


def table_fitness(table: Mapping[Arch, float] | Mapping[str, float]) -> Fitness:
    """Fitness looked up in a table {arch or arch string: value} (e.g. supernet predictions, a GroundTruth)."""
    from .spaces.nb201 import str_to_arch
    table = {str_to_arch(a) if isinstance(a, str) else tuple(a): float(table[a]) for a in table}

    def lookup(archs: Sequence[Arch]) -> np.ndarray:
        missing = [a for a in archs if a not in table]
        if missing:
            raise SearchError(f"{len(missing)} arch(s) are not in the fitness table, e.g. {arch_to_str(missing[0])}: "
                              "restrict the search with space=<the table's archs>")
        return np.array([table[a] for a in archs], dtype=float)
    return lookup


def supernet_fitness(model, data, batch_size: int = 1000, method: str = "auto") -> Fitness:
    """Fitness = accuracy (%) with inherited supernet weights on ``data`` (validation images)."""
    from .evaluation import evaluate_archs
    return lambda archs: evaluate_archs(model, list(archs), data, batch_size, method=method)
