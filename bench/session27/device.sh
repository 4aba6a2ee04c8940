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
#   OUT=$OUT bash bench/session27/device.sh transpose   scripts/transpose_bench.py: the default
#     NCHW -> channels-last copy against FUSEFORGE_CL_COPY=128 four ways, ATen's and torch.compile's
#   FUSEFORGE_CL_COPY=128 (off: the copy to channels-last with a 32 x 128 tile, float4 where it
#     fits) against the default on copy.txt: `device.sh prep-copy` here, then
#     OUT=$OUT bash bench/session27/device.sh ab-copy   (test_cl_copy's GPU tests, then the A/B,
#     half the problems on each GPU)
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
prep-copy)
  rm -rf abx/def abx/copy
  python3 scripts/generate_sources.py abx/def $(cat $S/copy.txt) > /dev/null
  FUSEFORGE_CL_COPY=128 python3 scripts/generate_sources.py abx/copy $(cat $S/copy.txt) > /dev/null
  ;;
ab-copy)
  AB=copy LIST=$S/copy.txt bash $S/device.sh ab
  ;;
ab-conv)
  AB=off LIST=$S/genconv.txt bash $S/device.sh ab
  ;;
ab)
  export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
  mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  if [ "$AB" = copy ]; then python3 -m pytest -q -m gpu tests/test_cl_copy.py > "$OUT/tests.log" 2>&1; tail -n 2 "$OUT/tests.log"; fi
  python3 scripts/ab_generated.py abx/def abx/$AB $(cat $LIST) --build-only --jobs $(nproc) > "$OUT/build.log" 2>&1
  tail -n 2 "$OUT/build.log"
  NG=$(nvidia-smi -L | wc -l); NC=$(( $(nproc) / NG ))
  for g in $(seq 0 $((NG - 1))); do
    (CUDA_VISIBLE_DEVICES=$g taskset -c $((g * NC))-$((g * NC + NC - 1)) python3 scripts/ab_generated.py abx/def abx/$AB \
       $(awk -v g=$g -v n=$NG 'NR % n == g' $LIST) --rounds 3 --trials 20 --json "$OUT/ab_${AB}_$g.json" \
       > "$OUT/ab_${AB}_$g.log" 2>&1) &
  done
  wait
  for g in $(seq 0 $((NG - 1))); do tail -n 20 "$OUT/ab_${AB}_$g.log" | grep -v "^    "; done
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
*) echo "usage: OUT=\$OUT bash $S/device.sh tests|conv|ab-conv|profile|transpose|ab-copy"; exit 2 ;;
esac
