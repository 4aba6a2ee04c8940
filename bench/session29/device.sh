#!/bin/bash
# The 29th session's device work (H200s; run from the repository root):
#   OUT=$OUT bash bench/session29/device.sh ab   the held-sum rule (codegen/rows.py: conv + bias held
#     in place of the two) with the softmax's exp kept (ae7e50a's rule): abx/def (generated at
#     223ec99) against abx/new (after), both made here with scripts/generate_sources.py, on
#     fold.txt (every problem whose file changes); then abx/v2 (level2/022 by hand: its last pass
#     under one `if (active)`) against abx/new; the conv_rows GPU tests on the second GPU; ncu on
#     abx/new's level2/022 fused kernel (its text did not come back: more files than the service returns)
#   BUDGET=420 LAST=ab-guard OUT=$OUT bash bench/session29/device.sh suite   (four GPUs) fuseforge
#     bench on the 81 convolution problems, three shards, and ab-guard on the fourth: abx/new (at
#     54112df) against abx/guard (36766c2) on guard.txt
#   OUT=$OUT bash bench/session29/device.sh final   (four GPUs, at bb01afe) GPU tests, fuseforge bench
#     on bench_final.txt, the A/B of ff_div_row on final_ab.txt (abx/def: 36766c2, abx/new: bb01afe)
#   OUT=$OUT bash bench/session29/device.sh check   (two GPUs, at 4de80cf) host times of host.txt
#     (abx/host), the signed offsets' A/B on level2/022 (abx/def: 36766c2, abx/new: 4de80cf), the
#     row tests, fuseforge bench on guard.txt
#   OUT=$OUT bash bench/session29/device.sh tests   every GPU test (test_groups.txt)
# (each case's abx/ folders: scripts/generate_sources.py here, at the commits named)
set -u
S=bench/session29
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
W=$(mktemp -d)
case "${1:-}" in
ab)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$W/gpu.txt"
  (CUDA_VISIBLE_DEVICES=1 timeout 420 python3 -m pytest -q -m gpu tests/test_conv_rows.py > "$W/gpu_conv_rows.log" 2>&1
   echo "exit $?" >> "$W/gpu_conv_rows.log") &
  P022=suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py
  timeout 200 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/fold.txt) --build-only --jobs 10 > "$W/build.log" 2>&1
  timeout 100 python3 scripts/ab_generated.py abx/new abx/v2 $P022 --build-only > "$W/build_v2.log" 2>&1
  CUDA_VISIBLE_DEVICES=0 timeout 200 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/fold.txt) --rounds 5 --trials 20 \
    --json "$W/ab_held.json" > "$W/ab_held.log" 2>&1
  CUDA_VISIBLE_DEVICES=0 timeout 60 python3 scripts/ab_generated.py abx/new abx/v2 $P022 --rounds 5 --trials 20 \
    --json "$W/ab_v2.json" > "$W/ab_v2.log" 2>&1
  F=abx/new/level2_022_conv2d_softmax_bias_scale_sigmoid.py
  CUDA_VISIBLE_DEVICES=0 timeout 120 ncu --clock-control none -k regex:conv --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section Occupancy --section WarpStateStats \
    --section LaunchStats python3 $S/ncu_022.py $F > "$W/ncu_022_new.txt" 2>&1
  wait
  mkdir -p "$OUT/ab" && cp "$W"/* "$OUT/ab/"
  tail -n 3 "$W/gpu_conv_rows.log"; cat "$W/build.log" "$W/build_v2.log"
  grep -E "Duration|Registers|Achieved Occupancy|Issue Slots Busy|Executed Ipc A|Block Limit Reg|Block Limit Sh" "$W/ncu_022_new.txt"
  tail -n 14 "$W/ab_held.log"; tail -n 3 "$W/ab_v2.log"
  ;;
suite)
  # GPUs 0..n-2: fuseforge bench on the 81 convolution problems (bench/session27/conv.txt), a shard
  # a GPU and its share of the cores, into conv_h200/ (a later call resumes: the shards' results
  # come back in results.tgz and travel with the tree); the last GPU: $LAST (a case of this file)
  NG=$(nvidia-smi -L | wc -l); NB=$((NG - 1)); NC=$(( $(nproc) / NG ))
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  for g in $(seq 0 $((NB - 1))); do
    i=$((g + 1))
    (CUDA_VISIBLE_DEVICES=$g taskset -c $((g * NC))-$((g * NC + NC - 1)) python3 -m fuseforge.cli bench \
       $(cat bench/session27/conv.txt) --shard "$i/$NB" -o "$S/conv_h200/shard_${i}_$NB" --batch 16 \
       --budget "${BUDGET:-400}" > "$W/suite_bench_${i}_$NB.log" 2>&1) &
  done
  mkdir -p "$W/last"
  (CUDA_VISIBLE_DEVICES=$NB taskset -c $((NB * NC))-$((NB * NC + NC - 1)) env OUT="$W/last" bash $S/device.sh \
     ${LAST:-none} > "$W/last.log" 2>&1) &
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200" -C "$W" .
  for f in "$W"/suite_bench_*.log; do tail -n 3 "$f"; done
  tail -n 40 "$W/last.log"
  ;;
ab-guard)   # (on one GPU) the loop-level guard: abx/new (at 54112df) against abx/guard, guard.txt
  timeout 150 python3 scripts/ab_generated.py abx/new abx/guard $(cat $S/guard.txt) --build-only --jobs 8 > "$OUT/build_guard.log" 2>&1
  timeout 150 python3 scripts/ab_generated.py abx/new abx/guard $(cat $S/guard.txt) --rounds 5 --trials 20 \
    --json "$OUT/ab_guard.json" > "$OUT/ab_guard.log" 2>&1
  tail -n 2 "$OUT/build_guard.log"; tail -n 30 "$OUT/ab_guard.log"
  ;;
tests1)   # (on one GPU) every GPU test: the groups of bench/session28/test_groups.txt at once
  IFS='|' read -r -a GROUPS_ <<< "$(cat bench/session28/test_groups.txt)"
  mkdir -p "$OUT/tests"
  for k in "${!GROUPS_[@]}"; do
    (timeout 560 python3 -m pytest -q -m gpu ${GROUPS_[$k]} > "$OUT/tests/gpu-test-$k.log" 2>&1
     echo "exit $?" >> "$OUT/tests/gpu-test-$k.log") &
  done
  wait
  for f in "$OUT"/tests/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -12; tail -n 2 "$f"; done
  ;;
guard-tests)
  bash $S/device.sh ab-guard
  bash $S/device.sh tests1
  ;;
final)   # (four GPUs) GPUs 0-1: every GPU test (test_groups.txt, three groups a GPU); GPU 2: fuseforge
  # bench on bench_final.txt (the convolution problems the last changes touch, and the two the
  # suite run left) into conv_h200_final/; GPU 3: abx/def (generated at 36766c2, the suite run's
  # code) against abx/new (the last) on final_ab.txt (every problem whose file changed since)
  NC=$(( $(nproc) / 4 ))
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  IFS='|' read -r -a GROUPS_ <<< "$(cat $S/test_groups.txt)"
  mkdir -p "$W/tests"
  for k in "${!GROUPS_[@]}"; do
    (CUDA_VISIBLE_DEVICES=$((k % 2)) taskset -c 0-$((2 * NC - 1)) timeout 540 python3 -m pytest -q -m gpu ${GROUPS_[$k]} \
       > "$W/tests/gpu-test-$k.log" 2>&1; echo "exit $?" >> "$W/tests/gpu-test-$k.log") &
  done
  (CUDA_VISIBLE_DEVICES=2 taskset -c $((2 * NC))-$((3 * NC - 1)) python3 -m fuseforge.cli bench $(cat $S/bench_final.txt) \
     -o "$S/conv_h200_final" --batch 16 --budget 420 > "$W/bench_final.log" 2>&1) &
  (export CUDA_VISIBLE_DEVICES=3
   taskset -c $((3 * NC))-$((4 * NC - 1)) timeout 240 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/final_ab.txt) \
     --build-only --jobs $NC > "$W/build_final.log" 2>&1
   taskset -c $((3 * NC))-$((4 * NC - 1)) timeout 280 python3 scripts/ab_generated.py abx/def abx/new $(cat $S/final_ab.txt) \
     --rounds 5 --trials 20 --json "$W/ab_final.json" > "$W/ab_final.log" 2>&1) &
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200_final" -C "$W" .
  for f in "$W"/tests/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -8; tail -n 2 "$f"; done
  tail -n 3 "$W/bench_final.log"; tail -n 2 "$W/build_final.log"; tail -n 16 "$W/ab_final.log"
  ;;
check)   # (two GPUs) GPU 0: the host time of host.txt's files (the nine above 5 % in the suite run,
  # which ran beside builds and tests: ab_generated with the same folder as old and new, two
  # draws), nothing else running; then level2/022's signed offsets (abx/def: at 36766c2, abx/new);
  # GPU 1, after the host times: the row tests (test_rows, test_conv_rows), then fuseforge bench on
  # guard.txt (the four files the signed offsets change) into conv_h200_last/
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$W/gpu.txt"
  export CUDA_VISIBLE_DEVICES=0
  P022=suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py
  timeout 150 python3 scripts/ab_generated.py abx/host abx/host $(cat $S/host.txt) --build-only --jobs 16 > "$W/build_host.log" 2>&1
  timeout 150 python3 scripts/ab_generated.py abx/host abx/host $(cat $S/host.txt) --rounds 3 --trials 20 \
    --json "$W/host.json" > "$W/host.log" 2>&1
  (export CUDA_VISIBLE_DEVICES=1
   timeout 300 python3 -m pytest -q -m gpu tests/test_rows.py tests/test_conv_rows.py > "$W/gpu_rows.log" 2>&1
   echo "exit $?" >> "$W/gpu_rows.log"
   python3 -m fuseforge.cli bench $(cat $S/guard.txt) -o "$S/conv_h200_last" --batch 16 --budget 200 \
     > "$W/bench_last.log" 2>&1) &
  timeout 100 python3 scripts/ab_generated.py abx/def abx/new $P022 --build-only > "$W/build_022.log" 2>&1
  timeout 100 python3 scripts/ab_generated.py abx/def abx/new $P022 --rounds 9 --trials 20 \
    --json "$W/ab_signed.json" > "$W/ab_signed.log" 2>&1
  wait
  mkdir -p "$OUT" && tar czf "$OUT/results.tgz" "$S/conv_h200_last" -C "$W" .
  tail -n 12 "$W/host.log"; tail -n 3 "$W/ab_signed.log"; tail -n 3 "$W/gpu_rows.log"; tail -n 6 "$W/bench_last.log"
  ;;
tests)   # every GPU test (test_groups.txt over the GPUs)
  TEST_GROUPS="$(cat $S/test_groups.txt)" TEST_LOGS="$OUT/tests" bash scripts/device_run.sh gpu-tests
  ;;
none) ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh ab|suite|ab-guard|tests1|final|check|tests"; exit 2 ;;
esac
