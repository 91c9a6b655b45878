"""Run configuration: dataclasses with commented defaults, and the named presets ``lite`` and ``paper``.

Fields made with :func:`pada_lite.runner.neutral` (progress display, device, checkpoint cadence) do not change a
run's results: they are left out of its identity (a checkpoint resumes, a record counts as done, whatever they are).
"""
from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Sequence

from .runner import neutral
from .spaces.nb201 import SupernetConfig


class ConfigError(ValueError):
    """Raised for an invalid configuration value; the message names the field and the fix."""


DATASETS = ("fashion_mnist", "cifar10", "cifar100", "imagenet")
PATH_SAMPLERS = ("uniform", "fair", "importance")
DATA_SAMPLERS = ("uniform", "importance")


@dataclass
class DataConfig:
    """Which images the supernet trains and is ranked on."""

    dataset: str = "fashion_mnist"     # fashion_mnist | cifar10 | cifar100 | imagenet
    root: str | None = None            # None: $PADA_LITE_DATA, else the Debian/torchvision default for the dataset
    image_size: int | None = 8         # resize to this square size (None keeps the native size)
    train_size: int | None = 12000     # training images used (None: all that are not held out for validation)
    valid_size: int = 0                # images held out of the training set (fixed split_seed) for validation
    test_size: int | None = None       # images of the test set used for ranking (None: the whole test set)
    split_seed: int = 0                # seed of the train/valid split and of the subsets
    augment: bool = False              # random crop (pad 4) + horizontal flip, on the device (CIFAR)
    download: bool = False             # let torchvision download a missing dataset (needs internet)

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ConfigError(f"data.dataset={self.dataset!r} is unknown; choose one of {list(DATASETS)}")
        for name in ("train_size", "test_size", "image_size"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ConfigError(f"data.{name} must be a positive integer or None, got {value}")
        if int(self.valid_size) < 0:
            raise ConfigError(f"data.valid_size must be >= 0, got {self.valid_size}")


@dataclass
class TrainConfig:
    """Supernet training: optimiser, budget, path and data samplers."""

    epochs: int = 60                   # training epochs (paper: 250)
    batch_size: int = 128              # images per step (paper: 256)
    lr: float = 0.05                   # SGD learning rate, cosine-annealed to lr_min over all steps
    lr_min: float = 0.0                # final learning rate of the cosine schedule
    momentum: float = 0.9
    nesterov: bool = False             # plain momentum, as the reference PA&DA code
    weight_decay: float = 2.5e-4
    grad_clip: float = 5.0             # max global gradient L2 norm (<= 0 disables clipping)
    seed: int = 0                      # seeds weights, path and data sampling
    path_sampler: str = "uniform"      # uniform (SPOS) | fair (FairNAS) | importance (PA)
    data_sampler: str = "uniform"      # uniform (shuffle) | importance (DA)
    tau: Any = "linear"                # smoothing schedule of PA/DA: constant value in [0,1] or a schedule name
    pa_scope: str = "shared"           # PA distribution: shared (one vector over ops, reference) | edge (per edge)
    da_granularity: str = "sample"     # DA scores per sample (reference) or per class
    importance_weighting: bool = False  # multiply the loss by 1/(K p) and 1/(N q) (unbiased); reference: False
    zero_filled_grads: bool = True     # zero (not free) the gradients before each step, as the reference (torch 1.7):
                                       # every op sampled once keeps a zero gradient, so weight decay and momentum
                                       # move it on every later step; False frees them (only the path is updated)
    separate_data_rng: bool = True     # the data order draws from its own random stream (seed + 3), so runs of one
                                       # seed with a uniform data sampler see the same batches whatever their path
                                       # sampler (paired seeds); False: one stream shared with the path sampler
    amp: bool = False                  # bfloat16/float16 autocast on CUDA
    channels_last: bool = False        # channels_last memory format on CUDA
    device: str = neutral("auto")      # auto (cuda if available) | cpu | cuda | cuda:N
    checkpoint_every_steps: int = neutral(0)  # also checkpoint inside an epoch every N steps (0: only at epoch ends)
    progress: bool = neutral(True)     # tqdm progress bar

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if self.path_sampler not in PATH_SAMPLERS:
            raise ConfigError(f"train.path_sampler={self.path_sampler!r} is unknown; "
                              f"choose one of {list(PATH_SAMPLERS)}")
        if self.data_sampler not in DATA_SAMPLERS:
            raise ConfigError(f"train.data_sampler={self.data_sampler!r} is unknown; "
                              f"choose one of {list(DATA_SAMPLERS)}")
        if self.pa_scope not in ("shared", "edge"):
            raise ConfigError(f"train.pa_scope must be 'shared' or 'edge', got {self.pa_scope!r}")
        if self.da_granularity not in ("sample", "class"):
            raise ConfigError(f"train.da_granularity must be 'sample' or 'class', got {self.da_granularity!r}")
        from .schedules import make_schedule  # here: schedules imports ConfigError from this module
        make_schedule(self.tau)  # raises a ScheduleError (a ConfigError) naming the bad value and the fix


@dataclass
class RankConfig:
    """Ranking sub-networks with inherited supernet weights."""

    batch_size: int = 1000             # evaluation images per forward pass (BN uses these batch statistics)
    top_percent: float = 5.0           # P@Top-k%
    top_n: int = 5                     # Top-n-rank
    sample_archs: int = 200            # size of the random arch sample ranked besides the 64 conv-only archs
    sample_seed: int = 0
    split: str = "test"                # images of the final ranking: test, or valid (held out of training)
    images: int | None = None          # rank on the first `images` of that split (None: all of them)
    every_epochs: int = 0              # also rank every N epochs during training (0: never)
    epoch_images: int = 2000           # images of those in-training rankings (the first of the same split)

    def __post_init__(self):
        if self.split not in ("test", "valid"):
            raise ConfigError(f"rank.split must be 'test' or 'valid', got {self.split!r}")
        if self.images is not None and int(self.images) < 1 or int(self.every_epochs) < 0:
            raise ConfigError(f"rank.images must be >= 1 or None and rank.every_epochs >= 0, got {self.images} and "
                              f"{self.every_epochs}")


@dataclass
class RunConfig:
    """Everything one supernet run needs; recorded next to its results."""

    name: str = "lite"
    space: Any = field(default_factory=SupernetConfig)  # a space's supernet config (pada_lite.spaces; NB201 here)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rank: RankConfig = field(default_factory=RankConfig)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        from .spaces import space_config_class
        parts = {"space": space_config_class(d.get("space", {})), "data": DataConfig, "train": TrainConfig,
                 "rank": RankConfig}
        kwargs = {}
        for key, value in d.items():
            if key in parts:
                kwargs[key] = _build(parts[key], value, key)
            elif key == "name":
                kwargs[key] = value
            else:
                raise ConfigError(f"unknown config section {key!r}; expected name, {', '.join(parts)}")
        return cls(**kwargs)


LEGACY_DEFAULTS = {  # fields added after records existed: the value those records were trained with
    "train": {"zero_filled_grads": False,    # before it, gradients were always freed (set_to_none=True)
              "separate_data_rng": False},   # before it, paths and data order shared one random stream
}


def _build(cls, values: dict, section: str):
    values = {**LEGACY_DEFAULTS.get(section, {}), **values}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"unknown field(s) {sorted(unknown)} in config section {section!r}; known: {sorted(names)}")
    return cls(**values)


def override(config: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``section.field=value`` overrides (``--set``), each value converted through the field's type."""
    for item in assignments:
        key, sep, raw = item.partition("=")
        section, dot, name = key.partition(".")
        part = getattr(config, section, None) if section != "name" else None
        if not sep or not dot or not dataclasses.is_dataclass(part):
            raise ConfigError(f"override {item!r} must look like section.field=value, e.g. train.epochs=5")
        config = dataclasses.replace(config, **{section: set_field(part, section, name, raw)})
    return config


def set_field(part: Any, section: str, name: str, raw: str) -> Any:
    """The dataclass ``part`` with field ``name`` set from the text ``raw`` (converted through the field's type)."""
    hints = typing.get_type_hints(type(part))
    if name not in {f.name for f in dataclasses.fields(part)}:
        raise ConfigError(f"unknown field {name!r} in section {section!r}; known: {sorted(hints)}")
    return dataclasses.replace(part, **{name: convert(raw, hints[name], f"{section}.{name}")})


def override_parts(parts: dict[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """Apply ``part.field=value`` overrides to named config parts (a preset's pieces); a RunConfig part takes its
    own ``part.section.field=value`` (e.g. ``search.train.epochs=1``). Returns the updated parts."""
    parts = dict(parts)
    for item in assignments:
        key, sep, raw = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or not name or section not in parts:
            raise ConfigError(f"override {item!r} must look like part.field=value with a part of "
                              f"{', '.join(parts)}; e.g. {next(iter(parts))}.<field>=<value>")
        part = parts[section]
        parts[section] = override(part, [f"{name}={raw}"]) if isinstance(part, RunConfig) else \
            set_field(part, section, name, raw)
    return parts


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def convert(raw: str, kind: Any, name: str) -> Any:
    """The text ``raw`` as a value of type ``kind`` (int, float, bool, str, X | None; else JSON or the text)."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union \
        else (kind,)
    if type(None) in options and raw.strip().lower() in ("none", "null"):
        return None
    options = [t for t in options if t is not type(None)]
    base = options[0] if len(options) == 1 else Any
    if base is bool and raw.strip().lower() in _BOOLS:
        return _BOOLS[raw.strip().lower()]
    if base is int and re.fullmatch(r"[+-]?\d+", raw.strip()):
        return int(raw)
    if base is float and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", raw.strip()):
        return float(raw)
    if base is str:
        return raw
    if base in _TYPE_NAMES:
        expected = _TYPE_NAMES[base] + (" or none" if type(None) in typing.get_args(kind) else "")
        raise ConfigError(f"{name}={raw!r} is not {expected} ({name} expects {kind_name(kind)})")
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def kind_name(kind: Any) -> str:
    """Readable type name: int, float | None, ..."""
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def lite() -> RunConfig:
    """CPU preset: the lite benchmark's supernet, with exactly the networks its ground truth trains
    (:meth:`pada_lite.standalone.StandaloneConfig.lite`): NB201 on Fashion-MNIST at 8x8, C=4, 3 cells per stage,
    100 epochs on the ground truth's 20k training images, ranked on 10k of its 30k held-out images.

    One SPOS run takes about 10 CPU minutes on an AMD EPYC core (AVX512), including a gradient-variance measurement
    after every epoch; SPOS's Kendall tau against the ground truth levels off by epoch 50 (the book's lite-benchmark
    chapter). Chapters shrink it (fewer images and epochs) to run in seconds.
    """
    return RunConfig(name="lite", space=SupernetConfig(channels=4, cells_per_stage=3),
                     data=DataConfig(train_size=20_000, valid_size=30_000),
                     train=TrainConfig(epochs=100), rank=RankConfig(split="valid", images=10_000))


def lite_v1() -> RunConfig:
    """Version 1's CPU preset, retired: 8x8, C=8, 1 cell per stage, 60 epochs on 12k images, a proxy of the ground
    truth's networks. The v1 motivation, smoke and sharing experiments ran with it, so their runs keep it."""
    return RunConfig(name="lite")


def paper() -> RunConfig:
    """The reference PA&DA NB201 CIFAR-10 run: C=16, 5 cells/stage, 250 epochs, batch 256, GPU."""
    return RunConfig(
        name="paper",
        space=SupernetConfig(channels=16, cells_per_stage=5, in_channels=3, num_classes=10),
        data=DataConfig(dataset="cifar10", image_size=None, train_size=None, test_size=None, augment=True),
        train=TrainConfig(epochs=250, batch_size=256, lr=0.05, weight_decay=2.5e-4, grad_clip=5.0,
                          amp=True, channels_last=True),
        rank=RankConfig(batch_size=512, sample_archs=0),  # reference: batch 512 (BN uses batch statistics)
    )


def demo() -> RunConfig:
    """Live-demo preset: the lite supernet for 5 epochs on 4,000 images, ranked on 2,000 test images (seconds)."""
    base = lite()
    return dataclasses.replace(base, name="demo",
                               data=dataclasses.replace(base.data, train_size=4000, valid_size=0, test_size=2000),
                               train=dataclasses.replace(base.train, epochs=5),
                               rank=dataclasses.replace(base.rank, split="test", images=None))


PRESETS = {"lite": lite, "demo": demo, "paper": paper}


def preset(name: str) -> RunConfig:
    """A named preset (``lite``, ``demo`` or ``paper``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
