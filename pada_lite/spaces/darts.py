"""The DARTS cell space (Liu et al., 2019): genotypes, single-path supernet, path samplers, stand-alone network.

A cell has two input nodes (the outputs of the two previous cells, after a 1x1 preprocessing) and 4 intermediate
nodes; node k (k = 0..3, numbered 2..5 as states) may read any of the k + 2 earlier states, which makes 14 edges per
cell. The cell outputs the concatenation of the 4 intermediate nodes. Normal cells keep the resolution, reduction
cells (at 1/3 and 2/3 of the depth) halve it and double the channels. Every normal cell shares one cell design and
every reduction cell another.

**Archs of the supernet.** An arch is a tuple of 28 entries, the 14 edges of the normal cell then the 14 of the
reduction cell (edge order: node 0's inputs 0, 1; node 1's inputs 0, 1, 2; ...); an entry is the op on that edge, or
``None`` where the edge is not used. A valid arch uses exactly two edges per node (two distinct inputs, as in a DARTS
genotype) and the 7 ops of ``DARTS_OPS``. The ``none`` op of the DARTS supernet is left out: in DARTS it lets the
continuous relaxation switch an edge off, but here a path picks each node's two inputs explicitly, so an edge that
is not picked is simply not run, and a derived DARTS genotype never contains ``none`` either.

**Paths.** A path sampler draws, per node, its pair of inputs uniformly among the C(k + 2, 2) distinct pairs, and an
op for each of the two chosen edges from that edge's distribution (uniform for SPOS, one distribution per edge of
the 28 for PA, as the PA&DA authors describe for DARTS). Only the chosen edges' ops train and, for PA, are scored.

**BatchNorm.** The supernet's BN has no affine parameters and always uses the statistics of the batch it sees
(``affine=False, track_running_stats=False``, as the reference PA&DA NB201 code), so a candidate evaluated with
inherited weights is normalised with its own statistics and needs no recalibration. The stand-alone network
(:class:`DartsNetwork`) uses ordinary affine BN with running statistics, as the DARTS evaluation code.
"""
from __future__ import annotations

import ast
import functools
import itertools
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from .nb201 import ArchError

DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
             "dil_conv_5x5")
NUM_NODES = 4                                                     # intermediate nodes per cell
CELL_EDGES = tuple((j, k) for k in range(NUM_NODES) for j in range(k + 2))  # (input state, node): 14 edges
NUM_CELL_EDGES = len(CELL_EDGES)
NUM_DECISIONS = 2 * NUM_CELL_EDGES                                # normal cell's edges, then the reduction cell's
CONCAT = (2, 3, 4, 5)

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
Genotype.__doc__ = """Per cell type 8 (op, input state) pairs, two per node, and the states the cell concatenates."""

DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5])
GENOTYPES = {"DARTS_V2": DARTS_V2}                                # named reference genotypes

Arch = tuple  # 28 entries: an op name or None


# ------------------------------------------------------------------------------------------------ genotypes
def genotype_to_str(genotype: Genotype) -> str:
    """The string form ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=...)``."""
    g = check_genotype(genotype)
    return (f"Genotype(normal={[tuple(p) for p in g.normal]!r}, normal_concat={list(g.normal_concat)!r}, "
            f"reduce={[tuple(p) for p in g.reduce]!r}, reduce_concat={list(g.reduce_concat)!r})")


def str_to_genotype(text: str) -> Genotype:
    """Parse :func:`genotype_to_str`'s form (also the reference's, with ``range(2, 6)``); a name of GENOTYPES works."""
    text = text.strip()
    if text in GENOTYPES:
        return GENOTYPES[text]
    example = "Genotype(normal=[('sep_conv_3x3', 0), ...8 pairs], normal_concat=[2, 3, 4, 5], reduce=[...], " \
              "reduce_concat=[2, 3, 4, 5]) or a name in " + str(sorted(GENOTYPES))
    try:
        call = ast.parse(text, mode="eval").body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"
                and not call.args):
            raise ValueError("not a Genotype(...) call with keyword fields")
        values = {kw.arg: _literal(kw.value) for kw in call.keywords}
        genotype = Genotype(**values)
    except (SyntaxError, ValueError, TypeError) as err:
        raise ArchError(f"cannot read genotype {text[:80]!r} ({err}); write it as {example}") from None
    return check_genotype(genotype)


def _literal(node: ast.AST):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        return list(range(*[ast.literal_eval(a) for a in node.args]))
    return ast.literal_eval(node)


def check_genotype(genotype: Genotype) -> Genotype:
    """A valid genotype (lists of (op, input) pairs, two per node, inputs earlier than the node) or an ArchError."""
    for name in ("normal", "reduce"):
        pairs = [tuple(p) for p in getattr(genotype, name)]
        if len(pairs) != 2 * NUM_NODES:
            raise ArchError(f"genotype.{name} needs {2 * NUM_NODES} (op, input) pairs, two per node; got {len(pairs)}")
        for n, (op, src) in enumerate(pairs):
            if op not in DARTS_OPS:
                raise ArchError(f"unknown op {op!r} in genotype.{name}; the DARTS space has {list(DARTS_OPS)}")
            if not 0 <= int(src) < n // 2 + 2:
                raise ArchError(f"genotype.{name}[{n}] reads state {src}, but node {n // 2 + 2} can read states "
                                f"0..{n // 2 + 1}")
        concat = list(getattr(genotype, f"{name}_concat"))
        if not concat or any(not 0 <= int(c) < NUM_NODES + 2 for c in concat):
            raise ArchError(f"genotype.{name}_concat={concat} must list states in 0..{NUM_NODES + 1}")
    return Genotype([tuple(p) for p in genotype.normal], list(genotype.normal_concat),
                    [tuple(p) for p in genotype.reduce], list(genotype.reduce_concat))


def arch_to_genotype(arch: Sequence) -> Genotype:
    """The genotype of a supernet arch (each node's two edges in input order; concat of all 4 nodes)."""
    arch = check_arch(arch)
    cells = []
    for cell in (arch[:NUM_CELL_EDGES], arch[NUM_CELL_EDGES:]):
        cells.append([(op, j) for (j, _), op in zip(CELL_EDGES, cell) if op is not None])
    return Genotype(cells[0], list(CONCAT), cells[1], list(CONCAT))


def genotype_to_arch(genotype: Genotype) -> Arch:
    """The supernet arch of a genotype whose nodes read two distinct states and concatenate nodes 2..5."""
    genotype = check_genotype(genotype)
    arch: list = [None] * NUM_DECISIONS
    for offset, pairs, concat in ((0, genotype.normal, genotype.normal_concat),
                                  (NUM_CELL_EDGES, genotype.reduce, genotype.reduce_concat)):
        if sorted(concat) != list(CONCAT):
            raise ArchError(f"the supernet concatenates nodes {list(CONCAT)}, the genotype {concat}")
        for n, (op, src) in enumerate(pairs):
            e = offset + CELL_EDGES.index((src, n // 2))
            if arch[e] is not None:
                raise ArchError(f"node {n // 2 + 2} reads state {src} twice: the supernet has one op per edge")
            arch[e] = op
    return tuple(arch)


def check_arch(arch: Sequence) -> Arch:
    """A valid supernet arch (28 entries, two used edges per node, known ops) or an ArchError."""
    arch = tuple(arch)
    if len(arch) != NUM_DECISIONS:
        raise ArchError(f"a DARTS arch has {NUM_DECISIONS} entries (14 normal + 14 reduction edges), got {len(arch)}")
    bad = [op for op in arch if op is not None and op not in DARTS_OPS]
    if bad:
        raise ArchError(f"unknown op {bad[0]!r}; the DARTS space has {list(DARTS_OPS)} (None: edge not used)")
    for cell in range(2):
        for k in range(NUM_NODES):
            used = sum(arch[cell * NUM_CELL_EDGES + e] is not None for e, (_, node) in enumerate(CELL_EDGES)
                       if node == k)
            if used != 2:
                raise ArchError(f"node {k + 2} of the {('normal', 'reduction')[cell]} cell uses {used} edges; "
                                "every node reads exactly two distinct states")
    return arch


INPUT_PAIRS = tuple(tuple(itertools.combinations(range(k + 2), 2)) for k in range(NUM_NODES))  # per node


def node_edges(k: int) -> list[int]:
    """Cell-edge indices of node k's candidate inputs (states 0..k+1)."""
    return [e for e, (_, node) in enumerate(CELL_EDGES) if node == k]


# --------------------------------------------------------------------------------------------------- ops
class ReLUConvBN(nn.Sequential):
    """ReLU -> conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bn: dict):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, **bn))


class DilConv(nn.Sequential):
    """ReLU -> depthwise (dilated) conv -> pointwise conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dilation: int, bn: dict):
        pad = dilation * (kernel - 1) // 2
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, pad, dilation=dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, **bn))


class SepConv(nn.Sequential):
    """Two stacked separable convs (the first with the stride), as DARTS' sep_conv."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bn: dict):
        super().__init__(DilConv(c_in, c_in, kernel, stride, 1, bn), DilConv(c_in, c_out, kernel, 1, 1, bn))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs on offset grids, concatenated (needs even sizes)."""

    def __init__(self, c_in: int, c_out: int, bn: dict):
        super().__init__()
        if c_out % 2:
            raise ArchError(f"FactorizedReduce needs an even channel count, got {c_out}: use an even C")
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, **bn)

    def forward(self, x):  # [B, C_in, H, W] -> [B, C_out, H/2, W/2]
        x = self.relu(x)
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ArchError(f"FactorizedReduce got an odd feature map {tuple(x.shape[-2:])}: use an image size "
                            "divisible by 4 (two reductions)")
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, channels: int, stride: int, bn: dict, search: bool) -> nn.Module:
    """One candidate op; in the supernet (``search``) a pool is followed by a BN, as in the DARTS search code."""
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool = (nn.MaxPool2d(3, stride, 1) if name == "max_pool_3x3"
                else nn.AvgPool2d(3, stride, 1, count_include_pad=False))
        return nn.Sequential(pool, nn.BatchNorm2d(channels, **bn)) if search else pool
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, bn)
    kernel = int(name[-1])
    if name.startswith("sep_conv"):
        return SepConv(channels, channels, kernel, stride, bn)
    if name.startswith("dil_conv"):
        return DilConv(channels, channels, kernel, stride, 2, bn)
    raise ArchError(f"unknown op {name!r}; the DARTS space has {list(DARTS_OPS)}")


def cell_plan(cells: int, channels: int, stem_multiplier: int = 3) -> list[tuple[int, int, int, bool, bool]]:
    """Per cell (C_prev_prev, C_prev, C, reduction, reduction_prev): reductions at cells//3 and 2*cells//3."""
    c_pp = c_p = stem_multiplier * channels
    c, reduction_prev, plan = channels, False, []
    for i in range(cells):
        reduction = i in (cells // 3, 2 * cells // 3)
        c = 2 * c if reduction else c
        plan.append((c_pp, c_p, c, reduction, reduction_prev))
        c_pp, c_p, reduction_prev = c_p, len(CONCAT) * c, reduction
    return plan


class _CellBase(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction_prev: bool, bn: dict):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c, bn) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, bn)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, bn)


class SearchCell(_CellBase):
    """A cell with every op on each of its 14 edges; ``forward(s0, s1, edges)`` runs the ops ``edges`` names."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, ops: Sequence[str],
                 bn: dict):
        super().__init__(c_pp, c_p, c, reduction_prev, bn)
        self.reduction = reduction
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, c, 2 if reduction and j < 2 else 1, bn, search=True) for op in ops})
            for j, _ in CELL_EDGES)

    def forward(self, s0, s1, edges: Sequence):  # edges: 14 op names or None
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(NUM_NODES):
            outs = [self.edges[e][edges[e]](states[CELL_EDGES[e][0]]) for e in node_edges(k) if edges[e] is not None]
            states.append(sum(outs[1:], outs[0]))
        return torch.cat(states[2:], dim=1)


@dataclass
class DartsSupernetConfig:
    """Shape of a DARTS single-path supernet (defaults: the lite preset; paper: 8 cells, C=16, CIFAR-10)."""

    kind: str = "darts"                # space registry key (pada_lite.spaces)
    channels: int = 8                  # C of the first cells (doubled at each reduction); paper 16
    cells: int = 5                     # cells, two of them reduction cells (at cells//3, 2*cells//3); paper 8
    in_channels: int = 1               # image channels (Fashion-MNIST 1, CIFAR 3)
    num_classes: int = 10
    ops: tuple = DARTS_OPS             # candidate ops on every edge
    stem_multiplier: int = 3           # the stem outputs stem_multiplier * C channels (DARTS)
    bn_affine: bool = False            # PA&DA reference: BN without affine parameters ...
    bn_track_running_stats: bool = False  # ... and batch statistics at evaluation too (no recalibration needed)

    def __post_init__(self):
        self.ops = tuple(self.ops)
        if self.kind != "darts":
            raise ArchError(f"DartsSupernetConfig.kind must be 'darts', got {self.kind!r}")
        if not self.ops or any(op not in DARTS_OPS for op in self.ops) or len(set(self.ops)) != len(self.ops):
            raise ArchError(f"invalid op set {list(self.ops)}: use distinct ops from {list(DARTS_OPS)}")
        if int(self.cells) < 3 or int(self.channels) < 2 or int(self.channels) % 2:
            raise ArchError(f"a DARTS supernet needs cells >= 3 (two reductions) and an even C >= 2; got cells="
                            f"{self.cells}, channels={self.channels}")


def _stem(in_channels: int, channels: int, bn: dict) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels, **bn))


class DartsSupernet(nn.Module):
    """Weight-sharing DARTS supernet; ``forward(x, arch)`` runs one path (a 28-entry arch, see the module doc)."""

    def __init__(self, config: DartsSupernetConfig | None = None):
        super().__init__()
        self.config = config = config or DartsSupernetConfig()
        bn = dict(affine=config.bn_affine, track_running_stats=config.bn_track_running_stats)
        plan = cell_plan(config.cells, config.channels, config.stem_multiplier)
        self.stem = _stem(config.in_channels, plan[0][0], bn)
        self.cells = nn.ModuleList(SearchCell(c_pp, c_p, c, red, red_prev, config.ops, bn)
                                   for c_pp, c_p, c, red, red_prev in plan)
        self.classifier = nn.Linear(len(CONCAT) * plan[-1][2], config.num_classes)

    @property
    def ops(self) -> tuple:
        return self.config.ops

    def check_arch(self, arch: Sequence) -> Arch:
        arch = check_arch(arch)
        bad = [op for op in arch if op is not None and op not in self.config.ops]
        if bad:
            raise ArchError(f"op {bad[0]!r} is not in this supernet's ops {list(self.config.ops)}")
        return arch

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # [B, C_in, H, W] -> [B, classes]
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            edges = arch[NUM_CELL_EDGES:] if cell.reduction else arch[:NUM_CELL_EDGES]
            s0, s1 = s1, cell(s0, s1, edges)
        return self.classifier(s1.mean(dim=(2, 3)))

    def choice_instances(self) -> list[list[list[list[nn.Parameter]]]]:
        """[28 decisions][ops] -> the op's parameter list in every cell of that decision's type (PA reads it)."""
        out = []
        for reduction in (False, True):
            cells = [cell for cell in self.cells if cell.reduction == reduction]
            out += [[[list(cell.edges[e][op].parameters()) for cell in cells] for op in self.config.ops]
                    for e in range(NUM_CELL_EDGES)]
        return out


# ---------------------------------------------------------------------------------------- path samplers
def sample_used_edges(generator: torch.Generator) -> list[bool]:
    """Per cell type and node, a uniformly drawn pair of distinct inputs; True on the 28 edges they use."""
    used = [False] * NUM_DECISIONS
    for offset in (0, NUM_CELL_EDGES):
        for k, pairs in enumerate(INPUT_PAIRS):
            pair = pairs[int(torch.randint(len(pairs), (1,), generator=generator))]
            edges = node_edges(k)
            for j in pair:
                used[offset + edges[j]] = True
    return used


class _NodeInputs:
    """Mixin over an op sampler of 28 edges: each node keeps two input edges (uniform pair); the others are None."""

    def sample(self, generator: torch.Generator | None = None) -> list[tuple[tuple, float]]:
        generator = generator or self.generator
        (ops, _), = super().sample(generator)
        used = sample_used_edges(generator)
        arch = tuple(op if u else None for op, u in zip(ops, used))
        return [(arch, self._path_weight(arch))]

    def _path_weight(self, arch: Arch) -> float:
        """``Π 1 / (K p_e(op))`` over the used edges when importance weighting is on (inputs are uniform), else 1."""
        if not getattr(self, "importance_weighting", False):
            return 1.0
        probs = self.probabilities()
        weight = 1.0
        for e, op in enumerate(arch):
            if op is not None:
                weight /= len(self.ops) * float(probs[e, self.ops.index(op)])
        return weight


def _sampler_classes():
    from ..samplers import ImportancePathSampler, OpGradientTable, PathSampler

    class _UsedEdgeTable(OpGradientTable):
        """Gradient table that skips the edges an arch does not use (index -1)."""

        def parametric_pairs(self, op_indices):
            return [(e, j) for e, j in enumerate(op_indices) if j >= 0 and self.params[e][j]]

    class DartsPathSampler(_NodeInputs, PathSampler):
        """SPOS on the DARTS space: uniform input pairs, uniform ops on the used edges."""

    class DartsImportancePathSampler(_NodeInputs, ImportancePathSampler):
        """PA on the DARTS space: uniform input pairs; per-edge (or shared) op distributions, scored on used edges."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.op_index = {**self.op_index, None: -1}

        def observe(self, model, archs):
            if self.table is None:
                self.table = _UsedEdgeTable(model, self.ops, self.num_edges, self.scope == "edge")
            super().observe(model, archs)

    return DartsPathSampler, DartsImportancePathSampler


SPACE_CONFIG = DartsSupernetConfig


def build_supernet(config: DartsSupernetConfig) -> DartsSupernet:
    """The DARTS weight-sharing supernet of ``config``."""
    return DartsSupernet(config)


def make_path_sampler(train_config, space_config: DartsSupernetConfig, generator: torch.Generator):
    """uniform (SPOS) or importance (PA, ``train.pa_scope``: edge = one distribution per edge) with node inputs."""
    from ..config import ConfigError
    uniform, importance = _sampler_classes()
    if train_config.path_sampler == "uniform":
        return uniform(space_config.ops, generator, NUM_DECISIONS)
    if train_config.path_sampler == "importance":
        return importance(space_config.ops, generator, NUM_DECISIONS, tau=train_config.tau,
                          scope=train_config.pa_scope, importance_weighting=train_config.importance_weighting)
    raise ConfigError(f"train.path_sampler={train_config.path_sampler!r} is not available in the DARTS space: "
                      "use uniform or importance (strict fairness is undefined when paths also pick inputs)")


# ------------------------------------------------------------------------------------ stand-alone network
def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``prob`` and rescale the rest (DARTS). x: [B, C, H, W]."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class GenotypeCell(_CellBase):
    """A cell of a fixed genotype (the DARTS evaluation cell)."""

    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                 bn: dict):
        super().__init__(c_pp, c_p, c, reduction_prev, bn)
        pairs = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.inputs = [src for _, src in pairs]
        self.ops = nn.ModuleList(make_op(op, c, 2 if reduction and src < 2 else 1, bn, search=False)
                                 for op, src in pairs)

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(NUM_NODES):
            total = 0
            for n in (2 * k, 2 * k + 1):
                h = self.ops[n](states[self.inputs[n]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[n], nn.Identity):
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary head (avg-pool 5/3, 1x1 to 128, conv to 768, linear), for any final map >= 5x5."""

    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        pooled = (size - 5) // 3 + 1                                   # 2 for CIFAR's 8x8
        if pooled < 1:
            raise ArchError(f"the auxiliary head needs a feature map of at least 5x5, got {size}x{size}")
        self.features = nn.Sequential(
            nn.ReLU(inplace=False), nn.AvgPool2d(5, stride=3, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, min(pooled, 2), bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):  # [B, C, H, W] -> [B, classes]
        return self.classifier(self.features(x).mean(dim=(2, 3)))


@dataclass(frozen=True)
class DartsNetworkConfig:
    """A stand-alone network of a genotype (defaults: the DARTS CIFAR-10 evaluation network)."""

    channels: int = 36                 # C of the first cells
    cells: int = 20                    # cells, reductions at cells//3 and 2*cells//3
    in_channels: int = 3
    num_classes: int = 10
    image_size: int = 32               # input resolution (sizes the auxiliary head)
    auxiliary: bool = True             # auxiliary head after the second reduction cell
    stem_multiplier: int = 3

    def __post_init__(self):
        if int(self.cells) < 3 or int(self.channels) < 2 or int(self.channels) % 2 or int(self.image_size) % 4:
            raise ArchError(f"a DARTS network needs cells >= 3, an even C and an image size divisible by 4; got "
                            f"cells={self.cells}, channels={self.channels}, image_size={self.image_size}")


class DartsNetwork(nn.Module):
    """The DARTS evaluation network of a genotype: stem, cells, optional auxiliary head, classifier.

    In training mode with an auxiliary head ``forward`` returns ``(logits, aux_logits)``, else logits;
    ``drop_path_prob`` is set by the trainer (:mod:`pada_lite.retrain`).
    """

    def __init__(self, genotype: Genotype, config: DartsNetworkConfig | None = None):
        super().__init__()
        self.genotype = genotype = check_genotype(genotype)
        self.config = config = config or DartsNetworkConfig()
        self.drop_path_prob = 0.0
        bn = dict(affine=True, track_running_stats=True)
        plan = cell_plan(config.cells, config.channels, config.stem_multiplier)
        self.stem = _stem(config.in_channels, plan[0][0], bn)
        self.cells = nn.ModuleList(GenotypeCell(genotype, c_pp, c_p, c, red, red_prev, bn)
                                   for c_pp, c_p, c, red, red_prev in plan)
        self.aux_index = 2 * config.cells // 3
        aux_channels = len(genotype.reduce_concat) * plan[self.aux_index][2]
        self.auxiliary_head = (AuxiliaryHead(aux_channels, config.image_size // 4, config.num_classes)
                               if config.auxiliary else None)
        self.classifier = nn.Linear(len(genotype.normal_concat) * plan[-1][2], config.num_classes)

    def forward(self, x: torch.Tensor):  # [B, C_in, H, W] -> [B, classes] (or (logits, aux) when training)
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(s1.mean(dim=(2, 3)))
        return (logits, aux) if aux is not None else logits


# ------------------------------------------------------------------------------------------ search space
@functools.cache
def _op_params(op: str, channels: int, stride: int) -> int:
    return sum(p.numel() for p in make_op(op, channels, stride, dict(affine=True), search=False).parameters())


@functools.cache
def _fixed_params(config: DartsNetworkConfig) -> int:
    """Parameters of a network apart from its cells' ops (stem, preprocessing, classifier; no auxiliary head)."""
    pools = [("max_pool_3x3", 0)] * 8                                 # ops without parameters
    net = DartsNetwork(Genotype(pools, list(CONCAT), pools, list(CONCAT)), replace(config, auxiliary=False))
    return sum(p.numel() for p in net.parameters())


def genotype_params(genotype: Genotype, config: DartsNetworkConfig) -> int:
    """Parameters (without the auxiliary head) of ``DartsNetwork(genotype, config)``, without building it."""
    genotype = check_genotype(genotype)
    total = _fixed_params(replace(config, auxiliary=False))
    for _, _, c, reduction, _ in cell_plan(config.cells, config.channels, config.stem_multiplier):
        for op, src in (genotype.reduce if reduction else genotype.normal):
            total += _op_params(op, c, 2 if reduction and src < 2 else 1)
    return total


@dataclass(frozen=True)
class DartsArchSpace:
    """The search's view of the DARTS space (random, mutate, crossover, is_valid, to_str) with a parameter limit.

    ``max_params`` limits the parameters of the stand-alone network ``network`` (None: no limit). Mutation resamples,
    with probability ``prob`` each, a node's input pair and each of its two ops; crossover takes every node (its
    inputs and ops) from either parent.
    """

    network: DartsNetworkConfig = field(default_factory=DartsNetworkConfig)
    max_params: int | None = None
    ops: tuple = DARTS_OPS

    def random(self, rng) -> Arch:
        arch = [None] * NUM_DECISIONS
        for offset in (0, NUM_CELL_EDGES):
            for k in range(NUM_NODES):
                self._set_node(arch, offset, k, INPUT_PAIRS[k][int(rng.integers(len(INPUT_PAIRS[k])))],
                               [self.ops[int(i)] for i in rng.integers(len(self.ops), size=2)])
        return tuple(arch)

    def mutate(self, arch: Arch, rng, prob: float) -> Arch:
        new = list(arch)
        for offset in (0, NUM_CELL_EDGES):
            for k in range(NUM_NODES):
                pair, ops = self._node(arch, offset, k)
                if rng.random() < prob:
                    pair = INPUT_PAIRS[k][int(rng.integers(len(INPUT_PAIRS[k])))]
                ops = [self.ops[int(rng.integers(len(self.ops)))] if rng.random() < prob else op for op in ops]
                self._set_node(new, offset, k, pair, ops)
        return tuple(new)

    def crossover(self, a: Arch, b: Arch, rng) -> Arch:
        new = list(a)
        for offset in (0, NUM_CELL_EDGES):
            for k in range(NUM_NODES):
                if rng.random() < 0.5:
                    self._set_node(new, offset, k, *self._node(b, offset, k))
        return tuple(new)

    def is_valid(self, arch: Arch) -> bool:
        return self.max_params is None or self.params(arch) <= self.max_params

    def params(self, arch: Arch) -> int:
        """Parameters of the stand-alone network of ``arch``."""
        return genotype_params(arch_to_genotype(arch), self.network)

    def to_str(self, arch: Arch) -> str:
        return genotype_to_str(arch_to_genotype(arch))

    @staticmethod
    def _node(arch: Arch, offset: int, k: int) -> tuple[tuple, list]:
        edges = node_edges(k)
        used = [j for j, e in enumerate(edges) if arch[offset + e] is not None]
        return tuple(used), [arch[offset + edges[j]] for j in used]

    @staticmethod
    def _set_node(arch: list, offset: int, k: int, pair: tuple, ops: list) -> None:
        edges = node_edges(k)
        for e in edges:
            arch[offset + e] = None
        for j, op in zip(pair, ops):
            arch[offset + edges[j]] = op
