#!/bin/bash
# The 18th session's third device call (one H100): A/B of the four problems whose plan the measured
# GEMM times change (bench/session18/tune/gemm_tuning_h100.json): OLD planned by the estimates, NEW
# with FUSEFORGE_TUNING=that file and FUSEFORGE_GPU="NVIDIA H100 80GB HBM3" (scripts/generate_sources.py).
#   OUT=$OUT bash bench/session18/tuned_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
P="suite/level3/002_mlp_wide.py suite/level3/003_lenet5.py suite/level3/015_lstm_classifier.py suite/level3/018_convnext_block.py"
timeout 500 python3 scripts/ab_generated.py abx/old abx/new $P --rounds 7 --trials 30 --json "$OUT/ab_tuned_h100.json" 2>&1 | tail -8
