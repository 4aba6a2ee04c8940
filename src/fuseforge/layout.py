"""layout: which convolutions run channels-last.

Measured on an H100 (bench/conv_layouts_h100.md, every conv of the suite alone): cuDNN runs
a k×k 2D convolution (k > 1) with 16 or more input channels in 0.39-0.68× of its NCHW time
when input, weight and output are channels-last (transposed 2D/3D convolutions 0.64-0.70×,
depthwise 0.34×), a 3D convolution in 0.85× (about what converting its input costs, so 3D
convolutions stay NCHW); 1×1 convolutions gain nothing and convolutions with 1 or 6 input
channels lose up to 19 %; cudnn.benchmark changes nothing. Converting the input costs about
half a copy, the weight is converted once. The output must not be converted back (a plain
.contiguous() of it costs 5.8 copies): it goes only to a generated pointwise kernel that
reads it through a transposing tile and writes the graph's own layout (conv → BN(eval) →
ReLU 0.75 ms against 0.88 NCHW; the example 3.12 against 3.51). Row and window kernels
reading a channels-last tensor measured slower than the NCHW plan (group norm 3.3×, batch
norm 2.0×, softmax 1.3×, pooling 1.02×), so such readers keep the convolution NCHW. The
plan is made, such convolutions are switched to channels-last, the plan is made again, and
a switch whose readers did not stay pointwise kernels is undone.
FUSEFORGE_CHANNELS_LAST=0 keeps every convolution NCHW (to measure the difference).
"""
from __future__ import annotations

import math
import os

import torch

from .graph import TensorType

CONVS = {"aten.conv2d.default", "aten.conv_transpose2d.input", "aten.conv_transpose3d.input"}
MIN_IN_CHANNELS = 16


def channels_last_strides(shape) -> tuple[int, ...]:
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    return tuple(torch.empty(shape, device="meta", memory_format=fmt).stride())


def contiguous_strides(shape) -> tuple[int, ...]:
    return tuple(torch.empty(shape, device="meta").stride())


def _why_not(node) -> str | None:
    """Whether the convolution itself is one that measured faster channels-last."""
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
    if y.type.strides != contiguous_strides(y.type.shape):
        return "an output that is not contiguous NCHW in the graph"
    return None


def _readers_why_not(plan, node) -> str | None:
    """Whether every reader of the convolution's output is a generated kernel that reads it in place."""
    from .plan import Extern, Kernel
    from .plan_rows import RowKernel
    from .plan_windows import WindowKernel
    y = node.outputs[0]
    if any(v is y for v in plan.graph.outputs):
        return "its output is a result of the model"
    users = plan.graph.users().get(y, [])
    kernel_of = {n: s for s in plan.steps if not isinstance(s, Extern) for n in s.nodes}
    for u in users:
        k = kernel_of.get(u)
        if k is None:
            return f"{u.name} ({u.target}) reads it as an extern"
        if isinstance(k, (RowKernel, WindowKernel)):
            return f"{k.name} is a {'row' if isinstance(k, RowKernel) else 'window'} kernel (measured slower on " \
                   "a channels-last input: bench/rows_h100.md, the [nchw] rows)"
        if type(k) is not Kernel:
            return f"{k.name} is not a pointwise kernel"
        if k.shape != y.type.shape or k.order != tuple(range(len(k.shape))) or \
                any(v.type.shape != k.shape or v.type.strides != contiguous_strides(k.shape) for v in k.outputs):
            return f"{k.name} does not write contiguous tensors of its shape"
    return None


def plan_with_layouts(graph, make_plan):
    plan = make_plan(graph)
    if os.environ.get("FUSEFORGE_CHANNELS_LAST", "1") == "0":
        plan.decisions.append("layouts: FUSEFORGE_CHANNELS_LAST=0, every convolution NCHW")
        return plan
    notes, chosen = [], []
    for step in plan.externs:
        if step.node.target not in CONVS:
            continue
        why = _why_not(step.node) or _readers_why_not(plan, step.node)
        if why:
            notes.append(f"{step.node.name} ({step.node.target}): NCHW, {why}")
        else:
            chosen.append(step.node)
    old = {n: n.outputs[0].type for n in chosen}
    while chosen:
        for n in chosen:
            y = n.outputs[0]
            y.type = TensorType(y.type.shape, channels_last_strides(y.type.shape), y.type.dtype)
        plan = make_plan(graph)
        undone = [(n, why) for n in chosen if (why := _readers_why_not(plan, n))]
        if not undone:
            break
        for n, why in undone:
            notes.append(f"{n.name} ({n.target}): NCHW, channels-last would make {why}")
            chosen.remove(n)
        for n in old:
            n.outputs[0].type = old[n]
        if not chosen:
            plan = make_plan(graph)
    for step in plan.externs:
        if step.node in chosen:
            step.channels_last = True
            readers = sorted({s.name for s in plan.kernels if set(s.nodes) & set(graph.users().get(step.node.outputs[0], []))})
            notes.append(f"{step.node.name} ({step.node.target}): channels-last (input converted, weight once), "
                         f"read in place by {', '.join(readers)}")
    plan.decisions.extend(notes)
    return plan
