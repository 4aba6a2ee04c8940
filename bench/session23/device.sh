#!/bin/bash
# The 23rd session's device calls:
#   OUT=$OUT LIST=... TESTS=... [PROF=...] bash bench/session23/device.sh ab   (one H100) the GPU
#       tests in $TESTS while abx/old and abx/new build, then the two side by side on $LIST
#       (scripts/ab_generated.py), then the kernels of the problems in $PROF at the tree's code
#       against eager's and torch.compile's (scripts/profile_kernels.py); SWAP=1: both load orders
#       (ab_generated.py --swap)
#   The closing call, on four H100s (nvidia-h100-x4): the problems whose generated code changed
#   (closing.txt), a shard a GPU, then every GPU test:
#     LIST=bench/session23/closing.txt OUTDIR=bench/session23/suite BUDGET=200 TESTS=1 OUT=$OUT \
#       bash scripts/device_run.sh suite-all
#   For the next session, three launch flags (off, not yet run on a GPU):
#     bash bench/session23/device.sh prep   (here, on the CPU) abx/old without them and abx/tx,
#       abx/rrev, abx/trev with FUSEFORGE_OUTER_TX=64, FUSEFORGE_ROW_REVERSE=1 and
#       FUSEFORGE_CL_TILE_REVERSE=1, each on the problems it changes (outer_tx.txt, row_reverse.txt,
#       cl_tile_reverse.txt)
#     OUT=$OUT [FLAGS="tx rrev trev"] bash bench/session23/device.sh flags   (one H100)
#       tests/test_launch_flags.py's GPU tests while the folders build, then each flag in FLAGS against
#       abx/old in both load orders (70 problems in all: about two calls' worth; prep locally with
#       PATH=.venv/bin:$PATH)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
S=bench/session23
if [ "${1:-}" = prep ]; then
  rm -rf abx && mkdir -p abx
  python3 scripts/generate_sources.py abx/old $(sort -u $S/outer_tx.txt $S/row_reverse.txt $S/cl_tile_reverse.txt) > /dev/null
  FUSEFORGE_OUTER_TX=64 python3 scripts/generate_sources.py abx/tx $(cat $S/outer_tx.txt) > /dev/null
  FUSEFORGE_ROW_REVERSE=1 python3 scripts/generate_sources.py abx/rrev $(cat $S/row_reverse.txt) > /dev/null
  FUSEFORGE_CL_TILE_REVERSE=1 python3 scripts/generate_sources.py abx/trev $(cat $S/cl_tile_reverse.txt) > /dev/null
  exit
fi
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
flags)
  (python3 -m pytest -q -m gpu tests/test_launch_flags.py > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
  declare -A LISTS=([tx]=outer_tx [rrev]=row_reverse [trev]=cl_tile_reverse)
  for v in ${FLAGS:-tx rrev trev}; do
    python3 scripts/ab_generated.py abx/old abx/$v $(cat $S/${LISTS[$v]}.txt) --build-only --jobs 14 >> "$OUT/build.log" 2>&1
  done
  wait
  grep -E "^FAILED|^E  " "$OUT/gpu_tests.log" | head -20; tail -n 2 "$OUT/gpu_tests.log"
  for v in ${FLAGS:-tx rrev trev}; do
    L=$S/${LISTS[$v]}.txt
    python3 scripts/ab_generated.py abx/old abx/$v $(cat $L) --rounds ${ROUNDS:-3} --trials 30 --swap \
      --json "$OUT/ab_$v.json" > "$OUT/ab_$v.log" 2>&1
    echo "== $v"; grep -v "^    [on][le][dw]:" "$OUT/ab_$v.log" | tail -n $(( $(wc -l < $L) * 2 + 1 ))
  done
  ;;
esac
