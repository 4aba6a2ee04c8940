"""plan: decide which nodes become generated kernels and which run as ATen externs.

Rules (DESIGN.md, "Fusion rules"), as far as they are implemented here:
- chains of pointwise ops become one kernel; a pointwise op joins the kernel of a producer
  when that creates no cycle through an extern;
- broadcast operands (a per-channel bias) are read by index, never materialised; a
  pointwise value of smaller shape is recomputed per element when only its kernel uses it;
- a kernel writes only the values something outside it needs.
Every decision is logged, so the report can say why an op stayed an extern.
"""
from __future__ import annotations

import copy

import math

from dataclasses import dataclass, field

from . import ops
from .graph import CONSTANT, Graph, Node, Value
from .plan_conv import ConvKernel, decides as conv_decides, fold_pixel_rows, form_conv_kernels
from .plan_gemm import GemmKernel, form_gemm_kernels
from .plan_rows import RowKernel, form_row_groups, recipe_of
from .plan_scans import ScanKernel, form_scan_kernels
from .plan_windows import WindowKernel, form_window_kernels
from .replay import why_not_replayed

MAX_NAME_OPS = 5


@dataclass(eq=False)
class Kernel:
    name: str
    nodes: list[Node]
    shape: tuple[int, ...]
    order: tuple[int, ...]          # iteration order of dims, outermost first
    inputs: list[Value]             # tensors read (inline constants excluded)
    outputs: list[Value]            # tensors written

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def summary(self) -> str:
        return " → ".join(short_name(n) for n in self.nodes)


@dataclass(eq=False)
class Extern:
    node: Node
    reason: str
    channels_last: bool = False      # a convolution run on channels-last input and weight (layout.py)
    to_nchw: bool = False            # ... whose output is converted back to NCHW for its readers
    cat_channels_last: bool = False  # a cat written straight into channels-last for the convolutions reading it
    cat_buffer: str | None = None    # a cat in the buffer of the last cat of its family (cat_buffers.py): its name
    cat_placed: tuple = ()           # ... the pieces of a channels-last cat its producers write in place (layout.py)
    into_slice: tuple | None = None  # (cat, channel offset): to_nchw writes into that slice of the cat's buffer
    scatter_src: str | None = None   # a slice_scatter whose src its kernel wrote in place (scatter_rows.py)


@dataclass
class Plan:
    graph: Graph
    steps: list                      # Kernel | RowKernel | WindowKernel | GemmKernel | ConvKernel | Extern, in order
    decisions: list[str] = field(default_factory=list)
    why_op_by_op: str | None = "undecided"   # why the forward is not replayed as a CUDA graph (replay.py); None: it is

    @property
    def kernels(self) -> list:
        return [s for s in self.steps if not isinstance(s, Extern)]

    @property
    def externs(self) -> list[Extern]:
        return [s for s in self.steps if isinstance(s, Extern)]

    def constants(self) -> list[Value]:
        """Constant tensors the generated forward must receive (those not inlined as literals)."""
        needed = []
        for step in self.steps:
            used = step.node.tensor_inputs() if isinstance(step, Extern) else step.inputs
            for v in used:
                if v.role == CONSTANT and v not in needed:
                    needed.append(v)
        for v in self.graph.outputs:
            if isinstance(v, Value) and v.role == CONSTANT and v not in needed:
                needed.append(v)
        return needed


def short_name(node: Node) -> str:
    return node.op._schema.name.split("::")[-1].strip("_")


def inline_constant(v: Value) -> bool:
    """A one-element constant (torch.tensor(0.5) in a forward) becomes a literal in the kernel."""
    return v.role == CONSTANT and v.type.numel == 1


def fusible(node: Node, users=None, live=()) -> tuple[bool, str]:
    """Whether the node can be generated as a pointwise op, and if not, why."""
    entry = ops.lookup(node.target)
    if entry is None:
        return False, "no registry entry: runs as an ATen extern"
    if entry.kind == ops.LOWER:
        return False, "not lowered: runs as an ATen extern"
    if entry.kind != ops.POINTWISE:
        return False, f"a {entry.kind} op that no row kernel could take"
    if entry.when is not None and not entry.when(node):
        return False, "arguments outside what the registry entry generates"
    if len(node.outputs) != 1:
        unused = all(v not in live and not (users or {}).get(v) for v in node.outputs[1:])
        if not (entry.first_result_only and unused and users is not None):
            return False, "several results"
    types = [node.outputs[0].type] + [v.type for v in node.tensor_inputs()]
    bad = sorted({str(t.dtype) for t in types if t.dtype not in ops.KERNEL_DTYPES})
    if bad:
        return False, f"dtype {', '.join(bad)} not generated yet"
    if entry.floats_only and node.outputs[0].type.dtype not in ops.FLOAT_DTYPES \
            and entry.operands == "out":
        return False, "integer operands for a floating-point-only op"
    return True, ""


def broadcast_shape(a, b):
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)


class _Group:
    def __init__(self, node: Node):
        self.nodes = [node]
        self.shape = node.outputs[0].type.shape


def plan(graph: Graph) -> Plan:
    """The fusion plan, with the convolutions that run channels-last chosen (layout.py)."""
    from .cat_buffers import converted_into_slices, families
    from .lower import drop_expands, lower, mean_of_convolutions, sink_past_permutes, sink_past_splits, \
        split_reduced_softmax
    from .scatter_rows import mark, missed, rows_in_place
    lowered: list[str] = []
    graph = mean_of_convolutions(lower(graph, lowered), lowered)
    graph = sink_past_splits(sink_past_permutes(drop_expands(graph, lowered), lowered), lowered)
    graph = split_reduced_softmax(graph, lowered)
    cats = families(graph, lowered)
    scattered = rows_in_place(graph)
    result, notes = _plan_layouts(graph)
    lost = missed(result, scattered)
    if lost:   # (left to ATen: their src's types back, planned again)
        for name in lost:
            src, before = scattered.pop(name)
            src.type = before
        result, notes = _plan_layouts(graph)
    result.decisions[:0] = lowered + notes
    mark(result, scattered)
    for e in result.externs:
        e.cat_buffer = cats.get(e.node.name)
    assert sum(e.cat_buffer is not None for e in result.externs) == len(cats), "a cat of a shared buffer was fused"
    converted_into_slices(result)
    why = result.why_op_by_op = why_not_replayed(result)
    result.decisions.append("forward: replayed as a CUDA graph on a GPU" if why is None else f"forward: op by op, {why}")
    return result


def _plan_layouts(graph: Graph) -> tuple[Plan, list[str]]:
    """The plan with the convolutions' layouts chosen, split norms settled, and its notes."""
    from .layout import converted_1x1, plan_with_layouts, recompute_for_pixel_readers, split_norms
    whole: set[str] = set()          # norms kept whole: their convolution stayed NCHW when split
    nchw: set[str] = set()           # 1x1 convolutions kept NCHW: channels-last, their input was converted
    for _ in range(4):
        notes: list[str] = []
        split_graph, split = split_norms(copy.deepcopy(graph), notes, whole, nchw)
        recompute_for_pixel_readers(split_graph, notes)
        result = plan_with_layouts(split_graph, _plan, nchw)
        cl = {e.node.name for e in result.externs if e.channels_last and not e.to_nchw}
        cl_in = {e.node.name for e in result.externs if e.channels_last}   # (its input channels-last)
        stayed = {norm for norm, (conv, reads) in split.items() if conv not in (cl if reads else cl_in)}
        converted = converted_1x1(result)
        if not stayed and not converted:
            break
        whole |= stayed
        nchw |= converted
    return result, notes


def _plan(graph: Graph) -> Plan:
    decisions: list[str] = []
    users = graph.users()
    live = graph.live_out()
    ancestors = _ancestors(graph)

    group_of: dict[Node, _Group] = {}
    groups: list[_Group] = []
    position = {n: i for i, n in enumerate(graph.nodes)}

    def only_used_inside(nodes: list[Node], inside: set) -> bool:
        return all(n.outputs[0] not in live and all(u in inside for u in users.get(n.outputs[0], []))
                   for n in nodes)

    def closed(members: set) -> bool:
        """No path leaves the set and comes back: every outside producer of a member is
        independent of the set (else the fused kernel would wait on itself)."""
        return all(not (ancestors[v.producer] & members)
                   for m in members for v in m.tensor_inputs()
                   if v.producer is not None and v.producer not in members)

    def can_join(g: _Group, node: Node) -> bool:
        shape = node.outputs[0].type.shape
        if broadcast_shape(g.shape, shape) != shape:
            return False          # the newcomer must span the whole iteration space
        if shape != g.shape:
            smaller = [n for n in g.nodes if n.outputs[0].type.shape != shape]
            if not only_used_inside(smaller, set(g.nodes) | {node}):
                return False      # a smaller value needed outside would be written many times
        return closed(set(g.nodes) | {node})

    def can_absorb(g: _Group, other: _Group, node: Node) -> bool:
        """Another producer group of `node` joins g: recomputed per element if it is smaller."""
        if broadcast_shape(other.shape, g.shape) != g.shape:
            return False
        if other.shape != g.shape and \
                not only_used_inside(other.nodes, set(other.nodes) | set(g.nodes) | {node}):
            return False
        return closed(set(g.nodes) | set(other.nodes))

    for node in graph.nodes:
        ok, why = fusible(node, users, live)
        if not ok:
            if ops.lookup(node.target) is not None and \
                    ops.lookup(node.target).kind in (ops.ROW, ops.WINDOW, ops.GEMM, ops.SCAN, ops.VIEW) or \
                    conv_decides(node):
                continue          # the row, window, GEMM, scan and conv passes below decide
            decisions.append(f"{node.name} ({node.target}): extern, {why}")
            continue
        target = None
        for v in node.tensor_inputs():
            g = group_of.get(v.producer)
            if g is not None and can_join(g, node):
                target = g
                break
        if target is None:
            target = _Group(node)
            groups.append(target)
        else:
            target.nodes.append(node)
            target.shape = node.outputs[0].type.shape
        group_of[node] = target
        for v in node.tensor_inputs():
            other = group_of.get(v.producer)
            if other is not None and other is not target and can_absorb(target, other, node):
                # keep execution order: the absorbed nodes come before their consumers
                target.nodes = sorted(other.nodes + target.nodes, key=position.__getitem__)
                for n in other.nodes:
                    group_of[n] = target
                groups.remove(other)

    reasons: dict[Node, str] = {}
    rows = form_row_groups(graph, groups, group_of, closed, users, live, decisions, reasons)
    windows = form_window_kernels(graph, groups, group_of, closed, users, live,
                                  {n for rg in rows for n in rg.nodes}, decisions, reasons)
    gemms = form_gemm_kernels(graph, groups, group_of, closed, users, live, decisions, reasons)
    convs = form_conv_kernels(graph, groups, group_of, closed, users, live, decisions, reasons,
                              {k.node for k in windows}, rows)
    scans = form_scan_kernels(graph, groups, group_of, closed, users, live, decisions, reasons)
    kernels = [_make_kernel(g, users, live) for g in groups] + [rg.kernel(users, live) for rg in rows] + \
        windows + gemms + convs + scans
    kernels = fold_pixel_rows(kernels, closed, users, live, decisions, reasons)
    kernels.sort(key=lambda k: position[k.nodes[0]])
    _name_kernels(kernels)
    for k in kernels:
        if isinstance(k, RowKernel):
            decisions.append(f"{k.name}: row kernel over {list(k.space)} reducing axes {list(k.axes)} "
                             f"({k.rows} rows of {k.length}"
                             f"{f', each split over {k.splits} blocks' if k.splits > 1 else ''}), {len(k.nodes)} op(s), reads "
                             f"{len(k.inputs)} tensor(s), writes {len(k.outputs)}")
        elif isinstance(k, WindowKernel):
            decisions.append(f"{k.name}: window kernel, {k.window.describe()} from {list(k.frame)} to "
                             f"{list(k.shape)}, {len(k.prologue)} op(s) fused before it and "
                             f"{len(k.epilogue)} after, reads {len(k.inputs)} tensor(s), writes {len(k.outputs)}")
        elif isinstance(k, GemmKernel):
            decisions.append(f"{k.name}: GEMM {k.gemm.describe()} (3xTF32 tensor cores), {len(k.epilogue)} "
                             f"op(s) fused after it, reads {len(k.inputs)} tensor(s), writes {len(k.outputs)}")
        elif isinstance(k, ConvKernel):
            after = f"a row kernel over each pixel's channels ({len(k.rows.nodes)} op(s))" if k.rows else \
                f"{len(k.epilogue)} op(s)"
            decisions.append(f"{k.name}: convolution {k.conv.describe()} (TF32 tensor cores, as cuDNN's), "
                             f"{after} fused after it, reads {len(k.inputs)} tensor(s), "
                             f"writes {len(k.outputs)}")
        elif isinstance(k, ScanKernel):
            decisions.append(f"{k.name}: scan kernel, {k.describe()}, {len(k.prologue)} op(s) fused before it "
                             f"and {len(k.epilogue)} after, reads {len(k.inputs)} tensor(s), writes {len(k.outputs)}")
        else:
            decisions.append(f"{k.name}: {len(k.nodes)} pointwise op(s) over {len(k.shape)}-d "
                             f"{k.nodes[-1].outputs[0].type}, reads {len(k.inputs)} tensor(s), "
                             f"writes {len(k.outputs)}")
    kernel_of = {n: k for k in kernels for n in k.nodes}
    steps = []
    for node in graph.nodes:
        if node in kernel_of:
            if kernel_of[node] not in steps:
                steps.append(kernel_of[node])
        else:
            why = reasons.get(node) or recipe_of(node)
            steps.append(Extern(node, why if isinstance(why, str) and why != "not a row op"
                                else fusible(node, users, live)[1]))
    return Plan(graph, _schedule(steps), decisions)


def _ancestors(graph: Graph) -> dict[Node, set[Node]]:
    anc: dict[Node, set[Node]] = {}
    for node in graph.nodes:
        s: set[Node] = set()
        for v in node.tensor_inputs():
            if v.producer is not None:
                s.add(v.producer)
                s |= anc[v.producer]
        anc[node] = s
    return anc


def _iteration_order(v: Value) -> tuple[int, ...]:
    """Walk the iteration space in the memory order of the kernel's first output (dense, or a
    slice of a dense buffer: its strides positive and distinct)."""
    t = v.type
    big = [t.strides[d] for d in range(t.ndim) if t.shape[d] > 1]
    if not t.is_dense() and not (all(st > 0 for st in big) and len(set(big)) == len(big)):
        return tuple(range(t.ndim))
    # outermost = largest stride; size-1 dims keep their place
    return tuple(sorted(range(t.ndim), key=lambda d: (-t.strides[d] if t.shape[d] > 1 else 0, d))) \
        if any(t.shape[d] > 1 for d in range(t.ndim)) else tuple(range(t.ndim))


def _make_kernel(g: _Group, users, live) -> Kernel:
    members = set(g.nodes)
    inputs: list[Value] = []
    outputs: list[Value] = []
    for node in g.nodes:
        for v in node.tensor_inputs():
            if v.producer not in members and not inline_constant(v) and v not in inputs:
                inputs.append(v)
    for node in g.nodes:
        out = node.outputs[0]
        if out in live or any(u not in members for u in users.get(out, [])):
            outputs.append(out)
    first = outputs[0] if outputs else g.nodes[-1].outputs[0]
    return Kernel("", list(g.nodes), g.shape, _iteration_order(first), inputs, outputs)


def _name_kernels(kernels: list[Kernel]) -> None:
    seen: dict[str, int] = {}
    for k in kernels:
        names = [short_name(n) for n in k.nodes]
        if len(names) > MAX_NAME_OPS:
            names = names[:MAX_NAME_OPS - 1] + [f"and_{len(names) - MAX_NAME_OPS + 1}_more"]
        base = "fused_" + "_".join(names)
        seen[base] = seen.get(base, 0) + 1
        k.name = base if seen[base] == 1 else f"{base}_{seen[base]}"


def _schedule(steps: list) -> list:
    """Topological order of steps (a kernel runs once all it reads is ready), stable."""
    produced_by = {}
    for s in steps:
        for v in (s.node.outputs if isinstance(s, Extern) else s.outputs):
            produced_by[v] = s
    order, done = [], set()
    pending = list(steps)
    while pending:
        for s in pending:
            reads = s.node.tensor_inputs() if isinstance(s, Extern) else s.inputs
            if all(produced_by.get(v) in done or v not in produced_by for v in reads):
                order.append(s)
                done.add(s)
                pending.remove(s)
                break
        else:
            raise RuntimeError("fusion plan has a cycle (a planner bug)")
    return order
