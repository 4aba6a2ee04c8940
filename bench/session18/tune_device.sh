#!/bin/bash
# The 18th session's second device call (one H100): `fuseforge tune` over every suite problem with a
# generated GEMM (gemm_problems.txt: cuBLAS float32 and each tile configuration of each product,
# timed), then the GPU tests of the tuning and of the GEMM.
#   OUT=$OUT bash bench/session18/tune_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
start=$(date +%s)
timeout 420 python3 -m fuseforge.cli tune $(cat bench/session18/gemm_problems.txt) \
  --file "$OUT/gemm_tuning_h100.json" > "$OUT/tune.log" 2>&1
echo "tune rc=$? in $(( $(date +%s) - start )) s"
left=$(( 560 - ($(date +%s) - start) ))
timeout $left python3 -m pytest -q -m gpu tests/test_tuning.py tests/test_gemm.py > "$OUT/gpu_tests.log" 2>&1
tail -3 "$OUT/gpu_tests.log"
grep -v "^\s*$" "$OUT/tune.log" | tail -60
