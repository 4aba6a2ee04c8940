#!/bin/bash
# The 17th session's fifth device call (one H100): the generated convolution reading its input
# NCHW as it is (4-byte copies, rounded to TF32 in shared memory; FUSEFORGE_CONV_NCHW_IN=1, abx/in)
# against the default (the input converted to a rounded channels-last copy first, abx/ih): the
# conversion took 0.091 of level2/006's 0.368 ms (bench/session17/profile).
#   OUT=$OUT bash bench/session17/fifth_device.sh < bench/session17/nchw_problems.txt
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
P=$(cat /dev/stdin)
(FUSEFORGE_CONV_NCHW_IN=1 timeout 300 python3 -m pytest -q -m gpu tests/test_conv_rows.py tests/test_conv_kernel.py > "$OUT/gpu_tests_nchw_in.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests_nchw_in.log") &
python3 scripts/ab_generated.py abx/ih abx/in $P --build-only --jobs 14 > "$OUT/ab_build.log" 2>&1
wait
tail -3 "$OUT/gpu_tests_nchw_in.log"
timeout 240 python3 scripts/ab_generated.py abx/ih abx/in $P --rounds 7 --trials 30 --json "$OUT/ab_nchw_in_h100.json" > "$OUT/ab_nchw_in.log" 2>&1
tail -15 "$OUT/ab_nchw_in.log"
