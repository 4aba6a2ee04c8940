"""Render a WindowKernel: a pooling op with its prologue and epilogue, one thread per output
(or per PAIRED outputs whose windows overlap).

For kernel K the shared text (CUDA and the CPU twin) defines
  K_args      the pointers,
  K_source    the pooled input at element j of its shape (row-major): the prologue's loads
              and ops, so the prologue's result is never stored,
  K_elem      item i, output element i or the PAIRED outputs of item i: the window's bounds,
              the reduction over it, the epilogue and the stores;
the CUDA text is the pointwise grid-stride kernel over the items, or, where the pooled input is
channels-last (a convolution's output read in place), a tile kernel (channels_last_tile): then
K_elem is K_store(K_pool(i)), the window's value and the epilogue with the stores apart.
"""
from __future__ import annotations

import math
import os

import torch

from ..plan_windows import WindowKernel
from .cpp import ctype, literal
from .pointwise import KernelSource, _broadcast_strides, _render_cuda, _render_node, arg_fields, kernel_operands, \
    load_inputs, storage_offset


# Fixed windows that overlap along the paired dim (the second-to-last pooled one): a thread takes
# PAIRED outputs along it and reads the union of their windows once. Measured on an H100
# (bench/session9/windows_rows), 3x3 stride-2 pooling of [16, 64, 256, 256]: avg 0.139 -> 0.118 ms,
# max 0.137 -> 0.117 (copy rate: 0.113); 4 or 8 outputs a thread ran no faster, and the same 9
# loads per output with 2 or 4 outputs a thread (more loads in flight) gained 3 % at most. The
# loads must be predicated: skipped behind branches, level1/084 took 0.138 ms, predicated 0.120
# (bench/session9/a, b).
PAIRED = 2


def _paired(w, O) -> tuple[int, int]:
    """(outputs per thread along the paired dim, that dim's index among the pooled ones). A 1D
    window pairs along its one dim too (consecutive threads then read 2 strides apart): level1/083
    0.158 -> 0.144 ms against one output a thread (bench/session13/ab_next_flags_h100.json;
    FUSEFORGE_PAIR_1D=0 turns it off)."""
    pd = w.dims - 2 if w.dims > 1 or os.environ.get("FUSEFORGE_PAIR_1D", "1") == "0" else 0
    if w.adaptive or pd < 0 or O[pd] < 2:
        return 1, pd
    K, S, D = w.kernel[pd], w.stride[pd], w.dilation[pd]
    return (PAIRED, pd) if S % D == 0 and S < K * D else (1, pd)


def render(k: WindowKernel) -> KernelSource:
    name, w = k.name, k.window
    frame, shape = k.frame, k.shape
    itype, suffix, ins, outs, var = kernel_operands(k, [frame, shape])
    T = ctype(w.x.type.dtype)
    C = "int" if itype == "uint32_t" else "int64_t"    # window coordinates: signed (padding)

    def storage(strides, space, index_var) -> str:
        return storage_offset(strides, space, index_var, itype)

    def loads(nodes, space, index_var) -> tuple[list[str], dict]:
        return load_inputs(k.inputs, var, nodes, space, name, lambda st: storage(st, space, index_var))

    # --- the pooled input at frame element j
    if k.prologue:
        src, names = loads(k.prologue, frame, "j")
        src += [_render_node(n, names) for n in k.prologue]
        src.append(f"return {names[w.x]};")
    else:
        src = [f"return a.{var[w.x]}[{storage(_broadcast_strides(w.x.type, frame), frame, 'j')}];"]

    # --- the window of output element i, or of R outputs along the paired dim (see _paired)
    nd = w.dims
    O, I = shape[-nd:], frame[-nd:]
    wsum = w.reduce == "wsum"   # a depthwise convolution: one output a thread, NCHW (not measured paired or tiled)
    tiled = channels_last_tile(k)
    R, pd = _paired(w, O) if not (tiled or wsum) else (1, 0)
    Q = O if R == 1 else O[:pd] + (-(-O[pd] // R),) + O[pd + 1:]   # the thread's outputs: items
    body = []
    for d in range(nd):
        inner_size = math.prod(Q[d + 1:])
        q = "i" if inner_size == 1 else f"(i / {inner_size}{suffix})"
        body.append(f"const {C} {'g' if d == pd and R > 1 else 'o'}{d} = static_cast<{C}>({q} % {Q[d]}{suffix});")
    body.append(f"const {itype} plane = i / {math.prod(Q)}{suffix} * {math.prod(I)}{suffix};")
    if wsum:   # this channel's weights: [C, 1, *kernel]
        body.append(f"const {T}* wt = a.{var[w.weight]} + i / {math.prod(Q)}{suffix} % {frame[-nd - 1]}{suffix} * "
                    f"{math.prod(w.kernel)}{suffix};")
    init = literal(float('-inf'), w.x.type.dtype) if w.reduce == 'max' else T + '(0)'
    accs = ["acc"] if R == 1 else [f"acc{r}" for r in range(R)]
    body.append(f"{T} {', '.join(a + ' = ' + init for a in accs)};")

    def border(d, s):   # avg pooling's bounds of the window that starts at s: (clipped at the padded border, at the input)
        return [f"const {C} e{s} = s{s} + {w.kernel[d]} < {I[d] + w.padding[d]} ? s{s} + {w.kernel[d]} : {I[d] + w.padding[d]};  // padded border",
                f"const {C} lo{s} = s{s} < 0 ? 0 : s{s};",
                f"const {C} hi{s} = e{s} < {I[d]} ? e{s} : {I[d]};"]

    def guard(d) -> list[str]:
        # one output: a position outside the input is skipped; R outputs: it reads the fold's
        # identity instead (adding +0 or taking the max with -inf leaves the fold's bits as they
        # are), so that the loads are predicated and issue together, not behind branches
        if R == 1:
            return [f"  if (p{d} < 0 || p{d} >= {I[d]}) continue;"]
        return [f"  const bool in{d} = {f'in{d - 1} && ' if d else ''}p{d} >= 0 && p{d} < {I[d]};"]

    loops, counts = [], []
    for d in range(nd):
        if w.adaptive:
            body += [f"const {C} lo{d} = static_cast<{C}>(int64_t(o{d}) * {I[d]} / {O[d]});",
                     f"const {C} hi{d} = static_cast<{C}>(((int64_t(o{d}) + 1) * {I[d]} + {O[d] - 1}) / {O[d]});"]
            loops.append([f"for ({C} p{d} = lo{d}; p{d} < hi{d}; ++p{d}) {{"])
            counts.append(f"(hi{d} - lo{d})")
            continue
        # a fixed, unrolled window: its loads issue together (the positions outside the input
        # skipped, the same elements in the same order as a loop over the clipped bounds)
        K, S, P, D = w.kernel[d], w.stride[d], w.padding[d], w.dilation[d]
        dil = f" * {D}" if D != 1 else ""
        if d == pd and R > 1:   # the union of the R windows: positions k * D from the first one's start
            body.append(f"const {C} s{d} = g{d} * {R * S} - {P};")
            loops.append(["#pragma unroll", f"for (int k{d} = 0; k{d} < {(R - 1) * S // D + K}; ++k{d}) {{",
                          f"  const {C} p{d} = s{d} + k{d}{dil};"] + guard(d))
            if w.reduce == "avg":
                for r in range(R):
                    body += [f"const {C} s{d}_{r} = s{d} + {r * S};"] + border(d, f"{d}_{r}")
            counts.append(None)
            continue
        body.append(f"const {C} s{d} = o{d} * {S} - {P};")
        loops.append(["#pragma unroll", f"for (int k{d} = 0; k{d} < {K}; ++k{d}) {{",
                      f"  const {C} p{d} = s{d} + k{d}{dil};"] + guard(d))
        if w.reduce == "avg":
            body += border(d, d)
            counts.append(f"(e{d} - s{d})" if w.count_include_pad else f"(hi{d} - lo{d})")
    offset = " + ".join(f"p{d}" + (f" * {math.prod(I[d + 1:])}" if d < nd - 1 else "") for d in range(nd))

    def fold(acc):
        if wsum:   # the tap's weight (k0, k1, ...: the unrolled window positions)
            tap = " + ".join(f"k{d}" + (f" * {math.prod(w.kernel[d + 1:])}" if d < nd - 1 else "") for d in range(nd))
            return f"{acc} += v * wt[{tap}];"
        return f"{acc} = ff_max({acc}, v);" if w.reduce == "max" else f"{acc} += v;"

    at = f"{name}_source(a, plane + static_cast<{itype}>({offset}))"
    if R == 1:
        inner = [f"const {T} v = {at};", fold("acc")]
    else:   # output r folds the positions of its window (a condition on constants, once unrolled)
        step, width = w.stride[pd] // w.dilation[pd], w.kernel[pd]
        inner = [f"const {T} v = in{nd - 1} ? {at} : {init};"]
        inner += [f"if (k{pd} >= {r * step} && k{pd} < {r * step + width}) {fold(accs[r])}" for r in range(R)]
    for d in reversed(range(nd)):
        inner = loops[d] + ["  " + line for line in inner] + ["}"]
    body += inner
    y = k.node.outputs[0]

    def result(acc, r=None) -> list[str]:
        if w.reduce in ("max", "wsum"):
            return [f"const {T} {y.name} = {acc};"]
        if w.divisor:
            divisor = str(int(w.divisor))
        else:
            own = (lambda d: f"(e{d}_{r} - s{d}_{r})" if w.count_include_pad else f"(hi{d}_{r} - lo{d}_{r})")
            divisor = " * ".join(c if c is not None else own(d) for d, c in enumerate(counts))
        # eager writes 0 for a window with nothing inside (only possible without count_include_pad)
        return [f"const {C} count = {divisor};",
                f"const {T} {y.name} = count > 0 ? {acc} / static_cast<{T}>(count) : {T}(0);"]

    # --- the epilogue over the output, and the stores
    names = {y: y.name}
    lines, loaded = loads(k.epilogue, shape, "i")
    names.update(loaded)
    tail = lines + [_render_node(n, names) for n in k.epilogue]
    for op in outs:
        tail.append(f"a.{op.var}[{storage(_broadcast_strides(op.value.type, shape), shape, 'i')}] = {names[op.value]};")
    if tiled:   # the window's value, then the epilogue and the stores (phases of the tile kernel)
        body += result("acc") + [f"return {y.name};"]
    elif R == 1:
        body += result("acc") + tail
    else:   # each output of the thread's R: its element index i, then as one output per thread
        body.append(f"const {itype} first = i / {math.prod(Q)}{suffix} * {math.prod(O)}{suffix};  // of the batch dims' outputs")
        coords = " + ".join(["first"] +
                            [f"static_cast<{itype}>({f'o{d}' if d != pd else f'o{d}_r'}){f' * {math.prod(O[d + 1:])}{suffix}' if d < nd - 1 else ''}"
                             for d in range(nd)])
        for r in range(R):
            body += [f"{{  // output {r}", f"  const {C} o{pd}_r = g{pd} * {R} + {r};",
                     f"  if (o{pd}_r < {O[pd]}) {{", f"    const {itype} i = {coords};"] + \
                ["    " + line for line in result(accs[r], r) + tail] + ["  }", "}"]

    per_thread = "one output element per thread" if R == 1 else \
        f"{R} outputs along dim {len(shape) - nd + pd} per thread (their windows' union read once)"
    if tiled:
        per_thread = f"tiles of {TILE} channels x {TILE} output pixels, the channels-last input read along the channels"
    fields = arg_fields(ins, outs)
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    shared = f"""
// ---- {name}: {ops_list}
//      window {w.describe()}: {list(frame)} -> {list(shape)}, {per_thread}
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {math.prod(shape[:-nd]) * math.prod(Q)}{suffix};{"" if R == 1 else "  // items"}

FF_HD {T} {name}_source(const {name}_args& a, const {itype} j) {{
{chr(10).join('  ' + line for line in src)}
}}

{_element_functions(name, T, itype, y.name, body, tail if tiled else None)}

int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    cuda = _render_cuda_tiled(name, T, itype, shape) if tiled else _render_cuda(name, itype, [], [])
    return KernelSource(k, shared, cuda, ins, outs)


def _element_functions(name, T, itype, y, body, tail) -> str:
    """K_elem(i) doing everything, or (tail given) K_pool(i) returning the window's value y and
    K_store(i, y) the epilogue and the stores, with K_elem their composition."""
    def block(lines):
        return chr(10).join('  ' + line for line in lines)
    if tail is None:
        return f"""FF_HD void {name}_elem(const {name}_args& a, const {itype} i) {{
{block(body)}
}}"""
    return f"""FF_HD {T} {name}_pool(const {name}_args& a, const {itype} i) {{
{block(body)}
}}

FF_HD void {name}_store(const {name}_args& a, const {itype} i, const {T} {y}) {{
{block(tail)}
}}

FF_HD void {name}_elem(const {name}_args& a, const {itype} i) {{
  {name}_store(a, i, {name}_pool(a, i));
}}"""


TILE = 32   # channels x output pixels of a tile kernel's block (256 threads, 4 outputs each)


def channels_last_tile(k: WindowKernel, also=None) -> bool:
    """Whether k pools a channels-last input (a convolution's output, read in place) into NCHW(D)
    outputs with a tile kernel: a 4D/5D pooled input over its spatial dims whose full-size inputs
    are all channels-last float32 (`also`: a value taken as channels-last, layout.py asking before
    the switch). One thread per output would read it a channel's stride apart; the tile reads
    along the channels, pools into shared memory and writes along the pixels. (Channels-last:
    or a channel slice of a channels-last buffer, layout.channels_last_like.)"""
    from ..layout import channels_last_like, contiguous_strides
    frame, w = k.frame, k.window
    if w.reduce == "wsum" or len(frame) not in (4, 5) or w.dims != len(frame) - 2 or k.shape[0] > 65535 or \
            any(o.type.strides != contiguous_strides(o.type.shape) for o in k.outputs):
        return False
    full = [v for v in k.inputs if v.type.shape == frame]
    return bool(full) and all((v is also or channels_last_like(v.type)) and v.type.dtype == torch.float32 for v in full)


def _render_cuda_tiled(name, T, itype, shape) -> str:
    """A block takes 32 channels x 32 output pixels (flattened) of one image: each thread pools
    4 outputs of one channel, the 32 threads of a warp neighbouring channels (their window reads
    coalesced in the channels-last input), into shared memory; then each thread applies the
    epilogue to 4 outputs of one pixel column, a warp's 32 neighbouring pixels (coalesced NCHW
    stores)."""
    n, c, pixels = shape[0], shape[1], math.prod(shape[2:])
    u = "u" if itype == "uint32_t" else "ull"
    rows = 256 // TILE
    return f"""
__global__ void __launch_bounds__(256) {name}_kernel(const {name}_args a) {{
  __shared__ {T} tile[{TILE}][{TILE + 1}];  // [pixel][channel]
  const {itype} img = blockIdx.z;
  const {itype} c0 = ({itype})blockIdx.y * {TILE}u, p0 = ({itype})blockIdx.x * {TILE}u;
  {{  // channel cc of pixels pr, pr + {rows}, ..
    const uint32_t cc = threadIdx.x % {TILE}u, pr = threadIdx.x / {TILE}u;
    const {itype} ch = c0 + cc;
#pragma unroll
    for (int j = 0; j < {TILE // rows}; ++j) {{
      const {itype} p = p0 + pr + {rows}u * j;
      if (ch < {c}{u} && p < {pixels}{u}) tile[pr + {rows} * j][cc] = {name}_pool(a, (img * {c}{u} + ch) * {pixels}{u} + p);
    }}
  }}
  __syncthreads();
  const uint32_t pc = threadIdx.x % {TILE}u, cr = threadIdx.x / {TILE}u;  // pixel pc of channels cr, cr + {rows}, ..
  const {itype} p = p0 + pc;
  if (p >= {pixels}{u}) return;
#pragma unroll
  for (int j = 0; j < {TILE // rows}; ++j) {{
    const {itype} ch = c0 + cr + {rows}u * j;
    if (ch < {c}{u}) {name}_store(a, (img * {c}{u} + ch) * {pixels}{u} + p, tile[pc][cr + {rows} * j]);
  }}
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  const dim3 grid(({pixels}u + {TILE - 1}u) / {TILE}u, ({c}u + {TILE - 1}u) / {TILE}u, {n}u);
  {name}_kernel<<<grid, 256, 0, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}}
"""

