#!/bin/bash
# The 32nd session's device work (one H200; run from the repository root; abx/ folders made here
# with scripts/generate_sources.py, at the commits notes.md names):
#   OUT=$OUT bash bench/session32/device.sh first|second   level1/035 lowered to a convolution and a
#     slice_scatter (abx/new) against before (abx/def): A/B both load orders, profile_kernels of
#     both, test_convs' GPU tests
#   OUT=$OUT bash bench/session32/device.sh third   every GPU test (bench/session30/test_groups.txt, the
#     groups side by side), then abx/def against abx/new on level1/035 and level2/016 (A/B, both load
#     orders) and profile_kernels of 016 (abx/new)
#   OUT=$OUT bash bench/session32/device.sh probe   where eager's transposed convolution runs TF32
#     (convt_tf32.py), then test_convs' GPU tests
#   BUDGET=400 OUT=$OUT bash bench/session32/device.sh final   test_convs' GPU tests, then fuseforge bench
#     on the problems whose generated code this session changed and some near ties of the 31st
#     session (final.txt)
#   BUDGET=150 OUT=$OUT bash bench/session32/device.sh last   every GPU test, then fuseforge bench on
#     final2.txt (the weights flipped once: wrapper.made_once; 2D stride-1 transposed as a convolution)
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
third)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  IFS='|' read -r -a GROUPS_ <<< "$(cat bench/session30/test_groups.txt)"
  mkdir -p "$W/tests"
  for k in "${!GROUPS_[@]}"; do
    (timeout 420 python3 -m pytest -q -m gpu ${GROUPS_[$k]} > "$W/tests/gpu-test-$k.log" 2>&1
     echo "exit $?" >> "$W/tests/gpu-test-$k.log") &
  done
  wait
  P16=suite/level2/016_conv2d_globalavg_bias_logsumexp_sum_multiply.py
  timeout 150 python3 scripts/ab_generated.py abx/def abx/new $P35 $P16 --build-only --jobs 14 > "$W/build.log" 2>&1
  timeout 120 python3 scripts/ab_generated.py abx/def abx/new $P35 $P16 --rounds 5 --trials 20 --swap \
    --json "$W/ab_third.json" > "$W/ab_third.log" 2>&1
  timeout 100 python3 scripts/profile_kernels.py $P16 --generated abx/new > "$W/profile_016.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  for f in "$W"/tests/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -8; tail -n 2 "$f"; done
  tail -n 2 "$W/build.log"; tail -n 8 "$W/ab_third.log"
  grep -v Warning "$W/profile_016.log" | grep -E "ms in kernels|^ +[0-9]" | cut -c1-170
  ;;
probe)   # where eager's transposed convolution runs TF32 (convt_tf32.py), then test_convs' GPU tests
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  timeout 100 python3 $S/convt_tf32.py > "$W/convt_tf32.log" 2>&1
  timeout 200 python3 -m pytest -q -m gpu tests/test_convs.py > "$W/gpu_convs.log" 2>&1; echo "exit $?" >> "$W/gpu_convs.log"
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  cat "$W/convt_tf32.log"; grep -E "^FAILED|^E  " "$W/gpu_convs.log" | head -20; tail -n 2 "$W/gpu_convs.log"
  ;;
final)   # (test_convs' GPU tests first: the one-phase lowering's size rule came after third)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  timeout 150 python3 -m pytest -q -m gpu tests/test_convs.py > "$W/gpu_convs.log" 2>&1; echo "exit $?" >> "$W/gpu_convs.log"
  python3 -m fuseforge.cli bench $(cat $S/final.txt) -o "$S/conv_h200" --batch 16 --budget "${BUDGET:-400}" \
    > "$W/suite_bench.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_convs.log" | head -20; tail -n 2 "$W/gpu_convs.log"; tail -n 12 "$W/suite_bench.log"
  ;;
last)   # every GPU test (the groups side by side), then fuseforge bench on final2.txt
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  IFS='|' read -r -a GROUPS_ <<< "$(cat bench/session30/test_groups.txt)"
  mkdir -p "$W/tests"
  for k in "${!GROUPS_[@]}"; do
    (timeout 300 python3 -m pytest -q -m gpu ${GROUPS_[$k]} > "$W/tests/gpu-test-$k.log" 2>&1
     echo "exit $?" >> "$W/tests/gpu-test-$k.log") &
  done
  wait
  python3 -m fuseforge.cli bench $(cat $S/final2.txt) -o "$S/conv_h200_2" --batch 16 --budget "${BUDGET:-150}" \
    > "$W/suite_bench.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200_2" -C "$W" .
  for f in "$W"/tests/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -8; tail -n 2 "$f"; done
  tail -n 9 "$W/suite_bench.log"
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh first|second|third|probe|final|last"; exit 2 ;;
esac
