#!/bin/bash
# The flag-gated step of the 13th session, to A/B on a GPU (scripts/ab_generated.py), then turn
# on if it wins. Locally (no GPU): generate OLD and NEW into an untracked, not ignored folder, so
# that they travel to the device:
#   bash bench/session13/next_ab.sh generate
# then on the device (one call; builds both, then times eager, old and new side by side):
#   bash bench/session13/next_ab.sh run
set -eu
D=abx/next
P="suite/level3/008_efficientnet_mbconv_se.py suite/level3/019_squeeze_excitation_resnet_block.py"  # FUSEFORGE_RECOMPUTE=1
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  $PY scripts/generate_sources.py $D/old $P
  FUSEFORGE_RECOMPUTE=1 $PY scripts/generate_sources.py $D/new $P
  ;;
run)
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --build-only > /dev/null
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P --rounds 7 --trials 40 --json "${OUT:-out}/ab_next.json"
  ;;
esac
