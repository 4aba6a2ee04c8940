#!/bin/bash
# The 17th session's last device call (one H100), after depthwise convolutions of model inputs became
# window kernels: every GPU test (five groups), then the three problems it changes re-timed
# (LIST bench/session17/depthwise_changed.txt into bench/session17/depthwise; merged as bench/README says).
#   OUT=$OUT bash bench/session17/last_device.sh
set -u
OUT=${OUT:-out}
OUT=$OUT/t timeout 400 bash scripts/device_run.sh gpu-tests 2>&1 | tail -16
LIST=bench/session17/depthwise_changed.txt OUTDIR=bench/session17/depthwise BUDGET=150 OUT=$OUT/s timeout 180 \
  bash scripts/device_run.sh suite-all 2>&1 | tail -4
