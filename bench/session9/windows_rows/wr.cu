// Pooling windows and outer-schedule rows: where do the generated kernels lose to torch.compile?
// Micro-benchmark, H100; every variant is checked against the first of its group (the form the
// generator emits, which the suite checks against PyTorch).
//
//   pooling (level1/084 avg 3x3 s2 p1 ceil, no pad count, [16,64,256,256]; level1/081 max 3x3 s2
//   ceil, [16,64,255,255]):
//     one      one output per thread (generated)
//     colR     R outputs down a column per thread, the 2R+1 input rows loaded once
//     ilpR     R outputs per thread, R blocks' worth apart (more loads in flight, same loads)
//   outer rows ([64, 2048, 512] reduced over dim 1: 32768 rows of 2048 at stride 512):
//     var/sum/max  tx x ty threads (rows x a row's split), BATCH loads in flight (generated:
//                  32 x 16, 4); v4: a thread takes 4 adjacent rows with one 16-byte load
//     l1 (x / sum|x| over dim 1, level1/077): generated two passes from memory, or the thread's
//                  share of its row held in registers between the passes (tx x ty, share PER)
//   frobenius (x / ||x||, [16,64,256,256]): two launches, partials then merge + scale
//     fro        generated (1024 splits of 1024 threads)
//     fro_keep   the last KEEP splits of the first launch read with an L2 evict_last policy,
//                the second launch walking the splits in reverse (finds them in L2?)
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a wr.cu -o wr && ./wr
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

// ---------------------------------------------------------------- baselines
__global__ void copy_kernel(const float4* __restrict__ x, float4* __restrict__ y, size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) y[i] = x[i];
}
__global__ void read_kernel(const float4* __restrict__ x, float* __restrict__ y, size_t n4) {
  float s = 0.f;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    const float4 v = x[i]; s += v.x + v.y + v.z + v.w;
  }
  if (s == 12345.f) y[0] = s;
}

// U 16-byte loads in flight per thread, each block a contiguous span
template <int U>
__global__ void __launch_bounds__(1024) read_u_kernel(const float4* __restrict__ x, float* __restrict__ y, size_t n4) {
  float s = 0.f;
  for (size_t b = blockIdx.x * (size_t)1024 * U; b < n4; b += (size_t)gridDim.x * 1024 * U) {
    float4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) { const size_t i = b + u * 1024 + threadIdx.x; v[u] = i < n4 ? x[i] : make_float4(0.f, 0.f, 0.f, 0.f); }
#pragma unroll
    for (int u = 0; u < U; ++u) s += v[u].x + v[u].y + v[u].z + v[u].w;
  }
  if (s == 12345.f) y[0] = s;
}

// ---------------------------------------------------------------- pooling
template <int H, int W, int OH, int OW, int P, bool MAX>
__device__ __forceinline__ float pool_one(const float* __restrict__ x, unsigned i) {
  const int o0 = (i / OW) % OH, o1 = i % OW;
  const unsigned plane = i / (OH * OW) * (H * W);
  const int s0 = o0 * 2 - P, s1 = o1 * 2 - P;
  float acc = MAX ? -INFINITY : 0.f;
#pragma unroll
  for (int k0 = 0; k0 < 3; ++k0) {
    const int p0 = s0 + k0;
    if (p0 < 0 || p0 >= H) continue;
#pragma unroll
    for (int k1 = 0; k1 < 3; ++k1) {
      const int p1 = s1 + k1;
      if (p1 < 0 || p1 >= W) continue;
      const float v = x[plane + p0 * W + p1];
      acc = MAX ? ((acc != acc || acc > v) ? acc : v) : acc + v;
    }
  }
  if (MAX) return acc;
  const int e0 = min(s0 + 3, H + P), e1 = min(s1 + 3, W + P);
  const int cnt = (min(e0, H) - max(s0, 0)) * (min(e1, W) - max(s1, 0));
  return cnt > 0 ? acc / float(cnt) : 0.f;
}

template <int H, int W, int OH, int OW, int P, bool MAX>
__global__ void __launch_bounds__(256) pool_one_kernel(const float* __restrict__ x, float* __restrict__ y, unsigned n) {
  const unsigned i = blockIdx.x * 256u + threadIdx.x;
  if (i < n) y[i] = pool_one<H, W, OH, OW, P, MAX>(x, i);
}

template <int H, int W, int OH, int OW, int P, bool MAX, int R>
__global__ void __launch_bounds__(256) pool_ilp_kernel(const float* __restrict__ x, float* __restrict__ y, unsigned n) {
  const unsigned base = blockIdx.x * (256u * R) + threadIdx.x;
  float v[R];
#pragma unroll
  for (int r = 0; r < R; ++r) if (base + r * 256u < n) v[r] = pool_one<H, W, OH, OW, P, MAX>(x, base + r * 256u);
#pragma unroll
  for (int r = 0; r < R; ++r) if (base + r * 256u < n) y[base + r * 256u] = v[r];
}

// R outputs down a column: thread -> (plane, row group g, column o1), columns fastest
template <int H, int W, int OH, int OW, int P, bool MAX, int R>
__global__ void __launch_bounds__(256) pool_col_kernel(const float* __restrict__ x, float* __restrict__ y, unsigned n) {
  constexpr int G = (OH + R - 1) / R;
  const unsigned i = blockIdx.x * 256u + threadIdx.x;   // over planes * G * OW
  if (i >= n) return;
  const int o1 = i % OW, g = (i / OW) % G;
  const unsigned plane = i / (OW * G);
  const float* xp = x + (size_t)plane * H * W;
  const int s1 = o1 * 2 - P, r0 = g * R * 2 - P;
  float rows[2 * R + 1][3];
#pragma unroll
  for (int q = 0; q < 2 * R + 1; ++q) {
    const int p0 = r0 + q;
#pragma unroll
    for (int k1 = 0; k1 < 3; ++k1) {
      const int p1 = s1 + k1;
      rows[q][k1] = (p0 >= 0 && p0 < H && p1 >= 0 && p1 < W) ? xp[p0 * W + p1] : (MAX ? -INFINITY : 0.f);
    }
  }
  const int e1 = min(s1 + 3, W + P);
  const int cols = min(e1, W) - max(s1, 0);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int o0 = g * R + r;
    if (o0 >= OH) break;
    float acc = MAX ? -INFINITY : 0.f;
#pragma unroll
    for (int k0 = 0; k0 < 3; ++k0)
#pragma unroll
      for (int k1 = 0; k1 < 3; ++k1) {
        const float v = rows[2 * r + k0][k1];
        acc = MAX ? ((acc != acc || acc > v) ? acc : v) : acc + v;
      }
    float out = acc;
    if (!MAX) {
      const int s0 = o0 * 2 - P, e0 = min(s0 + 3, H + P);
      const int cnt = (min(e0, H) - max(s0, 0)) * cols;
      out = cnt > 0 ? acc / float(cnt) : 0.f;
    }
    y[((size_t)plane * OH + o0) * OW + o1] = out;
  }
}

// ---------------------------------------------------------------- outer rows
struct Welford {
  float mean, m2, n;
  __device__ static Welford init() { return {0.f, 0.f, 0.f}; }
  __device__ void add(float x) { n += 1.f; const float d = x - mean; mean += d / n; m2 += d * (x - mean); }
  __device__ void merge(const Welford& o) {
    if (o.n == 0.f) return;
    if (n == 0.f) { *this = o; return; }
    const float nn = n + o.n, d = o.mean - mean, w = o.n / nn;
    mean += d * w; m2 += o.m2 + d * d * n * w; n = nn;
  }
  __device__ float result(float len) const { return m2 / (len - 1.f); }
};
// Welford over a batch of 4 at once: the batch's mean and M2 exactly, merged with Chan's formula
// (one division per 4 elements instead of one per element)
struct Welford4 : Welford {
  __device__ static Welford4 init() { return {Welford::init()}; }
  __device__ void add4(const float (&v)[4]) {
    const float m4 = (v[0] + v[1] + v[2] + v[3]) * 0.25f;
    float q = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) q += (v[j] - m4) * (v[j] - m4);
    const float nn = n + 4.f, d = m4 - mean, w = 4.f / nn;
    mean += d * w; m2 += q + d * d * n * w; n = nn;
  }
};
struct Sum {
  float v;
  __device__ static Sum init() { return {0.f}; }
  __device__ void add(float x) { v += x; }
  __device__ void merge(const Sum& o) { v += o.v; }
  __device__ float result(float) const { return v; }
};
struct Max {
  float v;
  __device__ static Max init() { return {-INFINITY}; }
  __device__ void add(float x) { v = (v != v || v > x) ? v : x; }
  __device__ void merge(const Max& o) { add(o.v); }
  __device__ float result(float) const { return v; }
};

constexpr int B = 64, L = 2048, C = 512;   // [B, L, C] reduced over L

// generated form: tx rows side by side, a row split over ty threads, BATCH loads in flight
template <class A, int TX, int TY, int BATCH>
__global__ void __launch_bounds__(TX * TY) outer_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ A part[TY][TX];
  const unsigned o = blockIdx.x * TX + threadIdx.x;
  const float* xr = x + (o / C) * (size_t)L * C + o % C;
  A acc = A::init();
  for (int rb = threadIdx.y; rb < L; rb += BATCH * TY) {
    float v[BATCH];
#pragma unroll
    for (int u = 0; u < BATCH; ++u) { const int r = rb + u * TY; if (r < L) v[u] = xr[(size_t)r * C]; }
#pragma unroll
    for (int u = 0; u < BATCH; ++u) { const int r = rb + u * TY; if (r < L) acc.add(v[u]); }
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0) {
    A r = part[0][threadIdx.x];
    for (int k = 1; k < TY; ++k) r.merge(part[k][threadIdx.x]);
    y[o] = r.result(float(L));
  }
}

template <int TX, int TY>
__global__ void __launch_bounds__(TX * TY) outer_w4_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ Welford part[TY][TX];
  const unsigned o = blockIdx.x * TX + threadIdx.x;
  const float* xr = x + (o / C) * (size_t)L * C + o % C;
  Welford4 acc = Welford4::init();
  for (int rb = threadIdx.y; rb < L; rb += 4 * TY) {
    float v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) v[u] = xr[(size_t)(rb + u * TY) * C];
    acc.add4(v);
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0) {
    Welford r = part[0][threadIdx.x];
    for (int k = 1; k < TY; ++k) r.merge(part[k][threadIdx.x]);
    y[o] = r.result(float(L));
  }
}

// a thread takes 4 adjacent rows (one 16-byte load); TX threads cover 4 * TX rows
template <class A, int TX, int TY, int BATCH>
__global__ void __launch_bounds__(TX * TY) outer_v4_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ A part[TY][TX][4];
  const unsigned o = (blockIdx.x * TX + threadIdx.x) * 4;
  const float* xr = x + (o / C) * (size_t)L * C + o % C;
  A acc[4] = {A::init(), A::init(), A::init(), A::init()};
  for (int rb = threadIdx.y; rb < L; rb += BATCH * TY) {
    float4 v[BATCH];
#pragma unroll
    for (int u = 0; u < BATCH; ++u) { const int r = rb + u * TY; if (r < L) v[u] = *reinterpret_cast<const float4*>(xr + (size_t)r * C); }
#pragma unroll
    for (int u = 0; u < BATCH; ++u) {
      const int r = rb + u * TY;
      if (r < L) { acc[0].add(v[u].x); acc[1].add(v[u].y); acc[2].add(v[u].z); acc[3].add(v[u].w); }
    }
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) part[threadIdx.y][threadIdx.x][j] = acc[j];
  __syncthreads();
  if (threadIdx.y == 0) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      A r = part[0][threadIdx.x][j];
      for (int k = 1; k < TY; ++k) r.merge(part[k][threadIdx.x][j]);
      y[o + j] = r.result(float(L));
    }
  }
}

// x / sum(|x|) over L: the generated form (two passes from memory)
template <int TX, int TY, int BATCH>
__global__ void __launch_bounds__(TX * TY) l1_mem_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float part[TY][TX];
  const unsigned o = blockIdx.x * TX + threadIdx.x;
  const size_t off = (o / C) * (size_t)L * C + o % C;
  float s = 0.f;
  for (int rb = threadIdx.y; rb < L; rb += BATCH * TY) {
    float v[BATCH];
#pragma unroll
    for (int u = 0; u < BATCH; ++u) v[u] = x[off + (size_t)(rb + u * TY) * C];
#pragma unroll
    for (int u = 0; u < BATCH; ++u) s += fabsf(v[u]);
  }
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  float t = part[0][threadIdx.x];
  for (int k = 1; k < TY; ++k) t += part[k][threadIdx.x];
  for (int rb = threadIdx.y; rb < L; rb += BATCH * TY) {
    float v[BATCH];
#pragma unroll
    for (int u = 0; u < BATCH; ++u) v[u] = x[off + (size_t)(rb + u * TY) * C];
#pragma unroll
    for (int u = 0; u < BATCH; ++u) y[off + (size_t)(rb + u * TY) * C] = v[u] / t;
  }
}

// the same with the thread's PER elements of its row in registers between the passes
template <int TX, int TY>
__global__ void __launch_bounds__(TX * TY) l1_regs_kernel(const float* __restrict__ x, float* __restrict__ y) {
  constexpr int PER = L / TY;
  __shared__ float part[TY][TX];
  const unsigned o = blockIdx.x * TX + threadIdx.x;
  const size_t off = (o / C) * (size_t)L * C + o % C;
  float v[PER];
#pragma unroll
  for (int k = 0; k < PER; ++k) v[k] = x[off + (size_t)(threadIdx.y + k * TY) * C];
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < PER; ++k) s += fabsf(v[k]);
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  float t = part[0][threadIdx.x];
  for (int k = 1; k < TY; ++k) t += part[k][threadIdx.x];
#pragma unroll
  for (int k = 0; k < PER; ++k) y[off + (size_t)(threadIdx.y + k * TY) * C] = v[k] / t;
}

// registers, 4 adjacent rows per thread (16-byte accesses)
template <int TX, int TY>
__global__ void __launch_bounds__(TX * TY) l1_regs_v4_kernel(const float* __restrict__ x, float* __restrict__ y) {
  constexpr int PER = L / TY;
  __shared__ float4 part[TY][TX];
  const unsigned o = (blockIdx.x * TX + threadIdx.x) * 4;
  const size_t off = (o / C) * (size_t)L * C + o % C;
  float4 v[PER];
#pragma unroll
  for (int k = 0; k < PER; ++k) v[k] = *reinterpret_cast<const float4*>(x + off + (size_t)(threadIdx.y + k * TY) * C);
  float4 s = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int k = 0; k < PER; ++k) { s.x += fabsf(v[k].x); s.y += fabsf(v[k].y); s.z += fabsf(v[k].z); s.w += fabsf(v[k].w); }
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  float4 t = part[0][threadIdx.x];
  for (int k = 1; k < TY; ++k) { const float4 p = part[k][threadIdx.x]; t.x += p.x; t.y += p.y; t.z += p.z; t.w += p.w; }
#pragma unroll
  for (int k = 0; k < PER; ++k)
    *reinterpret_cast<float4*>(y + off + (size_t)(threadIdx.y + k * TY) * C) =
        make_float4(v[k].x / t.x, v[k].y / t.y, v[k].z / t.z, v[k].w / t.w);
}

// ---------------------------------------------------------------- frobenius
constexpr size_t FN = 16ull * 64 * 256 * 256;
constexpr int FSPLITS = 1024, FCHUNK = FN / FSPLITS;

__device__ __forceinline__ float4 ld_keep(const float* p, unsigned long long pol) {
  float4 v;
  asm volatile("ld.global.L2::cache_hint.v4.f32 {%0,%1,%2,%3}, [%4], %5;"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p), "l"(pol));
  return v;
}

__device__ float block_sum(float s, float* sm) {
  for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(~0u, s, d);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = s;
  __syncthreads();
  s = (threadIdx.x & 31) < (blockDim.x >> 5) ? sm[threadIdx.x & 31] : 0.f;
  for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(~0u, s, d);
  return __shfl_sync(~0u, s, 0);
}

__global__ void __launch_bounds__(1024) fro_p1(const float* __restrict__ x, float* __restrict__ ws, int keep) {
  __shared__ float sm[32];
  const int split = blockIdx.x;
  const float* xs = x + (size_t)split * FCHUNK;
  float s = 0.f;
  if (split >= FSPLITS - keep) {
    unsigned long long pol;
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
#pragma unroll 2
    for (int i = threadIdx.x * 4; i < FCHUNK; i += 4096) {
      const float4 v = ld_keep(xs + i, pol); s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
#pragma unroll 2
    for (int i = threadIdx.x * 4; i < FCHUNK; i += 4096) {
      const float4 v = *reinterpret_cast<const float4*>(xs + i); s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  }
  s = block_sum(s, sm);
  if (threadIdx.x == 0) ws[split] = s;
}
__global__ void __launch_bounds__(1024) fro_p2(const float* __restrict__ x, float* __restrict__ y, const float* __restrict__ ws, bool rev) {
  __shared__ float sm[32];
  const int split = rev ? FSPLITS - 1 - blockIdx.x : blockIdx.x;
  float s = 0.f;
  for (int k = threadIdx.x; k < FSPLITS; k += 1024) s += ws[k];
  const float norm = sqrtf(block_sum(s, sm));
  const float* xs = x + (size_t)split * FCHUNK;
  float* ys = y + (size_t)split * FCHUNK;
#pragma unroll 2
  for (int i = threadIdx.x * 4; i < FCHUNK; i += 4096) {
    const float4 v = *reinterpret_cast<const float4*>(xs + i);
    *reinterpret_cast<float4*>(ys + i) = make_float4(v.x / norm, v.y / norm, v.z / norm, v.w / norm);
  }
}

// ---------------------------------------------------------------- harness
char* g_flush;
constexpr size_t FLUSH = 128 << 20;

float time_ms(const std::function<void()>& f, int trials = 30) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  std::vector<float> t;
  f();   // warm
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

float max_rel(const float* a, const float* b, size_t n) {
  std::vector<float> ha(n), hb(n);
  CK(cudaMemcpy(ha.data(), a, n * 4, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hb.data(), b, n * 4, cudaMemcpyDeviceToHost));
  float m = 0.f;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(ha[i]) != std::isnan(hb[i])) return INFINITY;
    if (!std::isnan(ha[i])) m = std::max(m, std::fabs(ha[i] - hb[i]) / std::max(1e-6f, std::fabs(ha[i])));
  }
  return m;
}

__global__ void fill_kernel(float* x, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
    x[i] = (h & 0xffffff) / float(1 << 24) * 4.f - 2.f + 0.5f;
  }
}

void row(const char* group, const char* name, float ms, double bytes, float err) {
  printf("%-10s %-16s %8.4f ms %7.0f GB/s  err %.2e\n", group, name, ms, bytes / ms / 1e6, err);
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  const size_t N = FN;   // 67M floats: every input here is 268 MB (081's a little less)
  float *x, *y, *ref, *ws;
  CK(cudaMalloc(&x, N * 4)); CK(cudaMalloc(&y, N * 4)); CK(cudaMalloc(&ref, N * 4)); CK(cudaMalloc(&ws, 1 << 20));
  CK(cudaMalloc(&g_flush, FLUSH));
  fill_kernel<<<1024, 256>>>(x, N, 7u);
  CK(cudaDeviceSynchronize());
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("%s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  const int sms = prop.multiProcessorCount;

  row("base", "copy", time_ms([&] { copy_kernel<<<sms * 8, 512>>>((const float4*)x, (float4*)y, N / 4); }), 8.0 * N, 0);
  row("base", "read", time_ms([&] { read_kernel<<<sms * 8, 512>>>((const float4*)x, y, N / 4); }), 4.0 * N, 0);

  for (int per_sm : {2, 4, 8}) {
    char label[32];
    snprintf(label, sizeof label, "read u2 x%d", per_sm);
    row("base", label, time_ms([&] { read_u_kernel<2><<<sms * per_sm, 1024>>>((const float4*)x, y, N / 4); }), 4.0 * N, 0);
    snprintf(label, sizeof label, "read u4 x%d", per_sm);
    row("base", label, time_ms([&] { read_u_kernel<4><<<sms * per_sm, 1024>>>((const float4*)x, y, N / 4); }), 4.0 * N, 0);
    snprintf(label, sizeof label, "read u8 x%d", per_sm);
    row("base", label, time_ms([&] { read_u_kernel<8><<<sms * per_sm, 1024>>>((const float4*)x, y, N / 4); }), 4.0 * N, 0);
  }
  // ---- avg pool, level1/084
  {
    constexpr int H = 256, W = 256, OH = 129, OW = 129, P = 1;
    const unsigned n = 1024u * OH * OW;
    const double bytes = 4.0 * (1024.0 * H * W + n);
    auto one = [&](float* out) { pool_one_kernel<H, W, OH, OW, P, false><<<(n + 255) / 256, 256>>>(x, out, n); };
    one(ref);
    row("avgpool", "one", time_ms([&] { one(y); }), bytes, max_rel(ref, y, n));
#define ILP(R) { auto f = [&] { pool_ilp_kernel<H, W, OH, OW, P, false, R><<<(n + 256 * R - 1) / (256 * R), 256>>>(x, y, n); }; \
    CK(cudaMemset(y, 0, n * 4)); f(); row("avgpool", "ilp" #R, time_ms(f), bytes, max_rel(ref, y, n)); }
    ILP(2) ILP(4)
#define COL(R) { const unsigned m = 1024u * ((OH + R - 1) / R) * OW; \
    auto f = [&] { pool_col_kernel<H, W, OH, OW, P, false, R><<<(m + 255) / 256, 256>>>(x, y, m); }; \
    CK(cudaMemset(y, 0, n * 4)); f(); row("avgpool", "col" #R, time_ms(f), bytes, max_rel(ref, y, n)); }
    COL(2) COL(4) COL(8)
  }
  // ---- max pool, level1/081
  {
    constexpr int H = 255, W = 255, OH = 127, OW = 127, P = 0;
    const unsigned n = 1024u * OH * OW;
    const double bytes = 4.0 * (1024.0 * H * W + n);
    auto one = [&](float* out) { pool_one_kernel<H, W, OH, OW, P, true><<<(n + 255) / 256, 256>>>(x, out, n); };
    one(ref);
    row("maxpool", "one", time_ms([&] { one(y); }), bytes, max_rel(ref, y, n));
#undef ILP
#undef COL
#define ILP(R) { auto f = [&] { pool_ilp_kernel<H, W, OH, OW, P, true, R><<<(n + 256 * R - 1) / (256 * R), 256>>>(x, y, n); }; \
    CK(cudaMemset(y, 0, n * 4)); f(); row("maxpool", "ilp" #R, time_ms(f), bytes, max_rel(ref, y, n)); }
    ILP(2) ILP(4)
#define COL(R) { const unsigned m = 1024u * ((OH + R - 1) / R) * OW; \
    auto f = [&] { pool_col_kernel<H, W, OH, OW, P, true, R><<<(m + 255) / 256, 256>>>(x, y, m); }; \
    CK(cudaMemset(y, 0, n * 4)); f(); row("maxpool", "col" #R, time_ms(f), bytes, max_rel(ref, y, n)); }
    COL(2) COL(4) COL(8)
  }
  // ---- outer rows
  {
    const unsigned rows = B * C;
    const double bytes = 4.0 * (N + rows);
#define OUTER(A, TX, TY, BA, label) { auto f = [&] { outer_kernel<A, TX, TY, BA><<<rows / TX, dim3(TX, TY)>>>(x, y); }; \
    CK(cudaMemset(y, 0, rows * 4)); f(); row(#A, label, time_ms(f), bytes, max_rel(ref, y, rows)); }
#define OUTER4(A, TX, TY, BA, label) { auto f = [&] { outer_v4_kernel<A, TX, TY, BA><<<rows / (4 * TX), dim3(TX, TY)>>>(x, y); }; \
    CK(cudaMemset(y, 0, rows * 4)); f(); row(#A, label, time_ms(f), bytes, max_rel(ref, y, rows)); }
    outer_kernel<Welford, 32, 16, 4><<<rows / 32, dim3(32, 16)>>>(x, ref);
    OUTER(Welford, 32, 16, 4, "32x16 b4 (gen)") OUTER(Welford, 32, 16, 8, "32x16 b8") OUTER(Welford, 32, 8, 8, "32x8 b8")
    OUTER(Welford, 32, 32, 4, "32x32 b4")
    { auto f = [&] { outer_w4_kernel<32, 16><<<rows / 32, dim3(32, 16)>>>(x, y); };
      CK(cudaMemset(y, 0, rows * 4)); f(); row("Welford", "chan4 32x16", time_ms(f), bytes, max_rel(ref, y, rows)); }
    OUTER4(Welford, 8, 32, 4, "v4 8x32 b4") OUTER4(Welford, 8, 64, 2, "v4 8x64 b2") OUTER4(Welford, 16, 16, 4, "v4 16x16 b4")
    outer_kernel<Sum, 32, 16, 4><<<rows / 32, dim3(32, 16)>>>(x, ref);
    OUTER(Sum, 32, 16, 4, "32x16 b4 (gen)") OUTER(Sum, 32, 16, 8, "32x16 b8") OUTER4(Sum, 8, 32, 4, "v4 8x32 b4")
    OUTER4(Sum, 8, 64, 2, "v4 8x64 b2")
    outer_kernel<Max, 32, 16, 4><<<rows / 32, dim3(32, 16)>>>(x, ref);
    OUTER(Max, 32, 16, 4, "32x16 b4 (gen)") OUTER(Max, 32, 16, 8, "32x16 b8") OUTER4(Max, 8, 32, 4, "v4 8x32 b4")
    OUTER4(Max, 8, 64, 2, "v4 8x64 b2")
  }
  // ---- l1 normalize over the outer dim, level1/077
  {
    const unsigned rows = B * C;
    const double bytes = 8.0 * N;
    l1_mem_kernel<32, 16, 4><<<rows / 32, dim3(32, 16)>>>(x, ref);
#define L1MEM(TX, TY) { auto f = [&] { l1_mem_kernel<TX, TY, 4><<<rows / TX, dim3(TX, TY)>>>(x, y); }; \
    CK(cudaMemset(y, 0, N * 4)); f(); row("l1", "mem " #TX "x" #TY, time_ms(f), bytes, max_rel(ref, y, N)); }
#define L1REG(TX, TY) { auto f = [&] { l1_regs_kernel<TX, TY><<<rows / TX, dim3(TX, TY)>>>(x, y); }; \
    CK(cudaMemset(y, 0, N * 4)); f(); row("l1", "regs " #TX "x" #TY, time_ms(f), bytes, max_rel(ref, y, N)); }
#define L1REG4(TX, TY) { auto f = [&] { l1_regs_v4_kernel<TX, TY><<<rows / (4 * TX), dim3(TX, TY)>>>(x, y); }; \
    CK(cudaMemset(y, 0, N * 4)); f(); row("l1", "regs4 " #TX "x" #TY, time_ms(f), bytes, max_rel(ref, y, N)); }
    L1MEM(32, 16) L1REG(16, 64) L1REG(8, 128) L1REG(32, 32) L1REG4(4, 128) L1REG4(8, 128) L1REG4(2, 256)
  }
  // ---- frobenius
  {
    const double bytes = 12.0 * N;
    auto run = [&](int keep, bool rev, float* out) {
      fro_p1<<<FSPLITS, 1024>>>(x, ws, keep);
      fro_p2<<<FSPLITS, 1024>>>(x, out, ws, rev);
    };
    run(0, false, ref);
    row("fro", "two (gen)", time_ms([&] { run(0, false, y); }), bytes, max_rel(ref, y, N));
    row("fro", "phase1 only", time_ms([&] { fro_p1<<<FSPLITS, 1024>>>(x, ws, 0); }), 4.0 * N, 0);
    row("fro", "rev", time_ms([&] { run(0, true, y); }), bytes, max_rel(ref, y, N));
    for (int keep : {40, 80, 120}) {
      char label[32]; snprintf(label, sizeof label, "keep%d rev", keep);
      row("fro", label, time_ms([&] { run(keep, true, y); }), bytes, max_rel(ref, y, N));
    }
  }
  CK(cudaDeviceSynchronize());
  printf("done\n");
  return 0;
}
