// x / ||x||_F over [16, 64, 256, 256] (level1/064, 268 MB): how much of the second read can stay on chip?
// Micro-benchmark, H100; every variant is checked against the first (the two launches the
// generator emits, which the suite checks against PyTorch).
//
//   two        generated: 1024 splits of 1024 threads, partials, then merge + scale (2 launches)
//   coop       one cooperative launch of the blocks the GPU holds (T threads, per_sm a SM), each a
//              contiguous chunk; a thread holds its first REG steps (16 bytes each) in registers and
//              the next SM steps in shared memory, streams the rest; the blocks meet at a counter,
//              each merges all partials (same order, same bits), then writes: held steps first,
//              then the streamed ones in reverse (the last read are likeliest in L2).
//              keep: the last `keep` streamed steps of the first pass read with an L2 evict_last
//              policy; cs: the second pass's stores evict-first (st.global.cs).
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a fro.cu -o fro && ./fro
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

constexpr size_t N = 16ull * 64 * 256 * 256;
constexpr size_t NP = N / 4;   // 16-byte packs
constexpr int FSPLITS = 1024, FCHUNK = N / FSPLITS;

__device__ float block_sum(float s, float* sm) {
  for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(~0u, s, d);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = s;
  __syncthreads();
  s = (threadIdx.x & 31) < (blockDim.x >> 5) ? sm[threadIdx.x & 31] : 0.f;
  for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(~0u, s, d);
  return __shfl_sync(~0u, s, 0);
}
__device__ __forceinline__ float sq4(float4 v) { return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w; }
__device__ __forceinline__ float4 div4(float4 v, float n) { return make_float4(v.x / n, v.y / n, v.z / n, v.w / n); }

// ---------------------------------------------------------------- generated: two launches
__global__ void __launch_bounds__(1024) fro_p1(const float* __restrict__ x, float* __restrict__ ws) {
  __shared__ float sm[32];
  const float* xs = x + (size_t)blockIdx.x * FCHUNK;
  float s = 0.f;
#pragma unroll 2
  for (int i = threadIdx.x * 4; i < FCHUNK; i += 4096) s += sq4(*reinterpret_cast<const float4*>(xs + i));
  s = block_sum(s, sm);
  if (threadIdx.x == 0) ws[blockIdx.x] = s;
}
__global__ void __launch_bounds__(1024) fro_p2(const float* __restrict__ x, float* __restrict__ y, const float* __restrict__ ws) {
  __shared__ float sm[32];
  float s = 0.f;
  for (int k = threadIdx.x; k < FSPLITS; k += 1024) s += ws[k];
  const float norm = sqrtf(block_sum(s, sm));
  const float* xs = x + (size_t)blockIdx.x * FCHUNK;
  float* ys = y + (size_t)blockIdx.x * FCHUNK;
#pragma unroll 2
  for (int i = threadIdx.x * 4; i < FCHUNK; i += 4096)
    *reinterpret_cast<float4*>(ys + i) = div4(*reinterpret_cast<const float4*>(xs + i), norm);
}

// ---------------------------------------------------------------- one cooperative launch
__device__ __forceinline__ float4 ld_hint(const float4* p, unsigned long long pol) {
  float4 v;
  asm volatile("ld.global.L2::cache_hint.v4.f32 {%0,%1,%2,%3}, [%4], %5;"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p), "l"(pol));
  return v;
}
__device__ __forceinline__ void st_cs(float4* p, float4 v) { __stcs(p, v); }
// FIXED & 4: plain stores (write-back, as generated) instead of evict-first ones
template <int FIXED> __device__ __forceinline__ void st_out(float4* p, float4 v) { if (FIXED & 4) *p = v; else __stcs(p, v); }

struct CoopArgs {
  const float4* x;
  float4* y;
  float* ws;                 // a partial per block
  unsigned long long* count;
unsigned* dctr; // only grows: a launch adds gridDim.x
  unsigned per;              // steps of a thread
  unsigned chunk;            // packs of a block
  int keep;
  bool cs;
};

template <int T, int REG, int SMS, int U, int PER_SM>
__global__ void __launch_bounds__(T, PER_SM) fro_coop(const CoopArgs a) {
  extern __shared__ float4 held[];   // [SMS][T]
  __shared__ float sm[32];
  const size_t base = (size_t)blockIdx.x * a.chunk;
  const size_t end = min(base + a.chunk, NP);
  const int t = threadIdx.x;
  auto at = [&](unsigned k) { return base + (size_t)k * T + t; };
  float4 r[REG > 0 ? REG : 1];
  float s = 0.f;
  // pass 1: the held steps first, then the streamed ones
#pragma unroll
  for (int k = 0; k < REG; ++k) {
    r[k] = at(k) < end ? a.x[at(k)] : make_float4(0.f, 0.f, 0.f, 0.f);
  }
#pragma unroll
  for (int k = 0; k < SMS; ++k) {
    if (at(REG + k) < end) {
      const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(held + k * T + t));
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dst), "l"(a.x + at(REG + k)));
    }
  }
  const unsigned first = REG + SMS, last_plain = max(first, a.per > (unsigned)a.keep ? a.per - a.keep : 0u);
  // U loads in flight before the first is used (predicated: a step past the end reads zeros)
  auto fold = [&](unsigned k0, unsigned k1, bool hint, unsigned long long pol) {
    for (unsigned k = k0; k < k1; k += U) {
      float4 v[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const bool in = k + u < k1 && at(k + u) < end;
        v[u] = !in ? make_float4(0.f, 0.f, 0.f, 0.f) : (hint ? ld_hint(a.x + at(k + u), pol) : a.x[at(k + u)]);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) s += sq4(v[u]);
    }
  };
  fold(first, last_plain, false, 0);
  if (a.keep > 0) {
    unsigned long long pol;
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
    fold(last_plain, a.per, true, pol);
  }
#pragma unroll
  for (int k = 0; k < REG; ++k) s += sq4(r[k]);
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#pragma unroll
  for (int k = 0; k < SMS; ++k) {
    if (at(REG + k) < end) s += sq4(held[k * T + t]);
  }
  s = block_sum(s, sm);
  // the blocks meet: each adds its partial, waits for all, then merges them in one order
  if (t == 0) {
    a.ws[blockIdx.x] = s;
    __threadfence();
    const unsigned long long old = atomicAdd(a.count, 1ull);
    const unsigned long long target = old - old % gridDim.x + gridDim.x;
    while (*reinterpret_cast<volatile unsigned long long*>(a.count) < target) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
  float tot = 0.f;
  for (int k = t; k < (int)gridDim.x; k += T) tot += __ldcg(a.ws + k);
  const float norm = sqrtf(block_sum(tot, sm));
  // pass 2: held steps, then the streamed ones in reverse
#pragma unroll
  for (int k = 0; k < REG; ++k) {
    if (at(k) < end) { if (a.cs) st_cs(a.y + at(k), div4(r[k], norm)); else a.y[at(k)] = div4(r[k], norm); }
  }
#pragma unroll
  for (int k = 0; k < SMS; ++k) {
    if (at(REG + k) < end) {
      const float4 v = div4(held[k * T + t], norm);
      if (a.cs) st_cs(a.y + at(REG + k), v); else a.y[at(REG + k)] = v;
    }
  }
  for (unsigned k1 = a.per; k1 > first;) {   // U steps back from k1
    const unsigned k0 = k1 >= first + U ? k1 - U : first;
    float4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (k0 + u < k1 && at(k0 + u) < end) v[u] = a.x[at(k0 + u)];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (k0 + u < k1 && at(k0 + u) < end) {
        const float4 w = div4(v[u], norm);
        if (a.cs) st_cs(a.y + at(k0 + u), w); else a.y[at(k0 + u)] = w;
      }
    }
    k1 = k0;
  }
}

// ---------------------------------------------------------------- one cooperative launch, streamed items shared out
// An item is STEPS x T packs (contiguous). Block b holds items b*H .. b*H+H-1 (H = RI + SI: RI in
// registers, SI in shared memory); the other items go to whichever block asks next (a counter per
// pass), the first pass ascending, the second descending (the last read are likeliest in L2).
struct DynArgs {
  const float4* x;
  float4* y;
  float* ws;
  unsigned* ctr;     // [0] items of pass 1, [1] items of pass 2, [2] barrier, [3] blocks done
  unsigned items;
  int keep;          // items read with evict_last at the end of pass 1
};

template <int T, int RI, int SI, int STEPS, int PER_SM, int FIXED>
__global__ void __launch_bounds__(T, PER_SM) fro_dyn(const DynArgs a) {
  extern __shared__ float4 held[];   // [SI * STEPS][T]
  __shared__ float sm[32];
  __shared__ unsigned grab[2];
  constexpr int H = RI + SI;
  const int t = threadIdx.x;
  const unsigned streamed0 = gridDim.x * H;   // the first item shared out
  auto at = [&](unsigned item, int s) { return ((size_t)item * STEPS + s) * T + t; };
  float4 r[RI * STEPS > 0 ? RI * STEPS : 1];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < RI; ++i)
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
      const size_t p = at(blockIdx.x * H + i, k);
      r[i * STEPS + k] = p < NP ? a.x[p] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
  for (int i = 0; i < SI; ++i)
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
      const size_t p = at(blockIdx.x * H + RI + i, k);
      if (p < NP) {
        const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(held + (i * STEPS + k) * T + t));
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dst), "l"(a.x + p));
      }
    }
  // pass 1: items shared out; the next one is asked for while this one loads
  unsigned long long pol;
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
  // FIXED & 1: pass 1's items fixed (block b takes b, b + blocks, ...: the same sums every run)
  if (t == 0) grab[0] = streamed0 + (FIXED & 1 ? blockIdx.x : atomicAdd(a.ctr, 1u));
  __syncthreads();
  int g = 0;
  for (unsigned item = grab[0]; item < a.items; item = grab[g]) {
    if (t == 0) grab[g ^ 1] = FIXED & 1 ? item + gridDim.x : streamed0 + atomicAdd(a.ctr, 1u);
    const bool hint = item + a.keep >= a.items;
    float4 v[STEPS];
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
      const size_t p = at(item, k);
      v[k] = p >= NP ? make_float4(0.f, 0.f, 0.f, 0.f) : (hint ? ld_hint(a.x + p, pol) : a.x[p]);
    }
#pragma unroll
    for (int k = 0; k < STEPS; ++k) s += sq4(v[k]);
    g ^= 1;
    __syncthreads();
  }
#pragma unroll
  for (int k = 0; k < RI * STEPS; ++k) s += sq4(r[k]);
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#pragma unroll
  for (int i = 0; i < SI; ++i)
#pragma unroll
    for (int k = 0; k < STEPS; ++k)
      if (at(blockIdx.x * H + RI + i, k) < NP) s += sq4(held[(i * STEPS + k) * T + t]);
  s = block_sum(s, sm);
  if (t == 0) {
    a.ws[blockIdx.x] = s;
    __threadfence();
    atomicAdd(a.ctr + 2, 1u);
    while (*reinterpret_cast<volatile unsigned*>(a.ctr + 2) < gridDim.x) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
  float tot = 0.f;
  for (int k = t; k < (int)gridDim.x; k += T) tot += __ldcg(a.ws + k);
  const float norm = sqrtf(block_sum(tot, sm));
  // pass 2: the held items, then items shared out from the last
#pragma unroll
  for (int i = 0; i < RI; ++i)
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
      const size_t p = at(blockIdx.x * H + i, k);
      if (p < NP) st_out<FIXED>(a.y + p, div4(r[i * STEPS + k], norm));
    }
#pragma unroll
  for (int i = 0; i < SI; ++i)
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
      const size_t p = at(blockIdx.x * H + RI + i, k);
      if (p < NP) st_out<FIXED>(a.y + p, div4(held[(i * STEPS + k) * T + t], norm));
    }
  if (t == 0) grab[0] = a.items - 1 - (FIXED & 2 ? blockIdx.x : atomicAdd(a.ctr + 1, 1u));
  __syncthreads();
  g = 0;
  for (unsigned item = grab[0]; item >= streamed0 && item < a.items; item = grab[g]) {
    if (t == 0) grab[g ^ 1] = FIXED & 2 ? item - gridDim.x : a.items - 1 - atomicAdd(a.ctr + 1, 1u);   // wraps past 0: stops
    float4 v[STEPS];
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
      const size_t p = at(item, k);
      if (p < NP) v[k] = a.x[p];
    }
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
      const size_t p = at(item, k);
      if (p < NP) st_out<FIXED>(a.y + p, div4(v[k], norm));
    }
    g ^= 1;
    __syncthreads();
  }
  // the last block out zeroes the counters for the next launch
  if (t == 0 && atomicAdd(a.ctr + 3, 1u) == gridDim.x - 1) {
    a.ctr[0] = 0; a.ctr[1] = 0; a.ctr[2] = 0; a.ctr[3] = 0;
    __threadfence();
  }
}

// ---------------------------------------------------------------- harness
char* g_flush;
constexpr size_t FLUSH = 128 << 20;

float time_ms(const std::function<void()>& f, int trials = 40) {
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

void row(const char* name, float ms, double bytes, float err) {
  printf("%-28s %8.4f ms %7.0f GB/s (of 12 bytes an element)  err %.2e\n", name, ms, bytes / ms / 1e6, err);
}

float *x, *y, *ref, *ws;
unsigned long long* count;
unsigned* dctr;
int sms;

template <int T, int REG, int SMS, int U, int per_sm>
void coop(int keep, bool cs) {
  auto kern = fro_coop<T, REG, SMS, U, per_sm>;
  const int smem = SMS * T * 16;
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int fit = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kern, T, smem));
  cudaFuncAttributes fa; CK(cudaFuncGetAttributes(&fa, kern));
  if (fit < per_sm) { printf("T%d R%d S%d x%d: only %d blocks an SM fit (%d regs)\n", T, REG, SMS, per_sm, fit, fa.numRegs); return; }
  const unsigned blocks = sms * per_sm;
  CoopArgs a{reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(y), ws, count, 0, 0, keep, cs};  // NOLINT
  a.chunk = (unsigned)((NP + blocks - 1) / blocks);
  a.per = (a.chunk + T - 1) / T;
  void* args[] = {&a};
  auto f = [&] { CK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kern), dim3(blocks), dim3(T), args, smem, 0)); };
  CK(cudaMemset(y, 0, N * 4));
  f();
  CK(cudaDeviceSynchronize());
  char label[64];
  snprintf(label, sizeof label, "coop T%d x%d R%d S%d U%d k%d%s", T, per_sm, REG, SMS, U, keep, cs ? " cs" : "");
  const float err = max_rel(ref, y, N);
  const float ms = time_ms(f);
  row(label, ms, 12.0 * N, err);
  printf("    %d regs, %u steps a thread, %.1f %% held\n", fa.numRegs, a.per, 100.0 * (REG + SMS) / a.per);
}

template <int T, int RI, int SI, int STEPS, int per_sm, int fixed = 0>
void dyn(int keep) {
  auto kern = fro_dyn<T, RI, SI, STEPS, per_sm, fixed>;
  const int smem = SI * STEPS * T * 16;
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int fit = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kern, T, smem));
  cudaFuncAttributes fa; CK(cudaFuncGetAttributes(&fa, kern));
  if (fit < per_sm) { printf("dyn T%d R%d S%d x%d: only %d blocks an SM fit (%d regs)\n", T, RI, SI, per_sm, fit, fa.numRegs); return; }
  const unsigned blocks = sms * per_sm;
  DynArgs a{reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(y), ws, dctr,
            (unsigned)((NP + STEPS * T - 1) / (STEPS * T)), keep};
  void* args[] = {&a};
  auto f = [&] { CK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kern), dim3(blocks), dim3(T), args, smem, 0)); };
  CK(cudaMemset(y, 0, N * 4));
  f();
  CK(cudaDeviceSynchronize());
  char label[64];
  snprintf(label, sizeof label, "dyn T%d x%d R%d S%d st%d k%d f%d", T, per_sm, RI, SI, STEPS, keep, fixed);
  const float err = max_rel(ref, y, N);
  const float ms = time_ms(f);
  row(label, ms, 12.0 * N, err);
  printf("    %d regs, %u items, %.1f %% held\n", fa.numRegs, a.items, 100.0 * blocks * (RI + SI) / a.items);
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  CK(cudaMalloc(&x, N * 4)); CK(cudaMalloc(&y, N * 4)); CK(cudaMalloc(&ref, N * 4)); CK(cudaMalloc(&ws, 1 << 20));
  CK(cudaMalloc(&count, 8)); CK(cudaMemset(count, 0, 8));
  CK(cudaMalloc(&dctr, 16)); CK(cudaMemset(dctr, 0, 16));
  CK(cudaMalloc(&g_flush, FLUSH));
  fill_kernel<<<1024, 256>>>(x, N, 7u);
  CK(cudaDeviceSynchronize());
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("%s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  sms = prop.multiProcessorCount;

  auto two = [&](float* out) { fro_p1<<<FSPLITS, 1024>>>(x, ws); fro_p2<<<FSPLITS, 1024>>>(x, out, ws); };
  two(ref);
  CK(cudaDeviceSynchronize());
  two(y);
  CK(cudaDeviceSynchronize());
  {
    const float err = max_rel(ref, y, N);
    row("two (gen)", time_ms([&] { two(y); }), 12.0 * N, err);
  }

  dyn<256, 2, 6, 2, 4, 1>(0);
  dyn<256, 2, 6, 2, 4, 5>(0);
  dyn<256, 2, 6, 2, 4, 1>(0);
  dyn<256, 2, 6, 2, 4, 5>(0);
  CK(cudaDeviceSynchronize());
  printf("done\n");
  return 0;
}
