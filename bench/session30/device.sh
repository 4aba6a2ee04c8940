#!/bin/bash
# The 30th session's device work (H200s; run from the repository root; abx/ folders made here with
# scripts/generate_sources.py, at the commits notes.md names):
#   OUT=$OUT bash bench/session30/device.sh probe    (two GPUs) host_probe on level2/025, 027, 031;
#     profile_kernels on level3/008 and level2/024; level2/024 with FUSEFORGE_CONV=all against the
#     default; ncu's warp states on level2/022's fused kernel
#   OUT=$OUT bash bench/session30/device.sh second   (two GPUs) host_probe again (the wrapper's share
#     in turns against a bare launch, cuDNN's transposed convolution alone, a memset node);
#     profile_kernels on level2/022; level3/008's 40-row tile (A/B); ncu's stall reasons on 022
#   OUT=$OUT bash bench/session30/device.sh third    (two GPUs) level2/022's variants (A/B); test_rows
#   OUT=$OUT bash bench/session30/device.sh fold     (two GPUs) the bias folded into the sums and the
#     weights packed once (A/B on fold.txt); the generated convolutions' and the replay's GPU tests
#   BUDGET=430 OUT=$OUT bash bench/session30/device.sh final   (four GPUs) fuseforge bench on the 81
#     convolution problems over three GPUs; every GPU test on the fourth
#   OUT=$OUT bash bench/session30/device.sh close    (one GPU) close.txt's problems twice, 300 calls each
set -u
S=bench/session30
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
W=$(mktemp -d)
case "${1:-}" in
probe)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  P24=suite/level2/024_conv2d_swish_residual.py
  P8=suite/level3/008_efficientnet_mbconv_se.py
  P22=suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py
  H="suite/level2/025_convtranspose2d_bias_clamp_scale_clamp_divide.py suite/level2/027_convtranspose2d_globalavg_bias_logsumexp_sum_multiply.py suite/level2/031_convtranspose2d_min_sum_gelu_add.py"
  timeout 200 python3 scripts/ab_generated.py abx/def abx/all $P24 $P8 $P22 $H --build-only --jobs 16 > "$W/build.log" 2>&1
  (export CUDA_VISIBLE_DEVICES=0
   timeout 120 python3 scripts/host_probe.py abx/def $H > "$W/host_probe.log" 2>&1
   timeout 200 python3 scripts/profile_kernels.py $P8 $P24 --generated abx/def > "$W/profile.log" 2>&1) &
  (export CUDA_VISIBLE_DEVICES=1
   timeout 150 python3 scripts/ab_generated.py abx/def abx/all $P24 --rounds 5 --trials 20 --swap \
     --json "$W/ab_024_all.json" > "$W/ab_024_all.log" 2>&1
   timeout 120 ncu --clock-control none -k regex:conv --launch-skip 1 --launch-count 1 \
     --section WarpStateStats --section InstructionStats --section SpeedOfLight --section Occupancy \
     python3 bench/session29/ncu_022.py abx/def/level2_022_conv2d_softmax_bias_scale_sigmoid.py > "$W/ncu_022.txt" 2>&1) &
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  tail -n 3 "$W/build.log"; tail -n 6 "$W/ab_024_all.log"
  grep -E "Duration|Registers|Stall|Issue Slots|Warp Cycles" "$W/ncu_022.txt" | head -30
  grep -E "us$|graph|\[captures" "$W/host_probe.log" | head -60
  tail -n 70 "$W/profile.log"
  ;;
second)   # (two GPUs) GPU 0: host_probe (with the wrapper's share measured in turns against a
  # bare launch of the same kernels, cuDNN's transposed convolution alone, a memset node) on
  # level2/025 and 027 (abx/def), then profile_kernels on level2/022 (eager, torch.compile,
  # abx/def); GPU 1: level3/008 with the outer schedule's 40 rows in one tile (abx/new) against
  # abx/def, then ncu's stall reasons on level2/022's fused kernel
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  P8=suite/level3/008_efficientnet_mbconv_se.py
  P22=suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py
  H="suite/level2/025_convtranspose2d_bias_clamp_scale_clamp_divide.py suite/level2/027_convtranspose2d_globalavg_bias_logsumexp_sum_multiply.py"
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $P8 $P22 $H --build-only --jobs 16 > "$W/build.log" 2>&1
  (export CUDA_VISIBLE_DEVICES=0
   timeout 150 python3 scripts/host_probe.py abx/def $H > "$W/host_probe.log" 2>&1
   timeout 200 python3 scripts/profile_kernels.py $P22 --generated abx/def > "$W/profile_022.log" 2>&1) &
  (export CUDA_VISIBLE_DEVICES=1
   timeout 150 python3 scripts/ab_generated.py abx/def abx/new $P8 --rounds 7 --trials 20 --swap \
     --json "$W/ab_008.json" > "$W/ab_008.log" 2>&1
   timeout 150 ncu --clock-control none -k regex:conv --launch-skip 1 --launch-count 1 \
     --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio \
     --section SpeedOfLight --section Occupancy --section LaunchStats \
     python3 bench/session29/ncu_022.py abx/def/level2_022_conv2d_softmax_bias_scale_sigmoid.py > "$W/ncu_022.txt" 2>&1) &
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  tail -n 3 "$W/build.log"; tail -n 6 "$W/ab_008.log"
  grep -E "Duration|Registers Per|Block Limit|stalled" "$W/ncu_022.txt" | sort -k3 -n -r | head -40
  grep -E "us$|graph|in turns|nodes|convolution:|Async" "$W/host_probe.log" | head -70
  tail -n 40 "$W/profile_022.log"
  ;;
third)   # (two GPUs) GPU 0: level2/022's variants against abx/def (generated at the session's
  # start): abx/off (FUSEFORGE_CONV=off: cuDNN's convolution, the row kernel after it), abx/st2
  # (FUSEFORGE_CONV_STAGES=2), abx/st2lb4 (that, with __launch_bounds__(256, 4) by hand: 64
  # registers, 72 bytes spilled), abx/nopack (by hand: one workspace, the weights packed on the
  # first call alone); GPU 1: the row tests (test_rows: the outer schedule's 40 rows in one tile)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  P22=suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py
  (export CUDA_VISIBLE_DEVICES=1
   timeout 400 python3 -m pytest -q -m gpu tests/test_rows.py > "$W/gpu_rows.log" 2>&1; echo "exit $?" >> "$W/gpu_rows.log") &
  pids=()
  for v in off st2 st2lb4 nopack; do
    timeout 150 python3 scripts/ab_generated.py abx/def abx/$v $P22 --build-only > "$W/build_$v.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  export CUDA_VISIBLE_DEVICES=0
  for v in off st2 st2lb4 nopack; do
    timeout 60 python3 scripts/ab_generated.py abx/def abx/$v $P22 --rounds 7 --trials 20 --swap \
      --json "$W/ab_$v.json" > "$W/ab_$v.log" 2>&1
  done
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  for v in off st2 st2lb4 nopack; do tail -n 1 "$W/build_$v.log"; tail -n 3 "$W/ab_$v.log"; done
  tail -n 3 "$W/gpu_rows.log"
  ;;
fold)   # (two GPUs) GPU 0: abx/def (generated at the session's start) against abx/new (the bias add
  # folded into the sums, the weights packed once) on fold.txt; GPU 1: the generated convolutions'
  # GPU tests and the replay's
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  (export CUDA_VISIBLE_DEVICES=1
   timeout 500 python3 -m pytest -q -m gpu tests/test_conv_kernel.py tests/test_conv_rows.py tests/test_replay.py \
     tests/test_convs.py > "$W/gpu_conv.log" 2>&1; echo "exit $?" >> "$W/gpu_conv.log") &
  export CUDA_VISIBLE_DEVICES=0
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/fold.txt) --build-only --jobs 12 > "$W/build.log" 2>&1
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/fold.txt) --rounds 5 --trials 20 --swap \
    --json "$W/ab_fold.json" > "$W/ab_fold.log" 2>&1
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$W" .
  tail -n 2 "$W/build.log"; tail -n 16 "$W/ab_fold.log"
  grep -E "^FAILED|^E  " "$W/gpu_conv.log" | head -20; tail -n 3 "$W/gpu_conv.log"
  ;;
final)   # (four GPUs) GPUs 0-2: fuseforge bench on the 81 convolution problems (bench/session27/conv.txt),
  # a shard a GPU and its share of the cores, into conv_h200/; GPU 3: every GPU test (test_groups.txt)
  NG=$(nvidia-smi -L | wc -l); NB=$((NG - 1)); NC=$(( $(nproc) / NG ))
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  for g in $(seq 0 $((NB - 1))); do
    i=$((g + 1))
    (CUDA_VISIBLE_DEVICES=$g taskset -c $((g * NC))-$((g * NC + NC - 1)) python3 -m fuseforge.cli bench \
       $(cat bench/session27/conv.txt) --shard "$i/$NB" -o "$S/conv_h200/shard_${i}_$NB" --batch 16 \
       --budget "${BUDGET:-400}" > "$W/suite_bench_${i}_$NB.log" 2>&1) &
  done
  IFS='|' read -r -a GROUPS_ <<< "$(cat $S/test_groups.txt)"
  mkdir -p "$W/tests"
  for k in "${!GROUPS_[@]}"; do
    (CUDA_VISIBLE_DEVICES=$NB taskset -c $((NB * NC))-$((NB * NC + NC - 1)) timeout 540 python3 -m pytest -q -m gpu \
       ${GROUPS_[$k]} > "$W/tests/gpu-test-$k.log" 2>&1; echo "exit $?" >> "$W/tests/gpu-test-$k.log") &
  done
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200" -C "$W" .
  for f in "$W"/suite_bench_*.log; do tail -n 3 "$f"; done
  for f in "$W"/tests/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -8; tail -n 2 "$f"; done
  ;;
close)   # (one GPU) the problems within 1.2 % of torch.compile in the suite run, again through
  # fuseforge bench with 300 timed calls a version, twice (into close/run1, close/run2)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  for r in 1 2; do
    timeout 200 python3 -m fuseforge.cli bench $(cat $S/close.txt) -o "$S/close/run$r" --trials 300 --min-trials 300 \
      --no-plots > "$W/bench_$r.log" 2>&1
  done
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/close" -C "$W" .
  for r in 1 2; do tail -n 12 "$S/close/run$r/report.md"; done
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh probe|second|third|fold|final|close"; exit 2 ;;
esac
