#!/bin/bash
# The 25th session left for the next one:
#   FUSEFORGE_DIRECT_CALL=1 (off, not yet measured: the generated __call__ calls forward itself where
#   no hook is registered, emit.DIRECT_CALL) on the problems whose host time is highest (host.txt):
#     PATH=.venv/bin:$PATH bash bench/session25/device.sh prep   (here, on the CPU) abx/old, abx/dc
#     OUT=$OUT bash bench/session25/device.sh host   (one H100) tests/test_direct_call.py, then
#       scripts/host_probe.py over each folder (model(x) against forward(x), alone in a process: the
#       host columns of ab_generated.py with two files in one process read 0.018 and 0.089 ms for
#       level1/028 where each alone took 7.4 and 5.2 µs) and the GPU time side by side (must not move)
#   The records still older than their problems' code (retime.txt), on nvidia-h100-x4:
#     LIST=bench/session25/retime.txt OUTDIR=bench/session26/retime BUDGET=250 OUT=$OUT bash scripts/device_run.sh suite-all
set -u
S=bench/session25
case "${1:-}" in
prep)
  rm -rf abx && mkdir -p abx
  python3 scripts/generate_sources.py abx/old $(cat $S/host.txt) > /dev/null
  FUSEFORGE_DIRECT_CALL=1 python3 scripts/generate_sources.py abx/dc $(cat $S/host.txt) > /dev/null
  ;;
host)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  (python3 -m pytest -q tests/test_direct_call.py > "$OUT/tests.log" 2>&1; echo "exit $?" >> "$OUT/tests.log") &
  python3 scripts/ab_generated.py abx/old abx/dc $(cat $S/host.txt) --build-only --jobs 14 > "$OUT/build.log" 2>&1
  wait
  tail -n 2 "$OUT/tests.log"
  for v in old dc; do python3 scripts/host_probe.py abx/$v $(cat $S/host.txt) > "$OUT/host_$v.log" 2>&1; done
  python3 scripts/ab_generated.py abx/old abx/dc $(cat $S/host.txt) --rounds 3 --trials 30 --json "$OUT/ab_dc.json" > "$OUT/ab_dc.log" 2>&1
  for v in old dc; do echo "== $v"; grep -E "^==|model\(x\)|model.forward" "$OUT/host_$v.log"; done
  tail -n $(( $(wc -l < $S/host.txt) + 1 )) "$OUT/ab_dc.log"
  ;;
*) echo "usage: bash $S/device.sh prep, or OUT=\$OUT bash $S/device.sh host"; exit 2 ;;
esac
