#!/bin/bash
# The 17th session's seventh device call (one H100): depthwise convolutions as window kernels
# (FUSEFORGE_DEPTHWISE=1, abx/d1) against the default (cuDNN, abx/d0) on the five problems with one;
# their GPU tests first.
#   OUT=$OUT bash bench/session17/seventh_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
P=$(cat bench/session17/depthwise.txt)
(FUSEFORGE_DEPTHWISE=1 timeout 300 python3 -m pytest -q -m gpu tests/test_depthwise.py > "$OUT/gpu_tests_depthwise.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests_depthwise.log") &
python3 scripts/ab_generated.py abx/d0 abx/d1 $P --build-only --jobs 10 > "$OUT/ab_build.log" 2>&1
wait
tail -3 "$OUT/gpu_tests_depthwise.log"
timeout 200 python3 scripts/ab_generated.py abx/d0 abx/d1 $P --rounds 7 --trials 30 --json "$OUT/ab_depthwise_h100.json" > "$OUT/ab_depthwise.log" 2>&1
tail -7 "$OUT/ab_depthwise.log"
