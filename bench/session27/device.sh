#!/bin/bash
# The 27th session's device work (H200s only; the suite's records, bench/suite_full, are the H100's):
#   OUT=$OUT bash bench/session27/device.sh tests   every GPU test (six groups, test_groups.txt,
#     spread over the machine's GPUs), after the bound call became the default
#   OUT=$OUT bash bench/session27/device.sh conv    every convolution problem of the suite
#     (conv.txt: the files that name a convolution, as scripts/conv_table.py picks them) through
#     fuseforge bench, one shard a GPU, into conv_h200/; a call cut short by its budget resumes
#     (LIST=conv_rest.txt OUTDIR=$S/conv_h200_rest: the 9 the third call left, on a fresh machine)
#   The generated convolution against cuDNN's on the H200 (its rules were measured on an H100): the
#     33 suite problems where the plan generates one (genconv.txt, from ../conv_table.md), generated
#     as they are (abx/def) and with FUSEFORGE_CONV=off (abx/off), `device.sh prep-ab` here, then
#     OUT=$OUT bash bench/session27/device.sh ab-conv   (two H200s: half the problems on each)
#   OUT=$OUT bash bench/session27/device.sh profile   the kernels of eager, torch.compile and
#     fuseforge on four problems below torch.compile on the H200 (profile.txt), and level2/001 and
#     022 generated both ways (abx/def, abx/off: after prep-ab)
#   OUT=$OUT bash bench/session27/device.sh transpose   scripts/transpose_bench.py: the generated
#     NCHW -> channels-last copy against three variants, ATen's and torch.compile's
set -u
S=bench/session27
case "${1:-}" in
tests)
  TEST_GROUPS="$(cat $S/test_groups.txt)" TEST_LOGS="$OUT/tests" bash scripts/device_run.sh gpu-tests
  ;;
conv)
  LIST=${LIST:-$S/conv.txt} OUTDIR=${OUTDIR:-$S/conv_h200} BUDGET=${BUDGET:-470} bash scripts/device_run.sh suite-all
  ;;
prep-ab)
  rm -rf abx && mkdir -p abx
  python3 scripts/generate_sources.py abx/def $(cat $S/genconv.txt) > /dev/null
  FUSEFORGE_CONV=off python3 scripts/generate_sources.py abx/off $(cat $S/genconv.txt) > /dev/null
  ;;
ab-conv)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 scripts/ab_generated.py abx/def abx/off $(cat $S/genconv.txt) --build-only --jobs $(nproc) > "$OUT/build.log" 2>&1
  tail -n 2 "$OUT/build.log"
  NG=$(nvidia-smi -L | wc -l); NC=$(( $(nproc) / NG ))
  for g in $(seq 0 $((NG - 1))); do
    (CUDA_VISIBLE_DEVICES=$g taskset -c $((g * NC))-$((g * NC + NC - 1)) python3 scripts/ab_generated.py abx/def abx/off \
       $(awk -v g=$g -v n=$NG 'NR % n == g' $S/genconv.txt) --rounds 3 --trials 20 --json "$OUT/ab_off_$g.json" \
       > "$OUT/ab_off_$g.log" 2>&1) &
  done
  wait
  for g in $(seq 0 $((NG - 1))); do tail -n 20 "$OUT/ab_off_$g.log" | grep -v "^    "; done
  ;;
profile)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  CUDA_VISIBLE_DEVICES=1 python3 scripts/profile_kernels.py suite/level2/001_conv2d_batchnorm_relu.py \
    suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py --generated abx/def --generated abx/off --no-compile \
    > "$OUT/prof_def_off.log" 2>&1 &
  CUDA_VISIBLE_DEVICES=0 python3 scripts/profile_kernels.py $(cat $S/profile.txt) --out "$OUT/prof" > "$OUT/prof.log" 2>&1
  wait
  ;;
transpose)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  python3 scripts/transpose_bench.py --json "$OUT/transpose.json" 2>&1 | grep -v Warning | tee "$OUT/transpose.log"
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh tests|conv|ab-conv|profile|transpose"; exit 2 ;;
esac
