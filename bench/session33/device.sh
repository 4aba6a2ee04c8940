#!/bin/bash
# The 33rd session's device work (one H200; run from the repository root; abx/ folders made here
# with scripts/generate_sources.py: abx/def FUSEFORGE_CONV_TMA=0, abx/new as committed, abx/all
# FUSEFORGE_CONV=all):
#   OUT=$OUT bash bench/session33/device.sh tma   test_conv_kernel's GPU tests; the im2col copies
#     (abx/new) against every thread's copies (abx/def) on the generated 2D convolutions of L.txt,
#     and level2/024 with its convolution generated (abx/all) against cuDNN (abx/new): A/B, both
#     load orders; profile_kernels of 024 (abx/all)
#   OUT=$OUT bash bench/session33/device.sh staged   test_conv_kernel's GPU tests; the results staged
#     through shared memory (abx/new) against stored from registers (abx/tma) on L.txt and level2/024
#     generated; 024 generated (abx/new) against cuDNN (abx/def); 2 stages (abx/s2) against 3
#   OUT=$OUT bash bench/session33/device.sh staged2   the same with the staged stores' loop unrolled;
#     ncu of level2/024's convolution: generated, stored from registers (abx/tma) and staged
#     (abx/new), and cuDNN's (abx/def)
#   BUDGET=250 OUT=$OUT bash bench/session33/device.sh last   every GPU test, then fuseforge bench on
#     last.txt (the problems whose generated files this session changed)
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
staged)   # abx/tma: im2col copies, results stored from registers; abx/new: staged through shared
  # memory (plan_conv.staged_store); 024 generated (FUSEFORGE_CONV=all) in both, cuDNN in abx/def;
  # abx/s2: abx/new with 2 stages (FUSEFORGE_CONV_STAGES=2)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  (timeout 400 python3 -m pytest -q -m gpu tests/test_conv_kernel.py > "$W/gpu_conv_kernel.log" 2>&1
   echo "exit $?" >> "$W/gpu_conv_kernel.log") &
  S2="suite/level1/021_conv2d_standard.py suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py suite/level2/023_conv2d_clamp_multiply_max.py $P24"
  timeout 300 python3 scripts/ab_generated.py abx/tma abx/new $(cat $S/L.txt) $P24 --build-only --jobs 12 > "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/def abx/s2 $P24 $S2 --build-only --jobs 12 >> "$W/build.log" 2>&1
  wait
  timeout 200 python3 scripts/ab_generated.py abx/tma abx/new $(cat $S/L.txt) $P24 --rounds 5 --trials 20 --swap \
    --json "$W/ab_staged.json" > "$W/ab_staged.log" 2>&1
  timeout 60 python3 scripts/ab_generated.py abx/def abx/new $P24 --rounds 5 --trials 20 --swap \
    --json "$W/ab_024_all.json" > "$W/ab_024_all.log" 2>&1
  timeout 100 python3 scripts/ab_generated.py abx/new abx/s2 $S2 --rounds 5 --trials 20 --swap \
    --json "$W/ab_s2.json" > "$W/ab_s2.log" 2>&1
  timeout 60 python3 scripts/profile_kernels.py $P24 --generated abx/new > "$W/profile_024_all.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_conv_kernel.log" | head -20; tail -n 2 "$W/gpu_conv_kernel.log"
  tail -n 3 "$W/build.log"; for f in ab_staged ab_024_all ab_s2; do grep -E "^level|^NVIDIA" "$W/$f.log"; done
  grep -v Warning "$W/profile_024_all.log" | grep -E "ms in kernels|^ +[0-9]" | tail -n 4 | cut -c1-170
  ;;
staged2)   # as staged, the staged stores' loop unrolled (abx/new), against abx/tma; ncu of 024's
  # generated convolution (both) and of cuDNN's (abx/def)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  (timeout 400 python3 -m pytest -q -m gpu tests/test_conv_kernel.py > "$W/gpu_conv_kernel.log" 2>&1
   echo "exit $?" >> "$W/gpu_conv_kernel.log") &
  timeout 300 python3 scripts/ab_generated.py abx/tma abx/new $(cat $S/L.txt) $P24 --build-only --jobs 12 > "$W/build.log" 2>&1
  timeout 100 python3 scripts/ab_generated.py abx/def abx/new $P24 --build-only --jobs 2 >> "$W/build.log" 2>&1
  wait
  timeout 200 python3 scripts/ab_generated.py abx/tma abx/new $(cat $S/L.txt) $P24 --rounds 5 --trials 20 --swap \
    --json "$W/ab_staged2.json" > "$W/ab_staged2.log" 2>&1
  for v in tma new def; do
    k=$([ $v = def ] && echo sm90_xmma || echo '^conv$')   # (ncu matches the function's name: conv, not ffconv::conv)
    timeout 100 ncu --clock-control none -k regex:$k --launch-skip 1 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
      python3 $S/run_twice.py $P24 abx/$v/level2_024_conv2d_swish_residual.py > "$W/ncu_024_$v.txt" 2>&1
  done
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  grep -E "^FAILED|^E  " "$W/gpu_conv_kernel.log" | head -20; tail -n 2 "$W/gpu_conv_kernel.log"
  tail -n 3 "$W/build.log"; grep -E "^level|^NVIDIA" "$W/ab_staged2.log"
  for v in tma new def; do echo "== $v"; grep -E "^    (Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Memory Throughput)" "$W/ncu_024_$v.txt"; done
  ;;
last)   # every GPU test (the groups side by side), then fuseforge bench on last.txt
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  IFS='|' read -r -a GROUPS_ <<< "$(cat bench/session30/test_groups.txt)"
  mkdir -p "$W/tests"
  for k in "${!GROUPS_[@]}"; do
    (timeout 300 python3 -m pytest -q -m gpu ${GROUPS_[$k]} > "$W/tests/gpu-test-$k.log" 2>&1
     echo "exit $?" >> "$W/tests/gpu-test-$k.log") &
  done
  wait
  python3 -m fuseforge.cli bench $(cat $S/last.txt) -o "$S/conv_h200" --batch 16 --budget "${BUDGET:-250}" \
    > "$W/suite_bench.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200" -C "$W" .
  for f in "$W"/tests/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -8; tail -n 2 "$f"; done
  tail -n 30 "$W/suite_bench.log"
  ;;
*) echo "usage: device.sh tma|staged|staged2|last"; exit 2 ;;
esac
