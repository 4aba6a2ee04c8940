#!/bin/bash
# The 17th session's sixth device call (one H100): the outer schedule's split rows in one wave
# (8 splits of 4096 rows where 9 gave 1152 blocks, 96 more than the H100 holds; abx/w1) against
# the earlier split (abx/w0) on the three problems it changes; their row GPU tests; then the three
# re-timed through the suite bench (LIST bench/session17/wave.txt into bench/session17/wave).
#   OUT=$OUT bash bench/session17/sixth_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
P=$(cat bench/session17/wave.txt)
(timeout 300 python3 -m pytest -q -m gpu tests/test_rows.py > "$OUT/gpu_tests_rows.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests_rows.log") &
python3 scripts/ab_generated.py abx/w0 abx/w1 $P --build-only --jobs 6 > "$OUT/ab_build.log" 2>&1
wait
tail -3 "$OUT/gpu_tests_rows.log"
timeout 120 python3 scripts/ab_generated.py abx/w0 abx/w1 $P --rounds 7 --trials 30 --json "$OUT/ab_one_wave_h100.json" > "$OUT/ab_one_wave.log" 2>&1
tail -5 "$OUT/ab_one_wave.log"
LIST=bench/session17/wave.txt OUTDIR=bench/session17/wave BUDGET=150 OUT=$OUT/s timeout 200 \
  bash scripts/device_run.sh suite-all 2>&1 | tail -4
