"""Render a ScanKernel: a cumulative sum/product with its prologue and epilogue.

For kernel K the shared text (CUDA and the CPU twin) defines
  K_args      the pointers,
  K_load      element k of line o of the scanned input: the prologue's loads and ops, at the
              input-side coordinates (reversed where a flip reads them),
  K_store     the scan's value at element k of line o: the epilogue and the stores, at the
              output-side coordinates,
  K_elem      line o, sequentially (the CPU twin, and the GPU when lines are short or strided);
the CUDA text defines K_kernel and its launcher K_cuda. Schedules: "lines" when the scan dim
is not the innermost in memory, or lines are short: one line per thread, consecutive threads on
neighbouring lines; "block" otherwise: a team of 32-256 threads per line (several lines per
block when lines are short), each thread scanning 4 consecutive elements, the team combining
its threads' totals (warp shuffles, then the warps' totals in shared memory) and carrying the
running total from one chunk of the line to the next.
"""
from __future__ import annotations

import math
import re

from ..plan_scans import OUT, ScanKernel
from .cpp import ctype
from .pointwise import KernelSource, _broadcast_strides, _render_node, arg_fields, kernel_operands, load_inputs

ITEMS = 4          # consecutive elements per thread in the block schedule
BLOCK = 256        # threads per block

SCAN_HELPERS = r"""
#ifndef FF_SCAN_HELPERS
#define FF_SCAN_HELPERS
struct ff_scan_sum { template <class T> __device__ T operator()(T a, T b) const { return a + b; } };
struct ff_scan_prod { template <class T> __device__ T operator()(T a, T b) const { return a * b; } };
// Exclusive scan over a team of blockDim.x threads (a multiple of 32, at most 256): each thread
// gets the combination of the values of the threads before it, `total` that of all of them.
// `part`: 8 slots of shared memory for this team.
template <class T, class Op>
__device__ __forceinline__ T ff_team_exclusive_scan(T v, const Op op, const T identity, T* part, T& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  T incl = v;
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    const T u = __shfl_up_sync(0xffffffffu, incl, d);
    if (lane >= d) incl = op(u, incl);
  }
  T excl = __shfl_up_sync(0xffffffffu, incl, 1);
  if (lane == 0) excl = identity;
  __syncthreads();                       // the previous call has read part[]
  if (lane == 31) part[warp] = incl;
  __syncthreads();
  T before = identity;
  total = identity;
  for (int w = 0; w < warps; ++w) {
    if (w == warp) before = total;
    total = op(total, part[w]);
  }
  return op(before, excl);
}
#endif
"""


def render(k: ScanKernel) -> KernelSource:
    name, spec = k.name, k.scan
    shape, dim, L = k.shape, spec.dim, k.length
    itype, suffix, ins, outs, var = kernel_operands(k, [shape])
    T = ctype(spec.x.type.dtype)
    y = k.node.outputs[0]
    kept = [d for d in range(len(shape)) if d != dim]

    coords = []          # the line's coordinates (row-major over the kept dims) and the position k
    for d in kept:
        inner = math.prod(shape[e] for e in kept if e > d)
        c = "o" if inner == 1 else f"o / {inner}{suffix}"
        if d != kept[0]:
            c = f"({c}) % {shape[d]}{suffix}"
        coords.append((d, f"const {itype} c{d} = {c};"))

    def offset(strides, flipped, back=False) -> str:
        terms = []
        for d, st in enumerate(strides):
            if st == 0 or shape[d] == 1:
                continue
            c = ("(k - 1)" if back else "k") if d == dim else f"c{d}"
            if d in flipped:
                c = f"({shape[d] - 1}{suffix} - {c})"
            terms.append(c if st == 1 else f"{c} * {st}{suffix}")
        return " + ".join(terms) or "0"

    def loads(nodes, flipped, back=False) -> tuple[list[str], dict]:
        return load_inputs(k.inputs, var, nodes, shape, name, lambda st: offset(st, flipped, back))

    # --- K_load: the scanned input at (o, k); shifted (exclusive): at (o, k - 1), the identity at 0
    if k.prologue:
        load, names = loads(k.prologue, k.in_flip, k.shifted)
        load += [_render_node(n, names) for n in k.prologue]
        load.append(f"return {names[k.source]};")
    else:
        x = k.source
        load = [f"return a.{var[x]}[{offset(_broadcast_strides(x.type, shape), k.in_flip, k.shifted)}];"]
    if k.shifted:
        load.insert(0, f"if (k == 0) return {T}({spec.identity});")

    # --- K_store: the scan's value y at (o, k): the epilogue and every store
    names = {y: y.name, k.result: y.name}
    store, loaded = loads(k.epilogue, k.out_flip)
    names.update(loaded)
    store += [_render_node(n, names) for n in k.epilogue]
    for op in outs:
        flipped = k.out_flip if k.side[op.value] == OUT else ()
        store.append(f"a.{op.var}[{offset(_broadcast_strides(op.value.type, shape), flipped)}] = "
                     f"{names[op.value]};")

    def prelude(lines):
        """The coordinates these lines use."""
        text = "\n".join(lines)
        return [c for d, c in coords if re.search(rf"\bc{d}\b", text)]

    fields = arg_fields(ins, outs)
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    schedule, tx = _schedule(k)
    acc = spec.op("acc", f"{name}_load(a, o, k)")
    shared = f"""
// ---- {name}: {ops_list}
//      {k.describe()} over {list(shape)}, schedule {schedule}
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {k.rows}{suffix};  // lines
constexpr {itype} {name}_len = {L}{suffix};

FF_HD {T} {name}_load(const {name}_args& a, const {itype} o, const {itype} k) {{
{chr(10).join('  ' + line for line in prelude(load) + load)}
}}

FF_HD void {name}_store(const {name}_args& a, const {itype} o, const {itype} k, const {T} {y.name}) {{
{chr(10).join('  ' + line for line in prelude(store) + store)}
}}

FF_HD void {name}_elem(const {name}_args& a, const {itype} o) {{
  {T} acc = {T}({spec.identity});
  for ({itype} k = 0; k < {name}_len; ++k) {{
    acc = {acc};
    {name}_store(a, o, k, acc);
  }}
}}

int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    return KernelSource(k, shared, _render_cuda(name, itype, T, spec, schedule, tx, k.rows), ins, outs)


def _schedule(k: ScanKernel) -> tuple[str, int]:
    """("lines", 1) or ("block", threads per line)."""
    main = k.outputs[0] if k.outputs else k.scan.x
    inner = main.type.strides[k.scan.dim] == 1
    if not inner or k.length <= 16:
        return "lines", 1
    tx = 32
    while tx < BLOCK and tx * ITEMS < k.length:
        tx *= 2
    return "block", tx


def _render_cuda(name, itype, T, spec, schedule, tx, rows) -> str:
    if schedule == "lines":
        return f"""
__global__ void __launch_bounds__({BLOCK}) {name}_kernel(const {name}_args a) {{
  const {itype} o = ({itype})blockIdx.x * {BLOCK}u + threadIdx.x;  // one line per thread
  if (o < {name}_n) {name}_elem(a, o);
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  {name}_kernel<<<ff_blocks({name}_n, {BLOCK}), {BLOCK}, 0, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}}
"""
    ty = BLOCK // tx
    grid = f"{rows}u" if ty == 1 else f"({rows}u + {ty - 1}u) / {ty}u"
    ident = f"{T}({spec.identity})"
    functor = f"ff_scan_{spec.combine}"
    return SCAN_HELPERS + f"""
// {name}: {ty} line(s) per block, {tx} threads per line, {ITEMS} consecutive elements per thread
__global__ void __launch_bounds__({BLOCK}) {name}_kernel(const {name}_args a) {{
  __shared__ {T} part[{ty}][8];
  const {functor} op;
  const {itype} o = ({itype})blockIdx.x * {ty}u + threadIdx.y;
  const bool active = o < {name}_n;      // every thread takes part in the team's scans
  {T} carry = {ident};                  // the line's elements before this chunk
  for ({itype} base = 0; base < {name}_len; base += {tx * ITEMS}u) {{
    const {itype} k0 = base + threadIdx.x * {ITEMS}u;
    {T} v[{ITEMS}];
    {T} run = {ident};
#pragma unroll
    for (int j = 0; j < {ITEMS}; ++j) {{
      const {itype} k = k0 + j;
      run = op(run, active && k < {name}_len ? {name}_load(a, o, k) : {ident});
      v[j] = run;
    }}
    {T} total;
    const {T} before = op(carry, ff_team_exclusive_scan(run, op, {ident}, part[threadIdx.y], total));
#pragma unroll
    for (int j = 0; j < {ITEMS}; ++j) {{
      if (active && k0 + j < {name}_len) {name}_store(a, o, k0 + j, op(before, v[j]));
    }}
    carry = op(carry, total);
  }}
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  {name}_kernel<<<{grid}, dim3({tx}, {ty}), 0, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}}
"""
