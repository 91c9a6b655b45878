"""Evaluate sub-networks with weights inherited from the supernet (no grad, batched).

``evaluate_archs`` uses :func:`pada_lite.fast_eval.evaluate_archs_fast` (dedupe, shared first cell, arch batching on
CUDA) whenever the model is a plain NB201 supernet, and the per-arch loop :func:`evaluate_archs_simple` otherwise.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .data import ImageData
from .fast_eval import autocast, evaluate_archs_fast, supports_fast
from .spaces.nb201 import NB201Supernet

METHODS = ("auto", "fast", "simple")


@torch.no_grad()
def evaluate_archs_simple(model: NB201Supernet, archs: Sequence[tuple], data: ImageData, batch_size: int = 1000,
                          amp: bool = False, progress: bool = False) -> np.ndarray:
    """Top-1 accuracy (%) of every arch on ``data``, one arch at a time (the stem output is shared per batch)."""
    if not archs:
        raise ValueError("no architectures to evaluate")
    archs = [model.check_arch(a) for a in archs]
    device = next(model.parameters()).device
    model.eval()
    data = data.to(device)
    correct = torch.zeros(len(archs), device=device)  # accumulated on device: no per-batch host sync
    from tqdm.auto import tqdm
    batches = torch.arange(len(data), device=device).split(batch_size)
    with autocast(device, amp):
        for idx in tqdm(batches, desc="ranking", disable=not progress, leave=False):
            x, y = data.batch(idx)
            stem = model.forward_stem(x)
            for a, arch in enumerate(archs):
                correct[a] += (model.forward_from_stem(stem, arch).argmax(1) == y).sum()
    return (100.0 * correct / len(data)).cpu().numpy()


def evaluate_archs(model: NB201Supernet, archs: Sequence[tuple], data: ImageData, batch_size: int = 1000,
                   amp: bool = False, progress: bool = False, method: str = "auto",
                   chunk_size: int | None = None) -> np.ndarray:
    """Top-1 accuracy (%) of every arch on ``data``; ``method``: auto (fast when supported), fast or simple."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {list(METHODS)}")
    if method == "fast" and not supports_fast(model):
        raise ValueError(f"method='fast' needs a plain NB201Supernet, got {type(model).__name__}: use method='simple'")
    if method == "simple" or not supports_fast(model):
        return evaluate_archs_simple(model, archs, data, batch_size, amp, progress)
    return evaluate_archs_fast(model, archs, data, batch_size, amp, progress, chunk_size)


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, arch, batches) -> torch.nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them for path ``arch`` on ``batches`` (SPOS).

    ``batches``: an iterable of image tensors [B, C, H, W] (training images, on the model's device). The statistics
    become the plain average over the batches (momentum None while recalibrating); the model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    seen = 0
    for x in batches:
        model(x, arch)
        seen += 1
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    if norms and not seen:
        raise ValueError("recalibrate_bn got no batches: pass at least one batch of training images")
    return model.eval()
