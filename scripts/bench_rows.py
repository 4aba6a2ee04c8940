"""Benchmark generated row and window kernels (reductions, norms, pooling, and chains with a
library call before them) against eager and torch.compile on a GPU, at benchmark sizes.

Every case is compiled with fuseforge.compile, checked against eager on the same inputs,
then timed side by side (CUDA events, L2 flushed, median of 30). For standalone row ops the
table gives the achieved bandwidth (distinct input bytes + output bytes over the time) as a
share of a device-to-device copy measured in the same run. Writes rows.json and rows.md into
--out and prints the table last.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuseforge.bench import copy_bandwidth, environment, time_cuda  # noqa: E402
from fuseforge.build import load_generated, prepare_environment  # noqa: E402
from fuseforge.capture import capture  # noqa: E402
from fuseforge.emit import generate  # noqa: E402
from fuseforge.plan import plan  # noqa: E402


class Fn(nn.Module):
    def __init__(self, fn, **modules):
        super().__init__()
        self.fn = fn
        for k, m in modules.items():
            if isinstance(m, torch.Tensor):
                self.register_parameter(k, nn.Parameter(m))
            else:
                self.add_module(k, m)

    def forward(self, *xs):
        return self.fn(self, *xs)


def r(*shape):
    return torch.randn(*shape)


# name -> (module, inputs, standalone: the bandwidth figure applies)
def cases():
    return {
        "softmax_last_4096x8192": (Fn(lambda m, x: torch.softmax(x, -1)), [r(4096, 8192)], True),
        "softmax_dim1_64x512x1024": (Fn(lambda m, x: torch.softmax(x, 1)), [r(64, 512, 1024)], True),
        "log_softmax_16384x4096": (Fn(lambda m, x: F.log_softmax(x, -1)), [r(16384, 4096)], True),
        "layer_norm_8192x4096": (Fn(lambda m, x: m.ln(x), ln=nn.LayerNorm(4096)), [r(8192, 4096)], True),
        "rms_norm_8192x4096": (Fn(lambda m, x: F.rms_norm(x, (4096,))), [r(8192, 4096)], True),
        "sum_last_8192x8192": (Fn(lambda m, x: x.sum(-1)), [r(8192, 8192)], True),
        "mean_dim1_128x256x4096": (Fn(lambda m, x: x.mean(1)), [r(128, 256, 4096)], True),
        "amax_dim0_8192x8192": (Fn(lambda m, x: x.amax(0)), [r(8192, 8192)], True),
        "argmax_last_8192x8192": (Fn(lambda m, x: x.argmax(-1)), [r(8192, 8192)], True),
        "var_last_8192x8192": (Fn(lambda m, x: x.var(-1)), [r(8192, 8192)], True),
        "logsumexp_last_8192x8192": (Fn(lambda m, x: torch.logsumexp(x, -1)), [r(8192, 8192)], True),
        "group_norm_64x256x64x64": (Fn(lambda m, x: m.gn(x), gn=nn.GroupNorm(32, 256)), [r(64, 256, 64, 64)], True),
        "instance_norm_64x128x64x64": (Fn(lambda m, x: m.inn(x), inn=nn.InstanceNorm2d(128)), [r(64, 128, 64, 64)], True),
        "batch_norm_train_64x128x64x64": (Fn(lambda m, x: m.bn(x), bn=nn.BatchNorm2d(128)), [r(64, 128, 64, 64)], True),
        "conv_gelu_groupnorm": (Fn(lambda m, x: m.gn(F.gelu(m.conv(x))), conv=nn.Conv2d(64, 128, 3),
                                   gn=nn.GroupNorm(8, 128)), [r(128, 64, 64, 64)], False),
        "conv_min_softmax": (Fn(lambda m, x: torch.softmax(torch.min(m.conv(x), torch.tensor(0.5)), 1),
                                conv=nn.Conv2d(64, 128, 3)), [r(128, 64, 64, 64)], False),
        "linear_sum_max_lse_relu": (Fn(lambda m, x: torch.relu(torch.logsumexp(
            m.fc(x).sum(1, keepdim=True).amax(1, keepdim=True), 1, keepdim=True)), fc=nn.Linear(8192, 8192)),
            [r(1024, 8192)], False),
        "conv_bn_eval_relu": (Fn(lambda m, x: torch.relu(m.bn(m.conv(x))), conv=nn.Conv2d(64, 128, 3),
                                 bn=nn.BatchNorm2d(128)).eval(), [r(128, 64, 64, 64)], False),
        "conv_bn_train_relu": (Fn(lambda m, x: torch.relu(m.bn(m.conv(x))), conv=nn.Conv2d(64, 128, 3),
                                  bn=nn.BatchNorm2d(128)), [r(128, 64, 64, 64)], False),
        "max_pool2d_2x2_64x64x128x128": (Fn(lambda m, x: F.max_pool2d(x, 2)), [r(64, 64, 128, 128)], True),
        "max_pool2d_3x3s2p1_64x64x128x128": (Fn(lambda m, x: F.max_pool2d(x, 3, 2, 1)), [r(64, 64, 128, 128)], True),
        "avg_pool3d_2_16x32x32x64x64": (Fn(lambda m, x: F.avg_pool3d(x, 2)), [r(16, 32, 32, 64, 64)], True),
        "adaptive_avg_pool2d_7x7_64x256x56x56": (Fn(lambda m, x: F.adaptive_avg_pool2d(x, 7)),
                                                 [r(64, 256, 56, 56)], True),
        "conv_relu_maxpool": (Fn(lambda m, x: F.max_pool2d(torch.relu(m.conv(x)), 2), conv=nn.Conv2d(64, 128, 3)),
                              [r(128, 64, 64, 64)], False),
        "conv_tanh_scale_bias_maxpool": (Fn(lambda m, x: F.max_pool2d(torch.tanh(m.conv(x)) * 2.0 + m.b, 2),
                                            conv=nn.Conv2d(64, 128, 3), b=r(128, 1, 1)), [r(128, 64, 64, 64)], False),
        "cumsum_last_4096x8192": (Fn(lambda m, x: torch.cumsum(x, -1)), [r(4096, 8192)], True),
        "cumsum_dim0_8192x4096": (Fn(lambda m, x: torch.cumsum(x, 0)), [r(8192, 4096)], True),
        "reverse_cumsum_4096x8192": (Fn(lambda m, x: torch.cumsum(x.flip(1), 1).flip(1)), [r(4096, 8192)], True),
        "cross_entropy_32768x1000": (Fn(lambda m, x, t: F.cross_entropy(x, t)),
                                     [r(32768, 1000), torch.randint(0, 1000, (32768,))], True),
        "triplet_margin_4096x16384": (Fn(lambda m, a, p, n: F.triplet_margin_loss(a, p, n)),
                                      [r(4096, 16384), r(4096, 16384), r(4096, 16384)], True),
    }


def build_all(gen: dict, tmp: Path) -> dict:
    """Write each generated module into tmp and build them all, 8 at a time: name -> loaded."""
    paths = {}
    for name, g in gen.items():
        paths[name] = tmp / f"{g.ext_name}.py"
        paths[name].write_text(g.text)
    t0 = time.time()
    with ThreadPoolExecutor(8) as pool:
        loaded = dict(zip(gen, pool.map(lambda n: load_generated(paths[n], gen[n].ext_name), gen)))
    print(f"built {len(gen)} extensions in {time.time() - t0:.0f} s", flush=True)
    return loaded


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prepare_environment()
    torch.manual_seed(0)
    todo = {k: v for k, v in cases().items() if not args.only or k in args.only}
    gen = {}
    tmp = Path(tempfile.mkdtemp())
    for name, (model, inputs, standalone) in list(todo.items()):
        g = generate(plan(capture(model, inputs)), name=name)
        gen[name] = g
        if any(e.channels_last for e in g.plan.externs):
            # the same case with every convolution NCHW, measured side by side (layout.py)
            os.environ["FUSEFORGE_CHANNELS_LAST"] = "0"
            todo[name + "[nchw]"] = (model, inputs, standalone)
            gen[name + "[nchw]"] = generate(plan(capture(model, inputs)), name=name + "_nchw")
            del os.environ["FUSEFORGE_CHANNELS_LAST"]
    loaded = build_all(gen, tmp)
    bw = copy_bandwidth()
    results = []
    for name, (model, inputs, standalone) in todo.items():
        g = gen[name]
        model = model.cuda()
        xs = [x.cuda() for x in inputs]
        new = loaded[name].module.Compiled(model)
        with torch.no_grad():
            ref, got = model(*xs), new(*xs)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = got if isinstance(got, tuple) else (got,)
        err = max(float((a.double() - b.double()).abs().max()) for a, b in zip(got, ref))
        ok = all(torch.allclose(a.double(), b.double(), rtol=1e-2, atol=1e-2) for a, b in zip(got, ref))
        compiled = torch.compile(model)
        t = {"eager": time_cuda(model, xs, trials=30).median_ms,
             "torch.compile": time_cuda(compiled, xs, trials=30, warmup=10).median_ms,
             "fuseforge": time_cuda(new, xs, trials=30).median_ms}
        nbytes = sum(x.numel() * x.element_size() for x in xs) + sum(o.numel() * o.element_size() for o in ref)
        rec = {"case": name, "ok": ok, "max_abs_error": err, "ms": t,
               "kernels": [k.name for k in g.plan.kernels], "externs": [e.node.target for e in g.plan.externs],
               "vs_eager": t["eager"] / t["fuseforge"], "vs_compile": t["torch.compile"] / t["fuseforge"]}
        if standalone:
            rec["bytes"] = nbytes
            rec["fraction_of_copy_bw"] = nbytes / (t["fuseforge"] * 1e-3) / bw
        results.append(rec)
        print(json.dumps(rec), flush=True)
        torch._dynamo.reset()
        del model, new, compiled, xs, ref, got
        torch.cuda.empty_cache()
    env = environment()
    (out / "rows.json").write_text(json.dumps({"env": env, "copy_bandwidth_GBps": bw / 1e9,
                                               "command": "PYTHONPATH=src python3 scripts/bench_rows.py",
                                               "results": results}, indent=2))
    lines = [f"# Row and window kernels on {env.get('gpu')} (torch {env['torch']}, CUDA {env['cuda']}, driver "
             f"{env.get('driver')})", "", f"Copy bandwidth measured in the same run: {bw / 1e9:.0f} GB/s. "
             "Median of 30 calls, L2 flushed, CUDA events.", "",
             "| case | ok | eager ms | compile ms | fuseforge ms | × eager | × compile | % copy BW | kernels |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rec in results:
        t = rec["ms"]
        frac = f"{100 * rec['fraction_of_copy_bw']:.0f}" if "fraction_of_copy_bw" in rec else "–"
        lines.append(f"| {rec['case']} | {'✓' if rec['ok'] else '✗'} | {t['eager']:.3f} | {t['torch.compile']:.3f} | "
                     f"{t['fuseforge']:.3f} | {rec['vs_eager']:.2f} | {rec['vs_compile']:.2f} | {frac} | "
                     f"{len(rec['kernels'])} (+{len(rec['externs'])} extern) |")
    (out / "rows.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
