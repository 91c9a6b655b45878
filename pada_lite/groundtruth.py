"""Ground truth and published predictions: NAS-Bench-201 accuracies, Few-Shot NAS supernet predictions, Deeper Insights.

NAS-Bench-201 accuracies come from one of two sources behind one interface, :func:`nb201_accuracies`:

- ``"mirror-json"``: the compact JSON the Few-Shot NAS authors published (CIFAR-10 test accuracy after 200 epochs of
  every cell), fetched and verified by :mod:`pada_lite.remote`;
- the official benchmark file ``NAS-Bench-201-v1_0-e61699.pth`` or ``NAS-Bench-201-v1_1-096897.pth`` (or the dict
  loaded from it), read through the official ``nas_201_api`` package.

Accuracies are in percent; Deeper Insights accuracies are fractions, as published.
"""
from __future__ import annotations

import ast
import json
import os
import pickle
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

from pada_lite.remote import DataFileError, fetch
from pada_lite.spaces.nb201 import NB201_OPS, NUM_EDGES, Arch, ArchError, str_to_arch

if TYPE_CHECKING:
    from nas_201_api import NASBench201API

MIRROR_JSON = "mirror-json"
NB201_NUM_ARCHS = len(NB201_OPS) ** NUM_EDGES  # 15,625
NB201_BENCHMARK_FILES = ("NAS-Bench-201-v1_0-e61699.pth", "NAS-Bench-201-v1_1-096897.pth")
NB201_DOWNLOAD_HINT = ("download the official NAS-Bench-201 file " + " or ".join(NB201_BENCHMARK_FILES)
                       + " (links in https://github.com/D-X-Y/NAS-Bench-201) and pass its path")
SUPERNET_PREDICTION_KEYS = {"one-shot": "nb201_oneshot_pred", "few-shot": "nb201_fewshot_pred"}

DEEPER_INSIGHTS_OPS = ("max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_5x5")
DEEPER_INSIGHTS_NUM_EDGES = 3
DEEPER_INSIGHTS_NUM_CHILDREN = len(DEEPER_INSIGHTS_OPS) ** DEEPER_INSIGHTS_NUM_EDGES  # 64
DEEPER_INSIGHTS_LAST_STEPS = 128

ApiSource = Union[str, os.PathLike, Mapping]


class GroundTruth(Mapping):
    """Read-only score per NB201 arch; ``gt[arch]`` takes an arch tuple or an official arch string."""

    def __init__(self, table: Mapping[Arch, float], name: str = "NAS-Bench-201 ground truth"):
        self._table = {tuple(arch): float(value) for arch, value in table.items()}
        self.name = name

    @classmethod
    def nb201(cls, source: ApiSource = MIRROR_JSON, dataset: str = "cifar10", hp: str = "200") -> "GroundTruth":
        """NAS-Bench-201 test accuracies (%) from ``source`` (see :func:`nb201_accuracies`)."""
        return cls(nb201_accuracies(source, dataset, hp), f"NAS-Bench-201 {dataset} test accuracy ({hp} epochs)")

    def __getitem__(self, arch: Arch | str) -> float:
        key = str_to_arch(arch) if isinstance(arch, str) else tuple(arch)
        try:
            return self._table[key]
        except KeyError:
            raise KeyError(f"arch {key!r} is not in {self.name} ({len(self)} archs)") from None

    def __iter__(self) -> Iterator[Arch]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"GroundTruth({self.name!r}, {len(self)} archs)"

    def accuracies(self, archs: Iterable[Arch | str]) -> np.ndarray:
        """Scores of ``archs`` in the given order, as a float array."""
        return np.array([self[arch] for arch in archs], dtype=float)


# ------------------------------------------------------------------------------------------- NAS-Bench-201
def nb201_accuracies(source: ApiSource = MIRROR_JSON, dataset: str = "cifar10", hp: str = "200") -> dict[Arch, float]:
    """Test accuracy (%) per arch from the mirrored JSON or an official NB201 ``.pth`` (path or loaded dict)."""
    if isinstance(source, str) and source == MIRROR_JSON:
        if (dataset, str(hp)) != ("cifar10", "200"):
            raise ValueError(f"the mirrored JSON holds cifar10 / 200-epoch accuracies only, not {dataset} / {hp}; "
                             "pass the official NAS-Bench-201 .pth for other datasets or schedules")
        return read_arch_json(fetch("nb201_cifar10_test"))
    return _accuracies_from_api(open_nb201_api(source), dataset, str(hp))


def nb201_supernet_predictions(kind: str = "one-shot") -> dict[Arch, float]:
    """Accuracy (%) that the Few-Shot NAS authors' one-shot or few-shot supernet predicts for every NB201 cell."""
    if kind not in SUPERNET_PREDICTION_KEYS:
        raise ValueError(f"unknown supernet kind {kind!r}; choose one of {sorted(SUPERNET_PREDICTION_KEYS)}")
    return read_arch_json(fetch(SUPERNET_PREDICTION_KEYS[kind]))


def genotype_key_to_arch(key: str) -> Arch:
    """Arch tuple of a key like ``"[(('op', 0),), (('op', 0), ('op', 1)), ...]"`` (parsed with literal_eval)."""
    nodes = ast.literal_eval(key)
    if not isinstance(nodes, (list, tuple)) or not all(isinstance(node, (list, tuple)) for node in nodes):
        raise ArchError(f"not a list of nodes with (op, input) edges: {key!r}")
    text = "+".join("|" + "".join(f"{op}~{src}|" for op, src in node) for node in nodes)
    return str_to_arch(text)


def read_arch_json(path: str | os.PathLike, expected: int = NB201_NUM_ARCHS) -> dict[Arch, float]:
    """Read a ``{genotype key: value}`` JSON into ``{arch tuple: float}``, checking it covers ``expected`` archs."""
    try:
        raw = json.loads(Path(path).read_text())
        table = {genotype_key_to_arch(key): float(value) for key, value in raw.items()}
    except (ValueError, SyntaxError, TypeError, AttributeError) as err:
        raise DataFileError(f"{path} is not a JSON table of NAS-Bench-201 archs: {err}") from err
    if len(table) != expected:
        raise DataFileError(f"{path} has {len(table)} distinct archs, expected {expected}: "
                            "a partial or wrong file; delete it from the cache and fetch it again")
    return table


def open_nb201_api(source: ApiSource) -> "NASBench201API":
    """``nas_201_api.NASBench201API`` over an official NB201 ``.pth`` path or its already-loaded dict."""
    from nas_201_api import NASBench201API

    if isinstance(source, Mapping):
        return _checked_api(NASBench201API, dict(source), "the given dict")
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataFileError(f"NAS-Bench-201 file {path} not found: {NB201_DOWNLOAD_HINT}")
    return _checked_api(NASBench201API, str(path), str(path))


def _checked_api(api_class: type, source: str | dict, label: str) -> "NASBench201API":
    """Build the API, turning load/format failures into DataFileError with what to do."""
    try:
        return api_class(source, verbose=False)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise DataFileError(
                f"torch refused to unpickle {label} with weights_only=True ({str(err).splitlines()[-1]}). If you "
                "trust the file, load it yourself with torch.load(path, map_location='cpu', weights_only=False) "
                "and pass the resulting dict instead of the path") from err
        raise _corrupt_nb201(label, err) from err
    except (OSError, RuntimeError, EOFError, AssertionError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise _corrupt_nb201(label, err) from err


def _corrupt_nb201(label: str, err: BaseException) -> DataFileError:
    """Error for a truncated or wrong-version NAS-Bench-201 file."""
    return DataFileError(f"{label} is not a readable NAS-Bench-201 benchmark ({type(err).__name__}: {err}); "
                         f"it is truncated or of another version. Delete it and re-download: {NB201_DOWNLOAD_HINT}")


def _accuracies_from_api(api: "NASBench201API", dataset: str, hp: str) -> dict[Arch, float]:
    """Mean (over seeds) final test accuracy of every evaluated arch of an NB201 API object."""
    table = {}
    for index in api.evaluated_indexes:
        try:
            info = api.get_more_info(index, dataset, hp=hp, is_random=False)
        except KeyError as err:
            raise DataFileError(f"the NAS-Bench-201 file has no {dataset} results for {hp} epochs "
                                f"(datasets: cifar10, cifar10-valid, cifar100, ImageNet16-120; hp: 12, 200)") from err
        if "test-accuracy" not in info:
            raise DataFileError(f"the NAS-Bench-201 file has no test accuracy for {dataset} / {hp} epochs")
        table[str_to_arch(api.meta_archs[index])] = float(info["test-accuracy"])
    return table


# ------------------------------------------------------------------------------------------- Deeper Insights
def deeper_insights_child_ops(index: int) -> tuple[str, str, str]:
    """Ops on the 3 edges of Deeper Insights child ``index``: (i//16, (i//4)%4, i%4) of DEEPER_INSIGHTS_OPS."""
    if not 0 <= int(index) < DEEPER_INSIGHTS_NUM_CHILDREN:
        raise ValueError(f"child index {index} outside [0, {DEEPER_INSIGHTS_NUM_CHILDREN})")
    k = len(DEEPER_INSIGHTS_OPS)
    index = int(index)
    return DEEPER_INSIGHTS_OPS[index // k ** 2], DEEPER_INSIGHTS_OPS[(index // k) % k], DEEPER_INSIGHTS_OPS[index % k]


def deeper_insights_ground_truth() -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) ground-truth test accuracy (fraction) of the 64 Deeper Insights children."""
    return _read_column("deeper_insights_gt_mean"), _read_column("deeper_insights_gt_std")


def deeper_insights_last128() -> tuple[np.ndarray, np.ndarray]:
    """(steps [128], supernet accuracy [128, 64]) over the last 128 steps of the fully shared supernet."""
    path = fetch("deeper_insights_last128")
    with open(path) as f:
        header = f.readline().strip().split(",")
    if header[1:] != [str(i) for i in range(DEEPER_INSIGHTS_NUM_CHILDREN)]:
        raise DataFileError(f"{path}: expected a header ',0,1,...,63' (step column, then the 64 children)")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    _check_shape(path, table, (DEEPER_INSIGHTS_LAST_STEPS, DEEPER_INSIGHTS_NUM_CHILDREN + 1))
    return table[:, 0].astype(int), table[:, 1:]


def _read_column(key: str) -> np.ndarray:
    """A one-number-per-line file of the 64 children."""
    path = fetch(key)
    values = np.loadtxt(path, ndmin=1)
    _check_shape(path, values, (DEEPER_INSIGHTS_NUM_CHILDREN,))
    return values


def _check_shape(path: Path, array: np.ndarray, shape: Sequence[int]) -> None:
    """Raise DataFileError if a parsed data file does not have the documented shape."""
    if array.shape != tuple(shape):
        raise DataFileError(f"{path}: expected shape {tuple(shape)}, got {array.shape}")
