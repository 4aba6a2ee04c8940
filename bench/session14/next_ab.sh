#!/bin/bash
# For the 15th session: the A/B of FUSEFORGE_SPLIT_SOFTMAX=1 (a softmax that only reductions or
# pooling read, split into its statistics and recomputed by its readers: level2/038, 039, the only
# suite problems it changes). Locally: bash bench/session14/next_ab.sh generate; on the device:
# OUT=... bash bench/session14/next_ab.sh run
set -eu
D=abx/softmax
P="suite/level2/038_conv3d_softmax_maxpool_maxpool.py suite/level2/039_conv3d_hardswish_relu_softmax_mean.py"
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  $PY scripts/generate_sources.py $D/old $P
  FUSEFORGE_SPLIT_SOFTMAX=1 $PY scripts/generate_sources.py $D/new $P
  ;;
run)
  mkdir -p "${OUT:-out}"
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --build-only > /dev/null
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --rounds 7 --trials 40 --json "${OUT:-out}/ab_softmax.json"
  ;;
esac
