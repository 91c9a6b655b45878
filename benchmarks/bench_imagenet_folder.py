"""The MobileNet full tier end to end on a synthetic ImageNet folder: search (supernet + evolution under a FLOPs limit)
and a short retraining of the searched arch, through the library's folder loader, with the full preset's AMP and
channels_last on CUDA.

Writes a class-per-folder tree of JPEGs (``train/`` and ``val/``; smooth random pixels tinted by class) into a
temporary folder, then runs the library's code paths on it: ``mobilenet_search.full()`` shrunk by the flags below
(epochs, images, batch, search budget; the space stays the ProxylessNAS space), ``run_search`` (supernet trained from
``data.folder_splits`` through ``ImageFolderLoader``, the search's images decoded once), then ``retrain_arch`` on
``imagenet_sources`` with the full retraining protocol shortened to ``--retrain-epochs``. Under torchrun the retraining
joins the process group, so it goes through ``DistributedRetrainer`` (DDP; NCCL on CUDA). The command line cannot
shrink the full preset (``search --space mobilenet`` takes no ``--set``), hence the library calls.

    torchrun --standalone --nproc_per_node=1 benchmarks/bench_imagenet_folder.py --out data/results/gpu/imagenet.json
    python benchmarks/bench_imagenet_folder.py --device cpu --threads 1 --classes 3 --train-images 36 \\
        --val-images 6 --valid-images 8 --jpeg-side 40 --image-size 32 --batch-size 8 --retrain-batch-size 8 \\
        --epochs 1 --workers 1 --flops-limit 8 --population 4 --iterations 2            # tiny, CPU, seconds

Records (``--out``, written after every phase, so a run stopped by a time limit leaves what it measured): images/s
of loading alone, of supernet training (its last epoch, and all epochs) and of retraining, the ratio of supernet
training to loading alone (near 1: the loader limits training), peak GPU memory per phase, the searched arch, its
FLOPs and whether they are under the limit, the device and ``"data": "synthetic"`` (accuracies are meaningless).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pada_lite import mobilenet_search as ms  # noqa: E402
from pada_lite.data import ImageFolderLoader, folder_splits  # noqa: E402
from pada_lite.provenance import device_name, write_json  # noqa: E402
from pada_lite.spaces.mobilenet import FlopsTable  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads of the main process")
    p.add_argument("--workers", type=int, default=12, help="loader worker processes (decoding)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--train-images", type=int, default=6400, help="JPEGs in train/ (all classes)")
    p.add_argument("--val-images", type=int, default=500, help="JPEGs in val/ (the retraining's test images)")
    p.add_argument("--valid-images", type=int, default=256, help="train/ images held out for the search's fitness")
    p.add_argument("--jpeg-side", type=int, default=256, help="side of the written JPEGs (px)")
    p.add_argument("--image-size", type=int, default=224, help="crop side the networks see (the space's input size)")
    p.add_argument("--batch-size", type=int, default=256, help="supernet batch (the full preset: 1024 over its GPUs)")
    p.add_argument("--retrain-batch-size", type=int, default=256, help="retraining batch (the full preset: 256)")
    p.add_argument("--epochs", type=int, default=2, help="supernet epochs (the last one's speed is the steady one)")
    p.add_argument("--retrain-epochs", type=int, default=1)
    p.add_argument("--flops-limit", type=float, help="M FLOPs (default: the full preset's, for 224 px)")
    p.add_argument("--population", type=int, default=10, help="evolution population (parents: half of it)")
    p.add_argument("--iterations", type=int, default=2, help="evolution generations (random search: same budget)")
    p.add_argument("--workdir", help="where the folder and the runs go (default: a temporary folder, removed)")
    p.add_argument("--out", help="write the record as JSON here")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------- the folder
def write_jpeg(path: Path, label: int, side: int, seed: int) -> None:
    """One smooth random image of ``side`` x ``side`` whose channel ``label % 3`` is brightened (learnable)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 160, (max(side // 8, 2), max(side // 8, 2), 3), dtype=np.uint8)
    pixels[:, :, label % 3] += 95
    Image.fromarray(pixels).resize((side, side), Image.BILINEAR).save(path, quality=90)


def write_folder(root: Path, classes: int, train_images: int, val_images: int, side: int) -> None:
    """``root/train/cK/*.jpg`` and ``root/val/cK/*.jpg``: images dealt round-robin to ``classes`` classes."""
    jobs = []
    for s, (split, count) in enumerate((("train", train_images), ("val", val_images))):
        for c in range(classes):
            (root / split / f"c{c}").mkdir(parents=True, exist_ok=True)
        jobs += [(root / split / f"c{i % classes}" / f"{i}.jpg", i % classes, side, s * 10**7 + i)
                 for i in range(count)]
    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:   # PIL encodes without the GIL
        list(pool.map(lambda job: write_jpeg(*job), jobs))


# ------------------------------------------------------------------------------------------ the configs
def search_configs(args, root: Path, device: torch.device):
    """The full preset with this run's sizes: the ProxylessNAS space at ``--image-size``, AMP and channels_last kept."""
    run, search = ms.full()
    space = dataclasses.replace(run.space, input_size=args.image_size)
    data = dataclasses.replace(run.data, root=str(root), image_size=args.image_size, valid_size=args.valid_images)
    train = dataclasses.replace(run.train, epochs=args.epochs, batch_size=args.batch_size, device=str(device),
                                progress=False)
    run = dataclasses.replace(run, name="mobilenet-full-synthetic", space=space, data=data, train=train)
    bn_batch = min(128, args.batch_size)
    search = dataclasses.replace(search, flops_limit=args.flops_limit or search.flops_limit,
                                 population=args.population, iterations=args.iterations,
                                 parents=max(2, args.population // 2), bn_batches=2, bn_batch_size=bn_batch,
                                 eval_batch_size=args.batch_size)
    return run, search


# ------------------------------------------------------------------------------------------ the phases
def peak_gib(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last reset (GiB), then reset; None on the CPU."""
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return round(peak, 2)


def loading_speed(run, workers: int, device: torch.device) -> float:
    """Images/s of one epoch of the supernet's training loader alone (decode, crop, copy, normalise; no model)."""
    data = folder_splits(run.data, workers)
    loader = ImageFolderLoader(data.train, run.train.batch_size, run.train.seed, workers, device, True,
                               run.train.channels_last and device.type == "cuda")
    start, count = time.perf_counter(), 0
    for x, _, _ in loader.epoch(0):
        count += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return round(count / (time.perf_counter() - start), 1)


def supernet_record(search: dict, images: int) -> dict:
    """Supernet speed from the search's training history (cumulative seconds per epoch)."""
    elapsed = [h["elapsed_s"] for h in search["supernet_history"]]
    last = elapsed[-1] - (elapsed[-2] if len(elapsed) > 1 else 0.0)
    return {"epochs": len(elapsed), "images_per_epoch": images, "wall_time_s": round(elapsed[-1], 2),
            "images_per_s": round(len(elapsed) * images / elapsed[-1], 1),
            "last_epoch_images_per_s": round(images / last, 1),
            "final_train_loss": round(float(search["supernet_history"][-1]["train_loss"]), 4)}


def search_record(search: dict, run, config) -> dict:
    """The searched arch, its FLOPs (recounted from the space's table) and whether every candidate kept the limit."""
    arch = search["arch"].split("-")
    mflops = FlopsTable(run.space).mflops(arch)
    candidates = search["evolution"]["mflops"] + search.get("random", {}).get("mflops", [])
    return {"arch": search["arch"], "mflops": round(mflops, 3), "flops_limit": config.flops_limit,
            "under_flops_limit": mflops <= config.flops_limit and max(candidates) <= config.flops_limit,
            "candidates": len(candidates), "fitness": search["fitness"],
            "search_s": round(search["evolution_s"] + search.get("random_s", 0.0), 2)}


def retrain(args, run, arch: str, root: Path, out: Path, device: torch.device) -> dict:
    """Retrain ``arch`` from the folder with the full protocol for ``--retrain-epochs`` (DDP under torchrun)."""
    config = dataclasses.replace(ms.retrain_preset("full"), epochs=args.retrain_epochs,
                                 batch_size=args.retrain_batch_size, eval_batch_size=args.retrain_batch_size,
                                 device=str(device))
    env = None
    if "RANK" in os.environ:                    # under torchrun: retrain as the CLI does with several processes
        from pada_lite.distributed import init_distributed
        env = init_distributed()
    try:
        train, test = ms.imagenet_sources(root, args.image_size, config.batch_size, config.seed, args.workers, device,
                                          config.channels_last and device.type == "cuda",
                                          rank=env.rank if env else 0, world_size=env.world_size if env else 1)
        space = dataclasses.replace(run.space, dropout=ms.FULL_RETRAIN_DROPOUT)
        result = ms.retrain_arch(tuple(arch.split("-")), space, config, train, test, out, resume=False)
    finally:
        if env is not None:
            import torch.distributed as dist
            dist.destroy_process_group()
    images = len(train.loader) * config.batch_size
    return {"epochs": config.epochs, "images_per_epoch": images, "wall_time_s": round(result.wall_time_s, 2),
            "images_per_s": round(config.epochs * images / result.wall_time_s, 1),
            "distributed": env is not None, "params": result.params,
            "final_train_loss": round(float(result.history[-1]["train_loss"]), 4), "test_acc": result.test_acc}


def run_all(args, work: Path, record: dict, save) -> None:
    """Write the folder, time loading alone, search, retrain; ``save()`` after each phase."""
    device = torch.device(args.device)
    root = work / "imagenet"
    start = time.perf_counter()
    write_folder(root, args.classes, args.train_images, args.val_images, args.jpeg_side)
    record["folder_s"] = round(time.perf_counter() - start, 2)
    save("folder")
    run, search = search_configs(args, root, device)
    record.update(amp=run.train.amp and device.type == "cuda",
                  channels_last=run.train.channels_last and device.type == "cuda", flops_limit=search.flops_limit,
                  search_config=search.to_dict())
    record["loader_images_per_s"] = loading_speed(run, args.workers, device)
    save("loading")
    peak_gib(device)
    result = ms.run_search(run, search, work / "search", resume=False, workers=args.workers)
    supernet = supernet_record(result, args.train_images - args.valid_images)
    record.update(supernet={**supernet, "peak_gpu_gib": peak_gib(device),
                            "over_loader": round(supernet["last_epoch_images_per_s"] / record["loader_images_per_s"],
                                                 3)},
                  search=search_record(result, run, search))
    save("search")
    record["retrain"] = {**retrain(args, run, result["arch"], root, work / "retrain", device),
                         "peak_gpu_gib": peak_gib(device)}
    save("retrain")


def main(argv=None) -> dict:
    args = parse_args(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.exit("bench_imagenet_folder.py runs one process (torchrun --nproc_per_node=1); for several GPUs use "
                 "`torchrun -m pada_lite search --space mobilenet --preset full`")
    if args.threads:
        torch.set_num_threads(args.threads)
    record = {"data": "synthetic", "device": device_name(args.device), "torchrun": "RANK" in os.environ,
              "classes": args.classes, "train_images": args.train_images, "val_images": args.val_images,
              "valid_images": args.valid_images, "jpeg_side": args.jpeg_side, "image_size": args.image_size,
              "batch_size": args.batch_size, "retrain_batch_size": args.retrain_batch_size, "workers": args.workers,
              "phases_done": []}
    start = time.perf_counter()

    def save(phase: str) -> None:
        record["phases_done"].append(phase)
        record["wall_time_s"] = round(time.perf_counter() - start, 2)
        print(f"[{record['wall_time_s']:7.1f} s] {phase} done", flush=True)
        if args.out:
            write_json(Path(args.out), record)

    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        run_all(args, Path(work), record, save)
    s, r = record["supernet"], record["retrain"]
    print(f"{record['device']}: loading alone {record['loader_images_per_s']:,.0f} img/s; supernet "
          f"{s['last_epoch_images_per_s']:,.0f} img/s (last epoch, {s['over_loader']:.2f} of loading), peak "
          f"{s['peak_gpu_gib'] or '-'} GiB; retrain {r['images_per_s']:,.0f} img/s, peak {r['peak_gpu_gib'] or '-'} "
          f"GiB; searched {record['search']['mflops']:.1f} M FLOPs (limit {record['flops_limit']:g}): "
          f"{'under' if record['search']['under_flops_limit'] else 'OVER'}")
    return record


if __name__ == "__main__":
    main()
