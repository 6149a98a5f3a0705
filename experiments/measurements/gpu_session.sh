#!/usr/bin/env bash
# The device command that produced the GPU measurements in this folder (run from the repo root
# on a lent GPU machine, wheels for packages its image lacks in .whl/):
#   ROUNDS=3 BUDGET=330 bash experiments/measurements/gpu_session.sh [STAGE ...]
# STAGE: calibrate, measure, measure-test, measure-warm (gpu_session.py; default all of them).
# BUDGET (seconds, default none) stops the Python session with SIGINT so that what it finished
# is still packed: everything is packed into OUT/gpu-session.tgz (the device tool returns 8
# files).
set -uo pipefail
ARCHIVE=${OUT:-gpu-out}
OUT=$(mktemp -d)
mkdir -p "$ARCHIVE"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,pcie.link.gen.max,pcie.link.width.max --format=csv > "$OUT/nvidia-smi.csv"
lscpu > "$OUT/lscpu.txt"
budget=()
if [ -n "${BUDGET:-}" ]; then budget=(timeout -s INT "$BUDGET"); fi
"${budget[@]}" python3 experiments/measurements/gpu_session.py "$OUT" "$@" 2>&1 \
  | tee "$OUT/session.log"
tar czf "$ARCHIVE/gpu-session.tgz" -C "$OUT" .
