"""Where ext.forward's host time goes (level2/030 with timing points, abx/prof): the mean ns of each
segment of ff::replayed, and pybind's share (calls of the same argument lists that do nothing)."""
import statistics, sys, time
from pathlib import Path
import torch
sys.path.insert(0, "src")
sys.path.insert(0, "scripts")
from fuseforge.build import generated_model
from fuseforge.problem import load_problem
from host_probe import median_us

problem = load_problem(Path("suite/level2/030_convtranspose2d_subtract_tanh.py"))
model, ext = generated_model(next(Path("abx/prof").glob("level2_030*.py")), problem)
inputs = problem.inputs(0, "cuda")
state = model._ff_state
x = inputs[0]
for _ in range(5):
    model(*inputs)
torch.cuda.synchronize()
print(torch.cuda.get_device_name())
for rep in range(3):
    ext.reset_timings()
    idle = rep == 1   # the GPU idle before each call in round 1
    rows = [("model(x)", median_us(lambda: model(*inputs), 400, chunk=1 if idle else 20)),
            ("ext.forward([x], state)", median_us(lambda: ext.forward([x], state), 400, chunk=1 if idle else 20))]
    t = ext.timings()
    rows += [("tnow() (pybind floor + clock)", median_us(ext.tnow, 400)),
             ("noop_tensors([x], state) (args in)", median_us(lambda: ext.noop_tensors([x], state), 400)),
             ("ret_tensor([x]) (list in, same tensor out)", median_us(lambda: ext.ret_tensor([x]), 400)),
             ("fresh(x) (handed_out + a new Python tensor)", median_us(lambda: ext.fresh(x), 400))]
    print(f"-- round {rep}" + (" (GPU idle before each call)" if idle else ""))
    for name, us in rows:
        print(f"  {name:<48} {us:7.2f} us")
    for name, ns in zip(["lock + key", "CUDAGuard", "lookup (key ==, unheld)", "launch", "handed_out"], t):
        print(f"  (mean) {name:<41} {ns / 1e3:7.2f} us")
