"""benchmarks/gpu_check.sh --dry-run: every step of the GPU check starts and finishes on the CPU at tiny sizes."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ("ranking", "training", "paper_run", "torchrun", "imagenet")


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
    imagenet = steps["imagenet"]["record"]
    assert imagenet["data"] == "synthetic" and imagenet["torchrun"] is True
    assert imagenet["phases_done"] == ["folder", "loading", "search", "retrain"]
    assert imagenet["amp"] is False and imagenet["channels_last"] is False               # CPU: the preset's are off
    assert imagenet["search"]["under_flops_limit"] is True and imagenet["search"]["mflops"] <= 8
    assert imagenet["search"]["candidates"] == 16 and imagenet["supernet"]["images_per_epoch"] == 36 - 8
    assert imagenet["retrain"]["distributed"] is True and imagenet["retrain"]["images_per_epoch"] == 32
    assert min(imagenet["loader_images_per_s"], imagenet["supernet"]["images_per_s"],
               imagenet["retrain"]["images_per_s"]) > 0
    assert imagenet["supernet"]["peak_gpu_gib"] is None                                  # no GPU memory on the CPU


def test_unknown_option_is_refused_with_the_fix():
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--fast"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "use --dry-run" in result.stderr


def test_imagenet_step_flags_a_candidate_over_the_flops_limit():
    """The imagenet record's FLOPs check reads the arch's own FLOPs and every candidate's, not the search's word."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_imagenet_folder import search_record

    from pada_lite.mobilenet_search import SearchConfig, full
    run = full()[0]
    arch = "-".join(["k3_e3"] * 21)                                                      # 21 blocks, 224 px
    search = {"arch": arch, "fitness": 1.0, "evolution_s": 0.5, "evolution": {"mflops": [300.0, 350.0]},
              "random": {"mflops": [390.0]}, "random_s": 0.5}
    record = search_record(search, run, SearchConfig(flops_limit=400.0))
    assert record["under_flops_limit"] is True and record["candidates"] == 3 and 100 < record["mflops"] < 400
    search["random"]["mflops"] = [401.0]
    assert search_record(search, run, SearchConfig(flops_limit=400.0))["under_flops_limit"] is False
    assert search_record(search, run, SearchConfig(flops_limit=record["mflops"] - 1))["under_flops_limit"] is False
