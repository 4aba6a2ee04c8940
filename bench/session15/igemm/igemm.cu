// Can a generated convolution beat cuDNN + the conversions around it? An implicit-GEMM TF32
// convolution that reads the NCHW input as it is and writes the NCHW output with the epilogue
// applied (the bundled example: conv2d 64 -> 128 channels, 3x3, on 128 x 64 x 128 x 128, then
// min(., 0.5) + bias, x 2). cuDNN needs the input converted to channels-last (0.36 ms), writes its
// output (1.04 GB) and a second kernel reads it back to apply the epilogue: torch.compile's 1.96 ms.
//
// GEMM view: M = output pixels (n, oh, ow), N = output channels, K = (c, r, s). A block computes a
// BM x BN tile; A (the input patches) is gathered with 4-byte cp.async along the pixels (coalesced:
// neighbouring pixels are neighbouring floats), B (the weights, rounded to TF32 once) with 16-byte
// cp.async; mma.sync m16n8k8 TF32, the A operand rounded to nearest (cvt.rna, as cuDNN's TF32 is
// no looser than that), float32 accumulation. The epilogue writes NCHW: a warp's store covers 8
// neighbouring pixels of 4 channels (full 32-byte sectors).
//
// nvcc -O3 -arch=sm_90 igemm.cu -o igemm && ./igemm
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cmath>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); exit(1); } } while (0)

constexpr int N = 128, C = 64, H = 128, W = 128, K = 128, R = 3, S = 3;
constexpr int OH = H - R + 1, OW = W - S + 1, P = OH * OW;
constexpr long long M = (long long)N * P;
constexpr int KG = C * R * S;   // 576

__constant__ int koff[KG];      // k = (c, r, s) -> its offset in the input from the patch's corner

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void cp4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" :: "r"(smem_u32(dst)), "l"(src));
}
__device__ __forceinline__ void cp16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(smem_u32(dst)), "l"(src));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int n> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(n)); }
__device__ __forceinline__ uint32_t tf32(float x, bool round) {
  uint32_t r;
  if (round) asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  else r = __float_as_uint(x);
  return r;
}
__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// BM x BN tile, BK of k a stage, WM x WN warps (each (BM / WM) x (BN / WN))
template <int BM, int BN, int BK, int STAGES, int WM, int WN, bool ROUND>
__global__ void __launch_bounds__(WM * WN * 32) conv_igemm(const float* __restrict__ x, const float* __restrict__ wp,
                                                           const float* __restrict__ cbias, const float* __restrict__ bias,
                                                           float* __restrict__ y) {
  constexpr int THREADS = WM * WN * 32;
  constexpr int AST = BM + 8, BST = BK + 8;             // padded rows: conflict-free 8-byte fragment reads
  constexpr int STAGE = BK * AST + BN * BST;            // floats
  constexpr int TM = BM / WM / 16, TN = BN / WN / 8;    // mma tiles a warp
  static_assert(THREADS % BM == 0 && BK % (THREADS / BM) == 0, "A gather: a thread per pixel");
  static_assert((BN * BK / 4) % THREADS == 0, "B: whole 16-byte chunks");
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp % WM) * (BM / WM), wn = (warp / WM) * (BN / WN);
  const long long m0 = (long long)blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;
  // the A gather: this thread's pixel and its k phase
  const int mi = tid % BM, kph = tid / BM;
  // A's pixels in smem: within each 16, pixel r at (r % 8) * 2 + r / 8, so that the pixels g and
  // g + 8 of an mma fragment are neighbours (one 8-byte read)
  const int mpos = (mi & ~15) | ((mi & 7) << 1) | ((mi >> 3) & 1);
  constexpr int KSTEP = THREADS / BM;
  const long long m = m0 + mi;
  const bool mok = m < M;
  const float* xm = x;
  if (mok) {
    const long long n = m / P; const int p = static_cast<int>(m % P);
    xm = x + n * C * H * W + (p / OW) * W + (p % OW);
  }
  auto load = [&](int stage, int kt) {
    float* As = smem + stage * STAGE;
    float* Bs = As + BK * AST;
    const int k0 = kt * BK;
#pragma unroll
    for (int j = 0; j < BK / KSTEP; ++j) {
      const int kk = kph + j * KSTEP;
      if (mok) cp4(As + kk * AST + mpos, xm + koff[k0 + kk]);
    }
#pragma unroll
    for (int j = 0; j < BN * BK / 4 / THREADS; ++j) {
      const int c = tid + j * THREADS, row = c / (BK / 4), col = (c % (BK / 4)) * 4;
      cp16(Bs + row * BST + col, wp + (long long)(n0 + row) * KG + k0 + col);
    }
  };
  float acc[TM][TN][4];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;
  constexpr int KT = KG / BK;
  static_assert(KG % BK == 0, "whole k slices (the prototype)");
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) { if (s < KT) load(s, s); cp_commit(); }
  for (int kt = 0; kt < KT; ++kt) {
    cp_wait<STAGES - 2>();
    __syncthreads();
    if (kt + STAGES - 1 < KT) load((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
    cp_commit();
    const float* As = smem + (kt % STAGES) * STAGE;
    const float* Bs = As + BK * AST;
#pragma unroll
    for (int k8 = 0; k8 < BK / 8; ++k8) {
      uint32_t a[TM][4], b[TN][2];
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const float* ap = As + (k8 * 8 + t) * AST + wm + i * 16 + 2 * g;
        const float2 lo = *reinterpret_cast<const float2*>(ap), hi = *reinterpret_cast<const float2*>(ap + 4 * AST);
        a[i][0] = tf32(lo.x, ROUND);
        a[i][1] = tf32(lo.y, ROUND);
        a[i][2] = tf32(hi.x, ROUND);
        a[i][3] = tf32(hi.y, ROUND);
      }
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        // the packed weights hold k and k + 4 of each 8 side by side
        const float2 v = *reinterpret_cast<const float2*>(Bs + (wn + j * 8 + g) * BST + k8 * 8 + 2 * t);
        b[j][0] = __float_as_uint(v.x);
        b[j][1] = __float_as_uint(v.y);
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) mma_tf32(acc[i][j], a[i], b[j]);
    }
  }
  cp_wait<0>();
  // epilogue: conv bias, min(., 0.5), + bias, x 2, stored NCHW
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long mm = m0 + wm + i * 16 + g + h * 8;
      if (mm >= M) continue;
      const long long n = mm / P; const int p = static_cast<int>(mm % P);
      float* yo = y + n * K * P + p;
#pragma unroll
      for (int j = 0; j < TN; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int k = n0 + wn + j * 8 + 2 * t + e;
          const float v = acc[i][j][h * 2 + e] + cbias[k];
          yo[(long long)k * P] = (fminf(v, 0.5f) + bias[k]) * 2.0f;
        }
    }
}

// the weights packed once: rounded to TF32, and within each 8 of k, k and k + 4 side by side
__global__ void round_tf32(const float* __restrict__ w, float* __restrict__ wp, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    uint32_t r; asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(w[i]));
    const int q = i % 8;
    wp[i - q + (q % 4) * 2 + q / 4] = __uint_as_float(r);
  }
}

template <int BM, int BN, int BK, int STAGES, int WM, int WN, bool ROUND>
void run(const char* name, const float* x, const float* wp, const float* cb, const float* b, float* y, void* flush,
         const std::vector<float>& hx, const std::vector<float>& hw, const std::vector<float>& hcb, const std::vector<float>& hb) {
  auto kern = conv_igemm<BM, BN, BK, STAGES, WM, WN, ROUND>;
  constexpr int STAGE = BK * (BM + 8) + BN * (BK + 8);
  const int smem = STAGES * STAGE * 4;
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int per_sm = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, WM * WN * 32, smem));
  const dim3 grid((M + BM - 1) / BM, K / BN);
  auto launch = [&]() { kern<<<grid, WM * WN * 32, smem>>>(x, wp, cb, b, y); };
  CK(cudaMemset(y, 0xff, (size_t)M * K * 4));   // NaN: unwritten outputs show
  launch(); CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  // check sampled outputs against a float64 convolution of the float32 operands
  srand(7);
  double maxerr = 0, maxref = 0; bool nan = false;
  std::vector<float> out(1);
  for (int q = 0; q < 2000; ++q) {
    const int n = rand() % N, k = rand() % K, oh = rand() % OH, ow = rand() % OW;
    double acc = hcb[k];
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r)
        for (int s = 0; s < S; ++s)
          acc += (double)hx[(((size_t)n * C + c) * H + oh + r) * W + ow + s] * hw[((k * C + c) * R + r) * S + s];
    const double ref = (std::min(acc, 0.5) + hb[k]) * 2.0;
    CK(cudaMemcpy(out.data(), y + (((size_t)n * K + k) * OH + oh) * OW + ow, 4, cudaMemcpyDeviceToHost));
    if (std::isnan(out[0])) nan = true;
    maxerr = std::max(maxerr, std::abs(out[0] - ref));
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
  for (auto& v : hw) v = u() / 24.f;    // ~ PyTorch's default init scale (1 / sqrt(576))
  for (auto& v : hcb) v = u() / 24.f;
  for (auto& v : hb) v = u();
  std::vector<int> hk(KG);
  for (int c = 0; c < C; ++c) for (int r = 0; r < R; ++r) for (int s = 0; s < S; ++s) hk[(c * R + r) * S + s] = c * H * W + r * W + s;
  CK(cudaMemcpyToSymbol(koff, hk.data(), KG * 4));
  float *x, *w, *wp, *cb, *b, *y; void* flush;
  CK(cudaMalloc(&x, nx * 4)); CK(cudaMalloc(&w, nw * 4)); CK(cudaMalloc(&wp, nw * 4));
  CK(cudaMalloc(&cb, K * 4)); CK(cudaMalloc(&b, K * 4)); CK(cudaMalloc(&y, ny * 4)); CK(cudaMalloc(&flush, 128 << 20));
  CK(cudaMemcpy(x, hx.data(), nx * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(w, hw.data(), nw * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(cb, hcb.data(), K * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(b, hb.data(), K * 4, cudaMemcpyHostToDevice));
  round_tf32<<<(nw + 255) / 256, 256>>>(w, wp, nw);
  printf("%s: conv 128x64x128x128, 3x3 -> 128 channels, epilogue fused, NCHW in and out (%.1f GFLOP)\n\n",
         prop.name, 2.0 * M * K * KG / 1e9);
  printf("| kernel (BMxBN, BK, stages, warps) | smem B | blocks/SM | ms | TFLOP/s | max err / max | check |\n|---|---|---|---|---|---|---|\n");
  run<128, 128, 32, 3, 2, 4, true>("128x128 k32 s3 w2x4", x, wp, cb, b, y, flush, hx, hw, hcb, hb);
  run<128, 128, 32, 3, 4, 2, true>("128x128 k32 s3 w4x2", x, wp, cb, b, y, flush, hx, hw, hcb, hb);
  run<128, 128, 32, 3, 2, 2, true>("128x128 k32 s3 w2x2 (64x64 a warp)", x, wp, cb, b, y, flush, hx, hw, hcb, hb);
  run<128, 128, 16, 4, 2, 2, true>("128x128 k16 s4 w2x2 (64x64 a warp)", x, wp, cb, b, y, flush, hx, hw, hcb, hb);
  run<256, 128, 16, 3, 4, 2, true>("256x128 k16 s3 w4x2 (64x64 a warp)", x, wp, cb, b, y, flush, hx, hw, hcb, hb);
  run<256, 128, 32, 2, 4, 2, true>("256x128 k32 s2 w4x2 (64x64 a warp)", x, wp, cb, b, y, flush, hx, hw, hcb, hb);
  run<128, 128, 32, 3, 2, 4, false>("128x128 k32 s3 w2x4, A truncated", x, wp, cb, b, y, flush, hx, hw, hcb, hb);
  // the copy rate, for scale: the output's 1.04 GB written once is the floor of any version
  cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  CK(cudaEventRecord(e0)); CK(cudaMemsetAsync(y, 0, ny * 4)); CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1));
  float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
  printf("\nmemset of the output (1.04 GB): %.3f ms\n", ms);
  return 0;
}
