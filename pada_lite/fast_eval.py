"""Fast, exact evaluation of many NB201 sub-networks with inherited supernet weights.

Ranking all 15,625 NB201 cells means 15,625 passes over the test set. What this module saves:

- **Dedupe.** An edge that cannot change the output (it leaves a node that is always zero, or enters a node that
  never reaches the output) is replaced by 'none'; archs equal after that compute the same function and are
  evaluated once: the 15,625 NB201 cells are 9,445 distinct functions. Exact when every cell op maps zeros to zeros
  (BN without affine and with batch statistics, convs without bias: the reference); otherwise only identical archs
  are merged.
- **Sharing.** The stem runs once per test batch for all archs. In the first cell, every edge output and node value
  that depends on the same choices is computed once per chunk of archs (node 1 has at most 5 distinct values).
- **Arch batching** (``batched=True``, the default on CUDA). Values are kept as *rows* (one ``[B, C, H, W]`` tensor
  per distinct partial sub-network); every op of an edge runs once on the concatenation ``[n*B, C, H, W]`` of all
  rows that chose it, so one kernel serves many archs. BatchNorm then normalises each row with its own batch
  statistics (the reference BN: ``affine=False, track_running_stats=False``), which is what a per-arch forward
  computes, up to float summation order of the statistics.

Unbatched (the default on the CPU, where kernels are compute-bound and a per-arch batch stays in cache) every op is
the model's own module applied to one row, so accuracies equal the per-arch loop bit for bit.
The plans (which row feeds which op) are made on the host once per chunk; test batches then launch kernels only.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .data import ImageData
from .spaces.nb201 import EDGES, NUM_NODES, NB201Supernet, ResNetBlock, SearchCell, Zero, prune_dead_edges

NONE = "none"
CPU_CHUNK_BYTES = 2**28      # activation budget of one chunk of archs on the CPU (cache friendly)
CUDA_MEMORY_SHARE = 0.5      # share of the free GPU memory one chunk may use
LIVE_TENSORS_PER_ROW = 16    # batched: [B, C, H, W]-sized float tensors alive per arch at the peak of a cell
LIVE_TENSORS_PER_ROW_UNBATCHED = 4   # unbatched: rows of the shared first cell alive per arch


# ----------------------------------------------------------------------------------------------- arch sets
def distinct_archs(archs: Sequence[tuple], ops: Sequence[str],
                   merge_dead_edges: bool) -> tuple[list[tuple], np.ndarray]:
    """Distinct archs to evaluate (sorted by op index, edge 0 first) and each input arch's position among them."""
    keys = [prune_dead_edges(a) if merge_dead_edges else tuple(a) for a in archs]
    unique = sorted(set(keys), key=lambda a: [ops.index(op) if op in ops else -1 for op in a])
    position = {a: i for i, a in enumerate(unique)}
    return unique, np.array([position[k] for k in keys], dtype=np.int64)


def _bn_uses_batch_stats(bn: nn.BatchNorm2d) -> bool:
    return bn.training or bn.running_mean is None


def ops_preserve_zeros(model: NB201Supernet) -> bool:
    """Whether every cell op maps an all-zero input to zeros (so dead edges can be dropped exactly)."""
    for module in model.cells.modules():
        if isinstance(module, nn.BatchNorm2d) and (module.affine or not _bn_uses_batch_stats(module)):
            return False
        if isinstance(module, nn.Conv2d) and module.bias is not None:
            return False
    return True


# ------------------------------------------------------------------------------------------------ planning
@dataclass
class EdgePlan:
    """One edge of a cell for a chunk of archs: each chosen op runs once per distinct source row."""

    edge: int                           # edge index (EDGES order)
    source: int                         # source node
    groups: list[tuple[str, list[int]]]  # (op, source rows it runs on); outputs are concatenated in this order
    gather: list[int | None]            # per target-node row: its position in the outputs (None: 'none')


@dataclass
class NodePlan:
    """How one intermediate node of a cell is computed for a chunk of archs."""

    rows: int                           # distinct values of this node in the chunk
    edges: list[EdgePlan]               # incoming edges in source order (keeps the per-arch summation order)


def _plan_edge(edge: int, source: int, source_rows: int, ops: Sequence[str], keys: np.ndarray) -> EdgePlan:
    """Plan one edge; keys[r] = op * source_rows + source row feeding target-node row r (-1: 'none')."""
    groups, gather, offset = [], [None] * len(keys), 0
    for code in np.unique(keys[keys >= 0] // source_rows):
        use = np.flatnonzero((keys >= 0) & (keys // source_rows == code))
        rows, take = np.unique(keys[use] % source_rows, return_inverse=True)   # each source row runs once
        groups.append((ops[code], rows.tolist()))
        for r, t in zip(use.tolist(), take.reshape(-1).tolist()):
            gather[r] = offset + t
        offset += len(rows)
    return EdgePlan(edge, source, groups, gather)


def plan_cell(source_map: np.ndarray, source_rows: int, codes: np.ndarray,
              ops: Sequence[str]) -> tuple[list[NodePlan], np.ndarray, int]:
    """Plan a cell for archs whose input is row ``source_map[a]``; codes [A, 6] hold op indices (-1: 'none').

    Returns the node plans, each arch's row of the cell output and the number of output rows.
    """
    maps, rows, nodes = [source_map], [source_rows], []
    for j in range(1, NUM_NODES):
        incoming = [(EDGES.index((i, j)), i) for i in range(j)]
        keys = np.stack([np.where(codes[:, e] >= 0, codes[:, e] * rows[i] + maps[i], -1) for e, i in incoming], 1)
        unique, node_map = np.unique(keys, axis=0, return_inverse=True)   # [R_j, j]: distinct incoming values
        edges = [_plan_edge(e, i, rows[i], ops, unique[:, t]) for t, (e, i) in enumerate(incoming)]
        nodes.append(NodePlan(len(unique), [edge for edge in edges if edge.groups]))
        maps.append(node_map.reshape(-1))
        rows.append(len(unique))
    return nodes, maps[-1], rows[-1]


def plan_network(model: NB201Supernet, archs: Sequence[tuple]) -> tuple[list, list[np.ndarray]]:
    """Plans for every layer of ``model`` (None for reduction blocks) and each arch's row after every layer."""
    ops = model.ops
    codes = np.array([[ops.index(op) if op != NONE else -1 for op in arch] for arch in archs], dtype=np.int64)
    row_map, rows = np.zeros(len(archs), dtype=np.int64), 1          # every arch starts from the shared stem
    plans, maps = [], []
    for layer in model.cells:
        plan = None
        if isinstance(layer, SearchCell):
            plan, row_map, rows = plan_cell(row_map, rows, codes, ops)
        plans.append(plan)
        maps.append(row_map)
    return plans, maps


# ------------------------------------------------------------------------------------------------ forward
def row_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, rows: int) -> torch.Tensor:  # x: [rows*B, C, H, W]
    """BatchNorm with each row's own batch statistics, as a per-arch forward computes it."""
    if rows == 1 or not _bn_uses_batch_stats(bn):
        return bn(x)                                                   # one batch, or per-image running stats
    xf = x.float().unflatten(0, (rows, -1))                            # [R, B, C, H, W]
    var, mean = torch.var_mean(xf, dim=(1, 3, 4), keepdim=True, correction=0)   # [R, 1, C, 1, 1]
    scale = torch.rsqrt(var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.view(1, 1, -1, 1, 1)
    shift = -mean * scale
    if bn.affine:
        shift = shift + bn.bias.view(1, 1, -1, 1, 1)
    return torch.addcmul(shift, xf, scale).flatten(0, 1).to(x.dtype)


def batched_forward(module: nn.Module, x: torch.Tensor, rows: int) -> torch.Tensor:  # x: [rows*B, C, H, W]
    """``module`` applied to ``rows`` stacked sub-network batches, BatchNorm per row."""
    if isinstance(module, nn.BatchNorm2d):
        return row_batch_norm(module, x, rows)
    if isinstance(module, nn.Sequential):
        for child in module:
            x = batched_forward(child, x, rows)
        return x
    if isinstance(module, ResNetBlock):
        main = batched_forward(module.conv_b, batched_forward(module.conv_a, x, rows), rows)
        return main + batched_forward(module.shortcut, x, rows)
    return module(x)                                                   # per-image: ReLU, Conv2d, AvgPool2d, Identity


PER_IMAGE_TYPES = (nn.ReLU, nn.Conv2d, nn.AvgPool2d, nn.Identity, Zero)


def _batchable(module: nn.Module) -> bool:
    if isinstance(module, (nn.Sequential, ResNetBlock)):
        return all(_batchable(child) for child in module.children())
    return isinstance(module, (nn.BatchNorm2d,) + PER_IMAGE_TYPES)


def supports_fast(model: nn.Module) -> bool:
    """Whether ``model`` is an NB201 supernet built from modules this module can batch (else use the simple loop)."""
    if not isinstance(model, NB201Supernet) or type(model).forward_from_stem is not NB201Supernet.forward_from_stem:
        return False
    parts = [op for layer in model.cells if isinstance(layer, SearchCell)
             for edge in layer.edges for op in edge.values()]
    parts += [layer for layer in model.cells if not isinstance(layer, SearchCell)] + [model.head]
    return all(type(layer) in (SearchCell, ResNetBlock) for layer in model.cells) and all(map(_batchable, parts))


class ChunkForward:
    """Logits of a chunk of archs on one test batch, sharing what the archs share."""

    def __init__(self, model: NB201Supernet, archs: Sequence[tuple], batched: bool):
        self.model, self.archs, self.batched = model, list(archs), batched
        self.plans, self.maps = plan_network(model, self.archs)

    def apply(self, module: nn.Module, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """``module`` on every row of ``xs``: one stacked call when batched, else the module itself per row."""
        if isinstance(module, nn.Identity):
            return xs
        if not self.batched or len(xs) == 1:
            return [module(x) for x in xs]
        return list(batched_forward(module, torch.cat(xs), len(xs)).chunk(len(xs)))

    def node(self, cell: SearchCell, plan: NodePlan, nodes: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        """Rows of one node: each edge's ops run once per distinct input, then summed per row in edge order."""
        outputs = [[out for op, rows in edge.groups
                    for out in self.apply(cell.edges[edge.edge][op], [nodes[edge.source][r] for r in rows])]
                   for edge in plan.edges]
        values = []
        for r in range(plan.rows):
            total = None
            for edge, outs in zip(plan.edges, outputs):
                k = edge.gather[r]
                if k is not None:
                    total = outs[k] if total is None else total + outs[k]
            values.append(total if total is not None else torch.zeros_like(nodes[0][0]))
        return values

    def cell(self, cell: SearchCell, plan: list[NodePlan], rows: list[torch.Tensor]) -> list[torch.Tensor]:
        nodes = [rows]
        for node in plan:
            nodes.append(self.node(cell, node, nodes))
        return nodes[-1]

    def logits(self, rows: list[torch.Tensor]) -> list[torch.Tensor]:  # rows of [B, C, H, W] -> rows of [B, classes]
        model = self.model
        if not self.batched or len(rows) == 1:
            return [model.classifier(model.head(x).mean(dim=(2, 3))) for x in rows]
        pooled = batched_forward(model.head, torch.cat(rows), len(rows)).mean(dim=(2, 3))
        return list(model.classifier(pooled).chunk(len(rows)))

    def rest(self, h: torch.Tensor, arch: tuple, start: int) -> torch.Tensor:
        """The model's own forward of one arch from layer ``start`` on (the unbatched path)."""
        for layer in self.model.cells[start:]:
            h = layer(h, arch) if isinstance(layer, SearchCell) else layer(h)
        return self.logits([h])[0]

    def __call__(self, stem: torch.Tensor) -> torch.Tensor:  # stem [B, C, H, W] -> logits [A, B, classes]
        shared = len(self.plans) if self.batched else 1                 # layers run on shared rows; the rest per arch
        rows = [stem]
        for layer, plan in zip(self.model.cells[:shared], self.plans):
            rows = self.cell(layer, plan, rows) if plan is not None else self.apply(layer, rows)
        row_of_arch = self.maps[shared - 1].tolist()
        if self.batched:
            logits = self.logits(rows)
            return torch.stack([logits[r] for r in row_of_arch])
        return torch.stack([self.rest(rows[r], arch, shared) for r, arch in zip(row_of_arch, self.archs)])


# --------------------------------------------------------------------------------------------- evaluation
def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA when asked, else nothing (the CPU stays float32)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()


def auto_chunk_size(stem: torch.Tensor, batched: bool) -> int:
    """Archs per chunk so that a chunk's activations fit the device (stem: one batch's stem output)."""
    if stem.device.type == "cuda":
        budget = CUDA_MEMORY_SHARE * torch.cuda.mem_get_info(stem.device)[0]
    else:
        budget = CPU_CHUNK_BYTES
    row_bytes = stem.numel() * 4 * (LIVE_TENSORS_PER_ROW if batched else LIVE_TENSORS_PER_ROW_UNBATCHED)
    return max(1, int(budget // row_bytes))


@torch.no_grad()
def evaluate_archs_fast(model: NB201Supernet, archs: Sequence[tuple], data: ImageData, batch_size: int = 1000,
                        amp: bool = False, progress: bool = False, chunk_size: int | None = None,
                        batched: bool | None = None, channels_last: bool | None = None,
                        dedupe: bool = True) -> np.ndarray:
    """Top-1 accuracy (%) of every arch on ``data``, sharing work between archs; equals the per-arch loop."""
    if not archs:
        raise ValueError("no architectures to evaluate")
    archs = [model.check_arch(a) for a in archs]
    device = next(model.parameters()).device
    batched = device.type == "cuda" if batched is None else batched
    channels_last = batched and device.type == "cuda" if channels_last is None else channels_last
    model.eval()
    unique, position = distinct_archs(archs, model.ops, dedupe and ops_preserve_zeros(model))
    data = data.to(device)
    correct = torch.zeros(len(unique), device=device)                  # on device: no per-batch host sync
    with autocast(device, amp), channels_last_weights(model, channels_last):
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        stems = [(model.forward_stem(x.contiguous(memory_format=memory_format)), y)   # [B, C, H, W], for every arch
                 for x, y in (data.batch(idx) for idx in torch.arange(len(data), device=device).split(batch_size))]
        chunk = chunk_size or auto_chunk_size(stems[0][0], batched)
        from tqdm.auto import tqdm
        for start in tqdm(range(0, len(unique), chunk), desc="ranking", disable=not progress, leave=False):
            forward = ChunkForward(model, unique[start:start + chunk], batched)
            hits = sum((forward(stem).argmax(-1) == y).sum(1) for stem, y in stems)   # [archs in chunk]
            correct[start:start + len(forward.archs)] = hits.float()
    return (100.0 * correct / len(data)).cpu().numpy()[position]


@contextmanager
def channels_last_weights(model: nn.Module, enabled: bool):
    """Hold ``model``'s conv weights in channels_last inside the block (values unchanged), as before afterwards."""
    convs = [p for p in model.parameters() if p.dim() == 4]
    was = all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    if enabled and not was:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        if enabled and not was:
            model.to(memory_format=torch.contiguous_format)
