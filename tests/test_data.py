import gzip
import struct

import numpy as np
import pytest
import torch

from pada_lite.config import DataConfig
from pada_lite.data import (
    DataError,
    ImageData,
    crop_and_flip,
    fashion_mnist_root,
    load_fashion_mnist,
    load_splits,
    read_idx,
    resize,
)


def write_idx(path, array: np.ndarray):
    """Write an IDX file of unsigned bytes (the original MNIST format)."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fmnist(tmp_path):
    """A complete tiny Fashion-MNIST folder in the genuine IDX format."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return tmp_path


def test_reads_genuine_idx_files(fake_fmnist):
    x, y = load_fashion_mnist(fake_fmnist, "train")
    assert x.shape == (40, 1, 28, 28) and x.dtype == torch.uint8 and y.shape == (40,) and y.dtype == torch.int64
    raw = read_idx(fake_fmnist / "train-images-idx3-ubyte.gz")
    assert torch.equal(x[:, 0], torch.from_numpy(raw.copy()))


def test_data_root_from_env(fake_fmnist, monkeypatch):
    monkeypatch.setenv("PADA_LITE_DATA", str(fake_fmnist))
    splits = load_splits(DataConfig(train_size=30, valid_size=5, test_size=None, image_size=16))
    assert len(splits.train) == 30 and len(splits.valid) == 5 and len(splits.test) == 20
    assert splits.train.images.shape[-2:] == (16, 16)


def test_missing_data_root_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PADA_LITE_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="does not exist"):
        fashion_mnist_root(DataConfig())
    monkeypatch.setenv("PADA_LITE_DATA", str(tmp_path))
    with pytest.raises(DataError, match="missing"):
        load_splits(DataConfig())


def test_truncated_idx_file_is_reported(fake_fmnist):
    path = fake_fmnist / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    with gzip.open(path, "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_fashion_mnist(fake_fmnist, "train")


def test_mismatched_label_file_is_reported(fake_fmnist):
    write_idx(fake_fmnist / "train-labels-idx1-ubyte.gz", np.zeros(7))
    with pytest.raises(DataError, match="do not match"):
        load_fashion_mnist(fake_fmnist, "train")


def test_split_is_fixed_by_seed_and_disjoint(fake_fmnist, monkeypatch):
    monkeypatch.setenv("PADA_LITE_DATA", str(fake_fmnist))
    a = load_splits(DataConfig(train_size=20, valid_size=10, image_size=None))
    b = load_splits(DataConfig(train_size=20, valid_size=10, image_size=None))
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.valid.labels, b.valid.labels)
    train_rows = {bytes(r.numpy()) for r in a.train.images.flatten(1)}
    assert not train_rows & {bytes(r.numpy()) for r in a.valid.images.flatten(1)}
    with pytest.raises(DataError, match="train_size"):
        load_splits(DataConfig(train_size=35, valid_size=10))


def test_real_fashion_mnist_default(tiny_splits):
    assert len(tiny_splits.train) == 512 and len(tiny_splits.test) == 256
    x, y = tiny_splits.train.batch(torch.arange(8))
    assert x.shape == (8, 1, 8, 8) and x.dtype == torch.float32 and abs(float(x.mean())) < 1.0
    assert set(y.tolist()) <= set(range(10))


def test_empty_dataset_is_an_error():
    with pytest.raises(DataError, match="empty"):
        ImageData(torch.zeros(0, 1, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), (0.,), (1.,), 10)


def test_resize_and_crop_flip_shapes_and_content():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    assert resize(x.to(torch.uint8), 4).shape == (2, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    out = crop_and_flip(x, gen, pad=2)
    assert out.shape == x.shape
    for i in range(2):  # every output row is a (possibly flipped, shifted, zero-padded) piece of the input
        vals = set(out[i].flatten().tolist()) - {0.0}
        assert vals <= set(x[i].flatten().tolist())
