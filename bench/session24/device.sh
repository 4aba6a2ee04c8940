#!/bin/bash
# The 24th session's device calls (one H100):
#   OUT=$OUT bash bench/session24/device.sh ab   the GPU tests of test_walk_backward, test_layout and
#       test_rows while abx/old (the session start, generate_sources) and abx/new (the tree) build,
#       then the two side by side on the problems walk_backward changes (changed.txt) in both load
#       orders, level2/005's kernels against torch.compile's, and last two mutation runs of
#       test_walk_backward's GPU test (each reversed origin one tile off: both must fail)
set -u
S=bench/session24
[ "${1:-}" = ab ] || { echo "usage: OUT=\$OUT bash $S/device.sh ab"; exit 2; }
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
