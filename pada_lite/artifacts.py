"""Result artifacts: a ranking's numbers together with where they came from (config, seed, device, wall time)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .metrics import ranking_report
from .provenance import provenance, write_json
from .spaces.nb201 import arch_to_str


def rank_artifact(archs: Sequence[tuple], predicted: Sequence[float], config=None,
                  device: torch.device | str = "cpu", wall_time_s: float | None = None,
                  true_accuracies: Sequence[float] | None = None, seed: int | None = None, **extra) -> dict:
    """JSON-able record of a ranking: archs, supernet accuracies, metrics against the truth (if given), provenance.

    Metrics (Kendall tau, Spearman rho, P@Top-k%, Top-n-rank) use ``config.rank`` when a config is given.
    """
    if len(archs) != len(predicted):
        raise ValueError(f"{len(archs)} archs but {len(predicted)} predicted accuracies")
    record = {"archs": [arch_to_str(a) for a in archs], "supernet_acc": [float(v) for v in predicted]}
    if true_accuracies is not None:
        rank = getattr(config, "rank", None)
        record["true_acc"] = [float(v) for v in true_accuracies]
        record["metrics"] = ranking_report(true_accuracies, predicted, getattr(rank, "top_percent", 5.0),
                                           getattr(rank, "top_n", 5))
    if seed is None and config is not None:
        seed = config.train.seed
    record.update(extra)
    record.update(provenance(config, seed, device, wall_time_s))
    return record


def write_rank_artifact(path: str | Path, *args, **kwargs) -> dict:
    """Write :func:`rank_artifact` to ``path`` (atomically) and return it."""
    record = rank_artifact(*args, **kwargs)
    write_json(Path(path), record)
    return record
