"""Render a ConvKernel: a 2D or 3D convolution as an implicit GEMM on the H100's TF32 tensor cores
(wgmma), the epilogue applied to each output element before the one store, NC(D)HW; or, for a
kernel with `rows` (plan_conv.fold_pixel_rows), a row function over each pixel's channels.

GEMM view: M = output pixels (image, (od,) oh, ow), N = output channels, K = (tap, c), c innermost,
a tap's channels padded to CP (C where it divides 32: a k-slice then holds 32 / C taps, each
thread's chunk at its own tap; else whole 32-channel slices a tap). 3D: the tap is (q, r, s) and
the depth one more bound to check; a 2D convolution is one of depth 1 (its SASS unchanged but for
the setup before the main loop).
A call runs two kernels (CONV_LIBRARY), after a third on the first call:
  pack     the weights into tiles of BN channels x 32 k, K-major in wgmma's 128-byte swizzle,
           rounded to TF32 (zeros past the channels), into a buffer of their own: on the first
           call, and again where the weights change (another tensor, or an in-place update:
           ff::packed_once, the rule of the weights cuDNN reads converted);
  (tile)   the input, NCHW, into the workspace channels-last and rounded to TF32 (the tile
           copy that converts inputs for cuDNN, ff_cl_copy, rounding as it writes);
           not where the kernel reads the input NCHW as it is (plan_conv.nchw_input: a 1x1 of
           stride 1; 4-byte copies, a thread's own chunks rounded in shared memory once landed);
  conv     a block per 128 pixels x BN channels (32, 64 or 128): two warpgroups of 64 pixels;
           k in slices of 32 (one tap's channels, or 32 / CP taps of CP), 3 stages. A slice of A
           is each pixel's 128 bytes of the channels-last input at its tap (16-byte cp.async,
           zeros where the tap falls in the padding or past the channels; each thread's
           addresses set once, a slice adds its tap's offset: 123 instructions a slice per warp
           where it was 222, the models' times 0.90-0.99 of the earlier ones,
           bench/session16/ab_conv*_h100.json; 138 for a slice of two taps of 16 channels, 3D,
           level2/033), B's slice one bulk copy onto an mbarrier; where plan_conv.tma_input says (2D,
           whole k-slices), A's slice is one TMA copy in im2col mode instead (thread 0 issues it
           onto the same mbarrier: the walk over the tile's 128 output pixels' window corners at
           the slice's tap offset, zeros in the padding and past the channels, in the same
           swizzle); then the accumulators go through the epilogue (K_epilogue at the element's
           image, channel and pixel: the fused pointwise ops, the stores; the inputs it reads
           loaded by K_load, 16 elements' before their stores: ffconv::epilogue; without an epilogue
           (plan_conv.staged_store) staged through shared memory first, a warp then storing a
           channel's 32 consecutive pixels). Pixel rows: the packed weights' channels permuted
           within each 8 so that quad lane t's accumulators of a pixel hold channels t, t + 4, ...;
           the four lanes run the row kernel's row function (codegen/rows.py PixelRows) on them as
           a team.
  (halo)   in place of conv where plan_conv.halo says (FUSEFORGE_CONV_HALO=1, off by default:
           measured slower): a tile's input rows copied to shared memory once, each tap's A that
           copy shifted by the tap's offset (wgmma without swizzle), the weights resident while a
           block loops over tiles.
Numerics: both operands rounded to TF32 to nearest, float32 sums, as cuDNN's TF32 convolution
(what eager runs by default) computes (plan_conv.py); where the bias add is folded in
(plan_conv.bias_add), a channel's sums start at its bias (T::init) instead of 0: the same float32
sum, the bias added first instead of last. The CPU twin (K_elem) sums the same
rounded products in float32 where it runs on a GPU (`direct`); on the CPU it sums the float32
products, as eager's CPU convolution does: no looser than eager on either.

Other GPUs (no wgmma): `direct`, a thread an output element computing the CPU twin's sum, the
same numerics; correct, not fast (the plan's rules are measured on the H100).
"""
from __future__ import annotations

import math

from ..plan_conv import ConvKernel, halo, nchw_input, stages, staged_store, tiles, tma_input
from . import rows
from .cpp import ONE_THREAD_TEAM, TF32_ROUND
from .pointwise import KernelSource, Operand, arg_fields, epilogue_lines, input_loads, kernel_operands, \
    loaded_inputs

BM, BK = 128, 32   # pixels a block, k a slice (CONV_LIBRARY's constants, for the comments)


def render(k: ConvKernel) -> KernelSource:
    name, cv = k.name, k.conv
    shape = k.shape
    itype, suffix, ins, outs, var = kernel_operands(k, [shape] + ([k.rows.space] if k.rows else []))
    y = k.result   # (the bias add's, where the sums start at the bias)
    if k.bias is not None:   # channel co's bias (one value a channel, right-aligned over [N, K, ...])
        stride = k.bias.type.strides[k.bias.type.ndim - len(shape) + 1]
        bias = f"a.{var[k.bias]}[{'co' if stride == 1 else f'co * {stride}'}]"
    else:
        bias = "0.0f"
    if k.rows:   # the row function of each pixel's channels (codegen/rows.py), reading the conv's args
        k.rows.name = f"{name}_pixel"
        op_of = {op.value: op for op in ins + outs}
        row_ins = [Operand(v, "conv", v.type.strides, "", False) if v is k.fed else op_of[v] for v in k.rows.inputs]
        pixel = rows.render(k.rows, rows.PixelRows(f"{name}_args", row_ins, [op_of[v] for v in k.rows.outputs]))

    # --- the convolution's value at output element i, then the epilogue and the stores
    three = cv.dims == 3
    plane = cv.oh * cv.ow

    def at(st):   # offset over [N, K, (OD,) OH, OW] of element (img, co, p = (od * OH +) oh * OW + ow)
        n_, c_, *sp = st
        if sp[:-1] == [e * sp[-1] for e in ([plane, cv.ow] if three else [cv.ow])]:
            terms = [("img", n_), ("co", c_), ("p", sp[-1])]
        else:
            at_d = [(f"(p / {plane}{suffix})", sp[0])] if three else []
            at_h = f"(p / {cv.ow}{suffix} % {cv.oh}{suffix})" if three else f"(p / {cv.ow}{suffix})"
            terms = [("img", n_), ("co", c_)] + at_d + [(at_h, sp[-2]), (f"(p % {cv.ow}{suffix})", sp[-1])]
        return " + ".join(f"{x} * {s_}{suffix}" for x, s_ in terms if s_) or "0"
    body = [] if k.rows else epilogue_lines(k, y, "acc", outs, var, shape, itype, at, preloaded="in")
    loads = [] if k.rows else input_loads(k.inputs, var, k.epilogue, shape, k.name, at)

    sh, sw = cv.stride
    ph, pw = cv.padding
    dh, dw = cv.dilation
    sd, pd, dd = cv.depth
    pixels = cv.od * plane
    # the CPU twin: element i's coordinates and its window's loops (3D: a depth loop around the 2D ones)
    if three:
        where = [f"const int64_t ow = i % {cv.ow}, oh = i / {cv.ow} % {cv.oh}, od = i / {plane} % {cv.od}, "
                 f"co = i / {pixels} % {cv.k}, img = i / {pixels * cv.k};"]
        depth_loop = [f"  for (int64_t q = 0; q < {cv.kd}; ++q) {{",
                      f"    const int64_t id = od * {sd} - {pd} + q * {dd};",
                      f"    if (id < 0 || id >= {cv.d}) continue;"]
        x_at, w_at = f"((c * {cv.d} + id) * {cv.h} + ih) * {cv.w_} + iw", f"((c * {cv.kd} + q) * {cv.r} + r) * {cv.s} + s"
        pix = f"(od * {cv.oh} + oh) * {cv.ow} + ow"
    else:
        where = [f"const int64_t ow = i % {cv.ow}, oh = i / {cv.ow} % {cv.oh}, co = i / {cv.ow * cv.oh} % {cv.k}, "
                 f"img = i / {cv.ow * cv.oh * cv.k};"]
        depth_loop = []
        x_at, w_at = f"(c * {cv.h} + ih) * {cv.w_} + iw", f"(c * {cv.r} + r) * {cv.s} + s"
        pix = f"oh * {cv.ow} + ow"
    deep = "  " * bool(three)
    window = [f"for (int64_t c = 0; c < {cv.c}; ++c)"] + depth_loop + [
        deep + f"  for (int64_t r = 0; r < {cv.r}; ++r) {{",
        deep + f"    const int64_t ih = oh * {sh} - {ph} + r * {dh};",
        deep + f"    if (ih < 0 || ih >= {cv.h}) continue;",
        deep + f"    for (int64_t s = 0; s < {cv.s}; ++s) {{",
        deep + f"      const int64_t iw = ow * {sw} - {pw} + s * {dw};",
        deep + f"      if (iw >= 0 && iw < {cv.w_}) {{",
        "#ifdef __CUDA_ARCH__   // a GPU's: TF32 operands, as the tensor cores' (and cuDNN's)",
        deep + f"        acc += ff_tf32(x[{x_at}]) * ff_tf32(w[{w_at}]);",
        "#else                  // the CPU's: float32, as eager's on the CPU",
        deep + f"        acc += x[{x_at}] * w[{w_at}];",
        "#endif",
        deep + "      }",
        deep + "    }",
        deep + "  }"] + (["  }"] if three else [])
    image = f"const float* x = a.{var[cv.x]} + img * {cv.c * cv.d * cv.h * cv.w_};"
    twin = where + [image, f"const float* w = a.{var[cv.w]} + co * {cv.c * cv.taps};", f"float acc = {bias};"] + window
    if k.rows:   # i is a pixel: every channel's sum, then the row function on them (2D only)
        twin = [f"const int64_t ow = i % {cv.ow}, oh = i / {cv.ow} % {cv.oh}, img = i / {cv.ow * cv.oh};",
                image, f"float vals[{cv.k}];", f"for (int64_t co = 0; co < {cv.k}; ++co) {{",
                f"  const float* w = a.{var[cv.w]} + co * {cv.c * cv.taps};", f"  float acc = {bias};"] + \
            ["  " + line for line in window] + ["  vals[co] = acc;", "}",
                                                f"{k.rows.name}_row<{cv.k}>(a, i, true, ff_team_one{{}}, 0, 0, vals);"]
    else:
        twin.append(f"{name}_epilogue(a, {itype}(img), {itype}(co), {itype}({pix}), acc, "
                    f"{name}_load(a, {itype}(img), {itype}(co), {itype}({pix})));")

    bn, kt = tiles(cv)
    hl = halo(cv, bool(k.rows))
    nt = math.ceil(cv.k / bn)
    ws = cv.n * cv.d * cv.h * cv.w_ * cv.c * 4
    fields = arg_fields(ins, outs) + ["  unsigned char* __restrict__ ws;  // the input channels-last",
                                      "  const float* __restrict__ packed;  // the weights packed (ff::packed_once)"]
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    if k.rows:
        after = f"""rows of each pixel's channels
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {k.rows.rows}{suffix};  // pixels
{pixel.shared}"""
    else:
        after = f"""the epilogue at each output element
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {math.prod(shape)}{suffix};

// output element (img, co, p = {'(od * OH + oh) * OW + ow' if three else 'oh * OW + ow'}): its inputs, its epilogue
{loaded_inputs(name, f"const {itype} img, const {itype} co, const {itype} p", loads)}
FF_HD void {name}_epilogue(const {name}_args& a, const {itype} img, const {itype} co, const {itype} p, const float acc,
                           const {name}_in& in) {{
{chr(10).join('  ' + line for line in body)}
}}
"""
    shared = f"""
// ---- {name}: {ops_list}
//      convolution {cv.describe()}: TF32 tensor cores on the GPU (operands rounded to nearest,
//      float32 sums), {after}
// the CPU twin (and the direct kernel of GPUs without wgmma): one output element (a pixel's row), the products
// summed in float32; on a GPU of TF32-rounded operands, as the tensor cores and eager's cuDNN
// round them, on the CPU of the float32 operands, as eager's CPU convolution
FF_HD void {name}_elem(const {name}_args& a, const {itype} i) {{
{chr(10).join('  ' + line for line in twin)}
}}

constexpr size_t {name}_ws_bytes = {ws};  // the input channels-last
constexpr size_t {name}_packed_bytes = {nt * kt * bn * BK * 4};  // the weights packed ({nt * kt} tiles)
int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
int {name}_pack(const float* w, float* packed, void* stream);  // in the CUDA source
"""
    cuda = f"""
// ---- {name}: {cv.describe()}, tiles {BM} pixels x {bn} channels x {BK} k, {kt} k-slices
struct {name}_conv {{
  using Args = {name}_args;
  static constexpr int N = {cv.n}, C = {cv.c}, H = {cv.h}, W = {cv.w_}, K = {cv.k}, R = {cv.r}, S = {cv.s};
  static constexpr int SH = {sh}, SW = {sw}, PH = {ph}, PW = {pw}, DH = {dh}, DW = {dw}, OH = {cv.oh}, OW = {cv.ow};
  static constexpr int D = {cv.d}, KD = {cv.kd}, SD = {sd}, PD = {pd}, DD = {dd}, OD = {cv.od};   // depth (3D)
  static constexpr bool HALO = {'true' if hl else 'false'};   // the halo kernel (plan_conv.halo){f': rows of {hl[0]} pixels, {hl[1]} rows a plane, {hl[2]} pixels a channel quad' if hl else ''}
  static constexpr int WH = {hl[0] if hl else 1}, HR = {hl[1] if hl else 1}, HPS = {hl[2] if hl else 1};
  static constexpr int CP = {cv.cp};   // channels a tap takes of the packed k ({'a k-slice holds ' + str(32 // cv.cp) + ' taps' if cv.cp < 32 else 'whole k-slices'})
  static constexpr int BN = {bn}, STAGES = {stages(cv)};
  static constexpr bool NCHW_IN = {'true' if nchw_input(cv) else 'false'};   // the input read NCHW (else converted first)
  static constexpr bool TMA = {'true' if tma_input(cv) else 'false'};   // A's slices by the copy engine (im2col), else every thread's copies
  static constexpr bool STAGED = {'true' if staged_store(k) else 'false'};   // the results through shared memory, stored a channel's pixels a warp
  static constexpr bool ROWS = {'true' if k.rows else 'false'};   // the epilogue: {'a row function on each pixel' if k.rows else 'each element'}
  static __host__ __device__ __forceinline__ const float* x(const Args& a) {{ return a.{var[cv.x]}; }}
  static __host__ __device__ __forceinline__ float* ws(const Args& a) {{ return reinterpret_cast<float*>(a.ws); }}
  static __device__ __forceinline__ const float* packed(const Args& a) {{ return a.packed; }}
  static __device__ __forceinline__ float init(const Args& a, int co) {{ return {bias}; }}   // where channel co's sums start
  using In = {f"{name}_in" if not k.rows else "ffconv::none"};   // an output element's inputs
  static __device__ __forceinline__ In load(const Args& a, int img, int co, int p) {{
    return {f"{name}_load(a, {itype}(img), {itype}(co), {itype}(p))" if not k.rows else "{}"};
  }}
  static __device__ __forceinline__ void store(const Args& a, int img, int co, int p, float v, const In& in) {{
    {f"{name}_epilogue(a, {itype}(img), {itype}(co), {itype}(p), v, in);" if not k.rows else ""}
  }}
  static __device__ __forceinline__ void rows(const Args& a, int64_t m, bool active, int t, const float (&v)[BN / 4]) {{
    {f"{k.rows.name}_row<BN / 4>(a, static_cast<{itype}>(m), active, ff_team_lanes<4>{{t}}, 0, 0, v);" if k.rows else ""}
  }}
  static __device__ __forceinline__ void direct(const Args& a, int64_t i) {{ {name}_elem(a, static_cast<{itype}>(i)); }}
}};

int {name}_cuda(const {name}_args& a, void* stream) {{ return ffconv::launch<{name}_conv>(a, stream); }}
int {name}_pack(const float* w, float* packed, void* stream) {{ return ffconv::pack_weights<{name}_conv>(w, packed, stream); }}
"""
    helpers = (TF32_ROUND,) + ((ONE_THREAD_TEAM,) + pixel.helpers if k.rows else ())
    return KernelSource(k, shared, cuda, ins, outs, workspace=True, workspace_on_cpu=False, helpers=helpers,
                        packed=var[cv.w])


def _wgmma(n: int) -> str:
    """wgmma m64n{n}k8, TF32 operands from shared memory (descriptors ad, bd), always accumulating
    (scale-d true) into the float32 d[0..n/2) of this thread (written out: inline asm takes no arrays)."""
    regs = ", ".join(f"%{i}" for i in range(n // 2))
    outs = ",\n        ".join(", ".join(f'"+f"(d[{i}])' for i in range(j, min(j + 8, n // 2))) for j in range(0, n // 2, 8))
    return f"""template <> struct wgmma<{n}> {{
  static __device__ __forceinline__ void run(float (&d)[{n // 2}], uint64_t ad, uint64_t bd) {{
    asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{n // 2 + 2}, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k8.f32.tf32.tf32 {{{regs}}}, %{n // 2}, %{n // 2 + 1}, p, 1, 1;\\n}}\\n"
      : {outs}
      : "l"(ad), "l"(bd), "r"(1));
  }}
}};"""


CONV_LIBRARY = r"""
// ---- fuseforge convolution: an implicit GEMM on TF32 tensor cores (wgmma), NCHW in and out
#include <cuda.h>   // (CUtensorMap and its encoder's declaration: the encoder is found at run time, no -lcuda)
namespace ffconv {

constexpr int BM = 128, BK = 32;   // pixels a block (two warpgroups), k a slice (T::STAGES slices in flight)
template <class T> constexpr int TAPS = T::KD * T::R * T::S;              // window taps (q, r, s)
template <class T> constexpr int KT = (TAPS<T> * T::CP + BK - 1) / BK;     // k-slices in all
template <class T> constexpr int NT = (T::K + T::BN - 1) / T::BN;          // channel tiles
template <class T> constexpr int P = T::OD * T::OH * T::OW;                // output pixels an image
template <class T> constexpr int64_t M = int64_t(T::N) * P<T>;             // output pixels

// Where accumulator i of quad lane t starts: its channel's bias (T::init), 0 past the channels.
// Its channel: 8 (i / 4) + 2 t + i % 2 of the tile; with pixel rows, t + 4 k for k = 2 (i / 4) +
// i % 2 (the packed weights' channels permuted so that the quad's lanes hold a pixel's row).
template <class T>
__device__ __forceinline__ float acc_init(const typename T::Args& a, int i, int t) {
  const int co = int(blockIdx.y) * T::BN + (T::ROWS ? t + 8 * (i >> 2) + 4 * (i & 1) : 8 * (i >> 2) + 2 * t + (i & 1));
  return T::K % T::BN == 0 || co < T::K ? T::init(a, co) : 0.0f;
}
template <class T> constexpr int64_t packed_floats() { return int64_t(NT<T>) * KT<T> * T::BN * BK; }
struct none {};   // the inputs of an element whose kernel reads none (T::In)

// NV output elements through the epilogue (ffsm90::epilogue_chunks): at(i, img, co, p) says where
// element i is (false: out of bounds), val(i) its sum
template <class T, int NV, class At, class Val>
__device__ __forceinline__ void epilogue(const typename T::Args& a, At at, Val val) {
  ffsm90::epilogue_chunks<NV, typename T::In>(
      [&](int i, typename T::In& in) {
        int img, co, p;
        if (at(i, img, co, p)) in = T::load(a, img, co, p);
      },
      [&](int i, const typename T::In& in) {
        int img, co, p;
        if (at(i, img, co, p)) T::store(a, img, co, p, val(i), in);
      });
}

constexpr int LD = BM + 4;   // a channel's row of the staged results (T::STAGED; the padding: conflict-free writes)
template <class T> constexpr int smem_bytes() {   // the stages (or the staged results, if more), alignment
  constexpr int stages = T::STAGES * (BM + T::BN) * BK, staged = T::BN * LD;
  return (stages > staged ? stages : staged) * 4 + 1024;
}
// the halo kernel's (plan_conv.halo): its tiles of BM virtual pixels (a plane's rows of WH columns)
template <class T> constexpr int TILES_PLANE = (T::OH * T::WH + BM - 1) / BM;
template <class T> constexpr int64_t halo_tiles = int64_t(T::N) * T::OD * TILES_PLANE<T>;
template <class T> constexpr int halo_weight_floats = T::KD * T::R * T::S * T::C * T::BN;   // a channel tile's
template <class T> constexpr int halo_smem = (T::C * T::HPS + halo_weight_floats<T>) * 4;

// rows of 32 floats, 16-byte chunk c of row r at c ^ r % 8 (wgmma's 128-byte swizzle)
__device__ __forceinline__ int swz(int r, int k) { return r * BK + (((k >> 2) ^ (r & 7)) << 2) + (k & 3); }

// The weights [K][C][(KD][)R][S] into tiles [channel tile][k-slice][BN][32], k = (tap, c), a tap's
// channels padded to CP, rounded.
template <class T>
__global__ void __launch_bounds__(256) pack(const float* __restrict__ w, float* __restrict__ dst) {
  for (int64_t e = int64_t(blockIdx.x) * 256 + threadIdx.x; e < packed_floats<T>(); e += int64_t(gridDim.x) * 256) {
    if constexpr (T::HALO) {   // [channel tile][tap][channel quad][BN][4] (the halo kernel's, no swizzle)
      if (e >= int64_t(NT<T>) * halo_weight_floats<T>) return;
      const int c = static_cast<int>(e / (4 * T::BN) % (T::C / 4)) * 4 + static_cast<int>(e % 4);
      const int tap = static_cast<int>(e / (T::BN * T::C) % TAPS<T>);
      const int co = static_cast<int>(e / (int64_t(T::BN) * T::C * TAPS<T>)) * T::BN + static_cast<int>(e / 4 % T::BN);
      dst[e] = ff_round_tf32(co < T::K ? w[(int64_t(co) * T::C + c) * TAPS<T> + tap] : 0.0f);
      continue;
    }
    const int kk = static_cast<int>(e % BK), row = static_cast<int>(e / BK % T::BN);
    const int64_t tile = e / (BK * T::BN);   // channel tile * KT + k-slice
    // (pixel rows: tile row 8q + 2t + e holds channel 8q + t + 4e, so that quad lane t's
    // accumulators hold channels t, t + 4, t + 8, ... in order, a row function's share)
    const int col = T::ROWS ? (row & ~7) | (row >> 1 & 3) | (row & 1) << 2 : row;
    const int kt = static_cast<int>(tile % KT<T>), co = static_cast<int>(tile / KT<T>) * T::BN + col;
    const int tap = (kt * BK + kk) / T::CP, c = (kt * BK + kk) % T::CP;
    const float v = co < T::K && c < T::C && tap < TAPS<T> ? w[(int64_t(co) * T::C + c) * TAPS<T> + tap] : 0.0f;
    dst[tile * (T::BN * BK) + swz(row, kk)] = ff_round_tf32(v);
  }
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
template <int N> struct wgmma;
WGMMA_SHAPES
// (L2 only: through L1, or with a larger L1, measured 0.96-1.14x the time, bench/session19/second)
__device__ __forceinline__ void copy16(unsigned dst, const float* src, bool ok) {   // zeros where !ok
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void copy4(unsigned dst, const float* src, bool ok) {   // (L1-cached: the taps share lines)
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" :: "r"(dst), "l"(src), "r"(ok ? 4 : 0));
}
// A slice by the copy engine (T::TMA): the 128 pixels of the im2col walk from window corner (w, h)
// of image n on, each at tap offset (dw, dh), channels c... (zeros outside the image and past C),
// in the rows' 128-byte swizzle
__device__ __forceinline__ void im2col_copy(float* dst, const CUtensorMap* map, int c, int w, int h, int n, int dw, int dh,
                                            uint64_t* b) {
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3, %4, %5}], [%6], {%7, %8};\n"
               :: "r"(ffsm90::smem_addr(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(c), "r"(w), "r"(h), "r"(n),
                  "r"(ffsm90::smem_addr(b)), "h"(static_cast<unsigned short>(dw)), "h"(static_cast<unsigned short>(dh))
               : "memory");
}
__device__ __forceinline__ void round16(unsigned at) {   // four floats in shared memory rounded to TF32
  float4 v;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(at));
  asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" :: "r"(at), "f"(ff_round_tf32(v.x)), "f"(ff_round_tf32(v.y)),
               "f"(ff_round_tf32(v.z)), "f"(ff_round_tf32(v.w)) : "memory");
}
#endif

template <class T>
__global__ void __launch_bounds__(256) conv(const typename T::Args a, const __grid_constant__ CUtensorMap im2col) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int BN = T::BN, A_TILE = BM * BK, STAGE = (BM + BN) * BK, STAGES = T::STAGES;
  constexpr bool PADDED = T::PD > 0 || T::PH > 0 || T::PW > 0;   // (unpadded, every tap of a pixel is inside the image)
  constexpr bool WHOLE = T::CP >= BK;   // a k-slice is one tap's channels (else BK / CP taps of CP channels)
  constexpr int DHW = T::D * T::H * T::W;
  extern __shared__ float4 ffconv_smem[];
  __shared__ alignas(8) uint64_t full[STAGES];   // a stage's weights landed
  float* smem = reinterpret_cast<float*>(ffconv_smem);
  smem += ((1024 - (ffsm90::smem_addr(smem) & 1023)) & 1023) / 4;   // the swizzle wants 1024-byte alignment
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int64_t m0 = int64_t(blockIdx.x) * BM;
  // (TMA: the tile's first pixel's image and window corner; the im2col walk takes the next 127 in order)
  const int img0 = static_cast<int>(m0 / P<T>), p0 = static_cast<int>(m0 % P<T>);
  const int w0 = p0 % T::OW * T::SW - T::PW, h0 = p0 / T::OW % T::OH * T::SH - T::PH;
  const float* xin = T::NCHW_IN ? T::x(a) : T::ws(a);
  const float* wt = T::packed(a) + int64_t(blockIdx.y) * KT<T> * BN * BK;
  // The gather's per-thread state, set once (the main loop adds the tap's offset, the same for
  // every thread): this thread's four pixels (rows warp * 16 + lane / 8 + 4 i of the tile) and
  // 16-byte chunk (lane % 8): where the chunk is at tap (0, 0) (a pixel past the end takes the
  // first pixel's), its row and column there (for the padding), and its place in stage 0. A copy
  // that is not ok copies 0 bytes and reads nothing (zero-filled); where the address could leave
  // the image (the padding) it is the input's start anyway. Offsets fit 32 bits: the plan keeps
  // tensors under 2^31 elements. (!WHOLE: chunk lane % 8 is channels 4 (chunk % (CP / 4)) of tap
  // chunk / (CP / 4) of the slice's BK / CP taps, its own tap's offset added a slice.)
  // NCHW_IN: the input read as it is (NCHW), a thread a channel quad (its warp) of four pixels
  // (rows lane + 32 i), 4-byte copies (a warp's copy: 32 pixels of a channel, 128 bytes), each
  // chunk rounded to TF32 in place once it landed (see the main loop).
  static_assert(WHOLE || !T::NCHW_IN, "the input read NCHW takes whole k-slices of a tap");
  const int chunk = T::NCHW_IN ? warp : lane & 7;
  const int c_in = WHOLE ? chunk * 4 : chunk % (T::CP / 4) * 4;   // the chunk's first channel (of the slice's)
  const unsigned stage0 = ffsm90::smem_addr(smem);
  const float* src[4];
  int id0[4], ih0[4], iw0[4];
  unsigned dst[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int row = T::NCHW_IN ? lane + 32 * i : warp * 16 + (lane >> 3) + 4 * i;
    const bool valid = m0 + row < M<T>;
    const int64_t m = valid ? m0 + row : 0;
    const int img = static_cast<int>(m / P<T>), p = static_cast<int>(m % P<T>);
    const int ih = p / T::OW % T::OH * T::SH - T::PH;
    id0[i] = T::D == 1 ? 0 : p / (T::OH * T::OW) * T::SD - T::PD;
    ih0[i] = valid ? ih : -(1 << 29);   // (past the end: every tap out of bounds)
    iw0[i] = p % T::OW * T::SW - T::PW;
    src[i] = T::NCHW_IN ? xin + ((((img * T::C + chunk * 4) * T::D + id0[i]) * T::H + ih) * T::W + iw0[i])
                        : xin + ((((img * T::D + id0[i]) * T::H + ih) * T::W + iw0[i]) * T::C + c_in);
    dst[i] = stage0 + 4 * swz(row, chunk * 4);
  }
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) ffsm90::bar_init(&full[s], 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  int q = 0, r = 0, s = 0, c0 = 0, into = 0;   // the next slice to load (WHOLE): tap (q, r, s), channels c0..., into stage `into`
  auto load = [&](int kt) {   // slice kt: A gathered by every thread (or one TMA), B by one bulk copy
    if constexpr (T::TMA) {   // the tile's 128 pixels at tap (r, s), channels c0...: one im2col copy
      if (tid == 0) {
        uint64_t* b = &full[into];
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(ffsm90::smem_addr(b)), "r"(STAGE * 4) : "memory");
        im2col_copy(smem + into * STAGE, &im2col, c0, w0, h0, img0, s * T::DW, r * T::DH, b);
        ffsm90::bulk_copy(smem + into * STAGE + A_TILE, wt + int64_t(kt) * BN * BK, BN * BK * 4, b);
      }
      if ((c0 += BK) >= T::C) {   // the next tap
        c0 = 0;
        if (++s == T::S) s = 0, ++r;
      }
      if (++into == STAGES) into = 0;
      return;
    }
    if constexpr (!WHOLE) {   // this thread's tap of the slice
      const int j = kt * (BK / T::CP) + chunk / (T::CP / 4);
      q = j / (T::R * T::S), r = j / T::S % T::R, s = j % T::S;
    }
    const int tap = T::NCHW_IN ? c0 * DHW + ((q * T::DD) * T::H + r * T::DH) * T::W + s * T::DW
                               : (((q * T::DD) * T::H + r * T::DH) * T::W + s * T::DW) * T::C + c0;
    const bool c_ok = WHOLE ? T::C % BK == 0 || c0 + chunk * 4 < T::C : q < T::KD;   // (!WHOLE: a tap past the last is q == KD)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      // unpadded, a pixel's every tap is inside the image
      const bool in_d = T::KD == 1 && T::PD == 0 || unsigned(id0[i] + q * T::DD) < unsigned(T::D);
      const bool ok = c_ok && (PADDED ? in_d && unsigned(ih0[i] + r * T::DH) < unsigned(T::H) && unsigned(iw0[i] + s * T::DW) < unsigned(T::W)
                                      : ih0[i] >= 0);
      if constexpr (T::NCHW_IN) {
#pragma unroll
        for (int e = 0; e < 4; ++e) copy4(dst[i] + into * (STAGE * 4) + 4 * e, PADDED && !ok ? xin : src[i] + tap + e * DHW, ok);
      } else {
        copy16(dst[i] + into * (STAGE * 4), PADDED && !ok ? xin : src[i] + tap, ok);
      }
    }
    if (tid == 0) {
      uint64_t* b = &full[into];
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(ffsm90::smem_addr(b)), "r"(BN * BK * 4) : "memory");
      ffsm90::bulk_copy(smem + into * STAGE + A_TILE, wt + int64_t(kt) * BN * BK, BN * BK * 4, b);
    }
    if (WHOLE && (c0 += BK) >= T::C) {   // the next tap
      c0 = 0;
      if (++s == T::S) {
        s = 0, ++r;
        if (T::KD > 1 && r == T::R) r = 0, ++q;
      }
    }
    if (++into == STAGES) into = 0;
  };
#pragma unroll
  for (int st = 0; st < STAGES - 1; ++st) {
    if (st < KT<T>) load(st);
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  }
  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = acc_init<T>(a, i, lane & 3);
  // descriptors of stage 0 (this warpgroup's 64 pixels, the weights): a stage, or 8 k, further
  // adds its byte offset / 16 to the address field, the low bits (which never carry: under 256 KB)
  const uint64_t ad = ffsm90::desc(smem + wg * 64 * BK), bd = ffsm90::desc(smem + A_TILE);
  const unsigned a_lo = static_cast<unsigned>(ad), b_lo = static_cast<unsigned>(bd);
  const uint64_t hi = ad & ~uint64_t(0xffffffff);   // (the same for both)
  unsigned st = 0, phase = 0;
  for (int kt = 0; kt < KT<T>; ++kt) {
    if constexpr (!T::TMA) asm volatile("cp.async.wait_group %0;\n" :: "n"(STAGES - 2) : "memory");   // this thread's part of slice kt
    if constexpr (T::NCHW_IN) {   // ... rounded to TF32 in place (each thread its own copies)
#pragma unroll
      for (int i = 0; i < 4; ++i) round16(dst[i] + st * (STAGE * 4));
    }
    if constexpr (!T::TMA) asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");   // ... visible to wgmma
    ffsm90::bar_wait(&full[st], phase);   // (TMA: A too)
    if constexpr (!T::TMA) __syncthreads();   // every thread's part landed
    ffsm90::pin(acc);
    ffsm90::fence();
#pragma unroll
    for (int kk = 0; kk < BK / 8; ++kk) {
      const unsigned at = st * (STAGE / 4) + kk * 2;   // (STAGE + 8 k) floats * 4 bytes / 16
      wgmma<BN>::run(acc, hi | (a_lo + at), hi | (b_lo + at));
    }
    ffsm90::commit();
    asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");   // slice kt - 1's products are done
    ffsm90::pin(acc);
    __syncthreads();   // ... in both warpgroups: its stage may be written again
    if (kt + STAGES - 1 < KT<T>) load(kt + STAGES - 1);
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    if (++st == STAGES) st = 0, phase ^= 1;
  }
  ffsm90::wait_all();
  ffsm90::pin(acc);
  // accumulator i: pixel row g + 8 * (i / 2 % 2) of the warp's 16, channel 8 * (i / 4) + 2 t + i % 2
  const int g = lane >> 2, t = lane & 3;
  if constexpr (T::ROWS) {   // a pixel's channels: the quad's, channel t + 4 k in acc[4 (k / 2) + 2 h + k % 2] (pack)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float v[BN / 4];
#pragma unroll
      for (int k = 0; k < BN / 4; ++k) v[k] = acc[4 * (k >> 1) + 2 * h + (k & 1)];
      const int64_t m = m0 + warp * 16 + g + 8 * h;
      T::rows(a, m, m < M<T>, t, v);   // (every lane: the row function's shuffles take the quad)
    }
  } else if constexpr (T::STAGED) {   // through shared memory: a warp stores a channel's 32 pixels at a time
    __syncthreads();   // (both warpgroups' multiplies done reading the stages)
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) smem[(8 * (i >> 2) + 2 * t + (i & 1)) * LD + warp * 16 + g + 8 * (i >> 1 & 1)] = acc[i];
    __syncthreads();
    int img[BM / 32], p[BM / 32];   // pixel lane + 32 j's image and pixel (fewer than 2^24 pixels: the plan's bound)
    bool in[BM / 32];
#pragma unroll
    for (int j = 0; j < BM / 32; ++j) {
      const int m = static_cast<int>(m0) + lane + 32 * j;
      in[j] = m < M<T>;
      img[j] = m / P<T>, p[j] = m % P<T>;
    }
    // element i: channel warp + 8 (i / (BM / 32)), pixel lane + 32 (i % (BM / 32))
    epilogue<T, BN / 8 * (BM / 32)>(a, [&](int i, int& img_, int& co, int& p_) {
      const int j = i % (BM / 32);
      co = blockIdx.y * BN + warp + 8 * (i / (BM / 32)), img_ = img[j], p_ = p[j];
      return in[j] && (T::K % BN == 0 || co < T::K);
    }, [&](int i) { return smem[(warp + 8 * (i / (BM / 32))) * LD + lane + 32 * (i % (BM / 32))]; });
  } else {   // each element's image, channel and pixel (fewer than 2^24 pixels: the plan's bound)
    int img[2], p[2];
    bool in[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = static_cast<int>(m0) + warp * 16 + g + 8 * h;
      in[h] = m < M<T>;
      img[h] = m / P<T>, p[h] = m % P<T>;
    }
    // (in accumulator order, the two pixels' stores interleaved: a pixel at a time measured
    // 1.02-1.11x the time, bench/session17/third/ab_epilogue2_h100.json)
    const int co0 = blockIdx.y * BN + 2 * t;
    epilogue<T, BN / 2>(a, [&](int i, int& img_, int& co, int& p_) {
      const int h = (i >> 1) & 1;
      co = co0 + 8 * (i >> 2) + (i & 1), img_ = img[h], p_ = p[h];
      return in[h] && (T::K % BN == 0 || co < T::K);
    }, [&](int i) { return acc[i]; });
  }
#else
  __trap();   // launched only where ffsm90::available()
#endif
}

// The halo kernel (plan_conv.halo; stride 1 in rows and columns, C a multiple of 8): the output
// plane's pixels in rows of WH columns (the input's width and padding: columns OW..WH - 1 computed
// and dropped), a tile BM consecutive ones; the input rows a tile reads (HR rows of WH pixels in
// each of the KD planes, zeros in the padding) copied to shared memory once, [channel quad][pixel][4],
// and each tap's A is that copy shifted by the tap's offset: wgmma reads 8 x 16-byte core matrices
// (no swizzle), which may start at any pixel. The input is read from L2 about once where the
// implicit GEMM gathers it once a tap. The channel tile's weights, [tap][channel quad][BN][4], stay
// in shared memory while the block loops over tiles (grid: the blocks that fit the GPU at once).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// a K-major descriptor without swizzle: 8 rows x 16 bytes a core matrix, the next 8 rows 128 bytes
// on, the next 4 k `lbo` bytes on
__device__ __forceinline__ uint64_t desc_plain(unsigned addr, unsigned lbo) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t((lbo & 0x3FFFF) >> 4) << 16) | (uint64_t(128 >> 4) << 32);
}
#endif

template <class T>
__global__ void __launch_bounds__(256) halo(const typename T::Args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int BN = T::BN, CQ = T::C / 4, HP = T::KD * T::HR * T::WH;
  extern __shared__ float4 ffconv_smem[];
  const unsigned hal = ffsm90::smem_addr(ffconv_smem), wts = hal + T::C * T::HPS * 4;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const float* xin = T::ws(a);
  const float* wsrc = T::packed(a) + int64_t(blockIdx.y) * halo_weight_floats<T>;
  for (int e = tid; e < halo_weight_floats<T> / 4; e += 256) copy16(wts + 16 * e, wsrc + 4 * e, true);
  float acc[BN / 2];
  const int g = lane >> 2, t = lane & 3;
  for (int64_t tile = blockIdx.x; tile < halo_tiles<T>; tile += gridDim.x) {
    const int tp = static_cast<int>(tile % TILES_PLANE<T>), od = static_cast<int>(tile / TILES_PLANE<T> % T::OD);
    const int img = static_cast<int>(tile / (int64_t(TILES_PLANE<T>) * T::OD));
    const int v0 = tp * BM, r0 = v0 / T::WH;   // the tile's first virtual pixel, its row
    for (int e = tid; e < HP * CQ; e += 256) {   // the halo: pixel hp = (q, hr, hc), channels 4 cq...
      const int cq = e % CQ, hp = e / CQ;
      const int q = hp / (T::HR * T::WH), hr = hp / T::WH % T::HR, hc = hp % T::WH;
      const int id = od * T::SD - T::PD + q * T::DD, ih = r0 + hr - T::PH, iw = hc - T::PW;
      const bool ok = unsigned(id) < unsigned(T::D) && unsigned(ih) < unsigned(T::H) && unsigned(iw) < unsigned(T::W);
      copy16(hal + 16 * (cq * T::HPS + hp), ok ? xin + ((((int64_t(img) * T::D + id) * T::H + ih) * T::W + iw) * T::C + cq * 4) : xin, ok);
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");   // ... visible to wgmma
    __syncthreads();
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) acc[i] = acc_init<T>(a, i, lane & 3);
    ffsm90::pin(acc);
    ffsm90::fence();
    const unsigned a0 = hal + 16 * (v0 - r0 * T::WH + wg * 64);   // this warpgroup's 64 rows at tap 0
    for (int j = 0; j < TAPS<T>; ++j) {
      const int q = j / (T::R * T::S), r = j / T::S % T::R, s = j % T::S;
      const unsigned at = a0 + 16 * ((q * T::HR + r * T::DH) * T::WH + s * T::DW);
#pragma unroll
      for (int kk = 0; kk < CQ / 2; ++kk)
        wgmma<BN>::run(acc, desc_plain(at + 2 * kk * T::HPS * 16, T::HPS * 16), desc_plain(wts + 16 * (j * CQ + 2 * kk) * BN, BN * 16));
    }
    ffsm90::commit();
    ffsm90::wait_all();
    ffsm90::pin(acc);
    // accumulator i: virtual pixel v0 + 64 wg + 16 (warp % 4) + g + 8 (i / 2 % 2), channel 8 (i / 4) + 2 t + i % 2
    int p[2];
    bool in[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int v = v0 + warp * 16 + g + 8 * h, oh = v / T::WH, x = v % T::WH;
      in[h] = oh < T::OH && x < T::OW;
      p[h] = (od * T::OH + oh) * T::OW + x;
    }
    const int co0 = blockIdx.y * BN + 2 * t;
    epilogue<T, BN / 2>(a, [&](int i, int& img_, int& co, int& p_) {
      const int h = (i >> 1) & 1;
      co = co0 + 8 * (i >> 2) + (i & 1), img_ = img, p_ = p[h];
      return in[h] && (T::K % BN == 0 || co < T::K);
    }, [&](int i) { return acc[i]; });
    __syncthreads();   // every warpgroup's multiplies read the halo: it may be written again
  }
#else
  __trap();   // launched only where ffsm90::available()
#endif
}

// GPUs without wgmma: a thread an output element, the CPU twin's loop (the same rounding and sums).
template <class T>
__global__ void __launch_bounds__(256) direct(const typename T::Args a) {
  constexpr int64_t n = T::ROWS ? M<T> : M<T> * T::K;   // pixels, or output elements
  for (int64_t i = int64_t(blockIdx.x) * 256 + threadIdx.x; i < n; i += int64_t(gridDim.x) * 256)
    T::direct(a, i);
}

// The weights packed (pack) into dst, which the kernels read through T::packed: once, and again
// when they change (ff::packed_once), not on every call.
template <class T>
int pack_weights(const float* w, float* dst, void* stream) {
  const int64_t n = packed_floats<T>();
  pack<T><<<static_cast<unsigned>(n / 256 < 1024 ? (n + 255) / 256 : 1024), 256, 0, static_cast<cudaStream_t>(stream)>>>(w, dst);
  return cudaGetLastError();
}

// The im2col tensor map of the channels-last copy [N][H][W][C] (T::TMA): BM pixels x BK channels a
// copy in the 128-byte swizzle (swz's layout); the walk over the output pixels' window corners, from
// -padding to the last corner a window fits, at the stride (the encoder's corners: W, then H).
template <class T>
cudaError_t im2col_map(const typename T::Args& a, CUtensorMap* map) {
  using encode_t = decltype(&cuTensorMapEncodeIm2col);
  static encode_t encode = nullptr;
  if (!encode) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeIm2col", &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess || !fn)
      return cudaErrorNotSupported;
    encode = reinterpret_cast<encode_t>(fn);
  }
  const cuuint64_t dims[4] = {T::C, T::W, T::H, T::N};
  const cuuint64_t strides[3] = {T::C * 4ull, T::W * T::C * 4ull, uint64_t(T::H) * T::W * T::C * 4};
  const int lower[2] = {-T::PW, -T::PH}, upper[2] = {T::PW - (T::S - 1) * T::DW, T::PH - (T::R - 1) * T::DH};
  const cuuint32_t steps[4] = {1, T::SW, T::SH, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, T::ws(a), dims, strides, lower, upper, BK, BM, steps,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

template <class T>
int launch(const typename T::Args& a, void* stream) {
  static_assert(T::N <= 65535, "the images run on gridDim.z");
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (!ffsm90::available()) {
    constexpr int64_t blocks = ((T::ROWS ? M<T> : M<T> * T::K) + 255) / 256;
    direct<T><<<static_cast<unsigned>(blocks < 65536 ? blocks : 65536), 256, 0, s>>>(a);
    return cudaGetLastError();
  }
  constexpr int DHW = T::D * T::H * T::W;
  if (!T::NCHW_IN)   // the input [N][C][(D*)H*W] into [N][(D*)H*W][C] in the workspace, rounded
    ff_cl_copy<true>(T::x(a), T::ws(a), T::N, T::C, DHW, T::C, 0, s);
  if constexpr (T::HALO) {   // as many blocks as fit the GPU at once, each looping over tiles
    static int sms[64] = {};
    int dev = 0;
    cudaGetDevice(&dev);
    if (dev >= 0 && dev < 64 && !sms[dev]) cudaDeviceGetAttribute(&sms[dev], cudaDevAttrMultiProcessorCount, dev);
    const cudaError_t set = ffsm90::smem_once<halo<T>>(halo_smem<T>);
    if (set != cudaSuccess) return set;
    constexpr int per_sm = 228 * 1024 / (halo_smem<T> + 1024);   // (the H100's shared memory a multiprocessor)
    const int64_t blocks = int64_t(dev >= 0 && dev < 64 && sms[dev] ? sms[dev] : 132) * (per_sm > 0 ? per_sm : 1);
    halo<T><<<dim3(static_cast<unsigned>(blocks < halo_tiles<T> ? blocks : halo_tiles<T>), NT<T>), 256, halo_smem<T>, s>>>(a);
  } else {
    constexpr int smem = smem_bytes<T>();
    const cudaError_t set = ffsm90::smem_once<conv<T>>(smem);
    if (set != cudaSuccess) return set;
    CUtensorMap map{};
    if constexpr (T::TMA) {
      const cudaError_t e = im2col_map<T>(a, &map);
      if (e != cudaSuccess) return e;
    }
    conv<T><<<dim3(static_cast<unsigned>((M<T> + BM - 1) / BM), NT<T>), 256, smem, s>>>(a, map);
  }
  return cudaGetLastError();
}

}  // namespace ffconv
""".replace("WGMMA_SHAPES", "\n".join(_wgmma(n) for n in (32, 64, 128)))
