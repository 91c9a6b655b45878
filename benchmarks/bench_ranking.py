"""Ranking throughput: pada_lite's fast evaluation versus a reference-style per-arch loop, side by side.

The reference loop is what the PA&DA code does (rank_func.py): for each arch, for each batch of a DataLoader,
``model(x, arch)`` and an accuracy read back with ``.item()``; float32, no sharing between archs.

    python benchmarks/bench_ranking.py                           # lite preset, CPU: 64 conv archs on 2,000 images
    python benchmarks/bench_ranking.py --preset paper --archs sample --count 256 --device cuda
    python benchmarks/bench_ranking.py --preset paper --archs all --skip-reference --device cuda   # full ranking

Weights are random (timing only) unless --run names a trained run folder. Without CIFAR-10, the paper preset
times random CIFAR-shaped tensors and says so.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pada_lite.cli import arch_set  # noqa: E402
from pada_lite.config import override, preset  # noqa: E402
from pada_lite.data import STATS, DataError, ImageData, load_splits  # noqa: E402
from pada_lite.evaluation import evaluate_archs_simple  # noqa: E402
from pada_lite.fast_eval import distinct_archs, evaluate_archs_fast, ops_preserve_zeros  # noqa: E402
from pada_lite.provenance import device_name, write_json  # noqa: E402
from pada_lite.spaces.nb201 import NB201Supernet  # noqa: E402

FULL_SPACE = 15625


def reference_accuracies(model, archs, data: ImageData, batch_size: int, device: torch.device) -> np.ndarray:
    """The reference ranking loop: per arch, per DataLoader batch, forward and ``.item()``."""
    x, y = data.batch(torch.arange(len(data)))                     # normalised on the CPU, like ToTensor+Normalize
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size,
                                         shuffle=False, pin_memory=device.type == "cuda")
    model.eval()
    accuracies = []
    with torch.no_grad():
        for arch in archs:
            correct = 0
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                correct += (model(xb, arch).argmax(1) == yb).sum().item()
            accuracies.append(100.0 * correct / len(data))
    return np.array(accuracies)


def dataset_or_random(config, split: str, count: int) -> tuple[ImageData, str]:
    """``count`` images of the preset's dataset split, or random tensors of its shape when it is not installed."""
    sizes = [f"data.test_size={count}", "data.train_size=1"] if split == "test" else [f"data.train_size={count}"]
    try:
        return getattr(load_splits(override(config, sizes).data), split), "real"
    except DataError as err:
        cifar = config.data.dataset.startswith("cifar")
        size = config.data.image_size or (32 if cifar else 28)
        shape = (3 if cifar else 1, size, size)
        print(f"{config.data.dataset} not found ({str(err)[:60]}...): timing on random {config.data.dataset}-shaped "
              f"tensors {shape}")
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (count, *shape), generator=gen, dtype=torch.uint8)
        mean, std = STATS[config.data.dataset]
        return ImageData(images, torch.randint(0, 10, (count,), generator=gen), mean, std, 10), "random"


def timed(fn, device: torch.device):
    """(result, seconds) of ``fn()``: wall time on CUDA (synchronised), process CPU time on the CPU.

    CPU time, not wall time, on the CPU: it does not count the time other processes of a busy machine hold the
    cores (run with --threads 1, where CPU time and wall time agree on an idle machine).
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    start = clock()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, clock() - start


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Options both benchmarks take: preset, device, threads, JSON output."""
    p.add_argument("--preset", default="lite", choices=["lite", "paper"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 gives stable timings on a busy machine)")
    p.add_argument("--out", help="write the figures as JSON here")


def device_from_args(args: argparse.Namespace) -> torch.device:
    """Apply --threads and return the --device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.device(args.device)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--archs", default="conv64", choices=["conv64", "sample", "all"])
    p.add_argument("--count", type=int, default=64, help="archs of --archs sample")
    p.add_argument("--images", type=int, default=2000, help="test images (paper: 10000 is the full test set)")
    p.add_argument("--batch-size", type=int, help="evaluation batch (BN statistics); default: the preset's")
    p.add_argument("--chunk-size", type=int, help="archs per fast-path chunk (default: fit memory)")
    p.add_argument("--no-amp", action="store_true", help="fast path in float32 on CUDA too")
    p.add_argument("--channels-last", action="store_true", help="fast path with channels_last on the CPU too")
    p.add_argument("--skip-reference", action="store_true", help="time the fast path only")
    p.add_argument("--simple", action="store_true", help="also time pada_lite's per-arch loop (evaluate_archs_simple)")
    p.add_argument("--run", help="a trained run folder (supernet.pt) instead of random weights")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = device_from_args(args)
    config = preset(args.preset)
    torch.manual_seed(0)
    model = NB201Supernet(config.space).to(device)
    if args.run:
        from pada_lite.training import load_supernet
        model, config = load_supernet(args.run, device)
    archs = arch_set(args.archs, config.space.ops, args.count, 0)
    data, kind = dataset_or_random(config, "test", args.images)
    batch_size = args.batch_size or config.rank.batch_size
    amp = device.type == "cuda" and not args.no_amp
    distinct = len(distinct_archs(archs, model.ops, ops_preserve_zeros(model.eval()))[0])
    print(f"{args.preset}: {len(archs)} archs ({distinct} distinct functions) x {len(data)} {kind} images, batch "
          f"{batch_size}, on {device_name(device)}; fast path: amp={amp}; "
          f"{'wall' if device.type == 'cuda' else 'process CPU'} seconds")
    fast, fast_s = timed(lambda: evaluate_archs_fast(model, archs, data.to(device), batch_size, amp=amp,
                                                     chunk_size=args.chunk_size,
                                                     channels_last=args.channels_last or None), device)
    report = {"preset": args.preset, "archs": len(archs), "distinct": distinct, "images": len(data), "data": kind,
              "batch_size": batch_size, "device": device_name(device), "threads": torch.get_num_threads(),
              "fast_s": round(fast_s, 3), "fast_archs_per_s": round(len(archs) / fast_s, 3),
              "fast_full_space_estimate_s": round(fast_s / distinct * 9445, 1)}
    print(f"  fast      {fast_s:9.2f} s  {len(archs) / fast_s:9.2f} archs/s")
    if args.simple:
        _, simple_s = timed(lambda: evaluate_archs_simple(model, archs, data.to(device), batch_size), device)
        report.update(simple_s=round(simple_s, 3), speedup_vs_simple=round(simple_s / fast_s, 2))
        print(f"  simple    {simple_s:9.2f} s  {len(archs) / simple_s:9.2f} archs/s  "
              f"(fast is {simple_s / fast_s:.2f}x)")
    if not args.skip_reference:
        ref, ref_s = timed(lambda: reference_accuracies(model, archs, data, batch_size, device), device)
        diff = np.abs(np.round(ref * len(data) / 100) - np.round(fast * len(data) / 100))   # in correct images
        report.update(reference_s=round(ref_s, 3), reference_archs_per_s=round(len(archs) / ref_s, 3),
                      speedup=round(ref_s / fast_s, 2), archs_with_different_accuracy=int((diff > 0).sum()),
                      max_difference_in_correct_images=int(diff.max()))
        print(f"  reference {ref_s:9.2f} s  {len(archs) / ref_s:9.2f} archs/s")
        print(f"  speedup {ref_s / fast_s:.2f}x; correct-image counts differ for {int((diff > 0).sum())} of "
              f"{len(archs)} archs (max {int(diff.max())} images)")
    print(f"  all {FULL_SPACE} NB201 cells (9445 distinct) at this rate: ~{report['fast_full_space_estimate_s']:.0f} s "
          "(rough: the cost per arch depends on its ops)")
    if args.out:
        write_json(Path(args.out), report)
    return report


if __name__ == "__main__":
    main()
