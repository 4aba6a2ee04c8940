"""Measure, for every 2D/3D convolution in the suite's problems at full size, what layout and
cuDNN algorithm choice would buy (issue 6): the convolution alone, timed in NCHW as eager
runs it and in channels-last (weights converted beforehand, as a module would do once), each
with cudnn.benchmark off (eager's default) and on, plus the cost of converting the input.

    PYTHONPATH=src python3 scripts/conv_layouts.py [--out DIR] [PATHS...]

Writes conv_layouts.json and conv_layouts.md into --out and prints the table last.
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuseforge.bench import environment, time_cuda  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402
from fuseforge.sweep import discover  # noqa: E402

CONVS = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def conv_calls(model, inputs):
    """(module, input) for the first call of every 2D/3D convolution module in one forward."""
    seen = []

    def hook(mod, args):
        if not any(m is mod for m, _ in seen):
            seen.append((mod, args[0].detach()))
    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, CONVS)]
    with torch.no_grad():
        model(*inputs)
    for h in handles:
        h.remove()
    return seen


def measure(mod, x) -> dict:
    fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    cl = copy.deepcopy(mod).to(memory_format=fmt)
    x_cl = x.contiguous(memory_format=fmt)
    out = {}
    with torch.no_grad():
        ref = mod(x)
        err = float((cl(x_cl) - ref).abs().max())
        for bench in (False, True):
            torch.backends.cudnn.benchmark = bench
            tag = "_benchmark" if bench else ""
            out["nchw" + tag] = time_cuda(mod, [x], trials=30, warmup=5).median_ms
            out["channels_last" + tag] = time_cuda(cl, [x_cl], trials=30, warmup=5).median_ms
        torch.backends.cudnn.benchmark = False
        out["convert_input"] = time_cuda(lambda t: t.contiguous(memory_format=fmt), [x], trials=30).median_ms
        out["convert_output"] = time_cuda(lambda t: t.contiguous(), [cl(x_cl)], trials=30).median_ms
    out["max_abs_diff_channels_last"] = err
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "suite")])
    ap.add_argument("--out", default=str(ROOT / "bench"))
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for path in discover(args.paths):
        if "conv" not in path.stem and path.parent.name != "level3":
            continue
        try:
            prob = load_problem(path)
            torch.manual_seed(0)
            model = prob.model_cls(*prob.get_init_inputs()).cuda().eval()
            inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in prob.get_inputs()]
            calls = conv_calls(model, inputs)
        except Exception as e:  # a problem that does not run is reported, the sweep goes on
            results.append({"problem": f"{path.parent.name}/{path.stem}", "error": f"{type(e).__name__}: {e}"[:300]})
            continue
        for k, (mod, x) in enumerate(calls):
            rec = {"problem": f"{path.parent.name}/{path.stem}", "conv": k, "module": repr(mod),
                   "input": list(x.shape)}
            try:
                rec.update(measure(mod, x))
            except Exception as e:
                rec["error"] = f"{type(e).__name__}: {e}"[:300]
            results.append(rec)
            print(json.dumps(rec), flush=True)
        del model, inputs, calls
        torch.cuda.empty_cache()
    env = environment()
    (out_dir / "conv_layouts.json").write_text(json.dumps(
        {"env": env, "command": "PYTHONPATH=src python3 scripts/conv_layouts.py", "results": results}, indent=1))
    lines = [f"# Convolution layouts on {env.get('gpu')} (torch {env['torch']}, CUDA {env['cuda']})", "",
             "The convolution alone, median of 30 calls, L2 flushed. ms; `bm` = cudnn.benchmark on. "
             "`in→cl` converts the input to channels-last, `cl→out` the output back.", "",
             "| problem | conv | input | NCHW | NCHW bm | CL | CL bm | in→cl | cl→out | best/NCHW |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['problem']} | {r.get('conv', '')} | error: {r['error'][:80]} |||||||")
            continue
        best = min(r["nchw_benchmark"], r["channels_last"], r["channels_last_benchmark"])
        lines.append(f"| {r['problem']} | {r['conv']} | {r['input']} | {r['nchw']:.3f} | {r['nchw_benchmark']:.3f} | "
                     f"{r['channels_last']:.3f} | {r['channels_last_benchmark']:.3f} | {r['convert_input']:.3f} | "
                     f"{r['convert_output']:.3f} | {best / r['nchw']:.2f} |")
    (out_dir / "conv_layouts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
