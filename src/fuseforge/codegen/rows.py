"""Render a RowKernel: reductions and norms with the pointwise ops around them fused.

For kernel K the shared text (CUDA and the CPU twin) defines
  K_args      the pointers,
  K_row       one row, written for a team of threads: each thread folds every team.n-th
              element into its accumulators, team.reduce() combines them; then the same
              threads write the element outputs, and thread 0 the row outputs,
  K_elem      one row on the CPU (a team of one);
the CUDA text defines K_kernel and its launcher K_cuda. A row is read once per stage level
(softmax: max, then sum, then the output pass); element ops are recomputed in each pass
rather than stored.

Schedules (by the layout of the first reduced tensor): "inner" when its innermost dim is
reduced (a warp per row for short rows, a block per row for long ones: consecutive threads
read consecutive elements); "outer" when a kept dim is innermost (consecutive threads take
consecutive rows and walk them in step, a row's elements split over threadIdx.y).
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass, field

from ..graph import Value
from ..plan import inline_constant
from ..plan_rows import ELEM, OUTER_ROWS_PER_BLOCK, ROW, RowKernel, schedule_of
from ..ops.rows import RowDef, Stage
from .cpp import ctype, literal
from .pointwise import KernelSource, _index_expr, _render_node, arg_fields, kernel_operands

ACC_BYTES = 24           # the largest accumulator: welford<double>


@dataclass
class Item:
    name: str
    phase: str            # elem | row | stage
    code: list[str]
    deps: list[str]
    level: int = 0        # stages: the pass that computes it
    add: str = ""         # stages: the fold, inside the loop
    finish: list[str] = field(default_factory=list)   # stages: code after the loop
    atype: str = ""       # stages: the accumulator type


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def _offset(strides, space, dims, itype, var) -> str:
    shape = [space[d] for d in dims]
    sub = [strides[d] for d in dims]
    expr, _ = _index_expr(sub, shape, tuple(range(len(dims))), itype)
    return expr.format(i=var)


def render(k: RowKernel) -> KernelSource:
    name = k.name
    kept, red, schedule = schedule_of(k)
    itype, suffix, ins, outs, _ = kernel_operands(k, [k.space])
    rows, length = k.rows, k.length

    def outer(v: Value) -> str:
        return _offset(k.strides[v], k.space, kept, itype, "o")

    def inner(v: Value) -> str:
        return _offset(k.strides[v], k.space, red, itype, "r")

    items: dict[str, Item] = {}
    names: dict[Value, str] = {}
    for op in ins:
        t = ctype(op.value.type.dtype)
        phase = k.phase[op.value]
        where = f"o_{op.var}" + (f" + {inner(op.value)}" if phase == ELEM else "")
        items[op.var] = Item(op.var, phase, [f"const {t} {op.var} = a.{op.var}[{where}];"], [])
        names[op.value] = op.var

    def deps_of(values) -> list[str]:
        return [names[v] for v in values if isinstance(v, Value) and not inline_constant(v)]

    # the logical index of an element within its row (for argmax/argmin): row-major over axes
    ridx = _offset([math.prod(k.space[e] for e in sorted(k.axes) if e > d) if d in k.axes else 0
                    for d in range(len(k.space))], k.space, red, itype, "r")

    for node in k.nodes:
        recipe = k.recipes.get(node) or k.trivial.get(node)
        if recipe is None:                             # a pointwise op
            line = _render_node(node, names)
            items[names[node.outputs[0]]] = Item(names[node.outputs[0]], k.phase[node.outputs[0]], [line],
                                                 deps_of(node.tensor_inputs()))
            continue
        trivial = node in k.trivial
        acc_dtype = recipe.x.type.dtype
        T = ctype(acc_dtype)
        # {i}: the element's index within its row (row-major over the axes), for stages that pick
        env = {"x": names[recipe.x], "T": T, "L": literal(recipe.length, acc_dtype),
               "i": "int64_t(0)" if trivial else "ridx"}
        for oname, op in recipe.operands.items():
            env[oname] = names[op.value]
        for step in recipe.steps:
            env[step.name] = f"{node.name}_{step.name}"

        def dep_names(template):
            return [env[f] for f in _fields(template) if f not in ("T", "L", "i")]

        for step in recipe.steps:
            acc = env[step.name]
            if isinstance(step, Stage):
                atype = f"ff_acc_{step.combine}<{T}>"
                expr = step.elem.format(**env)
                if trivial:
                    code = [f"{atype} {acc} = {atype}::init();", f"{acc}.add({expr}, 0);"]
                    items[acc] = Item(acc, ROW, code, dep_names(step.elem))
                else:
                    items[acc] = Item(acc, "stage", [f"{atype} {acc} = {atype}::init();"],
                                      dep_names(step.elem), add=f"{acc}.add({expr}, ridx);",
                                      finish=[f"{acc} = team.reduce({acc});"], atype=atype)
            else:
                assert isinstance(step, RowDef)
                items[acc] = Item(acc, ROW, [f"const {T} {acc} = {step.expr.format(**env)};"],
                                  dep_names(step.expr))
        for v in node.outputs:
            res = recipe.results.get(v.index)
            phase = ROW if trivial else res.phase
            t = ctype(v.type.dtype)
            items[v.name] = Item(v.name, phase, [f"const {t} {v.name} = static_cast<{t}>({res.expr.format(**env)});"],
                                 dep_names(res.expr))
            names[v] = v.name

    # --- levels: a stage's pass comes after every stage it depends on
    def stage_deps(name, seen=None) -> set[str]:
        seen = set() if seen is None else seen
        found = set()
        for d in items[name].deps:
            if d in seen:
                continue
            seen.add(d)
            if items[d].phase == "stage":
                found.add(d)
            found |= stage_deps(d, seen)
        return found

    stages = [it for it in items.values() if it.phase == "stage"]
    for st in stages:
        st.level = 1 + max((items[d].level for d in stage_deps(st.name)), default=0)

    emitted: set[str] = set()
    body: list[str] = []
    S = k.splits

    def need_rows(name, seen=None):
        """Emit the row items `name` needs (looking through element items), then `name` if a row item."""
        seen = set() if seen is None else seen
        if name in seen or name in emitted:
            return
        seen.add(name)
        for d in items[name].deps:
            need_rows(d, seen)
        if items[name].phase == ROW:
            body.extend(items[name].code)
            emitted.add(name)

    def elem_pass(targets, tail) -> list[str]:
        loop_emitted = set()
        code = []

        def need_elem(n):
            if n in loop_emitted or items[n].phase != ELEM:
                return
            for d in items[n].deps:
                need_elem(d)
            code.extend(items[n].code)
            loop_emitted.add(n)

        for t in targets:
            need_elem(t)
            for d in items[t].deps:
                need_elem(d)
        code.extend(tail)
        lines = ["#pragma unroll 4",  # 4 independent loads in flight per thread
                 f"for ({itype} r = r0 + team.t; active && r < r1; r += team.n) {{"]
        if "ridx" in "".join(tail):
            lines.append(f"  const int64_t ridx = {ridx};")
        return lines + ["  " + line for line in code] + ["}"]

    # Split rows: phase p < levels folds this block's chunk into level p's partial
    # accumulators and stores them (ws, one per row and split); every later phase merges a
    # row's partials in split order (the same bits in every block). The last phase writes.
    ws_end, ws_decls = "0", []
    levels = sorted({st.level for st in stages})
    for phase, level in enumerate(levels):
        group = [st for st in stages if st.level == level]
        for st in group:
            need_rows(st.name)
        body.extend(line for st in group for line in st.code)
        fold = elem_pass([st.name for st in group], [st.add for st in group]) + \
            [line for st in group for line in st.finish]
        if S == 1:
            body.extend(fold)
        else:
            parts = {}
            for st in group:
                parts[st.name] = f"reinterpret_cast<{st.atype}*>(a.ws + {name}_ws_{st.name})"
                ws_decls.append(f"constexpr size_t {name}_ws_{st.name} = {ws_end};")
                ws_end = f"ff_align16({name}_ws_{st.name} + sizeof({st.atype}) * {rows * S})"
            body.append(f"if (phase == {phase}) {{")
            body.extend("  " + line for line in fold)
            body.append("  if (active && team.t == 0) {")
            body.extend(f"    {parts[st.name]}[o * {S} + split] = {st.name};" for st in group)
            body.append("  }")
            body.append("  return;")
            body.append("}")
            body.append(f"for (int k = 0; active && k < {S}; ++k) {{")
            body.extend(f"  {st.name}.merge({parts[st.name]}[o * {S} + k]);" for st in group)
            body.append("}")
        emitted.update(st.name for st in group)

    elem_outs = [op for op in outs if k.phase[op.value] == ELEM]
    row_outs = [op for op in outs if k.phase[op.value] == ROW]
    for op in outs:
        need_rows(names[op.value])
    if elem_outs:
        body.extend(elem_pass([names[op.value] for op in elem_outs],
                              [f"a.{op.var}[o_{op.var} + {inner(op.value)}] = {names[op.value]};"
                               for op in elem_outs]))
    if row_outs:
        body.append(f"if (active && team.t == 0{' && split == 0' if S > 1 else ''}) {{")
        body.extend(f"  a.{op.var}[o_{op.var}] = {names[op.value]};" for op in row_outs)
        body.append("}")

    offsets = [f"const {itype} o_{op.var} = {outer(op.value)};" for op in ins + outs]
    chunk = -(-length // S)
    if S == 1:
        bounds = [f"constexpr {itype} r0 = 0, r1 = {length}{suffix};"]
    else:
        bounds = [f"const {itype} r0 = static_cast<{itype}>(split) * {chunk}{suffix};",
                  f"const {itype} r1 = r0 + {chunk}{suffix} < {length}{suffix} ? r0 + {chunk}{suffix} : {length}{suffix};"]
    fields = arg_fields(ins, outs, lambda op: f", {k.phase[op.value]}")
    if S > 1:
        fields.append(f"  unsigned char* __restrict__ ws;  // partial accumulators: {rows} rows x {S} splits")
        ws_decls.append(f"constexpr size_t {name}_ws_bytes = {ws_end};")
    phases = len(levels) + 1
    cpu_call = (f"{name}_row(a, i, true, team, 0, 0);" if S == 1 else
                f"for (int phase = 0; phase < {phases}; ++phase)\n"
                f"    for (int split = 0; split < {S}; ++split) {name}_row(a, i, true, team, phase, split);")
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    split_note = f", each split over {S} blocks ({chunk} elements each, {phases} launches)" if S > 1 else ""
    shared = f"""
// ---- {name}: {ops_list}
//      space {list(k.space)}, reducing axes {list(k.axes)}: {rows} rows of {length}, schedule {schedule}{split_note}
struct {name}_args {{
{chr(10).join(fields)}
}};
constexpr {itype} {name}_n = {rows}{suffix};  // rows
{chr(10).join(ws_decls)}

#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Team>
FF_HD void {name}_row(const {name}_args& a, const {itype} o, const bool active, const Team& team,
                      const int phase, const int split) {{
{chr(10).join('  ' + line for line in offsets + bounds)}
{chr(10).join('  ' + line for line in body)}
}}

inline void {name}_elem(const {name}_args& a, const {itype} i) {{
  const ff_team_cpu team;
  {cpu_call}
}}

int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    cuda = _render_cuda(name, itype, schedule, rows, chunk, S, phases, bool(elem_outs))
    return KernelSource(k, shared, cuda, ins, outs, workspace=S > 1)


def _render_cuda(name, itype, schedule, rows, length, splits, phases, elem_outputs=True) -> str:
    """`length`: the elements one team walks (a split row's chunk). Without element outputs
    the last phase only writes row results: one block per row (split 0) does it."""
    if schedule == "inner" and length <= 256:
        threads, per_block = 256, 8
        team = "const ff_team_warp team{static_cast<int>(threadIdx.x & 31)};"
        row = f"tile * {per_block}u + threadIdx.x / 32"
        smem, block, grid = "", f"{threads}", f"({rows}u + {per_block - 1}u) / {per_block}u"
    elif schedule == "inner":
        threads = 256 if length <= 4096 else (512 if length <= 32768 else 1024)
        team = "const ff_team_block team{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), smem};"
        row = "tile"
        smem = f"  __shared__ alignas(16) unsigned char smem[32 * {ACC_BYTES}];"
        block, grid = f"{threads}", f"{rows}u"
    else:
        # a row's elements split over 8 threads (a block's rows stay few, so that the passes
        # after the first find them in L1), more while the GPU would hold too few threads
        ty = 1
        while ty < 32 and ty < length and (ty < 8 or rows * splits * ty < 270_000):
            ty *= 2
        tx = max(OUTER_ROWS_PER_BLOCK, 256 // ty)
        threads = tx * ty
        team = f"const ff_team_column team{{static_cast<int>(threadIdx.y), {ty}, smem}};"
        row = f"tile * {tx}u + threadIdx.x"
        smem = f"  __shared__ alignas(16) unsigned char smem[{threads} * {ACC_BYTES}];"
        block, grid = f"dim3({tx}, {ty})", f"({rows}u + {tx - 1}u) / {tx}u"
    if splits == 1:
        return f"""
__global__ void __launch_bounds__({threads}) {name}_kernel(const {name}_args a) {{
{smem}
  {team}
  const {itype} tile = blockIdx.x;
  const {itype} o = {row};
  {name}_row(a, o, o < {name}_n, team, 0, 0);
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  {name}_kernel<<<{grid}, {block}, 0, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}}
"""
    return f"""
__global__ void __launch_bounds__({threads}) {name}_kernel(const {name}_args a, const int phase,
                                                         const unsigned splits) {{
{smem}
  {team}
  const {itype} tile = blockIdx.x / splits;
  const int split = static_cast<int>(blockIdx.x % splits);
  const {itype} o = {row};
  {name}_row(a, o, o < {name}_n, team, phase, split);
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  for (int phase = 0; phase < {phases}; ++phase) {{  // one launch per phase: the partials of one are read by the next
    const unsigned splits = phase < {phases - 1} ? {splits}u : {splits if elem_outputs else 1}u;
    {name}_kernel<<<({grid}) * splits, {block}, 0, static_cast<cudaStream_t>(stream)>>>(a, phase, splits);
  }}
  return static_cast<int>(cudaGetLastError());
}}
"""
