"""Pointwise ops: one output element from same-index (or broadcast) inputs.

Each entry is the op's C++ expression over its arguments (see registry.Args). The helpers
named ff_* are defined once in codegen.cpp.PRELUDE and follow
eager PyTorch's own formulas, NaN propagation included.
"""
import math

import torch

from ..codegen.cpp import literal
from .registry import register


def _alpha(a, term):
    """`alpha * term`, written without the multiplication when alpha is 1."""
    return term if a.raw("alpha") == 1 else f"{a.alpha} * {term}"


# --- arithmetic -------------------------------------------------------------------------
register(["aten.add.Tensor", "aten.add.Scalar"], lambda a: f"{a.self} + {_alpha(a, a.other)}")
register(["aten.sub.Tensor", "aten.sub.Scalar"], lambda a: f"{a.self} - {_alpha(a, a.other)}")
register(["aten.rsub.Tensor", "aten.rsub.Scalar"], lambda a: f"{a.other} - {_alpha(a, a.self)}")
register(["aten.mul.Tensor", "aten.mul.Scalar"], "{a.self} * {a.other}")
DIV_TARGETS = ("aten.div.Tensor", "aten.div.Scalar")


def divides_by_scalar(other, dtype: torch.dtype) -> bool:
    """A true division (DIV_TARGETS) of a float32/float64 tensor by `other`, where eager's CUDA
    kernel multiplies by the reciprocal instead: a Python number (ATen's div_true_kernel_cuda
    takes 1 / s once, in the operand type, for a CPU scalar; its CPU kernel divides) that is not
    a power of two (by one, x * (1 / s) is x / s exactly, and the text stays as it was)."""
    if dtype not in (torch.float32, torch.float64) or isinstance(other, bool) or not isinstance(other, (int, float)):
        return False
    return math.isfinite(other) and other != 0 and math.frexp(abs(other))[0] != 0.5


def _div(a):
    other = a.raw("other")
    dtype = {"float": torch.float32, "double": torch.float64}.get(a.ctype)
    if not divides_by_scalar(other, dtype):
        return f"{a.self} / {a.other}"
    inv = (torch.tensor(1.0, dtype=dtype) / torch.tensor(other, dtype=dtype)).item()   # in the operand type
    return f"ff_div_scalar({a.self}, {a.other}, {literal(inv, dtype)})"


register(list(DIV_TARGETS), _div, floats_only=True)
register(["aten.div.Tensor_mode", "aten.div.Scalar_mode"],
         lambda a: {None: f"{a.self} / {a.other}",
                    "trunc": f"ff_trunc({a.self} / {a.other})",
                    "floor": f"ff_floor_divide({a.self}, {a.other})"}[a.raw("rounding_mode")],
         floats_only=True)
register(["aten.remainder.Tensor", "aten.remainder.Scalar"], "ff_remainder({a.self}, {a.other})")
register(["aten.fmod.Tensor", "aten.fmod.Scalar"], "ff_fmod({a.self}, {a.other})")
register("aten.neg.default", "-{a.self}")
register("aten.abs.default", "ff_abs({a.self})")
register("aten.reciprocal.default", "{a.ctype}(1) / {a.self}", floats_only=True)
register("aten.square.default", "{a.self} * {a.self}")
register(["aten.addcmul.default"], "{a.self} + {a.value} * {a.tensor1} * {a.tensor2}")
register(["aten.addcdiv.default"], "{a.self} + {a.value} * ({a.tensor1} / {a.tensor2})",
         floats_only=True)
register("aten.lerp.Scalar", "ff_lerp({a.self}, {a.end}, {a.weight})", floats_only=True)
register("aten.lerp.Tensor", "ff_lerp({a.self}, {a.end}, {a.weight})", floats_only=True)


def _pow_scalar(a):
    # eager's pow_tensor_scalar special-cases these exponents; so do we
    e = a.raw("exponent")
    special = {2: f"{a.self} * {a.self}", 3: f"{a.self} * {a.self} * {a.self}",
               0.5: f"ff_sqrt({a.self})", -0.5: f"ff_rsqrt({a.self})",
               -1: f"{a.ctype}(1) / {a.self}", -2: f"{a.ctype}(1) / ({a.self} * {a.self})",
               1: f"{a.self}"}
    return special.get(e, f"ff_pow({a.self}, {a.exponent})")


register("aten.pow.Tensor_Scalar", _pow_scalar, floats_only=True, transcendentals=1)
register("aten.pow.Tensor_Tensor", "ff_pow({a.self}, {a.exponent})", floats_only=True)
register("aten.pow.Scalar", "ff_pow({a.self}, {a.exponent})", floats_only=True)

# --- min / max / clamp ----------------------------------------------------------------------
register(["aten.minimum.default", "aten.min.other"], "ff_min({a.self}, {a.other})")
register(["aten.maximum.default", "aten.max.other"], "ff_max({a.self}, {a.other})")
register("aten.fmin.default", "ff_fmin({a.self}, {a.other})", floats_only=True)
register("aten.fmax.default", "ff_fmax({a.self}, {a.other})", floats_only=True)


def _clamp(a):
    x = a.self
    if a.raw("min") is not None:
        x = f"ff_max({x}, {a.min})"
    if a.raw("max") is not None:
        x = f"ff_min({x}, {a.max})"
    return x


register(["aten.clamp.default", "aten.clamp.Tensor"], _clamp)
register(["aten.clamp_min.default", "aten.clamp_min.Tensor"], "ff_max({a.self}, {a.min})")
register(["aten.clamp_max.default", "aten.clamp_max.Tensor"], "ff_min({a.self}, {a.max})")
register("aten.hardtanh.default", "ff_min(ff_max({a.self}, {a.min_val}), {a.max_val})")
register("aten.relu.default", "ff_max({a.self}, {a.ctype}(0))")
register("aten.relu6.default", "ff_min(ff_max({a.self}, {a.ctype}(0)), {a.ctype}(6))")

# --- exponentials, logs, roots, trigonometry -------------------------------------------------
for _name in ["exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin",
              "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "erf", "erfc"]:
    register(f"aten.{_name}.default", f"ff_{_name}({{a.self}})", floats_only=True,
             transcendentals=int(_name in ("exp", "log", "tanh", "erf")))
for _name in ["floor", "ceil", "trunc", "round"]:
    register(f"aten.{_name}.default", f"ff_{_name}({{a.self}})")
register("aten.atan2.default", "ff_atan2({a.self}, {a.other})", floats_only=True)
register("aten.sign.default", "ff_sign({a.self})")

# --- activations --------------------------------------------------------------------------
register("aten.sigmoid.default", "ff_sigmoid({a.self})", floats_only=True, transcendentals=1)
register("aten.silu.default", "ff_silu({a.self})", floats_only=True, transcendentals=1)
register("aten.mish.default", "ff_mish({a.self})", floats_only=True, transcendentals=3)
register("aten.gelu.default",
         lambda a: (f"ff_gelu_tanh({a.self})" if a.raw("approximate") == "tanh" else f"ff_gelu({a.self})"),
         floats_only=True, transcendentals=1)
register("aten.softplus.default", "ff_softplus({a.self}, {a.beta}, {a.threshold})", floats_only=True, transcendentals=2)
register("aten.leaky_relu.default", "ff_leaky_relu({a.self}, {a.negative_slope})", floats_only=True)
register("aten.hardsigmoid.default", "ff_hardsigmoid({a.self})", floats_only=True)
register("aten.hardswish.default", "ff_hardswish({a.self})", floats_only=True)
register("aten.elu.default", "ff_elu({a.self}, {a.alpha}, {a.scale}, {a.input_scale})", floats_only=True, transcendentals=1)
register("aten.selu.default", "ff_selu({a.self})", floats_only=True)
register("aten.celu.default", "ff_elu({a.self}, {a.alpha}, {a.ctype}(1), {a.ctype}(1) / {a.alpha})",
         floats_only=True)
register("aten.threshold.default", "({a.self} <= {a.threshold} ? {a.value} : {a.self})")

# --- comparisons, logic, selection ----------------------------------------------------------
for _name, _op in [("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")]:
    register([f"aten.{_name}.Tensor", f"aten.{_name}.Scalar"], f"{{a.self}} {_op} {{a.other}}",
             operands="promote")
register("aten.logical_not.default", "!{a.self}", operands="bool")
register("aten.logical_and.default", "{a.self} && {a.other}", operands="bool")
register("aten.logical_or.default", "{a.self} || {a.other}", operands="bool")
register("aten.logical_xor.default", "{a.self} != {a.other}", operands="bool")
register("aten.isnan.default", "{a.self} != {a.self}", operands="own")
register(["aten.where.self", "aten.where.ScalarOther", "aten.where.ScalarSelf", "aten.where.Scalar"],
         "({a.condition} ? {a.self} : {a.other})", operands="where")
register(["aten.masked_fill.Scalar", "aten.masked_fill.Tensor"], "({a.mask} ? {a.value} : {a.self})",
         operands="where", when=lambda node: node.arg("mask").type.dtype == torch.bool)

# --- copies and casts -----------------------------------------------------------------------
register("aten.clone.default", "{a.self}")
register("aten._to_copy.default", "static_cast<{a.result_ctype}>({a.self})", operands="own",
         when=lambda node: node.arg("device") is None and node.arg("layout") in (None, torch.strided))

# --- normalization with fixed statistics -------------------------------------------------------
# eval-mode batch norm: the running statistics and the affine parameters run along dim 1
_PER_CHANNEL = {name: (lambda node: (1,)) for name in
                ("weight", "bias", "running_mean", "running_var")}


def _batch_norm_eval(a):
    x = f"({a.input} - {a.running_mean}) * ff_rsqrt({a.running_var} + {a.eps})"
    if a.raw("weight") is not None:
        x = f"{x} * {a.weight}"
    if a.raw("bias") is not None:
        x = f"{x} + {a.bias}"
    return x


register("aten._native_batch_norm_legit_no_training.default", _batch_norm_eval, floats_only=True,
         align=_PER_CHANNEL, first_result_only=True)
