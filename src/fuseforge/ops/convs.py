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

import os

import torch

from ..graph import Node, Value
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


def _transposed_as_conv(node: Node, b):
    """A 3D transposed convolution of stride 1 (one group, no output padding) as the convolution it
    is: of the weights with input and output channels swapped and every window flipped, padded by
    dilation x (window - 1) - padding. cuDNN ran level1/036's (32 -> 16 channels, 3x3x3, 16 x 64 x
    64) as the convolution in 0.29 of the transposed one's time, both TF32, 2.9e-4 of the largest
    value from float64 either way (bench/session31/final/convt_as_conv.log); in 2D 0.96-0.99, not
    worth the weights flipped on every call. Only with plan_conv.MIN_IN_CHANNELS_3D or more input
    channels, where the convolution, cuDNN's or generated, runs TF32 as eager's does. The flip and
    the copy that makes the weights contiguous run each call (a few microseconds); its bias moves
    out in the next round. FUSEFORGE_CONVT_AS_CONV=0 turns it off."""
    from ..plan_conv import MIN_IN_CHANNELS_3D
    x, w = node.arg("input"), node.arg("weight")
    window = w.type.shape[2:]
    stride, padding, out_padding, dilation = (per_dim(node.arg(a), 3) for a in
                                              ("stride", "padding", "output_padding", "dilation"))
    pads = [d * (k - 1) - p for d, k, p in zip(dilation, window, padding)]
    if os.environ.get("FUSEFORGE_CONVT_AS_CONV", "1") == "0" or int(node.arg("groups")) != 1 or \
            any(s != 1 for s in stride) or any(out_padding) or min(pads) < 0 or x.type.ndim != 5 or \
            x.type.shape[1] < MIN_IN_CHANNELS_3D:
        return _bias_after(node, b)
    flipped = b(A.flip.default, b(A.transpose.int, w, 0, 1), [2, 3, 4])
    weight = b(A.clone.default, flipped, memory_format=torch.contiguous_format)
    return b(A.conv3d.default, x, weight, node.arg("bias"), [1, 1, 1], pads, list(dilation), 1)


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
register([c for c in CONVS if c not in ("aten.conv2d.default", "aten.conv_transpose3d.input")
          and not c.endswith(".padding")], None, kind=LOWER, lower=_bias_after)
register("aten.conv_transpose3d.input", None, kind=LOWER, lower=_transposed_as_conv)
register("aten.conv2d.default", None, kind=LOWER, lower=_bias_after, window=depthwise)
