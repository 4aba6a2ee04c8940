#!/bin/bash
# The 33rd session's device work (one H200; run from the repository root; abx/ folders made here
# with scripts/generate_sources.py: abx/def FUSEFORGE_CONV_TMA=0, abx/new as committed, abx/all
# FUSEFORGE_CONV=all):
#   OUT=$OUT bash bench/session33/device.sh tma   test_conv_kernel's GPU tests; the im2col copies
#     (abx/new) against every thread's copies (abx/def) on the generated 2D convolutions of L.txt,
#     and level2/024 with its convolution generated (abx/all) against cuDNN (abx/new): A/B, both
#     load orders; profile_kernels of 024 (abx/all)
set -u
S=bench/session33
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
W=$(mktemp -d)
P24=suite/level2/024_conv2d_swish_residual.py
case "${1:-}" in
tma)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  (timeout 400 python3 -m pytest -q -m gpu tests/test_conv_kernel.py > "$W/gpu_conv_kernel.log" 2>&1
   echo "exit $?" >> "$W/gpu_conv_kernel.log") &
  timeout 300 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/L.txt) --build-only --jobs 12 > "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/new abx/all $P24 --build-only --jobs 2 >> "$W/build.log" 2>&1
  wait
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/L.txt) --rounds 5 --trials 20 --swap \
    --json "$W/ab_tma.json" > "$W/ab_tma.log" 2>&1
  timeout 60 python3 scripts/ab_generated.py abx/new abx/all $P24 --rounds 5 --trials 20 --swap \
    --json "$W/ab_024_all.json" > "$W/ab_024_all.log" 2>&1
  timeout 60 python3 scripts/profile_kernels.py $P24 --generated abx/all > "$W/profile_024_all.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_conv_kernel.log" | head -20; tail -n 2 "$W/gpu_conv_kernel.log"
  tail -n 3 "$W/build.log"; tail -n 12 "$W/ab_tma.log"; tail -n 4 "$W/ab_024_all.log"
  grep -v Warning "$W/profile_024_all.log" | grep -E "ms in kernels|^ +[0-9]" | cut -c1-170
  ;;
*) echo "usage: device.sh tma"; exit 2 ;;
esac
