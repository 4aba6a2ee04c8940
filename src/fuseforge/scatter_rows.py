"""scatter_rows: a slice_scatter whose rows a generated kernel computes gets them written in place.

slice_scatter(base, src, dim, start, end, step) is base with src in its rows start::step. Run by
ATen it copies base whole, then src into the rows: level1/035's transposed convolution, lowered to
a convolution written into the odd rows of its bias (ops/convs._one_phase), spent 0.150 ms in those
two copies beside the convolution's 0.155 (bench/session32/first). Here the kernel that computes
src writes it straight into its rows of the result (src's strides are those rows'), and only the
other rows are copied from base, after it (wrapper.py). Where src is read by anything else, is a
result of the model, or the planner does not compute it in a kernel that writes its outputs
through their strides (a pointwise or convolution kernel: `missed`), the slice_scatter stays
ATen's. FUSEFORGE_SCATTER_IN_PLACE=0 turns it off.
"""
from __future__ import annotations

import os

from . import ops
from .graph import Graph, TensorType, Value
from .layout import contiguous_strides

SLICE_SCATTER = "aten.slice_scatter.default"


def rows_in_place(graph: Graph) -> dict[str, tuple[Value, TensorType]]:
    """{slice_scatter node name: (its src, src's type before)}, for those whose src a pointwise op
    computes for it alone; src's type takes the strides of its rows in the (contiguous) result."""
    if os.environ.get("FUSEFORGE_SCATTER_IN_PLACE", "1") == "0":
        return {}
    users, outputs = graph.users(), {id(v) for v in graph.outputs}
    out = {}
    for node in graph.nodes:
        if node.target != SLICE_SCATTER:
            continue
        src, y = node.arg("src"), node.outputs[0]
        entry = ops.lookup(src.producer.target) if src.producer is not None else None
        if entry is None or entry.kind != ops.POINTWISE or len(src.producer.outputs) != 1 or \
                id(src) in outputs or users.get(src) != [node] or src.type.dtype != y.type.dtype:
            continue
        if (node.arg("start") or 0) < 0 or (node.arg("end") or 0) < 0 or node.arg("step") < 1 or \
                y.type.strides != result_strides(node):
            continue
        dim, _, _, step = rows_of(node)
        strides = list(y.type.strides)   # (the start is the view's offset: wrapper.py)
        strides[dim] *= step
        out[node.name] = src, src.type
        src.type = TensorType(src.type.shape, tuple(strides), src.type.dtype)
    return out


def result_strides(node) -> tuple[int, ...]:
    """The strides of a slice_scatter's result on a device: its input's where that is dense (ATen
    clones it with its strides), else (an expanded input) contiguous; on the meta device torch 2.11
    gives an expanded input's strides, zeros included (bench/session32/second: buffers allocated
    with those overlapped)."""
    base = node.arg("self").type
    return base.strides if base.is_dense() else contiguous_strides(base.shape)


def missed(plan, scattered: dict) -> set[str]:
    """The slice_scatters of `scattered` whose src no pointwise or convolution kernel (its epilogue
    element by element, not a row function) writes (by name: the plan's graph is a copy)."""
    from .plan import Kernel
    from .plan_conv import ConvKernel
    writes = {v.name for s in plan.steps if type(s) is Kernel or type(s) is ConvKernel and s.rows is None
              for v in s.outputs}
    extern = {e.node.name for e in plan.externs}
    return {name for name, (src, _) in scattered.items() if src.name not in writes or name not in extern}


def mark(plan, scattered: dict) -> None:
    """Each kept slice_scatter's extern step learns its src (wrapper.py renders the rest)."""
    for e in plan.externs:
        if e.node.name in scattered:
            e.scatter_src = scattered[e.node.name][0].name
            dim, start, _, step = rows_of(e.node)
            plan.decisions.append(f"{e.node.name} ({e.node.target}): {e.scatter_src} written in place into rows "
                                  f"{start}::{step} of dim {dim}, the other rows copied from {e.node.arg('self').name}")


def rows_of(node) -> tuple[int, int, int, int]:
    """A slice_scatter's dim, start, end and step, the defaults spelled out (start and end >= 0)."""
    dim = node.arg("dim") % node.outputs[0].type.ndim
    n, end = node.outputs[0].type.shape[dim], node.arg("end")
    return dim, node.arg("start") or 0, n if end is None else min(end, n), node.arg("step")


def other_rows(n: int, start: int, end: int, step: int) -> list[tuple[int, int, int]]:
    """The rows of a dim of n that slice start:end:step leaves out (rows_of's end: at most n), as
    (start, end, step) slices."""
    rows = [(0, start, 1)] if start > 0 else []
    rows += [(start + q, end, step) for q in range(1, step) if start + q < end]
    return rows + ([(end, n, 1)] if end < n else [])
