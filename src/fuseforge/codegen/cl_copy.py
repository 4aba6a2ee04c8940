"""cl_copy: FUSEFORGE_CL_COPY=128 (off until measured in generated code): the NCHW -> channels-last
copy (a convolution's input for cuDNN or for the generated convolution, a piece of a cat written
into its channels-last slice) with 32 channels x 128 pixels a block instead of the 32 x 32 tile
of cpp.CUDA_PRELUDE's ff_transpose_kernel, the pixels read and the channels written as float4
where sizes and addresses allow. The copy back to NCHW keeps the 32 x 32 tile (its tile runs over
the channels, often 32 or fewer).

On one H200 (scripts/transpose_bench.py, bench/session27/transpose_1.*) the 32 x 128 tile took
0.0702 ms against the 32 x 32 tile's 0.0734 and torch.compile's 0.0671 on [64, 32, 128, 128]
(read as float4: 0.0718); the float4 stores were not run yet.

The variant replaces the three launches in the generated CUDA text (with_variant), so that the
default text stays byte for byte what it was.
"""
from __future__ import annotations

import os

from ..errors import ConfigError

WIDE_KERNEL = r"""// FUSEFORGE_CL_COPY=128: the copy to channels-last a block of 32 channels x 128 pixels (16 floats
// a thread in flight, not 4); VLOAD: the pixels read as float4 (their count a multiple of 4, x
// aligned); VSTORE: the channels written as float4, 8 threads a pixel's 32 channels (the count, the
// row length and the offset multiples of 4, y aligned; conflict-free: 129 is 1 mod 32).
template <bool TF32, bool VLOAD, bool VSTORE>
__global__ void __launch_bounds__(256) ff_cl_copy_kernel(const float* __restrict__ x, float* __restrict__ y, unsigned na,
                                                         unsigned long long nb, unsigned ldy, unsigned off) {
  constexpr int TB = 128;
  __shared__ float tile[32][TB + 1];
  const unsigned long long img = blockIdx.z;
  const unsigned a0 = blockIdx.y * 32u;
  const unsigned long long b0 = blockIdx.x * static_cast<unsigned long long>(TB);
  const int t = threadIdx.y * 32 + threadIdx.x;
  if constexpr (VLOAD) {
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
#pragma unroll
      for (int s = 0; s < TB; s += 32) {
        const unsigned i = a0 + threadIdx.y + k;
        const unsigned long long j = b0 + s + threadIdx.x;
        if (i < na && j < nb) tile[threadIdx.y + k][s + threadIdx.x] = x[(img * na + i) * nb + j];
      }
    }
  }
  __syncthreads();
  const auto out = [](float v) { return TF32 ? ff_round_tf32(v) : v; };
  if constexpr (VSTORE) {
#pragma unroll
    for (int e = t; e < TB * 8; e += 256) {
      const int q = e % 8, jj = e / 8;
      const unsigned i = a0 + 4u * q;
      const unsigned long long j = b0 + jj;
      if (i < na && j < nb)
        *reinterpret_cast<float4*>(y + (img * nb + j) * ldy + off + i) = make_float4(
            out(tile[4 * q][jj]), out(tile[4 * q + 1][jj]), out(tile[4 * q + 2][jj]), out(tile[4 * q + 3][jj]));
    }
  } else {
#pragma unroll
    for (int k = 0; k < TB; k += 8) {
      const unsigned long long j = b0 + threadIdx.y + k;
      const unsigned i = a0 + threadIdx.x;
      if (i < na && j < nb) y[(img * nb + j) * ldy + off + i] = out(tile[threadIdx.x][threadIdx.y + k]);
    }
  }
}
// x [n][c][pixels] into channels off.. of y [n][pixels][ldy]
template <bool TF32>
int ff_cl_copy(const float* x, float* y, long long n, long long c, long long pixels, long long ldy, long long off,
               cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((pixels + 127) / 128), static_cast<unsigned>((c + 31) / 32),
                  static_cast<unsigned>(n));
  const bool vl = pixels % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const bool vs = c % 4 == 0 && ldy % 4 == 0 && off % 4 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const unsigned na = static_cast<unsigned>(c), ld = static_cast<unsigned>(ldy), o = static_cast<unsigned>(off);
  const unsigned long long nb = static_cast<unsigned long long>(pixels);
  if (vl && vs)
    ff_cl_copy_kernel<TF32, true, true><<<grid, dim3(32, 8), 0, s>>>(x, y, na, nb, ld, o);
  else if (vl)
    ff_cl_copy_kernel<TF32, true, false><<<grid, dim3(32, 8), 0, s>>>(x, y, na, nb, ld, o);
  else if (vs)
    ff_cl_copy_kernel<TF32, false, true><<<grid, dim3(32, 8), 0, s>>>(x, y, na, nb, ld, o);
  else
    ff_cl_copy_kernel<TF32, false, false><<<grid, dim3(32, 8), 0, s>>>(x, y, na, nb, ld, o);
  return static_cast<int>(cudaGetLastError());
}
"""

# (the default text, the variant's): the three launches of the copy to channels-last
TO_CHANNELS_LAST = (r"""int ff_to_channels_last(const float* x, float* y, long long n, long long c, long long pixels, void* stream) {
  const dim3 grid(static_cast<unsigned>((pixels + 31) / 32), static_cast<unsigned>((c + 31) / 32),
                  static_cast<unsigned>(n));
  ff_transpose_kernel<<<grid, dim3(32, 8), 0, static_cast<cudaStream_t>(stream)>>>(
      x, y, static_cast<unsigned>(c), static_cast<unsigned long long>(pixels), static_cast<unsigned>(c), 0u);
  return static_cast<int>(cudaGetLastError());
}
""", WIDE_KERNEL + r"""int ff_to_channels_last(const float* x, float* y, long long n, long long c, long long pixels, void* stream) {
  return ff_cl_copy<false>(x, y, n, c, pixels, c, 0, static_cast<cudaStream_t>(stream));
}
""")
INTO_CHANNELS_LAST = (r"""  const dim3 grid(static_cast<unsigned>((pixels + 31) / 32), static_cast<unsigned>((c + 31) / 32),
                  static_cast<unsigned>(n));
  ff_transpose_kernel<<<grid, dim3(32, 8), 0, static_cast<cudaStream_t>(stream)>>>(
      x, y, static_cast<unsigned>(c), static_cast<unsigned long long>(pixels), static_cast<unsigned>(c_total),
      static_cast<unsigned>(c_off));
  return static_cast<int>(cudaGetLastError());
""", r"""  return ff_cl_copy<false>(x, y, n, c, pixels, c_total, c_off, static_cast<cudaStream_t>(stream));
""")
CONV_INPUT = (r"""    ff_transpose_kernel<unsigned, unsigned, true><<<dim3((DHW + 31) / 32, (T::C + 31) / 32, T::N), dim3(32, 8), 0, s>>>(
        T::x(a), T::ws(a) + packed, T::C, DHW, T::C, 0u);
""", r"""    ff_cl_copy<true>(T::x(a), T::ws(a) + packed, T::N, T::C, DHW, T::C, 0, s);
""")


def wide() -> bool:
    """FUSEFORGE_CL_COPY: 32 (the default, the 32 x 32 tile) or 128 (the variant)."""
    v = os.environ.get("FUSEFORGE_CL_COPY", "") or "32"
    if v not in ("32", "128"):
        raise ConfigError(f"FUSEFORGE_CL_COPY={v!r}: expected 32 or 128")
    return v == "128"


def with_variant(cuda: str) -> str:
    """The generated CUDA text with its copies to channels-last as FUSEFORGE_CL_COPY says."""
    if not wide():
        return cuda
    for old, new in (TO_CHANNELS_LAST, INTO_CHANNELS_LAST, CONV_INPUT):
        cuda = cuda.replace(old, new)
    return cuda
