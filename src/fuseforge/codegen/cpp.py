"""C++ spelling shared by the renderers: types, literals, and the element-code prelude.

The prelude is compiled twice, by nvcc for the CUDA kernels and by the host compiler for
the CPU twin, so every helper is `FF_HD` (host and device) and uses only <math.h>.
"""
from __future__ import annotations

import math
import struct

import torch

from . import cl_copy

CTYPES = {
    torch.float32: "float", torch.float64: "double", torch.int64: "int64_t",
    torch.int32: "int32_t", torch.int16: "int16_t", torch.int8: "int8_t",
    torch.uint8: "uint8_t", torch.bool: "bool",
}

SCALAR_TYPES = {
    torch.float32: "at::kFloat", torch.float64: "at::kDouble", torch.float16: "at::kHalf",
    torch.bfloat16: "at::kBFloat16", torch.int64: "at::kLong", torch.int32: "at::kInt",
    torch.int16: "at::kShort", torch.int8: "at::kChar", torch.uint8: "at::kByte",
    torch.bool: "at::kBool", torch.complex64: "at::kComplexFloat",
    torch.complex128: "at::kComplexDouble",
}


def ctype(dtype: torch.dtype) -> str:
    return CTYPES[dtype]


def _shortest_float32(v: float) -> str:
    f32 = struct.unpack("f", struct.pack("f", v))[0]
    for digits in range(1, 10):
        s = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(s)))[0] == f32:
            break
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def literal(value, dtype: torch.dtype) -> str:
    """A C++ literal of `value` converted to `dtype` as eager converts a Python scalar operand."""
    if dtype == torch.bool:
        return "true" if value else "false"
    if dtype.is_floating_point:
        value = float(value)
        t = ctype(dtype)
        if math.isnan(value):
            return f"{t}(NAN)"
        if math.isinf(value):
            return f"{t}({'-' if value < 0 else ''}INFINITY)"
        if dtype == torch.float32:
            return _shortest_float32(value)
        return repr(value) if ("e" in repr(value) or "." in repr(value)) else repr(value) + ".0"
    value = int(value)
    if dtype == torch.int64:
        return f"INT64_C({value})"
    return f"{ctype(dtype)}({value})"


PRELUDE = r"""
// ---- fuseforge element-code prelude: compiled for the device (nvcc) and the host (CPU twin)
#include <stdint.h>
#include <math.h>

#if defined(__CUDACC__)
#define FF_HD __host__ __device__ __forceinline__
#else
#define FF_HD inline
#endif

// Unary math for float and double; integer operands are converted before they get here.
#define FF_MATH1(name, f32, f64) \
  FF_HD float name(float x) { return f32(x); } \
  FF_HD double name(double x) { return f64(x); }
FF_MATH1(ff_exp, expf, exp)
FF_MATH1(ff_exp2, exp2f, exp2)
FF_MATH1(ff_expm1, expm1f, expm1)
FF_MATH1(ff_log, logf, log)
FF_MATH1(ff_log2, log2f, log2)
FF_MATH1(ff_log10, log10f, log10)
FF_MATH1(ff_log1p, log1pf, log1p)
FF_MATH1(ff_sqrt, sqrtf, sqrt)
FF_MATH1(ff_sin, sinf, sin)
FF_MATH1(ff_cos, cosf, cos)
FF_MATH1(ff_tan, tanf, tan)
FF_MATH1(ff_asin, asinf, asin)
FF_MATH1(ff_acos, acosf, acos)
FF_MATH1(ff_atan, atanf, atan)
FF_MATH1(ff_sinh, sinhf, sinh)
FF_MATH1(ff_cosh, coshf, cosh)
FF_MATH1(ff_tanh, tanhf, tanh)
FF_MATH1(ff_erf, erff, erf)
FF_MATH1(ff_erfc, erfcf, erfc)
#undef FF_MATH1
FF_HD float ff_rsqrt(float x) {
#if defined(__CUDA_ARCH__)
  return rsqrtf(x);
#else
  return 1.0f / sqrtf(x);
#endif
}
FF_HD double ff_rsqrt(double x) { return 1.0 / sqrt(x); }
FF_HD float ff_pow(float x, float y) { return powf(x, y); }
FF_HD double ff_pow(double x, double y) { return pow(x, y); }
FF_HD float ff_atan2(float y, float x) { return atan2f(y, x); }
FF_HD double ff_atan2(double y, double x) { return atan2(y, x); }
FF_HD float ff_fmin(float a, float b) { return fminf(a, b); }
FF_HD double ff_fmin(double a, double b) { return fmin(a, b); }
FF_HD float ff_fmax(float a, float b) { return fmaxf(a, b); }
FF_HD double ff_fmax(double a, double b) { return fmax(a, b); }

// Rounding: the identity on integers.
template <typename T> FF_HD T ff_floor(T x) { return x; }
template <typename T> FF_HD T ff_ceil(T x) { return x; }
template <typename T> FF_HD T ff_trunc(T x) { return x; }
template <typename T> FF_HD T ff_round(T x) { return x; }
FF_HD float ff_floor(float x) { return floorf(x); }
FF_HD double ff_floor(double x) { return floor(x); }
FF_HD float ff_ceil(float x) { return ceilf(x); }
FF_HD double ff_ceil(double x) { return ceil(x); }
FF_HD float ff_trunc(float x) { return truncf(x); }
FF_HD double ff_trunc(double x) { return trunc(x); }
FF_HD float ff_round(float x) { return nearbyintf(x); }   // half to even, as torch.round
FF_HD double ff_round(double x) { return nearbyint(x); }

// min/max propagate NaN, as torch.minimum/maximum/clamp do (fminf would drop it).
template <typename T> FF_HD T ff_min(T a, T b) { return (a != a || a < b) ? a : b; }
template <typename T> FF_HD T ff_max(T a, T b) { return (a != a || a > b) ? a : b; }
template <typename T> FF_HD T ff_abs(T x) { return x < T(0) ? T(-x) : x; }
FF_HD float ff_abs(float x) { return fabsf(x); }
FF_HD double ff_abs(double x) { return fabs(x); }
template <typename T> FF_HD T ff_sign(T x) {
  return x != x ? x : T((T(0) < x) - (x < T(0)));
}

// Python-style remainder (sign of the divisor) and C-style fmod.
template <typename T> FF_HD T ff_remainder(T a, T b) {
  T r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? T(r + b) : r;
}
FF_HD float ff_remainder(float a, float b) {
  float r = fmodf(a, b);
  return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r;
}
FF_HD double ff_remainder(double a, double b) {
  double r = fmod(a, b);
  return (r != 0.0 && ((r < 0.0) != (b < 0.0))) ? r + b : r;
}
template <typename T> FF_HD T ff_fmod(T a, T b) { return a % b; }
FF_HD float ff_fmod(float a, float b) { return fmodf(a, b); }
FF_HD double ff_fmod(double a, double b) { return fmod(a, b); }

// Floor division of floats, exact where a naive floor(a / b) is not (Python's algorithm).
template <typename T> FF_HD T ff_floor_divide(T a, T b) {
  if (b == T(0)) return a / b;
  T mod = ff_fmod(a, b);
  T div = (a - mod) / b;
  if (mod != T(0) && ((b < T(0)) != (mod < T(0)))) div -= T(1);
  if (div == T(0)) return copysign(T(0), a / b);
  T fl = ff_floor(div);
  return (div - fl > T(0.5)) ? fl + T(1) : fl;
}
template <typename T> FF_HD T ff_lerp(T a, T b, T w) {
  return ff_abs(w) < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

// Activations, in the formulas eager PyTorch uses.
template <typename T> FF_HD T ff_sigmoid(T x) { return T(1) / (T(1) + ff_exp(-x)); }
template <typename T> FF_HD T ff_silu(T x) { return x / (T(1) + ff_exp(-x)); }
template <typename T> FF_HD T ff_mish(T x) { return x * ff_tanh(ff_log1p(ff_exp(x))); }
template <typename T> FF_HD T ff_gelu(T x) {
  return x * T(0.5) * (T(1) + ff_erf(x * T(0.70710678118654752440)));
}
template <typename T> FF_HD T ff_gelu_tanh(T x) {
  const T inner = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
  return T(0.5) * x * (T(1) + ff_tanh(inner));
}
template <typename T> FF_HD T ff_softplus(T x, T beta, T threshold) {
  return (x * beta) > threshold ? x : ff_log1p(ff_exp(x * beta)) / beta;
}
template <typename T> FF_HD T ff_leaky_relu(T x, T slope) { return x > T(0) ? x : x * slope; }
template <typename T> FF_HD T ff_hardsigmoid(T x) {
  return ff_min(ff_max(x + T(3), T(0)), T(6)) / T(6);
}
template <typename T> FF_HD T ff_hardswish(T x) {
  return x * ff_min(ff_max(x + T(3), T(0)), T(6)) / T(6);
}
template <typename T> FF_HD T ff_elu(T x, T alpha, T scale, T input_scale) {
  return x <= T(0) ? ff_expm1(x * input_scale) * (alpha * scale) : x * scale;
}
template <typename T> FF_HD T ff_selu(T x) {
  return ff_elu(x, T(1.6732632423543772848170429916717), T(1.0507009873554804934193349852946), T(1));
}
// Accumulators of the row kernels: init(), add(element, index), merge(partial). Plain structs,
// so that they can live in shared memory; shfl_down/lane0 move them between CUDA lanes, within
// groups of w lanes (a power of two; every lane of the warp takes part).
#if defined(__CUDACC__)
#define FF_SHFL_DOWN(x) __shfl_down_sync(0xffffffffu, x, d, w)
#define FF_SHFL_0(x) __shfl_sync(0xffffffffu, x, 0, w)
#endif
template <typename T> struct ff_acc_sum {
  T v;
  static FF_HD ff_acc_sum init() { return {T(0)}; }
  FF_HD void add(T x, int64_t) { v += x; }
  FF_HD void merge(const ff_acc_sum& o) { v += o.v; }
#if defined(__CUDACC__)
  __device__ ff_acc_sum shfl_down(int d, int w) const { return {FF_SHFL_DOWN(v)}; }
  __device__ ff_acc_sum lane0(int w) const { return {FF_SHFL_0(v)}; }
#endif
};
template <typename T> struct ff_acc_prod {
  T v;
  static FF_HD ff_acc_prod init() { return {T(1)}; }
  FF_HD void add(T x, int64_t) { v *= x; }
  FF_HD void merge(const ff_acc_prod& o) { v *= o.v; }
#if defined(__CUDACC__)
  __device__ ff_acc_prod shfl_down(int d, int w) const { return {FF_SHFL_DOWN(v)}; }
  __device__ ff_acc_prod lane0(int w) const { return {FF_SHFL_0(v)}; }
#endif
};
template <typename T> struct ff_acc_max {   // NaN wins, as in torch.amax
  T v;
  static FF_HD ff_acc_max init() { return {T(-INFINITY)}; }
  FF_HD void add(T x, int64_t) { v = ff_max(v, x); }
  FF_HD void merge(const ff_acc_max& o) { v = ff_max(v, o.v); }
#if defined(__CUDACC__)
  __device__ ff_acc_max shfl_down(int d, int w) const { return {FF_SHFL_DOWN(v)}; }
  __device__ ff_acc_max lane0(int w) const { return {FF_SHFL_0(v)}; }
#endif
};
template <typename T> struct ff_acc_min {
  T v;
  static FF_HD ff_acc_min init() { return {T(INFINITY)}; }
  FF_HD void add(T x, int64_t) { v = ff_min(v, x); }
  FF_HD void merge(const ff_acc_min& o) { v = ff_min(v, o.v); }
#if defined(__CUDACC__)
  __device__ ff_acc_min shfl_down(int d, int w) const { return {FF_SHFL_DOWN(v)}; }
  __device__ ff_acc_min lane0(int w) const { return {FF_SHFL_0(v)}; }
#endif
};
// Value and index of the extreme element; NaN is the extreme, ties go to the first index
// (eager's argmax/argmin/max.dim rules). Greater: the comparison that makes b the better one.
template <typename T, bool Greater> struct ff_acc_arg {
  T v;
  int64_t i;
  static FF_HD ff_acc_arg init() { return {Greater ? T(-INFINITY) : T(INFINITY), INT64_MAX}; }
  FF_HD void merge(const ff_acc_arg& b) {
    bool take;
    if (v != v) take = b.v != b.v && b.i < i;
    else if (b.v != b.v) take = true;
    else take = (Greater ? b.v > v : b.v < v) || (b.v == v && b.i < i);
    if (take) *this = b;
  }
  FF_HD void add(T x, int64_t idx) { merge({x, idx}); }
#if defined(__CUDACC__)
  __device__ ff_acc_arg shfl_down(int d, int w) const { return {FF_SHFL_DOWN(v), FF_SHFL_DOWN(i)}; }
  __device__ ff_acc_arg lane0(int w) const { return {FF_SHFL_0(v), FF_SHFL_0(i)}; }
#endif
};
template <typename T> using ff_acc_argmax = ff_acc_arg<T, true>;
template <typename T> using ff_acc_argmin = ff_acc_arg<T, false>;
// Mean and sum of squared deviations in one pass (Welford; Chan et al. to merge partials).
template <typename T> struct ff_acc_welford {
  T mean, m2, n;
  static FF_HD ff_acc_welford init() { return {T(0), T(0), T(0)}; }
  FF_HD void add(T x, int64_t) {
    n += T(1);
    const T d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  FF_HD void merge(const ff_acc_welford& o) {
    if (o.n == T(0)) return;
    if (n == T(0)) { *this = o; return; }
    const T nn = n + o.n, d = o.mean - mean, w = o.n / nn;
    mean += d * w;
    m2 += o.m2 + d * d * n * w;
    n = nn;
  }
#if defined(__CUDACC__)
  __device__ ff_acc_welford shfl_down(int d, int w) const {
    return {FF_SHFL_DOWN(mean), FF_SHFL_DOWN(m2), FF_SHFL_DOWN(n)};
  }
  __device__ ff_acc_welford lane0(int w) const { return {FF_SHFL_0(mean), FF_SHFL_0(m2), FF_SHFL_0(n)}; }
#endif
};

// Byte offsets of the partial accumulators of split rows in their scratch buffer.
constexpr size_t ff_align16(size_t x) { return (x + 15) / 16 * 16; }

// The CPU twin's team: one thread does the whole row.
struct ff_team_cpu {
  static constexpr int t = 0, n = 1;
  template <class A> A reduce(const A& a) const { return a; }
};

// Four consecutive elements moved with one access (16 bytes for float) by the row kernels'
// vector path; the start must be aligned to the pack (the wrapper aligns the base pointers).
template <class T> struct alignas(4 * sizeof(T) < 16 ? 4 * sizeof(T) : 16) ff_pack4 { T v[4]; };
template <class T> FF_HD ff_pack4<T> ff_load_pack(const T* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const ff_pack4<T>*>(p);
#else
  ff_pack4<T> x;
  __builtin_memcpy(x.v, p, sizeof(x.v));
  return x;
#endif
}
template <class T> FF_HD void ff_store_pack(T* p, const ff_pack4<T>& x) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<ff_pack4<T>*>(p) = x;
#else
  __builtin_memcpy(p, x.v, sizeof(x.v));
#endif
}
"""


# x rounded to TF32 as cvt.rna.tf32.f32 rounds it (10 mantissa bits, ties away from zero): the
# CPU twins' operands of TF32 products (convolutions, --tf32 GEMMs); Inf and NaN pass unchanged
TF32_ROUND = r"""
FF_HD float ff_tf32(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  __builtin_memcpy(&x, &u, 4);
  return x;
}
"""

# The team of one thread for a row function on a GPU too (a convolution's pixel rows in its CPU
# twin and its direct kernel: the twin's ff_team_cpu is host code).
ONE_THREAD_TEAM = r"""
struct ff_team_one {
  static constexpr int t = 0, n = 1;
  template <class A> FF_HD A reduce(const A& a) const { return a; }
};
"""

# Helpers of the row kernels (rows.py) beyond the prelude, in the element code of a module whose
# kernels use them: the outer schedule's batched Welford step, and the resident rows.
WELFORD_BATCH_PRELUDE = r"""
// The first nb of x (a step of the outer schedule's batched loop, or a pack of the vector path,
// rows.py) folded at once: their mean and M2, merged as a partial (two divisions, not one an element).
template <typename T, int B> FF_HD void ff_welford_add_batch(ff_acc_welford<T>& acc, const T (&x)[B], int nb) {
  if (nb == 0) return;
  T s = T(0), q = T(0);
  for (int j = 0; j < B; ++j) if (j < nb) s += x[j];
  const T m = s / T(nb);
  for (int j = 0; j < B; ++j) if (j < nb) q += (x[j] - m) * (x[j] - m);
  acc.merge({m, q, T(nb)});
}
"""

STAGE_ROWS_PRELUDE = r"""
#if defined(__CUDACC__)
// The outer schedule's block of R rows (rows r0.. of which the first n exist; row r's L floats at
// x + r * rs) staged in shared memory with 16-byte loads, consecutive threads taking consecutive 16
// bytes: a thread reading 4 bytes down its own row touched a line per thread (level2/022's softmax
// over the channels of a channels-last tensor: 0.303 -> 0.223 ms on an H100, the copy's 0.227;
// bench/session11/cl_softmax). All THREADS threads of the block (R x THREADS / R) call it.
template <int R, int L, int THREADS, class I>
__device__ __forceinline__ void ff_stage_rows(const float* __restrict__ x, const I r0, const I n, const I rs,
                                              float (*s)[L + 1]) {
  static_assert(L % 4 == 0, "rows of whole 16-byte chunks");
  const int t = threadIdx.y * R + threadIdx.x;
  const bool vec = (reinterpret_cast<uintptr_t>(x) & 15) == 0;   // (rs: a multiple of 4)
  __syncthreads();   // the rows staged before are read
#pragma unroll
  for (int q = t; q < R * L / 4; q += THREADS) {
    const int r = q / (L / 4), c = q % (L / 4) * 4;
    if (r0 + I(r) >= n) continue;
    const float* p = x + (r0 + I(r)) * rs + c;
    const float4 f = vec ? *reinterpret_cast<const float4*>(p) : make_float4(p[0], p[1], p[2], p[3]);
    s[r][c] = f.x;
    s[r][c + 1] = f.y;
    s[r][c + 2] = f.z;
    s[r][c + 3] = f.w;
  }
  __syncthreads();
}
#endif
"""

RESIDENT_PRELUDE = r"""
// A thread's share of a resident row (rows.py), PER steps: on the GPU the first REG in
// registers, the others in shared memory (from base + off, steps n apart); the CPU twin keeps
// its share on the heap.
template <class P, int REG, int PER> struct ff_row_cache {
#if defined(__CUDA_ARCH__)
  P reg[REG > 0 ? REG : 1];
  P* sm;
  int n;
  __device__ __forceinline__ ff_row_cache(unsigned char* base, size_t off, int t, int n_)
      : sm(reinterpret_cast<P*>(base + off) + t), n(n_) {}
  __device__ __forceinline__ P& in_reg(int k) { return reg[k]; }
  __device__ __forceinline__ P& in_shared(int k) { return sm[(k - REG) * n]; }
  // step k from global memory: into a register, or by an asynchronous copy (no register on the way)
  __device__ __forceinline__ void fill(int k, const void* src) {
    if (k < REG) {
      reg[k] = *static_cast<const P*>(src);
      return;
    }
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(sm + (k - REG) * n));
    const char* from = static_cast<const char*>(src);
    if constexpr (sizeof(P) % 16 == 0) {
#pragma unroll
      for (int b = 0; b < int(sizeof(P)); b += 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dst + b), "l"(from + b));
    } else {
      static_assert(sizeof(P) == 4 || sizeof(P) == 8, "a step is 4, 8 or a multiple of 16 bytes");
      asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" :: "r"(dst), "l"(from), "n"(int(sizeof(P))));
    }
  }
  // the copies have landed (each thread reads back only its own steps: no block barrier)
  __device__ __forceinline__ void ready() const { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
#else
  P* v;
  ff_row_cache(unsigned char*, size_t, int, int) : v(new P[PER]) {}
  void fill(int k, const void* src) { __builtin_memcpy(&v[k], src, sizeof(P)); }
  void ready() const {}
  ~ff_row_cache() { delete[] v; }
  ff_row_cache(const ff_row_cache&) = delete;
  ff_row_cache& operator=(const ff_row_cache&) = delete;
  P& in_reg(int k) { return v[k]; }
  P& in_shared(int k) { return v[k]; }
#endif
};

// Another block's partial accumulator, read from L2 (not from this SM's L1).
template <class A> FF_HD A ff_load_cg(const A* p) {
#if defined(__CUDA_ARCH__)
  static_assert(sizeof(A) % 4 == 0, "accumulators are whole 4-byte words");
  A r;
#pragma unroll
  for (int i = 0; i < int(sizeof(A) / 4); ++i)
    reinterpret_cast<unsigned*>(&r)[i] = __ldcg(reinterpret_cast<const unsigned*>(p) + i);
  return r;
#else
  return *p;
#endif
}

#if defined(__CUDA_ARCH__)
// The `splits` blocks of a resident row meet here after writing their partials. The counter is
// zeroed before the launch and only grows: each pass adds `splits`, so the target is the next
// multiple (a block already at the next pass only raises it).
__device__ __forceinline__ void ff_row_barrier(unsigned* count, unsigned splits) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    const unsigned old = atomicAdd(count, 1u);
    const unsigned target = old - old % splits + splits;
    while (static_cast<int>(*reinterpret_cast<volatile unsigned*>(count) - target) < 0) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
}
#endif
"""

# x / s for a Python number s (ops.pointwise.divides_by_scalar), as eager computes it on each device.
DIV_SCALAR_PRELUDE = r"""
// x / s for a Python number s, as eager computes it (inv: 1 / s in the operand type): its CUDA
// kernel multiplies by the reciprocal, its CPU kernel divides.
template <class T> FF_HD T ff_div_scalar(T x, T s, T inv) {
#if defined(__CUDA_ARCH__)
  return x * inv;
#else
  return x / s;
#endif
}
"""

# Streamed rows (rows.py): the last pass's items, shared out among a row's blocks.
ITEMS_PRELUDE = r"""
// The items of a streamed row's last pass (rows.py), from the last: on the GPU each block of the
// row asks the row's counter for its next item (one asked ahead, while it works on the item at
// hand), so that a block slowed down takes fewer; the CPU twin's team takes them all. Every thread
// of the block takes part: more() and next() give all the same item.
#if defined(__CUDA_ARCH__)
__device__ __forceinline__ unsigned* ff_items_slots() {
  __shared__ unsigned slot[2];   // the item at hand and the one asked for
  return slot;
}
struct ff_items {
  unsigned item, n;
  unsigned* count;
  unsigned* slot;
  int g = 0;
  __device__ ff_items(unsigned* c, unsigned n_) : n(n_), count(c), slot(ff_items_slots()) {
    __syncthreads();   // the readers of an earlier pass's slots are done
    if (threadIdx.x == 0) slot[0] = atomicAdd(count, 1u);
    __syncthreads();
    take();
  }
  __device__ void take() { item = slot[g] < n ? n - 1 - slot[g] : n; }
  __device__ bool more() {
    if (item >= n) return false;
    if (threadIdx.x == 0) slot[g ^ 1] = atomicAdd(count, 1u);
    return true;
  }
  __device__ void next() {
    g ^= 1;
    __syncthreads();
    take();
  }
};
#else
struct ff_items {
  unsigned item = 0, n;
  ff_items(unsigned*, unsigned n_) : n(n_) {}
  bool more() const { return item < n; }
  void next() { ++item; }
};
#endif
"""

CUDA_PRELUDE = r"""
// ---- fuseforge CUDA helpers
#include <stdint.h>
#include <cuda_runtime.h>
__device__ __forceinline__ void ff_load4(float (&r)[4], const float* p) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
}
__device__ __forceinline__ void ff_store4(float* p, const float (&r)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(r[0], r[1], r[2], r[3]);
}
static inline bool ff_aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }
static inline unsigned ff_blocks(unsigned long long work, unsigned threads) {
  const unsigned long long b = (work + threads - 1) / threads;
  return b < 1 ? 1u : (b > 2147483647ull ? 2147483647u : static_cast<unsigned>(b));
}
// Row-kernel teams: the threads that share one row. reduce() returns the row's total to
// every thread of the team, in the same merge order for all (so all see the same bits).
template <int W, class A> __device__ __forceinline__ A ff_lanes_reduce(A a) {
#pragma unroll
  for (int d = W / 2; d > 0; d >>= 1) a.merge(a.shfl_down(d, W));
  return a.lane0(W);
}
template <class A> __device__ __forceinline__ A ff_warp_reduce(A a) { return ff_lanes_reduce<32>(a); }
template <int W> struct ff_team_lanes {   // W lanes of a warp per row (short rows: 32 / W rows a warp)
  int t;
  static constexpr int n = W;
  template <class A> __device__ A reduce(const A& a) const { return ff_lanes_reduce<W>(a); }
};
struct ff_team_block {  // the whole block per row
  int t, n;
  void* smem;           // 32 partials
  template <class A> __device__ A reduce(const A& a) const {
    A* part = static_cast<A*>(smem);
    A r = ff_warp_reduce(a);
    __syncthreads();    // the previous reduction has read its partials
    if ((t & 31) == 0) part[t >> 5] = r;
    __syncthreads();
    r = (t & 31) < (n >> 5) ? part[t & 31] : A::init();
    return ff_warp_reduce(r);
  }
};
struct ff_team_column { // rows side by side in threadIdx.x, a row's elements split over threadIdx.y
  int t, n;
  void* smem;           // blockDim.x * blockDim.y partials
  template <class A> __device__ A reduce(const A& a) const {
    A* part = static_cast<A*>(smem);
    const int x = threadIdx.x, w = blockDim.x;
    __syncthreads();
    part[t * w + x] = a;
    __syncthreads();
    if (n > 64) {   // a tree (n a power of two): log2(n) merges in a chain, not n in every thread
      for (int h = n / 2; h > 0; h /= 2) {
        if (t < h) {
          A r = part[t * w + x];
          r.merge(part[(t + h) * w + x]);
          part[t * w + x] = r;
        }
        __syncthreads();
      }
      return part[x];
    }
    A r = part[x];
    for (int k = 1; k < n; ++k) r.merge(part[k * w + x]);
    return r;
  }
};
// The layout copies go through shared-memory tiles: the reads and the writes both coalesced (ATen's
// copy between NCHW and channels-last reads or writes with a stride: 1.7x slower on an H100). To
// channels-last: ff_cl_copy (cl_copy.py); back to NCHW: ff_transpose_kernel, a float32 tensor
// [n][a][b] copied to [n][b][a] through a 32 x 32 tile (a pixels, b channels; images ldy >= a * b
// floats apart in y: a slice of a cat's buffer).
__device__ __forceinline__ float ff_round_tf32(float x) {   // to nearest, ties away (sm_80 and later)
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return __uint_as_float(r);
}
template <class A, class B>
__global__ void __launch_bounds__(256) ff_transpose_kernel(const float* __restrict__ x, float* __restrict__ y, A na, B nb,
                                                           unsigned long long ldy) {
  __shared__ float tile[32][33];
  const unsigned long long img = blockIdx.z;
  const A a0 = blockIdx.y * A(32);
  const B b0 = blockIdx.x * B(32);
  for (int k = 0; k < 32; k += 8) {
    const A i = a0 + threadIdx.y + k;
    const B j = b0 + threadIdx.x;
    if (i < na && j < nb) tile[threadIdx.y + k][threadIdx.x] = x[(img * na + i) * nb + j];
  }
  __syncthreads();
  for (int k = 0; k < 32; k += 8) {
    const B j = b0 + threadIdx.y + k;
    const A i = a0 + threadIdx.x;
    if (i < na && j < nb) {
      y[img * ldy + j * na + i] = tile[threadIdx.x][threadIdx.y + k];
    }
  }
}
""" + cl_copy.KERNEL + r"""int ff_to_channels_last(const float* x, float* y, long long n, long long c, long long pixels, void* stream) {
  return ff_cl_copy<false>(x, y, n, c, pixels, c, 0, static_cast<cudaStream_t>(stream));
}
int ff_to_nchw(const float* x, float* y, long long n, long long c, long long pixels, long long ldy, void* stream) {
  const dim3 grid(static_cast<unsigned>((c + 31) / 32), static_cast<unsigned>((pixels + 31) / 32),
                  static_cast<unsigned>(n));
  ff_transpose_kernel<<<grid, dim3(32, 8), 0, static_cast<cudaStream_t>(stream)>>>(
      x, y, static_cast<unsigned long long>(pixels), static_cast<unsigned>(c), static_cast<unsigned long long>(ldy));
  return static_cast<int>(cudaGetLastError());
}
"""

# A cat along the channels written straight into channels-last (layout.py): each piece transposed into
# its slice, in place of cat then ff::to_channels_last. In a module only where used.
CAT_CL_CUDA = r"""
// piece x [n][c][pixels] (contiguous) into channels c_off.. of y, channels-last with c_total channels
int ff_into_channels_last(const float* x, float* y, long long n, long long c, long long pixels, long long c_total,
                          long long c_off, void* stream) {
  return ff_cl_copy<false>(x, y, n, c, pixels, c_total, c_off, static_cast<cudaStream_t>(stream));
}
"""

# A piece copied into its slice of a cats' buffer (cat_buffers.py): each image's part is one
# contiguous run in both, copied with 16-byte accesses. ATen's copy_ into the slice walks it
# element by element with a 4-d index (level3/009: 64 channels of x at 1.2 TB/s, 0.021 ms).
CAT_BUFFER_CUDA = r"""
template <class T>
__global__ void __launch_bounds__(256) ff_copy_images_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                             unsigned long long per_image, unsigned long long ldy) {
  const T* src = x + blockIdx.y * per_image;
  T* dst = y + blockIdx.y * ldy;
  for (unsigned long long i = blockIdx.x * 256ull + threadIdx.x; i < per_image; i += gridDim.x * 256ull) dst[i] = src[i];
}
// x: n images of per_image floats, one after another; y: the same, ldy floats apart
int ff_copy_images(const float* x, float* y, long long n, long long per_image, long long ldy, void* stream) {
  const bool vec = per_image % 4 == 0 && ldy % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const long long len = vec ? per_image / 4 : per_image;
  const dim3 grid(static_cast<unsigned>(std::max(1LL, std::min((len + 255) / 256, 4096 / n))), static_cast<unsigned>(n));
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (vec) {
    ff_copy_images_kernel<float4><<<grid, 256, 0, s>>>(reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(y),
                                                      len, ldy / 4);
  } else {
    ff_copy_images_kernel<float><<<grid, 256, 0, s>>>(x, y, len, ldy);
  }
  return static_cast<int>(cudaGetLastError());
}
"""

CAT_BUFFER_HOST = r"""
#ifdef FF_WITH_CUDA
int ff_copy_images(const float* x, float* y, long long n, long long per_image, long long ldy, void* stream);
#endif
namespace ff {
// A cat's piece x into its slice y of the cats' buffer (images y.stride(0) apart): the kernel above
// for float32 on the GPU, ATen's copy otherwise.
inline void copy_into(const at::Tensor& y, const at::Tensor& x) {
#ifdef FF_WITH_CUDA
  if (x.is_cuda() && x.scalar_type() == at::kFloat && y.scalar_type() == at::kFloat && y.device() == x.device() &&
      x.sizes() == y.sizes() && x.dim() >= 2 && x.is_contiguous() && y.narrow(0, 0, 1).is_contiguous() &&
      x.size(0) <= 65535 && x.numel() > 0) {
    c10::cuda::CUDAGuard guard(x.device());
    const int err = ::ff_copy_images(x.data_ptr<float>(), y.data_ptr<float>(), x.size(0), x.numel() / x.size(0),
                                     y.stride(0), c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err == 0, "fuseforge: copy_into: launch failed: ", cudaGetErrorString(static_cast<cudaError_t>(err)));
    return;
  }
#endif
  y.copy_(x);
}
}  // namespace ff
"""

CAT_CL_HOST = r"""
#ifdef FF_WITH_CUDA
int ff_into_channels_last(const float* x, float* y, long long n, long long c, long long pixels, long long c_total,
                          long long c_off, void* stream);
#endif
namespace ff {
// torch.cat(xs, 1) in channels-last: every piece written into its slice of y (the tile kernel for
// a contiguous float32 piece on the GPU, ATen's copy otherwise: the CPU twin, other layouts), but
// those `placed` there already by the kernels that computed them (layout.py).
inline at::Tensor cat_channels_last(const std::vector<at::Tensor>& xs, const at::Tensor& y,
                                    const std::vector<bool>& placed) {
  const int64_t n = y.size(0), c_total = y.size(1), pixels = xs[0].numel() / (n * xs[0].size(1));
  int64_t off = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const at::Tensor& x = xs[k];
    bool done = !placed.empty() && placed[k];
#ifdef FF_WITH_CUDA
    if (!done && x.is_cuda() && x.scalar_type() == at::kFloat && x.is_contiguous() && n <= 65535 && x.numel() > 0) {
      c10::cuda::CUDAGuard guard(x.device());
      const int err = ::ff_into_channels_last(x.data_ptr<float>(), y.data_ptr<float>(), n, x.size(1), pixels, c_total,
                                              off, c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
      TORCH_CHECK(err == 0, "fuseforge: cat_channels_last: launch failed: ",
                  cudaGetErrorString(static_cast<cudaError_t>(err)));
      done = true;
    }
#endif
    if (!done) y.narrow(1, off, x.size(1)).copy_(x);
    off += x.size(1);
  }
  return y;
}

inline at::Tensor cat_channels_last(const std::vector<at::Tensor>& xs) {
  std::vector<int64_t> sizes(xs[0].sizes().begin(), xs[0].sizes().end());
  sizes[1] = 0;
  for (const at::Tensor& x : xs) sizes[1] += x.size(1);
  return cat_channels_last(xs, at::empty_strided(sizes, channels_last_strides(sizes), xs[0].options()), {});
}
}  // namespace ff
"""

HOST_RUNTIME = r"""
// ---- fuseforge host runtime: externs through the ATen dispatcher, kernel operands, launches
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_strided.h>
#include <ATen/Parallel.h>
#include <torch/csrc/utils/pybind.h>
#ifdef FF_WITH_CUDA
#include <ATen/Context.h>
#include <ATen/cuda/CUDAGraph.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#define FF_CUDA(launcher) [&](void* stream) { return launcher(a, stream); }
#define FF_CUDA_FN(f) f
#else
#define FF_CUDA(launcher) nullptr
#define FF_CUDA_FN(f) nullptr
#endif
#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#ifdef FF_WITH_CUDA
int ff_to_channels_last(const float* x, float* y, long long n, long long c, long long pixels, void* stream);
int ff_to_nchw(const float* x, float* y, long long n, long long c, long long pixels, long long ldy, void* stream);
#endif

namespace ff {

// When set, fresh kernel outputs are filled with NaN (or 77 for integers) first, so that an
// element a kernel fails to write shows up in verification.
static bool poison = false;

inline c10::OperatorHandle op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

// An extern: the ATen op eager would run, called boxed with every schema argument.
inline std::vector<c10::IValue> call(const c10::OperatorHandle& op, std::vector<c10::IValue> stack) {
  op.callBoxed(&stack);
  return stack;
}

// A weight in another form (another memory format; a generated convolution's packed tiles), made
// once and reused while it is the same tensor with the same version counter (an in-place update
// makes it again). Holding the source keeps its memory from being reused by another tensor while
// the copy is cached.
struct FormatCache {
  std::mutex m;
  at::Tensor src, converted;
  uint32_t version = 0;
};
// While a CUDA graph is captured (ff::replayed): the cached tensors it reads, kept alive with it
// (a later call for other weights replaces a cache's copy while the graph still reads the old one).
static std::vector<at::Tensor>* graph_keeps = nullptr;
template <class Make>
inline at::Tensor made_once(const at::Tensor& w, FormatCache& c, Make make) {
  std::lock_guard<std::mutex> lock(c.m);
  if (!c.src.defined() || !w.is_same(c.src) || w._version() != c.version) {
    c.converted = make();
    c.src = w;
    c.version = w._version();
  }
  if (graph_keeps) graph_keeps->push_back(c.converted);
  return c.converted;
}
inline at::Tensor converted_once(const at::Tensor& w, at::MemoryFormat fmt, FormatCache& c) {
  return made_once(w, c, [&] { return w.contiguous(fmt); });
}
// A generated convolution's weights packed by `pack` (its pack kernel, on the current stream) into
// `bytes`, on a GPU; on the CPU none (the CPU twin reads the weights as they are).
inline at::Tensor packed_once(const at::Tensor& w, int64_t bytes, FormatCache& c, int (*pack)(const float*, float*, void*),
                              const char* name) {
  if (!w.is_cuda()) return at::Tensor();
  TORCH_CHECK(pack != nullptr, "fuseforge: ", name, ": this build has no CUDA support");
  return made_once(w, c, [&] {
    at::Tensor p = at::empty({bytes / 4}, w.options());
#ifdef FF_WITH_CUDA
    c10::cuda::CUDAGuard guard(w.device());
    const int err = pack(w.data_ptr<float>(), p.data_ptr<float>(),
                         static_cast<void*>(c10::cuda::getCurrentCUDAStream(w.device().index()).stream()));
    TORCH_CHECK(err == 0, "fuseforge: ", name, ": packing the weights failed: ", cudaGetErrorString(static_cast<cudaError_t>(err)));
#endif
    return p;
  });
}

// The strides of a channels-last tensor of these sizes (channels innermost, then the pixels).
inline std::vector<int64_t> channels_last_strides(at::IntArrayRef sizes) {
  std::vector<int64_t> strides(sizes.size());
  strides[1] = 1;
  int64_t s = sizes[1];
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 2; --d) { strides[d] = s; s *= sizes[d]; }
  strides[0] = s;
  return strides;
}

// A convolution's input in channels-last: the CUDA tile kernel above for a contiguous float32
// tensor on the GPU, ATen's copy otherwise (the CPU twin, other dtypes and layouts).
inline at::Tensor to_channels_last(const at::Tensor& x, at::MemoryFormat fmt) {
#ifdef FF_WITH_CUDA
  if (x.is_cuda() && x.scalar_type() == at::kFloat && x.dim() >= 3 && x.is_contiguous() &&
      x.size(0) <= 65535 && x.size(1) <= 65535 * 32 && x.numel() > 0) {
    const int64_t n = x.size(0), c = x.size(1), pixels = x.numel() / (n * c);
    at::Tensor y = at::empty_strided(x.sizes(), channels_last_strides(x.sizes()), x.options());
    c10::cuda::CUDAGuard guard(x.device());
    const int err = ::ff_to_channels_last(x.data_ptr<float>(), y.data_ptr<float>(), n, c, pixels,
                                        c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err == 0, "fuseforge: to_channels_last: launch failed: ",
                cudaGetErrorString(static_cast<cudaError_t>(err)));
    return y;
  }
#endif
  return x.contiguous(fmt);
}

// A channels-last convolution's output back in NCHW for readers that want it so (layout.py): the
// same tile kernel, the other way, into y: a fresh tensor or the convolution's slice of a cat's
// buffer (images y.stride(0) apart: the cats of a DenseNet block). Returns y.
inline at::Tensor to_nchw(const at::Tensor& x, const at::Tensor& y) {
#ifdef FF_WITH_CUDA
  const at::MemoryFormat fmt = x.dim() == 5 ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::ChannelsLast;
  const int64_t pixels = x.dim() >= 3 ? x.numel() / std::max<int64_t>(1, x.size(0) * x.size(1)) : 0;
  if (x.is_cuda() && x.scalar_type() == at::kFloat && (x.dim() == 4 || x.dim() == 5) && x.is_contiguous(fmt) &&
      !x.is_contiguous() && x.size(0) <= 65535 && pixels <= 65535 * 32 && x.numel() > 0 &&
      y.scalar_type() == at::kFloat && y.device() == x.device() && y.sizes() == x.sizes() && y.stride(1) == pixels &&
      y.narrow(0, 0, 1).is_contiguous()) {
    c10::cuda::CUDAGuard guard(x.device());
    const int err = ::ff_to_nchw(x.data_ptr<float>(), y.data_ptr<float>(), x.size(0), x.size(1), pixels, y.stride(0),
                                 c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err == 0, "fuseforge: to_nchw: launch failed: ", cudaGetErrorString(static_cast<cudaError_t>(err)));
    return y;
  }
#endif
  y.copy_(x);
  return y;
}

inline at::Tensor to_nchw(const at::Tensor& x) {
  return x.is_contiguous() ? x : to_nchw(x, at::empty(x.sizes(), x.options()));
}

inline at::Tensor empty(at::IntArrayRef sizes, at::IntArrayRef strides, at::ScalarType dtype,
                        const c10::Device& dev) {
  at::Tensor t = at::empty_strided(sizes, strides, at::TensorOptions().dtype(dtype).device(dev));
  if (poison) t.fill_(at::isFloatingType(dtype) ? NAN : 77);
  return t;
}

// A kernel operand in the layout its index code assumes: the tensor itself when it already
// is (the normal case), else a copy into that layout, never a silent misread.
inline at::Tensor operand(const at::Tensor& t, at::IntArrayRef sizes, at::IntArrayRef strides,
                          at::ScalarType dtype, const c10::Device& dev, const char* what) {
  TORCH_CHECK(t.sizes() == sizes, "fuseforge: ", what, " has sizes ", t.sizes(), ", expected ", sizes);
  TORCH_CHECK(t.scalar_type() == dtype, "fuseforge: ", what, " has dtype ", t.scalar_type(),
              ", expected ", dtype);
  bool same = t.device() == dev;
  for (size_t d = 0; same && d < sizes.size(); ++d) same = sizes[d] <= 1 || t.stride(d) == strides[d];
  if (same) return t;
  at::Tensor c = at::empty_strided(sizes, strides, t.options().device(dev));
  c.copy_(t);
  return c;
}

// A tensor whose data starts 16-byte aligned (read with 16-byte copies): itself, or a copy.
inline at::Tensor aligned16(const at::Tensor& t) {
  if (reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0) return t;
  at::Tensor c = at::empty_strided(t.sizes(), t.strides(), t.options());
  c.copy_(t);
  return c;
}

inline void check_input(const at::Tensor& t, const char* what, at::IntArrayRef sizes,
                        at::ScalarType dtype) {
  TORCH_CHECK(t.sizes() == sizes && t.scalar_type() == dtype, "fuseforge: input ", what,
              " must have dtype ", dtype, " and sizes ", sizes,
              " (the model was compiled for them), got ", t.scalar_type(), " ", t.sizes());
}

// Run a generated kernel: the CUDA launcher on a CUDA device, the CPU twin otherwise.
template <typename Cpu, typename Cuda>
void run(const c10::Device& dev, int64_t n, const char* name, Cpu cpu, Cuda cuda) {
  if (dev.is_cuda()) {
    if constexpr (std::is_same<Cuda, std::nullptr_t>::value) {
      TORCH_CHECK(false, "fuseforge: ", name, ": this build has no CUDA support");
    } else {
#ifdef FF_WITH_CUDA
      c10::cuda::CUDAGuard guard(dev);
      const int err = cuda(static_cast<void*>(c10::cuda::getCurrentCUDAStream(dev.index()).stream()));
      TORCH_CHECK(err == 0, "fuseforge: ", name, ": launch failed: ",
                  cudaGetErrorString(static_cast<cudaError_t>(err)));
#endif
    }
  } else {
    TORCH_CHECK(dev.is_cpu(), "fuseforge: ", name, ": unsupported device ", dev);
    at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) cpu(i);
    });
  }
}

// The forward replayed as a CUDA graph (replay.py): one launch on the host where op by op it
// costs one or more per kernel. A graph is captured on the second call in a row with the same
// key (the addresses, shapes and strides of the inputs and state, the versions of the state it
// only reads: a weight updated in place changes what its cached conversions hold). It is replayed
// while the key holds and no caller holds the outputs of its last replay, which the next one
// overwrites (handed_out). A caller that keeps them (`y = model(x)` in a loop holds the last y
// during the call) gets a second graph with memory of its own, and the two take turns; one that
// keeps both gets fresh outputs from calls op by op. The state the forward updates (`updated`,
// indices into state: running statistics) has its version moved after a replay, as a call op by
// op moves it. A capture that fails (an op that synchronizes) turns replaying off for the
// extension, with a warning; set_replay(false) turns it off too.
struct Captured {
#ifdef FF_WITH_CUDA
  at::cuda::CUDAGraph graph;
#endif
  std::vector<int64_t> key;
  std::vector<at::Tensor> outputs;  // the graph's outputs (its memory pool), never handed out
  std::vector<int64_t> counts;      // their use counts while no caller holds them (use_counts)
  std::vector<at::Tensor> keeps;    // cached tensors it reads (graph_keeps)
  bool direct = false;              // launched with cudaGraphLaunch itself (no random numbers drawn)
};
struct Replay {
  std::mutex m;
  std::vector<int64_t> last;                       // the key of the last call
  std::vector<std::unique_ptr<Captured>> graphs;   // at most two, of one key
  int64_t captures = 0, replays = 0;
  bool off = false, failed = false;
};

#ifdef FF_WITH_CUDA
inline void add_key(std::vector<int64_t>& k, const at::Tensor& t, bool version) {
  if (!t.defined()) {
    k.push_back(-1);
    return;
  }
  k.push_back(static_cast<int64_t>(reinterpret_cast<intptr_t>(t.data_ptr())));
  k.push_back(static_cast<int64_t>(t.scalar_type()));
  k.push_back(t.device().index());
  k.push_back(version ? static_cast<int64_t>(t._version()) : 0);
  k.push_back(t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) {
    k.push_back(t.size(d));
    k.push_back(t.stride(d));
  }
}

// The graph's outputs as the caller gets them: tensors over the same memory through storages of
// their own, one for each storage of the outputs, whose deleter holds that output. The caller's
// references thus keep the graph's memory alive and show in the outputs' use counts, which a
// Python object of the output itself would not (it may outlive the caller's references). The
// tensors are made directly, not through the dispatcher (two calls an output otherwise).
inline std::vector<at::Tensor> handed_out(const std::vector<at::Tensor>& outs) {
  std::vector<at::Tensor> res;
  res.reserve(outs.size());
  std::vector<std::pair<const c10::StorageImpl*, c10::Storage>> made;
  for (const at::Tensor& o : outs) {
    const c10::StorageImpl* impl = o.storage().unsafeGetStorageImpl();
    c10::Storage alias;
    for (const auto& m : made)
      if (m.first == impl) alias = m.second;
    if (!alias) {
      at::DataPtr data(o.storage().data_ptr().get(), new at::Tensor(o),
                       [](void* held) { delete static_cast<at::Tensor*>(held); }, o.device());
      alias = c10::Storage(c10::Storage::use_byte_size_t(), o.storage().nbytes(), std::move(data), nullptr, false);
      made.emplace_back(impl, alias);
    }
    at::Tensor t = at::detail::make_tensor<c10::TensorImpl>(std::move(alias), c10::DispatchKeySet(c10::DispatchKey::CUDA),
                                                            o.dtype());
    t.unsafeGetTensorImpl()->set_sizes_and_strides(o.sizes(), o.strides(), o.storage_offset());
    res.push_back(std::move(t));
  }
  return res;
}

// The use counts of the outputs and of their storages. Taken right after a capture, they count
// the graph's own references (a view's base holds its storage too; an output returned twice is
// one tensor); more later means a caller holds an output handed out (or a view of it).
inline std::vector<int64_t> use_counts(const std::vector<at::Tensor>& outs) {
  std::vector<int64_t> n;
  n.reserve(2 * outs.size());
  for (const at::Tensor& o : outs) {
    n.push_back(static_cast<int64_t>(o.use_count()));
    n.push_back(static_cast<int64_t>(o.storage().use_count()));
  }
  return n;
}

// No caller holds the outputs of c's last replay: their use counts are those after the capture.
inline bool unheld(const Captured& c) {
  for (size_t i = 0; i < c.outputs.size(); ++i)
    if (static_cast<int64_t>(c.outputs[i].use_count()) != c.counts[2 * i] ||
        static_cast<int64_t>(c.outputs[i].storage().use_count()) != c.counts[2 * i + 1])
      return false;
  return true;
}

// A replay through at::cuda::CUDAGraph::replay moves the random-number generator's offset by what
// the graph draws (dropout in training), and costs about a microsecond more on the host than
// cudaGraphLaunch itself (measured on the H100: bench/session22/host_probe). The first replay goes
// through it; if the offset did not move, the graph draws none and later replays launch it directly.
inline void launch(Captured& c, c10::DeviceIndex device) {
  if (c.direct) {
    C10_CUDA_CHECK(cudaGraphLaunch(c.graph.raw_cuda_graph_exec(), c10::cuda::getCurrentCUDAStream(device)));
    return;
  }
  const at::Generator gen = at::cuda::detail::getDefaultCUDAGenerator(device);
  const uint64_t before = gen.get_offset();
  c.graph.replay();
  c.direct = gen.get_offset() == before;
}
#endif

template <typename Ops>
std::vector<at::Tensor> replayed(Replay& r, const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& state,
                                 Ops ops, const std::vector<size_t>& updated = {}) {
#ifdef FF_WITH_CUDA
  if (inputs.empty() || !inputs[0].is_cuda()) return ops(inputs, state);
  std::lock_guard<std::mutex> lock(r.m);
  if (r.off || r.failed) return ops(inputs, state);
  std::vector<int64_t> key{poison, at::globalContext().deterministicAlgorithms(), at::globalContext().benchmarkCuDNN(),
                           at::globalContext().userEnabledCuDNN()};
  key.reserve(64);
  for (const at::Tensor& t : inputs) add_key(key, t, false);   // (a graph reads their memory as it is then)
  for (size_t i = 0; i < state.size(); ++i)
    add_key(key, state[i], std::find(updated.begin(), updated.end(), i) == updated.end());
  c10::cuda::CUDAGuard guard(inputs[0].device());
  const auto replay = [&](Captured& c) {
    launch(c, inputs[0].device().index());
    ++r.replays;
    for (size_t i : updated) state[i].unsafeGetTensorImpl()->bump_version();
    return handed_out(c.outputs);
  };
  for (auto& c : r.graphs)
    if (c->key == key && unheld(*c)) return replay(*c);
  const bool again = key == r.last;
  r.last = key;
  if (!again) return ops(inputs, state);
  // a graph of another key is dropped (its memory with it, once no caller holds its outputs)
  r.graphs.erase(std::remove_if(r.graphs.begin(), r.graphs.end(), [&](const auto& c) { return c->key != key; }),
                 r.graphs.end());
  if (r.graphs.size() >= 2) return ops(inputs, state);
  auto c = std::make_unique<Captured>();
  try {
    c10::cuda::CUDAStreamGuard side(c10::cuda::getStreamFromPool(false, inputs[0].device().index()));
    c->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    graph_keeps = &c->keeps;
    try {
      c->outputs = ops(inputs, state);
    } catch (...) {
      graph_keeps = nullptr;
      try { c->graph.capture_end(); } catch (...) {}
      throw;
    }
    graph_keeps = nullptr;
    c->graph.capture_end();
  } catch (const std::exception& e) {
    (void)cudaGetLastError();
    c.reset();
    r.graphs.clear();
    r.failed = true;
    const std::string why = std::string("fuseforge: the forward could not be captured as a CUDA graph, it runs "
                                        "op by op from now on: ") + e.what();
    if (PyErr_WarnEx(PyExc_UserWarning, why.c_str(), 1) != 0) throw pybind11::error_already_set();   // (-W error)
    return ops(inputs, state);
  }
  c->key = std::move(key);
  c->counts = use_counts(c->outputs);
  ++r.captures;
  r.graphs.push_back(std::move(c));
  return replay(*r.graphs.back());
#else
  (void)r;
  (void)updated;
  return ops(inputs, state);
#endif
}

// set_replay(false): every call op by op from now on, its graphs dropped; true: replayed again
// (unless a capture failed).
inline void set_replay(Replay& r, bool on) {
  std::lock_guard<std::mutex> lock(r.m);
  r.off = !on;
  r.last.clear();
  if (!on) r.graphs.clear();
}

}  // namespace ff
"""
