"""Losses as row recipes: an element-wise term of input and target, summed over every element
(reduction 'sum') or averaged (reduction 'mean'), with eager's formulas. Few rows of many
elements: the row planner splits them over blocks. Reduction 'none' is element-wise and stays
an extern until it is generated as a pointwise op. cosine_similarity reduces one dim.
"""
from __future__ import annotations

from ..graph import Node
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
