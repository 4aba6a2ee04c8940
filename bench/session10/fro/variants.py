"""level1/064 (x / ||x||, 268 MB) generated with other streamed-row constants, each timed alone.

    python3 bench/session10/fro/variants.py

Each variant: codegen.rows' constants set, fuseforge.compile, checked against eager, then the forward
timed with CUDA events (L2 flushed before each call, median of 50).
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))
import fuseforge  # noqa: E402
from fuseforge.codegen import rows  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402

problem = load_problem(Path(__file__).resolve().parents[3] / "suite/level1/064_frobenius_norm_normalize.py")
model = problem.build(0).cuda()
x = problem.inputs(0)[0].cuda()
ref = model(x)
flush = torch.empty(128 << 20, dtype=torch.uint8, device="cuda")


def median_ms(f, n=50):
    times = []
    for _ in range(n):
        flush.zero_()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[n // 2]


print(f"eager {median_ms(lambda: model(x)):.4f} ms")
for regs, smem, steps in [(16, 48 << 10, 2), (8, 48 << 10, 2), (0, 48 << 10, 2), (16, 48 << 10, 2), (8, 48 << 10, 4)]:
    rows.RESIDENT_REGS, rows.RESIDENT_STREAM_SMEM, rows.RESIDENT_ITEM_STEPS = regs, smem, steps
    fused = fuseforge.compile(model, [x])
    with torch.no_grad():
        out = fused(x)
        err = ((out - ref).abs().max() / ref.abs().max()).item()
        ms = median_ms(lambda: fused(x))
    print(f"regs {regs:2d} smem {smem >> 10} KB item steps {steps}: {ms:.4f} ms  (max err {err:.1e})", flush=True)
