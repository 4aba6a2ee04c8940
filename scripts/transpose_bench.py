"""The NCHW -> channels-last copy (ff_transpose_kernel, codegen/cpp.py) against variants of it, ATen's
copy and torch.compile's, on the input shapes of the suite's channels-last convolutions.

On one H200 (bench/session27/profile) the generated copy took 0.071-0.073 ms where torch.compile's
took 0.064 on the same [64, 32, 128, 128] input (3.7 against 4.2 TB/s, the copy ceiling 4.24).
Each variant is checked against torch's own copy (bit for bit) before it is timed: CUDA events,
L2 flushed before every call, the median of --trials calls. Prints one table, ms and TB/s.

    python3 scripts/transpose_bench.py [--trials 50] [--no-compile] [--json OUT]

The kernels here take raw pointers (pybind and cuda_runtime only: a build of seconds, not of the
torch headers). Variants: tile32 (the generated one: a 32 x 32 tile, 256 threads, 4 floats each),
tile128 (32 channels x 128 pixels a block: 16 floats a thread in flight), vl128 (its pixels read
as float4), vs128 (its channels written as float4), vls128 and vls256 (both). The first run
(transpose_1.log: tile32, tile64, tile128, vl128 as vec128) put tile64 last.
"""
import argparse
import json
import statistics
import sys

import torch
from torch.utils.cpp_extension import load_inline

CUDA = r"""
#include <cuda_runtime.h>
#include <stdint.h>

// 32 channels x TB pixels of image blockIdx.z through shared memory: read along the pixels, write
// along the channels. VLOAD: the reads as float4 (nb a multiple of 4); VSTORE: the writes as float4
// (na a multiple of 4), 8 threads a pixel's 32 channels (conflict-free: TB + 1 is 1 mod 32).
template <int TB, bool VLOAD, bool VSTORE>
__global__ void __launch_bounds__(256) to_cl(const float* __restrict__ x, float* __restrict__ y, unsigned na,
                                             unsigned long long nb) {
  __shared__ float tile[32][TB + 1];
  const unsigned long long img = blockIdx.z;
  const unsigned a0 = blockIdx.y * 32u;
  const unsigned long long b0 = blockIdx.x * static_cast<unsigned long long>(TB);
  const int t = threadIdx.y * 32 + threadIdx.x;
  if (VLOAD) {
#pragma unroll
    for (int e = t; e < 32 * TB / 4; e += 256) {
      const int r = e / (TB / 4), q = e % (TB / 4);
      const unsigned i = a0 + r;
      const unsigned long long j = b0 + 4ull * q;
      if (i < na && j < nb) {
        const float4 v = *reinterpret_cast<const float4*>(x + (img * na + i) * nb + j);
        tile[r][4 * q] = v.x;
        tile[r][4 * q + 1] = v.y;
        tile[r][4 * q + 2] = v.z;
        tile[r][4 * q + 3] = v.w;
      }
    }
  } else {
#pragma unroll
    for (int k = 0; k < 32; k += 8) {
      const unsigned i = a0 + threadIdx.y + k;
#pragma unroll
      for (int s = 0; s < TB; s += 32) {
        const unsigned long long j = b0 + s + threadIdx.x;
        if (i < na && j < nb) tile[threadIdx.y + k][s + threadIdx.x] = x[(img * na + i) * nb + j];
      }
    }
  }
  __syncthreads();
  if (VSTORE) {
#pragma unroll
    for (int e = t; e < TB * 8; e += 256) {
      const int q = e % 8, jj = e / 8;
      const unsigned i = a0 + 4 * q;
      const unsigned long long j = b0 + jj;
      if (i < na && j < nb)
        *reinterpret_cast<float4*>(y + (img * nb + j) * na + i) =
            make_float4(tile[4 * q][jj], tile[4 * q + 1][jj], tile[4 * q + 2][jj], tile[4 * q + 3][jj]);
    }
  } else {
#pragma unroll
    for (int k = 0; k < TB; k += 8) {
      const unsigned long long j = b0 + threadIdx.y + k;
      const unsigned i = a0 + threadIdx.x;
      if (i < na && j < nb) y[(img * nb + j) * na + i] = tile[threadIdx.x][threadIdx.y + k];
    }
  }
}

template <int TB, bool VLOAD, bool VSTORE>
int launch(uint64_t x, uint64_t y, long long n, long long c, long long pixels, uint64_t stream) {
  const dim3 grid(static_cast<unsigned>((pixels + TB - 1) / TB), static_cast<unsigned>((c + 31) / 32),
                  static_cast<unsigned>(n));
  to_cl<TB, VLOAD, VSTORE><<<grid, dim3(32, 8), 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y), static_cast<unsigned>(c),
      static_cast<unsigned long long>(pixels));
  return static_cast<int>(cudaGetLastError());
}

int to_channels_last(int variant, uint64_t x, uint64_t y, long long n, long long c, long long pixels, uint64_t stream) {
  switch (variant) {
    case 0: return launch<32, false, false>(x, y, n, c, pixels, stream);
    case 1: return launch<128, false, false>(x, y, n, c, pixels, stream);
    case 2: return launch<128, true, false>(x, y, n, c, pixels, stream);
    case 3: return launch<128, false, true>(x, y, n, c, pixels, stream);
    case 4: return launch<128, true, true>(x, y, n, c, pixels, stream);
    case 5: return launch<256, true, true>(x, y, n, c, pixels, stream);
  }
  return -1;
}
"""

CPP = r"""
#include <pybind11/pybind11.h>
#include <stdint.h>
int to_channels_last(int variant, uint64_t x, uint64_t y, long long n, long long c, long long pixels, uint64_t stream);
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("to_channels_last", &to_channels_last); }
"""

# (name, pixels read as float4, channels written as float4)
VARIANTS = [("tile32", False, False), ("tile128", False, False), ("vl128", True, False), ("vs128", False, True),
            ("vls128", True, True), ("vls256", True, True)]

# (n, c, h, w): the inputs of channels-last convolutions in the suite
SHAPES = [
    (64, 32, 128, 128),   # level2/001, 022 (and most conv2d problems of level 2)
    (32, 64, 64, 64),     # level2/025-031 (transposed)
    (32, 32, 96, 192),    # level1/035
    (16, 64, 256, 256),
    (128, 16, 32, 32),
    (32, 128, 32, 32),
]


def time_ms(fn, trials: int) -> float:
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")   # larger than the L2
    times = []
    for _ in range(3):
        fn()
    for _ in range(trials):
        flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        times.append((start, end))
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in times)


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
