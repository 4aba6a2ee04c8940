"""ceilings: the GPU's measured limits and the roofline floor of a problem.

Measured once per benchmark run on the GPU it runs on (never taken from a data sheet):
- copy bandwidth: a device-to-device copy of 1 GiB, bytes read + bytes written per second;
- float32 GEMM rate: an n×n×n matmul with TF32 off (PyTorch's default for matmuls);
- TF32 GEMM rate: the same matmul with TF32 on (tensor cores), the fastest any
  float32-class method can go, so it is the compute ceiling of the floor.

A problem's floor is max(minimal bytes / copy bandwidth, FLOPs / TF32 rate): no version can
be faster than moving its inputs, parameters and outputs once, nor than doing its matmul/conv
FLOPs on tensor cores. `floor_fp32` uses the float32 rate instead (recorded for reference).
"""
from __future__ import annotations

import time

GEMM_N = 8192


def gemm_rate(n: int = GEMM_N, *, tf32: bool, trials: int = 10) -> float:
    """FLOP/s of a float32 n×n @ n×n matmul on the current GPU, TF32 on or off."""
    import torch

    from .bench import time_cuda
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    c = torch.empty(n, n, device="cuda")
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        t = time_cuda(lambda: torch.mm(a, b, out=c), (), trials=trials, warmup=3, flush=False)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    del a, b, c
    torch.cuda.empty_cache()
    return 2 * n ** 3 / (t.median_ms * 1e-3)


def measure_ceilings() -> dict:
    """Copy bandwidth and the float32/TF32 GEMM rates of this GPU, in base units (bytes/s, FLOP/s)."""
    import torch

    from .bench import copy_bandwidth
    start = time.perf_counter()
    bw = copy_bandwidth()
    torch.cuda.empty_cache()
    fp32 = gemm_rate(tf32=False)
    tf32 = gemm_rate(tf32=True)
    return {
        "copy_bytes_per_s": bw,
        "fp32_flops_per_s": fp32,
        "tf32_flops_per_s": tf32,
        "how": f"copy of 1 GiB (read + write bytes); {GEMM_N}^3 float32 matmul with TF32 off / on; "
               "medians of CUDA-event timings",
        "seconds": round(time.perf_counter() - start, 2),
    }


def floor_seconds(flops: float, nbytes: float, ceilings: dict, *, compute: str = "tf32") -> tuple[float, str]:
    """Roofline floor in seconds and what bounds it ('memory' or 'compute')."""
    mem = nbytes / ceilings["copy_bytes_per_s"]
    comp = flops / ceilings[f"{compute}_flops_per_s"] if flops else 0.0
    return (comp, "compute") if comp > mem else (mem, "memory")


def roofline(flops: float | None, nbytes: float | None, ceilings: dict | None) -> dict:
    """The floor fields of a record: floor_ms (TF32 compute ceiling), floor_fp32_ms, bound."""
    if ceilings is None or flops is None or nbytes is None:
        return {}
    floor, bound = floor_seconds(flops, nbytes, ceilings)
    floor32, _ = floor_seconds(flops, nbytes, ceilings, compute="fp32")
    return {"floor_ms": floor * 1e3, "floor_fp32_ms": floor32 * 1e3, "bound": bound}


def describe(ceilings: dict) -> str:
    return (f"copy {ceilings['copy_bytes_per_s'] / 1e9:.0f} GB/s, "
            f"float32 GEMM {ceilings['fp32_flops_per_s'] / 1e12:.1f} TFLOP/s, "
            f"TF32 GEMM {ceilings['tf32_flops_per_s'] / 1e12:.1f} TFLOP/s")
