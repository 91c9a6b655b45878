#!/usr/bin/env bash
# Compute what is missing of the lite benchmark v2 on a 2-core machine, one single-threaded chain per core, at low
# priority; every finished unit is saved at once, so stopping and re-running continues where it was.
#   core 1: ground truth v2 -> ground truth v2-motivation -> experiment v2-ablations -> experiment v2-motivation
#   core 2: experiment v2-main (seed by seed: every method on seeds 0-4, then SPOS and PA&DA on seeds 5-24)
# Logs go to ${LOGS:-logs}/; commit data/ as units finish (`git add data && git commit`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
LOGS=${LOGS:-logs}
mkdir -p "$LOGS"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
chain() {  # run the given pada_lite commands one after another, each logged
  local name=$1; shift
  for command in "$@"; do
    echo "$(date -u +%FT%TZ) start: $command" >> "$LOGS/$name.log"
    # shellcheck disable=SC2086
    nice -n 15 "$PY" -m pada_lite $command >> "$LOGS/$name.log" 2>&1
  done
}
chain core1 "groundtruth --benchmark v2 --workers 1" "groundtruth --benchmark v2-motivation --workers 1" \
            "experiment v2-ablations --workers 1" "experiment v2-motivation --workers 1" &
chain core2 "experiment v2-main --workers 1" &
echo "started; progress: tail -f $LOGS/core1.log $LOGS/core2.log; python -m pada_lite report"
wait
