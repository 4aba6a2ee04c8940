"""Scans (cumulative sums and products) and flip, the view that reverses indices around them.

A scan entry turns the node into a Scan: the scanned tensor, the dim, and how two partial
results combine (sum or product, each with its identity). The result has the input's shape:
element k of a line along `dim` combines elements 0..k of that line, in float32 for float32
(eager's CUDA kernel does the same; its CPU kernel accumulates in double, so a float32 product
that leaves float range on the way and comes back differs there).

flip is a view: an entry says which dims it reverses, and a kernel that reads or writes through
it indexes the reversed coordinates (n - 1 - c) instead of copying (plan_scans.py uses this on
either side of a scan: reversed and suffix scans). Elsewhere flip stays an extern.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..graph import Node, Value
from .registry import FLOAT_DTYPES, SCAN, VIEW, register


@dataclass
class Scan:
    x: Value
    dim: int                          # non-negative
    combine: str                      # "sum" | "prod"

    @property
    def identity(self) -> str:
        return {"sum": "0", "prod": "1"}[self.combine]

    def op(self, a: str, b: str) -> str:
        """C++ text of a partial result a followed by b."""
        return f"{a} {'+' if self.combine == 'sum' else '*'} {b}"

    def describe(self) -> str:
        return f"cumulative {self.combine} along dim {self.dim}"


def _scan(node: Node, combine: str):
    x = node.arg("self")
    if x.type.dtype not in FLOAT_DTYPES:
        return f"{x.type.dtype} input (float32/float64 scans are generated)"
    dtype = node.arg("dtype")
    if dtype is not None and dtype != x.type.dtype:
        return "a dtype argument that changes the accumulation type"
    if x.type.ndim == 0:
        return "a 0-d input (a copy)"
    return Scan(x, node.arg("dim") % x.type.ndim, combine)


def _flip(node: Node) -> tuple[int, ...]:
    """The dims flip reverses (non-negative, sorted)."""
    return tuple(sorted({d % max(node.arg("self").type.ndim, 1) for d in node.arg("dims")}))


register("aten.cumsum.default", lambda n: _scan(n, "sum"), kind=SCAN)
register("aten.cumprod.default", lambda n: _scan(n, "prod"), kind=SCAN)
register("aten.flip.default", _flip, kind=VIEW)
