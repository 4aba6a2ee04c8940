"""Time every suite problem at full size on a GPU (eager), peak memory, largest tensor."""
import importlib.util, json, os, sys, time, traceback
from pathlib import Path
import torch

root = Path(__file__).resolve().parents[1] / "suite"
files = sorted(p for p in root.rglob("*.py") if not p.name.startswith("_"))
if len(sys.argv) > 1:
    files = [f for f in files if any(a in str(f) for a in sys.argv[1:])]
results = []
for p in files:
    rec = {"name": f"{p.parent.name}/{p.stem}"}
    try:
        spec = importlib.util.spec_from_file_location(p.stem, p); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = m.Model(*m.get_init_inputs())
            xs = m.get_inputs()
        xs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in xs]
        model = model.cuda()
        with torch.no_grad():
            out = model(*xs)
            torch.cuda.synchronize()
            times = []
            for _ in range(7):
                a = torch.cuda.Event(enable_timing=True); b = torch.cuda.Event(enable_timing=True)
                a.record(); out = model(*xs); b.record(); torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
        outs = out if isinstance(out, (tuple, list)) else [out]
        sizes = [x.numel() * x.element_size() for x in xs if isinstance(x, torch.Tensor)] + \
                [o.numel() * o.element_size() for o in outs] + [q.numel() * 4 for q in model.parameters()]
        rec.update(ms=sorted(times)[3], peak_gb=torch.cuda.max_memory_allocated() / 1e9, max_tensor_mb=max(sizes) / 1e6)
        del model, xs, out, outs
    except Exception as e:
        rec["error"] = f"{type(e).__name__}: {e}"[:300]
    print(json.dumps(rec), flush=True)
    results.append(rec)
out = os.environ.get("OUT", ".")
Path(out, "fullsize.json").write_text(json.dumps(results, indent=1))
