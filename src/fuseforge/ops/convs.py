"""Convolutions: ATen externs (cuDNN) whose bias moves into the generated kernel after them.

Measured on an H100/H200 (scripts/profile_kernels.py): cuDNN's convolution kernels do not add
the bias; ATen adds it with a separate in-place elementwise kernel over the whole output (0.20 ms
of a 0.75 ms conv2d → min → softmax, more than the 0.18 ms convolution itself). Lowered to the
convolution without bias and an add of the bias viewed as [C, 1, ...], the add is one more
pointwise op that fuses into the kernel reading the output, where it costs nothing. The values
are eager's: the same float32 sum of the convolution's result and the bias.
"""
from __future__ import annotations

import torch

from ..graph import Node, Value
from .registry import LOWER, register
from .windows import depthwise

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


register([c for c in CONVS if c != "aten.conv2d.default"], None, kind=LOWER, lower=_bias_after)
register("aten.conv2d.default", None, kind=LOWER, lower=_bias_after, window=depthwise)
