#!/bin/bash
# The flag-gated changes of the 12th session, to A/B on a GPU (scripts/ab_generated.py), then turn
# on what wins. Locally (no GPU): generate OLD and NEW into an untracked, not ignored folder, so that
# they travel to the device:
#   bash bench/session12/next_ab.sh generate
# then on the device (one call; builds several at once, then times eager, old and new side by side):
#   bash bench/session12/next_ab.sh run
set -eu
D=abx/next
P_GN="suite/level2/014_conv2d_groupnorm_tanh_hardswish_residual_logsumexp.py"   # FUSEFORGE_SPLIT_GROUP_NORM=1
P_1D="suite/level1/083_avgpool1d.py"                                            # FUSEFORGE_PAIR_1D=1
P_SIDE="suite/level2/001_conv2d_batchnorm_relu.py suite/level2/040_conv3d_batchnorm_relu.py
  suite/level3/005_resnet_basic_block.py suite/level3/006_resnet_bottleneck_block.py
  suite/level3/017_unet_down_up_block.py"                                       # FUSEFORGE_SCALAR_SIDE=1
P_K="suite/level2/088_bmm_softmax.py suite/level2/089_bmm_scale_causal_mask_softmax.py"  # FUSEFORGE_WGMMA_MIN_K=128
PY=${PY:-.venv/bin/python}
case "$1" in
generate)
  $PY scripts/generate_sources.py $D/old $P_GN $P_1D $P_SIDE $P_K
  FUSEFORGE_SPLIT_GROUP_NORM=1 FUSEFORGE_PAIR_1D=1 FUSEFORGE_SCALAR_SIDE=1 FUSEFORGE_WGMMA_MIN_K=128 \
    $PY scripts/generate_sources.py $D/new $P_GN $P_1D $P_SIDE $P_K
  ;;
run)
  PYTHONPATH=src python3 scripts/ab_generated.py $D/old $D/new $P_GN $P_1D $P_SIDE $P_K --rounds 7 --trials 40 \
    --json "${OUT:-out}/ab_next.json"
  ;;
esac
