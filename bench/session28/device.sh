#!/bin/bash
# The 28th session's device work (H200s; run from the repository root):
#   A/B of the copy to channels-last (then FUSEFORGE_CL_COPY=128, now the only copy) and of
#   FUSEFORGE_CONV_BARE=planes (now the default), both at ca64378 (where the flags were off by
#   default): bench/session27/device.sh prep-copy here, then
#   OUT=$OUT bash bench/session27/device.sh ab-copy, and AB=planes LIST=bench/session28/planes.txt
#   (abx/planes generated with the flag) -> ab_copy/, ab_planes/; the copy alone: device.sh transpose.
#   level1/035's two times: placement/placement.py, placement2.py; level2/022's epilogue accuracy:
#   accuracy/accuracy_022.py (each: PYTHONPATH=src python3 <script>).
#   OUT=$OUT bash bench/session28/device.sh tests   every GPU test (test_groups.txt over the GPUs)
#   OUT=$OUT bash bench/session28/device.sh bench   fuseforge bench (eager, torch.compile, fuseforge)
#     on bench.txt: the problems the two new defaults change most and those below torch.compile
#     on the H200 in the 27th session, one shard a GPU, into conv_h200/
set -u
S=bench/session28
case "${1:-}" in
tests)
  TEST_GROUPS="$(cat $S/test_groups.txt)" TEST_LOGS="$OUT/tests" bash scripts/device_run.sh gpu-tests
  ;;
bench)
  LIST=${LIST:-$S/bench.txt} OUTDIR=${OUTDIR:-$S/conv_h200} BUDGET=${BUDGET:-480} bash scripts/device_run.sh suite-all
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh tests|bench"; exit 2 ;;
esac
