"""Command line: ``python -m pada_lite {train,rank} ...`` (``--help`` on each)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .config import ConfigError, RunConfig, override, preset, PRESETS


def _config_from_args(args) -> RunConfig:
    if args.config:
        from .provenance import read_json
        config = RunConfig.from_dict(read_json(Path(args.config)))
    else:
        config = preset(args.preset)
    return override(config, args.set or [])


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="lite", choices=sorted(PRESETS),
                   help="named configuration: lite (CPU, Fashion-MNIST, minutes) or paper (GPU, CIFAR-10, hours)")
    p.add_argument("--config", help="a config.json written by an earlier run (overrides --preset)")
    p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                   help="override one config field, e.g. --set train.epochs=5 --set train.path_sampler=importance "
                        "(sections: space, data, train, rank); repeatable")


def cmd_train(args) -> int:
    from .training import train_supernet
    config = _config_from_args(args)
    out = Path(args.out or f"runs/{config.name}")
    print(f"training {config.name} supernet: {config.train.epochs} epochs, path sampler {config.train.path_sampler}, "
          f"data sampler {config.train.data_sampler} -> {out}")
    result = train_supernet(config, out, resume=not args.restart)
    last = result.history[-1] if result.history else {}
    print(f"done in {result.wall_time_s:.1f} s on {result.device}: train acc {last.get('train_acc', float('nan')):.2f} %, "
          f"loss {last.get('train_loss', float('nan')):.4f}; checkpoint and supernet in {out}")
    return 0


def arch_set(name: str, ops, count: int, seed: int) -> list[tuple]:
    """Named arch lists: conv64 (the 64 conv1x1/conv3x3 archs), sample (random, fixed seed), all."""
    from .spaces import conv_only_archs, enumerate_archs
    if name == "conv64":
        return conv_only_archs()
    archs = enumerate_archs(ops)
    if name == "all":
        return archs
    if name == "sample":
        rng = np.random.default_rng(seed)
        return [archs[i] for i in sorted(rng.choice(len(archs), size=min(count, len(archs)), replace=False))]
    raise ConfigError(f"unknown arch set {name!r}: use conv64, sample or all")


def cmd_rank(args) -> int:
    from .data import load_splits
    from .evaluation import evaluate_archs
    from .metrics import ranking_report
    from .provenance import provenance, write_json
    from .spaces import arch_to_str
    from .training import load_supernet
    model, config = load_supernet(args.run, args.device)
    archs = arch_set(args.archs, config.space.ops, args.count or config.rank.sample_archs, config.rank.sample_seed)
    test = load_splits(config.data).test
    start = time.perf_counter()
    acc = evaluate_archs(model, archs, test, config.rank.batch_size, progress=True)
    wall = time.perf_counter() - start
    payload = {"archs": [arch_to_str(a) for a in archs], "supernet_acc": acc.tolist(),
               **provenance(config, config.train.seed, args.device, wall)}
    if args.ground_truth:
        from .groundtruth import GroundTruth
        truth = GroundTruth.nb201("mirror-json" if args.ground_truth == "nb201" else args.ground_truth)
        payload["metrics"] = ranking_report(truth.accuracies(archs), acc, config.rank.top_percent, config.rank.top_n)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in payload["metrics"].items()))
    out = Path(args.out or Path(args.run) / f"rank_{args.archs}.json")
    write_json(out, payload)
    order = np.argsort(-acc)
    print(f"ranked {len(archs)} archs in {wall:.1f} s ({len(archs) / wall:.2f} archs/s); best by the supernet:")
    for i in order[:min(5, len(order))]:
        print(f"  {acc[i]:6.2f} %  {arch_to_str(archs[i])}")
    print(f"written {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pada_lite",
        description="Train weight-sharing NAS-Bench-201 supernets (SPOS, FairNAS, PA&DA) and rank sub-networks "
                    "with inherited weights. Start with: python -m pada_lite train  (lite preset, CPU, minutes), "
                    "then: python -m pada_lite rank --run runs/lite")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("train", help="train a supernet (checkpoints every epoch; re-running resumes)",
                       description="Train a supernet; re-running the same command resumes from its checkpoint.")
    _add_config_args(p)
    p.add_argument("--out", help="run folder for checkpoint, config and results (default runs/<preset>)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and start over")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("rank", help="evaluate sub-networks with inherited weights and compute ranking metrics",
                       description="Evaluate architectures with the weights of a trained supernet (a run folder).")
    p.add_argument("--run", required=True, help="run folder written by `train` (holds supernet.pt)")
    p.add_argument("--archs", default="conv64", choices=["conv64", "sample", "all"],
                   help="which archs: the 64 conv1x1/conv3x3 archs, a random sample, or the whole space")
    p.add_argument("--count", type=int, help="size of the random sample (default: config rank.sample_archs)")
    p.add_argument("--ground-truth", help="ground truth to compare with: 'nb201' (NB201 CIFAR-10 test accuracies, "
                   "downloaded and sha256-checked) or the path of an official NB201 .pth file")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", help="output JSON (default <run>/rank_<archs>.json)")
    p.set_defaults(func=cmd_rank)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors in the user's input print one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .data import DataError
    from .remote import DataFileError
    from .training import TrainingError
    try:
        return args.func(args)
    except (ConfigError, DataError, DataFileError, TrainingError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
