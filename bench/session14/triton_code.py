"""Print the Triton code torch.compile (default mode) generates for a suite problem, to compare
its kernels with ours (launch shape, tiles, cache hints). On a GPU:
    TORCH_LOGS=output_code python3 bench/session14/triton_code.py suite/level2/004_....py 2> out.txt
"""
import sys

import torch

sys.path.insert(0, "src")
from fuseforge.problem import load_problem  # noqa: E402

problem = load_problem(sys.argv[1])
model = problem.build(0).cuda()
inputs = [x.cuda() for x in problem.inputs(0)]
with torch.no_grad():
    torch.compile(model)(*inputs)
torch.cuda.synchronize()
print("compiled", sys.argv[1])
