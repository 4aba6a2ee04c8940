#!/bin/bash
# The 19th session's device calls (one H100):
#   OUT=$OUT bash bench/session19/device.sh first   the convolution GPU tests, then old / new
#       generated files side by side (scripts/ab_generated.py over abx/old, abx/new and the problems
#       in $LIST), then kernel profiles of $PROFILE
#   OUT=$OUT bash bench/session19/device.sh closing   every GPU test (scripts/device_run.sh gpu-tests),
#       then the halo kernel's A/B (abx/default against abx/halo: FUSEFORGE_CONV_HALO=1, over the
#       problems in bench/session19/halo.txt; their files built while the tests run)
#   OUT=$OUT PAIRS="a:b c:d" LIST=... bash bench/session19/device.sh pairs   abx/a against abx/b, then
#       abx/c against abx/d, ... (scripts/ab_generated.py; every file built first, at once)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
case "${1:?first}" in
first)
  (python3 -m pytest -q -m gpu ${TESTS:-tests/test_conv_kernel.py tests/test_conv_rows.py} > "$OUT/gpu_tests.log" 2>&1
   echo "exit $?" >> "$OUT/gpu_tests.log") &
  python3 scripts/ab_generated.py abx/old abx/new $(cat "$LIST") --build-only > "$OUT/ab_build.log" 2>&1
  wait
  grep -E "^FAILED|^E  " "$OUT/gpu_tests.log" | head -20; tail -n 2 "$OUT/gpu_tests.log"
  python3 scripts/ab_generated.py abx/old abx/new $(cat "$LIST") --rounds 7 --trials 30 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
  if [ -n "${PROFILE:-}" ]; then timeout 200 python3 scripts/profile_kernels.py $PROFILE --out "$OUT/profile" > "$OUT/profile.log" 2>&1; fi
  tail -4 "$OUT/ab_build.log"
  tail -n 25 "$OUT/ab.log"
  grep -v "^\s*$" "$OUT/profile.log" 2>/dev/null | cut -c1-150 | head -60
  ;;
closing)
  python3 scripts/ab_generated.py abx/default abx/halo $(cat bench/session19/halo.txt) --build-only > "$OUT/ab_build.log" 2>&1 &
  OUT=$OUT/t bash scripts/device_run.sh gpu-tests
  wait
  python3 scripts/ab_generated.py abx/default abx/halo $(cat bench/session19/halo.txt) --rounds 5 --trials 30 \
    --json "$OUT/ab_halo.json" > "$OUT/ab_halo.log" 2>&1
  tail -4 "$OUT/ab_build.log"
  tail -n 12 "$OUT/ab_halo.log"
  ;;
pairs)
  for p in $PAIRS; do
    python3 scripts/ab_generated.py abx/${p%%:*} abx/${p##*:} $(cat "$LIST") --build-only >> "$OUT/ab_build.log" 2>&1
    python3 scripts/ab_generated.py abx/${p%%:*} abx/${p##*:} $(cat "$LIST") --rounds ${ROUNDS:-7} --trials 30 \
      --json "$OUT/ab_${p%%:*}_${p##*:}.json" > "$OUT/ab_${p%%:*}_${p##*:}.log" 2>&1
    echo "== ${p%%:*} -> ${p##*:}"; tail -n $(( $(wc -l < "$LIST") + 1 )) "$OUT/ab_${p%%:*}_${p##*:}.log"
  done
  ;;
esac
