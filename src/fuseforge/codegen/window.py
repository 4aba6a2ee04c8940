"""Render a WindowKernel: a pooling op with its prologue and epilogue, one thread per output.

For kernel K the shared text (CUDA and the CPU twin) defines
  K_args      the pointers,
  K_source    the pooled input at element j of its shape (row-major): the prologue's loads
              and ops, so the prologue's result is never stored,
  K_elem      output element i: the window's bounds, the reduction over it, the epilogue
              and the stores;
the CUDA text is the pointwise grid-stride kernel over the outputs.
"""
from __future__ import annotations

import math

from ..plan_windows import WindowKernel
from .cpp import ctype, literal
from .pointwise import KernelSource, _broadcast_strides, _render_cuda, _render_node, arg_fields, kernel_operands, \
    load_inputs, storage_offset


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

    # --- the window of output element i
    nd = w.dims
    O, I = shape[-nd:], frame[-nd:]
    body = []
    for d in range(nd):
        inner_size = math.prod(O[d + 1:])
        q = "i" if inner_size == 1 else f"(i / {inner_size}{suffix})"
        body.append(f"const {C} o{d} = static_cast<{C}>({q} % {O[d]}{suffix});")
    body.append(f"const {itype} plane = i / {math.prod(O)}{suffix} * {math.prod(I)}{suffix};")
    body.append(f"{T} acc = {literal(float('-inf'), w.x.type.dtype) if w.reduce == 'max' else T + '(0)'};")
    loops, counts = [], []
    for d in range(nd):
        if w.adaptive:
            body += [f"const {C} lo{d} = static_cast<{C}>(int64_t(o{d}) * {I[d]} / {O[d]});",
                     f"const {C} hi{d} = static_cast<{C}>(((int64_t(o{d}) + 1) * {I[d]} + {O[d] - 1}) / {O[d]});"]
            loops.append([f"for ({C} p{d} = lo{d}; p{d} < hi{d}; ++p{d}) {{"])
            counts.append(f"(hi{d} - lo{d})")
        else:
            # a fixed, unrolled window: its loads issue together (the positions outside the input
            # skipped, the same elements in the same order as a loop over the clipped bounds)
            K, S, P, D = w.kernel[d], w.stride[d], w.padding[d], w.dilation[d]
            body.append(f"const {C} s{d} = o{d} * {S} - {P};")
            loops.append(["#pragma unroll", f"for (int k{d} = 0; k{d} < {K}; ++k{d}) {{",
                          f"  const {C} p{d} = s{d} + k{d}{f' * {D}' if D != 1 else ''};",
                          f"  if (p{d} < 0 || p{d} >= {I[d]}) continue;"])
            if w.reduce != "max":
                body += [f"const {C} e{d} = s{d} + {K} < {I[d] + P} ? s{d} + {K} : {I[d] + P};  // padded border",
                         f"const {C} lo{d} = s{d} < 0 ? 0 : s{d};",
                         f"const {C} hi{d} = e{d} < {I[d]} ? e{d} : {I[d]};"]
                counts.append(f"(e{d} - s{d})" if w.count_include_pad else f"(hi{d} - lo{d})")
    offset = " + ".join(f"p{d}" + (f" * {math.prod(I[d + 1:])}" if d < nd - 1 else "") for d in range(nd))
    fold = "acc = ff_max(acc, v);" if w.reduce == "max" else "acc += v;"
    inner = [f"const {T} v = {name}_source(a, plane + static_cast<{itype}>({offset}));", fold]
    for d in reversed(range(nd)):
        inner = loops[d] + ["  " + line for line in inner] + ["}"]
    body += inner
    y = k.node.outputs[0]
    if w.reduce == "max":
        body.append(f"const {T} {y.name} = acc;")
    else:
        if w.divisor:
            divisor = str(int(w.divisor))
        else:
            divisor = " * ".join(counts)
        # eager writes 0 for a window with nothing inside (only possible without count_include_pad)
        body.append(f"const {C} count = {divisor};")
        body.append(f"const {T} {y.name} = count > 0 ? acc / static_cast<{T}>(count) : {T}(0);")

    # --- the epilogue over the output, and the stores
    names = {y: y.name}
    lines, loaded = loads(k.epilogue, shape, "i")
    names.update(loaded)
    body += lines + [_render_node(n, names) for n in k.epilogue]
    for op in outs:
        body.append(f"a.{op.var}[{storage(_broadcast_strides(op.value.type, shape), shape, 'i')}] = {names[op.value]};")

    fields = arg_fields(ins, outs)
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    shared = f"""
// ---- {name}: {ops_list}
//      window {w.describe()}: {list(frame)} -> {list(shape)}, one output element per thread
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {math.prod(shape)}{suffix};

FF_HD {T} {name}_source(const {name}_args& a, const {itype} j) {{
{chr(10).join('  ' + line for line in src)}
}}

FF_HD void {name}_elem(const {name}_args& a, const {itype} i) {{
{chr(10).join('  ' + line for line in body)}
}}

int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    return KernelSource(k, shared, _render_cuda(name, itype, [], []), ins, outs)

