#!/bin/bash
# The 18th session's last device calls (one H100), after the last change to generated code:
#   OUT=$OUT bash bench/session18/final_device.sh measure   the GEMM benchmark (accuracy, speed,
#       SASS; split-K cases added), level3/015 re-timed through fuseforge bench and its host time
#       profiled against eager's, eager's 3D TF32 use (bench/session17/eager_tf32_3d.py)
#   OUT=$OUT bash bench/session18/final_device.sh full      the GEMM benchmark, then every GPU test
#   OUT=$OUT bash bench/session18/final_device.sh tests     level3/015 re-timed once more (host-bound: its
#       times follow the host's speed, bench/session18/lstm), then every GPU test (device_run.sh gpu-tests)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 COLUMNS=200
OUT=${OUT:-out}
mkdir -p "$OUT"
case "${1:?measure or tests}" in
measure)
  timeout 240 python3 scripts/bench_gemm.py --out "$OUT/gemm" > "$OUT/bench_gemm.log" 2>&1
  echo "bench_gemm rc=$?"
  python3 -m fuseforge.cli bench suite/level3/015_lstm_classifier.py -o "$OUT/lstm_suite" --budget 120 > "$OUT/lstm_suite.log" 2>&1
  timeout 60 python3 - > "$OUT/lstm_host_profile.txt" 2>&1 <<'PY'
import sys; sys.path.insert(0, "src")
import torch
from fuseforge import compile as ff_compile
from fuseforge.bench import host_time
from fuseforge.problem import load_problem
pr = load_problem("suite/level3/015_lstm_classifier.py")
ref = pr.build(0).cuda()
xs = [x.cuda() for x in pr.inputs(0)]
fast = ff_compile(ref, xs)
for name, f in (("eager", ref), ("fuseforge", fast)):
    print(name, "host ms per forward", round(host_time(f, xs, calls=50), 3))
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                             torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            f(*xs)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
PY
  timeout 200 python3 bench/session17/eager_tf32_3d.py > "$OUT/eager_tf32_3d_h100.txt" 2>&1
  tail -4 "$OUT/lstm_suite.log"
  grep "host ms" "$OUT/lstm_host_profile.txt"
  tail -5 "$OUT/eager_tf32_3d_h100.txt"
  tail -14 "$OUT/bench_gemm.log"
  ;;
full)
  # the closing call: the GEMM benchmark, then every GPU test
  timeout 200 python3 scripts/bench_gemm.py --out "$OUT/gemm" > "$OUT/bench_gemm.log" 2>&1
  echo "bench_gemm rc=$?"
  tail -12 "$OUT/bench_gemm.log" | grep "^|"
  OUT=$OUT/t bash scripts/device_run.sh gpu-tests
  ;;
tests)
  python3 -m fuseforge.cli bench suite/level3/015_lstm_classifier.py -o "$OUT/lstm_suite2" --budget 120 > "$OUT/lstm_suite2.log" 2>&1
  tail -4 "$OUT/lstm_suite2.log"
  OUT=$OUT/t bash scripts/device_run.sh gpu-tests
  ;;
esac
