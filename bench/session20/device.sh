#!/bin/bash
# The 20th session's device calls (one H100):
#   OUT=$OUT LIST=... bash bench/session20/device.sh first   the GPU tests in $TESTS (the replay's by
#       default) while abx/$OLD and abx/$NEW build (default off, on: FUSEFORGE_REPLAY=0 and the
#       default), then the two side by side (scripts/ab_generated.py: GPU time and host time)
# The closing calls ran scripts/device_run.sh directly (suite-all, gpu-tests; bench/README.md).
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
OUT=${OUT:-out}
OLD=${OLD:-off} NEW=${NEW:-on}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
case "${1:?first}" in
first)
  (python3 -m pytest -q -m gpu ${TESTS:-tests/test_replay.py tests/test_functional_api.py} > "$OUT/gpu_tests.log" 2>&1
   echo "exit $?" >> "$OUT/gpu_tests.log") &
  python3 scripts/ab_generated.py abx/$OLD abx/$NEW $(cat "$LIST") --build-only --jobs 14 > "$OUT/ab_build.log" 2>&1
  wait
  grep -E "^FAILED|^E  " "$OUT/gpu_tests.log" | head -20; tail -n 2 "$OUT/gpu_tests.log"
  python3 scripts/ab_generated.py abx/$OLD abx/$NEW $(cat "$LIST") --rounds ${ROUNDS:-5} --trials 30 \
    --json "$OUT/ab_${OLD}_$NEW.json" > "$OUT/ab_${OLD}_$NEW.log" 2>&1
  tail -4 "$OUT/ab_build.log"
  tail -n $(( $(wc -l < "$LIST") * 2 + 2 )) "$OUT/ab_${OLD}_$NEW.log"
  ;;
esac
