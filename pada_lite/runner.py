"""One way to run and record work: a job is (kind, typed config, function); one rule says whether it is done.

- A **job kind** (:class:`JobKind`) names a function ``run(config, context) -> record`` and the typed config
  dataclass it takes; kinds register themselves in ``KINDS`` (ground-truth units in :mod:`pada_lite.benchmark`,
  supernet units in :mod:`pada_lite.experiments`).
- A **job** (:class:`Job`) is one config of a kind, the JSON record it writes and the folder of its partial state.
- Its **identity** (:func:`identity`) is a hash of the config fields not marked :func:`neutral` (progress display,
  device, checkpoint cadence). One rule serves both questions: a record whose config has the job's identity is
  *done* and skipped; partial state of the same identity is *compatible* and resumed; anything else is re-run.
- :func:`run_jobs` runs the jobs not done in this process or in a pool of spawned processes, one torch thread
  each (CPU results depend on the thread count, and a record must not depend on where it ran), with one progress
  bar and its ETA. Each record is written as soon as its job finishes, with the job's kind, identity and config.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from .paths import locate
from .provenance import read_json, write_json

NEUTRAL = "neutral"
JOB_FILE = "job.json"  # in a job's partial folder: the config its state belongs to


class JobError(RuntimeError):
    """A job's record is corrupt or a job cannot run; the message names the file and the fix."""


def neutral(default: Any) -> Any:
    """A dataclass field that does not change a job's result (progress, device, checkpoint cadence)."""
    return dataclasses.field(default=default, metadata={NEUTRAL: True})


def identity_fields(config: Any, skip_defaults: bool = True) -> Any:
    """The config as plain JSON values without its neutral fields and (``skip_defaults``) without the plain fields
    left at their default, nested dataclasses included: a field added later with a default keeps every identity."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: identity_fields(getattr(config, f.name), skip_defaults) for f in dataclasses.fields(config)
                if not f.metadata.get(NEUTRAL) and not (skip_defaults and _at_default(f, getattr(config, f.name)))}
    if isinstance(config, dict):
        return {str(k): identity_fields(v, skip_defaults) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [identity_fields(v, skip_defaults) for v in config]
    return config


def _at_default(f: dataclasses.Field, value: Any) -> bool:
    """Whether a field holds its plain default (fields with a default factory always count)."""
    return f.default is not dataclasses.MISSING and type(value) is type(f.default) and value == f.default


def identity(config: Any) -> str:
    """Short hash of the config's non-neutral fields: equal identities give the same record."""
    blob = json.dumps(identity_fields(config), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def config_diff(old: Any, new: Any) -> list[str]:
    """'field: old -> new' for every non-neutral field that differs (dotted paths)."""
    a, b = _flatten(identity_fields(old, False)), _flatten(identity_fields(new, False))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _flatten(values: Any, prefix: str = "") -> dict:
    if not isinstance(values, dict):
        return {prefix: values}
    out: dict = {}
    for key, value in values.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


# ---------------------------------------------------------------------------------------------- kinds, jobs
@dataclass(frozen=True)
class JobKind:
    """What a kind of job does: ``run(config, context) -> record``; ``config_class.from_dict`` rebuilds its config."""

    name: str
    config_class: type
    run: Callable[[Any, "Context"], dict]
    work: Callable[[Any], int] = lambda config: 1      # units of progress of one job (steps, epochs)
    setup: Callable[[Any], Any] = lambda config: None  # per-process state shared by jobs (the data), cached
    setup_key: Callable[[Any], str] = lambda config: ""


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Add a job kind to ``KINDS``."""
    KINDS[kind.name] = kind
    return kind


@dataclass
class Job:
    """One config of a kind: its record is ``path``; its partial state (checkpoints) lives in ``partial``."""

    kind: str
    name: str
    config: Any
    path: Path
    partial: Path

    @property
    def identity(self) -> str:
        return identity(self.config)


@dataclass
class Context:
    """What a running job gets: its name, partial folder, the per-process shared state and a progress callback."""

    name: str
    partial: Path
    shared: Any
    on_progress: Callable[[int, bool], None]  # (work done now, or restored from partial state)


def load_record(job: Job) -> dict | None:
    """The job's record if it exists and its config has the job's identity (done), else None (to run)."""
    path = locate(job.path)
    if not path.exists():
        return None
    fix = f"delete {path} to recompute it"
    try:
        record = read_json(path)
        same = recorded_identity(record) == job.identity
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise JobError(f"record {path} is corrupt ({type(err).__name__}: {err}); {fix}") from None
    return record if same else None


def prepare_partial(job: Job) -> Path:
    """The job's partial folder, emptied first when its state belongs to another identity (it cannot resume)."""
    marker = job.partial / JOB_FILE
    if marker.exists():
        try:
            same = read_json(marker).get("identity") == job.identity
        except ValueError:
            same = False
        if not same:
            warnings.warn(f"{job.partial} holds the state of another config of {job.name}: it starts over")
            shutil.rmtree(job.partial)
    ignore = job.partial.parent / ".gitignore"
    if not ignore.exists():  # partial state is never committed
        ignore.parent.mkdir(parents=True, exist_ok=True)
        ignore.write_text("*\n")
    write_json(marker, {"kind": job.kind, "identity": job.identity})
    return job.partial


def recorded_identity(record: dict) -> str:
    """The identity of the config a record holds (by today's neutral fields)."""
    return identity(KINDS[record["job"]["kind"]].config_class.from_dict(record["job"]["config"]))


def job_header(job: Job) -> dict:
    """What every record holds about its job: kind, identity and the full config (neutral fields included)."""
    return {"job": {"kind": job.kind, "identity": job.identity, "config": job.config.to_dict()}}


# -------------------------------------------------------------------------------------------------- running
_PROCESS: dict = {}  # per process: shared state by (kind, setup key), the progress callback


def _shared(kind: JobKind, config: Any) -> Any:
    key = (kind.name, kind.setup_key(config))
    if key not in _PROCESS.setdefault("shared", {}):
        _PROCESS["shared"][key] = kind.setup(config)
    return _PROCESS["shared"][key]


def _execute(job: Job) -> dict:
    """Run one job in this process and write its record; returns the record."""
    kind = KINDS[job.kind]
    context = Context(job.name, prepare_partial(job), _shared(kind, job.config), _PROCESS["on_progress"])
    record = {**job_header(job), **kind.run(job.config, context)}
    write_json(job.path, record)
    shutil.rmtree(job.partial, ignore_errors=True)
    return record


def _init_worker(trained, restored, parent: int) -> None:
    """Pool process: one torch thread; progress goes to the shared counters."""
    import torch
    torch.set_num_threads(1)
    _PROCESS["on_progress"] = partial(_count, trained, restored, parent)


def _count(trained, restored, parent: int, amount: int, was_restored: bool) -> None:
    """Add to the shared counter; quit if the main process is gone (nobody would save the record)."""
    if os.getppid() != parent:
        os._exit(1)
    counter = restored if was_restored else trained
    with counter.get_lock():
        counter.value += amount


def pending_jobs(jobs: Sequence[Job], force: bool = False) -> list[Job]:
    """The jobs to run (not done, or all with ``force``), each record path once."""
    return list({job.path: job for job in jobs if force or load_record(job) is None}.values())


def run_jobs(jobs: Sequence[Job], desc: str = "jobs", workers: int = 1, force: bool = False,
             progress: bool = True, on_record: Callable[[Job, dict], object] | None = None) -> int:
    """Run the jobs not done (all with ``force``) and write their records; the number run.

    ``workers > 1``: a pool of that many spawned processes; else here. ``on_record(job, record)`` hears of every
    record as it is written.
    """
    todo = pending_jobs(jobs, force)
    if not todo:
        return 0
    from tqdm.auto import tqdm
    total = sum(KINDS[j.kind].work(j.config) for j in todo)
    bar = tqdm(total=total, desc=f"{desc}: {len(todo)} jobs", disable=not progress, smoothing=0.05)
    for job, record in _results(todo, workers, bar):
        if on_record is not None:
            on_record(job, record)
        bar.write(f"{job.kind} {job.name}: done in {record.get('wall_time_s', 0):.0f} s")
    bar.close()
    return len(todo)


def _bar_progress(bar) -> Callable[[int, bool], None]:
    """Work done advances the bar; restored work shrinks what is left (keeps the rate, hence the ETA, honest)."""
    def on_progress(amount: int, restored: bool) -> None:
        if restored:
            bar.total -= amount
            bar.refresh()
        else:
            bar.update(amount)
    return on_progress


def _results(todo: list[Job], workers: int, bar):
    """Yield (job, record) as jobs finish: here (workers <= 1) or in a pool of spawned processes."""
    if workers <= 1:
        import torch
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        _PROCESS["on_progress"] = _bar_progress(bar)
        try:
            for job in todo:
                yield job, _execute(job)
        finally:
            torch.set_num_threads(previous)
        return
    ctx = multiprocessing.get_context("spawn")  # fork after torch started its thread pool can hang
    trained, restored = ctx.Value("q", 0), ctx.Value("q", 0)
    total = bar.total
    with ProcessPoolExecutor(workers, ctx, _init_worker, (trained, restored, os.getpid())) as pool:
        futures = {pool.submit(_execute, job): job for job in todo}
        while futures:
            finished, _ = wait(futures, timeout=2.0, return_when=FIRST_COMPLETED)
            bar.total = total - restored.value
            bar.update(trained.value - bar.n)
            for future in finished:
                yield futures.pop(future), future.result()
