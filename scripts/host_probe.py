"""Where the host time of a replayed forward goes, on the GPU: for each generated file (as
scripts/generate_sources.py writes them) next to its problem, the median host time of the whole
call (`model(x)`), of its forward method (no nn.Module call), of the extension's forward called
directly, and of a pybind call that takes no tensors (the floor of any call into the extension);
then a CUDA graph of one small kernel replayed through torch (`CUDAGraph.replay`) and launched
directly (`cudaGraphLaunch` through ctypes); the model's own forward captured by torch into a graph
and that graph launched bare (the floor of its replay: what ext.forward costs above it is the
extension's and pybind's); and the CUDA runtime calls and aten ops of a few calls of the model
(torch.profiler), which show anything the replay launches besides the graph.

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


def interleaved_us(fns: dict, calls: int, chunk: int = 20) -> dict:
    """Each fn's median host time in µs, measured in turns (a chunk of calls of each, then again),
    so that a drift of the machine's state falls on all of them alike."""
    times = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            for _ in range(3):
                fn()
        for _ in range(max(1, calls // chunk)):
            for name, fn in fns.items():
                torch.cuda.synchronize()
                for _ in range(chunk):
                    start = time.perf_counter()
                    fn()
                    times[name].append((time.perf_counter() - start) * 1e6)
    torch.cuda.synchronize()
    return {name: statistics.median(t) for name, t in times.items()}


def cudart() -> ctypes.CDLL:
    """The CUDA runtime torch was built with (raises OSError where it is not found)."""
    return ctypes.CDLL(f"libcudart.so.{torch.version.cuda.split('.')[0]}")


def captured(fn) -> torch.cuda.CUDAGraph:
    """fn's work captured by torch into a graph (after a warm-up on a side stream), kept (its nodes
    can be listed) and instantiated."""
    stream = torch.cuda.Stream()
    with torch.no_grad():
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph(keep_graph=True)
        with torch.cuda.graph(g):
            fn()
    g.instantiate()
    torch.cuda.synchronize()
    return g


NODE_TYPES = {0: "kernel", 1: "memcpy", 2: "memset", 3: "host", 4: "graph", 5: "empty", 6: "wait event",
              7: "event record", 10: "mem alloc", 11: "mem free", 13: "conditional"}


def nodes(g: torch.cuda.CUDAGraph) -> str:
    """The graph's nodes by type, and its edges ('3 kernel, 1 memset; 3 edges')."""
    try:
        rt = cudart()
        graph = ctypes.c_void_p(g.raw_cuda_graph())
        n = ctypes.c_size_t(0)
        rt.cudaGraphGetNodes(graph, None, ctypes.byref(n))
        handles = (ctypes.c_void_p * n.value)()
        rt.cudaGraphGetNodes(graph, handles, ctypes.byref(n))
        counts = {}
        for h in handles:
            t = ctypes.c_int(-1)
            rt.cudaGraphNodeGetType(ctypes.c_void_p(h), ctypes.byref(t))
            name = NODE_TYPES.get(t.value, f"type {t.value}")
            counts[name] = counts.get(name, 0) + 1
        e = ctypes.c_size_t(0)
        # CUDA 13 took an edge-data argument before the count (CUDA 12's cudaGraphGetEdges_v2)
        extra = [None] if int(torch.version.cuda.split(".")[0]) >= 13 else []
        status = rt.cudaGraphGetEdges(graph, None, None, *extra, ctypes.byref(e))
        rt.cudaGetLastError()   # (a failed query must not surface at the next launch check)
        edges = f"{e.value} edges" if status == 0 else f"edges: error {status}"
        return ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; {edges}"
    except (OSError, AttributeError, RuntimeError) as e:
        return f"{type(e).__name__}: {e}"


def launch_rows(g: torch.cuda.CUDAGraph, calls: int, what: str) -> list:
    """The host time of g.replay() and of cudaGraphLaunch on g's executable graph itself, back to
    back (the GPU busy with the launches before) and with the GPU idle before each."""
    rows = [(f"CUDAGraph.replay (torch), {what}", median_us(g.replay, calls))]
    try:
        rt = cudart()
        graph_exec = g.raw_cuda_graph_exec()
        current = torch.cuda.current_stream().cuda_stream
        launch = lambda: rt.cudaGraphLaunch(ctypes.c_void_p(graph_exec), ctypes.c_void_p(current))  # noqa: E731
        rows.append((f"cudaGraphLaunch (ctypes), {what}", median_us(launch, calls)))
        rows.append((f"cudaGraphLaunch (ctypes), GPU idle, {what}", median_us(launch, calls, chunk=1)))
        side = torch.cuda.Stream().cuda_stream   # a stream of torch's pool, not the legacy default one
        on_side = lambda: rt.cudaGraphLaunch(ctypes.c_void_p(graph_exec), ctypes.c_void_p(side))  # noqa: E731
        rows.append((f"cudaGraphLaunch (ctypes) on a side stream, {what}", median_us(on_side, calls)))
    except (OSError, AttributeError, RuntimeError) as e:
        rows.append((f"cudaGraphLaunch (ctypes): {type(e).__name__}: {e}", float("nan")))
    return rows


def print_rows(rows: list) -> None:
    for name, us in rows:
        print(f"  {name:<52} {us:8.2f} us")


def graph_launch(calls: int) -> None:
    """The host time of launching graphs of 1 to 16 small kernels in a row, and of a memset and a
    kernel: what a node adds to a replay's launch."""
    x = torch.zeros(1024, device="cuda")
    rows = []
    for k in (1, 2, 4, 8, 16):
        def adds(k=k):
            for _ in range(k):
                x.add_(1)
        rows += launch_rows(captured(adds), calls, f"{k} kernel(s)")
    rows += launch_rows(captured(lambda: (x.zero_(), x.add_(1))), calls, "a memset and a kernel")
    big = torch.zeros(1 << 26, device="cuda")   # 256 MB: about 0.15 ms a kernel
    rows += launch_rows(captured(lambda: big.add_(1)), calls, "1 long kernel")
    rows += launch_rows(captured(lambda: (big.add_(1), big.add_(1), big.add_(1), big.add_(1))), calls, "4 long kernels")
    # a cuDNN transposed convolution alone (level2/025's, channels-last), and a memset node of the
    # runtime's own (cudaMemsetAsync) before a kernel: what their nodes add to a launch
    xc = torch.randn(32, 64, 64, 64, device="cuda").to(memory_format=torch.channels_last)
    wc = torch.randn(64, 32, 3, 3, device="cuda").to(memory_format=torch.channels_last)
    g = captured(lambda: torch.nn.functional.conv_transpose2d(xc, wc, stride=2, padding=1, output_padding=1))
    print(f"  cuDNN's transposed convolution: {nodes(g)}")
    rows += launch_rows(g, calls, "cuDNN's transposed convolution")
    try:
        rt = cudart()
        g = captured(lambda: (rt.cudaMemsetAsync(ctypes.c_void_p(x.data_ptr()), 0, ctypes.c_size_t(4096),
                                                 ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)), x.add_(1)))
        print(f"  cudaMemsetAsync and a kernel: {nodes(g)}")
        rows += launch_rows(g, calls, "cudaMemsetAsync and a kernel")
        rows.append(("ctypes call floor (cudaGetLastError)", median_us(rt.cudaGetLastError, calls)))
    except OSError as e:
        rows.append((f"ctypes: {e}", float("nan")))
    print_rows(rows)


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
    print_rows([(name, median_us(fn, calls)) for name, fn in rows])
    print(f"  [captures, replays] {ext.replays()}")
    # the wrapper's own share: model(x) against a bare launch of the same kernels captured by torch
    ext.set_replay(False)
    try:
        g = captured(lambda: ext.forward(list(inputs), state))
    except RuntimeError as e:
        g = None
        print(f"  the model's graph: {type(e).__name__}: {e}")
    ext.set_replay(True)
    if g is not None:
        rt = cudart()
        graph_exec = g.raw_cuda_graph_exec()
        launch = lambda: rt.cudaGraphLaunch(ctypes.c_void_p(graph_exec),  # noqa: E731
                                            ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
        for _ in range(2):
            t = interleaved_us({"model(x)": lambda: model(*inputs), "bare launch": launch}, 4 * calls)
            print(f"  in turns: model(x) {t['model(x)']:.2f} us, a bare launch of its graph {t['bare launch']:.2f} us, "
                  f"the wrapper's share {t['model(x)'] - t['bare launch']:.2f} us")
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            model(*inputs)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="count", row_limit=20, max_name_column_width=50))
    # the same kernels captured by torch (the extension op by op inside the capture), launched bare
    ext.set_replay(False)
    try:
        g = captured(lambda: ext.forward(list(inputs), state))
        print(f"  the model's graph: {nodes(g)}")
        print_rows(launch_rows(g, calls, "the model's graph"))
    except RuntimeError as e:   # a forward that cannot be captured: its replay is off anyway
        print(f"  the model's graph: {type(e).__name__}: {e}")
    ext.set_replay(True)


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
