"""bench: time callables on a GPU the way DESIGN.md says.

CUDA events around each call, the L2 cache flushed before each call (a write over a buffer
larger than L2), warm-up first, the median of many trials. Versions compared in one process
on the same inputs.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

FLUSH_BYTES = 256 * 1024 * 1024   # well above the H100's 50 MB L2


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    trials: int

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms"


def time_cuda(fn, args, *, trials: int = 50, warmup: int = 5, flush: bool = True) -> Timing:
    """Median time of fn(*args) on the current CUDA device."""
    flush_buf = torch.empty(FLUSH_BYTES // 4, dtype=torch.float32, device="cuda") if flush else None
    with torch.no_grad():
        for _ in range(warmup):
            fn(*args)
        torch.cuda.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(trials)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(trials)]
        for s, e in zip(starts, ends):
            if flush_buf is not None:
                flush_buf.zero_()
            s.record()
            fn(*args)
            e.record()
        torch.cuda.synchronize()
    times = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    return Timing(statistics.median(times), min(times), trials)


def host_time(fn, args, *, calls: int = 20, warmup: int = 3, idle: bool = False) -> float:
    """Median host time of one call of fn(*args), in ms: what the call costs the calling thread
    before it returns (on a GPU, its work enqueued, not waited for: the calls follow each other
    without synchronizing, from an empty queue that 20 calls do not fill). A forward whose host
    time exceeds its GPU time leaves the GPU idle between launches. idle=True: the GPU idle before
    each call (a launch that waits for queued work shows as the difference)."""
    import time
    cuda = torch.cuda.is_available() and any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            fn(*args)
        if cuda:
            torch.cuda.synchronize()
        for _ in range(calls):
            if cuda and idle:
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn(*args)
            times.append((time.perf_counter() - start) * 1e3)
        if cuda:
            torch.cuda.synchronize()
    return statistics.median(times)


def copy_bandwidth(nbytes: int = 1 << 30, trials: int = 20) -> float:
    """Device-to-device copy rate in bytes/s, counting bytes read plus bytes written."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    t = time_cuda(lambda: dst.copy_(src), (), trials=trials, flush=False)
    return 2 * nbytes / (t.median_ms * 1e-3)


def environment() -> dict:
    """What a timing must be quoted with."""
    info = {"torch": torch.__version__, "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
        import subprocess
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True)
        # one line per GPU of the host (CUDA_VISIBLE_DEVICES does not narrow nvidia-smi): one driver
        info["driver"] = out.stdout.split("\n")[0].strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    return info


def time_cuda_adaptive(fn, args, *, min_trials: int = 30, max_trials: int = 100, budget_s: float = 1.0,
                       warmup: int = 5, flush: bool = True) -> Timing:
    """time_cuda with as many trials as fit in about budget_s, at least min_trials, at most max_trials.

    The warm-up calls (wall clock, synchronized) estimate one call's time.
    """
    import time
    with torch.no_grad():
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(max(warmup, 1)):
            fn(*args)
        torch.cuda.synchronize()
        per_call = (time.perf_counter() - start) / max(warmup, 1)
    trials = max(min_trials, min(max_trials, int(budget_s / max(per_call, 1e-6))))
    return time_cuda(fn, args, trials=trials, warmup=1, flush=flush)
