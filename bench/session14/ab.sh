#!/bin/bash
# The 14th session's two new steps, A/B on a GPU (scripts/ab_generated.py): window kernels that
# read a channels-last convolution through a tile (FUSEFORGE_CL_WINDOWS=0 turns them off) and norms
# that are a result of the model split for it (FUSEFORGE_SPLIT_RESULTS=0). Locally (no GPU):
#   bash bench/session14/ab.sh generate     (OLD with both off, NEW as is: untracked, travels to the device)
# then on the device:
#   OUT=... bash bench/session14/ab.sh run
set -eu
D=abx/s14
P="suite/level2/008_conv2d_subtract_tanh_subtract_avgpool.py suite/level2/009_conv2d_tanh_scale_bias_maxpool.py
suite/level2/013_conv2d_avgpool_sigmoid_sum.py suite/level2/026_convtranspose2d_maxpool_hardtanh_mean_tanh.py
suite/level2/042_convtranspose3d_maxpool_softmax_subtract_swish_max.py suite/level2/043_convtranspose3d_batchnorm_avgpool_avgpool.py
suite/level2/044_convtranspose3d_scale_avgpool_bias_scale.py suite/level2/045_convtranspose3d_leakyrelu_multiply_leakyrelu_maxpool.py
suite/level3/004_vgg_block.py suite/level2/002_conv2d_gelu_groupnorm.py suite/level2/028_convtranspose2d_gelu_groupnorm.py"
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  FUSEFORGE_CL_WINDOWS=0 FUSEFORGE_SPLIT_RESULTS=0 $PY scripts/generate_sources.py $D/old $P
  $PY scripts/generate_sources.py $D/new $P
  ;;
run)
  mkdir -p "${OUT:-out}"
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --build-only > /dev/null
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --rounds 7 --trials 40 --json "${OUT:-out}/ab_s14.json"
  ;;
esac
