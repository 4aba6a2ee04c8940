#!/bin/bash
# The 16th session's second device call (about 450 s on one H100): OUT=$OUT bash bench/session16/call2.sh
# 1. why tests/test_conv_kernel.py's GPU test fails (first GPU run, call 1): per-output errors of
#    the generated convolution and of eager (conv_diag.py), and the test's own message;
# 2. ncu on level2/024's generated convolution (the kernel is named plain "conv");
# 3. the A/B of the 17 problems FUSEFORGE_CONV=1 changes (bench/session15/conv_changed.txt,
#    generated beforehand by bench/session15/ab_conv.sh generate).
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
PYTHONPATH=src timeout 150 python3 bench/session16/conv_diag.py > "$OUT/conv_diag.txt" 2>&1; tail -8 "$OUT/conv_diag.txt"
PYTHONPATH=src timeout 100 python3 -m pytest -q -m gpu -x tests/test_conv_kernel.py > "$OUT/conv_test.txt" 2>&1
grep -E "^E |passed|failed" "$OUT/conv_test.txt" | head -8
mkdir -p abx/ncu
FUSEFORGE_CONV=all PYTHONPATH=src python3 scripts/generate_sources.py abx/ncu suite/level2/024_conv2d_swish_residual.py > /dev/null 2>&1
PYTHONPATH=src timeout 120 /usr/local/cuda/bin/ncu --kernel-name conv --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section MemoryWorkloadAnalysis --section Occupancy --section SchedulerStats \
  --section ComputeWorkloadAnalysis python3 scripts/ab_generated.py abx/ncu abx/ncu \
  suite/level2/024_conv2d_swish_residual.py --rounds 1 --trials 1 > "$OUT/ncu_conv_024.txt" 2>&1
grep -cE "Duration" "$OUT/ncu_conv_024.txt"
LIST=bench/session15/conv_changed.txt timeout 330 bash bench/session15/ab_conv.sh run 2>&1 | tail -20
