"""Window ops: pooling, where each output element reduces a window of the input's last dims (and
depthwise convolutions, a window weighted per channel: depthwise()).

An entry turns the node into a Window: the reduced tensor, max or avg, and per pooled dim
either a fixed window (kernel, stride, padding, dilation, as eager's pooling) or adaptive
bounds (floor(o·I/O) to ceil((o+1)·I/O)). Dims before the pooled ones are batch dims. The
divisor of avg pooling follows eager: the window clipped at the padded border
(count_include_pad) or at the input, or divisor_override. Max propagates NaN as eager does.
Global average pooling (every output size 1) is also a plain mean: it gets a row recipe,
and the row planner takes it (a row is read by a team of threads, not one thread).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..graph import Node, Value
from .registry import FLOAT_DTYPES, WINDOW, register
from .rows import Recipe, Result, Stage, _row_dims


@dataclass
class Window:
    x: Value
    reduce: str                       # "max" | "avg"
    dims: int                         # pooled dims: the last `dims` of x
    kernel: tuple | None = None       # fixed windows, per pooled dim; None: adaptive
    stride: tuple = ()
    padding: tuple = ()
    dilation: tuple = ()
    count_include_pad: bool = True
    divisor: int | None = None        # divisor_override
    weight: Value | None = None       # "wsum": [C, 1, *kernel], a window of channel c weighted by weight[c]

    @property
    def adaptive(self) -> bool:
        return self.kernel is None

    def describe(self) -> str:
        if self.adaptive:
            return f"adaptive {self.reduce} over the last {self.dims} dim(s)"
        what = "depthwise convolution" if self.reduce == "wsum" else self.reduce
        text = f"{what} {list(self.kernel)} stride {list(self.stride)} padding {list(self.padding)}"
        if any(d != 1 for d in self.dilation):
            text += f" dilation {list(self.dilation)}"
        return text


def per_dim(value, n: int, default=None) -> tuple | None:
    """An int or a list of 1 or n ints as n ints; an empty list gives `default`."""
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return default
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def _check(node: Node, dims: int) -> str | None:
    x = node.arg("self")
    if x.type.dtype not in FLOAT_DTYPES:
        return f"{x.type.dtype} input (float32/float64 pooling is generated)"
    if x.type.ndim not in (dims + 1, dims + 2):
        return f"a {x.type.ndim}-d input for {dims}-d pooling"
    return None


def _max_pool(node: Node, dims: int):
    why = _check(node, dims)
    if why:
        return why
    kernel = per_dim(node.arg("kernel_size"), dims)
    return Window(node.arg("self"), "max", dims, kernel, per_dim(node.arg("stride"), dims, kernel),
                  per_dim(node.arg("padding"), dims, (0,) * dims),
                  per_dim(node.arg("dilation"), dims, (1,) * dims))


def _avg_pool(node: Node, dims: int):
    why = _check(node, dims)
    if why:
        return why
    kernel = per_dim(node.arg("kernel_size"), dims)
    names = [a.name for a in node.schema.arguments]
    divisor = node.arg("divisor_override") if "divisor_override" in names else None
    return Window(node.arg("self"), "avg", dims, kernel, per_dim(node.arg("stride"), dims, kernel),
                  per_dim(node.arg("padding"), dims, (0,) * dims), (1,) * dims,
                  bool(node.arg("count_include_pad")), divisor)


def _adaptive(node: Node, dims: int, reduce: str):
    return _check(node, dims) or Window(node.arg("self"), reduce, dims)


def _global_mean(node: Node, dims: int):
    """Adaptive average pooling to size 1 everywhere: a mean over the pooled dims, kept."""
    why = _check(node, dims)
    if why:
        return why
    x = node.arg("self")
    if any(s != 1 for s in node.outputs[0].type.shape[-dims:]):
        return "not global: a window op"
    axes = tuple(range(x.type.ndim - dims, x.type.ndim))
    return Recipe(x, x.type.shape, axes, [Stage("s0", "sum", "{x}")],
                  {0: Result("row", "{s0}.v / {L}", _row_dims(x.type.ndim, axes, True))})


def depthwise(node: Node):
    """A 2D convolution with one input channel per group and one output channel per input channel
    (its bias moved out, ops/convs.py), as a window op: each output element is its channel's window
    summed with that channel's weights, in float32 (eager's depthwise kernels compute it so, no
    TF32), NCHW in and out, one thread an output. Measured on an H100 against cuDNN's channels-last
    depthwise kernel with the conversions around it (bench/session17/seventh/ab_depthwise_h100.json,
    new / old): on a model input level1/026 0.62, level2/020 0.76, level3/018 (7x7) 0.97; on an
    input the model computes channels-last (MobileNet's, EfficientNet's blocks, level3/007, 008)
    1.13, 1.14, so those stay cuDNN's. FUSEFORGE_DEPTHWISE=0 turns it off, =all takes every one
    (auto, or 1, the default: model inputs)."""
    mode = os.environ.get("FUSEFORGE_DEPTHWISE", "") or "auto"
    mode = {"1": "auto"}.get(mode, mode)
    if mode not in ("0", "auto", "all"):
        from ..errors import ConfigError
        raise ConfigError(f"FUSEFORGE_DEPTHWISE={mode!r}: expected 0, auto or all")
    x, w = node.arg("input"), node.arg("weight")
    if isinstance(node.arg("bias"), Value):
        return "a bias not moved out"
    if x.type.ndim != 4 or w.type.ndim != 4 or x.type.dtype not in FLOAT_DTYPES or w.type.dtype != x.type.dtype:
        return "not a float 4-d input"
    c = x.type.shape[1]
    if int(node.arg("groups")) != c or w.type.shape[0] != c or w.type.shape[1] != 1:
        return "not depthwise (a channel a group, one output channel each)"
    if mode == "0":
        return "depthwise convolutions as window kernels are off (FUSEFORGE_DEPTHWISE=0)"
    if mode == "auto" and x.producer is not None:
        return ("a depthwise convolution of a computed input: cuDNN's (its producers write channels-last for it; "
                "as a window kernel 1.13-1.14x, bench/session17/seventh)")
    kernel = tuple(w.type.shape[2:])
    return Window(x, "wsum", 2, kernel, per_dim(node.arg("stride"), 2), per_dim(node.arg("padding"), 2, (0, 0)),
                  per_dim(node.arg("dilation"), 2, (1, 1)), weight=w)


for _d in (1, 2, 3):
    register(f"aten.max_pool{_d}d.default", lambda n, d=_d: _max_pool(n, d), kind=WINDOW)
    register(f"aten.avg_pool{_d}d.default", lambda n, d=_d: _avg_pool(n, d), kind=WINDOW)
    register([f"aten.adaptive_avg_pool{_d}d.default"] + ([f"aten._adaptive_avg_pool{_d}d.default"] if _d > 1 else []),
             lambda n, d=_d: _adaptive(n, d, "avg"), kind=WINDOW, row=lambda n, d=_d: _global_mean(n, d))
    register(f"aten.adaptive_max_pool{_d}d.default", lambda n, d=_d: _adaptive(n, d, "max"), kind=WINDOW,
             first_result_only=True)
