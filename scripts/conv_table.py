"""The convolution problems of the suite (issue 6): each one's times from a merged bench report and
the layout decision the plan takes for each of its convolutions, as a markdown table.

    python scripts/conv_table.py [--results bench/suite_full/results.jsonl] [-o bench/conv_table.md]

The plans are made here, on the CPU, at the problems' full sizes (capture and plan only: no
build, no GPU); the times are the report's (eager, torch.compile default, fuseforge; ms).
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from fuseforge.capture import capture  # noqa: E402
from fuseforge.plan import plan  # noqa: E402
from fuseforge.plan_conv import ConvKernel, nchw_input  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402

CONV = re.compile(r"nn\.Conv|F\.conv|conv_transpose|conv[123]d\(")


def decisions(path: Path) -> list[str]:
    """The plan's layout line for each convolution, shortened: 'name: decision' (a generated one's
    too)."""
    problem = load_problem(path)
    with torch.no_grad():
        p = plan(capture(problem.build(0), problem.inputs(0)))
    def fused(k):
        return "its channels row kernel fused" if k.rows else "its epilogue fused" if k.epilogue else "no epilogue"
    out = [f"{k.node.name}: generated (TF32 implicit GEMM, {fused(k)}{', input read NCHW' if nchw_input(k.conv) else ''})"
           for k in p.kernels if isinstance(k, ConvKernel)]
    for d in p.decisions:
        m = re.match(r"(\S+) \((aten\.conv[\w.]*)\): (NCHW|channels-last)(.*)", d)
        if m:
            what = "channels-last, back to NCHW" if "converted back" in m[4] else m[3]
            why = m[4].split("since ", 1)[1] if "since " in m[4] else m[4].lstrip(", ")
            out.append(f"{m[1]}: {what}" + (f" ({why[:90]})" if m[3] == "NCHW" or "back" in what else ""))
    return out


def args_and_records(doc: str, out: str):
    """A table script's command line (--results, -o) and the merged report's records by problem."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "bench/suite_full/results.jsonl")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / out)
    args = ap.parse_args()
    records = {}
    for line in args.results.read_text().splitlines():
        r = json.loads(line)
        records[r["problem"]] = r
    return args, records


def source(args) -> str:
    """The report a table was made from, as the table names it, and the GPUs its runs name
    (runs.jsonl beside it): "`bench/suite_full/results.jsonl`, H100"."""
    path = str(args.results.relative_to(ROOT) if args.results.is_relative_to(ROOT) else args.results)
    runs = args.results.with_name("runs.jsonl")
    gpus = sorted({json.loads(line).get("env", {}).get("gpu") or "?" for line in runs.read_text().splitlines()
                   if line.strip()}) if runs.is_file() else []
    return f"`{path}`" + (", " + " and ".join(g.removeprefix("NVIDIA ") for g in gpus) if gpus else "")


def write_table(args, head: list[str], rows: list[str]) -> int:
    args.out.write_text("\n".join(head + rows) + "\n")
    print(f"wrote {args.out}")
    return 0


def main() -> int:
    args, records = args_and_records(__doc__, "bench/conv_table.md")
    rows, ratios_eager, ratios_compile = [], [], []
    for problem in sorted(records):
        path = ROOT / problem
        if not path.is_file() or not CONV.search(path.read_text()):
            continue
        v = records[problem]["versions"]
        ms = {k: v.get(k, {}).get("ms") for k in ("eager", "compile:default", "fuseforge")}
        if None in ms.values():
            rows.append(f"| {problem} | – | – | – | – | – | not timed |")
            continue
        xe, xc = ms["eager"] / ms["fuseforge"], ms["compile:default"] / ms["fuseforge"]
        ratios_eager.append(xe)
        ratios_compile.append(xc)
        try:
            layout = "; ".join(decisions(path)) or "NCHW: no layout rule for its convolutions (1D, 3D or another overload)"
        except Exception as e:   # one problem that fails to plan is reported, the table goes on
            layout = f"planning failed: {type(e).__name__}: {str(e)[:100]}"
        rows.append(f"| {problem.removeprefix('suite/').removesuffix('.py')} | {ms['eager']:.3f} | "
                    f"{ms['compile:default']:.3f} | {ms['fuseforge']:.3f} | {xe:.2f} | {xc:.2f} | {layout} |")
        print(rows[-1][:160], flush=True)
    geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))  # noqa: E731
    head = [f"# Convolution problems: times and layout decisions ({len(ratios_compile)} timed)", "",
            f"From {source(args)} "
            f"(ms); decisions from the plan at full size. Geomean {geo(ratios_eager):.2f}× eager, "
            f"{geo(ratios_compile):.2f}× torch.compile; below torch.compile: "
            f"{sum(x < 1 for x in ratios_compile)}, below eager: {sum(x < 1 for x in ratios_eager)}. "
            f"Regenerate: `python scripts/conv_table.py{' '.join([''] + sys.argv[1:])}`.", "",
            "| problem | eager | torch.compile | fuseforge | × eager | × torch.compile | convolution layouts |",
            "|---|---:|---:|---:|---:|---:|---|"]
    return write_table(args, head, rows)


if __name__ == "__main__":
    sys.exit(main())
