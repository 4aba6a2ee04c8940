"""The outer schedule's split rows merged by each row tile's last block: where does the time go?
level2/001 (batch-norm statistics, 64 rows in 528 splits: a warp per row merges) and level2/005
(instance-norm statistics, 4096 rows in 9 splits: the row tile's team merges), each as generated
before (partials, merge, results: 3 launches) and after (1 launch), then edited by text substitution:

  cap        __launch_bounds__(256, 8): the registers of the partials alone (32; with the merge
             and the results inlined the kernel took 56, 4 blocks an SM instead of 8)
  cap4       cap, and the merge's loads 4 at a time (8: fewer spills)
  cap_static cap, and the tiles' counters in a zeroed __device__ array that the last block resets
             (no cudaMemsetAsync per call)

    python3 bench/session11/lastblock/variants.py

with bench/session11/ab/old generated at 8502457 and ab/new at 11a2749 (the last-block merge, since
replaced): scripts/generate_sources.py bench/session11/ab/{old,new} suite/level2/00{1,5}_*.py.

Each is checked against the reference on the same inputs and timed with time_cuda (L2 flushed,
median of 40), 5 rounds interleaved; the table prints last.
"""
import re
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
from ab_generated import build  # noqa: E402

HERE = Path(__file__).resolve().parent
AB = HERE.parent / "ab"
PROBLEMS = ["suite/level2/001_conv2d_batchnorm_relu.py", "suite/level2/005_conv2d_instancenorm_divide.py"]


def variants(text: str) -> dict[str, str]:
    [k] = re.findall(r"(\w+)_kernel<0><<<", text)
    cap = text.replace(f"__launch_bounds__(256) {k}_kernel", f"__launch_bounds__(256, 8) {k}_kernel")
    assert cap != text
    out = {"cap": cap}
    merge8 = re.compile(r"k0 \+= 8 \* team\.n(.*?)_m\[8\];(.*?)u < 8; \+\+u(.*?)u < 8; \+\+u", re.S)
    if merge8.search(cap):
        out["cap4"] = merge8.sub(lambda m: f"k0 += 4 * team.n{m[1]}_m[4];{m[2]}u < 4; ++u{m[3]}u < 4; ++u", cap)
    memset = re.compile(r"  const cudaError_t e = cudaMemsetAsync\(.*?\n  if \(e != cudaSuccess\) return static_cast<int>\(e\);\n")
    assert memset.search(cap)
    static = memset.sub("", cap)
    static = static.replace(f"reinterpret_cast<unsigned*>(a.ws + {k}_ws_count) + ", f"{k}_counts + ")
    static = static.replace("template <int PHASE>\n__global__", f"__device__ unsigned {k}_counts[4096];  // zeroed at load\ntemplate <int PHASE>\n__global__", 1)
    static = static.replace("    if (ff_last_block(count, splits)) {\n",
                            "    if (ff_last_block(count, splits)) {\n      if (threadIdx.x == 0 && threadIdx.y == 0) *count = 0;  // for the next call\n")
    assert static.count(f"{k}_counts + ") == 1 and "*count = 0" in static
    out["cap_static"] = static
    return out


def main():
    files = {}
    for p in PROBLEMS:
        name = Path(p).parent.name + "_" + Path(p).stem
        files[(p, "old")] = AB / "old" / f"{name}.py"
        files[(p, "new")] = AB / "new" / f"{name}.py"
        for tag, text in variants(files[(p, "new")].read_text()).items():
            path = HERE / "gen" / f"{name}_{tag}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(text.replace(re.search(r'name="(ff_\w+)"', text)[1],
                                         re.search(r'name="(ff_\w+)"', text)[1] + "_" + tag))
            files[(p, tag)] = path
    with ThreadPoolExecutor(8) as pool:
        for e in pool.map(build, files.values()):
            if e:
                print("build failed:", e)

    import torch
    from fuseforge.bench import environment, time_cuda
    from fuseforge.build import load_generated
    from fuseforge.problem import load_problem
    from fuseforge.verify import verify
    lines = []
    for p in PROBLEMS:
        problem = load_problem(ROOT / p)
        models = {"eager": problem.build(0).cuda()}
        for (q, tag), path in files.items():
            if q != p:
                continue
            cls = load_generated(path, path.stem + "_" + tag).module.ModelNew
            ok = verify(problem, cls, device="cuda", trials=3).passed
            torch.manual_seed(0)
            models[tag + ("" if ok else " (WRONG)")] = cls(*problem.init_args()).cuda()
        inputs = problem.inputs(0, "cuda")
        times = {t: [] for t in models}
        for _ in range(5):
            for t, m in models.items():
                times[t].append(time_cuda(m, inputs, trials=40).median_ms)
        for t, ts in times.items():
            lines.append(f"{p.split('/')[1]}/{Path(p).stem[:3]}  {t:18} {statistics.median(ts):.4f} ms")
    print(environment().get("gpu"))
    print("\n".join(lines))


main()
