#!/bin/bash
# The 17th session's first device call, prepared in the 16th (about 420 s on one H100):
#   OUT=$OUT bash bench/session16/next_device.sh
# 1. every GPU test (five groups now: the 16th session's four-group run was cut at 430 s with three
#    window tests, test_windows paired_1d and seed 2, not yet run; the CPU twin's conv change after
#    it left the device code's SASS identical);
# 2. ncu on the generated convolution of level2/006 after the leaner gather (what limits it now:
#    the epilogue is about half its instructions at 32 accumulators a thread).
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
OUT=$OUT/t timeout 400 bash scripts/device_run.sh gpu-tests 2>&1 | tail -16
mkdir -p abx/ncu
PYTHONPATH=src python3 scripts/generate_sources.py abx/ncu suite/level2/006_conv2d_hardswish_relu.py > /dev/null 2>&1
PYTHONPATH=src timeout 120 /usr/local/cuda/bin/ncu --kernel-name conv --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis --section Occupancy \
  python3 scripts/ab_generated.py abx/ncu abx/ncu suite/level2/006_conv2d_hardswish_relu.py --rounds 1 --trials 1 \
  > "$OUT/ncu_conv_006.txt" 2>&1
grep -E "Duration|Issue Slots|Eligible|Theoretical Occ" "$OUT/ncu_conv_006.txt" | head -8
