"""Render a pointwise Kernel: one C++ body shared by the CUDA kernel and the CPU twin.

For kernel K the shared text defines
  K_args      the pointers the kernel reads and writes,
  K_compute   the fused expression chain, from loaded values to stored values,
  K_elem      load, compute and store one element (the CPU twin and the CUDA tail use it);
the CUDA text defines the __global__ K_kernel and its launcher K_cuda. Shapes and strides
are compile-time constants: divisions by them compile to multiplications.

The vector path (4 consecutive elements a thread, 16-byte loads and stores) loads the operands
laid out like the iteration 4 at a time. It also loads 4 at a time an operand whose four values
are contiguous and 16-byte aligned (a split's half), and once an operand whose four values are one
(a per-channel bias over the pixels): see `_in_fours`. That made the 18 suite problems it changes
0.982-1.002x their time without it, none slower beyond noise (bench/session21/first, H100);
FUSEFORGE_PW_RUNS=0 turns it off.
"""
from __future__ import annotations

import math
import os

from dataclasses import dataclass

import torch

from .. import ops
from ..graph import Node, TensorType, Value
from ..plan import Kernel, inline_constant
from .cpp import ctype, literal

THREADS = 256
VEC = 4   # elements per thread and step on the vector path (16-byte float loads)


@dataclass
class Operand:
    value: Value
    var: str                          # in0 / out0
    strides: tuple[int, ...]          # the strides the index code assumes (checked by the wrapper)
    index_tpl: str                    # C++ offset expression, {i} standing for the linear index
    direct: bool                      # offset == i
    align16: bool = False             # read with 16-byte copies: the wrapper aligns its start
    fours: str = ""                   # on the vector path (_in_fours): "run", "same" or "" (one load each)

    def index(self, i: str = "i") -> str:
        return self.index_tpl.format(i=i)


@dataclass
class KernelSource:
    kernel: Kernel                    # or a RowKernel / WindowKernel
    shared: str
    cuda: str
    inputs: list[Operand]
    outputs: list[Operand]
    workspace: bool = False           # K_args ends with a scratch pointer (K_ws_bytes long)
    workspace_on_cpu: bool = True     # the CPU twin uses it too (else it gets none)
    packed: str | None = None         # K_args ends with this weight operand packed (K_pack, ff::packed_once)
    helpers: tuple[str, ...] = ()     # element-code helpers it needs beyond the prelude (once per module)
    backward: bool = False            # it walks its tensors last to first (walk_backward)


def _broadcast_strides(t: TensorType, shape) -> list[int]:
    lead = len(shape) - t.ndim
    out = []
    for k, size in enumerate(shape):
        j = k - lead
        out.append(0 if j < 0 or t.shape[j] == 1 else t.strides[j])
    return out


def operand_strides(nodes, shape, v: Value, where: str) -> list[int]:
    """Strides of input `v` over the iteration space `shape` of `nodes` (0 where it is broadcast)."""
    strides = None
    for node in nodes:
        if any(u is v for u in node.tensor_inputs()):
            out_nd = node.outputs[0].type.ndim
            lead = len(shape) - out_nd
            s = [0] * len(shape)
            for j, d in enumerate(ops.operand_dims(node, v, out_nd)):
                if d is not None:
                    s[d + lead] = v.type.strides[j]
            if strides is not None and s != strides:
                raise NotImplementedError(f"{v.name} is read along different dims in {where}")
            strides = s
    return strides


def _in_fours(strides, shape, order) -> str:
    """How an operand reads the 4 elements of a vector-path step (linear indices 4m .. 4m + 3 in
    `order`): "same", one value for the four (stride 0 along the innermost dim); "run", four
    contiguous values starting at a multiple of 4 elements (stride 1 there, the other strides
    multiples of 4: one 16-byte load where the pointer is aligned); "" neither. Only where the
    innermost dim's extent is a multiple of 4, so that a step never crosses it; never with
    FUSEFORGE_PW_RUNS=0."""
    dims = [d for d in order if shape[d] > 1]
    if os.environ.get("FUSEFORGE_PW_RUNS") == "0" or not dims or shape[dims[-1]] % 4:
        return ""
    if strides[dims[-1]] == 0:
        return "same"
    if strides[dims[-1]] == 1 and all(strides[d] % 4 == 0 for d in dims[:-1]):
        return "run"
    return ""


def _index_expr(strides, shape, order, itype) -> tuple[str, bool]:
    """Offset of element {i} (linear in `order`) in a tensor with these broadcast strides.

    Returns a template with `{i}` for the linear index, and whether the offset is {i} itself.
    """
    suffix = {"uint32_t": "u", "int": ""}.get(itype, "ull")
    numel = math.prod(shape)
    # dims outermost → innermost, each with its stride in the linear index
    dims, inner = [], 1
    for d in reversed(order):
        dims.append((shape[d], inner, strides[d]))
        inner *= shape[d]
    dims = [(size, lin, st) for size, lin, st in reversed(dims) if size > 1]
    if all(st == lin for _, lin, st in dims):
        return "{i}", True       # laid out exactly like the iteration: no broadcast, no permutation
    dims = [(size, lin, st) for size, lin, st in dims if st != 0]
    merged = []   # neighbours contiguous with each other in both i and storage become one dim
    for size, lin, st in dims:
        if merged and merged[-1][1] == lin * size and merged[-1][2] == st * size:
            merged[-1] = (merged[-1][0] * size, lin, st)
        else:
            merged.append((size, lin, st))
    terms = []
    for size, lin, st in merged:
        e = "{i}" if lin == 1 else f"({{i}} / {lin}{suffix})"
        if lin * size < numel:
            e = f"({e} % {size}{suffix})"
        if st != 1:
            e = f"{e} * {st}{suffix}"
        terms.append(e)
    return (" + ".join(terms) if terms else "0"), False


def kernel_operands(k, spaces) -> tuple[str, str, list[Operand], list[Operand], dict]:
    """For a kernel that indexes its tensors by their strides: the index type (32-bit when every
    iteration space in `spaces` and every tensor extent fits), its literal suffix, the input and
    output operands (in0.., out0..), and each input's variable name."""
    extents = [math.prod(s) for s in spaces] + [v.type.extent() for v in k.inputs + k.outputs]
    itype = "uint32_t" if max(extents) < 2**31 else "uint64_t"
    ins = [Operand(v, f"in{j}", v.type.strides, "", False) for j, v in enumerate(k.inputs)]
    outs = [Operand(v, f"out{j}", v.type.strides, "", False) for j, v in enumerate(k.outputs)]
    return itype, "u" if itype == "uint32_t" else "ull", ins, outs, {op.value: op.var for op in ins}


def arg_fields(ins: list[Operand], outs: list[Operand], note=lambda op: "") -> list[str]:
    """The K_args members: a pointer per input (const) and output, with a comment saying what
    it holds (plus `note(op)`)."""
    return ([f"  const {ctype(op.value.type.dtype)}* __restrict__ {op.var};  // {op.value.name}: "
             f"{op.value.type}{note(op)}" for op in ins] +
            [f"  {ctype(op.value.type.dtype)}* __restrict__ {op.var};  // {op.value.name}: {op.value.type}{note(op)}"
             for op in outs])


def storage_offset(strides, space, index_var: str, itype: str) -> str:
    """Storage offset of element `index_var` (row-major) of `space` with these strides."""
    return _index_expr(strides, space, tuple(range(len(space))), itype)[0].format(i=index_var)


def epilogue_lines(k, y: Value, value: str, outs: list[Operand], var: dict, shape, itype: str, at=None,
                   preloaded: str = "") -> list[str]:
    """The body of a GEMM's or convolution's K_epilogue at output element i: y = value (the dot
    product), the fused pointwise ops (k.epilogue) with the inputs they read, and the stores.
    `at(strides)`: the offset of the element in a tensor of these strides over `shape` (default:
    from its row-major index i). `preloaded`: the inputs are the members of the struct of that
    name (K_in, loaded before by K_load: loaded_inputs), not loaded here."""
    at = at or (lambda st: storage_offset(st, shape, "i", itype))
    body = [f"const float {y.name} = {value};"]
    names = {y: y.name}
    lines, loaded = load_inputs(k.inputs, var, k.epilogue, shape, k.name, at)
    if preloaded:
        lines = [f"const {ctype(v.type.dtype)} {name} = {preloaded}.{name};" for v, name in loaded.items()]
    names.update(loaded)
    body += lines + [_render_node(n, names) for n in k.epilogue]
    for op in outs:
        body.append(f"a.{op.var}[{at(_broadcast_strides(op.value.type, shape))}] = {names[op.value]};")
    return body


def load_inputs(inputs: list[Value], var: dict, nodes, space, where: str, at) -> tuple[list[str], dict]:
    """Load every kernel input the nodes read over `space`, at the offset `at(strides)` gives
    for the input's strides over that space: the lines and the C++ name of each loaded value."""
    loads = input_loads(inputs, var, nodes, space, where, at)
    return ([f"const {t} {name} = {expr};" for t, name, expr in loads],
            {v: var[v] for v in inputs if var[v] in {name for _, name, _ in loads}})


def loaded_inputs(name: str, params: str, loads: list[tuple[str, str, str]]) -> str:
    """K_in (an output element's inputs, `loads` as input_loads gives them) and K_load(a, params)
    that loads them: a GEMM's or convolution's epilogue reads them from K_in, so that its kernel can
    have a thread's loads in flight before its stores (ffsm90::epilogue_chunks)."""
    members = "".join(f" {t} {v};" for t, v, _ in loads) + (" " if loads else "")
    return f"""struct {name}_in {{{members}}};
FF_HD {name}_in {name}_load(const {name}_args& a, {params}) {{
  return {{{', '.join(e for _, _, e in loads)}}};
}}"""


def input_loads(inputs: list[Value], var: dict, nodes, space, where: str, at) -> list[tuple[str, str, str]]:
    """(C++ type, name, the load's expression) of every kernel input the nodes read (load_inputs)."""
    return [(ctype(v.type.dtype), var[v], f"a.{var[v]}[{at(operand_strides(nodes, space, v, where))}]")
            for v in inputs if any(u is v for n in nodes for u in n.tensor_inputs())]


def _operand_type(node: Node, entry) -> torch.dtype:
    out = node.outputs[0].type.dtype
    if entry.operands == "promote":
        dummies = []
        for v in node.args:
            if isinstance(v, Value):
                dummies.append(torch.empty((1,) * min(v.type.ndim, 1), dtype=v.type.dtype))
            elif isinstance(v, (int, float, bool)):
                dummies.append(v)
        a, b = dummies[0], dummies[1]
        if not isinstance(a, torch.Tensor):
            a, b = b, a
        return torch.result_type(a, b)
    if entry.operands == "bool":
        return torch.bool
    return out


def render(kernel: Kernel, walked_back=frozenset()) -> KernelSource:
    """`walked_back`: the tensors whose last kernel walked them last to first (walk_backward)."""
    name = kernel.name
    extents = [kernel.numel] + [v.type.extent() for v in kernel.inputs + kernel.outputs]
    itype = "uint32_t" if max(extents) < 2**31 else "uint64_t"
    n_lit = f"{kernel.numel}{'u' if itype == 'uint32_t' else 'ull'}"

    def operand(v: Value, var: str, strides) -> Operand:
        idx, direct = _index_expr(strides, kernel.shape, kernel.order, itype)
        return Operand(v, var, v.type.strides, idx, direct, fours="" if direct else _in_fours(strides, kernel.shape, kernel.order))

    ins = [operand(v, f"in{j}", operand_strides(kernel.nodes, kernel.shape, v, name))
           for j, v in enumerate(kernel.inputs)]
    outs = [operand(v, f"out{j}", _broadcast_strides(v.type, kernel.shape))
            for j, v in enumerate(kernel.outputs)]

    # --- the compute function: loaded values in, stored values out
    names: dict[Value, str] = {op.value: op.var for op in ins}
    body = []
    for node in kernel.nodes:
        body.append(_render_node(node, names))
    for op in outs:
        body.append(f"{op.var} = {names[op.value]};")
    params = [f"const {ctype(op.value.type.dtype)} {op.var}" for op in ins] + \
             [f"{ctype(op.value.type.dtype)}& {op.var}" for op in outs]

    ops_list = ", ".join(n.target.removeprefix("aten.") for n in kernel.nodes)
    shape = kernel.nodes[-1].outputs[0].type
    fields = arg_fields(ins, [], lambda op: "" if op.direct else ", indexed") + arg_fields([], outs)
    load_args = [f"a.{op.var}[{op.index()}]" for op in ins]
    shared = f"""
// ---- {name}: {ops_list}
//      over {shape}, iteration order {list(kernel.order)}
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {n_lit};

FF_HD void {name}_compute({', '.join(params)}) {{
{chr(10).join('  ' + line for line in body)}
}}

FF_HD void {name}_elem(const {name}_args& a, const {itype} i) {{
{chr(10).join(f'  {ctype(op.value.type.dtype)} {op.var};' for op in outs)}
  {name}_compute({', '.join(load_args + [op.var for op in outs])});
{chr(10).join(f'  a.{op.var}[{op.index()}] = {op.var};' for op in outs)}
}}

int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    tiled, nchw = _channels_last_inputs(kernel, ins, outs), _nchw_inputs(kernel, ins, outs)
    backward = bool(tiled) and walk_backward([op.value for op in tiled], walked_back)
    if tiled:
        cuda = _render_cuda_tiled(kernel, itype, ins, outs, tiled, backward)
    elif nchw:
        cuda = _render_cuda_tiled_nchw(kernel, itype, ins, outs, nchw)
    else:
        cuda = _render_cuda(name, itype, ins, outs)
    return KernelSource(kernel, shared, cuda, ins, outs, backward=backward)


def _channels_last_inputs(kernel: Kernel, ins, outs) -> list[Operand]:
    """Channels-last inputs of a kernel that writes contiguous NCHW(D) outputs: read through
    a transposing tile (else one of the two sides would be a strided access)."""
    from ..layout import channels_last_strides
    shape = kernel.shape
    if len(shape) not in (4, 5) or kernel.order != tuple(range(len(shape))) or shape[0] > 65535 \
            or not all(op.direct for op in outs):
        return []
    cl = channels_last_strides(shape)
    return [op for op in ins if op.value.type.shape == shape and op.value.type.strides == cl
            and op.value.type.dtype == torch.float32]


def _nchw_inputs(kernel: Kernel, ins, outs) -> list[Operand]:
    """The mirror case: NCHW(D) inputs (pixels contiguous in each channel, any batch stride: a view of
    a cat's buffer too) of a kernel that walks and writes channels-last (layout.py's producers;
    FUSEFORGE_CL_TILE_IN=0 turns it off): read through a transposing tile."""
    from ..layout import channels_last_order, contiguous_strides
    shape = kernel.shape
    if len(shape) not in (4, 5) or kernel.order != channels_last_order(len(shape)) or shape[0] > 65535 \
            or not all(op.direct for op in outs):
        return []
    inner = contiguous_strides(shape)[1:]
    return [op for op in ins if op.value.type.shape == shape and op.value.type.strides[1:] == inner
            and op.value.type.dtype == torch.float32]


TILE_C, TILE_P = 32, 64   # channels x pixels per tile, 256 threads (bench/session7/cl_tile)


def walk_backward(values, walked_back) -> bool:
    """Whether a kernel reading `values` walks them last to first. Where one was written in the
    model (a convolution's output, a kernel's result) and the kernel before that touched it walked it
    first to last (`walked_back`: the tensors whose last kernel walked them back), that kernel left
    the tensor's end in L2 (50 MB on an H100): read first, it comes from there. Directions alternate
    along a chain: a convolution writes forward, the statistics read back, the normalize forward,
    each starting where the last one ended. Measured on an H100 (bench/session24/flags), each alone:
    level2/048 0.964x, 005 0.993, 021 0.992 (the outer row tiles), level1/035 0.945, level2/028 0.985
    (the transposing tiles), none slower; a model input comes from DRAM either way, and walked back
    (level1/077) 1.034x slower."""
    return any(v.role == "tmp" and v not in walked_back for v in values)


def _tile_origin(itype, backward: bool) -> str:
    """A transposing tile's image and first channel and pixel; `backward`: the tiles last to first."""
    if backward:
        x, y, z = "(gridDim.x - 1u - blockIdx.x)", "(gridDim.y - 1u - blockIdx.y)", "(gridDim.z - 1u - blockIdx.z)"
    else:
        x, y, z = "blockIdx.x", "blockIdx.y", "blockIdx.z"
    return (f"  const {itype} img = {z};\n"
            f"  const {itype} c0 = ({itype}){y} * {TILE_C}u, p0 = ({itype}){x} * {TILE_P}u;")


def _one_value_over_pixels(kernel: Kernel, ins, tiled) -> list:
    """The inputs that are one value over the pixels (a channel's parameter, an image's statistic):
    a transposing tile's thread reads each once for its pixels."""
    return [op for op in ins if op not in tiled
            and not any(operand_strides(kernel.nodes, kernel.shape, op.value, kernel.name)[2:])]


def _render_cuda_tiled(kernel: Kernel, itype, ins, outs, tiled, backward) -> str:
    """A tile of 32 channels x 64 pixels per block, in two subtiles of 32 pixels. A thread reads
    4 channels of a pixel per subtile (one 16-byte load where the channels are a multiple of 4)
    and writes 4 pixels of a channel (one 16-byte store where the pixels are). Measured on an
    H100 over [64, 64, 126, 126]: mish 0.297 -> 0.195 ms against 0.180 for a copy; plain bias
    adds as fast as 32 x 32 scalar tiles (bench/session7/cl_tile)."""
    name = kernel.name
    n, c, pixels = kernel.shape[0], kernel.shape[1], math.prod(kernel.shape[2:])
    u = "u" if itype == "uint32_t" else "ull"
    sub = TILE_P // 32
    tiles = [f"  __shared__ float t_{op.var}[{sub}][{TILE_C}][33];  // [subtile][channel][pixel]"
             for op in tiled]
    loads, spills = [], []
    for op in tiled:
        loads.append(f"""    float4 v_{op.var}[{sub}];
#pragma unroll
    for (int s = 0; s < {sub}; ++s) {{
      const {itype} p = p0 + 32u * s + w;
      const float* src = a.{op.var} + (img * {pixels}{u} + p) * {c}{u} + c0 + cg;
      v_{op.var}[s] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (p < {pixels}{u}) {{
        if (VEC) {{
          if (c0 + cg < {c}{u}) v_{op.var}[s] = *reinterpret_cast<const float4*>(src);
        }} else {{
          if (c0 + cg < {c}{u}) v_{op.var}[s].x = src[0];
          if (c0 + cg + 1u < {c}{u}) v_{op.var}[s].y = src[1];
          if (c0 + cg + 2u < {c}{u}) v_{op.var}[s].z = src[2];
          if (c0 + cg + 3u < {c}{u}) v_{op.var}[s].w = src[3];
        }}
      }}
    }}""")
        spills.append(f"""#pragma unroll
    for (int s = 0; s < {sub}; ++s) {{
      t_{op.var}[s][cg][w] = v_{op.var}[s].x;
      t_{op.var}[s][cg + 1][w] = v_{op.var}[s].y;
      t_{op.var}[s][cg + 2][w] = v_{op.var}[s].z;
      t_{op.var}[s][cg + 3][w] = v_{op.var}[s].w;
    }}""")
    # read once for the thread's 4 pixels, which never leave their (image, channel) row
    same = _one_value_over_pixels(kernel, ins, tiled)
    hoisted = [f"      const {ctype(op.value.type.dtype)} {op.var}_px = a.{op.var}[{op.index()}];" for op in same]
    args = [f"t_{op.var}[s][cc][pg + k]" if op in tiled else f"{op.var}_px" if op in same
            else f"a.{op.var}[{op.index('(i + k)')}]" for op in ins]
    decl = [f"      {ctype(op.value.type.dtype)} {op.var}[4];" for op in outs]
    stores = []
    for op in outs:
        scalar = f"for (int k = 0; k < 4; ++k) if (p + k < {pixels}{u}) a.{op.var}[i + k] = {op.var}[k];"
        if op.value.type.dtype == torch.float32:
            stores.append(f"      if (VEC) ff_store4(a.{op.var} + i, {op.var});\n      else {scalar}")
        else:
            stores.append(f"      {scalar}")
    vec_ok = c % 4 == 0 and pixels % 4 == 0
    aligned = " && ".join(f"ff_aligned16(a.{op.var})" for op in tiled +
                          [op for op in outs if op.value.type.dtype == torch.float32])
    launch_vec = aligned if vec_ok else "false"
    return f"""
// {name}: channels-last input(s) {', '.join(op.value.name for op in tiled)} are read along channels into
// shared memory, the outputs written along pixels: both sides coalesced. VEC: 16-byte accesses.
template <bool VEC>
__global__ void __launch_bounds__(256) {name}_kernel(const {name}_args a) {{
{chr(10).join(tiles)}
{_tile_origin(itype, backward)}
  {{  // 4 channels of pixel w per thread and subtile
    const uint32_t cg = (threadIdx.x & 7u) * 4u, w = threadIdx.x >> 3;
{chr(10).join(loads)}
{chr(10).join(spills)}
  }}
  __syncthreads();
  const uint32_t pg = (threadIdx.x & 7u) * 4u, cc = threadIdx.x >> 3;  // 4 pixels of channel cc
  const {itype} ch = c0 + cc;
  if (ch >= {c}{u}) return;
#pragma unroll
  for (int s = 0; s < {sub}; ++s) {{
    const {itype} p = p0 + 32u * s + pg;
    if (p < {pixels}{u}) {{
      const {itype} i = (img * {c}{u} + ch) * {pixels}{u} + p;
{chr(10).join(hoisted + decl)}
#pragma unroll
      for (int k = 0; k < 4; ++k) {{
        if (VEC || p + k < {pixels}{u}) {name}_compute({', '.join(args + [f'{op.var}[k]' for op in outs])});
      }}
{chr(10).join(stores)}
    }}
  }}
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  const dim3 grid(({pixels}u + {TILE_P - 1}u) / {TILE_P}u, ({c}u + {TILE_C - 1}u) / {TILE_C}u, {n}u);
  if ({launch_vec}) {name}_kernel<true><<<grid, 256, 0, static_cast<cudaStream_t>(stream)>>>(a);
  else {name}_kernel<false><<<grid, 256, 0, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}}
"""


def _render_cuda_tiled_nchw(kernel: Kernel, itype, ins, outs, tiled) -> str:
    """_render_cuda_tiled's mirror: a block's tile of 32 channels x 64 pixels of the NCHW inputs is
    read along the pixels into shared memory (4 pixels a thread, one 16-byte load where the pixels
    are a multiple of 4), then each thread computes one channel of 8 pixels in the kernel's
    channels-last order and writes along the channels: both sides coalesced."""
    name = kernel.name
    n, c, pixels = kernel.shape[0], kernel.shape[1], math.prod(kernel.shape[2:])
    u = "u" if itype == "uint32_t" else "ull"
    tiles = [f"  __shared__ float t_{op.var}[{TILE_C}][{TILE_P + 1}];  // [channel][pixel]" for op in tiled]
    loads = []
    for op in tiled:
        src = f"a.{op.var} + img * {op.value.type.strides[0]}{u} + ch * {pixels}{u} + p"
        loads.append(f"""      float4 v_{op.var} = make_float4(0.f, 0.f, 0.f, 0.f);
      if (ch < {c}{u}) {{
        const float* src_{op.var} = {src};
        if (VEC) {{
          if (p < {pixels}{u}) v_{op.var} = *reinterpret_cast<const float4*>(src_{op.var});
        }} else {{
          if (p < {pixels}{u}) v_{op.var}.x = src_{op.var}[0];
          if (p + 1u < {pixels}{u}) v_{op.var}.y = src_{op.var}[1];
          if (p + 2u < {pixels}{u}) v_{op.var}.z = src_{op.var}[2];
          if (p + 3u < {pixels}{u}) v_{op.var}.w = src_{op.var}[3];
        }}
      }}
      t_{op.var}[cr + 16 * j][4 * q] = v_{op.var}.x;
      t_{op.var}[cr + 16 * j][4 * q + 1] = v_{op.var}.y;
      t_{op.var}[cr + 16 * j][4 * q + 2] = v_{op.var}.z;
      t_{op.var}[cr + 16 * j][4 * q + 3] = v_{op.var}.w;""")
    # read once: the thread's pixels never leave their (image, channel)
    same = _one_value_over_pixels(kernel, ins, tiled)
    hoisted = [f"  const {ctype(op.value.type.dtype)} {op.var}_px = a.{op.var}[{op.index('i0')}];" for op in same]
    args = [f"t_{op.var}[cc][pr + 8 * j]" if op in tiled else f"{op.var}_px" if op in same
            else f"a.{op.var}[{op.index()}]" for op in ins]
    decl = [f"      {ctype(op.value.type.dtype)} {op.var};" for op in outs]
    stores = [f"      a.{op.var}[i] = {op.var};" for op in outs]
    vec_ok = pixels % 4 == 0 and all(op.value.type.strides[0] % 4 == 0 for op in tiled)
    aligned = " && ".join(f"ff_aligned16(a.{op.var})" for op in tiled)
    return f"""
// {name}: NCHW input(s) {', '.join(op.value.name for op in tiled)} are read along pixels into shared
// memory, the channels-last outputs written along channels: both sides coalesced. VEC: 16-byte loads.
template <bool VEC>
__global__ void __launch_bounds__(256) {name}_kernel(const {name}_args a) {{
{chr(10).join(tiles)}
{_tile_origin(itype, False)}
  {{  // pixels 4q .. 4q + 3 of channels cr, cr + 16 per thread
    const uint32_t q = threadIdx.x & 15u, cr = threadIdx.x >> 4;
    const {itype} p = p0 + 4u * q;
#pragma unroll
    for (int j = 0; j < 2; ++j) {{
      const {itype} ch = c0 + cr + 16u * j;
{chr(10).join(loads)}
    }}
  }}
  __syncthreads();
  const uint32_t cc = threadIdx.x & 31u, pr = threadIdx.x >> 5;  // channel cc of pixels pr, pr + 8, ..
  const {itype} ch = c0 + cc;
  if (ch >= {c}{u}) return;
  const {itype} i0 = (img * {pixels}{u} + p0) * {c}{u} + ch;   // (the tile's first pixel)
{chr(10).join(hoisted)}
#pragma unroll
  for (int j = 0; j < 8; ++j) {{
    const {itype} p = p0 + pr + 8u * j;
    if (p < {pixels}{u}) {{
      const {itype} i = (img * {pixels}{u} + p) * {c}{u} + ch;   // the kernel's (channels-last) index
{chr(10).join(decl)}
      {name}_compute({', '.join(args + [op.var for op in outs])});
{chr(10).join(stores)}
    }}
  }}
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  const dim3 grid(({pixels}u + {TILE_P - 1}u) / {TILE_P}u, ({c}u + {TILE_C - 1}u) / {TILE_C}u, {n}u);
  if ({aligned if vec_ok else "false"}) {name}_kernel<true><<<grid, 256, 0, static_cast<cudaStream_t>(stream)>>>(a);
  else {name}_kernel<false><<<grid, 256, 0, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}}
"""


def _vectorizable(op: Operand) -> bool:
    return op.direct and op.value.type.dtype == torch.float32


def _run(op: Operand) -> bool:
    return op.fours == "run" and op.value.type.dtype == torch.float32


def _render_cuda(name, itype, ins, outs) -> str:
    vec_ops = [op for op in ins + outs if _vectorizable(op)]
    runs = [op for op in ins + outs if _run(op)]   # (an output: a slice of a cat's buffer, layout.py)
    scalar_loop = f"""  for ({itype} i = first; i < {name}_n; i += step) {name}_elem(a, i);"""
    if not vec_ops and not runs:
        body = f"""  const {itype} step = ({itype})gridDim.x * blockDim.x;
  const {itype} first = ({itype})blockIdx.x * blockDim.x + threadIdx.x;
{scalar_loop}"""
        launch_vec = "false"
    else:
        loads, args = [], []
        for op in ins:
            if _vectorizable(op) or _run(op):
                at = "i" if op.direct else f"({op.index('i')})"
                loads.append(f"      float {op.var}[{VEC}];\n      ff_load4({op.var}, a.{op.var} + {at});")
                args.append(f"{op.var}[k]")
            elif op.fours == "same":
                loads.append(f"      const {ctype(op.value.type.dtype)} {op.var} = a.{op.var}[{op.index('i')}];")
                args.append(op.var)
            else:
                args.append(f"a.{op.var}[{op.index('(i + k)')}]")
        decl = [f"      {ctype(op.value.type.dtype)} {op.var}[{VEC}];" for op in outs]
        stores = []
        for op in outs:
            if _vectorizable(op):
                stores.append(f"      ff_store4(a.{op.var} + i, {op.var});")
            elif _run(op):
                stores.append(f"      ff_store4(a.{op.var} + ({op.index('i')}), {op.var});")
            else:
                stores.append(f"      for (int k = 0; k < {VEC}; ++k) a.{op.var}[{op.index('(i + k)')}] = {op.var}[k];")
        body = f"""  const {itype} step = ({itype})gridDim.x * blockDim.x;
  {itype} first = ({itype})blockIdx.x * blockDim.x + threadIdx.x;
  if (vec) {{  // {VEC} consecutive elements per thread: 16-byte accesses for dense float operands
    for ({itype} q = first; q < {name}_n / {VEC}; q += step) {{
      const {itype} i = q * {VEC};
{chr(10).join(loads)}
{chr(10).join(decl)}
#pragma unroll
      for (int k = 0; k < {VEC}; ++k) {{
        {name}_compute({', '.join(args + [f'{op.var}[k]' for op in outs])});
      }}
{chr(10).join(stores)}
    }}
    first += {name}_n / {VEC} * {VEC};  // the tail: fewer than {VEC} elements
  }}
{scalar_loop}"""
        launch_vec = " && ".join(f"ff_aligned16(a.{op.var})" for op in vec_ops + runs)
    return f"""
__global__ void __launch_bounds__({THREADS}) {name}_kernel(const {name}_args a, const bool vec) {{
{body}
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  const bool vec = {launch_vec};
  const unsigned long long work = vec ? {name}_n / {VEC} + {VEC} : {name}_n;
  {name}_kernel<<<ff_blocks(work, {THREADS}), {THREADS}, 0, static_cast<cudaStream_t>(stream)>>>(a, vec);
  return static_cast<int>(cudaGetLastError());
}}
"""


def _render_node(node: Node, names: dict) -> str:
    entry = ops.lookup(node.target)
    out = node.outputs[0]
    operand_dtype = _operand_type(node, entry)
    rendered, raw = {}, {}
    for a, v in zip(node.schema.arguments, node.args):
        raw[a.name] = v
        if entry.operands == "where" and a.name in ("condition", "mask"):
            rendered[a.name] = _value(v, names, torch.bool)
        elif entry.operands == "own" and isinstance(v, Value):
            rendered[a.name] = names[v] if not inline_constant(v) else _const_literal(v, v.type.dtype)
        elif isinstance(v, Value):
            rendered[a.name] = _value(v, names, operand_dtype)
        elif isinstance(v, bool) or isinstance(v, (int, float)):
            rendered[a.name] = literal(v, operand_dtype)
    args = ops.Args(rendered, raw, ctype(operand_dtype), ctype(out.type.dtype))
    expr = entry.expr(args)
    names[out] = out.name
    return f"const {ctype(out.type.dtype)} {out.name} = {expr};"


def _const_literal(v: Value, dtype) -> str:
    return literal(v.source.reshape(()).item(), dtype)


def _value(v: Value, names: dict, dtype: torch.dtype) -> str:
    if inline_constant(v):
        return _const_literal(v, dtype)
    name = names[v]
    return name if v.type.dtype == dtype else f"static_cast<{ctype(dtype)}>({name})"
