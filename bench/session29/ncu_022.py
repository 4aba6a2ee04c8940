"""level2/022's generated file (argv[1]), built and run twice (the second call is the one ncu profiles):
    PYTHONPATH=src python3 bench/session29/ncu_022.py FILE            (builds it; on the GPU)
    ncu --clock-control none -k regex:conv --launch-skip 1 --launch-count 1 --section ... \
        python3 bench/session29/ncu_022.py FILE
"""
import sys
from pathlib import Path

import torch

from fuseforge.build import generated_model
from fuseforge.problem import load_problem

problem = load_problem("suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py")
model, _ = generated_model(Path(sys.argv[1]), problem)
inputs = problem.inputs(0, "cuda")
with torch.no_grad():
    for _ in range(2):
        model(*inputs)
torch.cuda.synchronize()
print("ok", file=sys.stderr)
