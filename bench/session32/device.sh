#!/bin/bash
# The 32nd session's device work (one H200; run from the repository root; abx/ folders made here
# with scripts/generate_sources.py, at the commits notes.md names):
#   OUT=$OUT bash bench/session32/device.sh first|second   level1/035 lowered to a convolution and a
#     slice_scatter (abx/new) against before (abx/def): A/B both load orders, profile_kernels of
#     both, test_convs' GPU tests
set -u
S=bench/session32
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
W=$(mktemp -d)
P35=suite/level1/035_conv_transpose2d_asymmetric_dilated.py
case "${1:-}" in
first|second)   # (second: the rows written in place by the convolution, scatter_rows.py)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  timeout 150 python3 -m pytest -q -m gpu tests/test_convs.py > "$W/gpu_convs.log" 2>&1; echo "exit $?" >> "$W/gpu_convs.log"
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $P35 --build-only --jobs 14 > "$W/build.log" 2>&1
  timeout 150 python3 scripts/ab_generated.py abx/def abx/new $P35 --rounds 5 --trials 20 --swap \
    --json "$W/ab_035.json" > "$W/ab_035.log" 2>&1
  timeout 150 python3 scripts/profile_kernels.py $P35 --generated abx/new > "$W/profile_035.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_convs.log" | head -20; tail -n 2 "$W/gpu_convs.log"
  tail -n 2 "$W/build.log"; tail -n 6 "$W/ab_035.log"
  grep -v Warning "$W/profile_035.log" | grep -E "ms in kernels|^ +[0-9]" | cut -c1-170
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh first|second"; exit 2 ;;
esac
