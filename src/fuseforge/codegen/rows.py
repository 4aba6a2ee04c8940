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

Vector path (inner schedule): where every element operand walks the innermost reduced dims as
one run with stride 1 (or 0: one value for 4 elements) and 4 divides the run and every other
stride, a thread takes 4 consecutive elements per step with one access (16 bytes for float).
Row cache (unsplit rows): where a row is read by two passes or more and a thread's share of it
fits in 32 registers, the first thing the row does is load the inputs those passes read; the
passes then read registers instead of memory (PER, a template argument, is a thread's share
in steps: the GPU's and the CPU twin's teams differ).

Resident rows (inner schedule, see _resident): where a row that two passes read lies in a
tensor too large for L2 and the register cache cannot hold it, the blocks that take the row hold
it on chip (registers, then shared memory) and meet at a per-row counter between passes: one
cooperative launch of the blocks the GPU holds at once, memory read once. Streamed rows (few
rows too long to hold): every block the GPU holds takes a share, holds a chunk and reads the rest
again in items; the last pass's items go to whichever block asks first (no block waits for a slow one).

Pick stages (nll_loss): the one element a stage takes is read alone once the row's statistics
are known, not by a pass over the row.

Schedules (by the layout of the first reduced tensor): "inner" when its innermost dim is
reduced (lanes of a warp per short row, a block per long one: consecutive threads read
consecutive elements); "outer" when a kept dim is innermost (consecutive threads take
consecutive rows and walk them in step, a row's elements split over threadIdx.y). On the outer
schedule a thread issues BATCH loads before it uses the first (its accesses are 4 bytes); the
block's rows that it caches and that lie side by side in memory are first staged through shared
memory with 16-byte loads (_staged_rows); an element output whose memory runs along the elements
(NCHW written by rows over the pixels of a channels-last tensor) goes through a shared-memory
tile; and split rows merge their partials in one launch of a block per row (per row tile where
the partials are few), which also writes the row results where there are no element outputs.
"""
from __future__ import annotations

import math
import os
import re
import string
from dataclasses import dataclass, field

from ..graph import Value
from ..plan import inline_constant
from ..plan_rows import (ELEM, OUTER_ROWS_PER_BLOCK, ROW, RowKernel, outer_rows_per_block, runs_along_elements,
                         schedule_of)
from ..ops.rows import RowDef, Stage
from .cpp import ITEMS_PRELUDE, RESIDENT_PRELUDE, STAGE_ROWS_PRELUDE, WELFORD_BATCH_PRELUDE, ctype, literal
from .pointwise import KernelSource, _index_expr, _render_node, arg_fields, kernel_operands, walk_backward

ACC_BYTES = 24           # the largest accumulator: welford<double>
VEC = 4                  # elements per access on the vector path
CACHE_REGS = 32          # 4-byte registers per thread the row cache may take
BATCH = 4                # outer schedule: loads a thread issues before it uses the first
SMEM_BYTES = 48 << 10    # static shared memory of a block
L2_RESIDENT = 8 << 20    # bytes of a re-read input that stays in the H100's 50 MB L2 between passes
OUTER_CACHE_TY = 64      # outer schedule: the most threads per row (16 rows of 64-byte runs a block)
MERGE_THREADS = 256      # outer schedule's split rows: a merge launch's block per row ...
MERGE_BLOCK_MIN_SPLITS = 64   # ... where a row has this many partials or more (else a row tile's)


@dataclass
class PixelRows:
    """A row kernel run inside a convolution's epilogue (plan_conv.fold_pixel_rows): its row o
    is output pixel o, its element r channel r, and the input it reads the convolution as (the
    operand of var `conv`) comes from registers (`vals`, the thread's share: element
    team.t + k * team.n at k) instead of memory. The row function is all that is rendered; it
    takes the convolution's args struct (`args`) and its operands (`ins`, `outs`: their variable
    names)."""
    args: str
    ins: list
    outs: list


@dataclass
class Item:
    name: str
    phase: str            # elem | row | stage
    code: list[str]
    deps: list[str]
    level: int = 0        # stages: the pass that computes it
    add: str = ""         # stages: the fold, inside the loop
    finish: list[str] = field(default_factory=list)   # stages: code after the loop
    fill: list[str] = field(default_factory=list)     # held element items: its code, in the cache's fill
    atype: str = ""       # stages: the accumulator type
    elem: str = ""        # stages: the folded element's expression, of type `vtype`
    vtype: str = ""


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def _offset(strides, space, dims, itype, var) -> str:
    shape = [space[d] for d in dims]
    sub = [strides[d] for d in dims]
    expr, _ = _index_expr(sub, shape, tuple(range(len(dims))), itype)
    return expr.format(i=var)


def render(k: RowKernel, pixel: PixelRows | None = None, walked_back=frozenset()) -> KernelSource:
    """`walked_back`: the tensors whose last kernel walked them last to first (pointwise.walk_backward)."""
    name = k.name
    kept, red, schedule = schedule_of(k)
    itype, suffix, ins, outs, _ = kernel_operands(k, [k.space])
    if pixel:   # (one thread's registers per pixel: no vector loads, no schedule of its own)
        ins, outs, schedule = pixel.ins, pixel.outs, "pixel"
    rows, length = k.rows, k.length
    S = k.splits
    assert S == 1 or not pixel, "pixel rows are whole in a tile"
    elem_ops = [op for op in ins + outs if k.phase[op.value] == ELEM]
    vec = _vector_width(k, red, [op.value for op in elem_ops]) if schedule == "inner" else 1
    chunk = -(-length // S)
    if vec > 1:
        chunk = -(-chunk // vec) * vec          # splits start on a pack
        for op in elem_ops:
            op.align16 = not _scattered(k, red, op.value)
    launch = _launch(schedule, rows, chunk, S, vec) if not pixel else {"threads_per_row": PIXEL_TEAM}

    def outer(v: Value) -> str:
        return _offset(k.strides[v], k.space, kept, itype, "o")

    def inner(v: Value, var: str = "r") -> str:
        return _offset(k.strides[v], k.space, red, itype, var)

    def element_at(op, var: str = "r") -> str:
        """Element `var` of the row of operand op. In a convolution's epilogue a signed offset
        from the row's start: no unsigned wrap to keep, so that the compiler folds each step's
        offset into its load or store (level2/022's last pass: 45 -> 42 instructions an element)."""
        if pixel:
            return f"(a.{op.var} + o_{op.var})[{_offset(k.strides[op.value], k.space, red, 'int', f'int({var})')}]"
        return f"a.{op.var}[o_{op.var} + {inner(op.value, var)}]"

    items: dict[str, Item] = {}
    names: dict[Value, str] = {}
    for op in ins:
        t = ctype(op.value.type.dtype)
        phase = k.phase[op.value]
        where = element_at(op) if phase == ELEM else f"a.{op.var}[o_{op.var}]"
        items[op.var] = Item(op.var, phase, [f"const {t} {op.var} = {where};"], [])
        names[op.value] = op.var

    def deps_of(values) -> list[str]:
        return [names[v] for v in values if isinstance(v, Value) and not inline_constant(v)]

    # the logical index of an element within its row (for argmax/argmin): row-major over axes
    ridx = _offset([math.prod(k.space[e] for e in sorted(k.axes) if e > d) if d in k.axes else 0
                    for d in range(len(k.space))], k.space, red, itype, "r")

    used = {op.value for op in outs} | {v for n in k.nodes for v in n.tensor_inputs()}
    helpers: set[str] = set()        # element-code helpers beyond the prelude that the kernel uses
    picks: dict[str, tuple] = {}     # pick stages read alone: accumulator -> (element, index, type)
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
            if isinstance(step, Stage) and step.combine == "pick":
                if trivial or len(k.axes) > 1:   # the sum it equals ({i} is not the position r then)
                    step = Stage(step.name, "sum", f"({{i}} == {step.at} ? ({step.elem}) : {{T}}(0))")
                else:   # read alone, once the stages it depends on are done (its code: below)
                    picks[acc] = (step.elem.format(**env), step.at.format(**env), T)
                    items[acc] = Item(acc, ROW, [], dep_names(step.elem) + dep_names(step.at))
                    continue
            if isinstance(step, Stage):
                atype = f"ff_acc_{_combine(step, recipe, node, used)}<{T}>"
                expr = step.elem.format(**env)
                if trivial:
                    code = [f"{atype} {acc} = {atype}::init();", f"{acc}.add({expr}, 0);"]
                    items[acc] = Item(acc, ROW, code, dep_names(step.elem))
                else:
                    items[acc] = Item(acc, "stage", [f"{atype} {acc} = {atype}::init();"],
                                      dep_names(step.elem), add=f"{acc}.add({expr}, ridx);",
                                      finish=[f"{acc} = team.reduce({acc});"], atype=atype, elem=expr, vtype=T)
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
    in_ops = {op.var: op for op in ins if k.phase[op.value] == ELEM}

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

    def elem_items(targets) -> list[str]:
        """The element items a pass over `targets` computes, in dependency order."""
        order: list[str] = []

        def need_elem(n):
            if n in order or items[n].phase != ELEM:
                return
            for d in items[n].deps:
                need_elem(d)
            order.append(n)

        for t in targets:
            need_elem(t)
            for d in items[t].deps:
                need_elem(d)
        return order

    # A pick stage: the element at its index, computed alone from memory (nll_loss after a
    # log_softmax: a pass over the row that picked it by a sum took level2/095 from 0.128 to
    # 0.183 ms on an H100, bench/session10/nll).
    for acc, (expr, at, T) in picks.items():
        elem = [line for n in elem_items(items[acc].deps) for line in items[n].code]
        index = ["    const int64_t ridx = at;"] if any(re.search(r"\bridx\b", line) for line in elem + [expr]) else []
        items[acc].code = [f"ff_acc_sum<{T}> {acc} = ff_acc_sum<{T}>::init();  // the element at index {at}", "{",
                           f"  const int64_t at = static_cast<int64_t>({at});",
                           f"  if (active && at >= 0 && at < {length}) {{",
                           f"    const {itype} r = static_cast<{itype}>(at);"] + index + \
            ["    " + line for line in elem] + [f"    {acc}.v = {expr};", "  }", "}"]

    def one(op) -> bool:          # the same value for the 4 elements of a pack
        return vec > 1 and k.strides[op.value][red[-1]] == 0

    def cache_type(op) -> str:    # a cached step of input op: a pack, or one element
        t = ctype(op.value.type.dtype)
        return f"ff_pack4<{t}>" if vec > 1 and not one(op) else t

    def elem_code(targets, adds, stores, tile=False, step="[k]"):
        """The code of one step of a pass over `targets` (its element r, or pack rb on the vector
        path): (before the step's elements, per element, after them). On the batched path the
        loads come before, into {n}_u[u] (BATCH steps, u), and with `tile` the element outputs
        that run along the elements go to their shared-memory tile."""
        order = elem_items(targets)
        pre, post, code = [], [], []
        for n in order:
            op = in_ops.get(n)
            if op is None:
                code.extend(items[n].code)
                continue
            t = ctype(op.value.type.dtype)
            if n in cached:
                src = f"{n}_c{step}" + (".v[j]" if vec > 1 and not one(op) else "")
            elif batch > 1:
                pre.append(f"{n}_u[u] = a.{n}[o_{n} + {inner(op.value)}];")
                src = f"{n}_u[u]"
            elif vec == 1:
                src = element_at(op)
            elif one(op):
                pre.append(f"const {t} {n}_1 = a.{n}[o_{n} + {inner(op.value, 'rb')}];")
                src = f"{n}_1"
            else:
                pre.append(f"const ff_pack4<{t}> {n}_p = ff_load_pack(a.{n} + o_{n} + {inner(op.value, 'rb')});")
                src = f"{n}_p.v[j]"
            code.append(f"const {t} {n} = {src};")
        code.extend(adds)
        for op, value in stores:
            if tile and op in tiled:
                code.append(f"t_{op.var}[team.t + u * {launch['ty']}][threadIdx.x] = {value};")
            elif vec == 1 or _scattered(k, red, op.value):
                code.append(f"{element_at(op)} = {value};")
            else:
                pre.append(f"ff_pack4<{ctype(op.value.type.dtype)}> {op.var}_p;")
                code.append(f"{op.var}_p.v[j] = {value};")
                post.append(f"ff_store_pack(a.{op.var} + o_{op.var} + {inner(op.value, 'rb')}, {op.var}_p);")
        if "ridx" in "".join(adds):
            code.insert(0, f"const int64_t ridx = {ridx};")
        return pre, code, post

    def welford_steps(adds, at: str):
        """The Welford stages among `adds`, and `adds` with each of theirs storing its element in
        {stage}_b[at] instead, for ff_welford_add_batch to fold them at once after the step."""
        welford = [st for st in stages if st.add in adds and st.atype.startswith("ff_acc_welford")]
        if welford:
            helpers.add(WELFORD_BATCH_PRELUDE)
        return welford, [next((f"{st.name}_b[{at}] = {st.elem};" for st in welford if st.add == a), a) for a in adds]

    def batched(targets, adds, stores, tile=False) -> list[str]:
        """A step of BATCH elements r = rb + u * team.n: every load first (BATCH loads in flight
        per thread on the outer schedule's 4-byte accesses), then the elements. A Welford stage
        takes the step's elements at once (ff_welford_add_batch; on an H100, a variance over dim
        1 of [64, 2048, 512]: 0.106 -> 0.104 ms in bench/session9/windows_rows, level1/074 0.113
        -> 0.111 in bench/session9/c)."""
        welford, adds = welford_steps(adds, "u")
        loads, code, _ = elem_code(targets, adds, stores, tile)
        decl = [f"{ctype(in_ops[n].value.type.dtype)} {n}_u[{batch}];" for n in elem_items(targets)
                if n in in_ops and n not in cached]
        decl += [f"{st.vtype} {st.name}_b[{batch}];" for st in welford]
        if welford:
            decl.append("int nb = 0;  // the step's elements in the row")
            code.append("nb = u + 1;")

        def each(lines):
            return ["#pragma unroll", f"for (int u = 0; u < {batch}; ++u) {{",
                    f"  const {itype} r = rb + {itype}(u) * team.n;", "  if (active && r < r1) {"] + \
                ["    " + line for line in lines] + ["  }", "}"]
        return decl + (each(loads) if loads else []) + each(code) + \
            [f"ff_welford_add_batch({st.name}, {st.name}_b, nb);" for st in welford]

    def elem_pass(targets, adds, stores, step="[k]", head=None, span=None) -> list[str]:
        """A pass over the row (the thread's cached steps where there is a cache), or over a
        streamed row's item, the elements [span[0], span[1]) read from memory."""
        if span:
            # the item's steps of the held inputs loaded first, all in flight at once (a loop to
            # the item's end issued one load at a time: level1/064 0.297 ms)
            lo, hi = span
            start = f"{lo} + {itype}(team.t + k * team.n)" + (f" * {vec}{suffix}" if vec > 1 else "")
            head = ["#pragma unroll", f"for (int k = 0; k < {RESIDENT_ITEM_STEPS}; ++k) {{",
                    f"  const {itype} rb = {start};", f"  if (!active || rb >= {hi}) continue;"]
            return [f"{cache_type(in_ops[n])} {n}_c_item[{RESIDENT_ITEM_STEPS}];" for n in cached] + \
                head + [f"  {n}_c_item[k] = {load_step(n)};" for n in cached] + ["}"] + \
                elem_pass(targets, adds, stores, "_item[k]", head)
        if batch > 1:
            return [f"for ({itype} rb = r0 + team.t; rb < r1; rb += {itype}({batch}) * team.n) {{"] + \
                ["  " + line for line in batched(targets, adds, stores)] + ["}"]
        if resident and head is None:
            # the steps in registers fully unrolled (their index must be a constant), the steps in
            # shared memory a few at a time (unrolled whole, the loads of the other operands
            # were hoisted and spilled)
            loop = per_loop[2:]
            return elem_pass(targets, adds, stores, ".in_reg(k)",
                             ["#pragma unroll", f"for (int k = 0; k < {resident.reg}; ++k) {{"] + loop) + \
                elem_pass(targets, adds, stores, ".in_shared(k)",
                          ["#pragma unroll 4", f"for (int k = {resident.reg}; k < PER; ++k) {{"] + loop)
        # a Welford stage folds a pack's elements at once: one division a pack, not an element
        welford, adds = welford_steps(adds, "j") if vec > 1 else ([], adds)
        pre, code, post = elem_code(targets, adds, stores, step=step)
        if welford:
            pre = [f"{st.vtype} {st.name}_b[{vec}];" for st in welford] + pre
            post = [f"ff_welford_add_batch({st.name}, {st.name}_b, {vec});" for st in welford] + post
        uses_r = any(re.search(r"\br\b", line) for line in code)
        if vec > 1:
            code = pre + ["#pragma unroll", f"for (int j = 0; j < {vec}; ++j) {{"] + \
                ([f"  const {itype} r = rb + j;"] if uses_r else []) + ["  " + line for line in code] + ["}"] + post
        if cached:
            head = list(head or per_loop)
            if vec == 1 and uses_r:
                head.append(f"  const {itype} r = rb;")
        elif vec > 1:
            head = ["#pragma unroll 2",
                    f"for ({itype} rb = r0 + {itype}(team.t) * {vec}{suffix}; active && rb < r1; "
                    f"rb += {itype}(team.n) * {vec}{suffix}) {{"]
        else:
            head = ["#pragma unroll 4",  # 4 independent loads in flight per thread
                    f"for ({itype} r = r0 + team.t; active && r < r1; r += team.n) {{"]
        return head + ["  " + line for line in code] + ["}"]

    def load_step(n) -> str:
        """Step rb of input n: a pack, or one element."""
        at = f"a.{n} + o_{n} + {inner(in_ops[n].value, 'rb')}"
        return f"ff_load_pack({at})" if vec > 1 and not one(in_ops[n]) else f"*({at})"

    def tiled_pass(targets, stores) -> list[str]:
        """The element outputs of the outer schedule whose memory runs along the elements: a
        step's BATCH x team.n elements of the block's rows go through shared memory and are
        written a row's consecutive elements per warp (written directly, consecutive threads
        would write consecutive rows: a 4-byte piece of a different line each). Every thread of
        the block takes part in each step (the steps hold __syncthreads)."""
        tx, ty = launch["tx"], launch["ty"]
        span = batch * ty
        if cached:     # batch 1; the cache is indexed by the step k
            head = ["#pragma unroll", "for (int k = 0; k < PER; ++k) {", f"  const {itype} r0b = r0 + {itype}(k) * {span};",
                    "  if (r0b >= r1) break;"]
        else:
            head = [f"for ({itype} r0b = r0; r0b < r1; r0b += {span}) {{"]
        write = [f"a.{op.var}[{_offset(k.strides[op.value], k.space, kept, itype, 'ow')} + "
                 f"{inner(op.value, 'rw')}] = t_{op.var}[l % {span}][l / {span}];" for op in tiled]
        return ["#ifdef __CUDA_ARCH__"] + \
            [f"__shared__ {ctype(op.value.type.dtype)} t_{op.var}[{span}][{tx + 1}];  // [element][row]"
             for op in tiled] + \
            head + [f"  const {itype} rb = r0b + team.t;"] + \
            ["  " + line for line in batched(targets, [], stores, tile=True)] + \
            ["  __syncthreads();", "  #pragma unroll", f"  for (int u = 0; u < {batch}; ++u) {{",
             f"    const int l = (threadIdx.y * {tx} + threadIdx.x) + u * {tx * ty};  // element l % {span} of row l / {span}",
             f"    const {itype} ow = o - threadIdx.x + l / {span}, rw = r0b + l % {span};",
             f"    if (ow < {name}_n && rw < r1) {{"] + ["      " + w for w in write] + \
            ["    }", "  }", "  __syncthreads();", "}", "#else"] + elem_pass(targets, [], stores) + ["#endif"]

    # the row cache: the element inputs that two passes or more read (unsplit rows only)
    levels = sorted({st.level for st in stages})
    elem_outs = [op for op in outs if k.phase[op.value] == ELEM]
    passes = [[st.name for st in stages if st.level == lv] for lv in levels]
    if elem_outs:
        passes.append([names[op.value] for op in elem_outs])
    reads = [n for p in passes for n in elem_items(p) if n in in_ops]
    rereads = sorted({n for n in reads if reads.count(n) > 1})
    reread = rereads if S == 1 else []

    def nbytes(n) -> int:
        return in_ops[n].value.type.numel * in_ops[n].value.type.dtype.itemsize

    def cache_for(launch) -> tuple[list[str], int]:
        """The re-read inputs that fit the registers, largest tensors first (a small broadcast
        one, like a causal mask, stays in L2 anyway)."""
        per = -(-chunk // (vec * launch["threads_per_row"]))
        chosen, regs = [], 0
        for n in sorted(reread, key=lambda n: (-nbytes(n), n)):
            need = per * -(-(1 if one(in_ops[n]) else vec) * in_ops[n].value.type.dtype.itemsize // 4)
            if regs + need <= CACHE_REGS:
                chosen.append(n)
                regs += need
        return sorted(chosen), per

    cached, per_gpu = cache_for(launch)
    if pixel:   # the convolution's values are in registers already
        cached = sorted(set(cached) | {"conv"})
    if schedule == "outer" and not cached and any(nbytes(n) > RESIDENT_MIN_BYTES for n in reread):
        # the outer schedule's rows re-read from memory: more threads per row (up to 64, 1024 a
        # block), so that a thread's share fits the register cache. Measured on an H100, x / sum|x|
        # over dim 1 of [64, 2048, 512]: 0.297 ms read twice, 0.193 held (bench/session9/
        # windows_rows); but batch norms over [2048, 4096] (34 MB, the second read from L2) ran
        # 1-2 % slower held (level2/054, 060 in bench/session9/a), hence the resident rows' size.
        ty = 1 << max(0, math.ceil(math.log2(chunk / CACHE_REGS)))
        if launch["ty"] < ty <= OUTER_CACHE_TY:
            wide = _launch(schedule, rows, chunk, S, ty=ty)
            wide_cached, wide_per = cache_for(wide)
            if wide_cached:
                launch, cached, per_gpu = wide, wide_cached, wide_per
    tiled = [op for op in elem_outs if schedule == "outer" and runs_along_elements(k, op.value)]
    batch = 1
    if schedule == "outer" and not cached:
        batch = BATCH   # (8 measured mixed: 0.98-1.03x on 23 problems, bench/session23/row_batch)
        while batch > 1 and _outer_smem(launch, tiled, batch) > SMEM_BYTES:
            batch //= 2
    if any(nbytes(n) > L2_RESIDENT for n in reread if n not in cached) and launch.get("lanes") and chunk > 256:
        # rows re-read from memory: a block per row keeps few rows in flight, so that the second
        # pass finds its row in L2 (a warp per row held 67 MB in flight on suite level2/092),
        # and a thread's share is smaller, so the cache may fit
        launch = _launch(schedule, rows, chunk, S, block_per_row=True)
        cached, per_gpu = cache_for(launch)
    step_bytes = {n: (1 if one(in_ops[n]) else vec) * in_ops[n].value.type.dtype.itemsize for n in rereads}
    resident = None if pixel else _resident(k, schedule, vec, step_bytes, cached if S == 1 else [], bool(elem_outs), nbytes)
    if resident:
        S, chunk, launch = resident.most, resident.chunk, resident.launch
        cached, per_gpu = resident.cached, resident.steps
    tile = 1 if resident or cached or pixel or elem_outs or vec == 1 else _interleaved_rows(k, kept, red)
    if tile > 1:
        # rows whose runs lie side by side within a line (a channels-last group norm's groups of 4
        # channels: 16 bytes of each 128-byte line a row) go `tile` to a block, consecutive threads
        # taking consecutive rows, so that a warp's loads cover whole lines; as many threads in all
        S = max(1, min(S * launch["threads_per_row"] * tile // 1024, length // (1024 // tile * vec * 2)))
        chunk = -(-length // S)
        chunk = -(-chunk // vec) * vec          # (whole packs)
        launch = _launch("outer", rows, chunk, S, ty=1024 // tile)   # (a power of two: ff_team_column's tree)
    if rows % launch.get("rows_per_block", 1) or pixel:
        # the last block's threads past the last row: a row input of theirs lies past its tensor
        for op in ins:
            if k.phase[op.value] == ROW:
                t = ctype(op.value.type.dtype)
                items[op.var].code = [f"const {t} {op.var} = active ? a.{op.var}[o_{op.var}] : {t}(0);"]
    step_start = (f"r0 + {itype}(team.t + k * team.n)" + (f" * {vec}{suffix}" if vec > 1 else ""))
    # a thread's PER steps of the row: the loop that fills the cache and every pass over it
    per_loop = ["#pragma unroll", "for (int k = 0; k < PER; ++k) {", f"  const {itype} rb = {step_start};",
                "  if (!active || rb >= r1) continue;"]
    if pixel:   # (a thread past the last row takes no step: tested once a loop, not once a step, in
        # the convolution's epilogue, where the row's instructions are the time: level2/022's fused
        # kernel 0.980x the time, bench/session29/ab_held/ab_v2.log)
        per_loop = ["if (active)"] + per_loop[:3] + ["  if (rb >= r1) continue;"]
    if resident:   # registers, then shared memory (the block's dynamic shared memory)
        body += ["#if defined(__CUDA_ARCH__)", "extern __shared__ float4 ff_row_smem[];",
                 "unsigned char* const cache_smem = reinterpret_cast<unsigned char*>(ff_row_smem);", "#else",
                 "unsigned char* const cache_smem = nullptr;", "#endif"]
        body += [f"ff_row_cache<{cache_type(in_ops[n])}, {resident.reg}, PER> {n}_c(cache_smem, {resident.smem_at[n]}, "
                 "team.t, team.n);  // this thread's share of the chunk" for n in cached]
    staged = {} if resident or S > 1 else _staged_rows(k, kept, red, launch, cached, in_ops, tiled)
    # every pass walks the thread's cached steps k alike (in registers, whole rows, an element a step)
    alike = bool(cached) and not (resident or tiled or picks) and S == 1 and batch == 1 and vec == 1
    # An element item made of cached inputs that nothing else reads (a convolution's value plus
    # its bias) is held in their place: a register a step instead of one an input, its arithmetic
    # once instead of once a pass.
    held: dict[str, tuple[str, list[str]]] = {}   # item: (its type, the inputs it is made of)
    if alike and not staged:
        stored = {names[op.value] for op in outs}
        value_of = {n: v for v, n in names.items()}
        for it in items.values():
            made_of = sorted(set(it.deps))
            if it.phase != ELEM or not made_of or not set(made_of) <= set(cached) or set(made_of) & stored:
                continue
            taken = {m for _, ms in held.values() for m in ms}
            if not set(made_of) & taken and all(
                    [m.name for m in items.values() if d in m.deps] == [it.name] for d in made_of):
                held[it.name] = (ctype(value_of[it.name].type.dtype), made_of)
        for n, (t, made_of) in held.items():
            fill = items[n].code
            items[n].code, items[n].deps = [f"const {t} {n} = {n}_c[k];"], []
            items[n].fill = fill
        cached = [n for n in cached if not any(n in m for _, m in held.values())] + list(held)
    if not resident:
        body += [f"{cache_type(in_ops[n])} {n}_c[PER];  // this thread's share of the row" for n in cached
                 if n not in held]
        body += [f"{t} {n}_c[PER];  // this thread's share of the row, made of {', '.join(m)}"
                 for n, (t, m) in held.items()]
    if staged:
        helpers.add(STAGE_ROWS_PRELUDE)
        body.append("#ifdef __CUDA_ARCH__")
        for n, rs in staged.items():
            body += [f"__shared__ float {n}_s[{launch['tx']}][{length + 1}];  // the block's rows of {n}",
                     f"ff_stage_rows<{launch['tx']}, {length}, {launch['threads']}>(a.{n}, {itype}(o - threadIdx.x), "
                     f"{name}_n, {rs}{suffix}, {n}_s);"]
        body.append("#endif")

    def fill(n) -> str:   # step k of cached input n
        if pixel and n == "conv":
            return "vals[k]"
        return load_step(n)

    if held:   # (their inputs first, then the items)
        body += per_loop
        body += [f"  {n}_c[k] = {fill(n)};" for n in cached if n not in held]
        for n, (t, made_of) in held.items():
            body += [f"  const {cache_type(in_ops[m])} {m} = {fill(m)};" for m in made_of]
            body += ["  " + line for line in items[n].fill] + [f"  {n}_c[k] = {n};"]
        body.append("}")
    elif cached:
        body += per_loop
        for n in cached:
            if resident:
                body.append(f"  {n}_c.fill(k, a.{n} + o_{n} + {inner(in_ops[n].value, 'rb')});")
            elif n in staged:
                body += ["#ifdef __CUDA_ARCH__", f"  {n}_c[k] = {n}_s[threadIdx.x][rb];", "#else",
                         f"  {n}_c[k] = {load_step(n)};", "#endif"]
            else:
                body.append(f"  {n}_c[k] = {fill(n)};")
        body.append("}")
    ready = [f"{n}_c.ready();" for n in cached] if resident else []   # the cache's asynchronous copies landed
    if not (resident and resident.item):   # (a streamed row first folds items while they land)
        body += ready
        ready = []

    def streamed(targets, adds, stores, shared_out=False) -> list[str]:
        """A streamed row's elements beyond the blocks' held chunks, in items read from memory: a
        statistics pass takes the block's items split, split + splits, ... (its fold in one order
        every run); the last pass (`shared_out`) the items the row's counter gives it."""
        L = f"{length}{suffix}"
        if shared_out:
            head = [f"for (ff_items it(reinterpret_cast<unsigned*>(a.ws + {name}_ws_count) + {rows} + o, items); "
                    "it.more(); it.next()) {", f"  const {itype} i0 = rest + {itype}(it.item) * item;"]
        else:
            head = [f"for ({itype} i0 = rest + {itype}(split) * item; i0 < {L}; i0 += {itype}(splits) * item) {{"]
        return head + [f"  const {itype} i1 = i0 + item < {L} ? i0 + item : {L};"] + \
            ["  " + line for line in elem_pass(targets, adds, stores, span=("i0", "i1"))] + ["}"]

    # A stage's folded value that a later pass computes again (a softmax's exp(x - max), in its
    # sum and in its result) is kept from the stage's pass where the passes walk the steps alike:
    # the same value, one exponential an element fewer (the rest stay as they are: streamed
    # passes, packs, split rows, picks computed outside the loop).
    if alike:
        for st in stages:
            later = [it for it in items.values() if it.phase == ELEM and st.name in it.deps
                     and any(st.elem in line for line in it.code)]
            if "(" not in st.elem or st.atype.startswith("ff_acc_welford") or not later:
                continue
            body.append(f"{st.vtype} {st.name}_e[PER];  // the values {st.name} folds, kept for a later pass")
            st.add = f"{st.name}_e[k] = {st.elem}; " + st.add.replace(st.elem, f"{st.name}_e[k]")
            for it in later:
                it.code = [line.replace(st.elem, f"{st.name}_e[k]") for line in it.code]

    # Split rows: launch `fold` of level p folds this block's chunk into the level's partial
    # accumulators and stores them (ws, one per row and split). Then every block of a row merges
    # the row's partials (the same bits in every block), or, on the outer schedule (hundreds of
    # splits), one launch of a block per row merges them into the first partial, which the
    # later launches read. The last launch writes.
    merged = S > 1 and schedule == "outer"
    ws_end, ws_decls, phase = "0", [], 0
    for level in levels:
        group = [st for st in stages if st.level == level]
        for st in group:
            need_rows(st.name)
        body.extend(line for st in group for line in st.code)
        targets, adds = [st.name for st in group], [st.add for st in group]
        batch_after = []
        if pixel:   # a Welford stage takes the thread's elements at once: a division a thread, not an element
            welford = [st for st in group if st.atype.startswith("ff_acc_welford")]
            for st in welford:
                body += [f"{st.vtype} {st.name}_b[PER];  // this thread's elements of the row", f"int {st.name}_nb = 0;"]
                adds[adds.index(st.add)] = f"{st.name}_b[k] = {st.elem}; {st.name}_nb = k + 1;"
                batch_after.append(f"ff_welford_add_batch({st.name}, {st.name}_b, {st.name}_nb);")
            if welford:
                helpers.add(WELFORD_BATCH_PRELUDE)
        fold = elem_pass(targets, adds, []) + batch_after
        if resident and resident.item:
            fold = streamed(targets, adds, []) + ready + fold
            ready = []
        fold += [line for st in group for line in st.finish]
        parts = {}   # split rows: the level's partial accumulators in the workspace, rows x S of each
        for st in group if S > 1 else []:
            parts[st.name] = f"reinterpret_cast<{st.atype}*>(a.ws + {name}_ws_{st.name})"
            ws_decls.append(f"constexpr size_t {name}_ws_{st.name} = {ws_end};")
            ws_end = f"ff_align16({name}_ws_{st.name} + sizeof({st.atype}) * {rows * S})"
        if S == 1:
            body.extend(fold)
        elif resident:
            # the row's blocks meet at its counter, then each merges all partials (the same bits
            # in every block); the CPU twin's team takes the whole row (splits = 1)
            body.extend(fold)
            body.append("if (splits > 1) {")
            body.extend(f"  if (team.t == 0) {parts[st.name]}[o * splits + split] = {st.name};" for st in group)
            body += ["#if defined(__CUDA_ARCH__)",
                     f"  ff_row_barrier(reinterpret_cast<unsigned*>(a.ws + {name}_ws_count) + o, splits);", "#endif"]
            body.extend(f"  {st.name} = {st.atype}::init();" for st in group)
            body.append("  for (int k = team.t; k < splits; k += team.n) {")
            body.extend(f"    {st.name}.merge(ff_load_cg({parts[st.name]} + o * splits + k));" for st in group)
            body.append("  }")
            body.extend(f"  {st.name} = team.reduce({st.name});" for st in group)
            body.append("}")
        else:
            body.append(f"if (phase == {phase}) {{")
            body.extend("  " + line for line in fold)
            body.append("  if (active && team.t == 0) {")
            body.extend(f"    {parts[st.name]}[o * {S} + split] = {st.name};" for st in group)
            body.append("  }")
            body.append("  return;")
            body.append("}")
            phase += 1
            if merged:
                # hundreds of partials per row: BATCH x 2 loads in flight per thread
                many = 2 * BATCH
                body.append(f"if (phase == {phase}) {{  // a block per row{' tile' if S < MERGE_BLOCK_MIN_SPLITS else ''}")
                body.append(f"  for (int k0 = team.t; k0 < {S}; k0 += {many} * team.n) {{")
                for st in group:
                    body.append(f"    {st.atype} {st.name}_m[{many}];")
                body += ["    #pragma unroll", f"    for (int u = 0; u < {many}; ++u) {{",
                         "      const int k = k0 + u * team.n;"]
                body.extend(f"      {st.name}_m[u] = active && k < {S} ? {parts[st.name]}[o * {S} + k] : "
                            f"{st.atype}::init();" for st in group)
                body += ["    }", "    #pragma unroll", f"    for (int u = 0; u < {many}; ++u) {{"]
                body.extend(f"      {st.name}.merge({st.name}_m[u]);" for st in group)
                body += ["    }", "  }"]
                body.extend(f"  {st.name} = team.reduce({st.name});" for st in group)
                body.append("  if (active && team.t == 0) {")
                body.extend(f"    {parts[st.name]}[o * {S}] = {st.name};" for st in group)
                body.append("  }")
                body.append("  return;")
                body.append("}")
                body.extend(f"if (active) {st.name} = {parts[st.name]}[o * {S}];" for st in group)
                phase += 1
            else:
                # the team merges the partials (each thread every team.n-th, then reduce)
                body.append(f"for (int k = team.t; active && k < {S}; k += team.n) {{")
                body.extend(f"  {st.name}.merge({parts[st.name]}[o * {S} + k]);" for st in group)
                body.append("}")
                body.extend(f"{st.name} = team.reduce({st.name});" for st in group)
        emitted.update(st.name for st in group)

    row_outs = [op for op in outs if k.phase[op.value] == ROW]
    for op in outs:
        need_rows(names[op.value])
    if elem_outs:
        stores = [(op, names[op.value]) for op in elem_outs]
        targets = [names[op.value] for op in elem_outs]
        if tiled:
            body.extend(tiled_pass(targets, stores))
        else:
            body.extend(ready + elem_pass(targets, [], stores))
            if resident and resident.item:
                body.extend(streamed(targets, [], stores, shared_out=True))
    if row_outs:
        body.append(f"if (active && team.t == 0{' && split == 0' if S > 1 or resident else ''}) {{")
        body.extend(f"  a.{op.var}[o_{op.var}] = {names[op.value]};" for op in row_outs)
        body.append("}")

    offsets = [f"const {itype} o_{op.var} = {outer(op.value)};" for op in ins + outs if not (pixel and op.var == "conv")]
    if resident and resident.item:   # a block's held chunk: PER steps of its team (the CPU twin's: one thread)
        L = f"{length}{suffix}"
        bounds = [f"const {itype} chunk = {itype}(PER) * static_cast<{itype}>(team.n) * {vec}{suffix};",
                  f"const {itype} item = {itype}({RESIDENT_ITEM_STEPS}) * static_cast<{itype}>(team.n) * {vec}{suffix};  // a streamed item",
                  f"const {itype} r0 = static_cast<{itype}>(split) * chunk;",
                  f"const {itype} r1 = r0 + chunk < {L} ? r0 + chunk : {L};",
                  f"const {itype} rest = static_cast<{itype}>(splits) * chunk;  // the streamed part starts here",
                  f"const unsigned items = rest < {L} ? static_cast<unsigned>(({L} - rest + item - 1) / item) : 0u;"]
    elif resident:   # the GPU's blocks take even chunks (of whole packs), the CPU twin's team the whole row
        bounds = [f"const {itype} chunk = (({length}{suffix} + splits - 1) / splits + {vec - 1}) / {vec} * {vec};",
                  f"const {itype} r0 = static_cast<{itype}>(split) * chunk;",
                  f"const {itype} r1 = r0 + chunk < {length}{suffix} ? r0 + chunk : {length}{suffix};"]
    elif S == 1:
        bounds = [f"constexpr {itype} r0 = 0, r1 = {length}{suffix};"]
    else:
        bounds = [f"const {itype} r0 = static_cast<{itype}>(split) * {chunk}{suffix};",
                  f"const {itype} r1 = r0 + {chunk}{suffix} < {length}{suffix} ? r0 + {chunk}{suffix} : {length}{suffix};"]
    fields = arg_fields(ins, outs, lambda op: f", {k.phase[op.value]}")
    if S > 1:
        fields.append(f"  unsigned char* __restrict__ ws;  // partial accumulators: {rows} rows x {S} splits")
        if resident:
            what = "2 counters per row (the barrier's, the last pass's items)" if resident.item else "a counter per row"
            ws_decls.append(f"constexpr size_t {name}_ws_count = {ws_end};  // {what}")
            ws_end = f"ff_align16({name}_ws_count + {4 * resident.counters} * {rows})"
        ws_decls.append(f"constexpr size_t {name}_ws_bytes = {ws_end};")
    phases = phase + 1
    # the CPU twin's steps: the whole row (a streamed row: a chunk of PER steps, the rest streamed as on the GPU)
    whole = per_gpu if resident and resident.item else -(-(length if resident else chunk) // vec)
    per = {"gpu": f"<{per_gpu}>" if cached else "", "cpu": f"<{whole}>" if cached else ""}
    if resident:
        cpu_call = f"{name}_row{per['cpu']}(a, i, true, team, 0, 1);"
    elif S == 1:
        cpu_call = f"{name}_row{per['cpu']}(a, i, true, team, 0, 0);"
    else:
        cpu_call = (f"for (int phase = 0; phase < {phases}; ++phase)\n"
                    f"    for (int split = 0; split < {f'(phase % 2 == 1 && phase < {phases - 1} ? 1 : {S})' if merged else S}; ++split) "
                    f"{name}_row(a, i, true, team, phase, split);")
    if pixel:
        return KernelSource(k, f"""
// ---- {name}: {", ".join(n.target.removeprefix("aten.") for n in k.nodes)}, in the convolution's epilogue
//      space {list(k.space)}, reducing axes {list(k.axes)}: a row a pixel, its {length} channels in registers
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <int PER, class Team>
FF_HD void {name}_row(const {pixel.args}& a, const {itype} o, const bool active, const Team& team,
                      const int phase, const int split, const float (&vals)[PER]) {{
{chr(10).join('  ' + line for line in offsets + bounds)}
{chr(10).join('  ' + line for line in body)}
}}
""", "", ins, outs, helpers=tuple(sorted(helpers)))
    reverse = False
    if resident:
        cuda = _render_resident(name, itype, rows, length, resident, per["gpu"])
        helpers.add(RESIDENT_PRELUDE)
        if resident.item:
            helpers.add(ITEMS_PRELUDE)
    else:
        # the outer schedule's row tiles last to first where the kernel before left the rows' end in L2
        reverse = schedule == "outer" and walk_backward([op.value for op in ins if k.phase[op.value] == ELEM], walked_back)
        cuda = _render_cuda(name, itype, launch, per["gpu"], reverse) if S == 1 else \
            _render_split(name, itype, launch, rows, S, phases, bool(elem_outs), merged, reverse)
    ops_list = ", ".join(n.target.removeprefix("aten.") for n in k.nodes)
    if resident and resident.item:
        split_note = (f", streamed: up to {S} blocks of {resident.launch['threads']} threads per row (as many as the GPU "
                      f"holds, one launch), each holding {chunk} elements of {', '.join(cached)} on chip ({resident.smem} "
                      f"bytes of shared memory a block), the rest read in items of {resident.item}")
    elif resident:
        blocks = f"{resident.splits}" + (f"-{S}" if S > resident.splits else "")
        split_note = (f", resident: {blocks} blocks of {resident.launch['threads']} threads per row (up to {chunk} elements "
                      f"each, one launch), {', '.join(cached)} held on chip ({resident.smem} bytes of shared memory a block)")
    else:
        launches = cuda.count("<<<")   # (a split kernel's launcher: a line per launch)
        split_note = f", each split over {S} blocks ({chunk} elements each, {launches} launch{'es' * (launches > 1)})" if S > 1 else ""
    if vec > 1:
        split_note += f", {vec} elements per access"
    if tile > 1:
        split_note += f", {tile} rows side by side a block"
    if cached and not resident:
        split_note += f", rows of {', '.join(cached)} cached in registers"
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
template <{'int PER, ' if cached else ''}class Team>
FF_HD void {name}_row(const {name}_args& a, const {itype} o, const bool active, const Team& team,
                      {'const int split, const int splits' if resident else 'const int phase, const int split'}) {{
{chr(10).join('  ' + line for line in offsets + bounds)}
{chr(10).join('  ' + line for line in body)}
}}

inline void {name}_elem(const {name}_args& a, const {itype} i) {{
  const ff_team_cpu team;
  {cpu_call}
}}

int {name}_cuda(const {name}_args& a, void* stream);  // in the CUDA source
"""
    return KernelSource(k, shared, cuda, ins, outs, workspace=S > 1, helpers=tuple(sorted(helpers)), backward=reverse)


STAGE_BYTES = 16 << 10   # outer schedule: the most shared memory a block's staged rows of one input take


def _staged_rows(k, kept, red, launch, cached, in_ops, tiled) -> dict[str, int]:
    """The cached inputs of an unsplit outer-schedule kernel whose block's rows are staged through
    shared memory with 16-byte loads (ff_stage_rows): float32, a row's elements one contiguous run
    of whole 16-byte chunks, row o at o * rs (rs a multiple of 4, rows apart), the block's rows
    within STAGE_BYTES (and every staged input's, the team's and the tiles' within SMEM_BYTES).
    {input: rs}."""
    if "tx" not in launch:
        return {}
    tx, length = launch["tx"], k.length
    smem = _outer_smem(launch, tiled, 1)   # (cached rows: a batch of 1)
    out = {}
    for n in cached:
        v = in_ops[n].value
        st = k.strides[v]
        red_shape = [k.space[d] for d in red]
        kept_shape = [k.space[d] for d in kept]
        rs = st[kept[-1]] if kept else 0
        bytes_ = tx * (length + 1) * 4
        if ctype(v.type.dtype) != "float" or length % 4 or rs % 4 or rs < length or bytes_ > STAGE_BYTES or \
                smem + bytes_ > SMEM_BYTES or [st[d] for d in red] != _contiguous(red_shape) or \
                [st[d] for d in kept] != [rs * s for s in _contiguous(kept_shape)]:
            continue
        out[n] = rs
        smem += bytes_
    return out


def _outer_smem(launch, tiled, batch: int) -> int:
    """Static shared memory of an outer-schedule block: the team's accumulators, and a tile of
    batch x ty elements by the block's rows for each element output written through one."""
    return launch["threads"] * ACC_BYTES + sum(
        batch * launch["ty"] * (launch["tx"] + 1) * op.value.type.dtype.itemsize for op in tiled)


def _contiguous(shape) -> list[int]:
    return [math.prod(shape[i + 1:]) for i in range(len(shape))]


def _combine(step: Stage, recipe, node, used) -> str:
    """The stage's accumulator: argmax/argmin fold the value alone (max/min, the same values)
    where nothing reads the index (torch.max(x, dim)[0] over [64, 2048, 512] on an H100:
    level1/067 0.110 -> 0.103 ms; level2/035's min over channels 0.589 -> 0.506; bench/session9/a)."""
    if step.combine not in ("argmax", "argmin"):
        return step.combine
    index = f"{{{step.name}}}.i"
    exprs = [recipe.results[v.index].expr for v in node.outputs if v in used and v.index in recipe.results]
    exprs += [d.expr for d in recipe.steps if isinstance(d, RowDef)]
    return step.combine if any(index in e for e in exprs) else step.combine[3:]


def _scattered(k, red, v: Value) -> bool:
    """An element output that does not run along the row's innermost dim (NCHW written by rows
    of a channels-last tensor's channel runs): on the vector path it is written element by
    element."""
    return v in k.outputs and k.strides[v][red[-1]] != 1


def vector_width(k) -> int:
    """The elements per access of the row kernel's passes (1: scalar)."""
    kept, red, schedule = schedule_of(k)
    values = [v for v in k.inputs + k.outputs if k.phase[v] == ELEM]
    return _vector_width(k, red, values) if schedule == "inner" else 1


def _interleaved_rows(k, kept, red) -> int:
    """How many consecutive rows share a 128-byte line of the main tensor, where a row's innermost
    run is contiguous and the next row's run follows it (each row's warp loads would use a part of
    every line they touch), else 1."""
    st, space = k.strides[k.main], k.space
    d0, dk = red[-1], kept[-1] if kept else None
    run_bytes = space[d0] * k.main.type.dtype.itemsize
    if dk is None or st[d0] != 1 or st[dk] != space[d0] or space[dk] < 2 or run_bytes > 64:
        return 1
    return 1 << (min(128 // run_bytes, space[dk]).bit_length() - 1)


def _vector_width(k, red, values) -> int:
    """VEC when every element operand reads or writes a pack of VEC consecutive row elements
    with one aligned access, or reads one value for the pack (an input with stride 0 along the
    run), but for scattered outputs. The run: the innermost reduced dims that every operand walks
    as one (each next stride = the run so far; an image of 126 x 126 pixels is one run of 15876,
    though 4 does not divide 126), holding a multiple of VEC elements, with VEC dividing every
    other stride."""
    values = [v for v in values if not _scattered(k, red, v)]
    if not values:
        return 1
    d0 = red[-1]
    run, size = [d0], k.space[d0]
    for d in reversed(red[:-1]):
        if any(k.strides[v][d] != k.strides[v][d0] * size for v in values):
            break
        run.append(d)
        size *= k.space[d]
    if size % VEC:
        return 1
    packed = False
    for v in values:
        st = k.strides[v]
        if st[d0] == 0 and v not in k.outputs:
            continue
        if st[d0] != 1 or any(st[e] % VEC for e in range(len(k.space)) if e not in run and k.space[e] > 1):
            return 1
        packed = True
    return VEC if packed else 1


# Resident rows: a long row read by two passes or more (statistics, then the normalized output)
# is held on chip by the blocks that take it, so that memory is read once. A block of
# RESIDENT_THREADS takes a chunk of the row; each thread holds RESIDENT_SHARE bytes of each large
# re-read input, the first RESIDENT_REGS words in registers and the rest in shared memory. The
# grid is the blocks the GPU holds at once, taking whole rows per round; the blocks of a row
# meet at a counter between passes. Measured on an H100 (bench/session8/rows_l2), normalizing
# 1024 rows of 65536 floats: 0.277 ms a block per row (its second pass mostly missed L2), 0.199
# for the row held on chip (copy: 0.190); a batch norm over 64 rows of 1M: 0.325 ms two
# launches, 0.229 / 0.216 / 0.211 resident with chunks of 256 / 128 / 64 KB.
RESIDENT_THREADS = 256
RESIDENT_SHARE = 256
RESIDENT_REGS = 16              # (32 spilled: the statistics passes want registers too)
# A round of whole rows fits any GPU of 16 SMs or more. Rows of 2M floats in 64 chunks of 32 K
# (2 blocks an SM) ran slower held (bench/session8/b: level1/058, level2/043): chunks stay 64 KB.
RESIDENT_MAX_SPLITS = 64
RESIDENT_MAX_SMEM = 160 << 10
# When rows are held, measured on the H100 (bench/session8/a, b, problems of the suite):
#   faster: the norms over 110-268 MB whose rows lie in runs of 8192 floats or more (level1/059,
#     060, 061 by 24-32 %; level2/034, 040, 041, 052, 093, 094 by 5-23 %), and the group norms of
#     level2/002, 014 over channels-last tensors (runs of 8 channels), by 4-7 %;
#   slower: the batch norms over 25-51 MB (level3/005, 009: their second launch finds most of its
#     rows in L2) by 3-8 %, and those over 154-192 MB in runs of 3136 (56 x 56 pixels, level3/007
#     and 008: the norm kernel of 007 0.187 -> 0.224 ms) by 4.5 %.
# Hence the two conditions; the cost of 007's rounds is not understood yet, and the channels-last
# group norms are left out with it.
RESIDENT_MIN_BYTES = 96 << 20
RESIDENT_MIN_RUN = 8192
# Streamed rows: a row too long to hold in RESIDENT_MAX_SPLITS chunks is spread over every block the
# GPU holds (of few rows, each a share), each block holding RESIDENT_REGS words in registers and
# RESIDENT_STREAM_SMEM bytes in shared memory (4 blocks an SM), the rest of the row read again from
# memory in items of RESIDENT_ITEM_STEPS steps of the block. A statistics pass gives block b the
# items b, b + blocks, ... (the same sums every run); the last pass writes only, so its items go to
# whichever block asks first, from the row's counter. Measured on an H100, x / ||x|| over 268 MB
# (bench/session10/fro): 0.283 ms in two launches; one cooperative launch of fixed chunks, 0.298 with
# 18 % held (blocks wait at the counter for the slowest); items shared out, 0.274 holding nothing
# and 0.264 holding 13 %; the statistics pass's items fixed: 0.265; items of 1 step: 0.296.
RESIDENT_STREAM_MAX_ROWS = 16
RESIDENT_STREAM_SMEM = 48 << 10
RESIDENT_ITEM_STEPS = 2
RESIDENT_STREAM_MAX_SPLITS = 1024   # blocks a row (the partials' workspace); the H100 holds 528


@dataclass
class Resident:
    splits: int                   # blocks per row, at least; the launcher may take up to
    most: int                     # ... this many, so that the GPU's rounds of whole rows come out even
    chunk: int                    # elements a block takes, at most
    steps: int                    # a thread's steps of its chunk
    cached: list[str]             # the inputs held on chip
    reg: int                      # the first steps, held in registers (the others in shared memory)
    smem_at: dict[str, int]       # byte offset of each one's shared-memory part
    smem: int                     # dynamic shared memory of a block
    launch: dict
    item: int = 0                 # streamed rows: the elements of an item beyond the held chunks (0: held whole)

    @property
    def counters(self) -> int:
        """Counters per row in the workspace: the barrier's (and a streamed row's last-pass items)."""
        return 2 if self.item else 1


def _resident(k, schedule, vec: int, step_bytes: dict[str, int], in_registers, elem_outputs: bool,
              nbytes) -> Resident | None:
    """The resident layout of a row kernel, or None. For the inner schedule's rows with element
    outputs and re-read inputs beyond RESIDENT_MIN_BYTES that the register cache does not already
    hold. `step_bytes`: the bytes of a thread's step of each re-read input (`vec` elements)."""
    if schedule != "inner" or not elem_outputs or os.environ.get("FUSEFORGE_RESIDENT") == "0":   # 0: to measure
        return None
    big = sorted(n for n in step_bytes if nbytes(n) > RESIDENT_MIN_BYTES)
    if not big or set(big) <= set(in_registers):
        return None
    _, red, _ = schedule_of(k)
    run, st = 1, k.strides[k.main]
    for d in reversed(red):          # the row's elements lie in runs of `run`
        if st[d] != run:
            break
        run *= k.space[d]
    if run < min(k.length, RESIDENT_MIN_RUN):
        return None
    words = sum(-(-step_bytes[n] // 4) for n in big)      # registers of a step
    largest = RESIDENT_THREADS * vec * max(1, RESIDENT_SHARE // max(step_bytes[n] for n in big))   # a chunk
    splits, item = -(-k.length // largest), 0
    if splits <= RESIDENT_MAX_SPLITS:
        steps = -(-k.length // (splits * RESIDENT_THREADS * vec))   # the chunks as even as the steps allow
    elif k.rows <= RESIDENT_STREAM_MAX_ROWS:   # streamed: hold what fits
        splits, item = 1, RESIDENT_ITEM_STEPS * RESIDENT_THREADS * vec
        steps = RESIDENT_REGS // words + RESIDENT_STREAM_SMEM // (RESIDENT_THREADS * sum(step_bytes[n] for n in big))
    else:
        return None
    reg = min(steps, RESIDENT_REGS // words)
    smem_at, at = {}, 0
    for n in big:
        smem_at[n] = at
        at += -(-(steps - reg) * RESIDENT_THREADS * step_bytes[n] // 16) * 16
    if at > RESIDENT_MAX_SMEM:
        return None
    per_sm = max(1, min(4, (227 << 10) // (at + (1 << 10))))   # blocks an SM holds (1 KB reserved each)
    launch = dict(_launch("inner", k.rows, k.length, splits, vec, block_per_row=True, threads=RESIDENT_THREADS),
                  per_sm=per_sm)
    if item:
        most = RESIDENT_STREAM_MAX_SPLITS
    else:
        most = 1 if splits == 1 else min(2 * splits, RESIDENT_MAX_SPLITS)
    return Resident(splits, most, RESIDENT_THREADS * vec * steps, steps, big, reg, smem_at, at, launch, item)


PIXEL_TEAM = 4           # pixel rows: the 4 lanes of a quad hold a pixel's channels (codegen/conv.py)
LANE_STEPS = 4           # a lane team of a short row: as few lanes as give each about 4 steps


def _launch(schedule, rows, length, splits, vec=1, block_per_row=False, threads=None, ty=None) -> dict:
    """Threads, team and grid of a row kernel; `length`: the elements one team walks. Rows a
    warp covers in a few steps get lanes of a warp: a block of 256 threads per short row would
    keep few bytes in flight per SM. Rows shorter than a warp's 4 steps get fewer lanes (several
    rows a warp): a warp per row of 64 left half its lanes idle and spent its time in shuffles
    (conv -> min over 64 channels: 0.33 ms against 0.11 for torch.compile on an H200)."""
    if schedule == "inner" and length <= 256 * vec and not block_per_row:
        lanes, steps = 32, -(-length // vec)
        while lanes > 1 and lanes * LANE_STEPS > steps:
            lanes //= 2
        threads, per_block = 256, 256 // lanes
        return dict(threads=threads, threads_per_row=lanes, lanes=True, smem="", block=f"{threads}", rows_per_block=per_block,
                    team=f"const ff_team_lanes<{lanes}> team{{static_cast<int>(threadIdx.x & {lanes - 1})}};",
                    row=f"tile * {per_block}u + threadIdx.x / {lanes}", grid=f"({rows}u + {per_block - 1}u) / {per_block}u")
    if schedule == "inner":   # a block per row (`threads`: its size, else by the length)
        threads = threads or (256 if length <= 4096 else (512 if length <= 32768 else 1024))
        return dict(threads=threads, threads_per_row=threads, block=f"{threads}", row="tile", grid=f"{rows}u",
                    team="const ff_team_block team{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), smem};",
                    smem=f"  __shared__ alignas(16) unsigned char smem[32 * {ACC_BYTES}];")
    # a row's elements split over 8 threads (a block's rows stay few, so that the passes
    # after the first find them in L1), more while the GPU would hold too few threads
    if ty:     # given: a block of 1024 threads
        tx = 1024 // ty
    else:
        ty = 1
        while ty < 32 and ty < length and (ty < 8 or rows * splits * ty < 270_000):
            ty *= 2
        tx = max(OUTER_ROWS_PER_BLOCK, 256 // ty)
        if tx == OUTER_ROWS_PER_BLOCK and outer_rows_per_block(rows) != tx:   # every row in one block
            tx = outer_rows_per_block(rows)
            ty = min(ty, 1 << ((1024 // tx).bit_length() - 1))
    threads = tx * ty
    return dict(threads=threads, threads_per_row=ty, tx=tx, ty=ty, rows_per_block=tx, block=f"dim3({tx}, {ty})",
                row=f"tile * {tx}u + threadIdx.x",
                grid=f"({rows}u + {tx - 1}u) / {tx}u",
                team=f"const ff_team_column team{{static_cast<int>(threadIdx.y), {ty}, smem}};",
                smem=f"  __shared__ alignas(16) unsigned char smem[{threads} * {ACC_BYTES}];")


def _render_cuda(name, itype, launch, per="", reverse=False) -> str:
    """Unsplit rows: a launch of a team per row. `per`: the row function's template argument (the
    row cache's size); `reverse`: the row tiles last to first."""
    threads, team, row, smem, block, grid = (launch[f] for f in ("threads", "team", "row", "smem", "block", "grid"))
    return f"""
__global__ void __launch_bounds__({threads}) {name}_kernel(const {name}_args a) {{
{smem}
  {team}
  const {itype} tile = {"gridDim.x - 1u - blockIdx.x" if reverse else "blockIdx.x"};
  const {itype} o = {row};
  {name}_row{per}(a, o, o < {name}_n, team, 0, 0);
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  {name}_kernel<<<{grid}, {block}, 0, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}}
"""


def _render_split(name, itype, launch, rows, splits, phases, elem_outputs, merged, reverse=False) -> str:
    """Split rows: a launch of partials per level, then the results. On the outer schedule
    (`merged`) a launch after each level's partials merges them into the first partial (odd phases
    before the last), which the later launches read, and without element outputs the last merge
    writes the row results; on the inner one each block of the next launch merges the (few)
    partials itself, and without element outputs the results take a block per row tile.

    The kernel is a template on its phase, so that each launch holds the registers of its own
    phase alone: with the phase an argument, the merge's code took level2/001's batch-norm
    statistics to 44 registers (5 blocks an SM; the partials alone: 31, 8 blocks), and its first
    launch to 0.116 ms against 0.106 (ncu; bench/session9/bn_cl). Where a row has
    MERGE_BLOCK_MIN_SPLITS partials or more, a merge takes a block of MERGE_THREADS per row, each
    thread merging a few partials: the row tile's block leaves S partials a row to 8 threads, S / 8
    merges in a chain each. With 528, level2/001's statistics took 0.145 ms in three launches, 0.127
    so; the problem 0.643 -> 0.622 ms, level3/017's 128-512 partials 1.764 -> 1.661 (bench/session9/d).
    With 9 (4096 rows), 1 % slower.

    Merged instead by the last block of a row tile to store its partials (a counter per tile, one
    launch per level), level2/001 took 0.505 ms against 0.489 and level2/005 0.503 against 0.499 on
    an H200, with the kernel's registers held to the partials' 32 (bench/session11/lastblock): the
    merges of the last tiles, done by one block each, come after every other block has finished.
    `reverse`: the row tiles last to first."""
    threads, block, grid = (launch[f] for f in ("threads", "block", "grid"))
    last = phases - 1
    merging = {p for p in range(1, last, 2)} if merged else set()
    per_row = merged and splits >= MERGE_BLOCK_MIN_SPLITS

    def then_results(team: str) -> str:   # the last merge writes the row results (no element outputs)
        if not merged or elem_outputs:
            return ""
        return f"""
  if constexpr (PHASE == {last - 1}) {{  // the row results
    __syncthreads();  // the merged partials
    {name}_row(a, o, o < {name}_n, {team}, {last}, 0);
  }}"""
    kernel = f"""
template <int PHASE>
__global__ void __launch_bounds__({threads}) {name}_kernel(const {name}_args a, const unsigned splits) {{
{launch["smem"]}
  {launch["team"]}
  const {itype} tile = {"gridDim.x / splits - 1u - blockIdx.x / splits" if reverse else "blockIdx.x / splits"};
  const int split = static_cast<int>(blockIdx.x % splits);
  const {itype} o = {launch["row"]};
  {name}_row(a, o, o < {name}_n, team, PHASE, split);{"" if per_row else then_results("team")}
}}
"""
    if per_row:
        merge = _launch("inner", rows, splits, 1, block_per_row=True, threads=MERGE_THREADS)
        kernel += f"""
template <int PHASE>
__global__ void __launch_bounds__({MERGE_THREADS}) {name}_merge_kernel(const {name}_args a) {{
{merge["smem"]}
  {merge["team"]}
  const {itype} o = blockIdx.x;
  {name}_row(a, o, o < {name}_n, team, PHASE, 0);{then_results("team")}
}}
"""
    launches = []
    for p in range(phases):
        if p == last and merged and not elem_outputs:
            break
        if p in merging and per_row:
            launches.append(f"  {name}_merge_kernel<{p}><<<{rows}u, {MERGE_THREADS}, 0, s>>>(a);  // merge")
            continue
        n = 1 if p in merging or (p == last and not elem_outputs) else splits
        what = "merge" if p in merging else ("results" if p == last else "partials")
        launches.append(f"  {name}_kernel<{p}><<<({grid}) * {n}u, {block}, 0, s>>>(a, {n}u);  // {what}")
    if merged and not elem_outputs:
        launches[-1] += " and results"
    return f"""{kernel}
int {name}_cuda(const {name}_args& a, void* stream) {{  // the partials of a launch are read by the next
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
{chr(10).join(launches)}
  return static_cast<int>(cudaGetLastError());
}}
"""


def _render_resident(name, itype, rows, length, res: Resident, per: str) -> str:
    """One launch of the blocks the GPU holds at once, whole rows per round (a row's blocks side by
    side), with the blocks per row between res.splits and res.most that make the rounds cheapest.
    It is a cooperative launch: all blocks run at once, or it fails, so no block waits at a row's
    counter for one that never starts."""
    threads, smem = res.launch["threads"], res.smem
    zero = ""   # the rows' counters, where the blocks of a row meet (a streamed row's items: even with one)
    if res.item or res.most > 1:
        zero = (f"  {'' if res.item else 'if (splits > 1) '}e = cudaMemsetAsync(a.ws + {name}_ws_count, 0, "
                f"{4 * res.counters * rows}, s);  // the rows' counters\n"
                "  if (e != cudaSuccess) return static_cast<int>(e);\n")
    return f"""
__global__ void __launch_bounds__({threads}, {res.launch['per_sm']}) {name}_kernel(const {name}_args a, const unsigned splits) {{
{res.launch['smem']}
  {res.launch['team']}
  const unsigned per_round = gridDim.x / splits;  // whole rows
  if (blockIdx.x >= per_round * splits) return;
  for ({itype} o = blockIdx.x / splits; o < {name}_n; o += per_round)
    {name}_row{per}(a, o, true, team, static_cast<int>(blockIdx.x % splits), static_cast<int>(splits));
}}

int {name}_cuda(const {name}_args& a, void* stream) {{
  // once per device: the blocks it holds at once, and the blocks per row whose rounds cost least
  // (the time of a launch ~ its rounds x the chunk); 0 blocks: a row's blocks do not fit at once
  static unsigned chosen[64][2] = {{}};  // [device]: blocks per row, blocks
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess && dev >= 64) e = cudaErrorInvalidDevice;
  if (e == cudaSuccess && chosen[dev][0] == 0) {{
    int per_sm = 0, sms = 0;
    e = cudaFuncSetAttribute({name}_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, {smem});
    if (e == cudaSuccess) e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, {name}_kernel, {threads}, {smem});
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    const long long held = static_cast<long long>(per_sm) * sms;
    long long best = 0;
    for (unsigned k = {res.splits}u; e == cudaSuccess && k <= {res.most}u && held / k > 0; ++k) {{
      const long long per_round = held / k, rounds = ({rows}LL + per_round - 1) / per_round;
      const long long cost = rounds * (({length}LL + k - 1) / k);
      if (chosen[dev][0] == 0 || cost < best) {{
        best = cost;
        chosen[dev][0] = k;
        chosen[dev][1] = static_cast<unsigned>((per_round < {rows}LL ? per_round : {rows}LL) * k);
      }}
    }}
  }}
  if (e != cudaSuccess) return static_cast<int>(e);
  if (chosen[dev][0] == 0) return static_cast<int>(cudaErrorCooperativeLaunchTooLarge);
  unsigned splits = chosen[dev][0];
  const unsigned blocks = chosen[dev][1];
  cudaStream_t s = static_cast<cudaStream_t>(stream);
{zero}  void* args[] = {{const_cast<{name}_args*>(&a), &splits}};
  return static_cast<int>(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>({name}_kernel), dim3(blocks),
                                                      dim3({threads}), args, {smem}, s));
}}
"""
