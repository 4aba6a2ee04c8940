"""Whether a generated forward is replayed as a CUDA graph, call by call, on the GPU: for each
generated file (as scripts/generate_sources.py writes them) next to its problem, the extension's
[captures, replays] after each of N calls (their results dropped, then kept: `y = model(x)`), and
each call's host time. A forward meant to replay that runs op by op shows as replays that stop
counting and host times of the op-by-op calls.

    python3 scripts/replay_probe.py DIR PROBLEM.py... [--calls 8]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuseforge.build import generated_model  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402


def probe(path: Path, problem_path: Path, calls: int) -> None:
    problem = load_problem(problem_path)
    model, ext = generated_model(path, problem)
    inputs = problem.inputs(0, "cuda")
    print(f"== {path.name}")
    with torch.no_grad():
        for keep in (False, True):
            y, rows = None, []
            for _ in range(calls):
                torch.cuda.synchronize()
                start = time.perf_counter()
                out = model(*inputs)
                ms = (time.perf_counter() - start) * 1e3
                y = out if keep else None
                del out
                rows.append(f"{ext.replays()} {ms:.3f} ms")
            print(f"  results {'kept' if keep else 'dropped'}: " + ", ".join(rows))
            del y
    torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("problems", nargs="+", type=Path)
    ap.add_argument("--calls", type=int, default=8)
    args = ap.parse_args()
    for p in args.problems:
        probe(args.folder / f"{p.parent.name}_{p.stem}.py", p, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
