"""Tests of the verified fetcher: cache, local mirror, download, and every error it promises."""
from __future__ import annotations

import hashlib
import io
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pada_lite import remote
from pada_lite.remote import REGISTRY, DataFileError, fetch

SHARED_MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mirror"
SMALL_KEY = "deeper_insights_gt_mean"  # 1.6 kB: cheap to copy and tamper with


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder; no mirror; network calls fail loudly."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(remote.CACHE_ENV, str(folder))
    monkeypatch.delenv(remote.MIRROR_ENV, raising=False)
    monkeypatch.setattr(urllib.request, "urlopen", _offline_urlopen)
    return folder


@pytest.fixture
def shared_mirror(cache, monkeypatch) -> Path:
    """The project's data mirror (../shared/data/mirror) as PADA_LITE_MIRROR."""
    if not SHARED_MIRROR.is_dir():
        pytest.skip(f"data mirror {SHARED_MIRROR} is absent")
    monkeypatch.setenv(remote.MIRROR_ENV, str(SHARED_MIRROR))
    return SHARED_MIRROR


@pytest.fixture
def tmp_mirror(tmp_path, shared_mirror, monkeypatch) -> Path:
    """A writable mirror root holding a genuine copy of SMALL_KEY."""
    root = tmp_path / "mirror"
    relpath = REGISTRY[SMALL_KEY].relpath
    (root / relpath).parent.mkdir(parents=True)
    shutil.copyfile(shared_mirror / relpath, root / relpath)
    monkeypatch.setenv(remote.MIRROR_ENV, str(root))
    return root


def _offline_urlopen(url, *args, **kwargs):
    raise urllib.error.URLError("network disabled in tests")


def _serve(monkeypatch, payload: bytes) -> list:
    """Make urlopen return ``payload``; the returned list records the requested URLs."""
    requested = []

    def fake_urlopen(url, *args, **kwargs):
        requested.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return requested


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_registry_entries_are_complete():
    assert set(REGISTRY) == {"nb201_cifar10_test", "nb201_oneshot_pred", "nb201_fewshot_pred",
                             "deeper_insights_gt_mean", "deeper_insights_gt_std", "deeper_insights_last128"}
    for key, entry in REGISTRY.items():
        assert entry.key == key and len(entry.commit) == 40 and len(entry.sha256) == 64 and entry.size > 0
        assert entry.url == (f"https://raw.githubusercontent.com/{entry.owner}/{entry.repo}/"
                             f"{entry.commit}/{entry.path}")


@pytest.mark.parametrize("key", sorted(REGISTRY))
def test_fetch_from_mirror_verifies_and_caches(shared_mirror, cache, key):
    path = fetch(key)
    entry = REGISTRY[key]
    assert path == cache / entry.relpath
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    assert path.read_bytes() == (shared_mirror / entry.relpath).read_bytes()


def test_valid_cache_is_used_without_mirror_or_network(shared_mirror, cache, monkeypatch):
    first = fetch(SMALL_KEY)
    monkeypatch.delenv(remote.MIRROR_ENV)
    assert fetch(SMALL_KEY) == first


def test_download_writes_verified_file(shared_mirror, cache, monkeypatch):
    entry = REGISTRY[SMALL_KEY]
    monkeypatch.delenv(remote.MIRROR_ENV)
    requested = _serve(monkeypatch, (shared_mirror / entry.relpath).read_bytes())
    path = fetch(SMALL_KEY)
    assert requested == [entry.url]
    assert remote.sha256_of(path) == entry.sha256
    assert _files_in(cache) == [path]  # no temp file left behind


def test_tampered_mirror_copy_is_rejected(tmp_mirror, cache):
    entry = REGISTRY[SMALL_KEY]
    mirror_file = tmp_mirror / entry.relpath
    data = bytearray(mirror_file.read_bytes())
    data[0] ^= 1  # same size, different bytes
    mirror_file.write_bytes(bytes(data))
    with pytest.raises(DataFileError) as err:
        fetch(SMALL_KEY)
    message = str(err.value)
    assert "sha256" in message and entry.sha256 in message and hashlib.sha256(data).hexdigest() in message
    assert str(mirror_file) in message and "mirror" in message
    assert _files_in(cache) == []


def test_truncated_download_is_rejected_and_not_cached(shared_mirror, cache, monkeypatch):
    entry = REGISTRY[SMALL_KEY]
    monkeypatch.delenv(remote.MIRROR_ENV)
    _serve(monkeypatch, (shared_mirror / entry.relpath).read_bytes()[: entry.size // 2])
    with pytest.raises(DataFileError, match="size differs.*interrupted download"):
        fetch(SMALL_KEY)
    assert _files_in(cache) == []


def test_truncated_mirror_copy_is_rejected(tmp_mirror, cache):
    mirror_file = tmp_mirror / REGISTRY[SMALL_KEY].relpath
    mirror_file.write_bytes(mirror_file.read_bytes()[:100])
    with pytest.raises(DataFileError, match="size differs"):
        fetch(SMALL_KEY)


def test_missing_file_offline_names_url_and_fixes(tmp_path, cache, monkeypatch):
    monkeypatch.setenv(remote.MIRROR_ENV, str(tmp_path / "empty-mirror"))
    entry = REGISTRY[SMALL_KEY]
    with pytest.raises(DataFileError) as err:
        fetch(SMALL_KEY)
    message = str(err.value)
    assert entry.url in message and remote.MIRROR_ENV in message
    assert str(cache / entry.relpath) in message
    assert _files_in(cache) == []


def test_unknown_key_lists_known_keys(cache):
    with pytest.raises(DataFileError, match="unknown data file key") as err:
        fetch("nb201_cifar100_test")
    assert all(key in str(err.value) for key in REGISTRY)


def test_corrupt_cached_file_is_replaced(shared_mirror, cache):
    path = fetch(SMALL_KEY)
    path.write_bytes(b"0" * path.stat().st_size)
    with pytest.warns(RuntimeWarning, match="sha256 mismatch"):
        again = fetch(SMALL_KEY)
    assert again == path and remote.sha256_of(path) == REGISTRY[SMALL_KEY].sha256


def test_corrupt_cached_file_is_removed_when_no_source(shared_mirror, cache, monkeypatch):
    path = fetch(SMALL_KEY)
    path.write_bytes(path.read_bytes()[:10])
    monkeypatch.delenv(remote.MIRROR_ENV)
    with pytest.warns(RuntimeWarning, match="size differs"), pytest.raises(DataFileError, match="downloading"):
        fetch(SMALL_KEY)
    assert not path.exists()


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "c"))
    assert remote.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(remote.CACHE_ENV)
    checkout_data = Path(remote.__file__).resolve().parent.parent / "data"
    expected = checkout_data / "cache" if checkout_data.is_dir() else Path.home() / ".cache" / "pada_lite"
    assert remote.cache_dir() == expected
