// Batch-norm statistics over a channels-last tensor: the outer schedule's split rows, first launch
// (each block folds its chunk of pixels for its tile of channels into Welford partials).
// Micro-benchmark, H100. [N=64, H=128, W=128, C] in memory (NHWC), rows = the C channels, a row's
// elements = the N*H*W pixels (stride C).
//
//   tile32   32 channels a block x 8 threads a row (generated: C = 64 gives 2 tiles, each
//            block reads half of every pixel's 256 bytes)
//   tileC    C channels a block (every pixel's channels read whole: the block's chunk contiguous)
//   v4       4 channels a thread (16-byte loads), C/4 threads across, the rest down the pixels
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a bn_cl.cu -o bn_cl && ./bn_cl
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

struct Welford {
  float mean, m2, n;
  __device__ static Welford init() { return {0.f, 0.f, 0.f}; }
  __device__ void merge(const Welford& o) {
    if (o.n == 0.f) return;
    if (n == 0.f) { *this = o; return; }
    const float nn = n + o.n, d = o.mean - mean, w = o.n / nn;
    mean += d * w; m2 += o.m2 + d * d * n * w; n = nn;
  }
  __device__ void add4(const float (&x)[4], int nb) {   // as ff_welford_add_batch
    if (nb == 0) return;
    float s = 0.f, q = 0.f;
    for (int j = 0; j < 4; ++j) if (j < nb) s += x[j];
    const float m = s / float(nb);
    for (int j = 0; j < 4; ++j) if (j < nb) q += (x[j] - m) * (x[j] - m);
    merge({m, q, float(nb)});
  }
};

constexpr int P = 64 * 128 * 128;   // pixels

// TX channels side by side, TY threads down a chunk of pixels, BATCH loads in flight
template <int C, int TX, int TY>
__global__ void __launch_bounds__(TX * TY) stats_kernel(const float* __restrict__ x, Welford* __restrict__ ws,
                                                        int splits, int chunk) {
  __shared__ Welford part[TY][TX];
  const int tile = blockIdx.x / splits, split = blockIdx.x % splits;
  const int c = tile * TX + threadIdx.x;
  const int r0 = split * chunk, r1 = min(r0 + chunk, P);
  Welford acc = Welford::init();
  for (int rb = r0 + threadIdx.y; rb < r1; rb += 4 * TY) {
    float v[4];
    int nb = 0;
#pragma unroll
    for (int u = 0; u < 4; ++u) { const int r = rb + u * TY; if (r < r1) { v[u] = x[(size_t)r * C + c]; nb = u + 1; } }
    acc.add4(v, nb);
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0) {
    Welford t = part[0][threadIdx.x];
    for (int k = 1; k < TY; ++k) t.merge(part[k][threadIdx.x]);
    ws[c * splits + split] = t;
  }
}

// 4 channels a thread: TX = C / 4 threads across
template <int C, int TY>
__global__ void __launch_bounds__(C / 4 * TY) stats_v4_kernel(const float* __restrict__ x, Welford* __restrict__ ws,
                                                              int splits, int chunk) {
  constexpr int TX = C / 4;
  __shared__ Welford part[TY][C];
  const int split = blockIdx.x;
  const int r0 = split * chunk, r1 = min(r0 + chunk, P);
  Welford acc[4] = {Welford::init(), Welford::init(), Welford::init(), Welford::init()};
  for (int rb = r0 + threadIdx.y; rb < r1; rb += 4 * TY) {
    float4 v[4];
    int nb = 0;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int r = rb + u * TY;
      if (r < r1) { v[u] = *reinterpret_cast<const float4*>(x + (size_t)r * C + threadIdx.x * 4); nb = u + 1; }
    }
    float a0[4] = {v[0].x, v[1].x, v[2].x, v[3].x}, a1[4] = {v[0].y, v[1].y, v[2].y, v[3].y};
    float a2[4] = {v[0].z, v[1].z, v[2].z, v[3].z}, a3[4] = {v[0].w, v[1].w, v[2].w, v[3].w};
    acc[0].add4(a0, nb); acc[1].add4(a1, nb); acc[2].add4(a2, nb); acc[3].add4(a3, nb);
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) part[threadIdx.y][threadIdx.x * 4 + j] = acc[j];
  __syncthreads();
  for (int c = threadIdx.y * TX + threadIdx.x; c < C; c += TX * TY) {
    Welford t = part[0][c];
    for (int k = 1; k < TY; ++k) t.merge(part[k][c]);
    ws[c * splits + split] = t;
  }
}

char* g_flush;
constexpr size_t FLUSH = 128 << 20;

float time_ms(const std::function<void()>& f, int trials = 30) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  std::vector<float> t;
  f();
  for (int i = 0; i < trials; ++i) {
    CK(cudaMemsetAsync(g_flush, i, FLUSH));
    CK(cudaEventRecord(a));
    f();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms; CK(cudaEventElapsedTime(&ms, a, b)); t.push_back(ms);
  }
  CK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

__global__ void fill_kernel(float* x, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u; h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
    x[i] = (h & 0xffffff) / float(1 << 24) * 4.f - 1.f;
  }
}

// the means of every channel from the partials, to compare the variants
std::vector<double> means(const Welford* ws, int C, int splits) {
  std::vector<Welford> h((size_t)C * splits);
  CK(cudaMemcpy(h.data(), ws, h.size() * sizeof(Welford), cudaMemcpyDeviceToHost));
  std::vector<double> m(C);
  for (int c = 0; c < C; ++c) {
    double s = 0, n = 0;
    for (int k = 0; k < splits; ++k) { s += (double)h[c * splits + k].mean * h[c * splits + k].n; n += h[c * splits + k].n; }
    m[c] = n == P ? s / n : NAN;
  }
  return m;
}

template <int C>
void run(float* x, Welford* ws) {
  const double bytes = 4.0 * P * C;
  std::vector<double> ref;
  auto report = [&](const char* name, int splits, const std::function<void()>& f) {
    CK(cudaMemset(ws, 0, (size_t)C * 2048 * sizeof(Welford)));
    f();
    auto m = means(ws, C, splits);
    double err = 0;
    if (ref.empty()) ref = m;
    for (int c = 0; c < C; ++c) err = std::max(err, std::fabs(m[c] - ref[c]));
    const float ms = time_ms(f);
    printf("C=%-4d %-22s %8.4f ms %7.0f GB/s  mean err %.1e\n", C, name, ms, bytes / ms / 1e6, err);
  };
  {  // generated: 32 channels a block, 8 down, ~1024 blocks in all
    const int tiles = C / 32, splits = std::max(1, 1056 / tiles), chunk = (P + splits - 1) / splits;
    report("tile32 8 (gen)", splits, [&] { stats_kernel<C, 32, 8><<<tiles * splits, dim3(32, 8)>>>(x, ws, splits, chunk); });
  }
  if (C >= 64) {
    const int splits = 1056, chunk = (P + splits - 1) / splits;
    report("tileC", splits, [&] { stats_kernel<C, C, 256 / C><<<splits, dim3(C, 256 / C)>>>(x, ws, splits, chunk); });
  }
  for (int splits : {528, 1056, 2112}) {
    const int chunk = (P + splits - 1) / splits;
    char name[32]; snprintf(name, sizeof name, "v4 x16 s%d", splits);
    report(name, splits, [&] { stats_v4_kernel<C, 16><<<splits, dim3(C / 4, 16)>>>(x, ws, splits, chunk); });
  }
  {
    const int splits = 1056, chunk = (P + splits - 1) / splits;
    report("v4 x32 s1056", splits, [&] { stats_v4_kernel<C, 32><<<splits, dim3(C / 4, 32)>>>(x, ws, splits, chunk); });
  }
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  float* x;
  Welford* ws;
  CK(cudaMalloc(&x, (size_t)P * 128 * 4));
  CK(cudaMalloc(&ws, (size_t)128 * 2112 * sizeof(Welford)));
  CK(cudaMalloc(&g_flush, FLUSH));
  fill_kernel<<<1024, 256>>>(x, (size_t)P * 128);
  CK(cudaDeviceSynchronize());
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("%s\n", prop.name);
  run<64>(x, ws);
  run<128>(x, ws);
  printf("done\n");
  return 0;
}
