#!/bin/bash
# The 17th session's fourth device call (one H100): the outer row schedule's loads in flight,
# BATCH 4 (abx/b4, the default) against FUSEFORGE_OUTER_BATCH=8 (abx/b8), on 14 problems whose row
# kernels take that path (level2/016's mean over the pixels of a channels-last convolution: 0.115 ms
# against torch.compile's 0.090, bench/session17/profile).
#   OUT=$OUT bash bench/session17/fourth_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
P=$(cat /dev/stdin)
python3 scripts/ab_generated.py abx/b4 abx/b8 $P --build-only --jobs 15 > "$OUT/ab_build.log" 2>&1
timeout 240 python3 scripts/ab_generated.py abx/b4 abx/b8 $P --rounds 7 --trials 30 --json "$OUT/ab_batch8_h100.json" > "$OUT/ab_batch8.log" 2>&1
tail -16 "$OUT/ab_batch8.log"
