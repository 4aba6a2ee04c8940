"""level3/015's host time per forward (a host-bound LSTM: cuDNN launches ~270 kernels a forward):
eager, the generated ModelNew, and the same file with the GIL released during the generated
forward (as torch's own bindings do for every op), each twice in one process, in turn.
    python3 bench/session18/lstm_host.py   (after abx/base and abx/gil are generated; see lstm_gil.sh)"""
import sys
import threading
sys.path.insert(0, "src")
import torch
from fuseforge.bench import host_time, time_cuda
from fuseforge.build import load_generated
from fuseforge.problem import load_problem

pr = load_problem("suite/level3/015_lstm_classifier.py")
ref = pr.build(0).cuda()
xs = [x.cuda() for x in pr.inputs(0)]
mods = {"eager": ref}
for tag in ("base", "gil"):
    m = load_generated(f"abx/{tag}/level3_015_lstm_classifier.py", f"{tag}_level3_015_lstm_classifier").module
    mods[tag] = m.ModelNew(*pr.init_args()).cuda()
print("threads:", [t.name for t in threading.enumerate()])
for rnd in range(2):
    for name, f in mods.items():
        print(rnd, name, "host ms", round(host_time(f, xs, calls=50), 3), "gpu ms (events)",
              round(time_cuda(f, xs, trials=30).median_ms, 3), flush=True)
