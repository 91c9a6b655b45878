"""A short PA&DA run of the paper preset at full size: does the reference setting train end to end, and how fast?

The paper preset is NAS-Bench-201 on CIFAR-10 (C=16, 5 cells per stage, batch 256, AMP and channels_last on CUDA);
here it trains with both importance samplers (PA&DA) for ``--epochs`` epochs on ``--images`` images. Where CIFAR-10
is not installed (it cannot be downloaded on every machine), the run trains on random tensors of CIFAR-10's shape
(uint8, 3×32×32, random labels) and records ``"data": "random"``: the accuracy is then meaningless, the throughput
and the code path are the real ones.

    python benchmarks/bench_paper_run.py --device cuda --out data/results/gpu/paper_run.json   # 2 epochs, 50,000 images
    torchrun --standalone --nproc_per_node=1 benchmarks/bench_paper_run.py --distributed --epochs 1 --images 5000
    python benchmarks/bench_paper_run.py --device cpu --images 64 --epochs 1 --set space.cells_per_stage=1   # tiny

``--distributed`` trains through ``pada_lite.distributed.train_distributed`` (run it under torchrun); rank 0 writes
the JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_ranking import add_common_args, dataset_or_random, device_from_args  # noqa: E402

from pada_lite.config import override, preset  # noqa: E402
from pada_lite.data import Splits  # noqa: E402
from pada_lite.provenance import device_name, write_json  # noqa: E402
from pada_lite.training import Trainer  # noqa: E402

PADA = ["train.path_sampler=importance", "train.data_sampler=importance"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.set_defaults(preset="paper")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--images", type=int, default=50000, help="training images (CIFAR-10 has 50,000)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override the preset (repeatable), e.g. space.cells_per_stage=1 for a tiny dry run")
    p.add_argument("--distributed", action="store_true", help="train with pada_lite.distributed (under torchrun)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = device_from_args(args)
    config = override(preset(args.preset), PADA + [f"train.epochs={args.epochs}", "train.progress=false",
                                                   f"train.device={device}"] + args.set)
    train, kind = dataset_or_random(config, "train", args.images)
    splits = Splits(train, None, train.subset(torch.arange(min(len(train), 256))))
    if args.distributed:
        from pada_lite.distributed import train_distributed
        result = train_distributed(config, None, splits)
    else:
        result = Trainer(config, None, splits).run()
    last = result.history[-1]
    report = {"preset": args.preset, "method": "PA&DA", "epochs": args.epochs, "images": len(train), "data": kind,
              "distributed": args.distributed, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
              "device": device_name(device), "amp": config.train.amp and device.type == "cuda",
              "wall_time_s": round(result.wall_time_s, 2),
              "images_per_s": round(args.epochs * len(train) / result.wall_time_s, 1),
              "final_train_loss": round(float(last["train_loss"]), 4), "overrides": args.set}
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{args.preset} PA&DA: {args.epochs} epochs x {len(train):,} {kind} images on {report['device']} in "
              f"{result.wall_time_s:.1f} s ({report['images_per_s']:,.0f} img/s), final train loss "
              f"{report['final_train_loss']:.3f}"
              + (f" (torchrun, {report['world_size']} process)" if args.distributed else ""))
        if args.out:
            write_json(Path(args.out), report)
    return report


if __name__ == "__main__":
    main()
