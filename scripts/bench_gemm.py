"""Benchmark the generated 3xTF32 GEMM against cuBLAS on a GPU.

- accuracy: max error against float64 (relative to the largest exact value) for K from 64 to
  16384, ours vs cuBLAS float32 (eager's default) vs cuBLAS TF32 (what plain TF32 would give);
- speed: square and suite-like products (with epilogues) through fuseforge.compile with
  FUSEFORGE_GEMM=all (the generated GEMM even where the planner would keep cuBLAS), side by
  side with eager (cuBLAS float32), torch.compile (default) and cuBLAS TF32 for reference:
  median of 30 calls, L2 flushed, CUDA events; TFLOP/s of each;
- SASS evidence: the tensor-core instructions in the built extension (cuobjdump).
Writes gemm.json and gemm.md into --out and prints the table last. With --tf32 (the opt-in mode:
one TF32 product) the same into gemm_tf32.json and gemm_tf32.md, each case's error checked
against cuBLAS TF32's (2x at most) instead of float32's.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuseforge.bench import environment, time_cuda  # noqa: E402
from fuseforge.build import build_dir, prepare_environment  # noqa: E402
from fuseforge.capture import capture  # noqa: E402
from fuseforge.emit import generate  # noqa: E402
from fuseforge.plan import plan  # noqa: E402
from fuseforge.plan_gemm import GemmKernel  # noqa: E402

from bench_rows import Fn, build_all, r  # noqa: E402  (the benchmarks' module wrapper and random inputs)


class Depths(nn.Module):
    def forward(self, *ab):
        return tuple(a @ b for a, b in zip(ab[0::2], ab[1::2]))


DEPTHS = [64, 256, 1024, 4096, 16384]


def cases():
    """name -> (module, inputs, FLOPs)."""
    return {
        "matmul_4096": (Fn(lambda m, a, b: a @ b), [r(4096, 4096), r(4096, 4096)], 2 * 4096 ** 3),
        "matmul_8192": (Fn(lambda m, a, b: a @ b), [r(8192, 8192), r(8192, 8192)], 2 * 8192 ** 3),
        "matmul_irregular_4101x2949x5921": (Fn(lambda m, a, b: a @ b), [r(4101, 2949), r(2949, 5921)],
                                            2 * 4101 * 2949 * 5921),
        "matmul_transposed_b_2048x4096x4096": (Fn(lambda m, a, b: a @ b.T), [r(2048, 4096), r(4096, 4096)],
                                               2 * 2048 * 4096 * 4096),
        "bmm_128x512x1024x512": (Fn(lambda m, a, b: torch.bmm(a, b)), [r(128, 512, 1024), r(128, 1024, 512)],
                                 2 * 128 * 512 * 1024 * 512),
        "linear_relu_bias_2048x4096x4096": (Fn(lambda m, x: torch.relu(m.fc(x)) + 0.5, fc=nn.Linear(4096, 4096)),
                                            [r(2048, 4096)], 2 * 2048 * 4096 * 4096),
        "linear_gelu_3d_64x256x2048x2048": (Fn(lambda m, x: nn.functional.gelu(m.fc(x)), fc=nn.Linear(2048, 2048)),
                                            [r(64, 256, 2048)], 2 * 64 * 256 * 2048 * 2048),
        # split-K: 64 large tiles (level3/002's classifier: k split 2 ways), and 4 (level1/005's shape:
        # 32 ways; the packing of 537 MB of operands costs more than cuBLAS's product, so the planner's
        # auto mode leaves it to cuBLAS: shown here under FUSEFORGE_GEMM=all)
        "linear_split_k_1024x8192x1000": (Fn(lambda m, x: m.fc(x), fc=nn.Linear(8192, 1000)), [r(1024, 8192)],
                                          2 * 1024 * 8192 * 1000),
        "matmul_split_k_256x262144x256": (Fn(lambda m, a, b: a @ b), [r(256, 262144), r(262144, 256)],
                                          2 * 256 * 262144 * 256),
    }


SIDE = 1536   # 144 output tiles of 128 x 128: the large-tile kernel (wgmma on an H100)


def depth_inputs(g: torch.Generator, uniform: bool) -> list[torch.Tensor]:
    draw = torch.rand if uniform else torch.randn
    xs = []
    for k in DEPTHS:
        xs += [draw(SIDE, k, generator=g), draw(k, SIDE, generator=g)]
    return xs


OURS = "fuseforge_3xtf32"   # (main: "fuseforge_tf32" with --tf32)


def accuracy(loaded_depths) -> list[dict]:
    """Max error against float64 for each K, on normal inputs and on uniform [0, 1) ones (terms
    of one sign: the representation error of the split operands is not averaged away)."""
    rows = []
    for dist in ("normal", "uniform"):
        xs = [x.cuda() for x in depth_inputs(torch.Generator().manual_seed(1), dist == "uniform")]
        exact = Depths()(*[x.double() for x in xs])
        ours = loaded_depths.module.Compiled(Depths())(*xs)
        cublas = Depths()(*xs)
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = Depths()(*xs)
        torch.backends.cuda.matmul.allow_tf32 = False
        for k, e, a, b, c in zip(DEPTHS, exact, ours, cublas, tf32):
            scale = float(e.abs().max())
            err = {name: float((t.double() - e).abs().max()) / scale for name, t in
                   ((OURS, a), ("cublas_fp32", b), ("cublas_tf32", c))}
            rows.append({"inputs": dist, "k": k, **err, "ratio_to_cublas_fp32": err[OURS] / err["cublas_fp32"],
                         "ratio_to_cublas_tf32": err[OURS] / err["cublas_tf32"]})
            print(json.dumps(rows[-1]), flush=True)
        del xs, exact, ours, cublas, tf32
    return rows


def sass(ext_name: str) -> dict:
    """Tensor-core instructions in the built library (cuobjdump -sass)."""
    tool = shutil.which("cuobjdump") or "/usr/local/cuda/bin/cuobjdump"
    so = next(build_dir(ext_name).glob("*.so"), None)
    if so is None or not Path(tool).exists():
        return {"error": "cuobjdump or the library not found"}
    out = subprocess.run([tool, "-sass", str(so)], capture_output=True, text=True).stdout
    lines = [ln.strip() for ln in out.splitlines() if "HMMA" in ln or "HGMMA" in ln]
    kinds = sorted({ln.split("*/", 1)[1].split()[0] for ln in lines if "*/" in ln})   # "/*addr*/ HMMA.1688... ;"
    return {"hmma_instructions": sum("HMMA" in ln for ln in lines),
            "hgmma_instructions": sum("HGMMA" in ln for ln in lines), "kinds": kinds,
            "example": [ln for ln in lines if "HGMMA" in ln][:2] + [ln for ln in lines if "HMMA" in ln][:1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--tf32", action="store_true", help="the opt-in mode: one TF32 product (FUSEFORGE_TF32=1)")
    args = ap.parse_args()
    if args.tf32:
        os.environ["FUSEFORGE_TF32"] = "1"
    global OURS
    OURS = "fuseforge_tf32" if args.tf32 else "fuseforge_3xtf32"
    stem = "gemm_tf32" if args.tf32 else "gemm"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prepare_environment()
    os.environ["FUSEFORGE_GEMM"] = "all"   # the kernel itself, also where the planner prefers cuBLAS
    torch.manual_seed(0)
    todo = {k: v for k, v in cases().items() if not args.only or k in args.only}
    tmp = Path(tempfile.mkdtemp())
    gen = {"depths": generate(plan(capture(Depths(), depth_inputs(torch.Generator().manual_seed(0), False))),
                              name="gemm_depths")}
    for name, (model, inputs, _) in todo.items():
        gen[name] = generate(plan(capture(model, inputs)), name=name)
    loaded = build_all(gen, tmp)

    acc = accuracy(loaded["depths"])
    results = []
    for name, (model, inputs, flops) in todo.items():
        g = gen[name]
        model = model.cuda()
        xs = [x.cuda() for x in inputs]
        new = loaded[name].module.Compiled(model)
        with torch.no_grad():
            ref, got = model(*xs), new(*xs)
            exact = model.double()(*[x.double() for x in xs])
            model.float()
        err_ours = float((got.double() - exact).abs().max())
        err_eager = float((ref.double() - exact).abs().max())
        if args.tf32:   # the bar of the looser mode: torch's own TF32 matmul
            torch.backends.cuda.matmul.allow_tf32 = True
            with torch.no_grad():
                err_eager = float((model(*xs).double() - exact).abs().max())
            torch.backends.cuda.matmul.allow_tf32 = False
        compiled = torch.compile(model)
        t = {"eager": time_cuda(model, xs, trials=30).median_ms,
             "torch.compile": time_cuda(compiled, xs, trials=30, warmup=10).median_ms,
             "fuseforge": time_cuda(new, xs, trials=30).median_ms}
        torch.backends.cuda.matmul.allow_tf32 = True
        t["cublas_tf32 (reference, looser)"] = time_cuda(model, xs, trials=30).median_ms
        torch.backends.cuda.matmul.allow_tf32 = False
        rec = {"case": name, "ok": err_ours <= 2 * err_eager + 1e-6, "err_vs_fp64": err_ours,
               "eager_err_vs_fp64": err_eager, "ms": t,
               "tflops": {k: flops / (v * 1e-3) / 1e12 for k, v in t.items()},
               "kernels": [k.name for k in g.plan.kernels],
               "gemm_kernels": [k.name for k in g.plan.kernels if isinstance(k, GemmKernel)],
               "externs": [e.node.target for e in g.plan.externs],
               "vs_eager": t["eager"] / t["fuseforge"], "vs_compile": t["torch.compile"] / t["fuseforge"]}
        results.append(rec)
        print(json.dumps(rec), flush=True)
        torch._dynamo.reset()
        del model, new, compiled, xs, ref, got, exact
        torch.cuda.empty_cache()
    evidence = sass(gen[next(iter(todo))].ext_name) if todo else {}
    env = environment()
    command = "PYTHONPATH=src python3 scripts/bench_gemm.py" + (" --tf32" if args.tf32 else "")
    (out / f"{stem}.json").write_text(json.dumps({"env": env, "command": command,
                                               "accuracy": acc, "results": results, "sass": evidence}, indent=2))
    what = "GEMM in the opt-in --tf32 mode (one TF32 product)" if args.tf32 else "3xTF32 GEMM"
    lines = [f"# Generated {what} on {env.get('gpu')} (torch {env['torch']}, CUDA {env['cuda']}, driver "
             f"{env.get('driver')})", "",
             f"Accuracy: max |C - C_float64| / max |C_float64|, {SIDE} x K @ K x {SIDE}, normal and uniform [0, 1) "
             "inputs.", "",
             f"| inputs | K | {OURS} | cuBLAS float32 | cuBLAS TF32 | ours / cuBLAS float32 | ours / cuBLAS TF32 |",
             "|---|---|---|---|---|---|---|"]
    for a in acc:
        lines.append(f"| {a['inputs']} | {a['k']} | {a[OURS]:.2e} | {a['cublas_fp32']:.2e} | {a['cublas_tf32']:.2e} | "
                     f"{a['ratio_to_cublas_fp32']:.2f} | {a['ratio_to_cublas_tf32']:.2f} |")
    lines += ["", "Speed: median of 30 calls, L2 flushed, CUDA events; TFLOP/s in brackets. cuBLAS TF32 is looser "
              "than float32 and shown only as the tensor-core reference.", "",
              "| case | ok | eager (cuBLAS fp32) ms | torch.compile ms | fuseforge ms | cuBLAS TF32 ms | × eager | "
              "× compile |", "|---|---|---|---|---|---|---|---|"]
    for rec in results:
        t, f = rec["ms"], rec["tflops"]
        lines.append(f"| {rec['case']} | {'✓' if rec['ok'] else '✗'} | {t['eager']:.3f} ({f['eager']:.0f}) | "
                     f"{t['torch.compile']:.3f} ({f['torch.compile']:.0f}) | {t['fuseforge']:.3f} "
                     f"({f['fuseforge']:.0f}) | {t['cublas_tf32 (reference, looser)']:.3f} "
                     f"({f['cublas_tf32 (reference, looser)']:.0f}) | {rec['vs_eager']:.2f} | {rec['vs_compile']:.2f} |")
    if evidence:
        lines += ["", f"SASS ({next(iter(todo))}): {evidence}"]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
