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
#   OUT=$OUT bash bench/session28/device.sh final   after a softmax's exp(x - max) was kept for its
#     result: every GPU test, fuseforge bench on bench_final.txt (bench.txt and the four 3D
#     problems the change touches) into conv_h200_final/, then the change's A/B on exp_once.txt
#     (abx/def: generated before it, abx/new: after; both made here with scripts/generate_sources.py)
set -u
S=bench/session28
case "${1:-}" in
tests)
  TEST_GROUPS="$(cat $S/test_groups.txt)" TEST_LOGS="$OUT/tests" bash scripts/device_run.sh gpu-tests
  ;;
bench)
  LIST=${LIST:-$S/bench.txt} OUTDIR=${OUTDIR:-$S/conv_h200} BUDGET=${BUDGET:-480} bash scripts/device_run.sh suite-all
  ;;
final)
  bash $S/device.sh tests
  LIST=$S/bench_final.txt OUTDIR=$S/conv_h200_final BUDGET=300 bash $S/device.sh bench
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT/ab"
  timeout 100 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/exp_once.txt) --build-only --jobs 4 \
    > "$OUT/ab/build.log" 2>&1
  timeout 120 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/exp_once.txt) --rounds 5 --trials 20 \
    --json "$OUT/ab/ab_exp_once.json" > "$OUT/ab/ab_exp_once.log" 2>&1
  tail -n 4 "$OUT/ab/ab_exp_once.log"
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh tests|bench|final"; exit 2 ;;
esac
