#!/bin/bash
# The 27th session's device work (H200s only; the suite's records, bench/suite_full, are the H100's):
#   OUT=$OUT bash bench/session27/device.sh tests   every GPU test (six groups, test_groups.txt,
#     spread over the machine's GPUs), after the bound call became the default
#   OUT=$OUT bash bench/session27/device.sh conv    every convolution problem of the suite
#     (conv.txt: the files that name a convolution, as scripts/conv_table.py picks them) through
#     fuseforge bench, one shard a GPU, into conv_h200/; a call cut short by its budget resumes
set -u
S=bench/session27
case "${1:-}" in
tests)
  TEST_GROUPS="$(cat $S/test_groups.txt)" TEST_LOGS="$OUT/tests" bash scripts/device_run.sh gpu-tests
  ;;
conv)
  LIST=$S/conv.txt OUTDIR=$S/conv_h200 BUDGET=${BUDGET:-470} bash scripts/device_run.sh suite-all
  ;;
*) echo "usage: OUT=\$OUT bash $S/device.sh tests|conv"; exit 2 ;;
esac
