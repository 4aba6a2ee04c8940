"""The NCHW -> channels-last copy of the generated code (codegen/cl_copy.py: a 32 x 128 tile, float4
reads and writes where they fit) against the 32 x 32 tile it replaced (cpp.CUDA_PRELUDE's
ff_transpose_kernel, now the copy back to NCHW), the 32 x 128 tile launched four ways, ATen's copy
and torch.compile's, on the input shapes of the suite's channels-last convolutions.

Each variant is checked against torch's own copy (bit for bit) before it is timed: CUDA events,
L2 flushed before every call, the median of --trials calls. Prints one table, ms and TB/s.

    python3 scripts/transpose_bench.py [--trials 50] [--no-compile] [--json OUT]

The kernels take raw pointers here (pybind and cuda_runtime only: a build of seconds, not of the
torch headers). Variants: tile32 (the 32 x 32 tile), tile128 (the 32 x 128 tile, 16 floats a thread
in flight), vl128 (its pixels read as float4), vs128 (its channels written as float4), vls128
(both), cl_copy (ff_cl_copy, the generated code's: both where sizes and addresses allow). On one
H200 (bench/session28/ab_copy/transpose.log) cl_copy took 0.0687 ms against tile32's 0.0748 and
torch.compile's 0.0683 on [64, 32, 128, 128].
"""
import argparse
import json
import sys

from pathlib import Path

import torch
from torch.utils.cpp_extension import load_inline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from fuseforge.bench import time_cuda  # noqa: E402
from fuseforge.codegen import cpp  # noqa: E402

# the generated code's copies (cpp.CUDA_PRELUDE: ff_cl_copy and its kernel, the 32 x 32 tile),
# each launched as the variant says
CUDA = cpp.PRELUDE + cpp.CUDA_PRELUDE + r"""
template <bool VLOAD, bool VSTORE>
void wide(const float* x, float* y, long long n, long long c, long long pixels, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((pixels + 127) / 128), static_cast<unsigned>((c + 31) / 32),
                  static_cast<unsigned>(n));
  ff_cl_copy_kernel<false, VLOAD, VSTORE><<<grid, dim3(32, 8), 0, s>>>(
      x, y, static_cast<unsigned>(c), static_cast<unsigned long long>(pixels), static_cast<unsigned>(c), 0u);
}

int to_channels_last(int variant, uint64_t xp, uint64_t yp, long long n, long long c, long long pixels, uint64_t stream) {
  const float* x = reinterpret_cast<const float*>(xp);
  float* y = reinterpret_cast<float*>(yp);
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  switch (variant) {
    case 0:
      ff_transpose_kernel<<<dim3(static_cast<unsigned>((pixels + 31) / 32), static_cast<unsigned>((c + 31) / 32),
                                 static_cast<unsigned>(n)), dim3(32, 8), 0, s>>>(
          x, y, static_cast<unsigned>(c), static_cast<unsigned long long>(pixels), static_cast<unsigned>(c), 0u);
      break;
    case 1: wide<false, false>(x, y, n, c, pixels, s); break;
    case 2: wide<true, false>(x, y, n, c, pixels, s); break;
    case 3: wide<false, true>(x, y, n, c, pixels, s); break;
    case 4: wide<true, true>(x, y, n, c, pixels, s); break;
    case 5: return ff_cl_copy<false>(x, y, n, c, pixels, c, 0, s);
    default: return -1;
  }
  return static_cast<int>(cudaGetLastError());
}
"""

CPP = r"""
#include <pybind11/pybind11.h>
#include <stdint.h>
int to_channels_last(int variant, uint64_t x, uint64_t y, long long n, long long c, long long pixels, uint64_t stream);
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("to_channels_last", &to_channels_last); }
"""

# (name, pixels read as float4, channels written as float4): the 32 x 32 tile it replaced, the 32 x 128
# tile four ways, and ff_cl_copy as the generated code launches it (float4 where it fits)
VARIANTS = [("tile32", False, False), ("tile128", False, False), ("vl128", True, False), ("vs128", False, True),
            ("vls128", True, True), ("cl_copy", False, False)]

# (n, c, h, w): the inputs of channels-last convolutions in the suite
SHAPES = [
    (64, 32, 128, 128),   # level2/001, 022 (and most conv2d problems of level 2)
    (32, 64, 64, 64),     # level2/025-031 (transposed)
    (32, 32, 96, 192),    # level1/035
    (16, 64, 256, 256),
    (128, 16, 32, 32),
    (32, 128, 32, 32),
    (32, 18, 64, 64),     # channels not a multiple of 4: no float4 writes
    (32, 32, 15, 15),     # pixels not a multiple of 4: no float4 reads
]


def time_ms(fn, trials: int) -> float:
    return time_cuda(fn, (), trials=trials).median_ms   # (L2 flushed before each call)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    ext = load_inline("ff_transpose_bench", cpp_sources=[CPP], cuda_sources=[CUDA], extra_cuda_cflags=["-O3"],
                      verbose=False, **({"no_implicit_headers": True}
                                        if "no_implicit_headers" in load_inline.__code__.co_varnames else {}))
    cl = torch.channels_last
    rows = []
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: ms (TB/s, bytes read + written)", flush=True)
    for n, c, h, w in SHAPES:
        x = torch.randn(n, c, h, w, device="cuda")
        want = x.contiguous(memory_format=cl)
        nbytes = 2 * x.numel() * 4
        row = {"shape": [n, c, h, w]}
        row["aten"] = time_ms(lambda: x.contiguous(memory_format=cl), args.trials)
        if not args.no_compile:
            f = torch.compile(lambda t: t.contiguous(memory_format=cl))
            assert torch.equal(f(x), want)
            row["compile"] = time_ms(lambda: f(x), args.trials)
        stream = torch.cuda.current_stream().cuda_stream
        for v, (name, vload, vstore) in enumerate(VARIANTS):
            if (vload and (h * w) % 4) or (vstore and c % 4):
                continue
            y = torch.empty_like(want)
            run = lambda: ext.to_channels_last(v, x.data_ptr(), y.data_ptr(), n, c, h * w, stream)  # noqa: E731
            y.fill_(float("nan"))
            assert run() == 0
            torch.cuda.synchronize()
            if not torch.equal(y, want):
                print(f"  {name} {[n, c, h, w]}: WRONG", file=sys.stderr)
                return 1
            row[name] = time_ms(run, args.trials)
        rows.append(row)
        cells = "  ".join(f"{k} {v:.4f} ({nbytes / v / 1e9:.2f})" for k, v in row.items() if k != "shape")
        print(f"{str([n, c, h, w]):20} {cells}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
