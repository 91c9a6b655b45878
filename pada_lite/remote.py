"""Registry of small public data files and a sha256-verified fetcher (cache -> local mirror -> download).

Each file is pinned to a GitHub commit and a sha256. ``fetch(key)`` returns a verified copy in the cache,
taking it from the cache, from a local mirror root named by ``$PADA_LITE_MIRROR`` (laid out like
``<root>/<owner>/<repo>/<commit>/<path>``) or from ``https://raw.githubusercontent.com``, in that order.
The cache is ``$PADA_LITE_CACHE``, else ``cache/`` in the data home (``<checkout>/data/cache`` in a source checkout);
it uses the mirror layout, so a cache folder is itself a valid mirror root.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .paths import data_home

CACHE_ENV = "PADA_LITE_CACHE"
MIRROR_ENV = "PADA_LITE_MIRROR"
RAW_URL = "https://raw.githubusercontent.com"
DEFAULT_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


class DataFileError(RuntimeError):
    """A data file is unknown, missing, truncated or not the published one."""


@dataclass(frozen=True)
class RemoteFile:
    """One public file pinned to a commit: where it lives, its size and sha256."""

    key: str
    owner: str
    repo: str
    commit: str
    path: str
    sha256: str
    size: int
    description: str

    @property
    def relpath(self) -> Path:
        """``<owner>/<repo>/<commit>/<path>``: the layout of a mirror root and of the cache."""
        return Path(self.owner, self.repo, self.commit, *self.path.split("/"))

    @property
    def url(self) -> str:
        """Public raw-file address on GitHub."""
        return f"{RAW_URL}/{self.owner}/{self.repo}/{self.commit}/{self.path}"


_FEWSHOT = ("aoiang", "few-shot-NAS", "ec366c1c5ca23fe4e9bdd1ec869753739b196ed5")
_DEEPER = ("ultmaster", "deeper-insights-weight-sharing", "2a7f852cd22190b0ccd2bad3e7a1c208f01986b5")

REGISTRY: dict[str, RemoteFile] = {f.key: f for f in (
    RemoteFile("nb201_cifar10_test", *_FEWSHOT, "Few-Shot_NasBench201/supernet_info/nasbench201",
               "31d66fbfd64850150141ed403360bd92684443f684db1976a7b63db55f1d4f85", 2098204,
               "JSON: CIFAR-10 test accuracy (%) of all 15,625 NAS-Bench-201 cells, 200 epochs"),
    RemoteFile("nb201_oneshot_pred", *_FEWSHOT, "Few-Shot_NasBench201/supernet_info/one-shot-supernet",
               "69c5e90d992b7730b52a0b49849be226843eceb427b50382690a5a8c5cba88a9", 2097363,
               "JSON: accuracy predicted by the Few-Shot NAS authors' one-shot supernet for every NB201 cell"),
    RemoteFile("nb201_fewshot_pred", *_FEWSHOT, "Few-Shot_NasBench201/supernet_info/few-shot-supernet",
               "6704553c216731415a7a01b4e237da49df9bd37318fc032f0e1800fba7a95a41", 2097691,
               "JSON: accuracy predicted by the few-shot supernets (edge 0 split in 5) for every NB201 cell"),
    RemoteFile("deeper_insights_gt_mean", *_DEEPER, "assets/gt_mean.txt",
               "f726d0ef21d1c9ed16aa80bc2de855375706bd01583696987803cabd09f17ebd", 1600,
               "64 lines: mean ground-truth CIFAR-10 test accuracy (fraction) of the Deeper Insights children"),
    RemoteFile("deeper_insights_gt_std", *_DEEPER, "assets/gt_std.txt",
               "8682f6f2f83497f9ab80089d56435796c517d33d37ed1d40d404c749173df33a", 1600,
               "64 lines: standard deviation over runs of the above"),
    RemoteFile("deeper_insights_last128", *_DEEPER, "figures/clustering/share_all_acc_last128.csv",
               "2a68b073c5f3e576ac44903cc50f9fe765ebae4d661911c7e1b87a61988946c1", 57381,
               "CSV: supernet accuracy of the 64 children at each of the last 128 steps (first column: step)"),
)}


def remote_file(key: str) -> RemoteFile:
    """Registry entry of ``key``; unknown keys list the known ones."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise DataFileError(f"unknown data file key {key!r}; known keys: {sorted(REGISTRY)}") from None


def cache_dir() -> Path:
    """``$PADA_LITE_CACHE``, else ``cache/`` in the data home (:func:`pada_lite.paths.data_home`)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return data_home() / "cache"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, entry: RemoteFile, fix: str) -> None:
    """Raise DataFileError (ending with ``fix``) unless ``path`` has the size and sha256 of ``entry``."""
    size = Path(path).stat().st_size
    if size != entry.size:
        hint = "likely an interrupted download" if size < entry.size else "not the published file"
        raise DataFileError(f"{path} ({entry.key}): size differs, expected {entry.size} bytes, got {size} "
                            f"({hint}). {fix}")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise DataFileError(f"{path} ({entry.key}): sha256 mismatch, expected {entry.sha256}, got {actual}. {fix}")


def fetch(key: str, timeout: float = DEFAULT_TIMEOUT_S) -> Path:
    """Path of a cached, sha256-verified copy of ``key`` (from cache, ``$PADA_LITE_MIRROR`` or GitHub)."""
    entry = remote_file(key)
    target = cache_dir() / entry.relpath
    if target.exists() and _cached_copy_is_valid(target, entry):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    mirrored = _mirror_copy(entry)
    if mirrored is not None:
        _install(target, entry, lambda tmp: shutil.copyfile(mirrored, tmp),
                 f"The mirror copy {mirrored} is not the published file: replace it with {entry.url} "
                 f"or unset {MIRROR_ENV}.")
    else:
        _install(target, entry, lambda tmp: _download(entry, tmp, timeout),
                 f"The download of {entry.url} was rejected and not cached; retry, or check your network/proxy.")
    return target


def _cached_copy_is_valid(target: Path, entry: RemoteFile) -> bool:
    """Re-verify a cached copy; a corrupt one is removed (with a warning) so that it is fetched again."""
    try:
        verify_file(target, entry, "The cached copy was removed and will be fetched again.")
        return True
    except DataFileError as err:
        target.unlink()
        warnings.warn(str(err), RuntimeWarning, stacklevel=3)
        return False


def _mirror_copy(entry: RemoteFile) -> Path | None:
    """The file under ``$PADA_LITE_MIRROR`` if that variable is set and the file is there."""
    root = os.environ.get(MIRROR_ENV)
    if not root:
        return None
    candidate = Path(root).expanduser() / entry.relpath
    return candidate if candidate.is_file() else None


def _install(target: Path, entry: RemoteFile, write: Callable[[Path], object], fix: str) -> None:
    """Write into a temp file next to ``target`` with ``write(tmp)``, verify it, then rename atomically."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        verify_file(tmp, entry, fix)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _download(entry: RemoteFile, dest: Path, timeout: float) -> None:
    """Stream ``entry.url`` into ``dest``; network failures become a DataFileError saying how to work offline."""
    try:
        with urllib.request.urlopen(entry.url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except OSError as err:  # URLError, HTTPError, timeouts and connection errors are all OSErrors
        raise DataFileError(
            f"cannot get {entry.key}: no valid cached copy, no copy under ${MIRROR_ENV}, and downloading "
            f"{entry.url} failed ({err}). Offline, set {MIRROR_ENV} to a mirror root laid out as "
            f"<root>/{entry.relpath.as_posix()}, or download the URL to {cache_dir() / entry.relpath}."
        ) from err
