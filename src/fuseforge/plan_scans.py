"""plan_scans: one kernel per scan (cumsum, cumprod), with the ops around it fused.

A scan kernel walks the lines of the scanned tensor along the scan dim (one line per row of
the launch; plan: a line per thread, warp or block, see codegen/scan.py). Around the scan:
- the prologue: the pointwise group that computes the scanned input, evaluated per element
  as it is loaded (never stored), optionally behind a flip (the loads then read reversed
  coordinates);
- the epilogue: the pointwise group that consumes the scan's result over its shape,
  optionally behind a flip (then it runs, loads and stores at reversed coordinates).
So flip → cumsum → flip (a suffix sum) is one kernel that reads and writes each element once,
and so is an exclusive scan written as cat([identity, x[..., :-1]]) → scan: its loads read x
one position back and the identity at the first (the cat was a copy of its own: level1/092).
Groups are taken only when nothing else needs their values of another shape and the fused set
reads nothing that depends on itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ops
from .graph import Node, Value
from .ops.scans import Scan
from .plan_fusion import FusedOps, absorb_epilogue, absorb_prologue, each_spec, entry_spec, external_inputs

IN, SCANNED, OUT = "in", "scan", "out"     # the coordinates a value lives at (in/out: flipped)


@dataclass(eq=False)
class ScanKernel(FusedOps):
    name: str
    nodes: list[Node]            # prologue, input flip, the scan, output flip, epilogue (graph order)
    node: Node                   # the scan op
    scan: Scan
    prologue: list[Node]         # pointwise, at IN coordinates
    epilogue: list[Node]         # pointwise, at OUT coordinates
    in_flip: tuple[int, ...]     # dims the loads reverse (a flip between prologue and scan)
    out_flip: tuple[int, ...]    # dims the epilogue and its stores reverse
    inputs: list[Value]
    outputs: list[Value]
    side: dict                   # output Value -> the coordinates it is stored at: SCANNED | OUT
    source: Value                # what the loads compute: the scan's input, or the flipped value
    result: Value                # what the epilogue reads: the scan's result, or its flip
    shifted: bool = False        # the loads read one position back along the scan dim (identity at 0)

    @property
    def length(self) -> int:
        return self.shape[self.scan.dim]

    @property
    def rows(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n // max(self.length, 1)

    def describe(self) -> str:
        flips = "".join(f", {side} reversed along {list(d)}" for side, d in
                        (("loads", self.in_flip), ("stores", self.out_flip)) if d)
        shift = ", loads one position back (exclusive)" if self.shifted else ""
        return f"{self.scan.describe()}, {self.rows} line(s) of {self.length}{flips}{shift}"


def scan_of(node: Node) -> Scan | str:
    return entry_spec(node, ops.SCAN, "scan op")


def _flip(node: Node | None) -> tuple[int, ...] | None:
    entry = None if node is None else ops.lookup(node.target)
    return entry.expr(node) if entry is not None and entry.kind == ops.VIEW else None


def _exclusive(x: Value, spec: Scan) -> tuple[Value, list[Node]] | None:
    """x = cat([identity, src[..., :-1]]) along the scan dim, identity the zeros of a cumsum:
    (src, the nodes that build x: the cat, the slice, the zeros and the slice they copy the shape of)."""
    cat, dim, rank = x.producer, spec.dim, len(x.type.shape)
    if spec.combine != "sum" or cat is None or cat.target != "aten.cat.default" or cat.arg("dim") % rank != dim:
        return None
    parts = cat.arg("tensors")
    if len(parts) != 2 or any(p.producer is None for p in parts):
        return None
    zeros, cut = parts[0].producer, parts[1].producer
    if zeros.target != "aten.zeros_like.default" or parts[0].type.shape[dim] != 1 or \
            cut.target != "aten.slice.Tensor" or cut.arg("dim") % rank != dim:
        return None
    src = cut.arg("self")
    length = src.type.shape[dim]
    end = cut.arg("end")
    end = length if end is None else min(end + length if end < 0 else end, length)
    if cut.arg("start") not in (None, 0) or cut.arg("step") not in (None, 1) or end != length - 1 or \
            src.type.shape != x.type.shape or src.type.dtype != x.type.dtype or parts[0].type.dtype != x.type.dtype:
        return None
    built = [cat, cut, zeros]
    shape_of = zeros.arg("self").producer
    if shape_of is not None and shape_of.target == "aten.slice.Tensor":
        built.append(shape_of)
    return src, built


def form_scan_kernels(graph, groups, group_of, closed, users, live, decisions,
                      why_extern: dict) -> list[ScanKernel]:
    """A scan kernel for every scan op; the pointwise groups and flips it absorbs are removed
    from `groups` (flips are not in any group: left alone they run as externs)."""
    kernels = []

    def needed_outside(v: Value, members) -> bool:
        return v in live or any(u not in members for u in users.get(v, []))

    for node, spec in each_spec(graph, ops.SCAN, scan_of, why_extern, decisions):
        x, y = spec.x, node.outputs[0]
        frame = y.type.shape
        members = {node}

        # --- the load side: [pointwise group] [→ flip] [→ cat with the identity: exclusive] → scan
        shifted, exclusive = False, _exclusive(x, spec)
        if exclusive is not None:
            built = set(exclusive[1])
            if not any(needed_outside(n.outputs[0], members | built) for n in built):
                x, shifted = exclusive[0], True
                members |= built
                decisions.append(f"{node.name}: exclusive (cat with zeros) read one position back")
        in_flip, src = (), x
        f = x.producer
        if not shifted and _flip(f) is not None and f.outputs[0].type.shape == frame and \
                not needed_outside(x, members | {f}):
            in_flip, src = _flip(f), f.arg("self")
            members.add(f)
        prologue = absorb_prologue(src, members, groups, group_of, closed, users, live)
        if prologue:
            decisions.append(f"{node.name}: pointwise group {prologue[0].name}… fused into its loads")

        # --- the store side: scan [→ flip] [→ pointwise group]
        out_flip, tail = (), y
        ys = users.get(y, [])
        if len(ys) == 1 and y not in live and _flip(ys[0]) is not None:
            out_flip, tail = _flip(ys[0]), ys[0].outputs[0]
            members.add(ys[0])
        epilogue = absorb_epilogue(tail, members, groups, group_of, closed, users, live)
        if epilogue:
            decisions.append(f"{node.name}: pointwise group {epilogue[0].name}… fused into its stores")

        position = {n: i for i, n in enumerate(graph.nodes)}
        nodes = sorted(members, key=position.__getitem__)
        inputs = external_inputs(nodes, members)
        outputs, side = [], {}
        for n in nodes:
            v = n.outputs[0]
            if needed_outside(v, members):
                outputs.append(v)
                side[v] = SCANNED if n is node else OUT   # prologue values are never needed outside
        kernels.append(ScanKernel("", nodes, node, spec, prologue, epilogue, in_flip, out_flip,
                                  inputs, outputs, side, src, tail, shifted))
    return kernels
