#!/bin/bash
# The 16th session's last device call (about 550 s on one H100): OUT=$OUT bash bench/session16/final.sh
# 1. every GPU test (scripts/device_run.sh gpu-tests);
# 2. the suite re-timed for the 14 problems the default plan now generates a convolution for
#    (conv_default.txt; merge bench/session16/final into bench/suite_full as bench/README says).
set -u
OUT=${OUT:-out}
export FUSEFORGE_COMMIT=${FUSEFORGE_COMMIT:-675295b}
OUT=$OUT/t timeout 290 bash scripts/device_run.sh gpu-tests 2>&1 | tail -14
LIST=bench/session16/conv_default.txt OUTDIR=bench/session16/final BUDGET=240 OUT=$OUT/s timeout 280 \
  bash scripts/device_run.sh suite-all 2>&1 | tail -6
