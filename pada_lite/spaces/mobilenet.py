"""The ProxylessNAS / MobileNetV2 chain search space: single-path supernet, FLOPs lookup table, FLOPs-range sampling.

Layout (ProxylessNAS, as SPOS-style papers search it on ImageNet): stem conv 3×3 stride 2 (32 channels), a fixed
MBConv1 3×3 block (16), then 21 choice blocks in 6 stages of widths 24/40/80/96/192/320 with 4/4/4/4/4/1 blocks and
first-block strides 2/2/2/1/2/1, a 1×1 conv to 1280, global average pooling and a linear classifier. Every choice
block picks one of 7 choices: MBConv with kernel {3, 5, 7} × expansion {3, 6}, or ``skip`` (identity), which exists
only where the block's stride is 1 and its input and output widths match (every block but a stage's first, and a
stage's first block when the width multiplier makes two stages equally wide).

An arch is a tuple of choice names, one per choice block, e.g. ``("k3_e6", "skip", ...)``.

**FLOPs convention.** "FLOPs" here are multiply-accumulates (MACs) of convolutions and linear layers only, as
ProxylessNAS and SPOS report "FLOPs" (batch norm, activations, additions and pooling are not counted).
:class:`FlopsTable` holds the MACs of every (block, choice) and of the fixed layers at the config's input size, so an
arch's FLOPs cost one table lookup per block. ``torch.utils.flop_counter`` counts 2 FLOPs per MAC; the tests check the
table against it (divided by 2) on random archs.

**Batch norm.** As SPOS: BN with affine parameters and running statistics; the statistics accumulated while training
random paths belong to no single path, so every candidate is evaluated after recalibrating them on training batches
(:func:`pada_lite.evaluation.recalibrate_bn`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .nb201 import ArchError

KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)
CHOICES = tuple(f"k{k}_e{e}" for k in KERNELS for e in EXPANSIONS) + ("skip",)   # 7 choices per block
SKIP = "skip"

Arch = tuple  # tuple[str, ...]: one choice name per choice block


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNetV2's channel rounding: nearest multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass
class MobileNetSupernetConfig:
    """Shape of a MobileNet-space supernet (defaults: the ProxylessNAS ImageNet space at width 1.0, 224 px)."""

    kind: str = "mobilenet"
    width_mult: float = 1.0            # multiplies every width but the head's (MobileNetV2 keeps 1280 below 1.0)
    input_size: int = 224              # image side the FLOPs table is computed for (ImageNet: 224)
    in_channels: int = 3               # image channels (ImageNet 3, Fashion-MNIST 1)
    num_classes: int = 1000
    stem_channels: int = 32            # stem conv 3x3 (before the width multiplier)
    stem_stride: int = 2               # ImageNet 2; 1 for small images
    first_channels: int = 16           # the fixed MBConv1 3x3 block
    stage_widths: tuple = (24, 40, 80, 96, 192, 320)
    stage_blocks: tuple = (4, 4, 4, 4, 4, 1)   # choice blocks per stage (21 in all)
    stage_strides: tuple = (2, 2, 2, 1, 2, 1)  # stride of each stage's first block
    head_channels: int = 1280          # the 1x1 conv before pooling
    dropout: float = 0.0               # before the classifier (retraining; the supernet uses none)
    bn_momentum: float = 0.1
    bn_affine: bool = True             # SPOS: BN with affine parameters ...
    bn_track_running_stats: bool = True  # ... and running statistics, recalibrated per candidate before evaluation
    train_flops_range: tuple | None = None  # SPOS supernet training: only paths within [low, high] M FLOPs ...
    train_flops_step: float = 10.0     # ... drawn by picking a bin of this width (M) uniformly, then rejection sampling
    train_flops_tries: int = 500       # draws per step before giving up on the bin (SPOS: 500; then any path)

    def __post_init__(self):
        self.stage_widths, self.stage_blocks = tuple(self.stage_widths), tuple(self.stage_blocks)
        self.stage_strides = tuple(self.stage_strides)
        if self.kind != "mobilenet":
            raise ArchError(f"MobileNetSupernetConfig.kind must be 'mobilenet', got {self.kind!r}")
        if not len(self.stage_widths) == len(self.stage_blocks) == len(self.stage_strides) or not self.stage_widths:
            raise ArchError(f"stage_widths {self.stage_widths}, stage_blocks {self.stage_blocks} and stage_strides "
                            f"{self.stage_strides} must have one entry per stage")
        if any(int(b) < 1 for b in self.stage_blocks) or any(s not in (1, 2) for s in self.stage_strides):
            raise ArchError(f"every stage needs >= 1 block and stride 1 or 2, got blocks {self.stage_blocks}, "
                            f"strides {self.stage_strides}")
        if not self.width_mult > 0 or int(self.input_size) < 1:
            raise ArchError(f"width_mult ({self.width_mult}) and input_size ({self.input_size}) must be positive")
        if self.train_flops_range is not None:
            self.train_flops_range = tuple(float(v) for v in self.train_flops_range)
            low, high = (self.train_flops_range + (None, None))[:2]
            if len(self.train_flops_range) != 2 or not 0 <= low < high or not self.train_flops_step > 0:
                raise ArchError(f"train_flops_range={list(self.train_flops_range)} must be [low, high] M FLOPs with "
                                f"0 <= low < high, and train_flops_step ({self.train_flops_step}) > 0")

    @property
    def num_blocks(self) -> int:
        return sum(self.stage_blocks)

    def blocks(self) -> list[tuple[int, int, int]]:
        """(input channels, output channels, stride) of every choice block, after the width multiplier."""
        c_in = make_divisible(self.first_channels * self.width_mult)
        out = []
        for width, count, stride in zip(self.stage_widths, self.stage_blocks, self.stage_strides):
            c_out = make_divisible(width * self.width_mult)
            for i in range(count):
                out.append((c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
        return out

    def allowed(self) -> torch.Tensor:  # [blocks, 7] bool
        """Which choices each block has: skip only where stride is 1 and the widths match."""
        mask = torch.ones(self.num_blocks, len(CHOICES), dtype=torch.bool)
        for b, (c_in, c_out, stride) in enumerate(self.blocks()):
            mask[b, CHOICES.index(SKIP)] = stride == 1 and c_in == c_out
        return mask


def parse_choice(name: str) -> tuple[int, int]:
    """(kernel, expansion) of an MBConv choice name such as ``k5_e3``."""
    if name not in CHOICES or name == SKIP:
        raise ArchError(f"{name!r} is not an MBConv choice; choices are {list(CHOICES)}")
    k, e = name[1:].split("_e")
    return int(k), int(e)


def check_arch(arch: Sequence[str], config: MobileNetSupernetConfig) -> Arch:
    """``arch`` as a tuple, after checking its length and that every block's choice exists there."""
    arch = tuple(arch)
    if len(arch) != config.num_blocks:
        raise ArchError(f"this MobileNet space has {config.num_blocks} choice blocks, the arch has {len(arch)}")
    allowed = config.allowed()
    for b, name in enumerate(arch):
        if name not in CHOICES:
            raise ArchError(f"block {b}: unknown choice {name!r}; choices are {list(CHOICES)}")
        if not allowed[b, CHOICES.index(name)]:
            raise ArchError(f"block {b} cannot skip: its stride is not 1 or its widths differ")
    return arch


def arch_to_str(arch: Sequence[str]) -> str:
    """``k3_e6-skip-...``: choice names joined by '-'."""
    return "-".join(arch)


def str_to_arch(text: str, config: MobileNetSupernetConfig | None = None) -> Arch:
    """Inverse of :func:`arch_to_str` (checked against ``config``'s space when given)."""
    arch = tuple(text.strip().split("-"))
    return check_arch(arch, config) if config is not None else arch


# ----------------------------------------------------------------------------------------------- modules
def conv_bn(c_in: int, c_out: int, kernel: int, stride: int, bn: dict, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    """Conv (no bias, 'same' padding) -> BN (-> ReLU6)."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, **bn)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (skipped at expansion 1) -> depthwise k x k -> 1x1 project; residual if it fits."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expansion: int, bn: dict):
        super().__init__()
        hidden = c_in * expansion
        layers = [conv_bn(c_in, hidden, 1, 1, bn)] if expansion != 1 else []
        layers += [conv_bn(hidden, hidden, kernel, stride, bn, groups=hidden),
                   conv_bn(hidden, c_out, 1, 1, bn, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class ChoiceBlock(nn.Module):
    """One choice block: every allowed candidate, of which ``forward(x, choice)`` runs one."""

    def __init__(self, c_in: int, c_out: int, stride: int, allowed: Sequence[bool], bn: dict):
        super().__init__()
        self.choices = nn.ModuleDict()
        for name, ok in zip(CHOICES, allowed):
            if ok:
                self.choices[name] = nn.Identity() if name == SKIP else MBConv(c_in, c_out, kernel_of(name), stride,
                                                                                 expansion_of(name), bn)

    def forward(self, x, choice: str):
        return self.choices[choice](x)


def kernel_of(name: str) -> int:
    return parse_choice(name)[0]


def expansion_of(name: str) -> int:
    return parse_choice(name)[1]


class MobileNetSupernet(nn.Module):
    """Single-path weight-sharing supernet of the MobileNet space; ``forward(x, arch)`` runs the path ``arch``."""

    def __init__(self, config: MobileNetSupernetConfig | None = None):
        super().__init__()
        self.config = config = config or MobileNetSupernetConfig()
        bn = dict(momentum=config.bn_momentum, affine=config.bn_affine,
                  track_running_stats=config.bn_track_running_stats)
        stem = make_divisible(config.stem_channels * config.width_mult)
        first = make_divisible(config.first_channels * config.width_mult)
        self.stem = conv_bn(config.in_channels, stem, 3, config.stem_stride, bn)
        self.first = MBConv(stem, first, 3, 1, 1, bn)
        allowed = config.allowed().tolist()
        self.blocks = nn.ModuleList(ChoiceBlock(c_in, c_out, stride, ok, bn)
                                    for (c_in, c_out, stride), ok in zip(config.blocks(), allowed))
        last = config.blocks()[-1][1]
        self.head = conv_bn(last, config.head_channels, 1, 1, bn)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.head_channels, config.num_classes)

    def check_arch(self, arch: Sequence[str]) -> Arch:
        return check_arch(arch, self.config)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # [B, C, H, W] -> logits [B, classes]
        if len(arch) != len(self.blocks):
            raise ArchError(f"this supernet has {len(self.blocks)} choice blocks, the arch has {len(arch)}")
        h = self.first(self.stem(x))
        for block, choice in zip(self.blocks, arch):
            h = block(h, choice)
        h = self.head(h).mean(dim=(2, 3))
        return self.classifier(self.dropout(h))

    def choice_instances(self) -> list[list[list[list[nn.Parameter]]]]:
        """[block][choice] -> the parameter list of its one instance ([] where the choice does not exist)."""
        return [[[list(block.choices[name].parameters())] if name in block.choices else [] for name in CHOICES]
                for block in self.blocks]


class MobileNetNetwork(nn.Module):
    """One fixed arch of the space as a stand-alone network (retraining): only its chosen candidates exist."""

    def __init__(self, arch: Sequence[str], config: MobileNetSupernetConfig | None = None):
        super().__init__()
        config = config or MobileNetSupernetConfig()
        self.arch = check_arch(arch, config)
        self.net = MobileNetSupernet(config)
        for block, choice in zip(self.net.blocks, self.arch):
            for name in [n for n in block.choices if n != choice]:
                del block.choices[name]

    def forward(self, x):
        return self.net(x, self.arch)


# ------------------------------------------------------------------------------------------------ FLOPs
def conv_macs(size: int, c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> tuple[int, int]:
    """(MACs, output side) of a 'same'-padded conv on a ``size`` x ``size`` input."""
    out = (size + 2 * (kernel // 2) - kernel) // stride + 1
    return out * out * c_out * (c_in // groups) * kernel * kernel, out


def mbconv_macs(size: int, c_in: int, c_out: int, kernel: int, stride: int, expansion: int) -> tuple[int, int]:
    """(MACs, output side) of an MBConv block: 1x1 expand (if any) + depthwise + 1x1 project."""
    hidden = c_in * expansion
    expand = conv_macs(size, c_in, hidden, 1, 1)[0] if expansion != 1 else 0
    depthwise, out = conv_macs(size, hidden, hidden, kernel, stride, groups=hidden)
    return expand + depthwise + conv_macs(out, hidden, c_out, 1, 1)[0], out


class FlopsTable:
    """MACs of every (block, choice) and of a config's fixed layers; an arch's FLOPs = base + Σ table[b, choice]."""

    def __init__(self, config: MobileNetSupernetConfig):
        self.config = config
        stem = make_divisible(config.stem_channels * config.width_mult)
        first = make_divisible(config.first_channels * config.width_mult)
        base, size = conv_macs(config.input_size, config.in_channels, stem, 3, config.stem_stride)
        macs, size = mbconv_macs(size, stem, first, 3, 1, 1)
        base += macs
        blocks = config.blocks()
        self.table = np.zeros((len(blocks), len(CHOICES)), dtype=np.int64)   # [blocks, 7] MACs; skip = 0
        for b, (c_in, c_out, stride) in enumerate(blocks):
            for j, name in enumerate(CHOICES[:-1]):
                kernel, expansion = parse_choice(name)
                self.table[b, j], out = mbconv_macs(size, c_in, c_out, kernel, stride, expansion)
            size = out
        base += conv_macs(size, blocks[-1][1], config.head_channels, 1, 1)[0]
        self.base = int(base + config.head_channels * config.num_classes)        # + classifier
        self.index = {name: j for j, name in enumerate(CHOICES)}

    def macs(self, arch: Sequence[str]) -> int:
        """Multiply-accumulates of ``arch`` (convs and linear layers)."""
        return self.base + int(sum(self.table[b, self.index[name]] for b, name in enumerate(arch)))

    def mflops(self, arch: Sequence[str]) -> float:
        """FLOPs of ``arch`` in millions (MACs, the convention of ProxylessNAS and SPOS)."""
        return self.macs(arch) / 1e6

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest FLOPs (M) in the space."""
        allowed = self.config.allowed().numpy()
        masked = np.where(allowed, self.table, np.iinfo(np.int64).max)
        low = self.base + masked.min(1).sum()
        high = self.base + np.where(allowed, self.table, 0).max(1).sum()
        return low / 1e6, high / 1e6


def counted_macs(model: nn.Module, x: torch.Tensor, *args) -> int:
    """MACs of one forward pass counted by ``torch.utils.flop_counter`` (which counts 2 FLOPs per MAC), per image."""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, *args)
    return counter.get_total_flops() // (2 * len(x))


# ----------------------------------------------------------------------------------------------- archs
class MobileNetArchSpace:
    """The arch space a search walks (protocol of :mod:`pada_lite.search`), restricted to FLOPs <= ``flops_limit`` M."""

    def __init__(self, config: MobileNetSupernetConfig, flops_limit: float | None = None):
        self.config, self.flops_limit = config, flops_limit
        self.table = FlopsTable(config)
        mask = config.allowed()
        self.choices = [[CHOICES[j] for j in row.nonzero().flatten().tolist()] for row in mask]  # per block
        if flops_limit is not None and self.table.bounds()[0] > flops_limit:
            raise ArchError(f"flops limit {flops_limit} M is below the smallest arch of the space "
                            f"({self.table.bounds()[0]:.1f} M): raise the limit")

    def random(self, rng: np.random.Generator) -> Arch:
        """One arch with every block's choice drawn uniformly among its allowed choices (limit not applied)."""
        return tuple(c[int(rng.integers(len(c)))] for c in self.choices)

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float) -> Arch:
        """Each block's choice redrawn uniformly with probability ``prob`` (SPOS)."""
        redraw = rng.random(len(arch)) < prob
        fresh = self.random(rng)
        return tuple(new if r else old for old, new, r in zip(arch, fresh, redraw.tolist()))

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Each block's choice from ``a`` or ``b`` with probability 1/2 (SPOS)."""
        return tuple(x if pick else y for x, y, pick in zip(a, b, (rng.random(len(a)) < 0.5).tolist()))

    def is_valid(self, arch: Arch) -> bool:
        """Whether ``arch`` is in the space and within the FLOPs limit."""
        try:
            check_arch(arch, self.config)
        except ArchError:
            return False
        return self.flops_limit is None or self.table.mflops(arch) <= self.flops_limit

    def to_str(self, arch: Arch) -> str:
        return arch_to_str(arch)

    def sample_valid(self, count: int, rng: np.random.Generator, max_tries: int = 100_000) -> list[Arch]:
        """``count`` distinct random archs within the limit (rejection sampling)."""
        out: dict[Arch, None] = {}
        for _ in range(max_tries):
            if len(out) >= count:
                return list(out)
            arch = self.random(rng)
            if self.is_valid(arch):
                out.setdefault(arch)
        raise ArchError(f"found only {len(out)} of {count} archs under {self.flops_limit} M in {max_tries} draws: "
                        "raise the FLOPs limit")


# --------------------------------------------------------------------------------------------- sampling
class FlopsRangePathSampler:
    """SPOS's FLOPs-constrained uniform sampling around any path sampler: each step picks a FLOPs bin uniformly, then
    draws paths from ``inner`` until one falls in it (after ``tries`` misses, the last draw is kept, as SPOS does)."""

    def __init__(self, inner, table: FlopsTable, low: float, high: float, step: float, tries: int = 500):
        self.inner, self.table, self.tries = inner, table, int(tries)
        edges = np.arange(low, high, step)
        self.bins = [(float(a), float(min(a + step, high))) for a in edges]   # [(low, high)] in M FLOPs
        self.misses = 0

    def probabilities(self) -> torch.Tensor:  # [blocks, 7]: the inner sampler's, before rejection
        return self.inner.probabilities()

    def sample(self, generator: torch.Generator | None = None) -> list[tuple[tuple, float]]:
        generator = generator or self.inner.generator
        low, high = self.bins[int(torch.randint(len(self.bins), (1,), generator=generator))]
        for _ in range(self.tries):
            paths = self.inner.sample(generator)
            if low <= self.table.mflops(paths[0][0]) <= high:
                return paths
        self.misses += 1
        return paths

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        self.inner.start_epoch(epoch, num_epochs)

    def observe(self, model, archs) -> None:
        self.inner.observe(model, archs)

    def state_dict(self) -> dict:
        return {**self.inner.state_dict(), "flops_bins": self.bins, "flops_misses": self.misses}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        bins = [tuple(b) for b in state.pop("flops_bins", [])]
        if bins != self.bins:
            raise ValueError(f"the checkpoint's FLOPs bins {bins} are not this run's {self.bins}: resume with the "
                             "config that wrote the checkpoint")
        self.misses = state.pop("flops_misses")
        self.inner.load_state_dict(state)


SPACE_CONFIG = MobileNetSupernetConfig


def build_supernet(config: MobileNetSupernetConfig) -> MobileNetSupernet:
    """The MobileNet-space weight-sharing supernet of ``config``."""
    return MobileNetSupernet(config)


def make_path_sampler(train_config, space_config: MobileNetSupernetConfig, generator: torch.Generator):
    """The path sampler ``train_config.path_sampler`` names over the blocks' allowed choices (FLOPs-ranged if set)."""
    from ..samplers import make_path_sampler as make
    sampler = make(train_config, CHOICES, generator, space_config.num_blocks, space_config.allowed())
    if space_config.train_flops_range is None:
        return sampler
    low, high = space_config.train_flops_range
    return FlopsRangePathSampler(sampler, FlopsTable(space_config), low, high, space_config.train_flops_step,
                                 space_config.train_flops_tries)
