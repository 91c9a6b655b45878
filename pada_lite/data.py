"""Datasets as in-memory tensors with per-sample indices, plus loaders for large image folders.

The lite tier holds Fashion-MNIST (optionally resized) in memory as uint8 tensors; a batch is a slice by dataset
index, normalised (and, for CIFAR, augmented) on the device, so data importance sampling sees every sample's index.
ImageNet stays on disk: :class:`ImageFolderLoader` reads any order of dataset indices (the data sampler's) in worker
processes, so the same samplers and the same training loop serve both.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .config import DataConfig

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                       "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
STATS = {"fashion_mnist": ((0.2860,), (0.3530,)),
         "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
         "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
         "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}
NUM_CLASSES = {"fashion_mnist": 10, "cifar10": 10, "cifar100": 100, "imagenet": 1000}
CLASS_NAMES = {  # label -> name, for plots
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")}


class DataError(RuntimeError):
    """Raised when a dataset is missing, incomplete or corrupt; the message says how to fix it."""


@dataclass
class ImageData:
    """Images and labels in memory; ``batch(indices)`` gives normalised float batches on the data's device."""

    images: torch.Tensor   # [N, C, H, W] uint8
    labels: torch.Tensor   # [N] int64
    mean: tuple
    std: tuple
    num_classes: int

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels: the data files do not match")
        if len(self.images) == 0:
            raise DataError("the dataset is empty: check data.train_size / data.test_size and the data files")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device) -> "ImageData":
        """Copy onto ``device`` (e.g. keep the whole dataset resident on the GPU)."""
        return ImageData(self.images.to(device), self.labels.to(device), self.mean, self.std, self.num_classes)

    def subset(self, indices: torch.Tensor) -> "ImageData":
        """A new ImageData holding only ``indices`` (renumbered from 0)."""
        return ImageData(self.images[indices], self.labels[indices], self.mean, self.std, self.num_classes)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:  # uint8 [B,C,H,W] -> float [B,C,H,W]
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float().div_(255.0) - mean) / std

    def batch(self, indices: torch.Tensor, augment: bool = False,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images [B,C,H,W] and labels [B] of dataset ``indices`` (augmented if asked)."""
        indices = indices.to(self.device)
        x = self.normalise(self.images[indices])
        if augment:
            x = crop_and_flip(x, generator)
        return x, self.labels[indices]


def crop_and_flip(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding + random horizontal flip, batched on x's device. x: [B,C,H,W]."""
    b, _, h, w = x.shape
    gen_device = generator.device if generator is not None else torch.device("cpu")
    shifts = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=gen_device).to(x.device)
    flips = torch.rand(b, generator=generator, device=gen_device).to(x.device) < 0.5
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (torch.arange(h, device=x.device).view(1, h) + shifts[:, :1]).view(b, 1, h, 1)
    rows = rows.expand(b, x.shape[1], h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = torch.arange(w, device=x.device).view(1, w) + shifts[:, 1:]
    cols = torch.where(flips.view(b, 1), cols.flip(1), cols)
    return out.gather(3, cols.view(b, 1, 1, w).expand(b, x.shape[1], h, w))


# ----------------------------------------------------------------------------------------- Fashion-MNIST
def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), the format of the original MNIST/Fashion-MNIST files."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}. The file is truncated or corrupt: delete it and reinstall "
                        "(apt-get install --reinstall dataset-fashion-mnist) or re-download it") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} holds {data.size} bytes of data but its header says {shape}: the file is "
                        "truncated; delete it and reinstall or re-download it")
    return data.reshape(shape)


def _find_idx(root: Path, stem: str) -> Path | None:
    for candidate in (root / f"{stem}.gz", root / stem, root / "FashionMNIST" / "raw" / f"{stem}.gz",
                      root / "FashionMNIST" / "raw" / stem):
        if candidate.exists():
            return candidate
    return None


def fashion_mnist_root(config: DataConfig) -> Path:
    """Folder with the Fashion-MNIST IDX files: config.root, $PADA_LITE_DATA, Debian's, or a torchvision download."""
    explicit = config.root or os.environ.get("PADA_LITE_DATA")
    if explicit:
        root = Path(explicit).expanduser()
        if not root.is_dir():
            raise DataError(f"Fashion-MNIST folder {root} does not exist (from "
                            f"{'data.root' if config.root else '$PADA_LITE_DATA'}): point it at the folder holding "
                            "train-images-idx3-ubyte.gz etc., or unset it to use the defaults")
        return root
    if _find_idx(DEBIAN_FASHION_MNIST, FASHION_MNIST_FILES["train"][0]):
        return DEBIAN_FASHION_MNIST
    if config.download:
        from torchvision.datasets import FashionMNIST
        root = _download_root()
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
        return root
    raise DataError("Fashion-MNIST not found. Install it with `apt-get install dataset-fashion-mnist` (Debian, "
                    f"files in {DEBIAN_FASHION_MNIST}), set PADA_LITE_DATA to a folder with the four *-ubyte.gz "
                    "files, or allow a download with data.download=true")


def _download_root() -> Path:
    from .remote import cache_dir
    return cache_dir() / "torchvision"


def load_fashion_mnist(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N,1,28,28] and int64 labels [N] of the 'train' or 'test' split."""
    paths = []
    for stem in FASHION_MNIST_FILES[split]:
        path = _find_idx(root, stem)
        if path is None:
            raise DataError(f"{stem}(.gz) is missing in {root}: the Fashion-MNIST folder is incomplete; it needs "
                            f"{[s + '.gz' for pair in FASHION_MNIST_FILES.values() for s in pair]}")
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{paths[0].name} ({images.shape}) and {paths[1].name} ({labels.shape}) do not match: "
                        "mixed-up or corrupt Fashion-MNIST files")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


# ----------------------------------------------------------------------------------------------- CIFAR
def load_cifar(config: DataConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N,3,32,32] and labels [N] of CIFAR-10/100 through torchvision."""
    from torchvision.datasets import CIFAR10, CIFAR100
    cls = CIFAR10 if config.dataset == "cifar10" else CIFAR100
    root = Path(config.root or os.environ.get("PADA_LITE_DATA") or _download_root()).expanduser()
    try:
        ds = cls(str(root), train=(split == "train"), download=config.download)
    except RuntimeError as err:
        raise DataError(f"{config.dataset} not found or corrupt under {root} ({err}). Download it once with "
                        "data.download=true on a machine with internet, or set data.root / PADA_LITE_DATA to the "
                        f"folder that holds {cls.base_folder}/") from err
    except (FileNotFoundError, EOFError, ValueError) as err:
        raise DataError(f"{config.dataset} under {root} is incomplete ({err}): a batch file is missing or "
                        f"truncated; delete {root / cls.base_folder} and download it again") from err
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(ds.targets, dtype=torch.int64)


# -------------------------------------------------------------------------------------------- splits
@dataclass
class Splits:
    """Train, validation (possibly None) and test data of one DataConfig."""

    train: ImageData
    valid: ImageData | None
    test: ImageData


def resize(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize uint8 images [N,C,H,W] to size x size (antialiased bilinear), in chunks."""
    if size is None or images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = [F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
           .round_().clamp_(0, 255).to(torch.uint8) for chunk in images.split(8192)]
    return torch.cat(out)


def _take(n: int | None, total: int, generator: torch.Generator) -> torch.Tensor:
    perm = torch.randperm(total, generator=generator)
    if n is not None and n > total:
        raise DataError(f"asked for {n} images but only {total} are available: lower data.train_size/test_size")
    return perm if n is None else perm[:n]


def load_splits(config: DataConfig) -> Splits:
    """Load the dataset of ``config`` with its fixed-seed train/valid split and subsets."""
    if config.dataset == "fashion_mnist":
        root = fashion_mnist_root(config)
        train_x, train_y = load_fashion_mnist(root, "train")
        test_x, test_y = load_fashion_mnist(root, "test")
    elif config.dataset in ("cifar10", "cifar100"):
        train_x, train_y = load_cifar(config, "train")
        test_x, test_y = load_cifar(config, "test")
    else:
        raise DataError("ImageNet is not held in memory: read it with pada_lite.data.load_data(config) (folder splits "
                        "for the Trainer) or imagenet_folder(root, split)")
    mean, std = STATS[config.dataset]
    classes = NUM_CLASSES[config.dataset]
    gen = torch.Generator().manual_seed(config.split_seed)
    valid_idx, train_idx = holdout_split(len(train_y), config, gen)
    test_idx = _take(config.test_size, len(test_y), gen).sort().values

    def make(x, y, idx):
        return ImageData(resize(x[idx], config.image_size), y[idx], mean, std, classes)

    valid = make(train_x, train_y, valid_idx) if config.valid_size else None
    return Splits(make(train_x, train_y, train_idx), valid, make(test_x, test_y, test_idx))


def holdout_split(total: int, config: DataConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out, training) indices of a training set of ``total`` images, each sorted: ``valid_size`` drawn first
    from one permutation by ``generator``, then the first ``train_size`` of the rest."""
    perm = torch.randperm(total, generator=generator)
    valid_idx, rest = perm[:config.valid_size], perm[config.valid_size:]
    if config.train_size is not None:
        if config.train_size > len(rest):
            raise DataError(f"data.train_size={config.train_size} but only {len(rest)} training images remain "
                            f"after holding out valid_size={config.valid_size}")
        rest = rest[:config.train_size]
    return valid_idx.sort().values, rest.sort().values


# ------------------------------------------------------------------------------------------- ImageNet
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class SeededImageFolder(torch.utils.data.Dataset):
    """A class-per-folder image tree (``torchvision.datasets.ImageFolder``) whose items are ``(uint8 [3,S,S], label,
    index)`` and whose random augmentation depends only on ``(seed, epoch, position)``.

    Keys are ``(epoch, position, index)`` triples (what :class:`ImageFolderLoader` asks for; ``position``: the place of
    the image in its epoch's order): the augmentation of an image is the same whatever the number of loader workers or
    processes and whether the run was interrupted, so a resumed run sees the same batches, and an image drawn twice in
    one epoch (data importance sampling draws with replacement) gets two crops. Images are decoded by PIL and cropped
    there; they stay uint8 until the device normalises them.
    """

    def __init__(self, folder: Path, transform, seed: int = 0):
        from torchvision import datasets
        found = datasets.ImageFolder(str(folder), loader=str, is_valid_file=_is_image)
        self.samples: list[tuple[str, int]] = found.samples                   # (path, label) per image
        self.transform, self.seed = transform, int(seed)
        self.classes = found.classes

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> torch.Tensor:  # [N] int64
        return torch.tensor([label for _, label in self.samples], dtype=torch.int64)

    def subset(self, indices: torch.Tensor, transform=None, seed: int | None = None) -> "SeededImageFolder":
        """The images ``indices`` (renumbered from 0), optionally with another transform or augmentation seed."""
        copy = object.__new__(SeededImageFolder)
        copy.samples = [self.samples[i] for i in indices.tolist()]
        copy.transform = self.transform if transform is None else transform
        copy.seed, copy.classes = self.seed if seed is None else int(seed), self.classes
        return copy

    def __getitem__(self, key):
        epoch, position, index = key if isinstance(key, tuple) else (0, key, key)
        path, label = self.samples[index]
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"cannot decode image {path} ({err}): the file is corrupt; delete or replace it") from err
        seed = (self.seed * 1_000_003 + epoch) * 10_000_019 + position
        if torch.utils.data.get_worker_info() is not None:  # a loader worker: its global RNG is ours to reseed
            torch.manual_seed(seed)
            return self.transform(image), label, index
        with torch.random.fork_rng(devices=[]):             # the main process: leave the caller's RNG untouched
            torch.manual_seed(seed)
            return self.transform(image), label, index


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


class _KeyBatches:
    """The key batches an :class:`ImageFolderLoader` reads on its next pass (its DataLoader's batch sampler)."""

    def __init__(self):
        self.batches: list[list[tuple[int, int, int]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def imagenet_transform(train: bool, image_size: int = 224):
    """The standard ImageNet pipeline on uint8 tensors: RandomResizedCrop + flip (train) or resize to 256/224 of the
    size + center crop (evaluation); normalisation happens on the device (:class:`ImageFolderLoader`)."""
    from torchvision.transforms import v2
    if train:
        crop = [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
    else:
        crop = [v2.Resize(int(image_size * 256 / 224), antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose([*crop, v2.PILToTensor()])                                       # -> uint8 [3, S, S]


def imagenet_folder(root: str | os.PathLike, split: str = "train", image_size: int = 224,
                    seed: int = 0) -> SeededImageFolder:
    """ImageNet (or any class-per-folder image tree) at ``root/split`` with the standard pipeline of that split."""
    folder = Path(root).expanduser() / split
    if not folder.is_dir():
        raise DataError(f"ImageNet split folder {folder} does not exist: pass the root that holds train/ and val/ "
                        "with one sub-folder per class")
    try:
        return SeededImageFolder(folder, imagenet_transform(split == "train", image_size), seed)
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"{folder} holds no images in class sub-folders ({err}): lay it out as "
                        f"{folder}/<class>/<image>.JPEG") from err


@dataclass
class FolderSplits:
    """Training and held-out validation images of an image folder, read through loaders (never held in memory)."""

    train: SeededImageFolder            # training transform
    valid: SeededImageFolder | None     # evaluation transform; held out of root/train by data.split_seed
    workers: int = 8                    # loader worker processes (decoding; results do not depend on it)


def folder_splits(config: DataConfig, workers: int = 8) -> FolderSplits:
    """``config.root``/train split as ``config`` says (valid_size held out, train_size kept), for the Trainer."""
    root = config.root or os.environ.get("PADA_LITE_DATA")
    if not root:
        raise DataError("ImageNet is read from a folder: pass --data <root holding train/> (Python: data.root), or "
                        "set PADA_LITE_DATA")
    size = config.image_size or 224
    train = imagenet_folder(root, "train", size)
    valid_idx, train_idx = holdout_split(len(train), config, torch.Generator().manual_seed(config.split_seed))
    valid = train.subset(valid_idx, imagenet_transform(False, size)) if config.valid_size else None
    return FolderSplits(train.subset(train_idx), valid, workers)


def load_data(config: DataConfig, workers: int = 8) -> Splits | FolderSplits:
    """In-memory splits (Fashion-MNIST, CIFAR) or, for ImageNet, folder splits read through loaders."""
    return folder_splits(config, workers) if config.dataset == "imagenet" else load_splits(config)


class ImageFolderLoader:
    """Batches ``(x, y, index)`` of a :class:`SeededImageFolder` on ``device``: x normalised float [b, 3, S, S]
    (channels_last if asked), epoch by epoch, from any batch on, so an interrupted run resumes exactly.

    ``batch_size`` is the global batch; with ``world_size`` > 1 this process reads only its rows ``rank::world_size``
    of every batch (torchrun data parallelism). As fast as torchvision allows: worker processes decode and crop
    (uint8, 4x less to copy than float), pinned memory and non-blocking copies, persistent workers, and normalisation
    on the device.
    """

    def __init__(self, dataset: SeededImageFolder, batch_size: int, seed: int = 0, workers: int = 8,
                 device: str | torch.device = "cpu", train: bool = True, channels_last: bool = False,
                 prefetch_factor: int = 4, rank: int = 0, world_size: int = 1):
        self.device, self.channels_last, self.seed, self.train = torch.device(device), channels_last, int(seed), train
        self.size, self.batch_size, self.drop_last = len(dataset), batch_size, train and len(dataset) >= batch_size
        self.rank, self.world_size = rank, world_size
        self.keys = _KeyBatches()
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=self.keys, num_workers=workers, pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0, prefetch_factor=prefetch_factor if workers > 0 else None)
        mean, std = STATS["imagenet"]
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.size // self.batch_size if self.drop_last else math.ceil(self.size / self.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` (shuffled by ``(seed, epoch)`` in training) from batch ``start`` on."""
        if self.train:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        else:
            order = torch.arange(self.size)
        return self.read(epoch, order[:len(self) * self.batch_size], start)

    def read(self, epoch: int, order: torch.Tensor, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor,
                                                                                       torch.Tensor]]:
        """The batches of epoch ``epoch`` whose dataset indices are ``order`` [M] (CPU; any order, repeats allowed),
        split into ``batch_size`` batches, from batch ``start`` on; this process's rows of each."""
        shard = slice(self.rank, None, self.world_size)
        positions = torch.arange(len(order)).split(self.batch_size)[start:]
        self.keys.batches = [[(epoch, p, i) for p, i in zip(pos[shard].tolist(), idx[shard].tolist())]
                             for pos, idx in zip(positions, order.split(self.batch_size)[start:])]
        for images, labels, indices in self.loader:
            x = images.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = (x.float() - self.mean) / self.std
            yield x, labels.to(self.device, non_blocking=True), indices


def decode_all(dataset: SeededImageFolder, workers: int = 8, batch_size: int = 256) -> ImageData:
    """Every image of ``dataset`` (key ``(0, i, i)``) decoded once into memory: uint8 [N, 3, S, S] as ImageData."""
    loader = torch.utils.data.DataLoader(dataset, batch_size, num_workers=workers)
    images, labels = zip(*((x, y) for x, y, _ in loader))
    mean, std = STATS["imagenet"]
    return ImageData(torch.cat(images), torch.cat(labels), mean, std, len(dataset.classes))
