"""C++ spelling shared by the renderers: types, literals, and the element-code prelude.

The prelude is compiled twice, by nvcc for the CUDA kernels and by the host compiler for
the CPU twin, so every helper is `FF_HD` (host and device) and uses only <math.h>.
"""
from __future__ import annotations

import math
import struct

import torch

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
"""

HOST_RUNTIME = r"""
// ---- fuseforge host runtime: externs through the ATen dispatcher, kernel operands, launches
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty_strided.h>
#include <ATen/Parallel.h>
#include <torch/csrc/utils/pybind.h>
#ifdef FF_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#define FF_CUDA(launcher) [&](void* stream) { return launcher(a, stream); }
#else
#define FF_CUDA(launcher) nullptr
#endif
#include <type_traits>
#include <vector>

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

}  // namespace ff
"""
