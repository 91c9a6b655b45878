"""Evaluate sub-networks with weights inherited from the supernet (no grad, batched) and rank them."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch

from .data import ImageData
from .metrics import ranking_report
from .spaces.nb201 import NB201Supernet


@torch.no_grad()
def evaluate_archs(model: NB201Supernet, archs: Sequence[tuple], data: ImageData, batch_size: int = 1000,
                   amp: bool = False, progress: bool = False) -> np.ndarray:
    """Top-1 accuracy (%) of every arch on ``data``; the stem output is computed once per batch and shared."""
    if not archs:
        raise ValueError("no architectures to evaluate")
    archs = [model.check_arch(a) for a in archs]
    device = next(model.parameters()).device
    model.eval()
    data = data.to(device)
    correct = torch.zeros(len(archs), device=device)  # accumulated on device: no per-batch host sync
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()
    from tqdm.auto import tqdm
    batches = torch.arange(len(data), device=device).split(batch_size)
    with autocast:
        for idx in tqdm(batches, desc="ranking", disable=not progress, leave=False):
            x, y = data.batch(idx)
            stem = model.forward_stem(x)
            for a, arch in enumerate(archs):
                correct[a] += (model.forward_from_stem(stem, arch).argmax(1) == y).sum()
    return (100.0 * correct / len(data)).cpu().numpy()


def rank_archs(model: NB201Supernet, archs: Sequence[tuple], data: ImageData, true_accuracies: Sequence[float],
               batch_size: int = 1000, top_percent: float = 5.0, top_n: int = 5) -> dict:
    """Supernet accuracies of ``archs`` and their ranking metrics against ``true_accuracies``."""
    predicted = evaluate_archs(model, archs, data, batch_size)
    report = ranking_report(true_accuracies, predicted, top_percent, top_n)
    report["predicted"] = predicted.tolist()
    return report
