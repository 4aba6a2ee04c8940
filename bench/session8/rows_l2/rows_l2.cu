// Long rows read twice (statistics, then the normalized output): does the second read find
// the row in L2? Micro-benchmark for the row kernels' schedules, H100.
//
//   unsplit rows (instance norm, [1024 rows x 65536]): a block of 1024 threads per row
//     grid    : one block per row (what the generator emits): 2 blocks per SM, 67 MB in flight
//     persist : one block per SM walking the rows (33 MB in flight), plain stores
//     persist_cs : the same, the output written with evict-first stores (st.global.cs)
//   split rows (batch norm, [16, 64, 65536], rows = the 64 channels, 16 planes each)
//     two     : two launches (partials, then merge + apply), what the generator emits
//     two_rev : the same, the second launch walking the blocks in reverse (its first reads find
//               the last ones of the first launch in L2)
//     barrier : one launch of one block per SM; the 16 blocks of a row wait for each other at a
//               per-row counter, then re-read their plane (in L2) and write
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90,code=sm_90 rows_l2.cu -o rows_l2 && ./rows_l2
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

struct Welford {
  float mean, m2, n;
  __device__ void add(float x) { n += 1.0f; const float d = x - mean; mean += d / n; m2 += d * (x - mean); }
  __device__ void merge(const Welford& o) {
    if (o.n == 0.0f) return;
    if (n == 0.0f) { *this = o; return; }
    const float nn = n + o.n, d = o.mean - mean, w = o.n / nn;
    mean += d * w; m2 += o.m2 + d * d * n * w; n = nn;
  }
};

__device__ Welford warp_reduce(Welford a) {
  for (int d = 16; d > 0; d >>= 1) {
    Welford o{__shfl_down_sync(~0u, a.mean, d), __shfl_down_sync(~0u, a.m2, d), __shfl_down_sync(~0u, a.n, d)};
    a.merge(o);
  }
  return {__shfl_sync(~0u, a.mean, 0), __shfl_sync(~0u, a.m2, 0), __shfl_sync(~0u, a.n, 0)};
}

__device__ Welford block_reduce(Welford a) {
  __shared__ Welford part[32];
  a = warp_reduce(a);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = a;
  __syncthreads();
  a = (threadIdx.x & 31) < (blockDim.x >> 5) ? part[threadIdx.x & 31] : Welford{0, 0, 0};
  return warp_reduce(a);
}

// statistics of n floats at x (n % 4 == 0), this block's threads
__device__ Welford stats(const float* x, int n) {
  Welford w{0, 0, 0};
#pragma unroll 2
  for (int i = threadIdx.x * 4; i < n; i += blockDim.x * 4) {
    const float4 v = *reinterpret_cast<const float4*>(x + i);
    w.add(v.x); w.add(v.y); w.add(v.z); w.add(v.w);
  }
  return block_reduce(w);
}

template <bool CS>
__device__ void apply(const float* x, float* y, int n, float mean, float rstd) {
#pragma unroll 2
  for (int i = threadIdx.x * 4; i < n; i += blockDim.x * 4) {
    const float4 v = *reinterpret_cast<const float4*>(x + i);
    const float4 o = make_float4((v.x - mean) * rstd, (v.y - mean) * rstd, (v.z - mean) * rstd, (v.w - mean) * rstd);
    if constexpr (CS) __stcs(reinterpret_cast<float4*>(y + i), o);
    else *reinterpret_cast<float4*>(y + i) = o;
  }
}

template <bool CS>
__global__ void __launch_bounds__(1024) rows_kernel(const float* x, float* y, int rows, int len) {
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const Welford w = stats(x + size_t(r) * len, len);
    apply<CS>(x + size_t(r) * len, y + size_t(r) * len, len, w.mean, rsqrtf(w.m2 / len + 1e-5f));
  }
}


// ---- a row (or a plane) cached on chip: this thread's REG float4s in registers, the rest of
// its share in dynamic shared memory (cp.async); one read from DRAM, one write
__device__ __forceinline__ void cp16(void* dst, const void* src) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(s), "l"(src));
}

template <int REG, int SM4>   // float4s per thread: REG in registers, SM4 in shared memory
struct Cached {
  float4 r[REG];
  __device__ void load(const float* x, float4* sm) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll
    for (int k = 0; k < SM4; ++k) cp16(sm + k * blockDim.x + threadIdx.x, x4 + (REG + k) * blockDim.x + threadIdx.x);
    asm volatile("cp.async.commit_group;\n" ::);
#pragma unroll
    for (int k = 0; k < REG; ++k) r[k] = x4[k * blockDim.x + threadIdx.x];
  }
  __device__ Welford stats(const float4* sm) {
    Welford w{0, 0, 0};
#pragma unroll
    for (int k = 0; k < REG; ++k) { w.add(r[k].x); w.add(r[k].y); w.add(r[k].z); w.add(r[k].w); }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
#pragma unroll
    for (int k = 0; k < SM4; ++k) { const float4 v = sm[k * blockDim.x + threadIdx.x]; w.add(v.x); w.add(v.y); w.add(v.z); w.add(v.w); }
    return block_reduce(w);
  }
  __device__ void apply(float* y, const float4* sm, float mean, float rstd) {
    float4* y4 = reinterpret_cast<float4*>(y);
    auto f = [&](float4 v) { return make_float4((v.x - mean) * rstd, (v.y - mean) * rstd, (v.z - mean) * rstd, (v.w - mean) * rstd); };
#pragma unroll
    for (int k = 0; k < REG; ++k) y4[k * blockDim.x + threadIdx.x] = f(r[k]);
#pragma unroll
    for (int k = 0; k < SM4; ++k) y4[(REG + k) * blockDim.x + threadIdx.x] = f(sm[k * blockDim.x + threadIdx.x]);
  }
};

// unsplit rows of 65536: 1024 threads x (8 + 8) float4s
__global__ void __launch_bounds__(1024, 1) rows_cached(const float* x, float* y, int rows, int len) {
  extern __shared__ float4 sm[];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    Cached<8, 8> c;
    c.load(x + size_t(r) * len, sm);
    const Welford w = c.stats(sm);
    c.apply(y + size_t(r) * len, sm, w.mean, rsqrtf(w.m2 / len + 1e-5f));
    __syncthreads();   // nothing: each thread reads back only its own shared memory
  }
}

// split rows, x [N][C][P]: row c is the N planes x[n][c][:]; block (c, n) takes one plane
constexpr int N = 16, C = 64, P = 65536;

__device__ void plane_stats(const float* x, Welford* ws, int c, int n) {
  const Welford w = stats(x + (size_t(n) * C + c) * P, P);
  if (threadIdx.x == 0) ws[c * N + n] = w;
}

__device__ Welford merged(const Welford* ws, int c) {   // every thread merges the N partials, same order
  Welford w{0, 0, 0};
  for (int k = 0; k < N; ++k) {
    const Welford p{__ldcg(&ws[c * N + k].mean), __ldcg(&ws[c * N + k].m2), __ldcg(&ws[c * N + k].n)};
    w.merge(p);
  }
  return w;
}

__device__ void plane_apply(const float* x, float* y, const Welford* ws, int c, int n) {
  const Welford w = merged(ws, c);
  const size_t at = (size_t(n) * C + c) * P;
  apply<false>(x + at, y + at, P, w.mean, rsqrtf(w.m2 / (float(N) * P) + 1e-5f));
}

__global__ void __launch_bounds__(1024) split_phase0(const float* x, Welford* ws) {
  plane_stats(x, ws, blockIdx.x / N, blockIdx.x % N);
}
template <bool REV>
__global__ void __launch_bounds__(1024) split_phase1(const float* x, float* y, const Welford* ws) {
  const int b = REV ? gridDim.x - 1 - blockIdx.x : blockIdx.x;
  plane_apply(x, y, ws, b / N, b % N);
}

// one launch: block b takes items b, b + grid, ... (item = row c, plane n); the N blocks of a
// row meet at its counter (never reset: each call adds N, the target is the next multiple)
__global__ void __launch_bounds__(1024) split_barrier(const float* x, float* y, Welford* ws, unsigned* count) {
  for (int item = blockIdx.x; item < C * N; item += gridDim.x) {
    const int c = item / N, n = item % N;
    plane_stats(x, ws, c, n);
    if (threadIdx.x == 0) {
      __threadfence();
      const unsigned old = atomicAdd(&count[c], 1u);
      const unsigned target = old - old % N + N;
      while (static_cast<int>(*reinterpret_cast<volatile unsigned*>(&count[c]) - target) < 0) __nanosleep(100);
      __threadfence();
    }
    __syncthreads();
    plane_apply(x, y, ws, c, n);
  }
}

// one launch, the chunk cached on chip: blocks of THREADS take chunks of CH floats (S per row)
template <int THREADS, int REG, int SM4>
__global__ void __launch_bounds__(THREADS, 1024 / THREADS) split_cached(const float* x, float* y, Welford* ws, unsigned* count) {
  extern __shared__ float4 sm[];
  constexpr int CH = THREADS * 4 * (REG + SM4), PER = P / CH, S = N * PER;   // chunks per plane, per row
  for (int item = blockIdx.x; item < C * S; item += gridDim.x) {
    const int c = item / S, n = item % S / PER, part = item % PER;
    const size_t at = (size_t(n) * C + c) * P + size_t(part) * CH;
    Cached<REG, SM4> ch;
    ch.load(x + at, sm);
    const Welford w = ch.stats(sm);
    if (threadIdx.x == 0) {
      ws[c * S + item % S] = w;
      __threadfence();
      const unsigned old = atomicAdd(&count[c], 1u);
      const unsigned target = old - old % S + S;
      while (static_cast<int>(*reinterpret_cast<volatile unsigned*>(&count[c]) - target) < 0) __nanosleep(64);
      __threadfence();
    }
    __syncthreads();
    Welford m{0, 0, 0};
    for (int k = 0; k < S; ++k) {
      const Welford p{__ldcg(&ws[c * S + k].mean), __ldcg(&ws[c * S + k].m2), __ldcg(&ws[c * S + k].n)};
      m.merge(p);
    }
    ch.apply(y + at, sm, m.mean, rsqrtf(m.m2 / (float(N) * P) + 1e-5f));
  }
}

// the partials of a row merged by the whole block: thread k takes partial k, then the block's
// tree (the same order, so the same bits, in every block of the row)
__device__ Welford merge_parallel(const Welford* ws, int S) {
  Welford w{0, 0, 0};
  if (threadIdx.x < S) w = Welford{__ldcg(&ws[threadIdx.x].mean), __ldcg(&ws[threadIdx.x].m2), __ldcg(&ws[threadIdx.x].n)};
  return block_reduce(w);
}

// aligned rounds: a round takes G / S whole rows, a row's S blocks side by side
template <int THREADS, int REG, int SM4>
__global__ void __launch_bounds__(THREADS, 1024 / THREADS) split_rounds(const float* x, float* y, Welford* ws, unsigned* count) {
  extern __shared__ float4 sm[];
  constexpr int CH = THREADS * 4 * (REG + SM4), PER = P / CH, S = N * PER;
  const int R = gridDim.x / S;   // rows per round
  if (blockIdx.x >= R * S) return;
  for (int c = blockIdx.x / S; c < C; c += R) {
    const int j = blockIdx.x % S, n = j / PER, part = j % PER;
    const size_t at = (size_t(n) * C + c) * P + size_t(part) * CH;
    Cached<REG, SM4> ch;
    ch.load(x + at, sm);
    const Welford w = ch.stats(sm);
    if (threadIdx.x == 0) {
      ws[c * S + j] = w;
      __threadfence();
      const unsigned old = atomicAdd(&count[c], 1u);
      const unsigned target = old - old % S + S;
      while (static_cast<int>(*reinterpret_cast<volatile unsigned*>(&count[c]) - target) < 0) __nanosleep(32);
      __threadfence();
    }
    __syncthreads();
    const Welford m = merge_parallel(ws + c * S, S);
    ch.apply(y + at, sm, m.mean, rsqrtf(m.m2 / (float(N) * P) + 1e-5f));
  }
}

// group norm over x viewed as [GROWS rows][8 planes][P]: rows of 2 MB, contiguous
constexpr int GROWS = N * C / 8, GS = 8;
__global__ void __launch_bounds__(1024) gn_phase0(const float* x, Welford* ws) {
  const Welford w = stats(x + size_t(blockIdx.x) * P, P);
  if (threadIdx.x == 0) ws[blockIdx.x] = w;
}
__global__ void __launch_bounds__(1024) gn_phase1(const float* x, float* y, const Welford* ws) {
  const Welford m = merge_parallel(ws + blockIdx.x / GS * GS, GS);
  apply<false>(x + size_t(blockIdx.x) * P, y + size_t(blockIdx.x) * P, P, m.mean, rsqrtf(m.m2 / (float(GS) * P) + 1e-5f));
}
// a cluster of 8 blocks per row, one plane each cached on chip; partials through distributed shared memory
__global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(1024, 1) gn_cluster(const float* x, float* y) {
  namespace cg = cooperative_groups;
  extern __shared__ float4 sm[];
  __shared__ Welford mine;
  cg::cluster_group cl = cg::this_cluster();
  const int rank = static_cast<int>(cl.block_rank());
  for (int row = blockIdx.x / GS; row < GROWS; row += gridDim.x / GS) {
    const size_t at = (size_t(row) * GS + rank) * P;
    Cached<8, 8> ch;
    ch.load(x + at, sm);
    const Welford w = ch.stats(sm);
    if (threadIdx.x == 0) mine = w;
    cl.sync();
    Welford m{0, 0, 0};
    if (threadIdx.x < GS) m = *cl.map_shared_rank(&mine, threadIdx.x);
    m = block_reduce(m);
    cl.sync();   // every block has read the partials: the next row may overwrite them
    ch.apply(y + at, sm, m.mean, rsqrtf(m.m2 / (float(GS) * P) + 1e-5f));
  }
}

__global__ void copy_kernel(const float4* x, float4* y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) y[i] = x[i];
}

template <class F>
float time_ms(F f, char* flush, size_t flush_bytes) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int i = 0; i < 25; ++i) {
    CK(cudaMemsetAsync(flush, i, flush_bytes));
    CK(cudaEventRecord(a));
    f();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    if (i >= 5) t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  int sms;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const size_t n = size_t(N) * C * P, bytes = n * 4;
  float *x, *y, *ref;
  char* flush;
  Welford* ws;
  unsigned* count;
  CK(cudaMalloc(&x, bytes)); CK(cudaMalloc(&y, bytes)); CK(cudaMalloc(&ref, bytes));
  CK(cudaMalloc(&flush, 128 << 20)); CK(cudaMalloc(&ws, C * N * 16 * sizeof(Welford))); CK(cudaMalloc(&count, C * 4));
  CK(cudaMemset(count, 0, C * 4));
  std::vector<float> h(n);
  unsigned s = 12345;
  for (auto& v : h) { s = s * 1664525u + 1013904223u; v = 2.0f * ((s >> 8) * (1.0f / 16777216.0f)) + 0.5f; }
  CK(cudaMemcpy(x, h.data(), bytes, cudaMemcpyHostToDevice));
  const int rows = N * C, len = P;
  std::vector<float> hy(n);
  auto check_rows = [&](const char* name) {   // row 0 and row rows-1 against float64
    CK(cudaMemcpy(hy.data(), y, bytes, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int r : {0, rows - 1}) {
      double m = 0, v = 0;
      for (int i = 0; i < len; ++i) m += h[size_t(r) * len + i];
      m /= len;
      for (int i = 0; i < len; ++i) v += (h[size_t(r) * len + i] - m) * (h[size_t(r) * len + i] - m);
      const double rstd = 1 / std::sqrt(v / len + 1e-5);
      for (int i = 0; i < len; ++i) worst = std::max(worst, std::fabs((h[size_t(r) * len + i] - m) * rstd - hy[size_t(r) * len + i]));
    }
    return worst;
  };
  auto check_channels = [&]() {   // channels 0 and C-1 against float64
    CK(cudaMemcpy(hy.data(), y, bytes, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int c : {0, C - 1}) {
      double m = 0, v = 0;
      for (int k = 0; k < N; ++k) for (int i = 0; i < P; ++i) m += h[(size_t(k) * C + c) * P + i];
      m /= double(N) * P;
      for (int k = 0; k < N; ++k) for (int i = 0; i < P; ++i) { const double d = h[(size_t(k) * C + c) * P + i] - m; v += d * d; }
      const double rstd = 1 / std::sqrt(v / (double(N) * P) + 1e-5);
      for (int k = 0; k < N; ++k) for (int i = 0; i < P; ++i) {
        const size_t at = (size_t(k) * C + c) * P + i;
        worst = std::max(worst, std::fabs((h[at] - m) * rstd - hy[at]));
      }
    }
    return worst;
  };
  auto check_groups = [&]() {   // groups 0 and GROWS-1 against float64
    CK(cudaMemcpy(hy.data(), y, bytes, cudaMemcpyDeviceToHost));
    double worst = 0;
    const size_t L = size_t(GS) * P;
    for (int r : {0, GROWS - 1}) {
      double m = 0, v = 0;
      for (size_t i = 0; i < L; ++i) m += h[r * L + i];
      m /= L;
      for (size_t i = 0; i < L; ++i) v += (h[r * L + i] - m) * (h[r * L + i] - m);
      const double rstd = 1 / std::sqrt(v / L + 1e-5);
      for (size_t i = 0; i < L; ++i) worst = std::max(worst, std::fabs((h[r * L + i] - m) * rstd - hy[r * L + i]));
    }
    return worst;
  };
  const double gb = 3.0 * bytes / 1e9;   // two reads and a write if nothing stays in L2
  printf("%-12s %8s %10s %10s\n", "variant", "ms", "GB/s(2r+w)", "max err");
  auto report = [&](const char* name, float ms, double err) {
    printf("%-12s %8.4f %10.0f %10.2e\n", name, ms, gb / (ms * 1e-3), err);
  };
  {
    const float ms = time_ms([&] { copy_kernel<<<sms * 8, 512>>>((const float4*)x, (float4*)y, n / 4); }, flush, 128 << 20);
    printf("%-12s %8.4f  (copy: %.0f GB/s read+write)\n", "copy", ms, 2.0 * bytes / 1e9 / (ms * 1e-3));
  }
  auto run = [&](const char* name, auto launch, int kind) {
    CK(cudaMemset(y, 0, bytes));
    CK(cudaMemset(count, 0, C * 4));   // each kernel's counters start at 0 (targets: multiples of its S)
    const float ms = time_ms(launch, flush, 128 << 20);
    CK(cudaGetLastError());
    report(name, ms, kind == 1 ? check_channels() : kind == 2 ? check_groups() : check_rows(name));
  };
  run("grid", [&] { rows_kernel<false><<<rows, 1024>>>(x, y, rows, len); }, 0);
  run("persist", [&] { rows_kernel<false><<<sms, 1024>>>(x, y, rows, len); }, 0);
  run("persist_cs", [&] { rows_kernel<true><<<sms, 1024>>>(x, y, rows, len); }, 0);
  run("persist_2sm", [&] { rows_kernel<false><<<2 * sms, 1024>>>(x, y, rows, len); }, 0);
  CK(cudaFuncSetAttribute(rows_cached, cudaFuncAttributeMaxDynamicSharedMemorySize, 128 << 10));
  run("row_cached", [&] { rows_cached<<<sms, 1024, 128 << 10>>>(x, y, rows, len); }, 0);
  run("two", [&] { split_phase0<<<C * N, 1024>>>(x, ws); split_phase1<false><<<C * N, 1024>>>(x, y, ws); }, 1);
  run("two_rev", [&] { split_phase0<<<C * N, 1024>>>(x, ws); split_phase1<true><<<C * N, 1024>>>(x, y, ws); }, 1);
  run("barrier", [&] { split_barrier<<<sms, 1024>>>(x, y, ws, count); }, 1);
  // cached chunks: 256 KB per block of 1024 (1 per SM), 128 KB per block of 512 (2 per SM), 64 KB per block of 256 (4)
  CK(cudaFuncSetAttribute(split_cached<1024, 8, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 128 << 10));
  CK(cudaFuncSetAttribute(split_cached<512, 8, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10));
  CK(cudaFuncSetAttribute(split_cached<256, 8, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 32 << 10));
  run("bar_c256k", [&] { split_cached<1024, 8, 8><<<sms, 1024, 128 << 10>>>(x, y, ws, count); }, 1);
  run("bar_c128k", [&] { split_cached<512, 8, 8><<<2 * sms, 512, 64 << 10>>>(x, y, ws, count); }, 1);
  run("bar_c64k", [&] { split_cached<256, 8, 8><<<4 * sms, 256, 32 << 10>>>(x, y, ws, count); }, 1);
  CK(cudaFuncSetAttribute(split_rounds<1024, 8, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 128 << 10));
  CK(cudaFuncSetAttribute(split_rounds<512, 8, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10));
  CK(cudaFuncSetAttribute(split_rounds<256, 8, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 32 << 10));
  run("round_256k", [&] { split_rounds<1024, 8, 8><<<sms, 1024, 128 << 10>>>(x, y, ws, count); }, 1);
  run("round_128k", [&] { split_rounds<512, 8, 8><<<2 * sms, 512, 64 << 10>>>(x, y, ws, count); }, 1);
  run("round_64k", [&] { split_rounds<256, 8, 8><<<4 * sms, 256, 32 << 10>>>(x, y, ws, count); }, 1);
  run("gn_two", [&] { gn_phase0<<<GROWS * GS, 1024>>>(x, ws); gn_phase1<<<GROWS * GS, 1024>>>(x, y, ws); }, 2);
  CK(cudaFuncSetAttribute(gn_cluster, cudaFuncAttributeMaxDynamicSharedMemorySize, 128 << 10));
  {
    cudaLaunchConfig_t cfg = {};
    cfg.blockDim = dim3(1024);
    cfg.dynamicSmemBytes = 128 << 10;
    cfg.gridDim = dim3(8 * 16);
    int clusters = 0;
    CK(cudaOccupancyMaxActiveClusters(&clusters, gn_cluster, &cfg));
    printf("gn_cluster: %d clusters of 8 at once\n", clusters);
    run("gn_cluster", [&] { gn_cluster<<<8 * clusters, 1024, 128 << 10>>>(x, y); }, 2);
  }
  CK(cudaDeviceSynchronize());
  return 0;
}
