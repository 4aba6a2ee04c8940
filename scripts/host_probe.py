"""Where the host time of a replayed forward goes, on the GPU: for each generated file (as
scripts/generate_sources.py writes them) next to its problem, the median host time of the whole
call (`model(x)`), of its forward method (no nn.Module call), of the extension's forward called
directly, and of a pybind call that takes no tensors (the floor of any call into the extension);
then a CUDA graph of one small kernel replayed through torch (`CUDAGraph.replay`) and launched
directly (`cudaGraphLaunch` through ctypes); and the CUDA runtime calls and aten ops of a few
calls of the model (torch.profiler), which show anything the replay launches besides the graph.

    python3 scripts/host_probe.py DIR PROBLEM.py... [--calls 200]
"""
import argparse
import ctypes
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuseforge.build import generated_model  # noqa: E402
from fuseforge.problem import load_problem  # noqa: E402


def median_us(fn, calls: int, chunk: int = 20) -> float:
    """Median host time of fn() in µs, calls back to back in chunks that do not fill the queue."""
    times = []
    with torch.no_grad():
        for _ in range(3):
            fn()
        for _ in range(max(1, calls // chunk)):
            torch.cuda.synchronize()
            for _ in range(chunk):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1e6)
    torch.cuda.synchronize()
    return statistics.median(times)


def graph_launch(calls: int) -> None:
    x = torch.zeros(1024, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x.add_(1)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        x.add_(1)
    torch.cuda.synchronize()
    rows = [("CUDAGraph.replay (torch)", median_us(g.replay, calls))]
    try:
        cudart = ctypes.CDLL(f"libcudart.so.{torch.version.cuda.split('.')[0]}")
        graph_exec = g.raw_cuda_graph_exec()
        current = torch.cuda.current_stream().cuda_stream
        launch = lambda: cudart.cudaGraphLaunch(ctypes.c_void_p(graph_exec), ctypes.c_void_p(current))  # noqa: E731
        rows.append(("cudaGraphLaunch (ctypes)", median_us(launch, calls)))
        rows.append(("ctypes call floor (cudaGetLastError)", median_us(cudart.cudaGetLastError, calls)))
    except (OSError, AttributeError, RuntimeError) as e:
        rows.append((f"cudaGraphLaunch (ctypes): {type(e).__name__}: {e}", float("nan")))
    for name, us in rows:
        print(f"  {name:<44} {us:8.2f} us")


def probe(path: Path, problem_path: Path, calls: int) -> None:
    problem = load_problem(problem_path)
    model, ext = generated_model(path, problem)
    inputs = problem.inputs(0, "cuda")
    state = model._ff_state
    rows = [
        ("model(x)", lambda: model(*inputs)),
        ("model.forward(x) (no nn.Module call)", lambda: model.forward(*inputs)),
        ("ext.forward([x], state)", lambda: ext.forward(list(inputs), state)),
        ("ext.replays() (pybind floor)", ext.replays),
    ]
    print(f"== {path.name}")
    for name, fn in rows:
        print(f"  {name:<44} {median_us(fn, calls):8.2f} us")
    print(f"  [captures, replays] {ext.replays()}")
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            model(*inputs)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="count", row_limit=20, max_name_column_width=50))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("problems", nargs="+", type=Path)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    graph_launch(args.calls)
    for problem in args.problems:
        stem = f"{problem.parent.name}_{problem.stem}"
        probe(args.dir / f"{stem}.py", problem, args.calls)


if __name__ == "__main__":
    main()
