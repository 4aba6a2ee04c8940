"""A problem's generated file, built and run twice (the second call is the one ncu profiles):
    PYTHONPATH=src python3 bench/session33/run_twice.py PROBLEM FILE
    ncu --clock-control none -k regex:conv --launch-skip 1 --launch-count 1 --section ... \
        python3 bench/session33/run_twice.py PROBLEM FILE
"""
import sys
from pathlib import Path

import torch

from fuseforge.build import generated_model
from fuseforge.problem import load_problem

problem = load_problem(sys.argv[1])
model, _ = generated_model(Path(sys.argv[2]), problem)
inputs = problem.inputs(0, "cuda")
with torch.no_grad():
    for _ in range(2):
        model(*inputs)
torch.cuda.synchronize()
print("ok", file=sys.stderr)
