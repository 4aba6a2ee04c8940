"""Each launch of a problem's generated row kernels, timed alone by Nsight Compute.

    ncu --clock-control none --kernel-name regex:fused --metrics gpu__time_duration.sum \
        python3 bench/session9/bn_cl/ncu_rows.py suite/level2/001_conv2d_batchnorm_relu.py

Builds the problem's module with fuseforge.compile on the GPU, then runs its forward three times.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))
import fuseforge  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402

problem = load_problem(sys.argv[1])
model = problem.build(0).cuda()
inputs = [t.cuda() if isinstance(t, torch.Tensor) else t for t in problem.inputs(0)]
fused = fuseforge.compile(model, inputs)
with torch.no_grad():
    for _ in range(3):
        fused(*inputs)
torch.cuda.synchronize()
print("done")
