"""level2/095 (x / 0.7 -> log_softmax -> nll_loss over 16384 rows of 4096): where does the generated
kernel's time go? Its ModelNew, generated, then edited by text substitution and timed alone.

    python3 bench/session10/nll/variants.py

  gen      as generated: three passes over the row held in registers (max, sum of exponentials,
           then a sum that picks the target's log-probability), x / 0.7 computed in each pass
  pick     the third pass replaced by the log-probability of the target alone (one load)
  mul      x / 0.7 as x * (1 / 0.7) (not eager's rounding: the cost of the division)
  pick+mul both
Each is checked against the reference model on the same inputs and timed with CUDA events (L2
flushed before each call, median of 50), eager and torch.compile in the same process.
"""
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
out = Path(tempfile.mkdtemp())
subprocess.run([sys.executable, str(ROOT / "scripts/generate_sources.py"), str(out),
                str(ROOT / "suite/level2/095_temperature_log_softmax_nll.py")], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
text = (out / "level2_095_temperature_log_softmax_nll.py").read_text()

third = re.compile(r"  ff_acc_sum<float> nll_loss_nd_nll_loss_nd_s0 = ff_acc_sum<float>::init\(\);\n.*?"
                   r"  nll_loss_nd_nll_loss_nd_s0 = team.reduce\(nll_loss_nd_nll_loss_nd_s0\);\n", re.S)
assert len(third.findall(text)) == 1
pick = """  ff_acc_sum<float> nll_loss_nd_nll_loss_nd_s0 = ff_acc_sum<float>::init();
  if (in1 >= 0 && in1 < 4096) {
    const float in0 = a.in0[o_in0 + static_cast<uint32_t>(in1)];
    const float div = in0 / 0.7f;
    nll_loss_nd_nll_loss_nd_s0.v = static_cast<float>(div - log_softmax_s0.v - ff_log(log_softmax_s1.v));
  }
"""
variants = {"gen": text, "pick": third.sub(lambda m: pick, text)}
variants["mul"] = variants["gen"].replace("in0 / 0.7f", "in0 * 1.4285714285714286f")
variants["pick+mul"] = variants["pick"].replace("in0 / 0.7f", "in0 * 1.4285714285714286f")

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


def load(name, source):
    path = out / f"v_{name.replace('+', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


spec = importlib.util.spec_from_file_location("problem", ROOT / "suite/level2/095_temperature_log_softmax_nll.py")
ref_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref_mod)
torch.manual_seed(0)
inputs = [t.cuda() for t in ref_mod.get_inputs()]
model = ref_mod.Model(*ref_mod.get_init_inputs()).cuda()
with torch.no_grad():
    ref = model(*inputs)
    print(f"eager          {median_ms(lambda: model(*inputs)):.4f} ms")
    compiled = torch.compile(model)
    compiled(*inputs)
    print(f"torch.compile  {median_ms(lambda: compiled(*inputs)):.4f} ms")
    for name, source in variants.items():
        mod = load(name, source)
        m = mod.ModelNew(*ref_mod.get_init_inputs()).cuda()
        got = m(*inputs)
        err = (got - ref).abs().item()
        print(f"{name:14s} {median_ms(lambda: m(*inputs)):.4f} ms  |diff| {err:.2e}", flush=True)
