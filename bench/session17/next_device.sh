#!/bin/bash
# The 18th session's first device call, prepared in the 17th (one H100, about 5 minutes):
#   OUT=$OUT bash bench/session17/next_device.sh
# Where the time goes on the conv problems still below torch.compile (bench/conv_table.md): every
# kernel of eager, torch.compile and fuseforge per problem (scripts/profile_kernels.py). Known from
# the 17th session (bench/session17/profile): level2/016's mean over the pixels of a channels-last
# convolution takes 0.115 ms in our outer-schedule row kernel against torch.compile's 0.090; our
# generated convolution takes 0.275 ms on level2/006 where cuDNN's 256x64-tile kernel takes 0.194.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
timeout 560 python3 scripts/profile_kernels.py suite/level2/005_conv2d_instancenorm_divide.py \
  suite/level2/028_convtranspose2d_gelu_groupnorm.py suite/level2/031_convtranspose2d_min_sum_gelu_add.py \
  suite/level2/034_conv3d_groupnorm_mean.py suite/level2/051_conv1d_gated_tanh_sigmoid.py \
  suite/level1/026_conv2d_depthwise.py suite/level3/007_mobilenetv2_inverted_residual.py \
  --out "$OUT/prof" > "$OUT/profile.log" 2>&1
grep -v "plan:\|Warning\|warn\|cls.__new__\|getattr(e" "$OUT/profile.log" | head -120
