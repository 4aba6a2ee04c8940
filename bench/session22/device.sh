#!/bin/bash
# The 22nd session's closing calls, on four H100s (nvidia-h100-x4), one after the other:
#   OUT=$OUT BUDGET=240 bash bench/session22/device.sh suite   the suite on bench/session22/closing.txt,
#       a shard a GPU (scripts/device_run.sh suite-all) into bench/session22/suite/shard_i_4
#       ($OUT/results.tgz)
#   OUT=$OUT bash bench/session22/device.sh tests   every GPU test (scripts/device_run.sh gpu-tests,
#       five groups, logs in $OUT) while abx/t_old (the default) and abx/t_new (FUSEFORGE_CL_TILE_P=128)
#       build; once GPU 1's group is done, the two side by side on bench/session22/cl_tile.txt on
#       GPU 1 (scripts/ab_generated.py; $OUT/ab_tile.log)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
mkdir -p "$OUT"
case "${1:?suite or tests}" in
suite)
  LIST=bench/session22/closing.txt OUTDIR=bench/session22/suite bash scripts/device_run.sh suite-all
  ;;
tests)
  (TEST_LOGS=$OUT bash scripts/device_run.sh gpu-tests > "$OUT/gpu_tests.log" 2>&1) &
  T=bench/session22/cl_tile.txt
  python3 scripts/ab_generated.py abx/t_old abx/t_new $(cat $T) --build-only --jobs 8 > "$OUT/build.log" 2>&1
  for _ in $(seq 100); do   # GPU 1's group (tests/test_check.py) ends first
    grep -q "^exit" "$OUT/gpu-test-1.log" 2>/dev/null && break
    sleep 5
  done
  CUDA_VISIBLE_DEVICES=1 python3 scripts/ab_generated.py abx/t_old abx/t_new $(cat $T) --rounds 5 --trials 30 \
    --json "$OUT/ab_tile.json" > "$OUT/ab_tile.log" 2>&1
  wait
  cat "$OUT/gpu_tests.log"
  tail -n 3 "$OUT/build.log"
  tail -n $(( $(wc -l < $T) * 2 + 2 )) "$OUT/ab_tile.log"
  ;;
esac
