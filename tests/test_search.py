"""Random and evolutionary search over a fitness table: budgets, validity, and that evolution beats chance."""
import numpy as np
import pytest

from pada_lite.search import (SearchError, crossover, evolutionary_search, mutate, random_search, table_fitness,
                              true_accuracy_after)
from pada_lite.spaces import NB201_OPS, conv_only_archs, enumerate_archs


def synthetic_table():
    """A smooth fitness over the whole space: 3x3 convs help, 'none' hurts, plus a little arch-specific noise."""
    rng = np.random.default_rng(0)
    return {a: 2.0 * a.count("nor_conv_3x3") + a.count("nor_conv_1x1") - 3.0 * a.count("none") + rng.normal(0, 0.3)
            for a in enumerate_archs()}


def test_random_search_evaluates_budget_distinct_archs_and_returns_their_best():
    table = synthetic_table()
    result = random_search(table_fitness(table), budget=40, seed=3)
    assert len(result.evaluated) == len(set(result.evaluated)) == 40
    assert result.best_fitness == max(table[a] for a in result.evaluated)
    assert result.best_after(10) == max(result.evaluated[:10], key=table.get)


def test_evolution_respects_budget_and_beats_random_search_on_average():
    table = synthetic_table()
    fitness = table_fitness(table)
    evo = [evolutionary_search(fitness, budget=200, population=20, parents=5, seed=s) for s in range(5)]
    rnd = [random_search(fitness, budget=200, seed=s) for s in range(5)]
    assert all(len(r.evaluated) == len(set(r.evaluated)) <= 200 for r in evo)
    assert all(np.all(np.diff(r.best_per_generation) >= 0) for r in evo)  # the best so far never gets worse
    assert np.mean([r.best_fitness for r in evo]) > np.mean([r.best_fitness for r in rnd])


def test_a_smaller_budget_gives_a_prefix_of_the_same_search():
    """best_after(b) of a long search is what the same search returns with budget b (the budget curves rely on it)."""
    fitness = table_fitness(synthetic_table())
    long_evo = evolutionary_search(fitness, budget=300, population=20, parents=5, seed=4)
    long_rnd = random_search(fitness, budget=300, seed=4)
    for budget in (20, 37, 64, 150):
        evo = evolutionary_search(fitness, budget=budget, population=20, parents=5, seed=4)
        assert evo.evaluated == long_evo.evaluated[:budget]
        assert evo.best == long_evo.best_after(budget)
        assert random_search(fitness, budget=budget, seed=4).best == long_rnd.best_after(budget)


def test_true_accuracy_after_looks_up_the_choice_by_fitness_in_the_truth():
    space = conv_only_archs()
    fitness = {a: float(a.count("nor_conv_1x1")) + 0.01 * k for k, a in enumerate(space)}  # prefers 1x1 convs
    truth = {a: float(a.count("nor_conv_3x3")) for a in space}                              # but 3x3 is better
    results = [random_search(table_fitness(fitness), budget=64, seed=s, space=space) for s in range(3)]
    curve = true_accuracy_after(results, truth, [1, 10, 64])
    assert curve.shape == (3, 3)
    assert np.all(curve[:, -1] == 0.0)  # the fitness's favourite (all 1x1) has no 3x3 conv
    assert curve[0, 0] == truth[results[0].evaluated[0]]
    assert true_accuracy_after(results[1], truth, [64]).tolist() == [0.0]
    with pytest.raises(SearchError, match="budget"):
        results[0].best_after(0)


def test_search_restricted_to_a_space_only_visits_it():
    space = conv_only_archs()
    table = {a: float(a.count("nor_conv_3x3")) for a in space}
    result = evolutionary_search(table_fitness(table), budget=30, population=10, parents=4, seed=0, space=space,
                                 ops=("nor_conv_1x1", "nor_conv_3x3"))
    assert set(result.evaluated) <= set(space)
    assert result.best_fitness == 6.0 or len(result.evaluated) == 30


def test_mutation_and_crossover_keep_ops_from_their_sources():
    rng = np.random.default_rng(1)
    a, b = ("none",) * 6, ("nor_conv_3x3",) * 6
    assert mutate(a, rng, prob=1e-12) == a
    child = crossover(a, b, rng)
    assert all(op in ("none", "nor_conv_3x3") for op in child)
    assert all(op in NB201_OPS for op in mutate(a, rng, prob=1.0))


def test_bad_settings_are_named():
    fitness = table_fitness({a: 0.0 for a in conv_only_archs()})
    with pytest.raises(SearchError, match="parents"):
        evolutionary_search(fitness, budget=10, population=20, parents=5)
    with pytest.raises(SearchError, match="mutation_prob"):
        evolutionary_search(fitness, budget=50, population=10, parents=2, mutation_prob=0.0, space=conv_only_archs())
    with pytest.raises(SearchError, match="not in the fitness table"):
        random_search(fitness, budget=5, seed=0)  # the full space, but the table only has conv-only archs
    with pytest.raises(SearchError, match="budget"):
        random_search(fitness, budget=65, space=conv_only_archs())


class _BudgetedDigits:
    """A toy ArchSpace: 4 digits in 0..9 whose sum must stay <= limit (a stand-in for a FLOPs limit)."""

    def __init__(self, limit: int):
        self.limit = limit

    def random(self, rng):
        return tuple(int(d) for d in rng.integers(10, size=4))

    def mutate(self, arch, rng, prob):
        return tuple(int(rng.integers(10)) if rng.random() < prob else d for d in arch)

    def crossover(self, a, b, rng):
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))

    def is_valid(self, arch):
        return sum(arch) <= self.limit

    def to_str(self, arch):
        return "".join(map(str, arch))


def test_searches_on_any_space_never_evaluate_an_arch_over_its_limit():
    space = _BudgetedDigits(limit=12)
    fitness = lambda archs: np.array([float(sum(a)) for a in archs])  # noqa: E731 - best = right at the limit
    for result in (random_search(fitness, 40, seed=1, arch_space=space),
                   evolutionary_search(fitness, 120, population=20, parents=5, mutation_prob=0.5, seed=1,
                                       arch_space=space)):
        assert all(sum(a) <= 12 for a in result.evaluated)
        assert len(set(result.evaluated)) == len(result.evaluated)
        assert result.as_dict()["best"] == space.to_str(result.best)
    assert result.best_fitness == 12.0  # evolution reaches the limit


def test_search_refuses_a_space_with_no_valid_arch():
    with pytest.raises(SearchError, match="loosen"):
        random_search(lambda a: np.zeros(len(a)), 3, arch_space=_BudgetedDigits(limit=-1), max_tries=10)
