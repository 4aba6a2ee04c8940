#!/bin/bash
# The 17th session's last device calls (one H100):
#   OUT=$OUT bash bench/session17/final.sh tests   every GPU test (scripts/device_run.sh gpu-tests, five groups)
#   OUT=$OUT bash bench/session17/final.sh suite   the suite re-timed for the 18 problems whose generated code
#                                                  changed (changed.txt; merge bench/session17/final into
#                                                  bench/suite_full as bench/README says)
set -u
OUT=${OUT:-out}
export FUSEFORGE_COMMIT=${FUSEFORGE_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
case "$1" in
tests) OUT=$OUT/t timeout 580 bash scripts/device_run.sh gpu-tests 2>&1 | tail -16 ;;
suite) LIST=bench/session17/changed.txt OUTDIR=bench/session17/final BUDGET=520 OUT=$OUT/s timeout 580 \
         bash scripts/device_run.sh suite-all 2>&1 | tail -8 ;;
esac
