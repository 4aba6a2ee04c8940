"""Render a GemmKernel: a float32 matrix product on TF32 tensor cores with float32 accuracy,
its epilogue applied to each output element before the one store.

Accuracy: each float32 operand is split as x = hi + lo, both TF32 (10-bit mantissa), and
a·b is accumulated as a_lo·b_hi + a_hi·b_lo + a_hi·b_hi on the tensor cores; the dropped
a_lo·b_lo term is below float32's rounding. The tensor cores accumulate with truncation, which
makes the error grow linearly with K (measured: 160x cuBLAS float32's at K = 16384), so each
32-deep slice of k is summed in the tensor cores from zero and the slices are added in float32
with round-to-nearest. Two TF32 terms hold 22 of float32's 24 mantissa bits: where the
representation error dominates (short K, all terms of one sign: x @ x.T at K = 12) the
error measured 4.8x cuBLAS float32's, which is why the planner leaves short products to cuBLAS
(plan_gemm.MIN_K). tests/test_gemm.py checks the error against cuBLAS float32's and float64.
The opt-in --tf32 mode (GemmKernel.tf32, T::TF32 below) keeps a_hi·b_hi alone: the pack writes
the hi tiles only, a slice copies and multiplies those, and the CPU twin rounds the operands the
same way; the default mode's machine code is the same with or without it (PTX compared).

Two main loops in GEMM_LIBRARY: on an H100 (sm_90a) the large tiles run on wgmma (hopper::gemm),
after a pack kernel per operand has split it once into hi and lo TF32 tiles in the workspace,
already in the layout and swizzle wgmma reads (both operands from shared memory, any operand
layout); everything else runs on mma.sync (mma_gemm), split as the fragments are read. A wgmma
product of few tiles may split k (GemmKernel.split, T::SPLIT): each tile's s blocks write float32
partial sums to the workspace and hopper::split_sum adds them in order and runs the epilogue (the
mma.sync kernel, on other GPUs, ignores the split and stores directly). Measured
on the H100 at 4096^3 (bench/session12/gemm_packed): packing 0.15 ms, main loop 1.13 ms (122
TFLOP/s), 2.16x cuBLAS float32 in all. The loop it replaced split A in registers and B in shared
memory in the loop: 2.27-2.31 ms (60 TFLOP/s), its instructions filling 45 % of the issue slots
(ncu: 992 M); its variants (the next A split during the multiply, a producer warpgroup splitting
B, B alone packed into a workspace) ran 2.27-2.78 (bench/gemm_h100_runs).

For kernel K the shared text (CUDA and the CPU twin) defines
  K_args      the pointers,
  K_in, K_load  output element i's inputs (the bias, the epilogue's), loaded apart from
              K_epilogue so that a thread has its loads in flight together (ffsm90::epilogue_chunks),
  K_epilogue  output element i (row-major over the product's shape) from its dot product:
              bias, alpha/beta, the fused pointwise ops, the stores,
  K_elem      the CPU twin of one output element: the dot product in float32, then K_epilogue;
the CUDA text defines K_gemm, the product's shape, strides and tile configuration as
compile-time constants, for the one GEMM template (GEMM_LIBRARY), and the launcher K_cuda.
"""
from __future__ import annotations

import math

from ..plan_gemm import PACK_K, GemmKernel, operand_layout, packed_bytes, partial_bytes
from .cpp import TF32_ROUND, literal
from ..plan import inline_constant
from .pointwise import KernelSource, _broadcast_strides, _const_literal, arg_fields, epilogue_lines, input_loads, \
    kernel_operands, loaded_inputs, storage_offset


BK, STAGES = PACK_K, 3   # floats of k per slice (the packed tiles' too), stages of the mma.sync kernel


def render(k: GemmKernel) -> KernelSource:
    name, g = k.name, k.gemm
    shape = k.shape
    itype, suffix, ins, outs, var = kernel_operands(k, [shape])
    for op in ins:
        op.align16 = op.value in (g.a.value, g.b.value)   # read with 16-byte copies
    y = k.node.outputs[0]

    # --- the product's value at output element i, then the epilogue and the stores
    value = "acc" if g.alpha == 1 else f"{literal(g.alpha, y.type.dtype)} * acc"
    at = lambda st: storage_offset(st, shape, "i", itype)  # noqa: E731
    loads = input_loads(k.inputs, var, k.epilogue, shape, k.name, at)   # (K_load's: the struct K_in)
    if g.bias is not None and g.beta != 0:   # beta = 0: eager ignores the bias (NaN included)
        if inline_constant(g.bias):          # a one-element constant is a literal, not an operand
            bias = _const_literal(g.bias, y.type.dtype)
        else:
            loads.append(("float", "bias", f"a.{var[g.bias]}[{at(_broadcast_strides(g.bias.type, shape))}]"))
            bias = "in.bias"
        value += f" + {bias}" if g.beta == 1 else f" + {literal(g.beta, y.type.dtype)} * {bias}"
    body = epilogue_lines(k, y, value, outs, var, shape, itype, at, preloaded="in")

    mn = g.m * g.n
    x_k, w_k = f"x[k * {g.a.k}{suffix}]", f"w[k * {g.b.k}{suffix}]"
    if k.tf32:   # the operands rounded as the GPU's one TF32 product takes them
        x_k, w_k = f"ff_tf32({x_k})", f"ff_tf32({w_k})"
    twin = [f"const {itype} b = i / {mn}{suffix}, m = i / {g.n}{suffix} % {g.m}{suffix}, n = i % {g.n}{suffix};",
            f"const float* x = a.{var[g.a.value]} + b * {g.a.batch}{suffix} + m * {g.a.rows}{suffix};",
            f"const float* w = a.{var[g.b.value]} + b * {g.b.batch}{suffix} + n * {g.b.rows}{suffix};",
            "float acc = 0.0f;",
            f"for ({itype} k = 0; k < {g.k}{suffix}; ++k) acc += {x_k} * {w_k};",
            f"{name}_epilogue(a, i, acc, {name}_load(a, i));"]
    fields = arg_fields(ins, outs)
    bm, bn, wm, wn = k.tiles
    packed = packed_bytes(g, k.tiles) + partial_bytes(g, k.split)
    if packed:
        fields.append("  unsigned char* __restrict__ ws;  // the operands packed for wgmma (on an H100)")
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    shared = f"""
// ---- {name}: {ops_list}
//      GEMM {g.describe()}: {"TF32 tensor cores, one product (--tf32)" if k.tf32 else "3xTF32 tensor cores"} on the GPU, the epilogue at each output element
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {math.prod(shape)}{suffix};

// output element i: its inputs, its epilogue
{loaded_inputs(name, f"const {itype} i", loads)}
FF_HD void {name}_epilogue(const {name}_args& a, const {itype} i, const float acc, const {name}_in& in) {{
{chr(10).join('  ' + line for line in body)}
}}

// the CPU twin: one output element's dot product in float32
FF_HD void {name}_elem(const {name}_args& a, const {itype} i) {{
{chr(10).join('  ' + line for line in twin)}
}}

{f"constexpr size_t {name}_ws_bytes = {packed};  // A and B split into packed hi and lo tiles{', the partial sums' if k.split > 1 else ''}" if packed else ""}
int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    a_inner, a_vec = operand_layout(g, "a")
    b_inner, b_vec = operand_layout(g, "b")
    flag = lambda b: "true" if b else "false"  # noqa: E731
    workspace = ("\n  static __device__ __forceinline__ float* workspace(const Args& a) { return reinterpret_cast<float*>(a.ws); }"
                 if packed else "")
    cuda = f"""
// ---- {name}: {g.describe()}, tiles {bm} x {bn} x {BK}, {STAGES} stages, warp tiles {wm} x {wn}{f", k split {k.split} ways" if k.split > 1 else ""}
struct {name}_gemm {{
  using Args = {name}_args;
  static constexpr int64_t BATCH = {g.batch}, M = {g.m}, N = {g.n}, K = {g.k};
  static constexpr int64_t A_BATCH = {g.a.batch}, A_ROW = {g.a.rows}, A_K = {g.a.k};   // A[b, m, k]
  static constexpr int64_t B_BATCH = {g.b.batch}, B_COL = {g.b.rows}, B_K = {g.b.k};   // B[b, k, n]
  static constexpr bool A_K_INNER = {flag(a_inner)}, A_VEC = {flag(a_vec)};
  static constexpr bool B_K_INNER = {flag(b_inner)}, B_VEC = {flag(b_vec)};
  static constexpr int BM = {bm}, BN = {bn}, BK = {BK}, WM = {wm}, WN = {wn}, STAGES = {STAGES};
  static constexpr int SPLIT = {k.split};   // the wgmma kernel's blocks a tile (k split that many ways)
  static constexpr bool TF32 = {flag(k.tf32)};   // one TF32 product (--tf32) in place of three
  static __device__ __forceinline__ const float* a_ptr(const Args& a) {{ return a.{var[g.a.value]}; }}
  static __device__ __forceinline__ const float* b_ptr(const Args& a) {{ return a.{var[g.b.value]}; }}
  using In = {name}_in;   // an output element's inputs
  static __device__ __forceinline__ In load(const Args& a, int64_t i) {{ return {name}_load(a, static_cast<{itype}>(i)); }}
  static __device__ __forceinline__ void store(const Args& a, int64_t i, float v, const In& in) {{
    {name}_epilogue(a, static_cast<{itype}>(i), v, in);
  }}{workspace}
}};

int {name}_cuda(const {name}_args& a, void* stream) {{ return ffgemm::launch<{name}_gemm>(a, stream); }}
"""
    return KernelSource(k, shared, cuda, ins, outs, workspace=bool(packed), workspace_on_cpu=False,
                        helpers=(TF32_ROUND,) if k.tf32 else ())


def _wgmma_asm() -> str:
    """The operands of one wgmma m64n128k8 (TF32 in, both from shared memory: descriptors ad and
    bd; float32 accumulators d0..d63 of this thread), written out: inline asm takes no arrays."""
    regs = ", ".join(f"%{i}" for i in range(64))
    outs = [f'"+f"(d[{i}])' for i in range(64)]
    wrapped = ",\n        ".join(", ".join(outs[i:i + 8]) for i in range(0, 64, 8))
    return ('\n      "{\\n.reg .pred p;\\nsetp.ne.b32 p, %66, 0;\\n"\n'
            f'      "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 {{{regs}}}, %64, %65, p, 1, 1;\\n}}\\n"\n'
            f'      : {wrapped}\n'
            '      : "l"(ad), "l"(bd), "r"(accumulate)')


SM90_PRIMITIVES = r"""
// ---- the H100's own instructions (sm_90a): shared by the generated GEMM and convolution kernels
namespace ffsm90 {

// an sm_90 GPU (the H100, the H200): the sm_90a code runs, and with it these kernels
inline bool available() {
  static int cc[64] = {};   // per device, 0 until asked
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return false;
  if (!cc[dev]) {
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    cc[dev] = major * 10 + minor;
  }
  return cc[dev] == 90;
}

// A kernel's dynamic shared memory allowed up to `bytes`, once per device (any GPU: a call costs
// microseconds of host time on every launch otherwise)
template <auto Kernel>
inline cudaError_t smem_once(int bytes) {
  static int set[64] = {};   // per device: 1 once done
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess || dev < 0 || dev >= 64) return e != cudaSuccess ? e : cudaErrorInvalidDevice;
  if (set[dev]) return cudaSuccess;
  e = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e == cudaSuccess) set[dev] = 1;
  return e;
}

// A thread's NV output elements through its kernel's epilogue (any GPU): load(i, in) reads element
// i's inputs into `in` (the kernel's K_in), store(i, in) computes and stores it; 16 elements' loads
// before their stores. The compiler may not move a load above an earlier store (they could alias),
// and an element at a time waited a load's latency an element: chunks of 16 / one at a time on an
// H200, convolutions level2/004 0.935, 012 0.876, 015 0.907, 024 0.793 (bench/session34/epi);
// GEMMs with a bias or an epilogue input 0.966-0.992 (level2/056-087, level3/001,
// bench/session34/gemm); chunks of 32 / 16 0.997-1.145 (bench/session34/chunk).
// Nothing to load (In empty): one loop, an element at a time (the machine code of the kernels
// gemm_tuning.json timed, which are products alone).
template <int NV, class In, class Load, class Store>
__device__ __forceinline__ void epilogue_chunks(Load load, Store store) {
  if constexpr (__is_empty(In)) {
#pragma unroll
    for (int i = 0; i < NV; ++i) store(i, In{});
  } else {
    constexpr int CHUNK = NV < 16 ? NV : 16;
#pragma unroll
    for (int i0 = 0; i0 < NV; i0 += CHUNK) {
      In in[CHUNK];
#pragma unroll
      for (int j = 0; j < CHUNK; ++j) load(i0 + j, in[j]);
#pragma unroll
      for (int j = 0; j < CHUNK; ++j) store(i0 + j, in[j]);
    }
  }
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ unsigned smem_addr(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }
// shared-memory matrix descriptor: rows of 128 bytes (32 k), 128-byte swizzle, 8-row groups 1024 bytes apart
__device__ __forceinline__ uint64_t desc(const float* p) {
  const uint64_t addr = smem_addr(p);
  return ((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// keep the compiler from moving register reads and writes across the asynchronous multiply
template <int N> __device__ __forceinline__ void pin(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i]) :: "memory");
}
__device__ __forceinline__ void bar_init(uint64_t* b, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(smem_addr(b)), "r"(count));
}
__device__ __forceinline__ void bar_arrive(uint64_t* b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" :: "r"(smem_addr(b)) : "memory");
}
__device__ __forceinline__ void bar_wait(uint64_t* b, unsigned parity) {   // until the phase of this parity completes
  asm volatile("{\n.reg .pred p;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra WAIT;\n}\n"
               :: "r"(smem_addr(b)), "r"(parity) : "memory");
}
// `bytes` from global memory into shared memory by the copy engine, counted on barrier b
__device__ __forceinline__ void bulk_copy(float* dst, const float* src, unsigned bytes, uint64_t* b) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
               :: "r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(b)) : "memory");
}

#endif

}  // namespace ffsm90
"""


GEMM_LIBRARY = r"""
// ---- fuseforge GEMM: float32 products on TF32 tensor cores with float32 accuracy (3xTF32)
namespace ffgemm {

constexpr int PAD_K_OUTER = 8;   // shared-memory row padding of m- or n-inner tiles: no bank conflicts
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

// Shared-memory tiles of an operand: K_INNER tiles are R rows of BK = 32 floats (128 bytes),
// their 16-byte chunks swizzled (chunk c of row r at c ^ r % 8): fragment reads and 16-byte
// writes are free of bank conflicts, and it is the layout of wgmma's 128-byte swizzle. Other
// tiles are BK rows of R floats, padded.
template <bool K_INNER, int R, int BK>
__device__ __forceinline__ int tile_index(int r, int k) {
  static_assert(!K_INNER || BK == 32, "the swizzle is for rows of 128 bytes");
  return K_INNER ? r * BK + (((k >> 2) ^ (r & 7)) << 2) + (k & 3) : k * (R + PAD_K_OUTER) + r;
}
template <bool K_INNER, int R, int BK>
constexpr int tile_floats() { return K_INNER ? R * BK : BK * (R + PAD_K_OUTER); }

// Copy rows r0.. (R of them) and k0.. (BK) of an operand into its shared-memory tile; W floats
// per copy along the dim that is contiguous in global memory.
template <int R, int BK, int THREADS, bool K_INNER, bool VEC, int64_t ROWS, int64_t KS, int64_t SR, int64_t SK>
__device__ __forceinline__ void load_tile(float* xs, const float* x, int64_t r0, int64_t k0, int tid) {
  constexpr int W = VEC ? 4 : 1;
  constexpr int ALONG = (K_INNER ? BK : R) / W;
#pragma unroll
  for (int c = tid; c < R * BK / W; c += THREADS) {
    const int outer = c / ALONG, inner = c % ALONG * W;
    const int r = K_INNER ? outer : inner, k = K_INNER ? inner : outer;
    const int64_t gr = r0 + r, gk = k0 + k;
    const bool ok = gr < ROWS && gk < KS;
    const float* src = ok ? x + gr * SR + gk * SK : x;
    if constexpr (VEC) copy16(xs + tile_index<K_INNER, R, BK>(r, k), src, ok);
    else copy4(xs + tile_index<K_INNER, R, BK>(r, k), src, ok);
  }
}

template <class T>
constexpr int smem_bytes() {
  return T::STAGES * (tile_floats<T::A_K_INNER, T::BM, T::BK>() + tile_floats<T::B_K_INNER, T::BN, T::BK>()) * 4;
}

template <class T>
constexpr int threads() { return T::BM / T::WM * (T::BN / T::WN) * 32; }

// This block's output tile (GROUP_M tile rows at a time sweep all tile columns: L2 reuse) and
// its batch's operands.
template <class T>
struct Tile {
  int64_t m0, n0;
  const float* A;
  const float* B;
  __device__ __forceinline__ explicit Tile(const typename T::Args& a) {
    constexpr int TM = (T::M + T::BM - 1) / T::BM, TN = (T::N + T::BN - 1) / T::BN;
    const int pid = blockIdx.x, in_group = pid % (GROUP_M * TN);
    const int first = pid / (GROUP_M * TN) * GROUP_M;
    const int rows = TM - first < GROUP_M ? TM - first : GROUP_M;
    m0 = int64_t(first + in_group % rows) * T::BM;
    n0 = int64_t(in_group / rows) * T::BN;
    A = T::a_ptr(a) + blockIdx.y * T::A_BATCH;
    B = T::b_ptr(a) + blockIdx.y * T::B_BATCH;
  }
  // slice k0.. of both operands into shared-memory stage tiles as, bs
  __device__ __forceinline__ void load(float* as, float* bs, int64_t k0, int tid) const {
    constexpr int THREADS = threads<T>();
    load_tile<T::BM, T::BK, THREADS, T::A_K_INNER, T::A_VEC, T::M, T::K, T::A_ROW, T::A_K>(as, A, m0, k0, tid);
    load_tile<T::BN, T::BK, THREADS, T::B_K_INNER, T::B_VEC, T::N, T::K, T::B_COL, T::B_K>(bs, B, n0, k0, tid);
  }
  // the inputs, and the epilogue, of output element (row, col) of the tile, if it is in the product
  __device__ __forceinline__ void load(const typename T::Args& a, int row, int col, typename T::In& in) const {
    const int64_t r = m0 + row, c = n0 + col;
    if (r < T::M && c < T::N) in = T::load(a, (int64_t(blockIdx.y) * T::M + r) * T::N + c);
  }
  __device__ __forceinline__ void store(const typename T::Args& a, int row, int col, float v, const typename T::In& in) const {
    const int64_t r = m0 + row, c = n0 + col;
    if (r < T::M && c < T::N) T::store(a, (int64_t(blockIdx.y) * T::M + r) * T::N + c, v, in);
  }
};

// wgmma (sm_90a, the H100's own instructions): 128 x 128 tiles, each of the two warpgroups 64
// rows of it, both operands from shared memory. Each operand is first split once per call by a
// pack kernel into packed tiles: for every 128 rows (m of A, n of B) and 32 k, the hi and the lo
// TF32 parts, 16 KB each, contiguous, K-major in wgmma's 128-byte swizzle whatever the operand's
// layout, zeros past its end. A slice of the main loop is then two bulk copies (A's and B's 32 KB)
// that one thread issues onto a stage's mbarrier, and 12 wgmma per warpgroup: no split, no address
// arithmetic, no bank conflicts in the loop (the loop that split A in registers and B in shared
// memory issued 992 M instructions at 4096^3, 45 % of the issue slots: 2.28 ms; this one 1.13 ms
// and 0.15 ms to pack, bench/session12/gemm_packed).
namespace hopper {

constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3;
constexpr int TILE = BM * BK;      // floats of a packed tile's hi (or lo) part; BN == BM

template <class T>
constexpr bool fits() { return T::BM == BM && T::BN == BN && T::BK == BK && threads<T>() == 256; }
template <class T> constexpr int64_t k_tiles() { return (T::K + BK - 1) / BK; }
template <class T> constexpr int64_t m_tiles() { return (T::M + BM - 1) / BM; }
template <class T> constexpr int64_t n_tiles() { return (T::N + BN - 1) / BN; }
template <class T> constexpr int64_t a_batches() { return T::A_BATCH ? T::BATCH : 1; }   // (0: one A for every batch)
template <class T> constexpr int64_t b_batches() { return T::B_BATCH ? T::BATCH : 1; }
template <class T> constexpr int64_t packed_a_floats() { return a_batches<T>() * m_tiles<T>() * k_tiles<T>() * 2 * TILE; }
template <class T> constexpr int64_t packed_b_floats() { return b_batches<T>() * n_tiles<T>() * k_tiles<T>() * 2 * TILE; }
// split-K: block z of a tile sums slices [z KT / SPLIT, (z + 1) KT / SPLIT) into partial sums
// [SPLIT][BATCH][M][N] after the packed operands; split_sum adds them in order, then the epilogue
template <class T> __device__ __forceinline__ float* partials(const typename T::Args& a) {
  return T::workspace(a) + packed_a_floats<T>() + packed_b_floats<T>();
}
constexpr int smem_bytes() { return STAGES * 4 * TILE * 4 + 1024; }   // the stages, alignment

using ffsm90::available;

// Operand A (or B) into packed tiles [batch][tile of 128 rows][slice of 32 k][hi, lo][128][32], a
// block per tile and slice: read along the operand's contiguous dim into shared memory, written
// as whole 128-byte rows (chunk c of row r at c ^ r % 8).
template <class T, bool IS_A>
__global__ void __launch_bounds__(256) pack(const typename T::Args a) {
  constexpr int64_t ROWS = IS_A ? T::M : T::N, BS = IS_A ? T::A_BATCH : T::B_BATCH;
  constexpr int64_t RS = IS_A ? T::A_ROW : T::B_COL, KS = IS_A ? T::A_K : T::B_K;
  constexpr bool K_INNER = IS_A ? T::A_K_INNER : T::B_K_INNER;
  __shared__ float t[BM][BK + 1];
  const int64_t r0 = int64_t(blockIdx.y) * BM, k0 = int64_t(blockIdx.x) * BK;
  const float* src = (IS_A ? T::a_ptr(a) : T::b_ptr(a)) + blockIdx.z * BS;
  const int tid = threadIdx.x;
#pragma unroll 4
  for (int i = tid; i < BM * BK; i += 256) {
    const int r = K_INNER ? i / BK : i % BM, k = K_INNER ? i % BK : i / BM;
    t[r][k] = r0 + r < ROWS && k0 + k < T::K ? src[(r0 + r) * RS + (k0 + k) * KS] : 0.0f;
  }
  __syncthreads();
  float* dst = T::workspace(a) + (IS_A ? 0 : packed_a_floats<T>()) +
               ((int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * (2 * TILE);
#pragma unroll
  for (int c = tid; c < BM * BK / 4; c += 256) {
    const int r = c / (BK / 4), j = c % (BK / 4);
    uint4 h, l;
    split(t[r][4 * j], h.x, l.x);
    split(t[r][4 * j + 1], h.y, l.y);
    split(t[r][4 * j + 2], h.z, l.z);
    split(t[r][4 * j + 3], h.w, l.w);
    const int at = tile_index<true, BM, BK>(r, 4 * j);
    *reinterpret_cast<uint4*>(dst + at) = h;
    if constexpr (!T::TF32) *reinterpret_cast<uint4*>(dst + TILE + at) = l;   // (TF32: hi alone is read)
  }
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
using ffsm90::smem_addr, ffsm90::desc, ffsm90::fence, ffsm90::commit, ffsm90::wait_all, ffsm90::pin,
    ffsm90::bar_init, ffsm90::bar_arrive, ffsm90::bar_wait, ffsm90::bulk_copy;

// d = a * b (+ d when accumulate): a 64 x 8, b 8 x 128, both from shared memory (descriptors ad, bd)
__device__ __forceinline__ void mma(float (&d)[64], uint64_t ad, uint64_t bd, int accumulate) {
  asm volatile(WGMMA_ASM);
}
#endif

template <class T>
__global__ void __launch_bounds__(256, 1) gemm(const typename T::Args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ float4 ffgemm_smem[];
  __shared__ alignas(8) uint64_t full[STAGES], empty[STAGES];   // a stage landed; both warpgroups are done with it
  float* smem = reinterpret_cast<float*>(ffgemm_smem);
  smem += ((1024 - (smem_addr(smem) & 1023)) & 1023) / 4;       // the swizzle wants 1024-byte alignment
  constexpr int KT = k_tiles<T>();
  // this block's slices (all of them unsplit: compile-time constants)
  const int kt0 = T::SPLIT == 1 ? 0 : int(blockIdx.z * KT / T::SPLIT);
  const int nk = T::SPLIT == 1 ? int(KT) : int((blockIdx.z + 1) * KT / T::SPLIT) - kt0;
  const Tile<T> tile(a);
  const float* pa = T::workspace(a) + ((T::A_BATCH ? int64_t(blockIdx.y) : 0) * m_tiles<T>() + tile.m0 / BM) * KT * (2 * TILE);
  const float* pb = T::workspace(a) + packed_a_floats<T>() +
                    ((T::B_BATCH ? int64_t(blockIdx.y) : 0) * n_tiles<T>() + tile.n0 / BN) * KT * (2 * TILE);
  const int tid = threadIdx.x, warp = tid >> 5, wg = warp >> 2;
  constexpr int PARTS = T::TF32 ? 1 : 2;   // the packed parts a slice reads: hi (and lo)
  auto load = [&](int kt) {   // slice kt0 + kt: A's and B's hi and lo tiles into stage kt % STAGES (thread 0)
    float* dst = smem + kt % STAGES * 4 * TILE;
    uint64_t* b = &full[kt % STAGES];
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(smem_addr(b)), "r"(2 * PARTS * TILE * 4) : "memory");
    bulk_copy(dst, pa + int64_t(kt0 + kt) * 2 * TILE, PARTS * TILE * 4, b);
    bulk_copy(dst + 2 * TILE, pb + int64_t(kt0 + kt) * 2 * TILE, PARTS * TILE * 4, b);
  };
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      bar_init(&full[s], 1);
      bar_init(&empty[s], 256);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    for (int kt = 0; kt < STAGES && kt < nk; ++kt) load(kt);
  }
  __syncthreads();

  float acc[64], part[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = part[i] = 0.0f;
  for (int kt = 0; kt < nk; ++kt) {
    const int s = kt % STAGES;
    bar_wait(&full[s], (kt / STAGES) & 1);
    const float* as = smem + s * 4 * TILE + wg * 64 * BK;   // this warpgroup's 64 rows of A (hi; lo a TILE on)
    const float* bs = smem + s * 4 * TILE + 2 * TILE;
    // as in mma_gemm: the slice is summed in the tensor cores from zero, then added in float32. (A
    // second partial, the next slice's products issued while this one's are added: ptxas then
    // serialized every wgmma, its warning C7514; the two warpgroups take turns on the tensor cores.)
    pin(part);
    fence();
#pragma unroll
    for (int kk = 0; kk < BK / 8; ++kk) {   // small terms first
      if constexpr (!T::TF32) {
        mma(part, desc(as + TILE + kk * 8), desc(bs + kk * 8), kk > 0);   // a_lo b_hi
        mma(part, desc(as + kk * 8), desc(bs + TILE + kk * 8), 1);        // a_hi b_lo
      }
      mma(part, desc(as + kk * 8), desc(bs + kk * 8), T::TF32 ? kk > 0 : 1);   // a_hi b_hi
    }
    commit();
    wait_all();
    pin(part);
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[i] += part[i];
    bar_arrive(&empty[s]);
    if (tid == 0 && kt + STAGES < nk) {   // the stage again, once both warpgroups are done with it
      bar_wait(&empty[s], (kt / STAGES) & 1);
      load(kt + STAGES);
    }
  }
  // accumulator i: row g + 8 * (i / 2 % 2) of the warp's 16, column 8 * (i / 4) + 2 * t + i % 2
  const int g = (tid & 31) >> 2, t = tid & 3;
  if constexpr (T::SPLIT == 1) {
    ffsm90::epilogue_chunks<64, typename T::In>(
        [&](int i, typename T::In& in) { tile.load(a, warp * 16 + g + (i >> 1 & 1) * 8, (i >> 2) * 8 + 2 * t + (i & 1), in); },
        [&](int i, const typename T::In& in) {
          tile.store(a, warp * 16 + g + (i >> 1 & 1) * 8, (i >> 2) * 8 + 2 * t + (i & 1), acc[i], in);
        });
  } else {
    float* out = partials<T>(a) + (int64_t(blockIdx.z) * T::BATCH + blockIdx.y) * T::M * T::N;
#pragma unroll
    for (int i = 0; i < 64; ++i) {
      const int64_t r = tile.m0 + warp * 16 + g + (i >> 1 & 1) * 8, c = tile.n0 + (i >> 2) * 8 + 2 * t + (i & 1);
      if (r < T::M && c < T::N) out[r * T::N + c] = acc[i];
    }
  }
#else
  __trap();   // launched only where available()
#endif
}

// split-K's second launch: each output element's partial sums added in order, then its epilogue
template <class T>
__global__ void __launch_bounds__(256) split_sum(const typename T::Args a) {
  constexpr int64_t TOTAL = T::BATCH * T::M * T::N;
  const float* part = partials<T>(a);
  for (int64_t i = blockIdx.x * int64_t(256) + threadIdx.x; i < TOTAL; i += int64_t(gridDim.x) * 256) {
    float v = part[i];
#pragma unroll 4
    for (int s = 1; s < T::SPLIT; ++s) v += part[s * TOTAL + i];
    T::store(a, i, v, T::load(a, i));
  }
}

}  // namespace hopper

// mma.sync (sm_80 on): warps of WM x WN, fragments split as they are read from shared memory
template <class T>
__device__ __forceinline__ void mma_gemm(const typename T::Args& a, float* smem) {
  constexpr int BK = T::BK, S = T::STAGES;
  constexpr int MI = T::WM / 16, NI = T::WN / 8, WARPS_N = T::BN / T::WN;
  constexpr int A_TILE = tile_floats<T::A_K_INNER, T::BM, BK>(), B_TILE = tile_floats<T::B_K_INNER, T::BN, BK>();
  constexpr int KT = (T::K + BK - 1) / BK;
  float* const As = smem;
  float* const Bs = As + S * A_TILE;
  const Tile<T> tile(a);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = warp / WARPS_N * T::WM, wn = warp % WARPS_N * T::WN;

  auto load = [&](int stage, int64_t k0) { tile.load(As + stage * A_TILE, Bs + stage * B_TILE, k0, tid); };

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
      auto fragment_a = [&](uint32_t& h, uint32_t& l, int r, int k) { split(as[tile_index<T::A_K_INNER, T::BM, BK>(r, k)], h, l); };
      auto fragment_b = [&](uint32_t& h, uint32_t& l, int c, int k) { split(bs[tile_index<T::B_K_INNER, T::BN, BK>(c, k)], h, l); };
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
          if constexpr (!T::TF32) {
            mma(part[i][j], al[i], bh[j]);
            mma(part[i][j], ah[i], bl[j]);
          }
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

  // each accumulator through the epilogue: rows g and g + 8, columns 2t and 2t + 1 of each mma
  // tile (nothing to load: these loops, the machine code gemm_tuning.json timed)
  if constexpr (__is_empty(typename T::In)) {
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) tile.store(a, wm + i * 16 + g + (e >> 1) * 8, wn + j * 8 + 2 * t + (e & 1), acc[i][j][e], {});
    return;
  }
  // (accumulator x = (i NI + j) 4 + e)
  ffsm90::epilogue_chunks<MI * NI * 4, typename T::In>(
      [&](int x, typename T::In& in) { tile.load(a, wm + x / (NI * 4) * 16 + g + (x >> 1 & 1) * 8, wn + x / 4 % NI * 8 + 2 * t + (x & 1), in); },
      [&](int x, const typename T::In& in) {
        tile.store(a, wm + x / (NI * 4) * 16 + g + (x >> 1 & 1) * 8, wn + x / 4 % NI * 8 + 2 * t + (x & 1),
                   acc[x / (NI * 4)][x / 4 % NI][x & 3], in);
      });
}

// The kernel of every other configuration or GPU: mma.sync
template <class T>
__global__ void __launch_bounds__(threads<T>()) gemm_3xtf32(const typename T::Args a) {
  extern __shared__ float4 ffgemm_smem[];
  mma_gemm<T>(a, reinterpret_cast<float*>(ffgemm_smem));
}

template <class T>
int launch(const typename T::Args& a, void* stream) {
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  constexpr int TM = (T::M + T::BM - 1) / T::BM, TN = (T::N + T::BN - 1) / T::BN;
  if constexpr (hopper::fits<T>()) {
    if (hopper::available()) {
      constexpr int KT = hopper::k_tiles<T>(), smem = hopper::smem_bytes();
      hopper::pack<T, true><<<dim3(KT, TM, hopper::a_batches<T>()), 256, 0, s>>>(a);
      hopper::pack<T, false><<<dim3(KT, TN, hopper::b_batches<T>()), 256, 0, s>>>(a);
      const cudaError_t set = ffsm90::smem_once<hopper::gemm<T>>(smem);
      if (set != cudaSuccess) return set;
      hopper::gemm<T><<<dim3(TM * TN, T::BATCH, T::SPLIT), 256, smem, s>>>(a);
      if constexpr (T::SPLIT > 1) {
        constexpr int64_t total = T::BATCH * T::M * T::N;
        hopper::split_sum<T><<<int(total / 256 < 4096 ? (total + 255) / 256 : 4096), 256, 0, s>>>(a);
      }
      return cudaGetLastError();
    }
  }
  constexpr int smem = smem_bytes<T>();
  const cudaError_t set = ffsm90::smem_once<gemm_3xtf32<T>>(smem);
  if (set != cudaSuccess) return set;
  gemm_3xtf32<T><<<dim3(TM * TN, T::BATCH), threads<T>(), smem, s>>>(a);
  return cudaGetLastError();
}

}  // namespace ffgemm
""".replace("WGMMA_ASM", _wgmma_asm())
