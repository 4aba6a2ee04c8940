"""Would running a forward on slices of the batch, one after another, be faster (the slice's
intermediate tensors staying in L2 between the kernels that write and read them)? For each
problem: the GPU time of one call on the whole batch against calls on each slice in turn, for
eager and for fuseforge files generated at the full batch (FULL_DIR) and at the slice's batch
(CHUNK_DIR, from a copy of the problem whose batch_size is the slice's: CHUNK_PROBLEMS).

    python3 scripts/chunk_probe.py FULL_DIR CHUNK_DIR CHUNK_PROBLEM.py... [--trials 20]
"""
import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuseforge.bench import time_cuda  # noqa: E402
from fuseforge.build import generated_model  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402


def model_of(directory: Path, problem_path: Path, problem):
    return generated_model(directory / f"{problem_path.parent.name}_{problem_path.stem}.py", problem)


def graphed(fn):
    """fn captured as one CUDA graph: its GPU time without the host's launches between kernels."""
    with torch.no_grad():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
    return g.replay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("full_dir", type=Path)
    ap.add_argument("chunk_dir", type=Path)
    ap.add_argument("chunk_problems", nargs="+", type=Path)
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "(ms, median, L2 flushed, each version one CUDA graph)")
    print(f"{'problem':<58} {'batch':>9} {'eager':>8} {'sliced':>8} {'ff':>8} {'sliced':>8} {'ff sliced/ff':>12}")
    for chunk_path in args.chunk_problems:
        full_path = ROOT / "suite" / chunk_path.parent.name / chunk_path.name
        full, chunk = load_problem(full_path), load_problem(chunk_path)
        x = full.inputs(0, "cuda")
        n, c = x[0].shape[0], chunk.inputs(0, "meta")[0].shape[0]
        slices = [[t.narrow(0, i, c) for t in x] for i in range(0, n, c)]
        eager = full.build(0).cuda()
        ff_full, ext_full = model_of(args.full_dir, full_path, full)
        ff_chunk, ext_chunk = model_of(args.chunk_dir, chunk_path, chunk)
        ext_full.set_replay(False)   # op by op, captured here as one graph with the slices' calls
        ext_chunk.set_replay(False)
        sliced = lambda m: (lambda: [m(*s) for s in slices])  # noqa: E731
        t = [time_cuda(graphed(fn), (), trials=args.trials).median_ms for fn in
             (lambda: eager(*x), sliced(eager), lambda: ff_full(*x), sliced(ff_chunk))]
        print(f"{chunk_path.parent.name + '/' + chunk_path.stem:<58} {f'{n}/{c}':>9} "
              f"{t[0]:8.4f} {t[1]:8.4f} {t[2]:8.4f} {t[3]:8.4f} {t[3] / t[2]:12.3f}", flush=True)


if __name__ == "__main__":
    main()
