#!/bin/bash
# The 18th session's fourth device call (one H100), after split-K: `fuseforge tune` again over every
# suite problem with a generated GEMM and level1/005 (split-K candidates now; the GEMM library
# changed, so the shipped table is stale), then the GPU tests of the GEMM (split-K against float64)
# and of the tuning.
#   OUT=$OUT bash bench/session18/retune_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
start=$(date +%s)
timeout 400 python3 -m fuseforge.cli tune $(cat bench/session18/gemm_problems.txt) \
  --file "$OUT/gemm_tuning_h100.json" > "$OUT/tune.log" 2>&1
echo "tune rc=$? in $(( $(date +%s) - start )) s"
left=$(( 570 - ($(date +%s) - start) ))
timeout $left python3 -m pytest -q -m gpu tests/test_gemm.py tests/test_tuning.py > "$OUT/gpu_tests.log" 2>&1
tail -3 "$OUT/gpu_tests.log"
grep -v "^\s*$" "$OUT/tune.log" | grep -v "UserWarning\|_warn_once" | tail -62
