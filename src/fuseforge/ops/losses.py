"""Losses as row recipes: an element-wise term of input and target, summed over every element
(reduction 'sum') or averaged (reduction 'mean'), with eager's formulas. Few rows of many
elements: the row planner splits them over blocks. Reduction 'none' is element-wise and stays
an extern until it is generated as a pointwise op. cosine_similarity reduces one dim.

Cross entropy, nll_loss with a reduction and triplet margin loss reduce twice (a statistic per
row, then over the rows): their entries lower them to per-row ops and a reduction over the
rows, two row kernels.
"""
from __future__ import annotations

import torch

from ..codegen.cpp import literal
from ..graph import Node, Value
from .registry import LOWER, ROW, register
from .rows import Operand, Recipe, Result, Stage, _axes, _float_input, _row_dims, register_row

NONE, MEAN, SUM = 0, 1, 2   # at::Reduction


def _pair(node: Node, first: str, second: str):
    """The two float tensors a loss compares, or why they are not generated."""
    x, y = node.arg(first), node.arg(second)
    why = _float_input(node, x)
    if why:
        return why
    if y.type.shape != x.type.shape or y.type.dtype != x.type.dtype:
        return f"{second} of another shape or dtype than {first} (broadcast first)"
    return x, y


def _loss(node: Node, term: str):
    """`term`: C++ template over {x} (input), {t} (target) and {T}."""
    pair = _pair(node, "self", "target")
    if isinstance(pair, str):
        return pair
    x, t = pair
    reduction = node.arg("reduction")
    if reduction not in (MEAN, SUM):
        return "reduction='none' (element-wise: not a row op)"
    axes = tuple(range(x.type.ndim))
    result = "{s0}.v / {L}" if reduction == MEAN else "{s0}.v"
    return Recipe(x, x.type.shape, axes, [Stage("s0", "sum", term)], {0: Result("row", result, ())},
                  {"t": Operand(t, axes)})


def _smooth_l1(node: Node):
    beta = float(node.arg("beta"))
    if beta == 0:                        # eager calls l1_loss then
        return _loss(node, "ff_abs({x} - {t})")
    b = repr(beta)
    return _loss(node, f"(ff_abs({{x}} - {{t}}) < {{T}}({b}) ? {{T}}(0.5) * ({{x}} - {{t}}) * ({{x}} - {{t}}) / {{T}}({b}) "
                       f": ff_abs({{x}} - {{t}}) - {{T}}({0.5 * beta!r}))")


def _huber(node: Node):
    d = repr(float(node.arg("delta")))
    return _loss(node, f"(ff_abs({{x}} - {{t}}) < {{T}}({d}) ? {{T}}(0.5) * ({{x}} - {{t}}) * ({{x}} - {{t}}) "
                       f": {{T}}({d}) * (ff_abs({{x}} - {{t}}) - {{T}}(0.5) * {{T}}({d})))")


def _kl_div(node: Node):
    if node.arg("log_target"):
        return _loss(node, "ff_exp({t}) * ({t} - {x})")
    # xlogy(t, t) - t * x: 0 where t == 0, NaN stays NaN
    return _loss(node, "(({t} == {T}(0) ? {T}(0) : {t} * ff_log({t})) - {t} * {x})")


def _hinge(node: Node):
    m = repr(float(node.arg("margin")))
    return _loss(node, f"(({{t}} != {{T}}(1) ? ff_max({{T}}({m}) - {{x}}, {{T}}(0)) : {{T}}(0)) "
                       f"+ ({{t}} != {{T}}(-1) ? {{x}} : {{T}}(0)))")


def _cosine_similarity(node: Node):
    """sum(x1·x2) / sqrt(max(sum(x1²), eps²) · max(sum(x2²), eps²)) over `dim`, as eager."""
    pair = _pair(node, "x1", "x2")
    if isinstance(pair, str):
        return pair
    x, y = pair
    axes = _axes(node.arg("dim"), x.type.ndim)
    eps2 = repr(float(node.arg("eps")) ** 2)
    steps = [Stage("s0", "sum", "{x} * {x}"), Stage("s1", "sum", "{y} * {y}"), Stage("s2", "sum", "{x} * {y}")]
    result = f"{{s2}}.v * ff_rsqrt(ff_max({{s0}}.v, {{T}}({eps2})) * ff_max({{s1}}.v, {{T}}({eps2})))"
    return Recipe(x, x.type.shape, axes, steps, {0: Result("row", result, _row_dims(x.type.ndim, axes, False))},
                  {"y": Operand(y, tuple(range(x.type.ndim)))})


register_row("aten.mse_loss.default", lambda n: _loss(n, "({x} - {t}) * ({x} - {t})"))
register_row("aten.l1_loss.default", lambda n: _loss(n, "ff_abs({x} - {t})"))
register_row("aten.smooth_l1_loss.default", _smooth_l1)
register_row("aten.huber_loss.default", _huber)
register_row("aten.kl_div.default", _kl_div)
register_row("aten.hinge_embedding_loss.default", _hinge)
register_row("aten.cosine_similarity.default", _cosine_similarity)


# --- losses that reduce twice: per row, then over the rows (lowered, see ../lower.py) -------

A = torch.ops.aten


def _class_input(node: Node, x: Value) -> str | None:
    """Why nll_loss / cross_entropy of these logits is not generated, or None."""
    return _float_input(node, x) or ("class weights" if node.arg("weight") is not None else None)


def _nll_rows(node: Node):
    """nll_loss with reduction 'none': -x[target] per row of the class dim (0 where the target is
    ignore_index): a pick stage, the value of x at the target's index."""
    x, t = node.arg("self"), node.arg("target")
    why = _class_input(node, x)
    if why:
        return why
    if node.arg("reduction") != NONE:
        return "reduction over the rows (lowered to reduction='none' and a sum)"
    if t.type.dtype != torch.int64:
        return f"{t.type.dtype} targets (int64 class indices are generated)"
    cd = 0 if x.type.ndim == 1 else 1
    kept = _row_dims(x.type.ndim, (cd,), False)
    ig = literal(node.arg("ignore_index"), torch.int64)
    return Recipe(x, x.type.shape, (cd,), [Stage("s0", "pick", "{x}", at="{t}")],
                  {0: Result("row", f"({{t}} == {ig} ? {{T}}(0) : -{{s0}}.v)", kept)},
                  {"t": Operand(t, kept)})


def _valid_count(b, t: Value, ignore_index, dtype):
    """The number of targets that are not ignore_index, as `dtype`."""
    return b(A.sum.default, b(A._to_copy.default, b(A.ne.Scalar, t, ignore_index), dtype=dtype))


def _reduce_rows(b, per: Value, reduction: int, count=None):
    if reduction == NONE:
        return per
    total = b(A.sum.default, per)
    if reduction == SUM:
        return total
    return b(A.div.Tensor, total, count()) if count else b(A.div.Scalar, total, per.type.numel)


def _nll_lowered(node: Node, b):
    """nll_loss with reduction 'mean' or 'sum': the rows' losses, then their sum (divided by the
    number of targets that are not ignore_index for 'mean', as eager: NaN when there are none)."""
    reduction, x, t = node.arg("reduction"), node.arg("self"), node.arg("target")
    if reduction == NONE:
        return "reduction='none' is a row op"
    if node.arg("weight") is not None:
        return "class weights"
    ig = node.arg("ignore_index")
    per = b(A.nll_loss_nd.default, x, t, None, NONE, ig)
    return _reduce_rows(b, per, reduction, lambda: _valid_count(b, t, ig, x.type.dtype))


def _cross_entropy(node: Node, b):
    """log_softmax over the class dim, nll_loss of it per row, then the reduction over the rows.
    Label smoothing adds eager's smoothing term -sum(log_softmax) per row (0 where ignored)."""
    x, t = node.arg("self"), node.arg("target")
    why = _class_input(node, x)
    if why:
        return why
    if t.type.dtype != torch.int64:
        return "class probabilities as targets"
    cd = 0 if x.type.ndim == 1 else 1
    ig, ls, reduction = node.arg("ignore_index"), float(node.arg("label_smoothing")), node.arg("reduction")
    logp = b(A._log_softmax.default, x, cd, False)
    per = b(A.nll_loss_nd.default, logp, t, None, NONE, ig)
    if ls > 0:
        smooth = b(A.where.ScalarOther, b(A.ne.Scalar, t, ig), b(A.neg.default, b(A.sum.dim_IntList, logp, [cd])), 0.0)
        per = b(A.add.Tensor, b(A.mul.Scalar, per, 1 - ls), b(A.mul.Scalar, smooth, ls / x.type.shape[cd]))
    return _reduce_rows(b, per, reduction, lambda: _valid_count(b, t, ig, x.type.dtype))


def _pairwise_distance(node: Node):
    """norm(x1 - x2 + eps, p) over the last dim, as eager."""
    pair = _pair(node, "x1", "x2")
    if isinstance(pair, str):
        return pair
    x, y = pair
    nd = x.type.ndim
    axes = (max(nd - 1, 0),)
    d = "({x} - {y} + {T}(%r))" % float(node.arg("eps"))
    p = float(node.arg("p"))
    if p == 2:
        steps, res = [Stage("s0", "sum", f"{d} * {d}")], "ff_sqrt({s0}.v)"
    elif p == 1:
        steps, res = [Stage("s0", "sum", f"ff_abs({d})")], "{s0}.v"
    elif p == float("inf"):
        steps, res = [Stage("s0", "max", f"ff_abs({d})")], "{s0}.v"
    elif p == 0:
        steps, res = [Stage("s0", "sum", f"{{T}}({d} != {{T}}(0))")], "{s0}.v"
    else:
        steps = [Stage("s0", "sum", "ff_pow(ff_abs(%s), {T}(%r))" % (d, p))]
        res = "ff_pow({s0}.v, {T}(1) / {T}(%r))" % p
    return Recipe(x, x.type.shape, axes, steps, {0: Result("row", res, _row_dims(nd, axes, node.arg("keepdim")))},
                  {"y": Operand(y, tuple(range(nd)))})


def _triplet_margin(node: Node, b):
    """max(margin + d(a, p) - d(a, n), 0) per row (d(a, n) replaced by min(d(a, n), d(p, n)) with
    swap), then the reduction over the rows."""
    a, p, n = node.arg("anchor"), node.arg("positive"), node.arg("negative")
    if not (a.type.shape == p.type.shape == n.type.shape) or a.type.ndim == 0:
        return "inputs of different shapes (broadcast)"
    norm, eps = node.arg("p"), node.arg("eps")
    d_pos = b(A.pairwise_distance.default, a, p, norm, eps, False)
    d_neg = b(A.pairwise_distance.default, a, n, norm, eps, False)
    if node.arg("swap"):
        d_neg = b(A.minimum.default, d_neg, b(A.pairwise_distance.default, p, n, norm, eps, False))
    per = b(A.clamp_min.default, b(A.sub.Tensor, b(A.add.Scalar, d_pos, node.arg("margin")), d_neg), 0.0)
    return _reduce_rows(b, per, node.arg("reduction"))


register("aten.nll_loss_nd.default", _nll_rows, kind=ROW, lower=_nll_lowered)
register("aten.pairwise_distance.default", _pairwise_distance, kind=ROW)
register("aten.cross_entropy_loss.default", None, kind=LOWER, lower=_cross_entropy)
register("aten.triplet_margin_loss.default", None, kind=LOWER, lower=_triplet_margin)
