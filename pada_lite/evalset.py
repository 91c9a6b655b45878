"""The lite benchmark's evaluation archs: a fixed set of NB201 archs, each computing a distinct function.

:func:`evaluation_archs` gives the 64 archs built from nor_conv_1x1 / nor_conv_3x3 only (the PA&DA motivation
experiment) plus a stratified sample of the full 5-op space:

- every arch of the space is reduced to its :func:`canonical_arch` (dead edges -> 'none'; nodes 1 and 2 swapped when
  that gives a smaller product index and edge 1->2 is 'none'); archs with the same canonical form compute the same
  function, so only canonical forms are candidates (8,764 of the 15,625 archs), and archs whose output is
  disconnected from the input (constant networks) are dropped. An edge is dead when its source is unreachable from
  the input (it only ever sees zeros) or its target cannot reach the output (:func:`pada_lite.spaces.nb201.live_edges`).
  One approximation: a conv edge fed by zeros still adds its BN bias (a learned constant per channel); the canonical
  form drops it, as NB201's own isomorphism hashing does;
- the candidates (conv-only archs excluded: they are already in) are stratified by (number of nor_conv_3x3,
  number of nor_conv_1x1) on live edges, 21 strata with at most 5 parametric ops, and ``SAMPLE_PER_STRATUM`` archs
  are drawn from each with ``numpy.random.default_rng(SAMPLE_SEED)`` (all of them where a stratum is smaller);
- both lists are shuffled with ``ORDER_SEED`` and interleaved in proportion (64 : 105), so that every unit of
  consecutive archs holds conv-only and sampled archs in about the overall ratio and the first units form the pilot.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from .spaces.nb201 import (
    PARAMETRIC_OPS,
    Arch,
    arch_to_product_index,
    conv_only_archs,
    enumerate_archs,
    is_connected,
    live_edges,
    prune_dead_edges,
)

SAMPLE_SEED = 0            # draws the stratified sample
SAMPLE_PER_STRATUM = 5     # archs per (n_conv3x3, n_conv1x1) stratum: 21 strata -> 105 archs
ORDER_SEED = 0             # fixed order of the evaluation archs (units mix conv-only and sampled archs)
MAX_SAMPLED_PARAMETRIC = 5  # strata of the sample: up to 5 convs (6 convs = the conv-only archs)


def swap_middle_nodes(arch: Sequence[str]) -> Arch:
    """The arch with nodes 1 and 2 relabelled (only meaningful when edge 1->2 is 'none')."""
    e01, e02, e12, e03, e13, e23 = arch
    return (e02, e01, e12, e03, e23, e13)


def canonical_arch(arch: Sequence[str]) -> Arch:
    """Representative of the archs computing the same function: dead edges become 'none'; when edge 1->2 is
    'none' nodes 1 and 2 are interchangeable and the relabelling with the smaller index is kept; a disconnected
    arch becomes all-'none'."""
    arch = prune_dead_edges(arch)
    if arch[2] == "none":
        arch = min(arch, swap_middle_nodes(arch), key=arch_to_product_index)
    return arch


def op_counts(arch: Sequence[str]) -> tuple[int, int]:
    """(number of nor_conv_3x3, number of nor_conv_1x1) on live edges: the stratum of an arch."""
    ops = [op for op, live in zip(arch, live_edges(arch)) if live]
    return ops.count("nor_conv_3x3"), ops.count("nor_conv_1x1")


def distinct_connected_archs() -> list[Arch]:
    """Canonical forms of every connected arch of the 5-op space (each function once), in index order."""
    return list(_distinct_connected_archs())


@lru_cache(maxsize=1)
def _distinct_connected_archs() -> tuple:
    forms = {canonical_arch(a) for a in enumerate_archs() if is_connected(a)}
    return tuple(sorted(forms, key=arch_to_product_index))


def stratified_sample(per_stratum: int = SAMPLE_PER_STRATUM, seed: int = SAMPLE_SEED) -> list[Arch]:
    """``per_stratum`` distinct archs of every (n_conv3x3, n_conv1x1) stratum with at most 5 convs, fixed seed."""
    strata: dict[tuple[int, int], list[Arch]] = {}
    for arch in distinct_connected_archs():
        if sum(op_counts(arch)) <= MAX_SAMPLED_PARAMETRIC:
            strata.setdefault(op_counts(arch), []).append(arch)
    rng = np.random.default_rng(seed)
    sample = []
    for key in sorted(strata):
        members = strata[key]
        chosen = rng.choice(len(members), size=min(per_stratum, len(members)), replace=False)
        sample += [members[i] for i in sorted(chosen)]
    return sample


def evaluation_archs() -> list[Arch]:
    """The lite benchmark's evaluation archs: the 64 conv-only archs + the stratified sample, in the fixed order."""
    rng = np.random.default_rng(ORDER_SEED)
    conv, sampled = conv_only_archs(), stratified_sample()
    return proportional_merge([conv[i] for i in rng.permutation(len(conv))],
                              [sampled[i] for i in rng.permutation(len(sampled))])


def sampled_archs() -> list[Arch]:
    """The stratified sample alone (no conv-only archs), in the evaluation order: the v2 benchmark's archs."""
    return [arch for arch in evaluation_archs() if not is_conv_only(arch)]


MOTIVATION_OPS = ("none", "nor_conv_3x3")  # the ops every supernet of the v2 motivation experiment has


def motivation_archs() -> list[Arch]:
    """The 13 distinct connected archs built from 'none' and 'nor_conv_3x3' only (index order): every supernet of
    the motivation experiment (2 to 5 candidate ops per edge, each set holding these two) can rank them, and they
    differ in depth and width, unlike the conv-only archs whose ground truth is noise."""
    return [a for a in distinct_connected_archs() if set(a) <= set(MOTIVATION_OPS)]


def proportional_merge(first: Sequence, second: Sequence) -> list:
    """Interleave two lists so that every prefix holds them in (nearly) their overall proportion."""
    share, merged, i, j = len(first) / (len(first) + len(second)), [], 0, 0
    while i + j < len(first) + len(second):
        if j == len(second) or (i < len(first) and i < share * (i + j + 1)):
            merged.append(first[i])
            i += 1
        else:
            merged.append(second[j])
            j += 1
    return merged


def is_conv_only(arch: Sequence[str]) -> bool:
    """Whether every edge is nor_conv_1x1 or nor_conv_3x3."""
    return all(op in PARAMETRIC_OPS for op in arch)


EVALUATION_SET_DOC = (f"64 conv-only archs + {SAMPLE_PER_STRATUM} canonical connected archs per (n_conv3x3, n_conv1x1) "
                      f"stratum with <= {MAX_SAMPLED_PARAMETRIC} convs (numpy default_rng({SAMPLE_SEED})), "
                      f"each list shuffled with default_rng({ORDER_SEED}) and interleaved in proportion; "
                      "see pada_lite.evalset")

ARCH_SET_DOCS = {  # what each ground-truth plan's archs are (benchmark.PLANS), written into its artifact
    "lite": EVALUATION_SET_DOC,
    "v2": "the stratified sample of the lite evaluation set without its 64 conv-only archs: " +
          EVALUATION_SET_DOC.split(" + ", 1)[1],
    "v2-motivation": "the 13 distinct connected archs built from 'none' and 'nor_conv_3x3' only (index order)"}
