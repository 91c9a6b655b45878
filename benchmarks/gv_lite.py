"""Gradient variance (GV, see pada_lite.variance) per epoch of SPOS and PA&DA on the lite preset: numbers, not a claim.

Both runs share the data and seed; GV is measured at the end of every epoch with each run's own current sampling
distributions (M draws of (path, batch)). With the reference τ schedule PA&DA samples uniformly in epochs 1 and 2.

    .venv/bin/python benchmarks/gv_lite.py [--epochs 5] [--samples 16] [--batch 64] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import torch

from pada_lite.config import lite, override
from pada_lite.data import load_splits
from pada_lite.training import Trainer
from pada_lite.variance import gradient_variance_callback

RUNS = {"SPOS": [], "PA&DA": ["train.path_sampler=importance", "train.data_sampler=importance"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=16, help="M, (path, batch) draws per GV measurement")
    parser.add_argument("--batch", type=int, default=64, help="batch size of each draw")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = override(lite(), ["train.progress=false", f"train.epochs={args.epochs}"])
    splits = load_splits(base.data)
    print(f"lite preset, {args.epochs} epochs, GV over M={args.samples} draws of batch {args.batch}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'run':6s} {'epoch':>5s} {'train_loss':>10s} {'train_acc':>9s} {'GV':>10s} {'GV conv1x1':>10s} "
          f"{'GV conv3x3':>10s} {'GV s':>5s}")
    for name, changes in RUNS.items():
        callback = timed(gradient_variance_callback(args.samples, args.batch))
        result = Trainer(override(base, changes), splits=splits, epoch_callbacks=[callback]).run(resume=False)
        for h in result.history:
            print(f"{name:6s} {h['epoch']:5d} {h['train_loss']:10.4f} {h['train_acc']:9.2f} {h['grad_var']:10.3e} "
                  f"{h['grad_var/nor_conv_1x1']:10.3e} {h['grad_var/nor_conv_3x3']:10.3e} {h['gv_seconds']:5.1f}")


def timed(callback):
    """The callback, also logging how long it took (``gv_seconds``)."""

    def run(trainer, summary):
        start = time.perf_counter()
        values = callback(trainer, summary)
        return {**values, "gv_seconds": time.perf_counter() - start}

    return run


if __name__ == "__main__":
    main()
