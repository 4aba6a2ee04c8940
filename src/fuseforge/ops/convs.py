"""Convolutions: ATen externs (cuDNN) whose bias moves into the generated kernel after them.

Measured on an H100/H200 (scripts/profile_kernels.py): cuDNN's convolution kernels do not add
the bias; ATen adds it with a separate in-place elementwise kernel over the whole output (0.20 ms
of a 0.75 ms conv2d → min → softmax, more than the 0.18 ms convolution itself). Lowered to the
convolution without bias and an add of the bias viewed as [C, 1, ...], the add is one more
pointwise op that fuses into the kernel reading the output, where it costs nothing. The values
are eager's: the same float32 sum of the convolution's result and the bias. A generated
convolution takes the add back into its sums, which start at the bias (plan_conv.bias_add).
"""
from __future__ import annotations

import math
import os

import torch

from ..graph import Node, TensorType, Value
from .registry import LOWER, register
from .windows import depthwise, per_dim

A = torch.ops.aten
CONVS = ["aten.conv1d.default", "aten.conv2d.default", "aten.conv3d.default", "aten.conv1d.padding",
         "aten.conv2d.padding", "aten.conv3d.padding", "aten.conv_transpose1d.default",
         "aten.conv_transpose2d.input", "aten.conv_transpose3d.input"]


def _bias_after(node: Node, b):
    bias, weight = node.arg("bias"), node.arg("weight")
    if not isinstance(bias, Value):
        return "no bias"
    if bias.type.ndim != 1:
        return "a bias that is not one value per channel"
    args = [None if a.name == "bias" else v for a, v in zip(node.schema.arguments, node.args)]
    out = b(node.op, *args)
    spatial = weight.type.ndim - 2              # the output's dims after the channel dim
    return b(A.add.Tensor, out, b(A.view.default, bias, [bias.type.shape[0]] + [1] * spatial))


MIN_PIXELS_2D = 8 * 32 * 32   # (the input's images x pixels: _transposed_as_conv)


def _flipped(w: Value, b) -> Value:
    """A transposed convolution's weights as a convolution's: input and output channels swapped,
    every window flipped, contiguous."""
    flipped = b(A.flip.default, b(A.transpose.int, w, 0, 1), list(range(2, w.type.ndim)))
    return b(A.clone.default, flipped, memory_format=torch.contiguous_format)


def _transposed_as_conv(node: Node, b):
    """A transposed convolution (one group) as the ordinary convolution it is, where that is faster.

    Stride 1 (no output padding): the convolution of the flipped weights (_flipped), padded by
    dilation x (window - 1) - padding. cuDNN ran level1/036's (32 -> 16 channels, 3x3x3, 16 x 64 x
    64) as the convolution in 0.29 of the transposed one's time, level1/033's (2D, 64 -> 32
    channels, 128 x 128) in 0.96 (channels-last), both TF32, 2.9e-4 of the largest value from
    float64 either way (bench/session31/final/convt_as_conv.log). The weights are flipped once, not
    on every call (wrapper.made_once), which 2D's few percent did not pay for before.

    A dilation that is a multiple of the stride along every strided dim (_one_phase, 2D): every tap
    lands on the output rows of one phase (level1/035, stride 2 and dilation 2 along H: the odd
    rows), which are the stride-1 transposed convolution of dilation / stride, hence a convolution
    as above; the other rows are the bias alone. cuDNN's transposed convolution (its strided dgrad)
    took 0.725 ms channels-last on 035's shape, the convolution 0.150, and with its rows put in place
    0.334, same error (bench/session32/convt_phases.log); with the rows written in place by the
    convolution's kernel (scatter_rows.py) 035 takes 0.251 ms against 0.769 (bench/session32/third).

    Only where eager's transposed convolution runs TF32 as the convolution, cuDNN's or generated,
    does: plan_conv.MIN_IN_CHANNELS (3D: MIN_IN_CHANNELS_3D) or more input channels (with 4 eager's
    ran float32 on the GPU: its largest error from float64 2e-7, the convolution's 5e-4;
    bench/session32/first/gpu_convs.log), in 2D over MIN_PIXELS_2D input pixels or more (eager's
    ran float32 over 2 x 32 x 32, TF32 from 8 x 32 x 32), not in 1D (float32 at every size measured;
    bench/session32/probe/convt_tf32.log). The bias moves out in the next round.
    FUSEFORGE_CONVT_AS_CONV=0 turns both off."""
    from ..plan_conv import MIN_IN_CHANNELS, MIN_IN_CHANNELS_3D
    x, w = node.arg("input"), node.arg("weight")
    window, n = w.type.shape[2:], w.type.ndim - 2
    stride, padding, out_padding, dilation = (per_dim(node.arg(a), n, (0,) * n) for a in
                                              ("stride", "padding", "output_padding", "dilation"))
    if os.environ.get("FUSEFORGE_CONVT_AS_CONV", "1") == "0" or int(node.arg("groups")) != 1:
        return _bias_after(node, b)
    if x.type.shape[1] < (MIN_IN_CHANNELS_3D if n == 3 else MIN_IN_CHANNELS) or n == 1 or \
            n == 2 and x.type.shape[0] * math.prod(x.type.shape[2:]) < MIN_PIXELS_2D:
        return _bias_after(node, b)
    if all(s == 1 for s in stride):
        pads = [d * (k - 1) - p for d, k, p in zip(dilation, window, padding)]
        if any(out_padding) or min(pads) < 0:
            return _bias_after(node, b)
        conv = getattr(A, f"conv{n}d").default
        return b(conv, x, _flipped(w, b), node.arg("bias"), [1] * n, pads, list(dilation), 1)
    return _one_phase(node, b, x, w, stride, padding, dilation) if n == 2 else _bias_after(node, b)


def _one_phase(node: Node, b, x: Value, w: Value, stride, padding, dilation):
    """A transposed convolution whose dilation is a multiple of its stride along every strided dim:
    output index i * s - p + j * d (input i, tap j) is -p modulo s for every tap, so only the rows
    r = phase + s * m are written, m = i + j * d / s - (p + phase) / s: the stride-1 transposed
    convolution of dilation d / s, padding (p + phase) / s. Those rows are put into an output of
    the bias (zeros without one) by slice_scatter, one strided dim at a time."""
    out = node.outputs[0].type.shape
    window = w.type.shape[2:]
    phase = [(-p) % s for s, p in zip(stride, padding)]
    rows = [-(-(o - q) // s) for o, q, s in zip(out[2:], phase, stride)]   # rows of the phase
    if any(d % s for s, d in zip(stride, dilation)):
        return _bias_after(node, b)
    dil = [d // s for s, d in zip(stride, dilation)]
    pads = [e * (k - 1) - (p + q) // s for e, k, p, q, s in zip(dil, window, padding, phase, stride)]
    sizes = [i + 2 * c - e * (k - 1) for i, c, e, k in zip(x.type.shape[2:], pads, dil, window)]
    if min(pads) < 0 or sizes != rows:
        return _bias_after(node, b)
    n = len(window)
    y = b(getattr(A, f"conv{n}d").default, x, _flipped(w, b), None, [1] * n, pads, dil, 1)
    bias = node.arg("bias")
    if isinstance(bias, Value):
        bias = b(A.view.default, bias, [out[1]] + [1] * n)
        y = b(A.add.Tensor, y, bias)
        base = b(A.expand.default, bias, list(out))
    else:
        base = b(A.new_zeros.default, x, list(out))
    return _scatter(base, y, [(2 + i, q, s) for i, (q, s) in enumerate(zip(phase, stride)) if s > 1], b)


def _scatter(base: Value, src: Value, strided: list, b) -> Value:
    """base with src in its rows start::step along each (dim, start, step) of `strided`."""
    from ..scatter_rows import result_strides
    dim, start, step = strided[0]
    if len(strided) > 1:
        src = _scatter(b(A.slice.Tensor, base, dim, start, base.type.shape[dim], step), src, strided[1:], b)
    y = b(A.slice_scatter.default, base, src, dim, start, base.type.shape[dim], step)
    y.type = TensorType(y.type.shape, result_strides(y.producer), y.type.dtype)   # (as on a device)
    return y


def _padding_spelled_out(node: Node, b):
    """A convolution with padding 'same' or 'valid' as the .default overload with the padding
    spelled out where both sides get the same (ATen's own convolution does the same: it pads
    asymmetrically only where a dilated window's extent minus one is odd), so that the generated
    convolution, which reads integer paddings, can take it; its bias moves out in the next round."""
    mode, weight = node.arg("padding"), node.arg("weight")
    window = weight.type.shape[2:]
    dilation = node.arg("dilation")
    dilation = list(dilation) * len(window) if len(dilation) == 1 else list(dilation)
    extents = [d * (k - 1) for d, k in zip(dilation, window)]
    if mode == "same" and any(e % 2 for e in extents):
        return _bias_after(node, b)
    padding = [e // 2 for e in extents] if mode == "same" else [0] * len(window)
    default = getattr(A, node.target.split(".")[1]).default
    return b(default, node.arg("input"), weight, node.arg("bias"), node.arg("stride"), padding, dilation,
             node.arg("groups"))


register([c for c in CONVS if c.endswith(".padding")], None, kind=LOWER, lower=_padding_spelled_out)
register([c for c in CONVS if "conv_transpose" not in c and c != "aten.conv2d.default" and not c.endswith(".padding")],
         None, kind=LOWER, lower=_bias_after)
register([c for c in CONVS if "conv_transpose" in c], None, kind=LOWER, lower=_transposed_as_conv)
register("aten.conv2d.default", None, kind=LOWER, lower=_bias_after, window=depthwise)
