#!/bin/bash
# The 34th session's device work (one H200; run from the repository root; abx/ folders made here
# with scripts/generate_sources.py: abx/def as committed, abx/mct FUSEFORGE_MEAN_OF_CONVT=1,
# abx/all FUSEFORGE_CONV=all):
#   OUT=$OUT bash bench/session34/device.sh first   test_convs' GPU tests; level2/027 with the
#     transposed convolution's mean (abx/mct) against without (abx/def), A/B both orders; ncu (full
#     set) of level2/024's generated convolution (abx/all) and of level2/023's (abx/def); fuseforge
#     bench of first.txt (the problems the 33rd session changed but did not time)
#   OUT=$OUT bash bench/session34/device.sh epi   test_conv_kernel's and test_convs' GPU tests; a chunk
#     of an epilogue's inputs loaded before its stores (abx/new) against one element at a time
#     (abx/def) on epi.txt; level2/024 with its convolution generated, the same two ways (abx/all,
#     abx/allo), against cuDNN (abx/def); ncu of 024's generated convolution (abx/all)
#   OUT=$OUT bash bench/session34/device.sh chunk   a chunk of 32 elements' inputs (abx/n32) against
#     16 (abx/new) on chunk.txt; the plan without the 64-channel tile's rule (abx/n32: level2/024
#     and level1/033 generated) against cuDNN (abx/def)
#   OUT=$OUT bash bench/session34/device.sh gemm   test_gemm's GPU tests; the GEMM epilogue's inputs
#     loaded 16 elements at a time (abx/gn) against one at a time (abx/gd) on gemm.txt
#   BUDGET=240 OUT=$OUT bash bench/session34/device.sh last   every GPU test (the groups of
#     bench/session30/test_groups.txt side by side), then fuseforge bench on last.txt (the problems
#     whose generated kernels this session changed most)
set -u
S=bench/session34
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
W=$(mktemp -d)
P23=suite/level2/023_conv2d_clamp_multiply_max.py
P24=suite/level2/024_conv2d_swish_residual.py
P27=suite/level2/027_convtranspose2d_globalavg_bias_logsumexp_sum_multiply.py
ncu_of() {   # ncu_of PROBLEM FILE NAME: the full set of the conv kernel's second launch
  timeout 150 ncu --clock-control none -k 'regex:^conv$' --launch-skip 1 --launch-count 1 --set full \
    python3 bench/session33/run_twice.py "$1" "$2" > "$W/ncu_$3.txt" 2>&1
}
case "${1:-}" in
first)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  (timeout 300 python3 -m pytest -q -m gpu tests/test_convs.py > "$W/gpu_convs.log" 2>&1
   echo "exit $?" >> "$W/gpu_convs.log") &
  timeout 200 python3 scripts/ab_generated.py abx/def abx/mct $P27 --build-only --jobs 4 > "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/def abx/all $P23 $P24 --build-only --jobs 4 >> "$W/build.log" 2>&1
  wait
  timeout 100 python3 scripts/ab_generated.py abx/def abx/mct $P27 --rounds 5 --trials 20 --swap \
    --json "$W/ab_027.json" > "$W/ab_027.log" 2>&1
  ncu_of $P24 abx/all/level2_024_conv2d_swish_residual.py 024_all
  ncu_of $P23 abx/def/level2_023_conv2d_clamp_multiply_max.py 023_def
  python3 -m fuseforge.cli bench $(cat $S/first.txt) -o "$S/conv_h200" --batch 16 --budget "${BUDGET:-120}" \
    > "$W/suite_bench.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_convs.log" | head -20; tail -n 2 "$W/gpu_convs.log"
  tail -n 3 "$W/build.log"; grep -E "^level|^NVIDIA" "$W/ab_027.log"
  for v in 024_all 023_def; do echo "== $v"; grep -E "^    (Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Shared Memory Configuration Size|Block Limit)" "$W/ncu_$v.txt"; done
  tail -n 12 "$W/suite_bench.log"
  ;;
epi)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  (timeout 400 python3 -m pytest -q -m gpu tests/test_conv_kernel.py tests/test_convs.py > "$W/gpu_conv.log" 2>&1
   echo "exit $?" >> "$W/gpu_conv.log") &
  timeout 300 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/epi.txt) --build-only --jobs 12 > "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/allo abx/all $P24 --build-only --jobs 2 >> "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/def abx/all $P24 --build-only --jobs 2 >> "$W/build.log" 2>&1
  wait
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/epi.txt) --rounds 5 --trials 20 --swap \
    --json "$W/ab_epi.json" > "$W/ab_epi.log" 2>&1
  timeout 60 python3 scripts/ab_generated.py abx/allo abx/all $P24 --rounds 5 --trials 20 --swap \
    --json "$W/ab_024_gen.json" > "$W/ab_024_gen.log" 2>&1
  timeout 60 python3 scripts/ab_generated.py abx/def abx/all $P24 --rounds 5 --trials 20 --swap \
    --json "$W/ab_024_cudnn.json" > "$W/ab_024_cudnn.log" 2>&1
  timeout 100 ncu --clock-control none -k 'regex:^conv$' --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
    python3 bench/session33/run_twice.py $P24 abx/all/level2_024_conv2d_swish_residual.py > "$W/ncu_024_all.txt" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_conv.log" | head -20; tail -n 2 "$W/gpu_conv.log"
  tail -n 3 "$W/build.log"; for f in ab_epi ab_024_gen ab_024_cudnn; do grep -E "^level|^NVIDIA|failed|mismatch" "$W/$f.log"; done
  grep -E "^    (Duration|DRAM Throughput|L2 Cache Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued)" "$W/ncu_024_all.txt"
  ;;
chunk)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  R="$P24 suite/level1/033_conv_transpose2d_standard.py"
  timeout 300 python3 scripts/ab_generated.py abx/new abx/n32 $(cat $S/chunk.txt) --build-only --jobs 14 > "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/def abx/n32 $R --build-only --jobs 4 >> "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/new abx/n32 $(cat $S/chunk.txt) --rounds 5 --trials 20 --swap \
    --json "$W/ab_chunk.json" > "$W/ab_chunk.log" 2>&1
  timeout 100 python3 scripts/ab_generated.py abx/def abx/n32 $R --rounds 5 --trials 20 --swap \
    --json "$W/ab_rule.json" > "$W/ab_rule.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  tail -n 3 "$W/build.log"; for f in ab_chunk ab_rule; do grep -E "^level|^NVIDIA|failed|mismatch" "$W/$f.log"; done
  ;;
gemm)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  (timeout 300 python3 -m pytest -q -m gpu tests/test_gemm.py > "$W/gpu_gemm.log" 2>&1
   echo "exit $?" >> "$W/gpu_gemm.log") &
  timeout 300 python3 scripts/ab_generated.py abx/gd abx/gn $(cat $S/gemm.txt) --build-only --jobs 12 > "$W/build.log" 2>&1
  wait
  timeout 200 python3 scripts/ab_generated.py abx/gd abx/gn $(cat $S/gemm.txt) --rounds 5 --trials 20 --swap \
    --json "$W/ab_gemm.json" > "$W/ab_gemm.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_gemm.log" | head -20; tail -n 2 "$W/gpu_gemm.log"
  tail -n 3 "$W/build.log"; grep -E "^level|^NVIDIA|failed|mismatch" "$W/ab_gemm.log"
  ;;
last)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  IFS='|' read -r -a GROUPS_ <<< "$(cat bench/session30/test_groups.txt)"
  mkdir -p "$W/tests"
  for k in "${!GROUPS_[@]}"; do
    (timeout 300 python3 -m pytest -q -m gpu ${GROUPS_[$k]} > "$W/tests/gpu-test-$k.log" 2>&1
     echo "exit $?" >> "$W/tests/gpu-test-$k.log") &
  done
  wait
  python3 -m fuseforge.cli bench $(cat $S/last.txt) -o "$S/last_h200" --batch 16 --budget "${BUDGET:-240}" \
    > "$W/suite_bench.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/last_h200" -C "$W" .
  for f in "$W"/tests/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -8; tail -n 2 "$f"; done
  tail -n 24 "$W/suite_bench.log"
  ;;
*) echo "usage: device.sh first|epi|chunk|gemm|last"; exit 2 ;;
esac
