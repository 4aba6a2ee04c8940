#!/bin/bash
# The 17th session's third device call (one H100):
#   OUT=$OUT bash bench/session17/third_device.sh
# 1. the conv GPU tests (a Welford stage's elements folded at once in pixel rows; the epilogue a pixel at a time);
# 2. A/B: abx/new (the epilogue by coordinates) -> abx/v2 (a pixel at a time) on six problems;
#    abx/r19old (the session's start) -> abx/r19 (FUSEFORGE_CONV=all: level2/019's layer norm in the
#    convolution, level2/024's 64 -> 64 channels generated).
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
L="suite/level2/006_conv2d_hardswish_relu.py suite/level2/017_conv2d_divide_leakyrelu.py suite/level2/004_conv2d_bias_scale_sigmoid.py suite/level2/015_conv2d_batchnorm_eval_relu6.py suite/level2/018_conv2d_subtract_subtract_mish.py suite/level1/021_conv2d_standard.py"
R="suite/level2/019_conv2d_layernorm_channels_gelu.py suite/level2/024_conv2d_swish_residual.py"
(timeout 300 python3 -m pytest -q -m gpu tests/test_conv_rows.py tests/test_conv_kernel.py > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
python3 scripts/ab_generated.py abx/new abx/v2 $L --build-only --jobs 14 > "$OUT/ab_build1.log" 2>&1
python3 scripts/ab_generated.py abx/r19old abx/r19 $R --build-only --jobs 14 > "$OUT/ab_build2.log" 2>&1
wait
tail -3 "$OUT/gpu_tests.log"
timeout 150 python3 scripts/ab_generated.py abx/new abx/v2 $L --rounds 7 --trials 30 --json "$OUT/ab_epilogue2_h100.json" > "$OUT/ab_epilogue2.log" 2>&1
timeout 100 python3 scripts/ab_generated.py abx/r19old abx/r19 $R --rounds 7 --trials 30 --json "$OUT/ab_019_024_h100.json" > "$OUT/ab_019_024.log" 2>&1
tail -8 "$OUT/ab_epilogue2.log"
tail -4 "$OUT/ab_019_024.log"
