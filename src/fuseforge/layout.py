"""layout: which convolutions run channels-last.

Measured on an H100 (bench/conv_layouts_h100.md, every conv of the suite alone): cuDNN runs
a k×k 2D convolution (k > 1) with 16 or more input channels in 0.39-0.68× of its NCHW time
when input, weight and output are channels-last (transposed 2D/3D convolutions 0.64-0.70×,
depthwise 0.34×), a 3D convolution in 0.85× (about what converting its input costs, so 3D
convolutions stay NCHW); 1×1 convolutions gain nothing and convolutions with 1 or 6 input
channels lose up to 19 %; cudnn.benchmark changes nothing. Converting the input costs about half a copy; the
output goes to the epilogue kernel, which reads it through a transposing tile and writes the
layout the graph had (bench: a plain .contiguous() of it costs 5.8 copies). So a convolution
runs channels-last when it is such a convolution and its output goes only to one generated
pointwise kernel that writes dense outputs in the graph's layout.
"""
from __future__ import annotations

import math

import torch

from .graph import TensorType

CONVS = {"aten.conv2d.default", "aten.conv_transpose2d.input", "aten.conv_transpose3d.input"}
MIN_IN_CHANNELS = 16


def channels_last_strides(shape) -> tuple[int, ...]:
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    return tuple(torch.empty(shape, device="meta", memory_format=fmt).stride())


def _why_not(node, users, live, kernel_of) -> str | None:
    from .plan import Kernel
    x, w = node.arg("input"), node.arg("weight")
    y = node.outputs[0]
    if x.type.dtype != torch.float32 or x.type.ndim not in (4, 5) or y.type.ndim != x.type.ndim:
        return "not a batched float32 2D/3D convolution"
    if x.type.shape[1] < MIN_IN_CHANNELS:
        return f"{x.type.shape[1]} input channels (measured slower channels-last below {MIN_IN_CHANNELS})"
    if math.prod(w.type.shape[2:]) == 1:
        return "a 1x1 convolution (measured no faster channels-last)"
    if y.type.shape[1] == 1 or math.prod(y.type.shape[2:]) == 1:
        return "an output without both channels and pixels"
    if y in live:
        return "its output is a result of the model"
    kernels = {kernel_of.get(u) for u in users.get(y, [])}
    if len(kernels) != 1 or None in kernels or type(next(iter(kernels))) is not Kernel:
        return "its output is not read by exactly one generated pointwise kernel"
    k = next(iter(kernels))
    if k.shape != y.type.shape or k.order != tuple(range(len(k.shape))) or \
            any(v.type.shape != k.shape or not v.type.is_dense() or
                v.type.strides != tuple(torch.empty(k.shape, device="meta").stride()) for v in k.outputs):
        return "its epilogue does not write contiguous tensors of its shape"
    return None


def choose_channels_last(steps, users, live, decisions) -> None:
    """Mark convolution externs that run channels-last; their outputs' strides change."""
    from .plan import Extern
    kernel_of = {n: s for s in steps if not isinstance(s, Extern) for n in s.nodes}
    for step in steps:
        if not isinstance(step, Extern) or step.node.target not in CONVS:
            continue
        node = step.node
        why = _why_not(node, users, live, kernel_of)
        if why:
            decisions.append(f"{node.name} ({node.target}): NCHW, {why}")
            continue
        y = node.outputs[0]
        y.type = TensorType(y.type.shape, channels_last_strides(y.type.shape), y.type.dtype)
        step.channels_last = True
        decisions.append(f"{node.name} ({node.target}): channels-last (input and weight converted, "
                         f"the epilogue {kernel_of[users[y][0]].name} reads it through a transposing tile)")
