"""ImageNet-style loading speed: the library's ImageFolderLoader against a plain torchvision ImageFolder pipeline.

Writes a fake class-per-folder tree of JPEGs at ImageNet's typical size (500 x 375) and times one epoch of each
loader on the CPU, side by side: torchvision's ImageFolder with the classic float pipeline (ToTensor + Normalize in the
workers, float32 batches) and pada_lite's (uint8 crops in the workers, normalisation where the batch lands).

    python benchmarks/bench_imagefolder.py --images 256 --workers 0 2
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def fake_tree(root: Path, images: int, classes: int = 4) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / "train" / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        noise = rng.integers(0, 256, (375 // 8, 500 // 8, 3), dtype=np.uint8)     # smooth-ish content compresses
        Image.fromarray(noise).resize((500, 375)).save(folder / f"{i}.jpg", quality=90)


def plain_loader(root: Path, batch_size: int, workers: int):
    from torchvision import datasets, transforms
    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    data = datasets.ImageFolder(str(root / "train"), tf)
    return torch.utils.data.DataLoader(data, batch_size, shuffle=True, num_workers=workers, drop_last=True)


def library_loader(root: Path, batch_size: int, workers: int):
    from pada_lite.data import ImageFolderLoader, imagenet_folder
    loader = ImageFolderLoader(imagenet_folder(root, "train"), batch_size, workers=workers)
    return loader.epoch(0)


def images_per_second(batches) -> float:
    start, count = time.perf_counter(), 0
    for batch in batches:
        count += len(batch[1])
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    from pada_lite.provenance import device_name
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fake_tree(root, args.images)
        print(f"{args.images} JPEGs of 500 x 375, batch {args.batch_size}, {device_name('cpu')}")
        for workers in args.workers:
            plain = images_per_second(plain_loader(root, args.batch_size, workers))
            ours = images_per_second(library_loader(root, args.batch_size, workers))
            print(f"workers {workers}: torchvision float pipeline {plain:7.1f} img/s | pada_lite {ours:7.1f} img/s "
                  f"| ratio {ours / plain:.2f}")


if __name__ == "__main__":
    main()
