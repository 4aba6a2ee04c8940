#!/bin/bash
# The 17th session's second device call (one H100):
#   OUT=$OUT bash bench/session17/second_device.sh   (abx/old: the session's start, abx/new: the epilogue
#   by coordinates, abx/st2: the same with FUSEFORGE_CONV_STAGES=2)
# 1. the conv GPU tests (the epilogue change) while the files build;
# 2. A/B old -> new on ten generated-conv problems; new -> st2 on six.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
L="examples/conv2d_min_add_mul.py suite/level1/021_conv2d_standard.py suite/level1/022_conv2d_asymmetric_kernel.py suite/level1/027_conv2d_pointwise.py suite/level2/004_conv2d_bias_scale_sigmoid.py suite/level2/006_conv2d_hardswish_relu.py suite/level2/012_conv2d_relu_bias_add.py suite/level2/015_conv2d_batchnorm_eval_relu6.py suite/level2/017_conv2d_divide_leakyrelu.py suite/level2/018_conv2d_subtract_subtract_mish.py"
S="suite/level2/006_conv2d_hardswish_relu.py suite/level2/017_conv2d_divide_leakyrelu.py suite/level1/021_conv2d_standard.py suite/level1/027_conv2d_pointwise.py suite/level2/011_conv2d_scale_min_channels.py suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py"
(timeout 300 python3 -m pytest -q -m gpu tests/test_conv_rows.py tests/test_conv_kernel.py > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
python3 scripts/ab_generated.py abx/old abx/new $L --build-only --jobs 14 > "$OUT/ab_build1.log" 2>&1
python3 scripts/ab_generated.py abx/new abx/st2 $S --build-only --jobs 14 > "$OUT/ab_build2.log" 2>&1
wait
tail -3 "$OUT/gpu_tests.log"
timeout 200 python3 scripts/ab_generated.py abx/old abx/new $L --rounds 7 --trials 30 --json "$OUT/ab_epilogue_h100.json" > "$OUT/ab_epilogue.log" 2>&1
timeout 150 python3 scripts/ab_generated.py abx/new abx/st2 $S --rounds 7 --trials 30 --json "$OUT/ab_stages2_h100.json" > "$OUT/ab_stages2.log" 2>&1
tail -12 "$OUT/ab_epilogue.log"
tail -8 "$OUT/ab_stages2.log"
