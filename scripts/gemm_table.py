"""The GEMM problems of the suite (issue 7): each one's times from a merged bench report, its rate,
and the plan's generated products (configuration, and whether measured or estimated), as markdown.

    python scripts/gemm_table.py [--results bench/suite_full/results.jsonl] [-o bench/gemm_table.md]

A problem is a GEMM problem when its plan generates a product. The plans are made here, on the
CPU, at the problems' full sizes, for the H100 (FUSEFORGE_GPU: the measured choices the package
ships, as the device's plan takes them); the times are the report's (ms).
"""
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("FUSEFORGE_GPU", "NVIDIA H100 80GB HBM3")

import torch  # noqa: E402

from conv_table import args_and_records, source, write_table  # noqa: E402
from fuseforge.capture import capture  # noqa: E402
from fuseforge.plan import plan  # noqa: E402
from fuseforge.plan_gemm import GemmKernel, config_name  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402


def products(path: Path) -> list[str]:
    """Each generated product: 'shape, configuration (how chosen), epilogue ops'."""
    problem = load_problem(path)
    with torch.no_grad():
        p = plan(capture(problem.build(0), problem.inputs(0)))
    out = []
    for k in p.kernels:
        if isinstance(k, GemmKernel):
            name = config_name(k.gemm, k.tiles, k.split)
            how = "measured" if any(d.startswith(f"{k.node.name}: ") and "measured on" in d for d in p.decisions) \
                else "estimated"
            ops = ", ".join(n.target.removeprefix("aten.").split(".")[0] for n in k.epilogue)
            out.append(f"{k.gemm.describe()} {name} ({how}){' + ' + ops if ops else ''}")
    return out


def main() -> int:
    args, records = args_and_records(__doc__, "bench/gemm_table.md")
    rows, every, levels = [], [], {}
    for problem in sorted(records):
        path = ROOT / problem
        r = records[problem]
        v = r["versions"]
        ms = {k: v.get(k, {}).get("ms") for k in ("eager", "compile:default", "fuseforge")}
        if not path.is_file() or None in ms.values():
            continue
        try:
            found = products(path)
        except Exception as e:   # one problem that fails to plan is reported, the table goes on
            print(f"{problem}: planning failed: {type(e).__name__}: {str(e)[:100]}")
            continue
        if not found:
            continue
        xe, xc = ms["eager"] / ms["fuseforge"], ms["compile:default"] / ms["fuseforge"]
        every.append((xe, xc))
        levels.setdefault(problem.split("/")[1], []).append((xe, xc))
        rate = r.get("flops", 0) / ms["fuseforge"] / 1e9
        rows.append(f"| {problem.removeprefix('suite/').removesuffix('.py')} | {ms['eager']:.3f} | "
                    f"{ms['compile:default']:.3f} | {ms['fuseforge']:.3f} | {xe:.2f} | {xc:.2f} | {rate:.0f} | "
                    f"{'; '.join(found)} |")
        print(rows[-1][:160], flush=True)

    def geo(pairs, i):
        return math.exp(sum(math.log(p[i]) for p in pairs) / len(pairs))
    head = [f"# GEMM problems: times and the generated products ({len(every)} problems)", "",
            f"From {source(args)} (ms; TFLOP/s: the model's FLOPs over fuseforge's time). Products "
            "from the plan at full size for the H100: shape, configuration (large or small tiles, k split "
            "s ways), measured (the shipped `fuseforge tune` table) or estimated, the ops fused after it. "
            f"Every GEMM problem: geomean {geo(every, 0):.2f}× eager, {geo(every, 1):.2f}× torch.compile; "
            + "; ".join(f"{lv} ({len(ps)}{', a GEMM and its epilogue ops' if lv == 'level2' else ''}): "
                        f"{geo(ps, 0):.2f}× eager, {geo(ps, 1):.2f}× torch.compile" for lv, ps in sorted(levels.items()))
            + f". Below eager: {sum(e < 1 for e, _ in every)}; below torch.compile: "
            f"{sum(c < 1 for _, c in every)}. Regenerate: `python scripts/gemm_table.py`.", "",
            "| problem | eager | torch.compile | fuseforge | × eager | × torch.compile | TFLOP/s | generated products |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    return write_table(args, head, rows)


if __name__ == "__main__":
    sys.exit(main())
