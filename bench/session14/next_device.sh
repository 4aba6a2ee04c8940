#!/bin/bash
# The 15th session's first device call, prepared in the 14th (about 250 s on one H100):
#   locally:   bash bench/session14/next_ab.sh generate
#   device:    OUT=$OUT bash bench/session14/next_device.sh
# 1. cl_tile4: transposing tiles of 64 and 128 channels against the generated 32 (the ~10 conv +
#    pointwise problems at 0.96-0.97x torch.compile; its Triton kernel is at the copy rate);
# 2. the A/B of FUSEFORGE_SPLIT_SOFTMAX=1 (level2/038, 039);
# 3. kernel breakdowns of the problems furthest below torch.compile.
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
nvcc -O3 -arch=sm_90 bench/session14/cl_tile2/cl_tile4.cu -o /tmp/cl_tile4 && timeout 60 /tmp/cl_tile4 > "$OUT/cl_tile4_h100.md"
grep -E "64,64,15876" "$OUT/cl_tile4_h100.md"
OUT=$OUT/ab bash bench/session14/next_ab.sh run 2>&1 | tail -4
OUT=$OUT/p timeout 200 bash scripts/device_run.sh profile suite/level3/017_unet_down_up_block.py \
  suite/level2/028_convtranspose2d_gelu_groupnorm.py suite/level2/016_conv2d_globalavg_bias_logsumexp_sum_multiply.py 2>&1 \
  | grep -v Warn | tail -80
