"""Write the ModelNew file of every problem named (capture, plan, generate; no build, no GPU), or
compare them with an earlier such folder: the check that a refactor leaves generated code alone.

    python scripts/generate_sources.py OUT [PATHS...] [--small] [--compare EARLIER]

PATHS default to suite/. Full sizes need the memory of each problem's parameters and inputs
on the CPU (a few GB for the largest); --small uses each problem's SMALL sizes. With --compare,
the files of OUT that differ from EARLIER's (or are new) are listed, and the exit code is 1 if any.
A problem that fails to capture or plan is listed with its error and the run goes on.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from fuseforge.capture import capture  # noqa: E402
from fuseforge.emit import generate  # noqa: E402
from fuseforge.plan import plan  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402
from fuseforge.sweep import discover  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("paths", nargs="*", default=["suite"])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--compare", metavar="EARLIER")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in discover(args.paths):
        target = out / f"{path.parent.name}_{path.stem}.py"
        try:
            problem = load_problem(path, None, small=args.small)
            with torch.no_grad():
                graph = capture(problem.build(0), problem.inputs(0))
            target.write_text(generate(plan(graph), name=problem.name, problem=problem).text)
        except Exception as e:   # report and go on: one broken problem must not hide the rest
            failed += 1
            print(f"FAILED {path}: {type(e).__name__}: {str(e)[:300]}")
    if args.compare:
        earlier = Path(args.compare)
        changed = sorted(f.name for f in out.glob("*.py")
                         if not (earlier / f.name).is_file() or (earlier / f.name).read_text() != f.read_text())
        print("\n".join(changed) if changed else "all generated files equal the earlier ones")
        return 1 if changed or failed else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
