#!/bin/bash
# The 24th session's device calls (one H100):
#   OUT=$OUT bash bench/session24/device.sh ab   the GPU tests of test_walk_backward, test_layout and
#       test_rows while abx/old (the session start, generate_sources) and abx/new (the tree) build,
#       then the two side by side on the problems walk_backward changes (changed.txt) in both load
#       orders, level2/005's kernels against torch.compile's, and last two mutation runs of
#       test_walk_backward's GPU test (each reversed origin one tile off: both must fail)
#   For the next session, FUSEFORGE_CONV_BARE=1 (off, not yet run on a GPU: 2D convolutions whose
#   results only norms and means over the pixels read generated, written NCHW for them):
#     PATH=.venv/bin:$PATH bash bench/session24/device.sh prep   (here, on the CPU) abx/old and
#       abx/bare on the 11 problems it changes (conv_bare.txt)
#     OUT=$OUT bash bench/session24/device.sh bare   (one H100) the GPU tests the closing call did not
#       reach (test_replay, test_softmax_split, test_tuning) and test_conv_kernel's (the bare zoo's
#       among them) while the folders build, then abx/bare against abx/old in both load orders
#   The records still older than their problems' code (retime.txt: the 40 of session21/rest_left.txt and
#   the 23rd session's 5 not reached), on nvidia-h100-x4 (about 45 problems: BUDGET=250 or two calls):
#     LIST=bench/session24/retime.txt OUTDIR=bench/session25/retime BUDGET=250 OUT=$OUT bash scripts/device_run.sh suite-all
set -u
S=bench/session24
case "${1:-}" in
prep)
  rm -rf abx && mkdir -p abx
  python3 scripts/generate_sources.py abx/old $(cat $S/conv_bare.txt) > /dev/null
  FUSEFORGE_CONV_BARE=1 python3 scripts/generate_sources.py abx/bare $(cat $S/conv_bare.txt) > /dev/null
  exit
  ;;
bare)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  (python3 -m pytest -q -m gpu tests/test_conv_kernel.py tests/test_replay.py tests/test_softmax_split.py \
     tests/test_tuning.py > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
  python3 scripts/ab_generated.py abx/old abx/bare $(cat $S/conv_bare.txt) --build-only --jobs 14 > "$OUT/build.log" 2>&1
  wait
  grep -E "^FAILED|^E  " "$OUT/gpu_tests.log" | head -20; tail -n 2 "$OUT/gpu_tests.log"
  python3 scripts/ab_generated.py abx/old abx/bare $(cat $S/conv_bare.txt) --rounds ${ROUNDS:-3} --trials 30 --swap \
    --json "$OUT/ab_bare.json" > "$OUT/ab_bare.log" 2>&1
  tail -n 3 "$OUT/build.log"
  grep -v "^    [on][le][dw]:" "$OUT/ab_bare.log" | tail -n $(( $(wc -l < $S/conv_bare.txt) * 2 + 1 ))
  exit
  ;;
ab) ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh ab|bare, or bash $S/device.sh prep"; exit 2 ;;
esac
OUT=$OUT LIST=$S/changed.txt TESTS="tests/test_walk_backward.py tests/test_layout.py tests/test_rows.py" \
  PROF=suite/level2/005_conv2d_instancenorm_divide.py SWAP=1 ROUNDS=${ROUNDS:-3} bash bench/session23/device.sh ab
export PYTHONPATH=src
for m in 's/"(gridDim.z - 1u - blockIdx.z)"/"(gridDim.z - blockIdx.z)"/' \
         's/"gridDim.x \/ splits - 1u - blockIdx.x \/ splits"/"gridDim.x \/ splits - blockIdx.x \/ splits"/'; do
  cp src/fuseforge/codegen/pointwise.py /tmp/pw.py; cp src/fuseforge/codegen/rows.py /tmp/rows.py
  sed -i "$m" src/fuseforge/codegen/pointwise.py src/fuseforge/codegen/rows.py
  git diff --stat -- src | tail -n 1
  python3 -m pytest -q -m gpu tests/test_walk_backward.py 2>&1 | tail -n 1 | sed 's/^/mutant: /'
  cp /tmp/pw.py src/fuseforge/codegen/pointwise.py; cp /tmp/rows.py src/fuseforge/codegen/rows.py
done
