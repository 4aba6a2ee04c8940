#!/bin/bash
# level3/015 (a host-bound LSTM) A/B: its classifier as the generated small-tile GEMM (OLD: the
# estimates, FUSEFORGE_TUNING=off) or cuBLAS (NEW: the measured table; 0.007 against 0.021 ms alone),
# 11 interleaved rounds, then each version's host time per forward.
#   OUT=$OUT bash bench/session18/lstm_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
P=suite/level3/015_lstm_classifier.py
timeout 300 python3 scripts/ab_generated.py abx/old abx/new $P --rounds 11 --trials 30 --json "$OUT/ab_lstm_h100.json" 2>&1 | tail -3
python3 - <<'PY' 2>&1 | tail -4
import sys; sys.path.insert(0, "src")
import torch
from fuseforge.bench import host_time
from fuseforge.build import load_generated
from fuseforge.problem import load_problem
pr = load_problem("suite/level3/015_lstm_classifier.py")
ref = pr.build(0).cuda()
xs = [x.cuda() for x in pr.inputs(0)]
for tag in ("old", "new"):
    m = load_generated(f"abx/{tag}/level3_015_lstm_classifier.py", f"{tag}_level3_015_lstm_classifier").module
    mod = m.ModelNew(*pr.init_args()).cuda()
    print(tag, "host ms", round(host_time(mod, xs, calls=50), 3))
print("eager host ms", round(host_time(ref, xs, calls=50), 3))
PY
