// Softmax over the channels of a channels-last tensor, written NCHW, as level2/022 runs it after its
// convolution (then + bias[c], x 2, sigmoid): x [N=64][P=126*126][C=64] in memory, y [N][C][P].
// fuseforge's row kernel (outer schedule: 32 pixels a block side by side, 8 threads down each
// pixel's 64 channels, the row held in registers) reads each pixel's 256 contiguous bytes 4 bytes
// per thread: a warp's load touches 32 lines. Does staging the block's 32 x 256 bytes through
// shared memory with 16-byte loads pay? torch.compile ran the problem in 0.52 ms, fuseforge 0.62
// (bench/suite_full, H100).
//
//   outer    the generated form: thread (x, y) loads channels y, y + 8, ... of pixel x from memory
//   staged   the block's 32 pixels x 64 channels loaded with float4 (coalesced) into shared memory,
//            then the same threads read their channels from there
//   copy     the same bytes moved (read channels-last, write NCHW through the tile): the floor
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a cl_softmax.cu -o cl_softmax && ./cl_softmax
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

constexpr int N = 64, P = 126 * 126, C = 64, TX = 32, TY = 8, PER = C / TY;

// the block's 32 pixels: column reductions through shared memory, as ff_team_column does
__device__ float column_max(float v, float (*part)[TX]) {
  __syncthreads();
  part[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  float r = part[0][threadIdx.x];
  for (int k = 1; k < TY; ++k) r = fmaxf(r, part[k][threadIdx.x]);
  return r;
}
__device__ float column_sum(float v, float (*part)[TX]) {
  __syncthreads();
  part[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  float r = part[0][threadIdx.x];
  for (int k = 1; k < TY; ++k) r += part[k][threadIdx.x];
  return r;
}

// softmax of the thread's PER channels (held in v), the epilogue, the NCHW writes
__device__ void finish(float (&v)[PER], float* __restrict__ y, const float* __restrict__ bias, int n, int p,
                       bool active, float (*part)[TX]) {
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < PER; ++k) m = fmaxf(m, v[k]);
  m = column_max(m, part);
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < PER; ++k) { v[k] = expf(v[k] - m); s += v[k]; }
  s = column_sum(s, part);
  const float inv = 1.f / s;
  if (!active) return;
#pragma unroll
  for (int k = 0; k < PER; ++k) {
    const int c = threadIdx.y + k * TY;
    const float t = (v[k] * inv + bias[c]) * 2.f;
    y[((size_t)n * C + c) * P + p] = 1.f / (1.f + expf(-t));
  }
}

// The block's 32 pixels x 64 channels (512 float4, 2 a thread, consecutive threads consecutive 16
// bytes) into shared memory, a row a pixel.
__device__ void stage_rows(const float* __restrict__ x, size_t row0, float (*rows)[C + 1]) {
  const int t = threadIdx.y * TX + threadIdx.x;
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int q = t + k * 256, r = q / (C / 4), c4 = q % (C / 4);
    float4 f = make_float4(0.f, 0.f, 0.f, 0.f);
    if (row0 + r < (size_t)N * P) f = reinterpret_cast<const float4*>(x + (row0 + r) * C)[c4];
    rows[r][c4 * 4] = f.x; rows[r][c4 * 4 + 1] = f.y; rows[r][c4 * 4 + 2] = f.z; rows[r][c4 * 4 + 3] = f.w;
  }
  __syncthreads();
}

__global__ void __launch_bounds__(256) outer_kernel(const float* __restrict__ x, float* __restrict__ y,
                                                    const float* __restrict__ bias) {
  __shared__ float part[TY][TX];
  const size_t row = (size_t)blockIdx.x * TX + threadIdx.x;   // pixel of all images
  const bool active = row < (size_t)N * P;
  const int n = int(row / P), p = int(row % P);
  float v[PER];
#pragma unroll
  for (int k = 0; k < PER; ++k) v[k] = active ? x[row * C + threadIdx.y + k * TY] : 0.f;
  finish(v, y, bias, n, p, active, part);
}

__global__ void __launch_bounds__(256) staged_kernel(const float* __restrict__ x, float* __restrict__ y,
                                                     const float* __restrict__ bias) {
  __shared__ float part[TY][TX];
  __shared__ float rows[TX][C + 1];
  const size_t row0 = (size_t)blockIdx.x * TX;
  stage_rows(x, row0, rows);
  const size_t row = row0 + threadIdx.x;
  const bool active = row < (size_t)N * P;
  const int n = int(row / P), p = int(row % P);
  float v[PER];
#pragma unroll
  for (int k = 0; k < PER; ++k) v[k] = rows[threadIdx.x][threadIdx.y + k * TY];
  finish(v, y, bias, n, p, active, part);
}

__global__ void __launch_bounds__(256) copy_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float rows[TX][C + 1];
  const size_t row0 = (size_t)blockIdx.x * TX;
  stage_rows(x, row0, rows);
  const size_t row = row0 + threadIdx.x;
  if (row >= (size_t)N * P) return;
  const int n = int(row / P), p = int(row % P);
#pragma unroll
  for (int k = 0; k < PER; ++k) {
    const int c = threadIdx.y + k * TY;
    y[((size_t)n * C + c) * P + p] = rows[threadIdx.x][c];
  }
}

int main() {
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const size_t n = (size_t)N * P * C;
  float *x, *y, *bias, *flush;
  CK(cudaMalloc(&x, n * 4)); CK(cudaMalloc(&y, n * 4)); CK(cudaMalloc(&bias, C * 4));
  const size_t flush_bytes = 256u << 20;
  CK(cudaMalloc(&flush, flush_bytes));
  std::vector<float> h(n), hb(C);
  unsigned s = 7;
  for (size_t i = 0; i < n; ++i) { s = s * 1664525u + 1013904223u; h[i] = float(s >> 8) / 16777216.f * 6.f - 3.f; }
  for (int c = 0; c < C; ++c) hb[c] = 0.05f * c - 1.f;
  CK(cudaMemcpy(x, h.data(), n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(bias, hb.data(), C * 4, cudaMemcpyHostToDevice));
  const unsigned blocks = unsigned(((size_t)N * P + TX - 1) / TX);
  auto time = [&](const std::function<void()>& f) {
    std::vector<float> t;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    for (int k = 0; k < 40; ++k) {
      CK(cudaMemsetAsync(flush, k, flush_bytes));
      CK(cudaEventRecord(e0));
      f();
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      float ms;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      if (k >= 5) t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  std::vector<float> ha(n), hs(n);
  outer_kernel<<<blocks, dim3(TX, TY)>>>(x, y, bias);
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(ha.data(), y, n * 4, cudaMemcpyDeviceToHost));
  staged_kernel<<<blocks, dim3(TX, TY)>>>(x, y, bias);
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(hs.data(), y, n * 4, cudaMemcpyDeviceToHost));
  float err = 0.f;
  for (size_t i = 0; i < n; i += 5) err = std::max(err, std::fabs(ha[i] - hs[i]));
  printf("%s; staged vs outer: max |diff| %.1e (every 5th element)\n", prop.name, err);
  for (int round = 0; round < 2; ++round) {
    printf("round %d  outer  %.4f ms\n", round, time([&] { outer_kernel<<<blocks, dim3(TX, TY)>>>(x, y, bias); }));
    printf("round %d  staged %.4f ms\n", round, time([&] { staged_kernel<<<blocks, dim3(TX, TY)>>>(x, y, bias); }));
    printf("round %d  copy   %.4f ms\n", round, time([&] { copy_kernel<<<blocks, dim3(TX, TY)>>>(x, y); }));
  }
  return 0;
}
