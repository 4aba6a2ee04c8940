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


def _contiguous_rows(k, v) -> bool:
    """Whether the row kernel's rows of v are contiguous in memory (the reduced dims of v, by
    stride, run 1, size, size x size, ...): rows over the channels of a channels-last tensor."""
    st = k.strides.get(v)
    if st is None:
        return False
    red = sorted((d for d in k.axes if k.space[d] > 1 and st[d] != 0), key=lambda d: st[d])
    step = 1
    for d in red:
        if st[d] != step:
            return False
        step *= k.space[d]
    return bool(red)


def _row_reader_why_not(k, v, tentative: bool) -> str | None:
    """A row kernel reads a channels-last convolution well where its rows of it are contiguous
    (a reduction over the channels: in NCHW the same rows are strided by the pixels) and it writes
    full-size results along contiguous rows too (not into an NCHW tensor the graph keeps, which
    would be strided). Other row and window readers measured slower on channels-last input
    (bench/rows_h100.md, the [nchw] rows). FUSEFORGE_CL_ROWS=all lets every row and window reader
    take it, to measure that again. `tentative`: v's strides are still the NCHW ones."""
    from .plan_rows import ROW
    if os.environ.get("FUSEFORGE_CL_ROWS") == "all":
        return None
    if not all(k.phase.get(o) == ROW or _contiguous_rows(k, o) for o in k.outputs):
        return f"{k.name} is a row kernel writing a full-size result across its rows (measured " \
               "slower on a channels-last input)"
    if not tentative and not _contiguous_rows(k, v):
        return f"{k.name} is a row kernel whose rows are not the channels (measured slower on a " \
               "channels-last input)"
    return None


def _views(graph, v) -> list:
    """The permutes of v that externs compute (views: their strides follow v's)."""
    return [u for u in graph.users().get(v, []) if u.target == "aten.permute.default"]


def _readers_why_not(plan, v, tentative: bool = False, root: bool = True) -> str | None:
    """Whether every reader of the convolution's output v is a generated kernel that reads it in
    place, or a permute of it whose readers are."""
    from .plan import Extern, Kernel
    from .plan_rows import RowKernel
    from .plan_windows import WindowKernel
    if any(o is v for o in plan.graph.outputs):
        return "its output is a result of the model"
    kernel_of = {n: s for s in plan.steps if not isinstance(s, Extern) for n in s.nodes}
    for u in plan.graph.users().get(v, []):
        k = kernel_of.get(u)
        if k is None and u.target == "aten.permute.default":
            why = _readers_why_not(plan, u.outputs[0], tentative, root=False)
            if why:
                return why
            continue
        if k is None:
            return f"{u.name} ({u.target}) reads it as an extern"
        if isinstance(k, RowKernel):
            why = _row_reader_why_not(k, v, tentative)
            if why:
                return why
            continue
        if isinstance(k, WindowKernel) and os.environ.get("FUSEFORGE_CL_ROWS") != "all":
            return f"{k.name} is a window kernel (measured slower on a channels-last input: " \
                   "bench/rows_h100.md, the [nchw] rows)"
        if isinstance(k, WindowKernel):
            continue
        if type(k) is not Kernel:
            return f"{k.name} is not a pointwise kernel"
        if any(o.type.shape != k.shape or o.type.strides != contiguous_strides(k.shape) for o in k.outputs):
            return f"{k.name} does not write contiguous tensors of its shape"
        if root and (k.shape != v.type.shape or k.order != tuple(range(len(k.shape)))):
            return f"{k.name} does not read it through a transposing tile"
        if not root and not tentative and v.type.strides != contiguous_strides(v.type.shape):
            return f"{k.name} reads a permute of it that is not contiguous"
    return None


def _set_channels_last(graph, y, on: bool, old: dict) -> None:
    """y's type channels-last (or back), and the permutes of it with it."""
    if not on:
        for v, t in old.items():
            v.type = t
        return
    old[y] = y.type
    y.type = TensorType(y.type.shape, channels_last_strides(y.type.shape), y.type.dtype)
    stack = [y]
    while stack:
        v = stack.pop()
        for u in _views(graph, v):
            w = u.outputs[0]
            old.setdefault(w, w.type)
            w.type = TensorType(w.type.shape, tuple(v.type.strides[d] for d in u.arg("dims")), w.type.dtype)
            stack.append(w)


def plan_with_layouts(graph, make_plan):
    plan = make_plan(graph)
    if os.environ.get("FUSEFORGE_CHANNELS_LAST", "1") == "0":
        plan.decisions.append("layouts: FUSEFORGE_CHANNELS_LAST=0, every convolution NCHW")
        return plan
    notes, chosen = [], []
    for step in plan.externs:
        if step.node.target not in CONVS:
            continue
        why = _why_not(step.node) or _readers_why_not(plan, step.node.outputs[0], tentative=True)
        if why:
            notes.append(f"{step.node.name} ({step.node.target}): NCHW, {why}")
        else:
            chosen.append(step.node)
    old: dict = {}
    while chosen:
        for n in chosen:
            _set_channels_last(graph, n.outputs[0], True, old)
        plan = make_plan(graph)
        undone = [(n, why) for n in chosen if (why := _readers_why_not(plan, n.outputs[0]))]
        if not undone:
            break
        for n, why in undone:
            notes.append(f"{n.name} ({n.target}): NCHW, channels-last would make {why}")
            chosen.remove(n)
        _set_channels_last(graph, None, False, old)
        old = {}
        if not chosen:
            plan = make_plan(graph)
    for step in plan.externs:
        if step.node in chosen:
            step.channels_last = True
            values, readers = [step.node.outputs[0]], set()
            while values:
                v = values.pop()
                values += [u.outputs[0] for u in _views(graph, v)]
                readers |= {s.name for s in plan.kernels if set(s.nodes) & set(graph.users().get(v, []))}
            notes.append(f"{step.node.name} ({step.node.target}): channels-last (input converted, weight once), "
                         f"read in place by {', '.join(sorted(readers))}")
    plan.decisions.extend(notes)
    return plan
