"""Shared fixtures: a tiny real-data configuration that trains in seconds on CPU."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pada_lite.config import lite, override

REPO = Path(__file__).resolve().parent.parent
SHARED_MIRROR = REPO.parent / "shared" / "data" / "mirror"

if "PADA_LITE_MIRROR" not in os.environ and SHARED_MIRROR.is_dir():
    os.environ["PADA_LITE_MIRROR"] = str(SHARED_MIRROR)

TINY = ["data.train_size=512", "data.test_size=256", "data.image_size=8", "space.channels=4", "space.cells_per_stage=1",
        "train.batch_size=64", "train.epochs=2", "train.progress=false", "rank.batch_size=128",
        "data.valid_size=0", "rank.split=test", "rank.images=none"]  # no held-out images: ranked on the 256 test ones


@pytest.fixture
def tiny_config():
    """Lite preset shrunk to seconds: 512 real Fashion-MNIST images at 8x8, C=4."""
    return override(lite(), TINY)


@pytest.fixture(scope="session")
def tiny_splits():
    """Data of the tiny config, loaded once per session."""
    from pada_lite.data import load_splits
    return load_splits(override(lite(), TINY).data)


@pytest.fixture
def one_thread():
    """Tiny tensors: one torch thread is as fast and immune to a busy machine (restored afterwards)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Interrupt(Exception):
    """Stops a run mid-way (a killed process), for the resume tests."""


def kill_after_steps(trainer, steps: int) -> None:
    """Make ``trainer`` raise Interrupt instead of running its step number ``steps`` (0-based, counted from now)."""
    original, done = trainer.train_step, [0]

    def dying_step(*args):
        if done[0] == steps:
            raise Interrupt
        done[0] += 1
        original(*args)
    trainer.train_step = dying_step
