"""Training throughput (images/s): pada_lite's Trainer versus a reference-style loop, for SPOS and PA&DA.

The reference loop is what the PA&DA code does (train_panda_201.py): a DataLoader over a torchvision-style dataset
(PIL image per sample, CPU transforms: random crop + flip when the preset augments, ToTensor, Normalize), float32,
``.item()`` every step; for PA&DA also the per-sample output-gradient norms copied to the host and every sampled
op's gradient norm read with ``.item()`` every step. Both sides train the same supernet on the same images along
the same paths (the reference replays the paths our trainer drew); each variant is timed on its second epoch (the
first warms up). On the CPU the times are process CPU seconds (see bench_ranking.timed).

    python benchmarks/bench_training.py --threads 1                      # lite preset, CPU, 2,048 images
    python benchmarks/bench_training.py --preset paper --images 12800 --device cuda --workers 8
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_ranking import add_common_args, dataset_or_random, device_from_args, timed  # noqa: E402

from pada_lite.config import override, preset  # noqa: E402
from pada_lite.data import ImageData, Splits  # noqa: E402
from pada_lite.provenance import device_name, write_json  # noqa: E402
from pada_lite.spaces.nb201 import NB201Supernet, ReLUConvBN, SearchCell  # noqa: E402
from pada_lite.training import Trainer  # noqa: E402

SAMPLERS = {"SPOS": ("uniform", "uniform"), "PA&DA": ("importance", "importance")}


class TorchvisionStyle(torch.utils.data.Dataset):
    """Per-sample PIL image + CPU transforms, returning (image, label, index) like the reference's dataset."""

    def __init__(self, data: ImageData, augment: bool):
        from torchvision import transforms
        self.images = data.images.permute(0, 2, 3, 1).squeeze(-1).numpy()       # HWC (HW for one channel)
        self.labels = data.labels.tolist()
        size = data.images.shape[-1]
        crop = [transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip()] if augment else []
        self.transform = transforms.Compose(crop + [transforms.ToTensor(), transforms.Normalize(data.mean, data.std)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[index])), self.labels[index], index


def reference_epoch(model, loader, optimizer, device, pada: bool, paths: list[tuple]) -> None:
    """One epoch of the reference training loop (host syncs every step, as in the PA&DA code) along ``paths``."""
    model.train()
    grad_norms, seen = [], []
    op_norms = [[] for _ in range(len(model.ops))]
    for step, (x, y, idx) in enumerate(loader):
        x, y = x.to(device), y.to(device)
        arch = paths[step % len(paths)]
        optimizer.zero_grad()
        logits = model(x, arch)
        loss = F.cross_entropy(logits, y)
        if pada:
            with torch.no_grad():
                norms = (F.softmax(logits, 1) - F.one_hot(y, logits.shape[1])).norm(dim=-1)
            grad_norms.extend(norms.cpu().numpy())
            seen.extend(idx.numpy())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5)
        optimizer.step()
        if pada:
            record_op_norms(model, arch, op_norms)
        loss.item()
        (logits.argmax(1) == y).float().mean().item()


def record_op_norms(model, arch, op_norms) -> None:
    """The reference reads each sampled conv's gradient norm with .item() after every step."""
    for layer in model.cells:
        if isinstance(layer, SearchCell):
            for e, edge in enumerate(layer.edges):
                op = edge[arch[e]]
                if isinstance(op, ReLUConvBN) and op[1].weight.grad is not None:   # None: the op's node is unused
                    op_norms[model.ops.index(arch[e])].append(op[1].weight.grad.norm().item())


def reference_images_per_s(config, train: ImageData, device, pada: bool, workers: int, paths: list[tuple]) -> float:
    """Reference loop throughput along the same paths as ours (a path's cost varies about 30x in NB201)."""
    torch.manual_seed(0)
    model = NB201Supernet(config.space).to(device)
    tc = config.train
    optimizer = torch.optim.SGD(model.parameters(), tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    loader = torch.utils.data.DataLoader(TorchvisionStyle(train, config.data.augment), batch_size=tc.batch_size,
                                         shuffle=True, num_workers=workers, pin_memory=device.type == "cuda")
    reference_epoch(model, loader, optimizer, device, pada, paths)
    _, seconds = timed(lambda: reference_epoch(model, loader, optimizer, device, pada, paths), device)
    return len(train) / seconds


def ours_images_per_s(config, splits: Splits, samplers: tuple, fused: bool = False) -> tuple[float, list[tuple]]:
    """Trainer throughput on its second epoch, and the paths that epoch trained."""
    path, data = samplers
    trainer = Trainer(override(config, [f"train.path_sampler={path}", f"train.data_sampler={data}"]), splits=splits)
    if fused:
        use_fused_sgd(trainer)
    trainer.run_epoch()
    trainer.epoch, trainer.step = 1, 0
    paths = record_paths(trainer)
    _, seconds = timed(trainer.run_epoch, trainer.device)
    return len(splits.train) / seconds, paths


def record_paths(trainer: Trainer) -> list[tuple]:
    """From now on, the archs the trainer's path sampler draws (filled in as it trains)."""
    paths, sample = [], trainer.path_sampler.sample

    def recording(*args, **kwargs):
        drawn = sample(*args, **kwargs)
        paths.extend(arch for arch, _ in drawn)
        return drawn
    trainer.path_sampler.sample = recording
    return paths


def use_fused_sgd(trainer: Trainer) -> None:
    """Swap the trainer's SGD for the fused implementation (same hyper-parameters and schedule).

    Fused SGD fails on a step where some parameters with gradients have a momentum buffer and others do not yet
    (an op sampled for the first time), so every buffer starts at zero: with dampening 0 that is the same update.
    """
    tc = trainer.config.train
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=tc.lr, momentum=tc.momentum,
                                        nesterov=tc.nesterov, weight_decay=tc.weight_decay, fused=True)
    for p in trainer.model.parameters():
        trainer.optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)
    trainer.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        trainer.optimizer, T_max=tc.epochs * trainer.steps_per_epoch, eta_min=tc.lr_min)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--images", type=int, default=2048, help="training images per epoch")
    p.add_argument("--batch-size", type=int, help="default: the preset's")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the reference loop")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = device_from_args(args)
    config = override(preset(args.preset), ["train.epochs=2", "train.progress=false", f"train.device={args.device}"]
                      + ([f"train.batch_size={args.batch_size}"] if args.batch_size else []))
    train, kind = dataset_or_random(config, "train", args.images)
    splits = Splits(train, None, train.subset(torch.arange(min(len(train), 16))))
    print(f"{args.preset}: {len(train)} {kind} training images, batch {config.train.batch_size}, augment "
          f"{config.data.augment}, amp {config.train.amp and device.type == 'cuda'}, on {device_name(device)}")
    report = {"preset": args.preset, "images": len(train), "data": kind, "batch_size": config.train.batch_size,
              "device": device_name(device), "threads": torch.get_num_threads()}
    for name, samplers in SAMPLERS.items():
        ours, paths = ours_images_per_s(config, splits, samplers)
        fused, _ = ours_images_per_s(config, splits, samplers, fused=True)
        ref = reference_images_per_s(config, train, device, name == "PA&DA", args.workers, paths)
        report[name] = {"reference": round(ref, 1), "ours": round(ours, 1), "ours_fused_sgd": round(fused, 1),
                        "speedup": round(ours / ref, 2), "speedup_fused": round(fused / ref, 2)}
        print(f"  {name:6s} reference {ref:9.1f} img/s | ours {ours:9.1f} img/s ({ours / ref:.2f}x) | "
              f"ours + fused SGD {fused:9.1f} img/s ({fused / ref:.2f}x)")
    if args.out:
        write_json(Path(args.out), report)
    return report


if __name__ == "__main__":
    main()
