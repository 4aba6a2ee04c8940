"""The standalone reduction, normalization, pooling, scan and loss problems of the suite (issue 3):
each one's times from a merged bench report, its share of the copy bandwidth, and whether it meets
issue 3's bar (at least 80 % of the measured copy bandwidth, or faster than both eager and
torch.compile), as a markdown table.

    python scripts/rows_table.py [--results bench/suite_full/results.jsonl] [-o bench/rows_table.md]

A problem is standalone when its graph (captured and planned here on the CPU at full size) has a
row, window or scan op of the registry or a norm, and no convolution, product or attention. Bandwidth share = the
report's floor (minimal bytes at the measured copy rate) / fuseforge's time.
"""
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from fuseforge.capture import capture  # noqa: E402
from fuseforge.plan import plan  # noqa: E402
from fuseforge.ops import lookup  # noqa: E402
from fuseforge.plan import Extern  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402

from conv_table import args_and_records, source, write_table  # noqa: E402  (what the table scripts share)

BAR = 0.80
HEAVY = re.compile(r"conv|mm|matmul|linear|attention|einsum")


def kernels(path: Path) -> list[str] | None:
    """The plan's steps (kernel kinds, externs by op) if the problem is a standalone
    reduction-shaped one, else None."""
    problem = load_problem(path)
    with torch.no_grad():
        p = plan(capture(problem.build(0), problem.inputs(0)))
    targets = [n.target for n in p.graph.nodes]
    shaped = any(getattr(lookup(t), "kind", None) in ("row", "window", "scan") or "norm" in t for t in targets)
    if not shaped or any(HEAVY.search(t) for t in targets):
        return None
    return [f"extern {s.node.target}" if isinstance(s, Extern) else
            type(s).__name__.removesuffix("Kernel").lower() or "pointwise" for s in p.steps]


def main() -> int:
    args, records = args_and_records(__doc__, "bench/rows_table.md")
    rows, shares, missed = [], [], []
    for problem in sorted(records):
        path = ROOT / problem
        if not path.is_file() or not problem.startswith("suite/level1/"):
            continue
        kinds = kernels(path)
        if kinds is None:
            continue
        r = records[problem]
        ms = {k: r["versions"].get(k, {}).get("ms") for k in ("eager", "compile:default", "fuseforge")}
        name = problem.removeprefix("suite/").removesuffix(".py")
        if None in ms.values() or not r.get("floor_ms"):
            rows.append(f"| {name} | – | – | – | – | – | – | not timed |")
            missed.append(name)
            continue
        share = r["floor_ms"] / ms["fuseforge"]
        xe, xc = ms["eager"] / ms["fuseforge"], ms["compile:default"] / ms["fuseforge"]
        meets = share >= BAR or (xe > 1 and xc > 1)
        shares.append(share)
        if not meets:
            missed.append(name)
        rows.append(f"| {name} | {ms['eager']:.3f} | {ms['compile:default']:.3f} | {ms['fuseforge']:.3f} | "
                    f"{xe:.2f} | {xc:.2f} | {100 * share:.0f} % | {'yes' if meets else '**no**'} | "
                    f"{' + '.join(kinds)} |")
        print(rows[-1], flush=True)
    geo = math.exp(sum(map(math.log, shares)) / len(shares))
    head = [f"# Standalone reductions, norms, pooling, scans and losses ({len(shares)} timed)", "",
            f"From {source(args)} "
            f"(ms). Bandwidth = minimal bytes at the measured copy rate / fuseforge's time "
            f"(geomean {100 * geo:.0f} %). Meets issue 3's bar: ≥ {100 * BAR:.0f} % of the copy "
            f"bandwidth, or faster than both eager and torch.compile. Missing the bar: "
            f"{', '.join(missed) or 'none'}. Regenerate: `python scripts/rows_table.py`.", "",
            "| problem | eager | torch.compile | fuseforge | × eager | × torch.compile | bandwidth | bar | kernels |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    return write_table(args, head, rows)


if __name__ == "__main__":
    sys.exit(main())
