"""level2/022's generated file, built and run twice (the second call is the one ncu profiles):
    PYTHONPATH=src python3 bench/session28/ncu/run_022.py            (builds it; on the GPU)
    ncu --clock-control none -k regex:conv --launch-skip 1 --launch-count 1 --section ... \
        python3 bench/session28/ncu/run_022.py
"""
import glob
import sys

import torch

from fuseforge.build import load_generated
from fuseforge.problem import load_problem

path = glob.glob("bench/session28/conv_h200/shard_*/generated/level2/022_*_new.py")[0]
problem = load_problem("suite/level2/022_conv2d_softmax_bias_scale_sigmoid.py")
cls = load_generated(path, "ncu_022").module.ModelNew
torch.manual_seed(0)
model = cls(*problem.init_args()).cuda()
inputs = problem.inputs(0, "cuda")
with torch.no_grad():
    for _ in range(2):
        model(*inputs)
torch.cuda.synchronize()
print("ok", file=sys.stderr)
