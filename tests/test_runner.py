"""The job runner's one rule, for both job kinds: same identity skipped, neutral change resumed, other change re-run."""
from __future__ import annotations

import dataclasses
import json

import pytest

from pada_lite import runner
from pada_lite.benchmark import StandaloneJob
from pada_lite.config import lite, override
from pada_lite.experiments import SupernetJob, vary
from pada_lite.runner import Job, JobError, config_diff, identity, load_record, run_jobs
from pada_lite.spaces import arch_to_str, conv_only_archs
from pada_lite.standalone import StandaloneConfig
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHS = tuple(arch_to_str(a) for a in conv_only_archs()[:2])
GT = StandaloneConfig(train_size=256, test_size=128, heldout_size=64, image_size=8, channels=4, epochs=2,
                      batch_size=128, group_size=2)


def supernet_job(tmp_path, **train) -> Job:
    config = vary(override(lite(), TINY), train=train)
    return Job("supernet", "unit", SupernetJob(config, ARCHS), tmp_path / "unit.json", tmp_path / "partial" / "unit")


def groundtruth_job(tmp_path, checkpoint_every_s=0.0, **config) -> Job:
    job_config = StandaloneJob(dataclasses.replace(GT, **config), 0, ARCHS, checkpoint_every_s)
    return Job("groundtruth", "unit", job_config, tmp_path / "unit.json", tmp_path / "partial" / "unit")


# per kind: (a job, the same job with a neutral field changed, with a result-changing field changed)
KINDS = {
    "supernet": lambda p: (supernet_job(p), supernet_job(p, checkpoint_every_steps=3, device="cpu"),
                           supernet_job(p, lr=0.1)),
    "groundtruth": lambda p: (groundtruth_job(p), groundtruth_job(p, checkpoint_every_s=1e-6),
                              groundtruth_job(p, lr=0.05)),
}


@pytest.fixture
def progress(monkeypatch):
    """Records the runner's progress calls [(amount, restored)]; ``stop_after[0] = n`` interrupts after n work."""
    calls, stop_after = [], [None]

    def factory(bar):
        def on_progress(amount, restored):
            calls.append((amount, restored))
            done = sum(a for a, r in calls if not r)
            if not restored and stop_after[0] is not None and done >= stop_after[0]:
                raise KeyboardInterrupt
        return on_progress

    monkeypatch.setattr(runner, "_bar_progress", factory)
    return calls, stop_after


def interrupt(job, progress, after: int) -> None:
    calls, stop_after = progress
    stop_after[0] = after
    with pytest.raises(KeyboardInterrupt):
        run_jobs([job], progress=False)
    assert not job.path.exists() and (job.partial / runner.JOB_FILE).exists()
    stop_after[0] = None
    calls.clear()


@pytest.mark.parametrize("kind", KINDS)
def test_neutral_change_resumes_and_then_counts_as_done(kind, tmp_path, progress):
    job, neutral_change, _ = KINDS[kind](tmp_path)
    assert job.identity == neutral_change.identity and job.config != neutral_change.config
    interrupt(job, progress, after=2)
    assert run_jobs([neutral_change], progress=False) == 1
    calls, _ = progress
    assert any(restored and amount > 0 for amount, restored in calls)  # resumed from the partial state
    assert load_record(neutral_change)["job"]["identity"] == job.identity and not job.partial.exists()
    assert run_jobs([job], progress=False) == 0  # same identity: done, skipped


@pytest.mark.parametrize("kind", KINDS)
def test_other_change_reruns_from_scratch(kind, tmp_path, progress):
    job, _, other = KINDS[kind](tmp_path)
    assert job.identity != other.identity
    interrupt(job, progress, after=2)
    with pytest.warns(UserWarning, match="another config.*starts over"):
        assert run_jobs([other], progress=False) == 1
    calls, _ = progress
    assert not any(restored for _, restored in calls)  # the partial state of the other config was not used
    assert load_record(job) is None and load_record(other) is not None  # the record is other's now
    assert run_jobs([job], progress=False) == 1  # and the first config is re-run, not taken as done


def test_identity_skips_neutral_fields_and_names_what_differs():
    a = override(lite(), ["train.progress=false"])
    assert identity(a) == identity(override(a, ["train.progress=true", "train.device=cpu"]))
    b = override(a, ["train.epochs=3", "space.channels=16"])
    assert identity(a) != identity(b)
    assert config_diff(a, b) == [f"space.channels: {a.space.channels} -> 16", f"train.epochs: {a.train.epochs} -> 3"]


def test_corrupt_record_names_the_file_and_the_fix(tmp_path):
    job = groundtruth_job(tmp_path)
    job.path.write_text(json.dumps({"job": {"kind": "groundtruth", "config": {"seed": 0}}}))
    with pytest.raises(JobError, match=r"unit.json is corrupt.*delete .*unit.json"):
        load_record(job)
