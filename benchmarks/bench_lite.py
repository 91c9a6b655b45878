"""Lite-preset throughput on this machine: training images/s (SPOS) and archs ranked/s.

    python benchmarks/bench_lite.py [--steps 60] [--archs 32] [--test-size 10000]
"""
from __future__ import annotations

import argparse
import time

import torch

from pada_lite.config import lite, override
from pada_lite.data import load_splits
from pada_lite.evaluation import evaluate_archs
from pada_lite.provenance import device_name
from pada_lite.spaces import enumerate_archs
from pada_lite.training import Trainer


def training_images_per_second(trainer: Trainer, steps: int) -> float:
    """Images/s of SPOS steps (uniform paths) over ``steps`` batches, after 5 warm-up steps."""
    bs = trainer.config.train.batch_size
    order = trainer.data_sampler.epoch_order(0, 1)
    stats = torch.zeros(3)
    batches = [order[i * bs:(i + 1) * bs] for i in range(steps + 5)]
    for idx in batches[:5]:
        trainer.train_step(*trainer.train_data.batch(idx), idx, stats)
    start = time.perf_counter()
    for idx in batches[5:]:
        trainer.train_step(*trainer.train_data.batch(idx), idx, stats)
    return steps * bs / (time.perf_counter() - start)


def archs_per_second(trainer: Trainer, count: int, test) -> float:
    """Archs ranked per second on ``test`` (a random sample of the 5-op space)."""
    gen = torch.Generator().manual_seed(0)
    space = enumerate_archs(trainer.config.space.ops)
    archs = [space[i] for i in torch.randperm(len(space), generator=gen)[:count].tolist()]
    evaluate_archs(trainer.model, archs[:2], test, trainer.config.rank.batch_size)  # warm-up
    start = time.perf_counter()
    evaluate_archs(trainer.model, archs, test, trainer.config.rank.batch_size)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60, help="training steps timed")
    parser.add_argument("--archs", type=int, default=32, help="archs ranked")
    parser.add_argument("--test-size", type=int, default=10000, help="test images per arch")
    args = parser.parse_args()
    config = override(lite(), ["train.progress=false", f"data.test_size={args.test_size}"])
    splits = load_splits(config.data)
    trainer = Trainer(config, splits=splits)
    print(f"lite preset on {device_name(trainer.device)}: C={config.space.channels}, "
          f"{config.space.cells_per_stage} cell/stage, {config.data.image_size}x{config.data.image_size}, "
          f"batch {config.train.batch_size}")
    print(f"training (SPOS): {training_images_per_second(trainer, args.steps):,.0f} images/s")
    print(f"ranking: {archs_per_second(trainer, args.archs, splits.test):.2f} archs/s "
          f"({args.test_size} test images each)")


if __name__ == "__main__":
    main()
