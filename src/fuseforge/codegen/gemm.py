"""Render a GemmKernel: a float32 matrix product on TF32 tensor cores with float32 accuracy,
its epilogue applied to each output element before the one store.

Accuracy: each float32 operand is split as x = hi + lo, both TF32 (10-bit mantissa), and
a·b is accumulated as a_lo·b_hi + a_hi·b_lo + a_hi·b_hi (mma.sync m16n8k8); the dropped
a_lo·b_lo term is below float32's rounding. The tensor cores accumulate with truncation, which
makes the error grow linearly with K (measured: 160x cuBLAS float32's at K = 16384), so each
32-deep slice of k is summed in the tensor cores from zero and the slices are added in float32
with round-to-nearest. Two TF32 terms hold 22 of float32's 24 mantissa bits: where the
representation error dominates (short K, all terms of one sign: x @ x.T at K = 12) the
error measured 4.8x cuBLAS float32's, which is why the planner does not use this kernel by
default yet (plan_gemm.py). tests/test_gemm.py checks the error against cuBLAS float32's and float64.

For kernel K the shared text (CUDA and the CPU twin) defines
  K_args      the pointers,
  K_epilogue  output element i (row-major over the product's shape) from its dot product:
              bias, alpha/beta, the fused pointwise ops, the stores,
  K_elem      the CPU twin of one output element: the dot product in float32, then K_epilogue;
the CUDA text defines K_gemm, the product's shape, strides and tile configuration as
compile-time constants, for the one GEMM template (GEMM_LIBRARY), and the launcher K_cuda.
"""
from __future__ import annotations

import math

from ..ops.gemm import Gemm
from ..plan_gemm import SMS, GemmKernel
from .cpp import literal
from ..plan import inline_constant
from .pointwise import KernelSource, _broadcast_strides, _const_literal, _render_node, arg_fields, kernel_operands, load_inputs, \
    storage_offset


# Tile configurations: (BM, BN, WM, WN); BK = 32 floats of k per stage, 3 stages. The large one
# when it still gives every multiprocessor a tile, the small one for small products.
LARGE = (128, 128, 64, 32)   # 8 warps, warp tile 64 x 32
SMALL = (64, 64, 32, 32)     # 4 warps, warp tile 32 x 32
BK, STAGES = 32, 3



def config(g: Gemm) -> tuple[int, int, int, int]:
    bm, bn = LARGE[:2]
    return LARGE if g.batch * math.ceil(g.m / bm) * math.ceil(g.n / bn) >= SMS else SMALL


def _layout(rows: int, k: int, row_stride: int, k_stride: int, batch_stride: int) -> tuple[bool, bool]:
    """(k inner in shared memory, 16-byte copies) for an operand: shared memory keeps the
    dim that is contiguous in global memory inner, and 4-float copies run along it when every
    chunk of 4 is in bounds together and 16-byte aligned (the wrapper aligns the base)."""
    k_inner = k_stride == 1 or row_stride != 1
    if k_inner:
        vec = k_stride == 1 and k % 4 == 0 and row_stride % 4 == 0 and batch_stride % 4 == 0
    else:
        vec = rows % 4 == 0 and k_stride % 4 == 0 and batch_stride % 4 == 0
    return k_inner, vec


def render(k: GemmKernel) -> KernelSource:
    name, g = k.name, k.gemm
    shape = k.shape
    itype, suffix, ins, outs, var = kernel_operands(k, [shape])
    for op in ins:
        op.align16 = op.value in (g.a.value, g.b.value)   # read with 16-byte copies
    y = k.node.outputs[0]

    # --- the product's value at output element i, then the epilogue and the stores
    body = []
    value = "acc" if g.alpha == 1 else f"{literal(g.alpha, y.type.dtype)} * acc"
    if g.bias is not None and g.beta != 0:   # beta = 0: eager ignores the bias (NaN included)
        if inline_constant(g.bias):          # a one-element constant is a literal, not an operand
            bias = _const_literal(g.bias, y.type.dtype)
        else:
            bias = f"a.{var[g.bias]}[{storage_offset(_broadcast_strides(g.bias.type, shape), shape, 'i', itype)}]"
        value += f" + {bias}" if g.beta == 1 else f" + {literal(g.beta, y.type.dtype)} * {bias}"
    body.append(f"const float {y.name} = {value};")
    names = {y: y.name}
    lines, loaded = load_inputs(k.inputs, var, k.epilogue, shape, name,
                                lambda st: storage_offset(st, shape, "i", itype))
    names.update(loaded)
    body += lines + [_render_node(n, names) for n in k.epilogue]
    for op in outs:
        at = storage_offset(_broadcast_strides(op.value.type, shape), shape, "i", itype)
        body.append(f"a.{op.var}[{at}] = {names[op.value]};")

    mn = g.m * g.n
    twin = [f"const {itype} b = i / {mn}{suffix}, m = i / {g.n}{suffix} % {g.m}{suffix}, n = i % {g.n}{suffix};",
            f"const float* x = a.{var[g.a.value]} + b * {g.a.batch}{suffix} + m * {g.a.rows}{suffix};",
            f"const float* w = a.{var[g.b.value]} + b * {g.b.batch}{suffix} + n * {g.b.rows}{suffix};",
            "float acc = 0.0f;",
            f"for ({itype} k = 0; k < {g.k}{suffix}; ++k) acc += x[k * {g.a.k}{suffix}] * w[k * {g.b.k}{suffix}];",
            f"{name}_epilogue(a, i, acc);"]

    fields = arg_fields(ins, outs)
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    shared = f"""
// ---- {name}: {ops_list}
//      GEMM {g.describe()}: 3xTF32 tensor cores on the GPU, the epilogue at each output element
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {math.prod(shape)}{suffix};

FF_HD void {name}_epilogue(const {name}_args& a, const {itype} i, const float acc) {{
{chr(10).join('  ' + line for line in body)}
}}

// the CPU twin: one output element's dot product in float32
FF_HD void {name}_elem(const {name}_args& a, const {itype} i) {{
{chr(10).join('  ' + line for line in twin)}
}}

int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    bm, bn, wm, wn = config(g)
    a_inner, a_vec = _layout(g.m, g.k, g.a.rows, g.a.k, g.a.batch)
    b_inner, b_vec = _layout(g.n, g.k, g.b.rows, g.b.k, g.b.batch)
    flag = lambda b: "true" if b else "false"  # noqa: E731
    cuda = f"""
// ---- {name}: {g.describe()}, tiles {bm} x {bn} x {BK}, {STAGES} stages, warp tiles {wm} x {wn}
struct {name}_gemm {{
  using Args = {name}_args;
  static constexpr int64_t BATCH = {g.batch}, M = {g.m}, N = {g.n}, K = {g.k};
  static constexpr int64_t A_BATCH = {g.a.batch}, A_ROW = {g.a.rows}, A_K = {g.a.k};   // A[b, m, k]
  static constexpr int64_t B_BATCH = {g.b.batch}, B_COL = {g.b.rows}, B_K = {g.b.k};   // B[b, k, n]
  static constexpr bool A_K_INNER = {flag(a_inner)}, A_VEC = {flag(a_vec)};
  static constexpr bool B_K_INNER = {flag(b_inner)}, B_VEC = {flag(b_vec)};
  static constexpr int BM = {bm}, BN = {bn}, BK = {BK}, WM = {wm}, WN = {wn}, STAGES = {STAGES};
  static __device__ __forceinline__ const float* a_ptr(const Args& a) {{ return a.{var[g.a.value]}; }}
  static __device__ __forceinline__ const float* b_ptr(const Args& a) {{ return a.{var[g.b.value]}; }}
  static __device__ __forceinline__ void store(const Args& a, int64_t i, float v) {{
    {name}_epilogue(a, static_cast<{itype}>(i), v);
  }}
}};

int {name}_cuda(const {name}_args& a, void* stream) {{ return ffgemm::launch<{name}_gemm>(a, stream); }}
"""
    return KernelSource(k, shared, cuda, ins, outs)


GEMM_LIBRARY = r"""
// ---- fuseforge GEMM: float32 products on TF32 tensor cores with float32 accuracy (3xTF32)
namespace ffgemm {

constexpr int PAD_K_INNER = 4;   // shared-memory row padding: fragment reads free of bank conflicts
constexpr int PAD_K_OUTER = 8;
constexpr int GROUP_M = 8;       // tile rows that sweep the tile columns together (L2 reuse)

// x = hi + lo, both TF32; a*b ~ a_hi*b_hi + a_hi*b_lo + a_lo*b_hi. Inf/NaN go whole into hi.
__device__ __forceinline__ void split(float x, uint32_t& hi, uint32_t& lo) {
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(hi) : "f"(x));
  const float rest = fabsf(x) < INFINITY ? x - __uint_as_float(hi) : 0.0f;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(lo) : "f"(rest));
}

// c += a * b on tensor cores: a 16x8 (row), b 8x8 (col), TF32 in, float32 accumulate.
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();   // built for a GPU without TF32 tensor cores
#endif
}

// Asynchronous copies global -> shared; out of bounds (ok = false) they write zeros.
__device__ __forceinline__ void copy16(float* dst, const float* src, bool ok) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(s), "l"(src), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void copy4(float* dst, const float* src, bool ok) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" :: "r"(s), "l"(src), "r"(ok ? 4 : 0));
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }

// Copy rows r0.. (R of them) and k0.. (BK) of an operand into shared memory: xs[r][k] when
// K_INNER, else xs[k][r]; W floats per copy along the inner dim, which is the one contiguous
// in global memory.
template <int R, int BK, int THREADS, bool K_INNER, bool VEC, int64_t ROWS, int64_t KS, int64_t SR, int64_t SK>
__device__ __forceinline__ void load_tile(float* xs, const float* x, int64_t r0, int64_t k0, int tid) {
  constexpr int LD = K_INNER ? BK + PAD_K_INNER : R + PAD_K_OUTER;
  constexpr int W = VEC ? 4 : 1;
  constexpr int ALONG = (K_INNER ? BK : R) / W;
#pragma unroll
  for (int c = tid; c < R * BK / W; c += THREADS) {
    const int outer = c / ALONG, inner = c % ALONG * W;
    const int64_t gr = r0 + (K_INNER ? outer : inner), gk = k0 + (K_INNER ? inner : outer);
    const bool ok = gr < ROWS && gk < KS;
    const float* src = ok ? x + gr * SR + gk * SK : x;
    if constexpr (VEC) copy16(xs + outer * LD + inner, src, ok);
    else copy4(xs + outer * LD + inner, src, ok);
  }
}

template <bool K_INNER, int LD, class V>
__device__ __forceinline__ V at(const V* xs, int r, int k) { return K_INNER ? xs[r * LD + k] : xs[k * LD + r]; }


template <class T>
constexpr int smem_bytes() {
  constexpr int a = T::A_K_INNER ? T::BM * (T::BK + PAD_K_INNER) : T::BK * (T::BM + PAD_K_OUTER);
  constexpr int b = T::B_K_INNER ? T::BN * (T::BK + PAD_K_INNER) : T::BK * (T::BN + PAD_K_OUTER);
  return T::STAGES * (a + b) * 4;
}

template <class T>
__global__ void __launch_bounds__(T::BM / T::WM * (T::BN / T::WN) * 32) gemm_3xtf32(const typename T::Args a) {
  constexpr int BM = T::BM, BN = T::BN, BK = T::BK, S = T::STAGES;
  constexpr int MI = T::WM / 16, NI = T::WN / 8, WARPS_N = BN / T::WN;
  constexpr int THREADS = BM / T::WM * WARPS_N * 32;
  constexpr int A_LD = T::A_K_INNER ? BK + PAD_K_INNER : BM + PAD_K_OUTER;
  constexpr int B_LD = T::B_K_INNER ? BK + PAD_K_INNER : BN + PAD_K_OUTER;
  constexpr int A_TILE = (T::A_K_INNER ? BM : BK) * A_LD, B_TILE = (T::B_K_INNER ? BN : BK) * B_LD;
  constexpr int TM = (T::M + BM - 1) / BM, TN = (T::N + BN - 1) / BN;
  constexpr int KT = (T::K + BK - 1) / BK;
  extern __shared__ float4 ffgemm_smem[];
  float* const As = reinterpret_cast<float*>(ffgemm_smem);
  float* const Bs = As + S * A_TILE;

  // this block's output tile: GROUP_M tile rows at a time sweep all tile columns
  const int pid = blockIdx.x, in_group = pid % (GROUP_M * TN);
  const int first = pid / (GROUP_M * TN) * GROUP_M;
  const int rows = TM - first < GROUP_M ? TM - first : GROUP_M;
  const int64_t m0 = int64_t(first + in_group % rows) * BM, n0 = int64_t(in_group / rows) * BN;
  const float* A = T::a_ptr(a) + blockIdx.y * T::A_BATCH;
  const float* B = T::b_ptr(a) + blockIdx.y * T::B_BATCH;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = warp / WARPS_N * T::WM, wn = warp % WARPS_N * T::WN;

  auto load = [&](int stage, int64_t k0) {
    load_tile<BM, BK, THREADS, T::A_K_INNER, T::A_VEC, T::M, T::K, T::A_ROW, T::A_K>(As + stage * A_TILE, A, m0, k0, tid);
    load_tile<BN, BK, THREADS, T::B_K_INNER, T::B_VEC, T::N, T::K, T::B_COL, T::B_K>(Bs + stage * B_TILE, B, n0, k0, tid);
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  // a pipeline of S stages: S - 1 slices of k in flight while one is multiplied
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < KT) load(s, int64_t(s) * BK);
    commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    wait<S - 2>();        // slice kt has landed
    __syncthreads();      // ... for every thread, and slice kt - 1's buffer is free again
    const int next = kt + S - 1;
    if (next < KT) load(next % S, int64_t(next) * BK);
    commit();
    const float* as = As + kt % S * A_TILE;
    const float* bs = Bs + kt % S * B_TILE;
    // The tensor cores add with truncation: a slice's products are summed there from zero, and the
    // slice adds into acc in float32 with round-to-nearest. Measured against cuBLAS float32's
    // error (bench/gemm_h100.md): 0.5-1.2x for K = 64..16384 this way; 160x at K = 16384 with
    // everything summed in the tensor cores; 0.4-2.2x adding every 8-deep step (more roundings
    // of the large accumulator, and 0.78x the speed).
    float part[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) part[i][j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      uint32_t ah[MI][4], al[MI][4], bh[NI][2], bl[NI][2];
      // fragments: A rows g, g + 8 and k t, t + 4 of each 16 x 8 tile; B k t, t + 4 of column g
      auto fragment_a = [&](uint32_t& h, uint32_t& l, int r, int k) { split(at<T::A_K_INNER, A_LD>(as, r, k), h, l); };
      auto fragment_b = [&](uint32_t& h, uint32_t& l, int c, int k) { split(at<T::B_K_INNER, B_LD>(bs, c, k), h, l); };
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        const int r = wm + i * 16 + g;
        fragment_a(ah[i][0], al[i][0], r, kk + t);
        fragment_a(ah[i][1], al[i][1], r + 8, kk + t);
        fragment_a(ah[i][2], al[i][2], r, kk + t + 4);
        fragment_a(ah[i][3], al[i][3], r + 8, kk + t + 4);
      }
#pragma unroll
      for (int j = 0; j < NI; ++j) {
        const int c = wn + j * 8 + g;
        fragment_b(bh[j][0], bl[j][0], c, kk + t);
        fragment_b(bh[j][1], bl[j][1], c, kk + t + 4);
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j) {   // small terms first
          mma(part[i][j], al[i], bh[j]);
          mma(part[i][j], ah[i], bl[j]);
          mma(part[i][j], ah[i], bh[j]);
        }
    }
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] += part[i][j][e];
  }

  // each accumulator through the epilogue: rows g and g + 8, columns 2t and 2t + 1 of each mma tile
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t row = m0 + wm + i * 16 + g + (e >> 1) * 8, col = n0 + wn + j * 8 + 2 * t + (e & 1);
        if (row < T::M && col < T::N) T::store(a, (int64_t(blockIdx.y) * T::M + row) * T::N + col, acc[i][j][e]);
      }
}

template <class T>
int launch(const typename T::Args& a, void* stream) {
  constexpr int TM = (T::M + T::BM - 1) / T::BM, TN = (T::N + T::BN - 1) / T::BN;
  constexpr int threads = T::BM / T::WM * (T::BN / T::WN) * 32;
  constexpr int smem = smem_bytes<T>();
  const cudaError_t set = cudaFuncSetAttribute(gemm_3xtf32<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (set != cudaSuccess) return set;
  gemm_3xtf32<T><<<dim3(TM * TN, T::BATCH), threads, smem, static_cast<cudaStream_t>(stream)>>>(a);
  return cudaGetLastError();
}

}  // namespace ffgemm
"""
