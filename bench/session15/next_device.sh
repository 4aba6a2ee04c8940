#!/bin/bash
# The 16th session's first device call, prepared in the 15th (about 420 s on one H100):
#   OUT=$OUT bash bench/session15/next_device.sh
# 1. the GPU tests never run yet: tests/test_conv_kernel.py (the generated convolution's tails,
#    padding, stride, dilation against float64 of the rounded operands and against eager) and
#    tests/test_softmax_split.py;
# 2. ncu on the generated convolution of level2/024 (FUSEFORGE_CONV=1; it loses 9 % there while
#    006 wins 11 %): what limits its main loop (issue slots, shared memory, the gather's latency);
# 3. the suite re-timed for the 17 problems FUSEFORGE_FOREACH_STATE and FUSEFORGE_SPLIT_SOFTMAX
#    changed (merge bench/session16/flags into bench/suite_full as bench/README says).
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
PYTHONPATH=src timeout 200 python3 -m pytest -q -m gpu tests/test_conv_kernel.py tests/test_softmax_split.py 2>&1 | tail -4
mkdir -p abx/ncu
FUSEFORGE_CONV=all PYTHONPATH=src python3 scripts/generate_sources.py abx/ncu suite/level2/024_conv2d_swish_residual.py > /dev/null 2>&1
PYTHONPATH=src timeout 150 /usr/local/cuda/bin/ncu --kernel-name "regex:ffconv::conv<" --launch-count 1 --section SpeedOfLight --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section Occupancy python3 scripts/ab_generated.py abx/ncu abx/ncu \
  suite/level2/024_conv2d_swish_residual.py --rounds 1 --trials 1 > "$OUT/ncu_conv_024.txt" 2>&1
grep -E "Duration|Throughput|Issue Slots|Stall|Occupancy" "$OUT/ncu_conv_024.txt" | head -30
FUSEFORGE_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) LIST=bench/session15/changed_flags.txt \
  OUTDIR=bench/session16/flags BUDGET=330 OUT=$OUT/s timeout 400 bash scripts/device_run.sh suite-all 2>&1 | tail -6
