"""Exact resume: SIGKILL a real ``python -m pada_lite train`` (PA + DA), resume, compare with an uninterrupted run."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pada_lite.config import lite, override
from pada_lite.data import load_splits
from pada_lite.evaluation import evaluate_archs
from pada_lite.provenance import read_json
from pada_lite.spaces import NB201Supernet, enumerate_archs
from pada_lite.training import CHECKPOINT, Trainer, TrainingError, train_supernet

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.train_size=600", "data.test_size=200", "data.image_size=8", "space.channels=4",
        "space.cells_per_stage=1", "train.batch_size=32", "train.epochs=3", "train.progress=false",
        "train.path_sampler=importance", "train.data_sampler=importance"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # same threads in every process


def train_command(out: Path, extra: list[str]) -> list[str]:
    sets = [arg for item in TINY + extra for arg in ("--set", item)]
    return [sys.executable, "-m", "pada_lite", "train", "--out", str(out), *sets]


def train(out: Path, extra: list[str] = ()) -> None:
    """Run (or resume) training to the end in a subprocess."""
    done = subprocess.run(train_command(out, list(extra)), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def read_checkpoint(out: Path) -> dict | None:
    path = out / CHECKPOINT
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def position(state: dict | None) -> tuple[int, int]:
    return (-1, -1) if state is None else (state["epoch"], state["step"])


def kill_when(out: Path, extra: list[str], wanted, rng: random.Random) -> dict | None:
    """Start training; SIGKILL it a random moment after a new checkpoint satisfies ``wanted``.

    Returns the checkpoint left behind, or None when the run finished before that happened.
    """
    start = position(read_checkpoint(out))
    proc = subprocess.Popen(train_command(out, extra), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seen_mtime = None
    try:
        while proc.poll() is None:
            path = out / CHECKPOINT
            mtime = path.stat().st_mtime_ns if path.exists() else None
            if mtime != seen_mtime:
                seen_mtime, state = mtime, read_checkpoint(out)
                if state is not None and position(state) > start and wanted(state):
                    time.sleep(rng.uniform(0.0, 0.03))  # somewhere inside the following steps
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return read_checkpoint(out)
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()[-3000:]
    return None


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same run, uninterrupted, in this process on one thread (as the subprocesses)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_supernet(override(lite(), TINY), out, resume=False)
    finally:
        torch.set_num_threads(threads)
    return out


def assert_same_run(out: Path, reference: Path) -> None:
    """Same final weights (bit for bit), optimizer, sampler and RNG states, history and supernet accuracies."""
    ours, theirs = torch.load(out / "supernet.pt"), torch.load(reference / "supernet.pt")
    assert ours["model"].keys() == theirs["model"].keys()
    assert all(torch.equal(ours["model"][k], theirs["model"][k]) for k in ours["model"])
    final, final_ref = read_checkpoint(out), read_checkpoint(reference)
    for key in ("optimizer", "path_sampler", "data_sampler", "rng", "scheduler"):
        assert_equal_nested(final[key], final_ref[key], key)
    strip = lambda history: [{k: v for k, v in h.items() if k != "elapsed_s"} for h in history]  # noqa: E731
    assert strip(read_json(out / "train.json")["history"]) == strip(read_json(reference / "train.json")["history"])
    config = override(lite(), TINY)
    test = load_splits(config.data).test
    archs = enumerate_archs(config.space.ops)[::1953][:8]
    accuracies = []
    for run in (ours, theirs):
        model = NB201Supernet(config.space)
        model.load_state_dict(run["model"])
        accuracies.append(evaluate_archs(model, archs, test, 100))
    assert (accuracies[0] == accuracies[1]).all()


def assert_equal_nested(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_equal_nested(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal_nested(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif hasattr(a, "shape"):  # numpy arrays in the RNG state
        assert (a == b).all(), where
    else:
        assert a == b, where


@pytest.mark.slow
def test_sigkill_after_an_epoch_then_mid_epoch_resumes_exactly(tmp_path, reference):
    """Kill 1 lands after an epoch-end checkpoint (no step checkpoints), kill 2 inside an epoch, then finish."""
    out, rng = tmp_path / "killed", random.Random()
    state = kill_when(out, [], lambda s: s["epoch"] >= 1, rng)
    assert state is not None and state["step"] == 0 and state["epoch"] >= 1, position(state)
    assert not (out / "supernet.pt").exists()              # it really died before the end
    kills, extra = [], ["train.checkpoint_every_steps=3"]
    while not any(step > 0 for _, step in kills) and len(kills) < 5:
        state = kill_when(out, extra, lambda s: s["step"] > 0, rng)
        if state is None:
            break
        assert not (out / "supernet.pt").exists()
        kills.append(position(state))
    assert any(step > 0 for _, step in kills), f"no kill landed inside an epoch: {kills}"
    train(out, extra)
    assert_same_run(out, reference)


def test_a_checkpoint_of_another_config_is_refused(tmp_path):
    config = override(lite(), TINY)
    splits = load_splits(config.data)
    Trainer(config, tmp_path, splits).save_checkpoint()
    for change, field in (("train.lr=0.1", "train.lr"), ("train.pa_scope=edge", "train.pa_scope"),
                          ("train.data_sampler=uniform", "train.data_sampler")):
        other = Trainer(override(config, [change]), tmp_path, splits)
        with pytest.raises(TrainingError, match=f"another config.*{field}"):
            other.try_resume()
    assert Trainer(override(config, ["train.progress=true"]), tmp_path, splits).try_resume()  # neutral field
