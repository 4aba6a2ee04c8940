#!/bin/bash
# The 31st session's device work (H200s; run from the repository root; abx/ folders made here with
# scripts/generate_sources.py, at the commits notes.md names):
#   OUT=$OUT bash bench/session31/device.sh first   (two GPUs) GPU 0: abx/def against abx/new on
#     first.txt (A/B, both load orders); GPU 1: test_layout's GPU tests, then profile_kernels on
#     level3/009 (abx/new) and level1/033 (abx/def)
#   OUT=$OUT bash bench/session31/device.sh second  (one GPU) level3/009 (A/B), cuDNN's stride-1
#     transposed convolution against a convolution of the flipped weights, profile of 009
#   BUDGET=430 OUT=$OUT bash bench/session31/device.sh final1, then final2   (two GPUs each) the
#     81 convolution problems' bench in three shards; every GPU test; convt_as_conv.py again;
#     final2 test_convs' GPU tests first (the lowering committed after final1)
#   OUT=$OUT bash bench/session31/device.sh probe035   (one GPU) profile_kernels on level1/035
set -u
S=bench/session31
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
W=$(mktemp -d)
case "${1:-}" in
first)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  P9=suite/level3/009_densenet_block.py
  P33=suite/level1/033_conv_transpose2d_standard.py
  (export CUDA_VISIBLE_DEVICES=1
   timeout 300 python3 -m pytest -q -m gpu tests/test_layout.py > "$W/gpu_layout.log" 2>&1; echo "exit $?" >> "$W/gpu_layout.log"
   timeout 200 python3 scripts/profile_kernels.py $P9 --generated abx/new > "$W/profile_009.log" 2>&1
   timeout 150 python3 scripts/profile_kernels.py $P33 --generated abx/def > "$W/profile_033.log" 2>&1) &
  export CUDA_VISIBLE_DEVICES=0
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/first.txt) --build-only --jobs 14 > "$W/build.log" 2>&1
  timeout 240 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/first.txt) --rounds 5 --trials 20 --swap \
    --json "$W/ab_first.json" > "$W/ab_first.log" 2>&1
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  tail -n 2 "$W/build.log"; tail -n 16 "$W/ab_first.log"
  grep -E "^FAILED|^E  " "$W/gpu_layout.log" | head -20; tail -n 3 "$W/gpu_layout.log"
  tail -n 28 "$W/profile_009.log" | cut -c1-150; tail -n 30 "$W/profile_033.log" | cut -c1-150
  ;;
second)   # (one GPU) abx/def against abx/new on level3/009 (A/B); the stride-1 transposed convolution
  # as a convolution of flipped weights (convt_as_conv.py); profile_kernels on level3/009 (abx/new)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  P9=suite/level3/009_densenet_block.py
  timeout 100 python3 $S/convt_as_conv.py > "$W/convt_as_conv.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $P9 --build-only > "$W/build.log" 2>&1
  timeout 150 python3 scripts/ab_generated.py abx/def abx/new $P9 --rounds 7 --trials 20 --swap \
    --json "$W/ab_009.json" > "$W/ab_009.log" 2>&1
  timeout 200 python3 scripts/profile_kernels.py $P9 --generated abx/new > "$W/profile_009.log" 2>&1
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  cat "$W/convt_as_conv.log"; tail -n 2 "$W/build.log"; tail -n 4 "$W/ab_009.log"
  grep -A40 "abx/new" "$W/profile_009.log" | cut -c1-150
  ;;
final1|final2)   # (two GPUs) fuseforge bench on the 81 convolution problems (bench/session27/conv.txt) in
  # three shards into conv_h200/, a shard a GPU with its half of the cores: final1 shard 1 on GPU 0
  # and every GPU test (bench/session30/test_groups.txt) on GPU 1, then convt_as_conv.py there;
  # final2 shards 2 and 3
  NC=$(( $(nproc) / 2 ))
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  shard() {   # GPU, shard
    CUDA_VISIBLE_DEVICES=$1 taskset -c $(($1 * NC))-$(($1 * NC + NC - 1)) python3 -m fuseforge.cli bench \
      $(cat bench/session27/conv.txt) --shard "$2/3" -o "$S/conv_h200/shard_$2_3" --batch 16 \
      --budget "${BUDGET:-430}" > "$W/suite_bench_$2_3.log" 2>&1
  }
  if [ "$1" = final1 ]; then
    shard 0 1 &
    IFS='|' read -r -a GROUPS_ <<< "$(cat bench/session30/test_groups.txt)"
    mkdir -p "$W/tests"
    for k in "${!GROUPS_[@]}"; do
      (CUDA_VISIBLE_DEVICES=1 taskset -c $NC-$((2 * NC - 1)) timeout 480 python3 -m pytest -q -m gpu \
         ${GROUPS_[$k]} > "$W/tests/gpu-test-$k.log" 2>&1; echo "exit $?" >> "$W/tests/gpu-test-$k.log") &
    done
    wait
    CUDA_VISIBLE_DEVICES=1 timeout 100 python3 $S/convt_as_conv.py > "$W/convt_as_conv.log" 2>&1
  else   # (GPU 1 first runs test_convs' GPU tests: the stride-1 3D transposed convolution came after final1)
    shard 0 2 &
    (CUDA_VISIBLE_DEVICES=1 taskset -c $NC-$((2 * NC - 1)) timeout 150 python3 -m pytest -q -m gpu tests/test_convs.py \
       > "$W/gpu_convs.log" 2>&1; echo "exit $?" >> "$W/gpu_convs.log"; shard 1 3) &
    wait
  fi
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200" -C "$W" .
  for f in "$W"/suite_bench_*.log; do tail -n 3 "$f"; done
  for f in "$W"/tests/gpu-test-*.log; do [ -f "$f" ] && { grep -E "^FAILED|^E  " "$f" | head -8; tail -n 2 "$f"; }; done
  cat "$W/convt_as_conv.log" 2>/dev/null; tail -n 3 "$W/gpu_convs.log" 2>/dev/null
  ;;
probe035)   # (one GPU) profile_kernels on level1/035 (eager, torch.compile, fuseforge): below
  # torch.compile in final2 (0.95) where earlier runs had a tie
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  timeout 150 python3 scripts/profile_kernels.py suite/level1/035_conv_transpose2d_asymmetric_dilated.py \
    > "$W/profile_035.log" 2>&1
  mkdir -p "$OUT" && cp "$W"/* "$OUT"/
  grep -v Warning "$W/profile_035.log" | grep -E "ms in kernels|^ +[0-9]" | cut -c1-170
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh first|second|final1|final2|probe035"; exit 2 ;;
esac
