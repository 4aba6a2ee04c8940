"""The op registry: the one place where an ATen op's meaning for code generation lives.

An entry says what kind of op it is and how to write it in C++. Ops without an entry are
run as externs (a boxed ATen call from the generated forward), so coverage never makes a
model fail; the report lists them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

POINTWISE = "pointwise"
ROW = "row"          # reductions and norms: statistics over a row, then pointwise (see rows.py)
WINDOW = "window"    # pooling: each output element reduces a window of its input (see windows.py)
SCAN = "scan"        # cumulative sums/products along one dim (see scans.py)
VIEW = "view"        # index arithmetic without a kernel of its own: flip (see scans.py)
LOWER = "lower"      # rewritten into other registry ops before planning (see ../lower.py)
GEMM = "gemm"        # matrix products: a tensor-core GEMM with the pointwise ops after it (see gemm.py)

# dtypes the generated element code handles; other dtypes (half, complex, ...) stay extern.
KERNEL_DTYPES = {torch.float32, torch.float64, torch.int64, torch.int32, torch.int16,
                 torch.int8, torch.uint8, torch.bool}
FLOAT_DTYPES = {torch.float32, torch.float64}


class Args:
    """What a pointwise entry's `expr` sees: each schema argument by name.

    `a.x` is the C++ text of argument x: a variable already converted to the operand type
    for tensors, a literal of the operand type for numbers. `a.raw("x")` is the Python value
    (None, a number, a string); `a.ctype` is the operand C type, `a.result_ctype`
    the result's.
    """

    def __init__(self, rendered: dict, raw: dict, ctype: str, result_ctype: str):
        self._rendered, self._raw = rendered, raw
        self.ctype, self.result_ctype = ctype, result_ctype

    def __getattr__(self, name):
        try:
            return self._rendered[name]
        except KeyError:
            raise AttributeError(name) from None

    def raw(self, name):
        return self._raw[name]


@dataclass(frozen=True)
class OpDef:
    target: str
    kind: str
    expr: Callable | None           # pointwise: C++ expression of the result (Args -> str);
                                    # row: the recipe (Node -> rows.Recipe or a reason string);
                                    # window: the window (Node -> windows.Window or a reason string)
                                    # scan: the scan (Node -> scans.Scan or a reason string)
                                    # view: the dims it reverses (Node -> tuple)
                                    # gemm: the product (Node -> gemm.Gemm or a reason string)
    operands: str = "out"           # operand type: "out" (result dtype), "promote" (common dtype of
                                    # the inputs, for comparisons), "where", "own" (casts), "bool"
    floats_only: bool = False       # generate only when the operand type is floating point
    when: Callable | None = None    # extra condition on the node (else: extern)
    align: dict | None = None       # operands not broadcast from the right: argument name ->
                                    # the output dim of each of the operand's dims (node -> tuple)
    first_result_only: bool = False # the op has more results; generated when only the first is used
    transcendentals: int = 0        # pointwise: exp/log/tanh-class functions per element (the GEMM
                                    # planner's cost of an epilogue, plan_gemm.MAX_EPILOGUE_MATH)
    row: Callable | None = None     # window ops that are sometimes plain reductions (global
                                    # pooling): their row recipe, or a reason string
    window: Callable | None = None  # convolutions that are sometimes window ops (depthwise):
                                    # their window (windows.Window), or a reason string
    split: Callable | None = None   # norms: the statistics and the pointwise ops applying them to x
                                    # ((Node, lower.Builder, x) -> the op's first output; layout.split_norms)
    lower: Callable | None = None   # an equivalent graph of registry ops, built before planning
                                    # ((Node, lower.Builder) -> the node's outputs, or a reason string);
                                    # kind LOWER: the op's only meaning; others: for some arguments


REGISTRY: dict[str, OpDef] = {}


def register(targets, expr, **kw) -> None:
    if isinstance(targets, str):
        targets = [targets]
    if isinstance(expr, str):
        template = expr
        expr = lambda a, t=template: t.format(a=a)  # noqa: E731
    kind = kw.pop("kind", POINTWISE)
    for t in targets:
        if t in REGISTRY:
            raise ValueError(f"op {t} registered twice")
        REGISTRY[t] = OpDef(t, kind, expr, **kw)


def lookup(target: str) -> OpDef | None:
    return REGISTRY.get(target)


def operand_dims(node, value, out_ndim: int) -> tuple:
    """The output dim each dim of tensor argument `value` runs along (None: size 1 or absent).

    Numpy broadcasting aligns from the right; registry entries may say otherwise (the
    per-channel statistics of batch norm run along dim 1)."""
    entry = lookup(node.target)
    if entry is not None and entry.align:
        for a, v in zip(node.schema.arguments, node.args):
            if v is value and a.name in entry.align:
                dims = entry.align[a.name](node)
                return tuple(d if value.type.shape[j] > 1 else None for j, d in enumerate(dims))
    lead = out_ndim - value.type.ndim
    return tuple(j + lead if value.type.shape[j] > 1 else None for j in range(value.type.ndim))
