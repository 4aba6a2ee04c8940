"""Row ops: reductions and norms, each written as a recipe over the rows of a tensor.

A recipe says which tensor `x` is reduced, over which axes of an iteration space (x's shape,
or a view of it for group norm), and what to compute per row and per element:
- stages fold an element expression into an accumulator (sum, prod, max, min, argmax,
  argmin, welford), one after the other (softmax: the max, then the sum of exp(x - max));
- row definitions are per-row values computed from finished stages (mean, rstd);
- results give each output of the op: an element expression (same shape as x: softmax,
  layer norm) or a row expression (a reduced value).
Expressions are C++ templates over {x} (the element), {T} (the accumulator type), {L} (the
row length), stage names ({s0}: an accumulator struct, fields .v/.i/.mean/.m2/.n), row
definitions and operand names (tensors besides x, loaded at the current position).
Accumulation is in float for float32 and double for float64; eager's formulas are followed.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field

import torch

from ..graph import Node, Value
from .registry import FLOAT_DTYPES, ROW, register


@dataclass
class Stage:
    name: str
    combine: str          # sum | prod | max | min | argmax | argmin | welford | pick
    elem: str             # template of the value folded in ({x}, operands, {T}, {L}; {i}: the
                          # element's index within the row, row-major over the reduced axes)
    at: str = ""          # pick: the index (a template over row operands) of the one element
                          # whose value the stage takes; T(0) where no element has it. The same
                          # as a sum of ({i} == at ? elem : 0), which the renderer may fold instead.


@dataclass
class RowDef:
    name: str
    expr: str             # template over stages and earlier row definitions


@dataclass
class Result:
    phase: str                              # "elem" or "row"
    expr: str
    dims: tuple = ()                        # row results: the space dim of each output dim (None: size 1)


@dataclass
class Operand:
    value: Value
    dims: tuple                             # the space dim of each of the value's dims


@dataclass
class Recipe:
    x: Value
    space: tuple[int, ...]
    axes: tuple[int, ...]
    steps: list                             # Stage | RowDef, in order
    results: dict[int, Result]              # by output index; an output not listed is not generated
    operands: dict[str, Operand] = field(default_factory=dict)

    @property
    def length(self) -> int:
        n = 1
        for d in self.axes:
            n *= self.space[d]
        return n


def register_row(targets, recipe) -> None:
    register(targets, recipe, kind=ROW)


# --- helpers ------------------------------------------------------------------------------

def _axes(dim, ndim: int) -> tuple[int, ...]:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return tuple(sorted({d % ndim if ndim else 0 for d in dims}))


def _row_dims(ndim: int, axes, keepdim: bool) -> tuple:
    if keepdim:
        return tuple(None if d in axes else d for d in range(ndim))
    return tuple(d for d in range(ndim) if d not in axes)


def _float_input(node: Node, x: Value, dtype=None) -> str | None:
    if x.type.dtype not in FLOAT_DTYPES:
        return f"{x.type.dtype} input (float32/float64 reductions are generated)"
    if dtype is not None and dtype != x.type.dtype:
        return "a dtype argument that changes the accumulation type"
    return None


def _reduction(node: Node, steps, result: str, *, dim_arg="dim", dtype_arg=None, extra=None):
    """A plain reduction of `self` over `dim` (all dims when absent) to one row result."""
    x = node.arg("self")
    names = [a.name for a in node.schema.arguments]
    why = _float_input(node, x, node.arg(dtype_arg) if dtype_arg in names else None)
    if why:
        return why
    dim = node.arg(dim_arg) if dim_arg in names else None
    keepdim = node.arg("keepdim") if "keepdim" in names else False
    axes = _axes(dim, x.type.ndim)
    dims = _row_dims(x.type.ndim, axes, keepdim)
    results = {0: Result("row", result, dims)}
    if extra:
        results.update({k: Result("row", e, dims) for k, e in extra.items()})
    return Recipe(x, x.type.shape, axes, steps, results)


# --- reductions ---------------------------------------------------------------------------

register_row(["aten.sum.dim_IntList", "aten.sum.default"],
             lambda n: _reduction(n, [Stage("s0", "sum", "{x}")], "{s0}.v", dtype_arg="dtype"))
register_row(["aten.mean.dim", "aten.mean.default"],
             lambda n: _reduction(n, [Stage("s0", "sum", "{x}")], "{s0}.v / {L}", dtype_arg="dtype"))
register_row(["aten.prod.dim_int", "aten.prod.default"],
             lambda n: _reduction(n, [Stage("s0", "prod", "{x}")], "{s0}.v", dtype_arg="dtype"))
register_row(["aten.amax.default", "aten.max.default"], lambda n: _reduction(n, [Stage("s0", "max", "{x}")], "{s0}.v"))
register_row(["aten.amin.default", "aten.min.default"], lambda n: _reduction(n, [Stage("s0", "min", "{x}")], "{s0}.v"))
register_row("aten.max.dim", lambda n: _reduction(n, [Stage("s0", "argmax", "{x}")], "{s0}.v",
                                                  extra={1: "{s0}.i"}))
register_row("aten.min.dim", lambda n: _reduction(n, [Stage("s0", "argmin", "{x}")], "{s0}.v",
                                                  extra={1: "{s0}.i"}))
register_row("aten.argmax.default", lambda n: _reduction(n, [Stage("s0", "argmax", "{x}")], "{s0}.i"))
register_row("aten.argmin.default", lambda n: _reduction(n, [Stage("s0", "argmin", "{x}")], "{s0}.i"))

# logsumexp as eager: an infinite max is replaced by 0 before it is subtracted
register_row("aten.logsumexp.default", lambda n: _reduction(
    n, [Stage("s0", "max", "{x}"), RowDef("m", "(ff_abs({s0}.v) == {T}(INFINITY) ? {T}(0) : {s0}.v)"),
        Stage("s1", "sum", "ff_exp({x} - {m})")], "ff_log({s1}.v) + {m}"))


def _var(node: Node, root: bool, with_mean: bool = False):
    names = [a.name for a in node.schema.arguments]
    if "correction" in names:
        c = node.arg("correction")
        correction = 1 if c is None else c
    else:
        correction = 1 if node.arg("unbiased") else 0
    v = "({s0}.m2 / ff_max({T}(0), {L} - {T}(%r)))" % float(correction)
    return _reduction(node, [Stage("s0", "welford", "{x}")], f"ff_sqrt({v})" if root else v,
                      extra={1: "{s0}.mean"} if with_mean else None)


register_row(["aten.var.dim", "aten.var.correction"], lambda n: _var(n, False))
register_row(["aten.std.dim", "aten.std.correction"], lambda n: _var(n, True))
register_row("aten.var_mean.correction", lambda n: _var(n, False, with_mean=True))


def _vector_norm(node: Node):
    p = node.arg("ord")
    p = float(p)
    if p == 2:
        steps, res = [Stage("s0", "sum", "{x} * {x}")], "ff_sqrt({s0}.v)"
    elif p == 1:
        steps, res = [Stage("s0", "sum", "ff_abs({x})")], "{s0}.v"
    elif p == float("inf"):
        steps, res = [Stage("s0", "max", "ff_abs({x})")], "{s0}.v"
    elif p == float("-inf"):
        steps, res = [Stage("s0", "min", "ff_abs({x})")], "{s0}.v"
    elif p == 0:
        steps, res = [Stage("s0", "sum", "{T}({x} != {T}(0))")], "{s0}.v"
    else:
        steps = [Stage("s0", "sum", "ff_pow(ff_abs({x}), {T}(%r))" % p)]
        res = "ff_pow({s0}.v, {T}(1) / {T}(%r))" % p
    return _reduction(node, steps, res, dtype_arg="dtype")


register_row("aten.linalg_vector_norm.default", _vector_norm)


# --- softmax ------------------------------------------------------------------------------

def _softmax(node: Node, log: bool):
    x = node.arg("self")
    names = [a.name for a in node.schema.arguments]
    if "half_to_float" in names and node.arg("half_to_float"):
        return "half_to_float"
    why = _float_input(node, x, node.arg("dtype") if "dtype" in names else None)
    if why:
        return why
    axes = _axes(node.arg("dim"), x.type.ndim)
    steps = [Stage("s0", "max", "{x}"), Stage("s1", "sum", "ff_exp({x} - {s0}.v)")]
    expr = "{x} - {s0}.v - ff_log({s1}.v)" if log else "ff_exp({x} - {s0}.v) / {s1}.v"
    return Recipe(x, x.type.shape, axes, steps, {0: Result("elem", expr)})


SOFTMAXES = ["aten.softmax.int", "aten._softmax.default"]
register_row(SOFTMAXES, lambda n: _softmax(n, False))
register_row(["aten.log_softmax.int", "aten._log_softmax.default"], lambda n: _softmax(n, True))


# --- normalizations -----------------------------------------------------------------------

def _affine(operands: dict, expr: str) -> str:
    if "w" in operands:
        expr = f"{expr} * {{w}}"
    if "b" in operands:
        expr = f"{expr} + {{b}}"
    return expr


def _moments(eps: float):
    return [Stage("s0", "welford", "{x}"), RowDef("mean", "{s0}.mean"),
            RowDef("rstd", "ff_rsqrt({s0}.m2 / {L} + {T}(%r))" % float(eps))]


def _standardize(node: Node, x: Value, space, axes, param_dims) -> Recipe:
    """(x - mean) * rstd over the axes, then the optional weight and bias along param_dims."""
    operands = {name: Operand(node.arg(arg), param_dims) for name, arg in (("w", "weight"), ("b", "bias"))
                if node.arg(arg) is not None}
    expr = _affine(operands, "({x} - {mean}) * {rstd}")
    return Recipe(x, space, axes, _moments(node.arg("eps")), {0: Result("elem", expr)}, operands)


def _layer_norm(node: Node):
    x = node.arg("input")
    why = _float_input(node, x)
    if why:
        return why
    k = len(node.arg("normalized_shape"))
    nd = x.type.ndim
    axes = tuple(range(nd - k, nd))
    return _standardize(node, x, x.type.shape, axes, axes)


def _rms_norm(node: Node):
    x = node.arg("input")
    why = _float_input(node, x)
    if why:
        return why
    eps = node.arg("eps")
    if eps is None:
        eps = torch.finfo(x.type.dtype).eps
    k = len(node.arg("normalized_shape"))
    nd = x.type.ndim
    axes = tuple(range(nd - k, nd))
    operands = {"w": Operand(node.arg("weight"), axes)} if node.arg("weight") is not None else {}
    steps = [Stage("s0", "sum", "{x} * {x}"), RowDef("rstd", "ff_rsqrt({s0}.v / {L} + {T}(%r))" % float(eps))]
    return Recipe(x, x.type.shape, axes, steps, {0: Result("elem", _affine(operands, "{x} * {rstd}"))}, operands)


def _group_norm(node: Node):
    x = node.arg("input")
    why = _float_input(node, x)
    if why:
        return why
    shape = x.type.shape
    groups = node.arg("num_groups")
    n, c = shape[0], shape[1]
    hw = 1
    for s in shape[2:]:
        hw *= s
    space = (n, groups, c // groups, hw)   # a view of x: rows are (sample, group)
    return _standardize(node, x, space, (2, 3), ((1, 2),))   # channel = (group, channel in group)


def _native_group_norm(node: Node):
    """group_norm's statistics too: its mean and rstd per (sample, group), [N, G]."""
    x = node.arg("input")
    why = _float_input(node, x)
    if why:
        return why
    n, c, hw, groups = node.arg("N"), node.arg("C"), node.arg("HxW"), node.arg("group")
    if (n, c * hw) != (x.type.shape[0], x.type.numel // max(1, x.type.shape[0])):
        return "N, C, HxW that are not the input's shape"
    recipe = _standardize(node, x, (n, groups, c // groups, hw), (2, 3), ((1, 2),))
    recipe.results.update({1: Result("row", "{mean}", (0, 1)), 2: Result("row", "{rstd}", (0, 1))})
    return recipe


def _instance_norm(node: Node):
    x = node.arg("input")
    why = _float_input(node, x)
    if why:
        return why
    if not node.arg("use_input_stats") or node.arg("running_mean") is not None:
        return "running statistics (track_running_stats=True)"
    return _standardize(node, x, x.type.shape, tuple(range(2, x.type.ndim)), (1,))


def _batch_norm_train(node: Node):
    """Batch statistics per channel; the running statistics updated as eager does."""
    x = node.arg("input")
    why = _float_input(node, x)
    if why:
        return why
    if not node.arg("training"):
        return "training=False"
    axes = tuple(d for d in range(x.type.ndim) if d != 1)
    operands = {name: Operand(node.arg(arg), (1,)) for name, arg in
                (("w", "weight"), ("b", "bias"), ("rm", "running_mean"), ("rv", "running_var"))
                if node.arg(arg) is not None}
    if "rm" not in operands or "rv" not in operands:
        return "no running statistics"
    mom = float(node.arg("momentum"))
    steps = _moments(node.arg("eps"))
    per_channel = (1,)
    results = {
        0: Result("elem", _affine(operands, "({x} - {mean}) * {rstd}")),
        1: Result("row", "{mean}", per_channel),
        2: Result("row", "{rstd}", per_channel),
        3: Result("row", "{T}(%r) * {mean} + {T}(%r) * {rm}" % (mom, 1 - mom), per_channel),
        4: Result("row", "{T}(%r) * ({s0}.m2 / ff_max({T}(0), {L} - {T}(1))) + {T}(%r) * {rv}"
                  % (mom, 1 - mom), per_channel),
    }
    return Recipe(x, x.type.shape, axes, steps, results, operands)


A = torch.ops.aten


def _applied(node: Node, b, x: Value, mean: Value, rstd: Value) -> Value:
    """The recipes' element result as ATen ops: (x - mean) * rstd, then the weight and the
    bias per channel (mean and rstd already shaped to broadcast)."""
    per_channel = [x.type.shape[1]] + [1] * (x.type.ndim - 2)
    y = b(A.mul.Tensor, b(A.sub.Tensor, x, mean), rstd)
    for name, op in (("weight", A.mul.Tensor), ("bias", A.add.Tensor)):
        if isinstance(node.arg(name), Value):
            y = b(op, y, b(A.view.default, node.arg(name), per_channel))
    return y


def _split_batch_norm(node: Node, b, x: Value) -> Value:
    """The node itself keeps the statistics (mean, rstd, the running statistics)."""
    per_channel = [x.type.shape[1]] + [1] * (x.type.ndim - 2)
    mean, rstd = (b(A.view.default, t, per_channel) for t in node.outputs[1:3])
    return _applied(node, b, x, mean, rstd)


def _split_group_norm(node: Node, b, x: Value) -> Value:
    """native_group_norm's mean and rstd per (sample, group) (its own row kernel, that only
    reduces), each repeated for the channels of its group: [N, C, 1, ...]."""
    inp = node.arg("input")
    n, c, rest = inp.type.shape[0], inp.type.shape[1], list(inp.type.shape[2:])
    groups = node.arg("num_groups")
    _, mean, rstd = b(A.native_group_norm.default, inp, None, None, n, c, math.prod(rest), groups,
                      float(node.arg("eps")))

    def per_channel(t: Value) -> Value:
        t = b(A.expand.default, b(A.view.default, t, [n, groups, 1]), [n, groups, c // groups])
        return b(A.reshape.default, t, [n, c] + [1] * len(rest))
    return _applied(node, b, x, per_channel(mean), per_channel(rstd))


def softmax_statistics(node: Node, b) -> tuple[Value, Value]:
    """A softmax's statistics as ATen ops, the recipe's arithmetic: m = amax(input, dim) and
    s = sum(exp(input - m), dim), kept dims (lower.split_reduced_softmax)."""
    inp, dim = node.arg("self"), node.arg("dim")
    m = b(A.amax.default, inp, [dim], True)
    return m, b(A.sum.dim_IntList, b(A.exp.default, b(A.sub.Tensor, inp, m)), [dim], True)


def softmax_applied(b, x: Value, m: Value, s: Value) -> Value:
    """The softmax of x from its statistics: exp(x - m) / s, as the recipe's element result."""
    return b(A.div.Tensor, b(A.exp.default, b(A.sub.Tensor, x, m)), s)


def _split_instance_norm(node: Node, b, x: Value) -> Value:
    """var_mean per (sample, channel), rstd computed per row as the recipe does."""
    dims = list(range(2, x.type.ndim))
    var, mean = b(A.var_mean.correction, node.arg("input"), dims, correction=0)
    rstd = b(A.rsqrt.default, b(A.add.Tensor, var, float(node.arg("eps"))))
    mean, rstd = (b(A.view.default, t, list(t.type.shape) + [1] * len(dims)) for t in (mean, rstd))
    return _applied(node, b, x, mean, rstd)


register_row("aten.layer_norm.default", _layer_norm)
register_row("aten.rms_norm.default", _rms_norm)
register("aten.group_norm.default", _group_norm, kind=ROW, split=_split_group_norm)
register_row("aten.native_group_norm.default", _native_group_norm)
register("aten.instance_norm.default", _instance_norm, kind=ROW, split=_split_instance_norm)
register("aten._native_batch_norm_legit_functional.default", _batch_norm_train, kind=ROW, split=_split_batch_norm)
