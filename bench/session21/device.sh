#!/bin/bash
# The 21st session's device calls (one H100):
#   OUT=$OUT bash bench/session21/device.sh first   the replay's and FUSEFORGE_PW_RUNS's GPU tests
#       while four folders build, then two A/Bs (scripts/ab_generated.py: GPU time, host time back
#       to back and with the GPU idle): abx/old (the session's start) against abx/new (two graphs
#       taking turns, outputs made directly) on host.txt; abx/new against abx/runs
#       (FUSEFORGE_PW_RUNS=1) on ../session20/pw_runs.txt
#   OUT=$OUT LIST=... TESTS=... bash bench/session21/device.sh ab   the GPU tests in $TESTS while
#       abx/$OLD and abx/$NEW (default old, new) build, then the two side by side on $LIST
#   For the next session, FUSEFORGE_OUTER_STAGE=1 (off, not yet run on a GPU): generate abx/old
#   and abx/new from bench/session21/outer_stage.txt without and with it
#   (scripts/generate_sources.py), then
#   OUT=$OUT LIST=bench/session21/outer_stage.txt TESTS=tests/test_outer_stage.py bash bench/session21/device.sh ab
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
OUT=${OUT:-out}
H=bench/session21/host.txt R=bench/session20/pw_runs.txt
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
case "${1:?first}" in
first)
  (python3 -m pytest -q -m gpu ${TESTS:-tests/test_replay.py tests/test_pointwise_runs.py tests/test_functional_api.py} \
     > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
  python3 scripts/ab_generated.py abx/old abx/new $(cat $H) --build-only --jobs 7 > "$OUT/build_host.log" 2>&1 &
  python3 scripts/ab_generated.py abx/new abx/runs $(cat $R) --build-only --jobs 7 > "$OUT/build_runs.log" 2>&1
  wait
  grep -E "^FAILED|^E  " "$OUT/gpu_tests.log" | head -20; tail -n 2 "$OUT/gpu_tests.log"
  python3 scripts/ab_generated.py abx/old abx/new $(cat $H) --rounds 5 --trials 30 \
    --json "$OUT/ab_old_new.json" > "$OUT/ab_old_new.log" 2>&1
  python3 scripts/ab_generated.py abx/new abx/runs $(cat $R) --rounds 5 --trials 30 \
    --json "$OUT/ab_new_runs.json" > "$OUT/ab_new_runs.log" 2>&1
  tail -n 3 "$OUT"/build_*.log
  tail -n $(( $(wc -l < $H) * 2 + 2 )) "$OUT/ab_old_new.log"
  tail -n $(( $(wc -l < $R) * 2 + 2 )) "$OUT/ab_new_runs.log"
  ;;
ab)
  OLD=${OLD:-old} NEW=${NEW:-new}
  (python3 -m pytest -q -m gpu $TESTS > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
  python3 scripts/ab_generated.py abx/$OLD abx/$NEW $(cat $LIST) --build-only --jobs 12 > "$OUT/build.log" 2>&1
  wait
  grep -E "^FAILED|^E  " "$OUT/gpu_tests.log" | head -20; tail -n 2 "$OUT/gpu_tests.log"
  python3 scripts/ab_generated.py abx/$OLD abx/$NEW $(cat $LIST) --rounds ${ROUNDS:-5} --trials 30 \
    --json "$OUT/ab_${OLD}_$NEW.json" > "$OUT/ab_${OLD}_$NEW.log" 2>&1
  tail -n 3 "$OUT/build.log"
  tail -n $(( $(wc -l < $LIST) * 2 + 2 )) "$OUT/ab_${OLD}_$NEW.log"
  ;;
esac
