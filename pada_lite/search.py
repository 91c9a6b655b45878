"""Architecture search on top of a fitness estimate: random search and the evolutionary search of SPOS.

A *fitness* is any function ``archs -> accuracies`` (one number per arch, higher is better): a trained supernet
(:func:`supernet_fitness`, inherited weights on validation images), a table of published predictions
(:func:`table_fitness`, e.g. the one-shot supernet of NAS-Bench-201), or a ground truth. Searches count how many
*distinct* archs they evaluate (the budget) and cache fitness values, so the same budget means the same cost.

Evolution follows SPOS (Guo et al., 2020): keep the ``parents`` best archs seen so far; each generation makes
``population / 2`` children by mutation (each edge resampled with probability ``mutation_prob``) and the rest by
uniform crossover of two parents; children already evaluated or outside the space are redrawn.

Both searches work on any space through an :class:`ArchSpace` (``arch_space=``): an object that draws, mutates and
crosses archs (hashable tuples), says whether an arch is allowed (a parameter or FLOPs limit belongs there) and
writes it as a string. Without one they search NB201 (:class:`NB201Archs`: every arch over ``ops``, or a listed set).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from .spaces.nb201 import NB201_OPS, NUM_EDGES, Arch, arch_to_str

Fitness = Callable[[Sequence[Arch]], np.ndarray]


class SearchError(ValueError):
    """Raised for an invalid search setting; the message names it and the fix."""


class ArchSpace(Protocol):
    """What a search needs of a space: draw, mutate and cross archs, check them, write them."""

    def random(self, rng: np.random.Generator) -> Arch: ...
    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float) -> Arch: ...
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch: ...
    def is_valid(self, arch: Arch) -> bool: ...
    def to_str(self, arch: Arch) -> str: ...


@dataclass
class SearchResult:
    """The best arch found, its fitness, and the whole trace of evaluations in order."""

    best: Arch
    best_fitness: float
    evaluated: list[Arch] = field(default_factory=list)     # distinct archs, in evaluation order
    fitness: list[float] = field(default_factory=list)      # their fitness, same order
    best_per_generation: list[float] = field(default_factory=list)
    to_str: Callable[[Arch], str] = field(default=arch_to_str, repr=False, compare=False)  # the space's writer

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
        return {"best": self.to_str(self.best), "best_fitness": self.best_fitness,
                "evaluated": [self.to_str(a) for a in self.evaluated], "fitness": self.fitness,
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

    def result(self, best_per_generation: list[float] | None = None,
               to_str: Callable[[Arch], str] = arch_to_str) -> SearchResult:
        fitness = [self.values[a] for a in self.order]
        k = int(np.argmax(fitness))
        return SearchResult(self.order[k], fitness[k], list(self.order), fitness, best_per_generation or [], to_str)


class NB201Archs:
    """The NB201 space as an :class:`ArchSpace`: every arch over ``ops``, or only the listed ``archs``."""

    def __init__(self, ops: Sequence[str] = NB201_OPS, archs: Sequence[Arch] | None = None):
        if archs is not None and not archs:
            raise SearchError("the search space is empty: pass archs or space=None for every arch over `ops`")
        if not ops:
            raise SearchError("no candidate ops: pass ops, e.g. pada_lite.spaces.NB201_OPS")
        self.ops = tuple(ops)
        self.members = None if archs is None else {tuple(a) for a in archs}
        self.listed = None if archs is None else sorted(self.members)

    def size(self) -> int:
        """Number of archs in the space."""
        return len(self.listed) if self.listed is not None else len(self.ops) ** NUM_EDGES

    def random(self, rng: np.random.Generator) -> Arch:
        if self.listed is not None:
            return self.listed[int(rng.integers(len(self.listed)))]
        return random_arch(rng, self.ops)

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float) -> Arch:
        return mutate(arch, rng, prob, self.ops)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        return crossover(a, b, rng)

    def is_valid(self, arch: Arch) -> bool:
        return self.members is None or arch in self.members

    def to_str(self, arch: Arch) -> str:
        return arch_to_str(arch)


def _arch_space(arch_space: ArchSpace | None, space: Sequence[Arch] | None, ops: Sequence[str]) -> ArchSpace:
    if arch_space is not None and space is not None:
        raise SearchError("pass either arch_space or space (a list of NB201 archs), not both")
    return arch_space if arch_space is not None else NB201Archs(ops, space)


def random_arch(rng: np.random.Generator, ops: Sequence[str] = NB201_OPS) -> Arch:
    """One arch with every edge's op drawn uniformly."""
    return tuple(ops[i] for i in rng.integers(len(ops), size=NUM_EDGES))


def random_search(fitness: Fitness, budget: int, seed: int = 0, space: Sequence[Arch] | None = None,
                  ops: Sequence[str] = NB201_OPS, arch_space: ArchSpace | None = None,
                  max_tries: int = 1000) -> SearchResult:
    """Evaluate ``budget`` distinct random valid archs of the space (default: NB201 over ``ops``); keep the best."""
    arch_space = _arch_space(arch_space, space, ops)
    limit = arch_space.size() if hasattr(arch_space, "size") else None
    if budget < 1 or (limit is not None and budget > limit):
        raise SearchError(f"budget={budget} must be between 1 and the size of the space ({limit})")
    rng, cached = np.random.default_rng(seed), CachedFitness(fitness)
    picked: dict[Arch, None] = {}  # insertion-ordered set: O(1) membership (a budget can be the whole space)
    invalid = 0
    while len(picked) < budget:
        arch = arch_space.random(rng)
        if arch_space.is_valid(arch):
            picked.setdefault(arch)
        else:
            invalid += 1
            if invalid > max_tries * budget:
                raise SearchError(f"{invalid} random draws were invalid (found {len(picked)} of {budget} archs): "
                                  "loosen the space's limit or lower the budget")
    cached(list(picked))
    return cached.result(to_str=arch_space.to_str)


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
                        ops: Sequence[str] = NB201_OPS, max_tries: int = 1000,
                        arch_space: ArchSpace | None = None) -> SearchResult:
    """SPOS-style evolution until ``budget`` distinct valid archs are evaluated; returns the best by fitness."""
    arch_space = _arch_space(arch_space, space, ops)
    if not 2 <= parents <= population <= budget:
        raise SearchError(f"need 2 <= parents ({parents}) <= population ({population}) <= budget ({budget})")
    if not 0.0 < mutation_prob <= 1.0:
        raise SearchError(f"mutation_prob={mutation_prob} must be in (0, 1]")
    rng, cached, valid = np.random.default_rng(seed), CachedFitness(fitness), arch_space.is_valid
    generation = _fresh(population, cached, valid, lambda: arch_space.random(rng), max_tries)
    if not generation:
        raise SearchError(f"no valid arch in {max_tries} random draws: loosen the space's limit")
    curve = [float(cached(generation).max())]
    while len(cached.order) < budget:
        top = sorted(cached.values, key=cached.values.get, reverse=True)[:parents]
        half = population // 2
        children = _fresh(min(half, budget - len(cached.order)), cached, valid,
                          lambda: arch_space.mutate(top[int(rng.integers(len(top)))], rng, mutation_prob), max_tries)
        crossovers = min(population - half, budget - len(cached.order) - len(children)) if len(top) >= 2 else 0
        children += _fresh(crossovers, cached, valid,
                           lambda: arch_space.crossover(*[top[i] for i in _two_distinct(rng, len(top))], rng),
                           max_tries, taken=children)
        if not children:
            break  # the neighbourhood of the parents is exhausted
        cached(children)
        curve.append(max(cached.values.values()))
    return cached.result(curve, arch_space.to_str)


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
