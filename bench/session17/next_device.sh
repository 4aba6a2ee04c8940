#!/bin/bash
# The 18th session's first device call, prepared in the 17th (one H100, about 2 minutes):
#   OUT=$OUT bash bench/session17/next_device.sh
# 1. where eager's cuDNN 3D convolution runs TF32 for the suite's 16-channel shapes (the question
#    before a generated 3D convolution: eight 3D problems sit at 0.98-1.00x torch.compile);
# 2. ncu on level2/022's generated convolution with its softmax over the channels (the pixel rows'
#    epilogue: 0.488 ms against torch.compile's 0.518, the smallest gain of the folded ones).
# (The 17th session's first version of this file, kernel profiles of seven problems below
# torch.compile, ran in the 17th session itself: bench/session17/profile2.)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
timeout 200 python3 bench/session17/eager_tf32_3d.py > "$OUT/eager_tf32_3d_h100.txt" 2>&1
mkdir -p abx/ncu
python3 scripts/generate_sources.py abx/ncu suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py > /dev/null 2>&1
timeout 150 /usr/local/cuda/bin/ncu --kernel-name conv --launch-count 1 --section SpeedOfLight --section WarpStateStats \
  --section SchedulerStats --section ComputeWorkloadAnalysis --section Occupancy \
  python3 scripts/ab_generated.py abx/ncu abx/ncu suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py --rounds 1 --trials 1 \
  > "$OUT/ncu_conv_022.txt" 2>&1
cat "$OUT/eager_tf32_3d_h100.txt"
grep -E "Duration|Issue Slots|Eligible|Registers Per|Achieved Occ" "$OUT/ncu_conv_022.txt" | head -8
