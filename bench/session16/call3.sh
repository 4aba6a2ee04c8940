#!/bin/bash
# The 16th session's third device call (about 250 s on one H100): OUT=$OUT bash bench/session16/call3.sh
# 1. tests/test_conv_kernel.py on the GPU (ConvZoo: 36 input channels, tails, padding, stride,
#    dilation, a 1x1; the wgmma kernel and the direct one);
# 2. A/B of the 17 problems bench/session15/conv_changed.txt: old = the default plan at the
#    session's start (cuDNN), new = FUSEFORGE_CONV=all with the leaner gather (abx/conv, made by
#    hand: see bench/session16/README.md).
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
PYTHONPATH=src timeout 200 python3 -m pytest -q -m gpu tests/test_conv_kernel.py > "$OUT/conv_test.txt" 2>&1
grep -E "^E |passed|failed" "$OUT/conv_test.txt" | head -8
P=$(cat bench/session15/conv_changed.txt)
PYTHONPATH=src python3 scripts/ab_generated.py abx/conv/old abx/conv/new $P --build-only > /dev/null 2>&1
PYTHONPATH=src timeout 300 python3 scripts/ab_generated.py abx/conv/old abx/conv/new $P --rounds 7 --trials 30 \
  --json "$OUT/ab_conv_lean.json" 2>&1 | tail -20
