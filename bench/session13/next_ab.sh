#!/bin/bash
# The flag-gated steps of the 13th session (FUSEFORGE_RECOMPUTE=1, FUSEFORGE_CL_TILE_IN=1), to A/B on a GPU (scripts/ab_generated.py), then turn
# on if it wins. Locally (no GPU): generate OLD and NEW into an untracked, not ignored folder, so
# that they travel to the device:
#   bash bench/session13/next_ab.sh generate
# then on the device (one call; builds both, then times eager, old and new side by side):
#   bash bench/session13/next_ab.sh run
set -eu
D=abx/next
P="suite/level3/008_efficientnet_mbconv_se.py suite/level3/019_squeeze_excitation_resnet_block.py"  # FUSEFORGE_RECOMPUTE=1
P2="suite/level3/009_densenet_block.py suite/level3/017_unet_down_up_block.py"                       # FUSEFORGE_CL_TILE_IN=1
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  $PY scripts/generate_sources.py $D/old $P $P2
  FUSEFORGE_RECOMPUTE=1 $PY scripts/generate_sources.py $D/new $P
  FUSEFORGE_CL_TILE_IN=1 $PY scripts/generate_sources.py $D/new $P2
  ;;
run)
  mkdir -p "${OUT:-out}"
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P $P2 --build-only > /dev/null
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P $P2 --rounds 7 --trials 40 --json "${OUT:-out}/ab_next.json"
  ;;
esac
