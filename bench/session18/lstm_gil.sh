#!/bin/bash
# level3/015's host time: eager, the generated ModelNew, and with the GIL released in its forward.
#   OUT=$OUT bash bench/session18/lstm_gil.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
timeout 300 python3 bench/session18/lstm_host.py > "$OUT/lstm_host_h100.txt" 2>&1
grep -v Warn "$OUT/lstm_host_h100.txt" | grep "host ms\|threads\|Error" 
