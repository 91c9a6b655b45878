"""Provenance of results (config, seed, library version, device, time) and atomic JSON/torch writes."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import __version__


def device_name(device: torch.device | str) -> str:
    """Human-readable device name, e.g. 'cpu (2 threads)' or 'NVIDIA H100 80GB HBM3'."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{device.type} ({cpu_model()}, {threads} thread{'s' if threads != 1 else ''})"


def cpu_model() -> str:
    """The CPU's model name and the vector instructions torch uses, e.g. 'AMD EPYC, AVX2' (speed differs by both)."""
    name = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}"


def label_cpu(label: str | None) -> str:
    """The CPU a device label names ('cpu (2 cores, AMD EPYC, AVX2), ...' or 'cpu (AMD EPYC, AVX2, 1 thread)' ->
    'AMD EPYC, AVX2'); '' for labels written before they named it ('cpu (2 cores), ...')."""
    parts = (label or "").partition("(")[2].partition(")")[0].split(", ")
    return ", ".join(p for p in parts if p and not re.fullmatch(r"\d+ (cores|threads?)", p))


def git_commit() -> str | None:
    """Commit of the source checkout, if the package runs from one."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def provenance(config: Any = None, seed: int | None = None, device: torch.device | str = "cpu",
               wall_time_s: float | None = None) -> dict:
    """Everything needed to know where a result came from."""
    record = {"pada_lite_version": __version__, "torch_version": torch.__version__,
              "python": platform.python_version(), "device": device_name(device), "git_commit": git_commit(),
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if config is not None:
        record["config"] = config.to_dict() if hasattr(config, "to_dict") else config
    if seed is not None:
        record["seed"] = seed
    if wall_time_s is not None:
        record["wall_time_s"] = round(float(wall_time_s), 3)
    return record


def atomic_write_bytes(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: Any) -> None:
    """Atomically write ``payload`` as indented JSON."""
    atomic_write_bytes(path, lambda f: f.write((json.dumps(payload, indent=1, sort_keys=False) + "\n").encode()))


def read_json(path: Path) -> Any:
    """Read a JSON file with an error that names it when it is corrupt."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}): the file is corrupt; delete it to recompute it") from err


def torch_save(path: Path, obj: Any) -> None:
    """Atomically ``torch.save`` ``obj``."""
    atomic_write_bytes(path, lambda f: torch.save(obj, f))
