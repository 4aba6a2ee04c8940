"""Where the time goes: the GPU kernels of eager, torch.compile and fuseforge, per problem.

For each problem file: build the reference, torch.compile (default mode) and fuseforge's ModelNew
(optimized into a temporary folder), run each 20 times under torch.profiler after a warm-up,
and print every kernel's mean device time per forward call, the sum, and the plan's decisions.
With --host, also each version's host time per call (bench.host_time) and where it goes: the
host-side events (ATen ops, CUDA runtime calls) by their mean self time per call. Use it to
find which kernel makes one version slower than another; the speed itself comes from
`fuseforge bench`. Writes profile.json into --out when given. With --generated DIR (repeated),
the files generate_sources.py wrote into each DIR are profiled instead of a fresh optimize (two
generations' kernels side by side); --no-compile leaves torch.compile out.

    python3 scripts/profile_kernels.py suite/level2/003_conv2d_min_softmax.py [...] [--out DIR] [--host]
    python3 scripts/profile_kernels.py PROBLEM... --generated abx/old --generated abx/new --no-compile
"""
import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuseforge.build import generated_model  # noqa: E402
from fuseforge.pipeline import optimize  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402

ITERS = 20


def kernels(fn, args) -> dict[str, float]:
    """Mean device ms per call of each kernel name (summed over its launches in one call)."""
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad():
        for _ in range(3):
            fn(*args)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(ITERS):
                fn(*args)
            torch.cuda.synchronize()
    per = collections.defaultdict(float)
    for e in prof.events():
        t = getattr(e, "device_time", None) or getattr(e, "cuda_time", 0)
        if e.device_type == torch.autograd.DeviceType.CUDA and t:
            per[e.name] += t / 1e3 / ITERS
    return dict(sorted(per.items(), key=lambda kv: -kv[1]))


def host_events(fn, args) -> dict[str, float]:
    """The host time of a call (ms, bench.host_time), then the mean self time per call of each
    host-side event the profiler records (ms; the forward's own C++ code is the remainder)."""
    from torch.profiler import ProfilerActivity, profile

    from fuseforge.bench import host_time
    out = {"(host time of a call)": host_time(fn, args), "(host time, GPU idle)": host_time(fn, args, idle=True)}
    with torch.no_grad():
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(ITERS):
                fn(*args)
        torch.cuda.synchronize()
    per = collections.defaultdict(float)
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CPU:
            per[e.name] += e.self_cpu_time_total / 1e3 / ITERS
    top = sorted(per.items(), key=lambda kv: -kv[1])[:12]
    return out | dict(top)


def profile_generated(path: str, folders: list[str], compiled: bool) -> dict:
    """The kernels of eager (and torch.compile) and of each folder's generated file for one problem."""
    problem = load_problem(path)
    inputs = problem.inputs(1, "cuda")
    ref = problem.build(0).cuda()
    versions = {"eager": kernels(ref, inputs)}
    if compiled:
        versions["compile"] = kernels(torch.compile(ref), inputs)
    p = Path(path)
    for folder in folders:
        model, _ = generated_model(Path(folder) / f"{p.parent.name}_{p.stem}.py", problem)
        versions[folder] = kernels(model, inputs)
    return {"problem": path, "versions": versions, "decisions": []}


def profile_problem(path: str, tmp: Path, host: bool = False, compiled: bool = True) -> dict:
    problem = load_problem(path)
    report = optimize(path, tmp / f"{problem.name}_new.py", device="cuda", trials=1, bench=False)
    inputs = problem.inputs(1, "cuda")
    ref = problem.build(0).cuda()
    torch.manual_seed(0)
    new = report.loaded.module.ModelNew(*problem.init_args()).cuda()
    versions = {"eager": kernels(ref, inputs)}
    if compiled:
        versions["compile"] = kernels(torch.compile(ref), inputs)
    versions["fuseforge"] = kernels(new, inputs)
    decisions = list(report.plan.decisions)
    if host:
        versions |= {"eager host": host_events(ref, inputs), "fuseforge host": host_events(new, inputs)}
        captures, replays = sys.modules[type(new).__module__]._ext.replays()
        decisions.append(f"(this run: {captures} CUDA graphs captured, {replays} replays)")
    return {"problem": path, "versions": versions, "decisions": decisions}


def show(result: dict) -> None:
    print(f"\n== {result['problem']}")
    for d in result["decisions"]:
        print(f"   plan: {d}")
    for version, ks in result["versions"].items():
        print(f"  {version}: {sum(ks.values()):.3f} ms in {'host events' if 'host' in version else 'kernels'}")
        for name, ms in ks.items():
            print(f"    {ms:8.3f}  {name[:150]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("problems", nargs="+")
    ap.add_argument("--out")
    ap.add_argument("--host", action="store_true", help="also the host time of a call and where it goes")
    ap.add_argument("--generated", action="append", default=[], metavar="DIR",
                    help="profile DIR's generated file of each problem instead of optimizing (repeatable)")
    ap.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.problems:
            try:
                results.append(profile_generated(path, args.generated, not args.no_compile) if args.generated
                               else profile_problem(path, Path(tmp), args.host, not args.no_compile))
            except Exception as e:  # one problem's failure must not hide the others' profiles
                results.append({"problem": path, "error": f"{type(e).__name__}: {e}"})
                print(f"\n== {path}: {results[-1]['error']}")
                continue
            show(results[-1])
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "profile.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
