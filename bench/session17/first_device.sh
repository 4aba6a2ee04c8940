#!/bin/bash
# The 17th session's first device call (one H100): the pixel-row convolutions (plan_conv.fold_pixel_rows)
#   OUT=$OUT bash bench/session17/first_device.sh     (abx/old, abx/new: generated files, before / after)
# 1. their GPU tests and the conv kernel's (while the A/B's files build);
# 2. A/B of the five problems whose channel rows now run in the convolution (old: cuDNN + a row kernel);
# 3. ncu on the generated convolutions of level2/006 (pointwise epilogue) and level2/022 (softmax rows).
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
P="suite/level2/003_conv2d_min_softmax.py suite/level2/011_conv2d_scale_min_channels.py suite/level2/019_conv2d_layernorm_channels_gelu.py suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py suite/level2/023_conv2d_clamp_multiply_max.py"
(timeout 300 python3 -m pytest -q -m gpu tests/test_conv_rows.py tests/test_conv_kernel.py > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
python3 scripts/ab_generated.py abx/old abx/new $P --build-only > "$OUT/ab_build.log" 2>&1
wait
tail -4 "$OUT/gpu_tests.log"
timeout 200 python3 scripts/ab_generated.py abx/old abx/new $P --rounds 7 --trials 30 --json "$OUT/ab_rows_h100.json" > "$OUT/ab_rows.log" 2>&1
mkdir -p abx/ncu
python3 scripts/generate_sources.py abx/ncu suite/level2/006_conv2d_hardswish_relu.py > /dev/null 2>&1
for p in suite/level2/006_conv2d_hardswish_relu.py:abx/ncu suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py:abx/new; do
  f=${p%%:*}; d=${p##*:}; n=$(basename $f .py)
  timeout 100 /usr/local/cuda/bin/ncu --kernel-name conv --launch-count 1 --section SpeedOfLight \
    --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis --section Occupancy \
    --section LaunchStats python3 scripts/ab_generated.py $d $d $f --rounds 1 --trials 1 > "$OUT/ncu_$n.txt" 2>&1
  echo "== $n"; grep -E "^    Duration|Issue Slots Busy|Registers Per|Achieved Occupancy|Compute \(SM\) Throughput|Memory Throughput" "$OUT/ncu_$n.txt" | head -8
done
tail -9 "$OUT/ab_rows.log"
