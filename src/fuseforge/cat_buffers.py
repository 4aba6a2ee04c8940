"""cat_buffers: cats whose pieces begin a later cat's pieces share that cat's memory.

A DenseNet block concatenates every feature before each layer: cat(x), cat(x, y1), ...,
cat(x, y1, .., y4). As separate cats each copies all its pieces again (level3/009: 5 cats, 640
channel planes copied). Along dim 1 of a contiguous tensor, cat(x, y1) is the first channels of
cat(x, y1, y2): a view of its buffer. So the last cat's buffer is allocated when the forward
starts, each piece is copied into its slice once, when the first cat that holds it is reached, and
the earlier cats are views of the buffer's first channels (the strides of the last cat), which
the kernels reading them index directly. The wrapper (wrapper.py) renders it from `families`.
Measured on an H100 (bench/session13/ab_cat_views_h100.json): level3/009 0.904 -> 0.793 ms. A
channels-last convolution's output copied into its slice by ATen's copy_ (no conversion first)
measured slower: 0.830 (ab_cat_direct_h100.json). Converted back to NCHW by our tile kernel
straight into its slice (`converted_into_slices`), the conversion is the copy: one pass instead
of two.

Left alone: cats read by a convolution (layout.py may write those channels-last) or a scan (which
may fuse them), and families
whose earlier cats are results of the model or are read by anything but registry ops that compute
(a view of a view, returned, would change its strides) and the family's own cats.
FUSEFORGE_CAT_VIEWS=0 turns it off.
"""
from __future__ import annotations

import os

from . import ops
from .graph import Graph, Node, TensorType
from .layout import contiguous_strides

COMPUTE = {ops.POINTWISE, ops.ROW, ops.WINDOW, ops.SCAN, ops.GEMM}


def _cat_along_1(node: Node) -> bool:
    if node.target != "aten.cat.default":
        return False
    y = node.outputs[0]
    return y.type.ndim >= 2 and node.arg("dim") % y.type.ndim == 1 and y.type.strides == contiguous_strides(y.type.shape)


def families(graph: Graph, decisions: list[str]) -> dict[str, str]:
    """{cat node name: the name of the last cat of its family, whose buffer it is a view of (itself
    for the last)}; the earlier cats' types take the buffer's strides."""
    if os.environ.get("FUSEFORGE_CAT_VIEWS", "1") == "0":
        return {}
    users, outputs = graph.users(), {id(v) for v in graph.outputs}
    cats = [n for n in graph.nodes if _cat_along_1(n) and   # (a scan may fuse its cat: plan_scans.py)
            not any("conv" in u.target or getattr(ops.lookup(u.target), "kind", None) == ops.SCAN
                    for u in users.get(n.outputs[0], []))]
    pieces = {n: [id(p) for p in n.arg("tensors")] for n in cats}
    out: dict[str, str] = {}
    for last in sorted(cats, key=lambda n: -len(pieces[n])):
        if last.name in out:
            continue
        members = [n for n in cats if n is not last and n.name not in out and
                   pieces[last][:len(pieces[n])] == pieces[n]]
        family = set(members) | {last}
        if not members or any(id(n.outputs[0]) in outputs or
                              any(u not in family and getattr(ops.lookup(u.target), "kind", None) not in COMPUTE
                                  for u in users.get(n.outputs[0], []))
                              for n in members):
            continue
        strides = contiguous_strides(last.outputs[0].type.shape)
        for n in members:
            y = n.outputs[0]
            y.type = TensorType(y.type.shape, strides, y.type.dtype)
            out[n.name] = last.name
        out[last.name] = last.name
        decisions.append(f"{', '.join(n.name for n in members)} (aten.cat.default): views of the first channels of "
                         f"{last.name}'s buffer, each piece copied into it once")
    return out


def converted_into_slices(plan) -> None:
    """A convolution run channels-last whose output is converted back to NCHW (layout.py) only for
    cats sharing one buffer is converted straight into its slice of the buffer, and the cats copy
    it no more (level3/009: four convolutions, each output read and written once less)."""
    if os.environ.get("FUSEFORGE_CAT_INTO", "1") == "0":
        return
    users, outputs = plan.graph.users(), {id(v) for v in plan.graph.outputs}
    steps = {e.node: e for e in plan.externs}
    for last in plan.externs:
        if last.cat_buffer != last.node.name:
            continue
        family = {e.node for e in plan.externs if e.cat_buffer == last.node.name}
        pieces, off = last.node.arg("tensors"), 0
        for x in pieces:
            step = steps.get(x.producer)
            if step is not None and step.to_nchw and x.list_index is None and len(step.node.outputs) == 1 and \
                    sum(p is x for p in pieces) == 1 and id(x) not in outputs and \
                    all(u in family for u in users.get(x, [])):
                step.into_slice = (last.node.name, off)
                plan.decisions.append(f"{step.node.name} ({step.node.target}): converted back to NCHW straight "
                                      f"into channels {off}..{off + x.type.shape[1] - 1} of {last.node.name}'s buffer")
            off += x.type.shape[1]
