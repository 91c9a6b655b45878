"""Stand-alone training of many NB201 networks at once, batched as one model (ground truth on a CPU).

``BatchedNB201(archs)`` lays the A networks side by side in the channel dimension: activations are
``[B, A*C, H, W]``, network ``a`` owning channels ``a*C .. (a+1)*C`` of every stage. Its stem is one convolution with
``A*C`` outputs, the ResNet reductions are grouped convolutions with ``groups=A``, ``BatchNorm2d(A*C)`` is exactly
per-network BN, and the classifier is one weight block per network. Inside a cell every network's node is its own
``[B, C, H, W]`` view; each op on each edge concatenates the inputs of the archs that use it there, runs once as a
grouped module (groups = those archs) and adds each slice into its network's node, so the memory traffic of an op
grows with the archs that use it, not with A. (Gathering with ``index_select``/``index_add_`` on the wide tensor
instead cost 1.5x more: every op touched all A*C channels, forward and backward.)

The loss is the sum of the A networks' mean cross-entropies, so every network gets exactly the gradient it would get
alone; SGD with momentum and weight decay works elementwise, so one optimiser over the batched model trains the A
networks exactly as A separate optimisers would, on the same batches (``tests/test_standalone.py`` checks it).

Speed on the 2-core CPU (interleaved in one process, machine shared with other jobs): with one thread a batch of 16
networks costs as much CPU per network-step as one network alone (about 0.12 s for 256 images at 16x16, C=8), so
batching gains nothing there; with two threads one small network scales badly and batching 16 was 2-4x faster than
one at a time. The ground truth therefore runs two single-threaded worker processes, each training a batch of 16.

Each network ``arch`` trained with ``seed`` starts from the weights of ``StandaloneNB201(arch)`` built after
``torch.manual_seed(init_seed(seed, arch))`` and sees the data in the order drawn from ``seed``: its result does not
depend on which other archs share its group (up to float rounding).

Protocol (NB201 stand-alone training, shrunk; see :class:`StandaloneConfig`): SGD with Nesterov momentum 0.9,
lr 0.1 cosine-annealed per step to 0, weight decay 5e-4, batch 256, BN with affine parameters and running
statistics (evaluation in eval mode), no gradient clipping, no augmentation (Fashion-MNIST).
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import DataConfig
from .data import ImageData, Splits, load_splits
from .spaces.nb201 import EDGES, NUM_NODES, Arch, StandaloneNB201, SupernetConfig, arch_to_product_index

BN_STANDALONE = dict(affine=True, track_running_stats=True)  # NB201 stand-alone networks
CONV_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
StepCallback = Callable[[int, bool], None]  # (steps, resumed): steps trained now, or restored from a checkpoint


@dataclass
class StandaloneConfig:
    """How each ground-truth network is built and trained (defaults: the ``lite`` preset)."""

    dataset: str = "fashion_mnist"     # data set (see pada_lite.config.DATASETS)
    image_size: int = 8                # images resized to image_size x image_size
    train_size: int | None = 20000     # training images (None: all 60k)
    test_size: int | None = None       # test images the accuracy is measured on (None: the whole 10k test set)
    heldout_size: int = 30000          # training-set images never trained on, evaluated besides the test set
    channels: int = 4                  # first-stage channels (NB201: 16)
    cells_per_stage: int = 3           # cells per stage (NB201: 5): the cells, not the ResNet blocks, must matter
    epochs: int = 6                    # training epochs (NB201: 200; its short-budget table: 12)
    batch_size: int = 256              # images per step (NB201: 256)
    lr: float = 0.1                    # initial learning rate, cosine-annealed per step to 0 (NB201: 0.1)
    momentum: float = 0.9              # Nesterov momentum (NB201: 0.9, nesterov)
    weight_decay: float = 5e-4         # (NB201: 5e-4)
    group_size: int = 16               # networks trained at once as one batched model (speed only)
    eval_batch_size: int = 1000        # test images per forward pass (eval mode: running BN statistics)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "StandaloneConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**values)

    @classmethod
    def lite(cls) -> "StandaloneConfig":
        """The lite benchmark's ground-truth setting (chosen by the pilot documented in pada_lite.benchmark)."""
        return cls()

    def data_config(self) -> DataConfig:
        """The DataConfig of the training and test images."""
        return DataConfig(dataset=self.dataset, image_size=self.image_size, train_size=self.train_size,
                          valid_size=self.heldout_size, test_size=self.test_size)

    def space_config(self) -> SupernetConfig:
        """Shape of one stand-alone network (NB201 stand-alone BN: affine, running statistics)."""
        from .data import NUM_CLASSES
        return SupernetConfig(channels=self.channels, cells_per_stage=self.cells_per_stage,
                              in_channels=1 if self.dataset == "fashion_mnist" else 3,
                              num_classes=NUM_CLASSES[self.dataset], bn_affine=True, bn_track_running_stats=True)


# ------------------------------------------------------------------------------------------------ modules
def grouped_relu_conv_bn(groups: int, c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """``groups`` NB201 ReLUConvBN ops side by side (same layout and state-dict keys as ReLUConvBN)."""
    return nn.Sequential(nn.ReLU(inplace=False),
                         nn.Conv2d(groups * c_in, groups * c_out, kernel, stride, kernel // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(groups * c_out, **BN_STANDALONE))


def make_grouped_op(op: str, groups: int, channels: int) -> nn.Module:
    """One NB201 op applied to ``groups`` networks' channel blocks at once."""
    if op in CONV_KERNELS:
        return grouped_relu_conv_bn(groups, channels, channels, CONV_KERNELS[op], 1)
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return AvgPool3x3()
    raise ValueError(f"no batched module for op {op!r}")


class AvgPool3x3(nn.Module):
    """NB201 avg_pool_3x3 (stride 1, padding 1, padding not counted) as two separable box sums: 2x faster on CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C, H, W]
        p = F.pad(x, (1, 1, 1, 1))
        rows = p[..., :-2] + p[..., 1:-1] + p[..., 2:]
        return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) * inverse_window_counts(x)


class AvgPool2x2(nn.Module):
    """nn.AvgPool2d(2, 2) as a reshape and mean (an odd last row/column is dropped, as AvgPool2d does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C, H//2, W//2]
        b, c, h, w = x.shape
        x = x[..., :h // 2 * 2, :w // 2 * 2]
        return x.reshape(b, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))


def inverse_window_counts(x: torch.Tensor) -> torch.Tensor:
    """1 / (number of in-image pixels of each 3x3 window) [H, W]: 1/9 inside, 1/6 on edges, 1/4 in corners."""
    h, w = x.shape[-2:]
    rows = torch.full((h,), 3.0, device=x.device, dtype=x.dtype)
    cols = torch.full((w,), 3.0, device=x.device, dtype=x.dtype)
    rows[[0, -1]] = 2.0 if h > 1 else 1.0
    cols[[0, -1]] = 2.0 if w > 1 else 1.0
    return 1.0 / (rows.view(-1, 1) * cols.view(1, -1))


class GroupedEdgeOp(nn.Module):
    """One op on one edge for the networks ``members`` that use it there, run as one grouped module."""

    def __init__(self, op: str, members: Sequence[int], channels: int):
        super().__init__()
        self.members, self.channels = tuple(members), channels
        self.op = make_grouped_op(op, len(members), channels)

    def add_to(self, node: list, source: list) -> None:
        """node[a] += op(source[a]) for every member a. node, source: per-network tensors [B, C, H, W]."""
        if isinstance(self.op, nn.Identity):
            outs = [source[a] for a in self.members]
        else:
            inputs = [source[a] for a in self.members]
            outs = self.op(torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0]).split(self.channels, 1)
        for a, out in zip(self.members, outs):
            node[a] = out if node[a] is None else node[a] + out


class BatchedCell(nn.Module):
    """The NB201 cells of A archs at one position; ``edges[e][op]`` serves the archs using ``op`` on edge ``e``."""

    def __init__(self, archs: Sequence[Arch], channels: int):
        super().__init__()
        self.channels = channels
        self.edges = nn.ModuleList()
        for e in range(len(EDGES)):
            ops = sorted({arch[e] for arch in archs} - {"none"})
            self.edges.append(nn.ModuleDict({op: GroupedEdgeOp(op, [a for a, arch in enumerate(archs)
                                                                    if arch[e] == op], channels) for op in ops}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, A*C, H, W] -> [B, A*C, H, W]
        return torch.cat(self.forward_networks(list(x.split(self.channels, 1))), 1)

    def forward_networks(self, xs: list) -> list:  # A tensors [B, C, H, W] -> A tensors [B, C, H, W]
        """The cell on each network's own tensor (slicing per op and edge costs O(users), not O(A))."""
        nodes = [xs]
        for j in range(1, NUM_NODES):
            node = [None] * len(xs)
            for e, (i, target) in enumerate(EDGES):
                if target == j:
                    for grouped in self.edges[e].values():
                        grouped.add_to(node, nodes[i])
            # a network with no live input edge keeps zeros, as StandaloneNB201
            nodes.append([torch.zeros_like(x) if h is None else h for h, x in zip(node, xs)])
        return nodes[-1]


class BatchedResNetBlock(nn.Module):
    """A NB201 reduction blocks side by side (same state-dict keys as ResNetBlock)."""

    def __init__(self, groups: int, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = grouped_relu_conv_bn(groups, c_in, c_out, 3, 2)
        self.conv_b = grouped_relu_conv_bn(groups, c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(AvgPool2x2(),
                                      nn.Conv2d(groups * c_in, groups * c_out, 1, bias=False, groups=groups))

    def forward(self, x):  # [B, A*c_in, H, W] -> [B, A*c_out, H/2, W/2]
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class BatchedLinear(nn.Module):
    """A linear classifiers, weight [A*K, c] and bias [A*K] (rows of network a: a*K .. (a+1)*K)."""

    def __init__(self, groups: int, c_in: int, c_out: int):
        super().__init__()
        self.groups, self.c_in, self.c_out = groups, c_in, c_out
        bound = c_in ** -0.5  # nn.Linear's initial range
        self.weight = nn.Parameter(torch.empty(groups * c_out, c_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups * c_out).uniform_(-bound, bound))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # [B, A*c] -> [B, A, K]
        w = self.weight.view(self.groups, self.c_out, self.c_in)
        out = torch.einsum("bac,akc->bak", h.view(len(h), self.groups, self.c_in), w)
        return out + self.bias.view(self.groups, self.c_out)


class BatchedNB201(nn.Module):
    """A stand-alone NB201 networks (one arch each) as one model; ``forward(x)`` gives logits [B, A, classes]."""

    def __init__(self, archs: Sequence[Arch], config: SupernetConfig):
        super().__init__()
        self.archs = [tuple(a) for a in archs]
        self.config = config
        a, c = len(self.archs), config.channels
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, a * c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(a * c, **BN_STANDALONE))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(BatchedResNetBlock(a, c, 2 * c))
                c *= 2
            layers += [BatchedCell(self.archs, c) for _ in range(config.cells_per_stage)]
        self.cells = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(a * c, **BN_STANDALONE), nn.ReLU(inplace=False))
        self.classifier = BatchedLinear(a, c, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, H, W] -> [B, A, classes]
        h = self.stem(x)
        for layer in self.cells:
            h = layer(h)
        return self.classifier(self.head(h).mean(dim=(2, 3)))

    def pairs(self, nets: Sequence[StandaloneNB201]):
        """(batched module, the matching module of each network it holds), over the whole model."""
        inner = [net.net for net in nets]
        yield self.stem, [n.stem for n in inner]
        for position, layer in enumerate(self.cells):
            if isinstance(layer, BatchedResNetBlock):
                yield layer, [n.cells[position] for n in inner]
                continue
            for e, edge in enumerate(layer.edges):
                for op, grouped in edge.items():
                    yield grouped.op, [inner[a].cells[position].edges[e][op] for a in grouped.members]
        yield self.head, [n.head for n in inner]
        yield self.classifier, [n.classifier for n in inner]

    def load_networks(self, nets: Sequence[StandaloneNB201]) -> "BatchedNB201":
        """Copy the weights and BN statistics of stand-alone networks (one per arch, same order) into this model."""
        if [n.arch for n in nets] != self.archs:
            raise ValueError("load_networks needs one StandaloneNB201 per arch of this model, in the same order")
        for batched, singles in self.pairs(nets):
            states = [s.state_dict() for s in singles]
            batched.load_state_dict({key: _stack(key, [st[key] for st in states]) for key in batched.state_dict()})
        return self

    def to_networks(self) -> list[StandaloneNB201]:
        """The A networks as separate StandaloneNB201 modules (weights and BN statistics copied out)."""
        dtype = self.classifier.weight.dtype
        nets = [StandaloneNB201(arch, self.config).to(dtype) for arch in self.archs]
        for batched, singles in self.pairs(nets):
            state = batched.state_dict()
            for g, single in enumerate(singles):
                single.load_state_dict({key: _block(state[key], g, len(singles)) for key in single.state_dict()},
                                       strict=False)
        return nets


def _stack(key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-network tensors along dim 0 (a BN step counter is shared, not stacked)."""
    return tensors[0].clone() if key.endswith("num_batches_tracked") else torch.cat(tensors)


def _block(tensor: torch.Tensor, g: int, groups: int) -> torch.Tensor:
    """Network g's rows of a tensor stacked by :func:`_stack`."""
    if tensor.dim() == 0:
        return tensor.clone()
    size = len(tensor) // groups
    return tensor[g * size:(g + 1) * size].clone()


# ----------------------------------------------------------------------------------------------- training
def init_seed(seed: int, arch: Arch) -> int:
    """Seed of the initial weights of ``arch`` in run ``seed`` (independent of the group it is trained in)."""
    return int(seed) * 1_000_003 + arch_to_product_index(arch)


def seeded_network(arch: Arch, seed: int, space: SupernetConfig) -> StandaloneNB201:
    """The stand-alone network of ``arch`` with the initial weights of run ``seed``."""
    torch.manual_seed(init_seed(seed, arch))
    return StandaloneNB201(arch, space)


def build_batched(archs: Sequence[Arch], seed: int, space: SupernetConfig) -> BatchedNB201:
    """A batched model whose networks start from :func:`seeded_network` weights."""
    return BatchedNB201(archs, space).load_networks([seeded_network(a, seed, space) for a in archs])


def per_network_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each network [A] from logits [B, A, K] and labels [B]."""
    b, a, k = logits.shape
    return F.cross_entropy(logits.reshape(b * a, k), y.repeat_interleave(a), reduction="none").view(b, a).mean(0)


def epoch_batches(num_images: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches of one epoch (a last batch of one image is dropped: BN needs two)."""
    batches = list(torch.randperm(num_images, generator=generator).split(batch_size))
    return batches[:-1] if len(batches[-1]) < 2 else batches


def make_optimizer(model: nn.Module, config: StandaloneConfig, total_steps: int):
    """SGD (Nesterov) with a per-step cosine schedule to 0."""
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                          weight_decay=config.weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps, eta_min=0.0)


def steps_per_epoch(config: StandaloneConfig, num_images: int) -> int:
    """Optimiser steps of one epoch (as :func:`epoch_batches` cuts it)."""
    full, rest = divmod(num_images, config.batch_size)
    return full + (rest >= 2)


class Clock:
    """Wall and CPU seconds of a computation, including those carried over from an interrupted earlier run."""

    def __init__(self, carried: dict | None = None):
        self.start = (time.perf_counter(), time.process_time())
        self.carried = dict(carried or {"wall_time_s": 0.0, "cpu_time_s": 0.0})

    def totals(self) -> dict:
        return {"wall_time_s": round(self.carried["wall_time_s"] + time.perf_counter() - self.start[0], 3),
                "cpu_time_s": round(self.carried["cpu_time_s"] + time.process_time() - self.start[1], 3)}


@dataclass
class Progress:
    """Where training stands: epoch, step inside it, the RNG state at the epoch's start, the epoch's stats."""

    epoch: int
    step: int
    epoch_rng: torch.Tensor
    stats: torch.Tensor  # [3, A]: loss sum, correct, count per network


class TrainingCheckpoint:
    """Every ``every_s`` seconds, the full training state of one (archs, seed, config) at ``path``; resumes it when
    its ``identity`` (:func:`pada_lite.runner.identity` of archs, seed and config) is the same."""

    def __init__(self, path, identity: str, every_s: float = 300.0):
        from pathlib import Path
        self.path, self.identity, self.every_s = Path(path), identity, every_s
        self.last_save = time.perf_counter()

    def load(self, model, opt, sched, clock: Clock) -> Progress | None:
        """Restore the saved state into model/opt/sched/clock; None when there is none (or it is unusable)."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
            if state["identity"] != self.identity:
                raise ValueError("it belongs to other archs, seed or config")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        except Exception as err:  # noqa: BLE001 - a damaged cache file only costs recomputation
            warnings.warn(f"ignoring training checkpoint {self.path} ({err}); training starts over")
            return None
        clock.carried = state["times"]
        return Progress(**state["progress"])

    def maybe_save(self, model, opt, sched, clock: Clock, progress: Progress) -> None:
        """Save if ``every_s`` seconds have passed since the last save."""
        if time.perf_counter() - self.last_save < self.every_s:
            return
        from .provenance import torch_save
        torch_save(self.path, {"identity": self.identity, "model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "times": clock.totals(),
                               "progress": dataclasses.asdict(progress)})
        self.last_save = time.perf_counter()


def train_batched(model: BatchedNB201, train: ImageData, config: StandaloneConfig, seed: int,
                  on_step: StepCallback | None = None, checkpoint: TrainingCheckpoint | None = None,
                  clock: Clock | None = None) -> dict:
    """Train every network of ``model`` on ``train`` (batch order from ``seed``); final-epoch loss/accuracy [A].

    With ``checkpoint`` the state is saved every few minutes and an interrupted run continues exactly where it was;
    ``on_step(n, resumed)`` hears of every trained step and, once, of the steps restored from the checkpoint.
    """
    clock = clock or Clock()
    gen = torch.Generator().manual_seed(int(seed))
    steps = steps_per_epoch(config, len(train))
    opt, sched = make_optimizer(model, config, config.epochs * steps)
    progress = checkpoint.load(model, opt, sched, clock) if checkpoint else None
    progress = progress or Progress(0, 0, gen.get_state(), torch.zeros(3, len(model.archs)))
    if on_step is not None and progress.epoch * steps + progress.step:
        on_step(progress.epoch * steps + progress.step, True)
    model.train()
    while progress.epoch < config.epochs:
        gen.set_state(progress.epoch_rng)
        batches = epoch_batches(len(train), config.batch_size, gen)
        for progress.step in range(progress.step, len(batches)):
            progress.stats += train_step(model, opt, train, batches[progress.step])
            sched.step()
            if on_step is not None:
                on_step(1, False)
            if checkpoint is not None:
                progress.step += 1
                checkpoint.maybe_save(model, opt, sched, clock, progress)
        stats = progress.stats
        progress = Progress(progress.epoch + 1, 0, gen.get_state(), torch.zeros_like(stats))
    if not torch.isfinite(stats[0]).all():
        raise FloatingPointError(f"the training loss of some network became non-finite: {stats[0].tolist()}")
    return {"train_loss": (stats[0] / stats[2]).tolist(), "train_acc": (100.0 * stats[1] / stats[2]).tolist()}


def train_step(model: BatchedNB201, opt, data: ImageData, idx: torch.Tensor) -> torch.Tensor:
    """One SGD step of every network on the images ``idx``; this batch's [loss sum, correct, count] per network."""
    x, y = data.batch(idx)
    logits = model(x)
    losses = per_network_loss(logits, y)
    opt.zero_grad(set_to_none=True)
    losses.sum().backward()
    opt.step()
    count = torch.full((len(model.archs),), float(len(y)))
    return torch.stack([losses.detach() * len(y), (logits.detach().argmax(2) == y.view(-1, 1)).sum(0), count])


@torch.no_grad()
def evaluate_batched(model: BatchedNB201, data: ImageData, batch_size: int = 1000) -> np.ndarray:
    """Test accuracy (%) of each network [A] in eval mode (running BN statistics)."""
    model.eval()
    correct = torch.zeros(len(model.archs))
    for idx in torch.arange(len(data)).split(batch_size):
        x, y = data.batch(idx)
        correct += (model(x).argmax(2) == y.view(-1, 1)).sum(0)
    return (100.0 * correct / len(data)).numpy()


def train_and_evaluate(archs: Sequence[Arch], seed: int, config: StandaloneConfig, splits: Splits | None = None,
                       on_step: StepCallback | None = None, checkpoint_path=None,
                       checkpoint_every_s: float = 300.0) -> dict:
    """Train ``archs`` stand-alone (batched) with run ``seed``; accuracies, final train loss/acc, wall/CPU time.

    With ``checkpoint_path`` the training state is saved there every ``checkpoint_every_s`` seconds and resumed.
    """
    splits = splits or load_splits(config.data_config())
    clock = Clock()
    model = build_batched(archs, seed, config.space_config())
    from .runner import identity
    key = identity({"archs": [list(a) for a in archs], "seed": int(seed), "config": config})
    checkpoint = None if checkpoint_path is None else TrainingCheckpoint(checkpoint_path, key, checkpoint_every_s)
    result = train_batched(model, splits.train, config, seed, on_step, checkpoint, clock)
    result.update(evaluation_accuracies(model, splits, config.eval_batch_size))
    return {**result, **clock.totals()}


def evaluation_accuracies(model: BatchedNB201, splits: Splits, batch_size: int) -> dict:
    """Accuracy (%) per network on the test set, on the held-out training images, and on both together."""
    test = evaluate_batched(model, splits.test, batch_size)
    if splits.valid is None:
        return {"test_acc": test.tolist(), "heldout_acc": None, "eval_acc": test.tolist()}
    heldout = evaluate_batched(model, splits.valid, batch_size)
    both = (test * len(splits.test) + heldout * len(splits.valid)) / (len(splits.test) + len(splits.valid))
    return {"test_acc": test.tolist(), "heldout_acc": heldout.tolist(), "eval_acc": both.tolist()}


def groups_of(items: Sequence, size: int) -> list[list]:
    """Consecutive chunks of ``size`` items (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"group size must be >= 1, got {size}")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def total_steps(config: StandaloneConfig, num_images: int) -> int:
    """Optimiser steps of one full training run."""
    return config.epochs * steps_per_epoch(config, num_images)
