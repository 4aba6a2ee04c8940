#!/bin/bash
# The outer row schedule (rows over the channels of a channels-last tensor) with 8 loads in flight
# a thread instead of 4 (codegen/rows.py BATCH), on the problems whose statistics kernels use it.
# Locally: bash bench/session15/ab_batch.sh generate; on the device: OUT=... bash bench/session15/ab_batch.sh run
set -eu
D=abx/batch
P="suite/level2/001_conv2d_batchnorm_relu.py suite/level2/005_conv2d_instancenorm_divide.py
suite/level2/016_conv2d_globalavg_bias_logsumexp_sum_multiply.py suite/level2/021_conv2d_hardtanh_mean_tanh.py
suite/level2/027_convtranspose2d_globalavg_bias_logsumexp_sum_multiply.py suite/level3/005_resnet_basic_block.py
suite/level3/007_mobilenetv2_inverted_residual.py suite/level3/017_unet_down_up_block.py"
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  $PY scripts/generate_sources.py $D/old $P
  PYTHONPATH=src $PY -c "import runpy, sys; import fuseforge.codegen.rows as r; r.BATCH = 8; sys.argv = ['g', '$D/new'] + '''$P'''.split(); runpy.run_path('scripts/generate_sources.py', run_name='__main__')"
  ;;
run)
  mkdir -p "${OUT:-out}"
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --build-only > /dev/null
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --rounds 7 --trials 40 --json "${OUT:-out}/ab_batch.json"
  ;;
esac
