"""cl_copy: the NCHW -> channels-last copy of the generated code (a convolution's input for cuDNN
or for the generated convolution, rounded to TF32 for the latter; a piece of a cat written into its
channels-last slice): 32 channels x 128 pixels a block, the pixels read and the channels written as
float4 where sizes and addresses allow. cpp.CUDA_PRELUDE holds it; the copy back to NCHW keeps the
32 x 32 tile of ff_transpose_kernel (its tile runs over the channels, often 32 or fewer).

Measured on one H200 (bench/session28/ab_copy, against the 32 x 32 tile it replaced): the copy
alone 0.0687 ms against 0.0748 on [64, 32, 128, 128] (torch.compile's 0.0683), faster on the
eight shapes of scripts/transpose_bench.py but [32, 32, 15, 15] (0.0060 against 0.0055); in the
generated files of 16 suite problems 0.94-0.997 of the time on 13, level3/009 and 017 1.004 and
1.001, level1/035 1.05 in one order and 0.999 with both orders (its cuDNN kernel takes one of two
times, whichever the copy).
"""
from __future__ import annotations

KERNEL = r"""// x [n][c][pixels] copied into channels off.. of y [n][pixels][ldy]: a block of 32 channels x 128
// pixels (16 floats a thread in flight); TF32: each value rounded to TF32 as it is written (a
// generated convolution's input); VLOAD: the pixels read as float4 (their count a multiple of 4, x
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
