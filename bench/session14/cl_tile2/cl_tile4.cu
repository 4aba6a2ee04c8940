// Micro-benchmark: a pointwise epilogue that reads a channels-last tensor and writes NCHW
// (the transposing tile of codegen/pointwise.py) against tiles that take 64 or 128 channels.
// nvcc -O3 -arch=sm_90 cl_tile4.cu -o cl_tile4 && ./cl_tile4
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>

struct Copy { __device__ static float f(float x, float b) { return x + b; } };
struct Mish { __device__ static float f(float x, float b) {
  float v = x + b - 0.5f - 0.2f; return v * tanhf(log1pf(expf(v))); } };

// the generated tile: 32 channels x 32*S pixels, 16-byte loads along channels, 16-byte stores along pixels
template <class Op, int S>
__global__ void __launch_bounds__(256) k_vec(const float* __restrict__ in, const float* __restrict__ bias,
                                             float* __restrict__ out, uint32_t C, uint32_t P) {
  __shared__ float t[S][32][33];  // [subtile][channel][pixel]
  const uint32_t img = blockIdx.z, c0 = blockIdx.y * 32u, p0 = blockIdx.x * (32u * S);
  const uint32_t tid = threadIdx.x;
  {
    const uint32_t cg = (tid & 7u) * 4u, w = tid >> 3;
    float4 v[S];
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const uint32_t p = p0 + 32u * s + w;
      v[s] = (p < P && c0 + cg < C) ? *reinterpret_cast<const float4*>(in + (img * P + p) * C + c0 + cg)
                                    : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int s = 0; s < S; ++s) {
      t[s][cg][w] = v[s].x; t[s][cg + 1][w] = v[s].y; t[s][cg + 2][w] = v[s].z; t[s][cg + 3][w] = v[s].w;
    }
  }
  __syncthreads();
  const uint32_t pg = (tid & 7u) * 4u, cc = tid >> 3;
  const uint32_t ch = c0 + cc;
  if (ch >= C) return;
  const float b = bias[ch];
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const uint32_t p = p0 + 32u * s + pg;
    if (p < P) {
      float4 r;
      r.x = Op::f(t[s][cc][pg], b); r.y = Op::f(t[s][cc][pg + 1], b);
      r.z = Op::f(t[s][cc][pg + 2], b); r.w = Op::f(t[s][cc][pg + 3], b);
      *reinterpret_cast<float4*>(out + (img * C + ch) * P + p) = r;
    }
  }
}

// CT channels (a multiple of 32: all of a pixel's channels where C <= CT, so a block reads whole
// 256-byte pixel rows, contiguous runs of the input) x 32*S pixels, 256 threads: the question is
// whether the generated tile's half-rows (two blocks reading the two 128-byte halves of each
// pixel's 64 channels at different times) cost DRAM locality.
template <class Op, int CT, int S>
__global__ void __launch_bounds__(256) k_wide(const float* __restrict__ in, const float* __restrict__ bias,
                                              float* __restrict__ out, uint32_t C, uint32_t P) {
  __shared__ float t[S][CT][33];  // [subtile][channel][pixel]
  const uint32_t img = blockIdx.z, c0 = blockIdx.y * CT, p0 = blockIdx.x * (32u * S);
  const uint32_t tid = threadIdx.x;
  constexpr uint32_t G = CT / 4, W = 256 / G;   // threads along the channels (4 each), pixels a pass
  {
    const uint32_t cg = (tid % G) * 4u, w0 = tid / G;
#pragma unroll
    for (int s = 0; s < S; ++s) {
#pragma unroll
      for (uint32_t w = w0; w < 32; w += W) {
        const uint32_t p = p0 + 32u * s + w;
        const float4 v = (p < P && c0 + cg < C) ? *reinterpret_cast<const float4*>(in + (img * P + p) * C + c0 + cg)
                                                : make_float4(0.f, 0.f, 0.f, 0.f);
        t[s][cg][w] = v.x; t[s][cg + 1][w] = v.y; t[s][cg + 2][w] = v.z; t[s][cg + 3][w] = v.w;
      }
    }
  }
  __syncthreads();
  const uint32_t pg = (tid & 7u) * 4u;
#pragma unroll
  for (uint32_t cc = tid >> 3; cc < CT; cc += 32) {
    const uint32_t ch = c0 + cc;
    if (ch >= C) break;
    const float b = bias[ch];
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const uint32_t p = p0 + 32u * s + pg;
      if (p < P) {
        float4 r;
        r.x = Op::f(t[s][cc][pg], b); r.y = Op::f(t[s][cc][pg + 1], b);
        r.z = Op::f(t[s][cc][pg + 2], b); r.w = Op::f(t[s][cc][pg + 3], b);
        *reinterpret_cast<float4*>(out + (img * C + ch) * P + p) = r;
      }
    }
  }
}

template <class Op, int S> void L_vec(const float* i, const float* b, float* o, int N, int C, int P) {
  k_vec<Op, S><<<dim3((P + 32 * S - 1) / (32 * S), (C + 31) / 32, N), 256>>>(i, b, o, C, P); }
template <class Op, int CT, int S> void L_wide(const float* i, const float* b, float* o, int N, int C, int P) {
  k_wide<Op, CT, S><<<dim3((P + 32 * S - 1) / (32 * S), (C + CT - 1) / CT, N), 256>>>(i, b, o, C, P); }

static float time_ms(void (*launch)(const float*, const float*, float*, int, int, int),
                     const float* in, const float* b, float* out, int N, int C, int P) {
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  std::vector<float> ts;
  for (int r = 0; r < 40; ++r) {
    cudaEventRecord(e0); launch(in, b, out, N, C, P); cudaEventRecord(e1); cudaEventSynchronize(e1);
    float ms; cudaEventElapsedTime(&ms, e0, e1); if (r >= 5) ts.push_back(ms);
  }
  std::sort(ts.begin(), ts.end()); return ts[ts.size() / 2];
}

template <class Op> __global__ void ref(const float* in, const float* b, float* out, int N, int C, int P) {
  long long i = blockIdx.x * 256ll + threadIdx.x; if (i >= (long long)N * C * P) return;
  long long p = i % P, c = (i / P) % C, n = i / ((long long)P * C);
  out[i] = Op::f(in[(n * P + p) * C + c], b[c]);
}

template <class Op> void run(const char* opname, int N, int C, int P, float* in, float* b, float* out, float* want) {
  long long n = (long long)N * C * P;
  ref<Op><<<(n + 255) / 256, 256>>>(in, b, want, N, C, P);
  struct V { const char* name; void (*l)(const float*, const float*, float*, int, int, int); };
  V vs[] = {{"vec32x64 (generated)", L_vec<Op, 2>}, {"wide64x32", L_wide<Op, 64, 1>},
            {"wide64x64", L_wide<Op, 64, 2>}, {"wide128x32", L_wide<Op, 128, 1>},
            {"vec32x64 (generated) again", L_vec<Op, 2>}};
  std::vector<float> h(n), hw(n);
  cudaMemcpy(hw.data(), want, n * 4, cudaMemcpyDeviceToHost);
  for (auto& v : vs) {
    cudaMemset(out, 0, n * 4);
    float ms = time_ms(v.l, in, b, out, N, C, P);
    cudaMemcpy(h.data(), out, n * 4, cudaMemcpyDeviceToHost);
    long long bad = 0; for (long long i = 0; i < n; ++i) bad += (h[i] != hw[i]);
    printf("| %s | %d,%d,%d | %s | %.4f | %.0f | %s |\n", opname, N, C, P, v.name, ms, 2.0 * n * 4 / ms / 1e6,
           bad ? "WRONG" : "ok");
  }
}

int main() {
  int shapes[][3] = {{64, 64, 126 * 126}, {32, 128, 56 * 56}, {128, 32, 64 * 64}, {16, 96, 100 * 100}};
  printf("| op | N,C,P | kernel | ms | GB/s | check |\n|---|---|---|---|---|---|\n");
  for (auto& s : shapes) {
    long long n = (long long)s[0] * s[1] * s[2];
    float *in, *b, *out, *want; cudaMalloc(&in, n * 4); cudaMalloc(&out, n * 4); cudaMalloc(&want, n * 4); cudaMalloc(&b, 4096);
    std::vector<float> h(n); for (long long i = 0; i < n; ++i) h[i] = ((i * 2654435761ull) % 1000) / 250.f - 2.f;
    cudaMemcpy(in, h.data(), n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(b, h.data(), 4096, cudaMemcpyHostToDevice);
    // plain device copy as the rate reference
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1); std::vector<float> ts;
    for (int r = 0; r < 30; ++r) { cudaEventRecord(e0); cudaMemcpyAsync(out, in, n * 4, cudaMemcpyDeviceToDevice);
      cudaEventRecord(e1); cudaEventSynchronize(e1); float ms; cudaEventElapsedTime(&ms, e0, e1); ts.push_back(ms); }
    std::sort(ts.begin(), ts.end());
    printf("| memcpy | %d,%d,%d | cudaMemcpy | %.4f | %.0f | |\n", s[0], s[1], s[2], ts[15], 2.0 * n * 4 / ts[15] / 1e6);
    run<Copy>("bias", s[0], s[1], s[2], in, b, out, want);
    run<Mish>("mish", s[0], s[1], s[2], in, b, out, want);
    cudaFree(in); cudaFree(out); cudaFree(want); cudaFree(b);
  }
  printf("err: %s\n", cudaGetErrorString(cudaGetLastError()));
}
