#!/bin/bash
# A GPU session's measuring work, in parts that each fit one device call (10 minutes):
#   bash scripts/device_run.sh tests   GPU tests (two pytest processes at once, so that their
#                                      extension builds overlap), fuseforge check on the example
#                                      and on an adversarial file, the example benchmark,
#                                      convolution layouts
#   bash scripts/device_run.sh bench   row/window benchmark, a slice of the suite through
#                                      fuseforge bench
#   bash scripts/device_run.sh layout  GPU tests, the example, conv chains of the row benchmark,
#                                      the suite's conv + pointwise problems (channels-last), losses
#   bash scripts/device_run.sh gemm    GEMM GPU tests, the GEMM benchmark (accuracy, speed, SASS), the
#                                      suite's GEMM problems through fuseforge bench
#   bash scripts/device_run.sh verify  GPU tests but the checker's (new kernels in one process, the
#                                      rest in another), then the GEMM benchmark
#   bash scripts/device_run.sh final   the GPU tests a GEMM change touches, and three GEMM cases
#   SHARD=i/n bash scripts/device_run.sh suite   one shard of the whole suite through fuseforge bench
#   bash scripts/device_run.sh suite-all  the whole suite on a machine of n GPUs: shard i/n on GPU i-1
#                                      and its own 1/n of the cores (no process of one shard shares a
#                                      GPU or a core with another's timing); TESTS=1 then runs the GPU
#                                      tests spread over the GPUs. A later call resumes (same n).
#                                      LIST=file: only the problems it names (one path a line), into
#                                      OUTDIR (default bench/suite_full)/shard_i_n.
#   bash scripts/device_run.sh gpu-tests  every GPU test, five groups spread over the GPUs
#   ABX=dir LIST=file bash scripts/device_run.sh conv-ablations   the generated convolution's
#                                      ablations (scripts/conv_ablations.py: $ABX/abl/<variant>/) timed
#                                      against the files as generated ($ABX/${BASE:-default}/), problems in LIST
#   bash scripts/device_run.sh profile P...  scripts/profile_kernels.py over the problems P, spread
#                                      over the GPUs (problem j on GPU j mod n); the logs print last.
#                                      HOST=1: the host time of a call and where it goes too (--host).
# Everything lands in $OUT/results.tgz (the device returns few files); the tables print last.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out/device}
W=$(mktemp -d)
mkdir -p "$OUT" "$W"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$W/gpu.txt"
ff() { python3 -m fuseforge.cli "$@"; }
save() { tar czf "$OUT/results.tgz" -C "$W" .; }   # after every stage: a call cut short keeps what ran

# Every GPU test, in five groups spread over the machine's GPUs (TEST_GROUPS="a b|c|..." overrides).
gpu_tests() {
  local NG; NG=$(nvidia-smi -L | wc -l)
  # five groups by default; the last takes every test file the first four do not name, so a new
  # test file is never left out (four groups took over 430 s on one H100 in the 16th session: the
  # last, with the layout and window tests, builds its models one after another)
  local FIRST="tests/test_gemm.py tests/test_scans.py tests/test_convs.py|tests/test_check.py|tests/test_pipeline.py tests/test_functional_api.py tests/test_ops.py tests/test_suite_bench.py|tests/test_layout.py tests/test_windows.py"
  local REST; REST=$(ls tests/test_*.py | grep -v -x -F -f <(tr ' |' '\n\n' <<< "$FIRST") | tr '\n' ' ')
  IFS='|' read -r -a GROUPS_ <<< "${TEST_GROUPS:-$FIRST|$REST}"
  local L=${TEST_LOGS:-$W}   # each group's log (TEST_LOGS: a folder readable while the groups run)
  mkdir -p "$L"
  for k in "${!GROUPS_[@]}"; do
    (CUDA_VISIBLE_DEVICES=$((k % NG)) python3 -m pytest -q -m gpu ${GROUPS_[$k]} > "$L/gpu-test-$k.log" 2>&1
     echo "exit $?" >> "$L/gpu-test-$k.log") &
  done
  wait
  save
  for f in "$L"/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -12; tail -n 2 "$f"; done
}

case "$1" in
tests)
  (python3 -m pytest -q -m gpu tests/test_check.py > "$W/gpu-test-check.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-check.log") &
  (python3 -m pytest -q -m gpu tests --ignore=tests/test_check.py > "$W/gpu-test-rest.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-rest.log") &
  ff optimize examples/conv2d_min_add_mul.py -o out/example_new.py --no-bench > "$W/optimize.log" 2>&1
  wait
  tail -5 "$W/gpu-test-check.log" "$W/gpu-test-rest.log"
  ff check examples/conv2d_min_add_mul.py out/example_new.py --compile --json "$W/check_example.json" \
    > "$W/check_example.txt" 2>&1
  ff check tests/adversarial/ref_linear_relu.py tests/adversarial/hack_identity_cache.py \
    --set batch_size=2048 --set features=4096 --json "$W/check_identity_cache.json" > "$W/check_identity_cache.txt" 2>&1
  ff check tests/adversarial/ref_linear_relu.py tests/adversarial/gpu_side_stream.py \
    --set batch_size=2048 --set features=4096 --json "$W/check_side_stream.json" > "$W/check_side_stream.txt" 2>&1
  timeout 150 python3 scripts/bench_example.py --out "$W" > "$W/bench_example.log" 2>&1
  timeout 150 python3 scripts/conv_layouts.py suite/level2 suite/level3 --out "$W" > "$W/conv_layouts.log" 2>&1
  cat "$W/check_example.txt" "$W/check_identity_cache.txt" "$W/check_side_stream.txt"
  tail -3 "$W/conv_layouts.log"
  tail -12 "$W/bench_example.log"
  ;;
bench)
  timeout 300 python3 scripts/bench_rows.py --out "$W" > "$W/bench_rows.log" 2>&1
  ff bench suite/level1/059_group_norm.py suite/level1/061_batch_norm_train.py suite/level1/080_maxpool2d.py \
    suite/level1/085_avgpool3d.py suite/level1/086_adaptive_avgpool2d.py \
    suite/level2/001_conv2d_batchnorm_relu.py suite/level2/003_conv2d_min_softmax.py \
    suite/level2/009_conv2d_tanh_scale_bias_maxpool.py suite/level2/013_conv2d_avgpool_sigmoid_sum.py \
    suite/level2/040_conv3d_batchnorm_relu.py suite/level2/045_convtranspose3d_leakyrelu_multiply_leakyrelu_maxpool.py \
    suite/level2/053_linear_sum_max_logsumexp_relu.py suite/level2/094_batchnorm_relu_maxpool.py \
    suite/level3/004_vgg_block.py suite/level3/005_resnet_basic_block.py \
    suite/level1/089_cumsum.py suite/level1/091_reverse_cumsum.py suite/level1/094_cross_entropy.py \
    suite/level1/101_triplet_margin_loss.py suite/level2/083_linear_cross_entropy.py \
    -o "$W/suite" --batch 8 --budget "${BUDGET:-200}" > "$W/suite_bench.log" 2>&1
  tail -30 "$W/bench_rows.log"
  tail -40 "$W/suite_bench.log"
  ;;
layout)
  (python3 -m pytest -q -m gpu tests/test_check.py > "$W/gpu-test-check.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-check.log") &
  (python3 -m pytest -q -m gpu tests --ignore=tests/test_check.py > "$W/gpu-test-rest.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-rest.log") &
  wait
  for f in "$W"/gpu-test-*.log; do tail -n 3 "$f"; done
  save
  timeout 150 python3 scripts/bench_example.py --out "$W" > "$W/bench_example.log" 2>&1
  save
  timeout 200 python3 scripts/bench_rows.py --out "$W" --only conv_bn_eval_relu conv_relu_maxpool conv_bn_train_relu conv_min_softmax conv_tanh_scale_bias_maxpool \
    conv_gelu_groupnorm > "$W/bench_rows.log" 2>&1
  save
  ff bench suite/level2/001_conv2d_batchnorm_relu.py suite/level2/002_conv2d_gelu_groupnorm.py \
    suite/level2/003_conv2d_min_softmax.py suite/level2/004_conv2d_bias_scale_sigmoid.py \
    suite/level2/024_conv2d_swish_residual.py \
    suite/level2/025_convtranspose2d_bias_clamp_scale_clamp_divide.py suite/level2/029_convtranspose2d_mish_add_hardtanh_scale.py \
    suite/level2/009_conv2d_tanh_scale_bias_maxpool.py suite/level2/032_conv3d_mish_tanh.py \
    suite/level1/095_mse_loss.py suite/level1/096_smooth_l1_loss.py suite/level1/097_huber_loss.py \
    suite/level1/098_kl_div.py suite/level1/099_hinge_loss.py suite/level1/100_cosine_similarity_loss.py \
    -o "$W/suite" --batch 8 --budget "${BUDGET:-260}" > "$W/suite_bench.log" 2>&1
  tail -12 "$W/bench_example.log"
  tail -14 "$W/bench_rows.log"
  tail -40 "$W/suite_bench.log"
  ;;
gemm)
  python3 -m pytest -q -m gpu tests/test_gemm.py > "$W/gpu-test-gemm.log" 2>&1
  echo "exit $?" >> "$W/gpu-test-gemm.log"
  tail -n 4 "$W/gpu-test-gemm.log"
  save
  timeout 300 python3 scripts/bench_gemm.py --out "$W" > "$W/bench_gemm.log" 2>&1
  save
  ff bench suite/level1/001_matmul_square.py suite/level1/006_matmul_irregular.py suite/level1/007_bmm.py \
    suite/level1/009_matmul_transposed_b.py suite/level1/011_matmul_3d_tensor_matrix.py suite/level1/018_linear.py \
    suite/level2/053_linear_sum_max_logsumexp_relu.py suite/level2/056_linear_relu_bias_add.py \
    suite/level2/057_linear_sigmoid_scale_residual.py suite/level2/063_linear_mish_mish.py \
    suite/level2/086_addmm_relu.py suite/level2/090_bmm_relu_square.py suite/level3/002_mlp_wide.py \
    -o "$W/suite" --batch 7 --budget "${BUDGET:-200}" > "$W/suite_bench.log" 2>&1
  grep -v "^{" "$W/bench_gemm.log" | tail -25
  tail -30 "$W/suite_bench.log"
  ;;
verify)
  (python3 -m pytest -q -m gpu tests/test_gemm.py tests/test_scans.py > "$W/gpu-test-new.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-new.log") &
  (python3 -m pytest -q -m gpu tests --ignore=tests/test_check.py --ignore=tests/test_gemm.py \
     --ignore=tests/test_scans.py > "$W/gpu-test-rest.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-rest.log") &
  wait
  for f in "$W"/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -12; tail -n 2 "$f"; done
  save
  timeout 280 python3 scripts/bench_gemm.py --out "$W" > "$W/bench_gemm.log" 2>&1
  grep -v "^{" "$W/bench_gemm.log" | tail -30
  ;;
final)
  (python3 -m pytest -q -m gpu tests/test_gemm.py tests/test_layout.py > "$W/gpu-test-new.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-new.log") &
  (python3 -m pytest -q -m gpu tests/test_pipeline.py tests/test_functional_api.py tests/test_scans.py \
     tests/test_ops.py > "$W/gpu-test-rest.log" 2>&1
   echo "exit $?" >> "$W/gpu-test-rest.log") &
  wait
  for f in "$W"/gpu-test-*.log; do grep -E "^FAILED|^E  " "$f" | head -12; tail -n 2 "$f"; done
  save
  timeout 150 python3 scripts/bench_gemm.py --out "$W" --only matmul_4096 linear_relu_bias_2048x4096x4096 \
    bmm_128x512x1024x512 > "$W/bench_gemm.log" 2>&1
  grep -v "^{" "$W/bench_gemm.log" | tail -20
  ;;
suite)
  # one shard of the whole suite: SHARD=i/n. Results go to bench/suite_full/shard_i_n in the tree
  # (commit what comes back: a later call resumes where this one stopped); then
  # `fuseforge bench merge bench/suite_full/shard_* -o bench/suite_full`.
  D="bench/suite_full/shard_$(echo "${SHARD:?set SHARD=i/n}" | tr / _)"
  ff bench suite --shard "$SHARD" -o "$D" --batch 16 --budget "${BUDGET:-500}" > "$W/suite_bench.log" 2>&1
  cp -r "$D" "$W/"
  tail -30 "$W/suite_bench.log"
  ;;
suite-all)
  NG=$(nvidia-smi -L | wc -l)
  NC=$(( $(nproc) / NG ))
  for g in $(seq 0 $((NG - 1))); do
    i=$((g + 1)); D="${OUTDIR:-bench/suite_full}/shard_${i}_${NG}"
    (CUDA_VISIBLE_DEVICES=$g taskset -c $((g * NC))-$((g * NC + NC - 1)) python3 -m fuseforge.cli bench \
       $(if [ -n "${LIST:-}" ]; then cat "$LIST"; else echo suite; fi) \
       --shard "$i/$NG" -o "$D" --batch 16 --budget "${BUDGET:-500}" > "$W/suite_bench_$i.log" 2>&1
     mkdir -p "$W/suite_full" && cp -r "$D" "$W/suite_full/") &
  done
  wait
  save
  for g in $(seq 1 "$NG"); do tail -n 4 "$W/suite_bench_$g.log"; done
  if [ "${TESTS:-0}" = 1 ]; then gpu_tests; fi
  ;;
gpu-tests)
  gpu_tests
  ;;
conv-ablations)
  for v in $(ls "$ABX/abl"); do
    python3 scripts/ab_generated.py "$ABX/${BASE:-default}" "$ABX/abl/$v" $(cat "$LIST") --build-only --jobs 16 >> "$W/ablations_build.log" 2>&1
  done
  for v in $(ls "$ABX/abl"); do
    python3 scripts/ab_generated.py "$ABX/${BASE:-default}" "$ABX/abl/$v" $(cat "$LIST") --no-verify --rounds 5 --trials 30 \
      --json "$W/ablation_$v.json" > "$W/ablation_$v.log" 2>&1
    save
    echo "== $v"; grep -v "^    " "$W/ablation_$v.log" | tail -n $(( $(wc -l < "$LIST") + 1 ))
  done
  ;;
profile)
  shift
  NG=$(nvidia-smi -L | wc -l)
  NC=$(( $(nproc) / NG ))
  PROBS=("$@")
  for g in $(seq 0 $((NG - 1))); do
    MINE=()
    for j in "${!PROBS[@]}"; do [ $((j % NG)) = "$g" ] && MINE+=("${PROBS[$j]}"); done
    [ ${#MINE[@]} = 0 ] && continue
    (CUDA_VISIBLE_DEVICES=$g taskset -c $((g * NC))-$((g * NC + NC - 1)) python3 scripts/profile_kernels.py \
       "${MINE[@]}" --out "$W/profile_$g" ${HOST:+--host} > "$W/profile_$g.log" 2>&1) &
  done
  wait
  save
  cat "$W"/profile_*.log | grep -v "^\s*$" | cut -c1-160
  ;;
esac
tar czf "$OUT/results.tgz" -C "$W" .
