// igemm.cu's convolution on the H100's own tensor-core instructions (wgmma, sm_90a): the same
// problem (the bundled example: 128 x 64 x 128 x 128, 3x3 -> 128 channels, then min(., 0.5) + bias,
// x 2), NCHW in and out, the epilogue applied as the output is stored.
//
// A block: 128 pixels x 128 output channels, two warpgroups of 64 pixels each; k in slices of 32.
// B (the weights) is packed once on the host: rounded to TF32, in 128 x 32 tiles K-major in wgmma's
// 128-byte swizzle, a slice landing by one bulk copy on an mbarrier. A (the input patches) is
// gathered by every thread with 4-byte cp.async straight into the same swizzled K-major layout (a
// warp takes 8 neighbouring pixels of 4 k: full 32-byte sectors read, no bank conflicts written).
// Optionally each thread then rounds the values it gathered to TF32 (cvt.rna) in place; without
// that the tensor cores read float32 and use its top 19 bits.
//
// nvcc -O3 -gencode arch=compute_90a,code=sm_90a igemm_wgmma.cu -o igemm_wgmma && ./igemm_wgmma
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); exit(1); } } while (0)

constexpr int N = 128, C = 64, H = 128, W = 128, K = 128, R = 3, S = 3;
constexpr int OH = H - R + 1, OW = W - S + 1, P = OH * OW;
constexpr long long M = (long long)N * P;
constexpr int KG = C * R * S;          // 576
constexpr int BM = 128, BN = 128, BK = 32, KT = KG / BK;
constexpr int TILE = 128 * BK;         // floats of a 128 x 32 tile
static_assert(KG % BK == 0 && K % BN == 0, "the prototype's shapes");

__device__ __forceinline__ unsigned smem_addr(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void cp4(float* dst, const float* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" :: "r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp16(float* dst, const float* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int n> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(n) : "memory"); }
// rows of 128 bytes (32 k), 128-byte swizzle, 8-row groups 1024 bytes apart
__device__ __forceinline__ uint64_t desc(const float* p) {
  const uint64_t addr = smem_addr(p);
  return ((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}
__device__ __forceinline__ int swz(int r, int k) { return r * BK + (((k >> 2) ^ (r & 7)) << 2) + (k & 3); }
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int n> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(n) : "memory"); }
__device__ __forceinline__ void pin(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i]) :: "memory");
}
__device__ __forceinline__ void bar_init(uint64_t* b, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(smem_addr(b)), "r"(count));
}
__device__ __forceinline__ void bar_wait(uint64_t* b, unsigned parity) {
  asm volatile("{\n.reg .pred p;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra WAIT;\n}\n"
               :: "r"(smem_addr(b)), "r"(parity) : "memory");
}
__device__ __forceinline__ void bulk_copy(float* dst, const float* src, unsigned bytes, uint64_t* b) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
               :: "r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(b)) : "memory");
}
// d += a * b: a 64 x 8 and b 8 x 128 from shared memory
__device__ __forceinline__ void mma(float (&d)[64], uint64_t ad, uint64_t bd) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "%64, %65, p, 1, 1;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(ad), "l"(bd), "r"(1));
}

// NHWC: the input channels-last, k ordered (r, s, c): a slice is 32 channels of one (r, s), a
// pixel's 128 bytes of it read with 16-byte cp.async (the weights packed in the same k order)
// ONE_BAR: one barrier a slice, loads STAGES - 2 slices ahead (the stage written was read by the
// products two slices back, done: each warpgroup keeps one group of products in flight)
template <int STAGES, bool ROUND, bool NHWC, bool ONE_BAR>
__global__ void __launch_bounds__(256) conv_wgmma(const float* __restrict__ x, const float* __restrict__ wpk,
                                                  const int* __restrict__ koff_g, const float* __restrict__ cbias,
                                                  const float* __restrict__ bias, float* __restrict__ y) {
  extern __shared__ float4 smem4[];
  __shared__ alignas(8) uint64_t full[STAGES];
  __shared__ int koff[KG];
  float* smem = reinterpret_cast<float*>(smem4);
  smem += ((1024 - (smem_addr(smem) & 1023)) & 1023) / 4;   // the swizzle wants 1024-byte alignment
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  for (int i = tid; i < KG; i += 256) koff[i] = koff_g[i];
  const long long m0 = (long long)blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;
  // the gather: this thread's two pixels (m groups 2 * warp and 2 * warp + 1, lane % 8) and k % 4
  const int ml = lane & 7, kq = lane >> 3;
  const float* xm[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const long long m = m0 + (2 * warp + h) * 8 + ml;
    const long long n = m / P; const int p = static_cast<int>(m % P);
    xm[h] = NHWC ? x + n * C * H * W + ((p / OW) * W + (p % OW)) * C : x + n * C * H * W + (p / OW) * W + (p % OW);
  }
  const float* xr[4];   // NHWC: this thread's 4 pixels (rows warp * 16 + lane / 8 + 4 i) and its chunk lane % 8
  if (NHWC) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const long long m = m0 + warp * 16 + (lane >> 3) + 4 * i;
      const long long n = m / P; const int p = static_cast<int>(m % P);
      xr[i] = x + n * C * H * W + ((p / OW) * W + (p % OW)) * C + (lane & 7) * 4;
    }
  }
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) bar_init(&full[s], 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  const float* wtile = wpk + (long long)blockIdx.y * KT * TILE;
  auto load = [&](int kt) {
    float* as = smem + (kt % STAGES) * 2 * TILE;
    const int k0 = kt * BK;
    if (NHWC) {
      const int rs = k0 / C, c0 = k0 % C;
      const int off = ((rs / S) * W + rs % S) * C + c0;
#pragma unroll
      for (int i = 0; i < 4; ++i) cp16(as + swz(warp * 16 + (lane >> 3) + 4 * i, (lane & 7) * 4), xr[i] + off);
    } else {
#pragma unroll
      for (int j = 0; j < 16; ++j) {   // pixel group 2 * warp + j / 8, k chunk j % 8
        const int r = (2 * warp + j / 8) * 8 + ml, k = (j % 8) * 4 + kq;
        cp4(as + swz(r, k), xm[j / 8] + koff[k0 + k]);
      }
    }
    if (tid == 0) {
      uint64_t* b = &full[kt % STAGES];
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(smem_addr(b)), "r"(TILE * 4) : "memory");
      bulk_copy(as + TILE, wtile + (long long)kt * TILE, TILE * 4, b);
    }
  };
  constexpr int AHEAD = ONE_BAR ? STAGES - 2 : STAGES - 1;
#pragma unroll
  for (int s = 0; s < AHEAD; ++s) { load(s); cp_commit(); }
  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt % STAGES;
    float* as = smem + s * 2 * TILE;
    cp_wait<AHEAD - 1>();
    if (ROUND && NHWC) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float4* q = reinterpret_cast<float4*>(as + swz(warp * 16 + (lane >> 3) + 4 * i, (lane & 7) * 4));
        float4 v = *q;
        uint32_t a, b, c, d;
        asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(a) : "f"(v.x)); asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(b) : "f"(v.y));
        asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(c) : "f"(v.z)); asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(d) : "f"(v.w));
        *q = make_float4(__uint_as_float(a), __uint_as_float(b), __uint_as_float(c), __uint_as_float(d));
      }
    }
    if (ROUND && !NHWC) {   // the values this thread gathered, rounded to TF32 in place
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        float* q = as + swz((2 * warp + j / 8) * 8 + ml, (j % 8) * 4 + kq);
        uint32_t r; asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(*q)); *q = __uint_as_float(r);
      }
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");   // the gathered A, seen by wgmma
    bar_wait(&full[s], (kt / STAGES) & 1);
    __syncthreads();
    if (ONE_BAR) {
      if (kt + AHEAD < KT) load(kt + AHEAD);
      cp_commit();
    }
    pin(acc);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BK / 8; ++kk) mma(acc, desc(as + wg * 64 * BK + kk * 8), desc(as + TILE + kk * 8));
    wg_commit();
    wg_wait<1>();    // the previous slice's products are done: its stage may be written again
    pin(acc);
    if (!ONE_BAR) {
      __syncthreads();
      if (kt + STAGES - 1 < KT) load(kt + STAGES - 1);
      cp_commit();
    }
  }
  wg_wait<0>();
  pin(acc);
  // accumulator i: pixel row g + 8 * (i / 2 % 2) of the warp's 16, channel 8 * (i / 4) + 2 * t + i % 2
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const long long m = m0 + warp * 16 + g + h * 8;
    const long long n = m / P; const int p = static_cast<int>(m % P);
    float* yo = y + n * K * P + p;
#pragma unroll
    for (int i = 0; i < 64; ++i) {
      if (((i >> 1) & 1) != h) continue;
      const int k = n0 + 8 * (i >> 2) + 2 * t + (i & 1);
      const float v = acc[i] + cbias[k];
      yo[(long long)k * P] = (fminf(v, 0.5f) + bias[k]) * 2.0f;
    }
  }
}

static float round_tf32_host(float v) {   // cvt.rna: to nearest, ties away from zero
  uint32_t b; memcpy(&b, &v, 4);
  b = (b + 0x1000u) & 0xffffe000u;
  float r; memcpy(&r, &b, 4);
  return r;
}

template <int STAGES, bool ROUND, bool NHWC, bool ONE_BAR = false>
void run(const char* name, const float* x, const float* wpk, const int* koff, const float* cb, const float* b, float* y,
         void* flush, const std::vector<float>& hx, const std::vector<float>& hw, const std::vector<float>& hcb,
         const std::vector<float>& hb) {
  auto kern = conv_wgmma<STAGES, ROUND, NHWC, ONE_BAR>;
  const int smem = STAGES * 2 * TILE * 4 + 1024;
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int per_sm = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, 256, smem));
  const dim3 grid(M / BM, K / BN);
  auto launch = [&]() { kern<<<grid, 256, smem>>>(x, wpk, koff, cb, b, y); };
  CK(cudaMemset(y, 0xff, (size_t)M * K * 4));
  launch(); CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  srand(7);
  double maxerr = 0, maxref = 0; bool nan = false;
  float out;
  for (int q = 0; q < 2000; ++q) {
    const int n = rand() % N, k = rand() % K, oh = rand() % OH, ow = rand() % OW;
    double acc = hcb[k];
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r)
        for (int s = 0; s < S; ++s)
          acc += (double)hx[(((size_t)n * C + c) * H + oh + r) * W + ow + s] * hw[((k * C + c) * R + r) * S + s];
    const double ref = (std::min(acc, 0.5) + hb[k]) * 2.0;
    CK(cudaMemcpy(&out, y + (((size_t)n * K + k) * OH + oh) * OW + ow, 4, cudaMemcpyDeviceToHost));
    if (std::isnan(out)) nan = true;
    maxerr = std::max(maxerr, std::abs(out - ref));
    maxref = std::max(maxref, std::abs(ref));
  }
  cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  std::vector<float> ts;
  for (int it = 0; it < 25; ++it) {
    CK(cudaMemsetAsync(flush, it, 128 << 20));
    CK(cudaEventRecord(e0)); launch(); CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1));
    float ms; CK(cudaEventElapsedTime(&ms, e0, e1)); ts.push_back(ms);
  }
  std::sort(ts.begin(), ts.end());
  const double ms = ts[ts.size() / 2];
  printf("| %s | %d | %d | %.3f | %.0f | %.2e | %s |\n", name, smem, per_sm, ms, 2.0 * M * K * KG / ms / 1e9,
         maxerr / maxref, nan ? "NaN" : "ok");
}

int main() {
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  const size_t nx = (size_t)N * C * H * W, nw = (size_t)K * KG, ny = (size_t)M * K;
  std::vector<float> hx(nx), hw(nw), hcb(K), hb(K);
  srand(1);
  auto u = []() { return (rand() % 20001 - 10000) / 10000.f; };
  for (auto& v : hx) v = u();
  for (auto& v : hw) v = u() / 24.f;
  for (auto& v : hcb) v = u() / 24.f;
  for (auto& v : hb) v = u();
  std::vector<int> hk(KG);
  for (int c = 0; c < C; ++c) for (int r = 0; r < R; ++r) for (int s = 0; s < S; ++s) hk[(c * R + r) * S + s] = c * H * W + r * W + s;
  // weights packed: [n tile][k slice][128 rows][32 k], K-major, 128-byte swizzle, rounded to TF32
  std::vector<float> hp((size_t)(K / BN) * KT * TILE), hq(hp.size());   // k as (c, r, s); as (r, s, c)
  for (int nt = 0; nt < K / BN; ++nt)
    for (int kt = 0; kt < KT; ++kt)
      for (int r = 0; r < BN; ++r)
        for (int k = 0; k < BK; ++k) {
          const size_t at = ((size_t)nt * KT + kt) * TILE + r * BK + (((k >> 2) ^ (r & 7)) << 2) + (k & 3);
          const int kg = kt * BK + k, rs = kg / C, c = kg % C;
          hp[at] = round_tf32_host(hw[(size_t)(nt * BN + r) * KG + kg]);
          hq[at] = round_tf32_host(hw[(size_t)(nt * BN + r) * KG + c * R * S + rs]);
        }
  std::vector<float> hxl(nx);   // the input channels-last
  for (int n = 0; n < N; ++n) for (int c = 0; c < C; ++c) for (int i = 0; i < H * W; ++i)
    hxl[((size_t)n * H * W + i) * C + c] = hx[((size_t)n * C + c) * H * W + i];
  float *x, *wpk, *cb, *b, *y, *xl, *wq; int* koff; void* flush;
  CK(cudaMalloc(&xl, nx * 4)); CK(cudaMalloc(&wq, hq.size() * 4));
  CK(cudaMemcpy(xl, hxl.data(), nx * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(wq, hq.data(), hq.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMalloc(&x, nx * 4)); CK(cudaMalloc(&wpk, hp.size() * 4)); CK(cudaMalloc(&koff, KG * 4));
  CK(cudaMalloc(&cb, K * 4)); CK(cudaMalloc(&b, K * 4)); CK(cudaMalloc(&y, ny * 4)); CK(cudaMalloc(&flush, 128 << 20));
  CK(cudaMemcpy(x, hx.data(), nx * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(wpk, hp.data(), hp.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(koff, hk.data(), KG * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(cb, hcb.data(), K * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(b, hb.data(), K * 4, cudaMemcpyHostToDevice));
  printf("%s: conv 128x64x128x128, 3x3 -> 128 channels, epilogue fused, NCHW in and out, wgmma (%.1f GFLOP)\n\n",
         prop.name, 2.0 * M * K * KG / 1e9);
  printf("| kernel | smem B | blocks/SM | ms | TFLOP/s | max err / max | check |\n|---|---|---|---|---|---|---|\n");
  run<3, false, true>("NHWC in (rounded before), 2 barriers, s3", xl, wq, koff, cb, b, y, flush, hx, hw, hcb, hb);
  run<3, false, true, true>("NHWC in (rounded before), 1 barrier, s3 (1 ahead)", xl, wq, koff, cb, b, y, flush, hx, hw, hcb, hb);
  run<4, false, true, true>("NHWC in (rounded before), 1 barrier, s4 (2 ahead)", xl, wq, koff, cb, b, y, flush, hx, hw, hcb, hb);
  run<5, false, true, true>("NHWC in (rounded before), 1 barrier, s5 (3 ahead)", xl, wq, koff, cb, b, y, flush, hx, hw, hcb, hb);
  run<4, false, true>("NHWC in (rounded before), 2 barriers, s4", xl, wq, koff, cb, b, y, flush, hx, hw, hcb, hb);
  return 0;
}
