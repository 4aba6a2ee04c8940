#!/bin/bash
# A/B of FUSEFORGE_FOREACH_STATE=1 (the state updates of one dtype copied by one aten::_foreach_copy_)
# on batch-norm problems. Locally: bash bench/session14/ab_foreach.sh generate; on the device: ... run
set -eu
D=abx/foreach
P="suite/level3/009_densenet_block.py suite/level3/017_unet_down_up_block.py suite/level3/006_resnet_bottleneck_block.py
suite/level2/001_conv2d_batchnorm_relu.py suite/level1/061_batch_norm_train.py"
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  $PY scripts/generate_sources.py $D/old $P
  FUSEFORGE_FOREACH_STATE=1 $PY scripts/generate_sources.py $D/new $P
  ;;
run)
  mkdir -p "${OUT:-out}"
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --build-only > /dev/null
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --rounds 7 --trials 40 --json "${OUT:-out}/ab_foreach.json"
  ;;
esac
