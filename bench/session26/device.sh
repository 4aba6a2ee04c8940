#!/bin/bash
# The 26th session's device work (only H200s are lent from this session on; the suite's records
# are the H100's):
#   PATH=.venv/bin:$PATH bash bench/session26/device.sh prep   (here, on the CPU) abx/old, abx/dc
#   OUT=$OUT bash bench/session26/device.sh host   (one H200) FUSEFORGE_DIRECT_CALL=1 against the
#     default on host.txt: tests/test_direct_call.py, then scripts/host_probe.py over each folder in
#     a process of its own (model(x), forward(x), ext.forward, the model's own graph launched bare),
#     and ab_generated.py for the GPU time side by side (it must not move; its host columns hold two
#     files in one process)
#   FUSEFORGE_BOUND_CALL=1 (off: the inputs as arguments, the state bound once) against the default
#     on bound.txt: `device.sh prep-bound` here, then `OUT=$OUT bash bench/session26/device.sh bound`
#   The closing calls (one H200), after the default generated __call__ (DIRECT_CALL on):
#     OUT=$OUT bash bench/session26/device.sh tests   every GPU test, six groups on the one GPU
#     OUT=$OUT bash bench/session26/device.sh suite   the 8 convolution problems of suite.txt through
#       fuseforge bench (not merged: the suite's records are the H100's)
set -u
S=bench/session26
case "${1:-}" in
prep)
  rm -rf abx && mkdir -p abx
  python3 scripts/generate_sources.py abx/old $(cat $S/host.txt) > /dev/null
  FUSEFORGE_DIRECT_CALL=1 python3 scripts/generate_sources.py abx/dc $(cat $S/host.txt) > /dev/null
  ;;
host)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  (python3 -m pytest -q tests/test_direct_call.py > "$OUT/tests.log" 2>&1; echo "exit $?" >> "$OUT/tests.log") &
  python3 scripts/ab_generated.py abx/old abx/dc $(cat $S/host.txt) --build-only --jobs 15 > "$OUT/build.log" 2>&1
  wait
  tail -n 2 "$OUT/tests.log" "$OUT/build.log"
  for v in old dc; do python3 scripts/host_probe.py abx/$v $(cat $S/host.txt) > "$OUT/host_$v.log" 2>&1; done
  python3 scripts/ab_generated.py abx/old abx/dc $(cat $S/host.txt) --rounds 3 --trials 30 --json "$OUT/ab_dc.json" > "$OUT/ab_dc.log" 2>&1
  for v in old dc; do echo "== $v"; grep -E "^==|model\(x\)|model.forward|ext.forward|model's graph" "$OUT/host_$v.log"; done
  tail -n $(( $(wc -l < $S/host.txt) + 1 )) "$OUT/ab_dc.log"
  ;;
prep-bound)
  rm -rf abx/def abx/bc
  python3 scripts/generate_sources.py abx/def $(cat $S/bound.txt) > /dev/null
  FUSEFORGE_BOUND_CALL=1 python3 scripts/generate_sources.py abx/bc $(cat $S/bound.txt) > /dev/null
  ;;
bound)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  python3 scripts/ab_generated.py abx/def abx/bc $(cat $S/bound.txt) --build-only --jobs 15 > "$OUT/build.log" 2>&1
  tail -n 2 "$OUT/build.log"
  for v in def bc; do python3 scripts/host_probe.py abx/$v $(cat $S/bound.txt) > "$OUT/host_$v.log" 2>&1; done
  for v in def bc; do echo "== $v"; grep -E "^==|model\(x\)|model.forward|ext.forward|bare" "$OUT/host_$v.log" | grep -v "side stream\|idle"; done
  python3 scripts/ab_generated.py abx/def abx/bc $(cat $S/bound.txt) --rounds 2 --trials 20 --json "$OUT/ab_bc.json" > "$OUT/ab_bc.log" 2>&1
  tail -n $(( $(wc -l < $S/bound.txt) + 1 )) "$OUT/ab_bc.log"
  ;;
tests)
  TEST_GROUPS="$(cat $S/test_groups.txt)" TEST_LOGS="$OUT/tests" bash scripts/device_run.sh gpu-tests
  ;;
suite)
  LIST=$S/suite.txt OUTDIR=$S/suite_h200 BUDGET=${BUDGET:-150} bash scripts/device_run.sh suite-all
  ;;
*) echo "usage: bash $S/device.sh prep, or OUT=\$OUT bash $S/device.sh host"; exit 2 ;;
esac
