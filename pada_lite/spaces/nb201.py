"""NAS-Bench-201 cell search space: ops, archs (string/index/enumeration) and the weight-sharing supernet.

An arch is a tuple of 6 op names, one per edge, in the official order
``(0->1, 0->2, 1->2, 0->3, 1->3, 2->3)``; the official string is
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

BatchNorm: the reference PA&DA code builds every BN with ``affine=False, track_running_stats=False``, so a
sub-network is always normalised with the statistics of the batch it sees, at training and at evaluation. That is
what makes inherited-weight evaluation of thousands of paths meaningful (running statistics accumulated over
random paths would belong to no single path). ``SupernetConfig.bn_affine`` / ``bn_track_running_stats`` switch it.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4
EDGES = tuple((i, j) for j in range(1, NUM_NODES) for i in range(j))  # ((0,1),(0,2),(1,2),(0,3),(1,3),(2,3))
NUM_EDGES = len(EDGES)
PARAMETRIC_OPS = ("nor_conv_1x1", "nor_conv_3x3")
_NODE_RE = re.compile(r"^\|(?:[A-Za-z0-9_]+~\d+\|)+$")

Arch = tuple  # tuple[str, ...] of length NUM_EDGES


class ArchError(ValueError):
    """Raised for an arch string, tuple or index that is not in the search space."""


def _check_ops(arch: Sequence[str], ops: Sequence[str]) -> Arch:
    arch = tuple(arch)
    if len(arch) != NUM_EDGES:
        raise ArchError(f"an NB201 arch has {NUM_EDGES} edges, got {len(arch)}: {arch!r}")
    for op in arch:
        if op not in ops:
            raise ArchError(f"unknown op {op!r}; this search space has {list(ops)}")
    return arch


def arch_to_str(arch: Sequence[str], ops: Sequence[str] = NB201_OPS) -> str:
    """Official NB201 string of an arch tuple."""
    arch = _check_ops(arch, ops)
    nodes, k = [], 0
    for j in range(1, NUM_NODES):
        nodes.append("|" + "|".join(f"{arch[k + i]}~{i}" for i in range(j)) + "|")
        k += j
    return "+".join(nodes)


def str_to_arch(text: str, ops: Sequence[str] = NB201_OPS) -> Arch:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into an arch tuple."""
    parts = text.strip().split("+")
    if len(parts) != NUM_NODES - 1:
        raise ArchError(f"malformed NB201 arch string {text!r}: expected 3 nodes joined by '+', like "
                        "'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|'")
    arch = []
    for j, part in enumerate(parts, start=1):
        if not _NODE_RE.match(part):
            raise ArchError(f"malformed node {part!r} in NB201 arch string {text!r}")
        edges = part.strip("|").split("|")
        if len(edges) != j:
            raise ArchError(f"node {j} of {text!r} must have {j} input edges, got {len(edges)}")
        for i, edge in enumerate(edges):
            op, src = edge.split("~")
            if int(src) != i:
                raise ArchError(f"edge {edge!r} of node {j} in {text!r} must come from node {i}")
            arch.append(op)
    return _check_ops(arch, ops)


def arch_to_product_index(arch: Sequence[str], ops: Sequence[str] = NB201_OPS) -> int:
    """The arch's position in the product order of ``enumerate_archs(ops)``: its ops as a base-``len(ops)`` number,
    edge 0 most significant. Not NAS-Bench-201's official arch index (the order of its benchmark file's arch list)."""
    arch = _check_ops(arch, ops)
    index = 0
    for op in arch:
        index = index * len(ops) + ops.index(op)
    return index


def product_index_to_arch(index: int, ops: Sequence[str] = NB201_OPS) -> Arch:
    """Inverse of :func:`arch_to_product_index`."""
    size = len(ops) ** NUM_EDGES
    if not 0 <= int(index) < size:
        raise ArchError(f"product index {index} outside [0, {size}) for {len(ops)} ops")
    digits = []
    for _ in range(NUM_EDGES):
        index, d = divmod(int(index), len(ops))
        digits.append(ops[d])
    return tuple(reversed(digits))


def enumerate_archs(ops: Sequence[str] = NB201_OPS) -> list[Arch]:
    """All ``len(ops)**6`` archs of the (sub-)space, in product order (:func:`arch_to_product_index`)."""
    return [tuple(a) for a in itertools.product(ops, repeat=NUM_EDGES)]


def conv_only_archs() -> list[Arch]:
    """The 64 archs using only nor_conv_1x1 / nor_conv_3x3 (the PA&DA motivation experiment)."""
    return enumerate_archs(PARAMETRIC_OPS)


def live_edges(arch: Sequence[str]) -> list[bool]:
    """Whether each edge carries information from the input to the output: a non-'none' op whose source is reachable
    from the input and whose target reaches the output (the one reachability rule of the NB201 cell)."""
    forward, backward = {0}, {NUM_NODES - 1}
    for (i, j), op in zip(EDGES, arch):
        if op != "none" and i in forward:
            forward.add(j)
    for (i, j), op in reversed(list(zip(EDGES, arch))):
        if op != "none" and j in backward:
            backward.add(i)
    return [op != "none" and i in forward and j in backward for (i, j), op in zip(EDGES, arch)]


def prune_dead_edges(arch: Sequence[str]) -> Arch:
    """``arch`` with every edge that cannot change the cell output replaced by 'none' (same function)."""
    return tuple(op if live else "none" for op, live in zip(arch, live_edges(arch)))


def is_connected(arch: Sequence[str]) -> bool:
    """Whether the output node depends on the input (all-'none' paths give a constant network)."""
    return any(live_edges(arch))


# ----------------------------------------------------------------------------------------------- modules
class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BN, the NB201 'nor_conv' op."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bn: dict):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, **bn))


class Zero(nn.Module):
    """The 'none' op: output zeros."""

    def forward(self, x):
        return x.mul(0.0)


def make_op(name: str, channels: int, bn: dict) -> nn.Module:
    """One candidate op of an NB201 cell edge (stride 1, same channels)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, bn)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, bn)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ArchError(f"unknown op {name!r}; known ops: {list(NB201_OPS)}")


class ResNetBlock(nn.Module):
    """NB201 reduction block: two ReLUConvBN (stride 2 then 1) plus an avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, bn: dict):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, bn)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, bn)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class SearchCell(nn.Module):
    """A cell holding every candidate op on each of its 6 edges; ``forward(x, arch)`` runs one path."""

    def __init__(self, channels: int, ops: Sequence[str], bn: dict):
        super().__init__()
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(nn.ModuleDict({op: make_op(op, channels, bn) for op in ops}) for _ in EDGES)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # x: [B, C, H, W]
        nodes = [x]
        k = 0
        for j in range(1, NUM_NODES):
            total = None
            for i in range(j):
                op = arch[k]
                k += 1
                if op == "none":  # contributes zeros: skip the work
                    continue
                out = self.edges[k - 1][op](nodes[i])
                total = out if total is None else total + out
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[-1]


@dataclass
class SupernetConfig:
    """Shape of an NB201 supernet (defaults: the lite preset)."""

    ops: tuple = NB201_OPS             # candidate ops on every edge (any subset of NB201_OPS)
    channels: int = 8                  # channels of the first stage; doubled at each reduction (paper: 16)
    cells_per_stage: int = 1           # search cells per stage, 3 stages (paper: 5)
    in_channels: int = 1               # image channels (Fashion-MNIST 1, CIFAR 3)
    num_classes: int = 10
    bn_affine: bool = False            # reference PA&DA: BN without learnable affine ...
    bn_track_running_stats: bool = False  # ... and always batch statistics, also at evaluation

    def __post_init__(self):
        self.ops = tuple(self.ops)
        bad = [op for op in self.ops if op not in NB201_OPS]
        if bad or not self.ops or len(set(self.ops)) != len(self.ops):
            raise ArchError(f"invalid op set {list(self.ops)}: use distinct ops from {list(NB201_OPS)}")
        for name in ("channels", "cells_per_stage", "in_channels", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SupernetConfig.{name} must be >= 1, got {getattr(self, name)}")


class NB201Supernet(nn.Module):
    """Weight-sharing NB201 supernet: stem, 3 stages of search cells, 2 ResNet reductions, classifier.

    ``forward(x, arch)`` runs the single path ``arch`` (a tuple of 6 op names); every cell uses the same arch.
    """

    def __init__(self, config: SupernetConfig | None = None):
        super().__init__()
        self.config = config = config or SupernetConfig()
        bn = dict(affine=config.bn_affine, track_running_stats=config.bn_track_running_stats)
        c = config.channels
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c, **bn))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBlock(c, 2 * c, bn))
                c *= 2
            layers += [SearchCell(c, config.ops, bn) for _ in range(config.cells_per_stage)]
        self.cells = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c, **bn), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(c, config.num_classes)

    @property
    def ops(self) -> tuple:
        return self.config.ops

    def check_arch(self, arch: Sequence[str]) -> Arch:
        """Validate that ``arch`` uses only this supernet's ops."""
        return _check_ops(arch, self.config.ops)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, H, W] -> [B, C, H, W]
        return self.stem(x)

    def forward_from_stem(self, h: torch.Tensor, arch: Arch) -> torch.Tensor:  # -> logits [B, classes]
        for layer in self.cells:
            h = layer(h, arch) if isinstance(layer, SearchCell) else layer(h)
        h = self.head(h).mean(dim=(2, 3))
        return self.classifier(h)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        return self.forward_from_stem(self.forward_stem(x), arch)

    def choice_instances(self) -> list[list[list[list[nn.Parameter]]]]:
        """[edge][op] -> the parameter list of that op in every search cell (one list per cell; empty: no params)."""
        cells = [layer for layer in self.cells if isinstance(layer, SearchCell)]
        return [[[list(cell.edges[e][op].parameters()) if op in cell.edges[e] else [] for cell in cells]
                 for op in self.config.ops] for e in range(NUM_EDGES)]

    def op_parameters(self, op: str) -> Iterator[tuple[int, nn.Parameter]]:
        """(edge index, parameter) of candidate ``op`` on every edge of every cell."""
        for layer in self.cells:
            if isinstance(layer, SearchCell):
                for e, edge in enumerate(layer.edges):
                    if op in edge:
                        for p in edge[op].parameters():
                            yield e, p


class StandaloneNB201(nn.Module):
    """A single NB201 network (one fixed arch), trained from scratch for ground truth."""

    def __init__(self, arch: Sequence[str], config: SupernetConfig | None = None):
        super().__init__()
        config = config or SupernetConfig()
        arch = _check_ops(arch, NB201_OPS)
        used = tuple(op for op in NB201_OPS if op in arch)
        self.arch = arch
        self.net = NB201Supernet(_replace_ops(config, used))

    def forward(self, x):
        return self.net(x, self.arch)


def _replace_ops(config: SupernetConfig, ops: tuple) -> SupernetConfig:
    from dataclasses import replace
    return replace(config, ops=ops)


SPACE_CONFIG = SupernetConfig


def build_supernet(config: SupernetConfig) -> NB201Supernet:
    """The NB201 weight-sharing supernet of ``config``."""
    return NB201Supernet(config)


def make_path_sampler(train_config, space_config: SupernetConfig, generator: torch.Generator):
    """The path sampler ``train_config.path_sampler`` names, over this supernet's ops on every edge."""
    from ..samplers import make_path_sampler
    return make_path_sampler(train_config, space_config.ops, generator)
