#!/bin/bash
# The 23rd session's device calls:
#   OUT=$OUT LIST=... TESTS=... [PROF=...] bash bench/session23/device.sh ab   (one H100) the GPU
#       tests in $TESTS while abx/old and abx/new build, then the two side by side on $LIST
#       (scripts/ab_generated.py), then the kernels of the problems in $PROF at the tree's code
#       against eager's and torch.compile's (scripts/profile_kernels.py); SWAP=1: both load orders
#       (ab_generated.py --swap)
#   The closing call, on four H100s (nvidia-h100-x4): the problems whose generated code changed
#   (closing.txt), a shard a GPU, then every GPU test:
#     LIST=bench/session23/closing.txt OUTDIR=bench/session23/suite BUDGET=250 TESTS=1 OUT=$OUT \
#       bash scripts/device_run.sh suite-all
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
case "${1:?ab}" in
ab)
  (python3 -m pytest -q -m gpu $TESTS > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
  python3 scripts/ab_generated.py abx/old abx/new $(cat $LIST) --build-only --jobs 14 > "$OUT/build.log" 2>&1
  wait
  grep -E "^FAILED|^E  " "$OUT/gpu_tests.log" | head -20; tail -n 2 "$OUT/gpu_tests.log"
  python3 scripts/ab_generated.py abx/old abx/new $(cat $LIST) --rounds ${ROUNDS:-5} --trials 30 ${SWAP:+--swap} \
    --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
  [ -n "${PROF:-}" ] && python3 scripts/profile_kernels.py $PROF > "$OUT/prof.log" 2>&1
  tail -n 3 "$OUT/build.log"
  tail -n $(( $(wc -l < $LIST) * 3 + 2 )) "$OUT/ab.log"
  [ -n "${PROF:-}" ] && grep -E "^==|^  [a-z]+:|^       0\.0[1-9]|^       0\.[1-9]" "$OUT/prof.log"
  ;;
esac
