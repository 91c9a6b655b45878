"""benchmarks/gpu_check.sh --dry-run: every step of the GPU check starts and finishes on the CPU at tiny sizes."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ("ranking", "training", "paper_run", "torchrun")


def test_dry_run_runs_every_step_and_writes_one_summary(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dry_run"] is True and summary["all_ok"] is True and list(summary["steps"]) == list(STEPS)
    steps = summary["steps"]
    assert all(s["status"] == "ok" and s["exit_code"] == 0 for s in steps.values())
    assert steps["ranking"]["record"]["preset"] == "paper" and steps["ranking"]["record"]["speedup"] > 0
    assert {"SPOS", "PA&DA"} <= set(steps["training"]["record"])
    assert steps["paper_run"]["record"]["data"] == "random" and steps["paper_run"]["record"]["method"] == "PA&DA"
    assert steps["torchrun"]["record"]["distributed"] is True and steps["torchrun"]["record"]["world_size"] == 1


def test_unknown_option_is_refused_with_the_fix():
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--fast"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "use --dry-run" in result.stderr
