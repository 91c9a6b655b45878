#!/usr/bin/env bash
# The GPU check: on one GPU, in at most 9 minutes, the five measurements the book's GPU rows need, and one JSON summary.
#
#     bash benchmarks/gpu_check.sh             # on a machine with one CUDA GPU -> data/results/gpu/summary.json
#     bash benchmarks/gpu_check.sh --dry-run   # every step at tiny sizes on the CPU (seconds): proves each one starts
#
# Steps (each under its own time limit; the limits add up to 540 s, so the whole check ends within 9 minutes):
#   ranking     benchmarks/bench_ranking.py: fast ranking vs the reference per-arch loop, paper preset, 256 archs,
#               10,000 test images (target: >= 5x)                                                      limit 120 s
#   training    benchmarks/bench_training.py: training throughput, SPOS and PA&DA, vs the reference loop, paper
#               preset, 12,800 images (target: >= 2x)                                                   limit 150 s
#   paper_run   benchmarks/bench_paper_run.py: 2 epochs of PA&DA with the paper preset on 50,000 images  limit 150 s
#   torchrun    the same script under `torchrun --nproc_per_node=1` through pada_lite.distributed, 1 epoch on 5,000
#               images                                                                                  limit  60 s
#   imagenet    benchmarks/bench_imagenet_folder.py under `torchrun --nproc_per_node=1`: the MobileNet full tier on a
#               synthetic ImageNet folder (10 classes, 6,400 + 500 JPEGs of 256 px, 224 px crops): loading alone, a
#               2-epoch supernet and its search under 400 M FLOPs (run_search), a 1-epoch DDP retraining of the
#               searched arch (AMP, channels_last); images/s, peak GPU memory, FLOPs under the limit     limit  60 s
# Without CIFAR-10 installed (it cannot be downloaded on every machine), the scripts use random tensors of CIFAR-10's
# shape and record "data": "random" in their JSON (timings are real, accuracies meaningless); ImageNet is never there,
# so the imagenet step writes its own folder of JPEGs and records "data": "synthetic".
#
# Output: <out>/<step>.json (each script's own record), <out>/<step>.log, and <out>/summary.json with every step's
# status (ok, failed, timed out), seconds and record (a timed-out imagenet step keeps the phases it finished), the
# targets met, the device and the git commit. <out> is data/results/gpu (OUT=... to change it; a dry run writes to a
# temporary folder unless OUT is set). A failed step does not stop the others; the exit status is 1 if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
TORCHRUN="$(dirname "$PY")/torchrun"
[ -x "$TORCHRUN" ] || TORCHRUN="$(command -v torchrun || true)"

DRY=0
case "${1:-}" in
  "") ;;
  --dry-run) DRY=1 ;;
  *) echo "gpu_check.sh: unknown option '$1' (use --dry-run, or nothing)" >&2; exit 2 ;;
esac

if [ "$DRY" = 1 ]; then
  OUT="${OUT:-$(mktemp -d)}"
  DEVICE=cpu
  export OMP_NUM_THREADS=1
  TINY=(--set space.cells_per_stage=1 --set train.batch_size=16)
  RANKING=(--preset paper --archs sample --count 4 --images 32 --batch-size 16 --device cpu --threads 1)
  TRAINING=(--preset paper --images 32 --batch-size 16 --device cpu --threads 1)
  PAPER=(--epochs 1 --images 32 --device cpu --threads 1 "${TINY[@]}")
  TORCHRUN_ARGS=(--epochs 1 --images 32 --device cpu --threads 1 "${TINY[@]}")
  IMAGENET=(--device cpu --threads 1 --workers 1 --classes 3 --train-images 36 --val-images 6 --valid-images 8
            --jpeg-side 40 --image-size 32 --batch-size 8 --retrain-batch-size 8 --epochs 1 --flops-limit 8
            --population 4 --iterations 2)
else
  OUT="${OUT:-data/results/gpu}"
  DEVICE=cuda
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || { echo "gpu_check.sh: no CUDA GPU visible to torch; run with --dry-run to check the steps on the CPU" >&2; exit 2; }
  RANKING=(--preset paper --archs sample --count 256 --images 10000 --device cuda)
  TRAINING=(--preset paper --images 12800 --device cuda --workers 8)
  PAPER=(--epochs 2 --images 50000 --device cuda)
  TORCHRUN_ARGS=(--epochs 1 --images 5000 --device cuda)
  IMAGENET=(--device cuda --workers 12)
fi
[ -n "$TORCHRUN" ] || { echo "gpu_check.sh: torchrun not found next to $PY or on PATH" >&2; exit 2; }
mkdir -p "$OUT"
STATUS="$OUT/steps.tsv"
: > "$STATUS"

# run_step NAME LIMIT_S COMMAND...: run under `timeout`, log to OUT/NAME.log, record "name status rc seconds"
run_step() {
  local name="$1" limit="$2"
  shift 2
  echo "==> $name (limit ${limit} s): $*"
  local start=$SECONDS rc status
  rm -f "$OUT/$name.json"                                    # never report an earlier run's record
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  case "$rc" in
    0) status=ok ;;
    124|137) status=timed_out ;;
    *) status=failed ;;
  esac
  tail -n 3 "$OUT/$name.log" | sed 's/^/    /'
  echo "    $status in $((SECONDS - start)) s"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((SECONDS - start))" >> "$STATUS"
}

run_step ranking 120 "$PY" benchmarks/bench_ranking.py "${RANKING[@]}" --out "$OUT/ranking.json"
run_step training 150 "$PY" benchmarks/bench_training.py "${TRAINING[@]}" --out "$OUT/training.json"
run_step paper_run 150 "$PY" benchmarks/bench_paper_run.py "${PAPER[@]}" --out "$OUT/paper_run.json"
run_step torchrun 60 "$TORCHRUN" --standalone --nproc_per_node=1 benchmarks/bench_paper_run.py --distributed \
  "${TORCHRUN_ARGS[@]}" --out "$OUT/torchrun.json"
run_step imagenet 60 "$TORCHRUN" --standalone --nproc_per_node=1 benchmarks/bench_imagenet_folder.py \
  "${IMAGENET[@]}" --out "$OUT/imagenet.json"

"$PY" - "$OUT" "$DRY" <<'EOF'
"""Merge the steps' records into summary.json, with the targets and where it ran."""
import json
import subprocess
import sys
from pathlib import Path

import torch

out, dry = Path(sys.argv[1]), sys.argv[2] == "1"
steps = {}
for line in (out / "steps.tsv").read_text().splitlines():
    name, status, rc, seconds = line.split("\t")
    record = out / f"{name}.json"
    steps[name] = {"status": status, "exit_code": int(rc), "seconds": int(seconds),
                   "record": json.loads(record.read_text()) if record.exists() else None}
ranking, training = steps["ranking"]["record"] or {}, steps["training"]["record"] or {}
imagenet = steps["imagenet"]["record"] or {}
targets = {"ranking_speedup_at_least_5x": ranking.get("speedup", 0) >= 5,
           "training_speedup_at_least_2x": all(training.get(m, {}).get("speedup", 0) >= 2 for m in ("SPOS", "PA&DA")),
           "imagenet_arch_under_flops_limit": imagenet.get("search", {}).get("under_flops_limit", False)}
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or None
summary = {"dry_run": dry, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() and not dry else "cpu",
           "torch": torch.__version__, "git_commit": commit, "total_seconds": sum(s["seconds"] for s in steps.values()),
           "all_ok": all(s["status"] == "ok" for s in steps.values()),
           "targets": None if dry else targets, "steps": steps}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
print(f"summary: {out / 'summary.json'}: " + ", ".join(f"{k} {v['status']}" for k, v in steps.items())
      + ("" if dry else f"; targets {targets}"))
sys.exit(0 if summary["all_ok"] else 1)
EOF
