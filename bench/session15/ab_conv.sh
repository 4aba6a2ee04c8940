#!/bin/bash
# Generated convolutions (FUSEFORGE_CONV=all, =1 before the 16th session: the implicit GEMM on TF32 tensor cores with the
# epilogue fused, NCHW in and out) against the default plan (cuDNN channels-last).
# Locally: bash bench/session15/ab_conv.sh generate; on the device: OUT=... bash bench/session15/ab_conv.sh run
set -eu
D=abx/conv
# LIST=bench/session15/conv_changed.txt: the 17 problems whose plan FUSEFORGE_CONV=1 changes since
# convolutions without a pointwise epilogue stay cuDNN's (the default list: this session's 8)
P=${LIST:+$(cat "$LIST")}
P=${P:-"examples/conv2d_min_add_mul.py suite/level2/001_conv2d_batchnorm_relu.py suite/level2/004_conv2d_bias_scale_sigmoid.py
suite/level2/006_conv2d_hardswish_relu.py suite/level2/016_conv2d_globalavg_bias_logsumexp_sum_multiply.py
suite/level2/024_conv2d_swish_residual.py suite/level3/004_vgg_block.py suite/level3/017_unet_down_up_block.py"}
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  $PY scripts/generate_sources.py $D/old $P
  FUSEFORGE_CONV=all $PY scripts/generate_sources.py $D/new $P
  ;;
run)
  mkdir -p "${OUT:-out}"
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --build-only > /dev/null
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --rounds 7 --trials 30 --json "${OUT:-out}/ab_conv.json"
  ;;
esac
