// Batch norm (training statistics) + ReLU over a channels-last tensor, as level2/001 runs it after its
// convolution: [N=64, H=128, W=128, C=64] in memory (NHWC, 268 MB), rows = the C channels, a row's
// elements = the N*H*W pixels (stride C). Does one cooperative launch beat the launches we make?
//
//   three    what fuseforge generates (11th session): partials (32 channels x 8 threads a block, 528
//            splits), a merge launch of a block per channel that writes mean and rstd, then the
//            normalize + ReLU (a pointwise launch, 4 channels a thread)
//   three_r  the same, the normalize's blocks taken in reverse order (the statistics' last lines
//            may still be in L2)
//   coop     one cooperative launch of the blocks the GPU holds: the same partials (a block takes
//            work items in turn), a grid barrier, a block per channel merges, a barrier, normalize
//   coop_r   coop, the normalize pass in reverse order
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a bn_coop.cu -o bn_coop && ./bn_coop
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

constexpr int C = 64, P = 64 * 128 * 128, TX = 32, TY = 8, S = 528, CHUNK = (P + S - 1) / S, TILES = C / TX;
constexpr int MERGE_THREADS = 256;

struct Welford {
  float mean, m2, n;
  __device__ static Welford init() { return {0.f, 0.f, 0.f}; }
  __device__ void merge(const Welford& o) {
    if (o.n == 0.f) return;
    if (n == 0.f) { *this = o; return; }
    const float nn = n + o.n, d = o.mean - mean, w = o.n / nn;
    mean += d * w; m2 += o.m2 + d * d * n * w; n = nn;
  }
  __device__ void add4(const float (&x)[4], int nb) {
    if (nb == 0) return;
    float s = 0.f, q = 0.f;
    for (int j = 0; j < 4; ++j) if (j < nb) s += x[j];
    const float m = s / float(nb);
    for (int j = 0; j < 4; ++j) if (j < nb) q += (x[j] - m) * (x[j] - m);
    merge({m, q, float(nb)});
  }
  __device__ Welford shfl_down(int d) const {
    return {__shfl_down_sync(~0u, mean, d), __shfl_down_sync(~0u, m2, d), __shfl_down_sync(~0u, n, d)};
  }
};

// One (tile, split) work item: the partial of 32 channels over a chunk of pixels (256 threads).
__device__ void partials(const float* __restrict__ x, Welford* ws, int item, Welford (*part)[TX]) {
  const int tile = item / S, split = item % S;
  const int c = tile * TX + threadIdx.x;
  const int r0 = split * CHUNK, r1 = min(r0 + CHUNK, P);
  Welford acc = Welford::init();
  for (int rb = r0 + threadIdx.y; rb < r1; rb += 4 * TY) {
    float v[4];
    int nb = 0;
#pragma unroll
    for (int u = 0; u < 4; ++u) { const int r = rb + u * TY; if (r < r1) { v[u] = x[(size_t)r * C + c]; nb = u + 1; } }
    acc.add4(v, nb);
  }
  __syncthreads();
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0) {
    Welford r = part[0][threadIdx.x];
    for (int k = 1; k < TY; ++k) r.merge(part[k][threadIdx.x]);
    ws[c * S + split] = r;
  }
}

// Channel c's S partials merged by the block's 256 threads (t: linear id) into mean and rstd.
__device__ void merge_channel(const Welford* ws, float2* stats, int c, int t, Welford* red) {
  Welford acc = Welford::init();
  for (int k = t; k < S; k += MERGE_THREADS) {   // other blocks' partials: from L2, not this SM's L1
    const float* p = reinterpret_cast<const float*>(ws + c * S + k);
    acc.merge({__ldcg(p), __ldcg(p + 1), __ldcg(p + 2)});
  }
  for (int d = 16; d > 0; d >>= 1) acc.merge(acc.shfl_down(d));
  __syncthreads();
  if ((t & 31) == 0) red[t >> 5] = acc;
  __syncthreads();
  if (t == 0) {
    Welford r = red[0];
    for (int k = 1; k < MERGE_THREADS / 32; ++k) r.merge(red[k]);
    stats[c] = make_float2(r.mean, rsqrtf(r.m2 / r.n + 1e-5f));
  }
}

// A channel's scale and shift, rstd * w and b - mean * rstd * w, in shared memory (written by other
// blocks: read from L2).
__device__ void load_affine(const float2* stats, const float* w, const float* b, float2* affine) {
  const int t = threadIdx.y * blockDim.x + threadIdx.x;
  if (t < C) {
    const float mean = __ldcg(&stats[t].x), rstd = __ldcg(&stats[t].y);
    affine[t] = make_float2(rstd * w[t], b[t] - mean * rstd * w[t]);
  }
  __syncthreads();
}

// 4 consecutive elements (4 channels of a pixel) of item i: relu(x * scale + shift)
__device__ void normalize4(const float* __restrict__ x, float* __restrict__ y, const float2* affine, long long i) {
  const float4 v = reinterpret_cast<const float4*>(x)[i];
  const int c0 = int((i * 4) % C);
  float r[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) r[j] = fmaxf(r[j] * affine[c0 + j].x + affine[c0 + j].y, 0.f);
  reinterpret_cast<float4*>(y)[i] = make_float4(r[0], r[1], r[2], r[3]);
}

__global__ void __launch_bounds__(256) partials_kernel(const float* __restrict__ x, Welford* ws) {
  __shared__ Welford part[TY][TX];
  partials(x, ws, blockIdx.x, part);
}

__global__ void __launch_bounds__(MERGE_THREADS) merge_kernel(const Welford* ws, float2* stats) {
  __shared__ Welford red[MERGE_THREADS / 32];
  merge_channel(ws, stats, blockIdx.x, threadIdx.x, red);
}

template <bool REVERSE>
__global__ void __launch_bounds__(256) normalize_kernel(const float* __restrict__ x, float* __restrict__ y,
                                                        const float2* stats, const float* w, const float* b) {
  __shared__ float2 affine[C];
  load_affine(stats, w, b, affine);
  const long long n4 = (long long)P * C / 4;
  const long long blk = REVERSE ? gridDim.x - 1 - blockIdx.x : blockIdx.x;
  const long long i = blk * 256 + threadIdx.x;
  if (i < n4) normalize4(x, y, affine, i);
}

// The grid's blocks meet here (all resident: a cooperative launch). `count` zeroed before the launch.
__device__ void grid_barrier(unsigned* count, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0 && threadIdx.y == 0) {
    __threadfence();
    atomicAdd(count, 1u);
    while (*reinterpret_cast<volatile unsigned*>(count) < target) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
}

template <bool REVERSE>
__global__ void __launch_bounds__(256) coop_kernel(const float* __restrict__ x, float* __restrict__ y, Welford* ws,
                                                   float2* stats, const float* w, const float* b, unsigned* count) {
  __shared__ Welford part[TY][TX];
  __shared__ Welford red[MERGE_THREADS / 32];
  for (int item = blockIdx.x; item < TILES * S; item += gridDim.x) partials(x, ws, item, part);
  grid_barrier(count, gridDim.x);
  const int t = threadIdx.y * TX + threadIdx.x;
  for (int c = blockIdx.x; c < C; c += gridDim.x) merge_channel(ws, stats, c, t, red);
  grid_barrier(count, 2 * gridDim.x);
  __shared__ float2 affine[C];
  load_affine(stats, w, b, affine);
  const long long n4 = (long long)P * C / 4, stride = (long long)gridDim.x * 256;
  const long long first = (long long)blockIdx.x * 256 + t;
  if (!REVERSE) {
    for (long long i = first; i < n4; i += stride) normalize4(x, y, affine, i);
  } else {
    for (long long i = n4 - 1 - first; i >= 0; i -= stride) normalize4(x, y, affine, i);
  }
}

int main() {
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const size_t n = (size_t)P * C;
  float *x, *y, *y_ref, *w, *b, *flush;
  Welford* ws;
  float2* stats;
  unsigned* count;
  CK(cudaMalloc(&x, n * 4)); CK(cudaMalloc(&y, n * 4)); CK(cudaMalloc(&y_ref, n * 4));
  CK(cudaMalloc(&w, C * 4)); CK(cudaMalloc(&b, C * 4)); CK(cudaMalloc(&ws, sizeof(Welford) * C * S));
  CK(cudaMalloc(&stats, sizeof(float2) * C)); CK(cudaMalloc(&count, 4));
  const size_t flush_bytes = 256u << 20;
  CK(cudaMalloc(&flush, flush_bytes));
  std::vector<float> h(n), hw(C), hb(C);
  unsigned s = 12345;
  for (size_t i = 0; i < n; ++i) { s = s * 1664525u + 1013904223u; h[i] = float(s >> 8) / 16777216.f * 4.f - 1.5f; }
  for (int c = 0; c < C; ++c) { hw[c] = 0.5f + c * 0.01f; hb[c] = 0.1f - c * 0.003f; }
  CK(cudaMemcpy(x, h.data(), n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(w, hw.data(), C * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(b, hb.data(), C * 4, cudaMemcpyHostToDevice));

  int per_sm = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, coop_kernel<false>, 256, 0));
  const unsigned blocks = per_sm * prop.multiProcessorCount;
  const unsigned norm_blocks = unsigned((n / 4 + 255) / 256);

  auto three = [&](bool rev) {
    partials_kernel<<<TILES * S, dim3(TX, TY)>>>(x, ws);
    merge_kernel<<<C, MERGE_THREADS>>>(ws, stats);
    if (rev) normalize_kernel<true><<<norm_blocks, 256>>>(x, y, stats, w, b);
    else normalize_kernel<false><<<norm_blocks, 256>>>(x, y, stats, w, b);
  };
  auto coop = [&](bool rev) {
    CK(cudaMemsetAsync(count, 0, 4));
    void* args[] = {&x, &y, &ws, &stats, &w, &b, &count};
    CK(cudaLaunchCooperativeKernel(rev ? (const void*)coop_kernel<true> : (const void*)coop_kernel<false>,
                                   dim3(blocks), dim3(TX, TY), args, 0, 0));
  };
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
  std::vector<float> hr(n), hy(n);
  three(false);
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(hr.data(), y, n * 4, cudaMemcpyDeviceToHost));
  struct V { const char* name; std::function<void()> f; };
  std::vector<V> vs = {{"three", [&] { three(false); }}, {"three_r", [&] { three(true); }},
                       {"coop", [&] { coop(false); }}, {"coop_r", [&] { coop(true); }}};
  printf("%s, %d SMs; coop: %u blocks of 256 (%d an SM)\n", prop.name, prop.multiProcessorCount, blocks, per_sm);
  for (int round = 0; round < 2; ++round)
    for (auto& v : vs) {
      const float ms = time(v.f);
      CK(cudaMemset(y, 0, n * 4));
      v.f();
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(hy.data(), y, n * 4, cudaMemcpyDeviceToHost));
      float err = 0.f;
      for (size_t i = 0; i < n; i += 7) err = std::max(err, std::fabs(hy[i] - hr[i]));   // every 7th
      printf("round %d  %-8s %.4f ms   max |y - three| %.1e\n", round, v.name, ms, err);
    }
  return 0;
}
