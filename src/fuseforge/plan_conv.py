"""plan_conv: 2D convolutions as generated implicit-GEMM kernels with their epilogue fused.

A conv kernel computes one aten.conv2d (its bias already moved into the pointwise ops after it,
ops/convs.py) on the H100's TF32 tensor cores and runs the pointwise group that consumes its
result in the store of each output element, written in the graph's own layout (NCHW): the
convolution's result is never written channels-last and read back, and the output needs no
conversion (codegen/conv.py has the kernel). Numerics: cuDNN's TF32 convolution, which eager
runs by default, rounds both operands to TF32 (to nearest) and sums in float32 (measured on an
H100: it matches float64 convolutions of the rounded operands to 5.6e-5 of the largest value,
truncated operands to 5.5e-4, bench/session15/igemm/cudnn_rounding_h100.txt); the kernel rounds
both the same way.

Measured on an H100 (bench/session15/igemm, the bundled example's convolution with its
epilogue, NCHW in and out): 1.53 ms with the input converted to channels-last and rounded by the
kernel that reads it, against cuDNN's 1.71 for the convolution alone (its output channels-last,
the bias added by a second pass) and torch.compile's 1.96 for the whole model. In the models
(NO_EPILOGUE below) it wins on some and loses on others, so it is off by default until its main
loop is faster: FUSEFORGE_CONV=1 turns it on.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from .graph import Node, Value
from .layout import contiguous_strides
from .plan_fusion import FusedOps, external_inputs, find_epilogue, needed_outside

MIN_IN_CHANNELS = 16    # fewer input channels: cuDNN (a k-slice of 32 channels would be mostly zeros)
MIN_OUT_CHANNELS = 16
# Measured on an H100 with every convolution generated (bench/session15/ab_conv_h100.json, new /
# old): those with a pointwise epilogue 0.89-1.09 (level2/006 0.890, 004 0.946, the example
# 0.998, 024 1.088), those without one (a row or window kernel, or a batch norm, reads the result)
# 1.01-1.35 (level2/001 1.006, 016 1.124; VGG's and U-Net's blocks 1.350, 1.215): without an
# epilogue cuDNN's channels-last output, read in place by those kernels, stays.
NO_EPILOGUE = ("cuDNN: no pointwise epilogue to fuse (its readers read cuDNN's channels-last result in place: "
               "measured faster, bench/session15/ab_conv_h100.json)")


@dataclass
class Conv:
    x: Value                 # [N, C, H, W], contiguous
    w: Value                 # [K, C, R, S], contiguous
    n: int
    c: int
    h: int
    w_: int
    k: int
    r: int
    s: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    oh: int
    ow: int

    @property
    def flops(self) -> int:
        return 2 * self.n * self.oh * self.ow * self.k * self.c * self.r * self.s

    def describe(self) -> str:
        return (f"[{self.n}, {self.c}, {self.h}, {self.w_}] * [{self.k}, {self.c}, {self.r}, {self.s}] "
                f"stride {list(self.stride)} padding {list(self.padding)} dilation {list(self.dilation)}")


@dataclass(eq=False)
class ConvKernel(FusedOps):
    name: str
    nodes: list[Node]        # the convolution, then its epilogue (graph order)
    node: Node
    conv: Conv
    epilogue: list[Node]
    inputs: list[Value]
    outputs: list[Value]


CONV2D = "aten.conv2d.default"


def enabled() -> bool:
    return os.environ.get("FUSEFORGE_CONV", "0") == "1"


def decides(node: Node) -> bool:
    """Whether form_conv_kernels decides this node (a 2D convolution, generated ones switched on)."""
    return node.target == CONV2D and enabled()


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[-1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


def conv_of(node: Node) -> Conv | str:
    """The convolution the generated kernel computes for this node, or why not."""
    x, w, y = node.arg("input"), node.arg("weight"), node.outputs[0]
    if not torch.backends.cudnn.allow_tf32:
        return "TF32 not allowed (torch.backends.cudnn.allow_tf32 is off: cuDNN computes it in float32)"
    if isinstance(node.arg("bias"), Value):
        return "a bias not moved out (ops/convs.py)"
    if any(v.type.dtype != torch.float32 for v in (x, w, y)):
        return "not float32"
    if x.type.ndim != 4 or w.type.ndim != 4:
        return "an unbatched input"
    if int(node.arg("groups")) != 1:
        return "a grouped convolution"
    for v, what in ((x, "input"), (w, "weight"), (y, "result")):
        if v.type.strides != contiguous_strides(v.type.shape):
            return f"a {what} that is not contiguous NCHW"
    n, c, h, w_ = x.type.shape
    k, _, r, s = w.type.shape
    if c % 4 or c < MIN_IN_CHANNELS:
        return f"{c} input channels (the kernel reads them 4 at a time, {MIN_IN_CHANNELS} or more)"
    if k < MIN_OUT_CHANNELS:
        return f"{k} output channels (fewer than {MIN_OUT_CHANNELS})"
    _, _, oh, ow = y.type.shape
    if max(x.type.numel, y.type.numel, n * oh * ow * 128) >= 2**31:
        return "more than 2^31 elements"
    return Conv(x, w, n, c, h, w_, k, r, s, _pair(node.arg("stride")), _pair(node.arg("padding")),
                _pair(node.arg("dilation")), oh, ow)


def form_conv_kernels(graph, groups, group_of, closed, users, live, decisions, why_extern: dict) -> list[ConvKernel]:
    """A conv kernel for every 2D convolution the generated kernel takes (FUSEFORGE_CONV=1) and
    whose result a pointwise group consumes; that group, its epilogue, is removed from `groups`."""
    if not enabled():
        return []
    kernels = []
    for node in graph.nodes:
        if node.target != CONV2D:
            continue
        members = {node}
        group = find_epilogue(node.outputs[0], members, groups, group_of, closed, users, live)
        spec = conv_of(node) if group is not None else NO_EPILOGUE
        if isinstance(spec, str):
            why_extern[node] = spec if group is None else f"cuDNN: {spec}"
            decisions.append(f"{node.name} ({node.target}): not a generated convolution, {why_extern[node]}")
            continue
        epilogue = list(group.nodes)
        members |= set(group.nodes)
        groups.remove(group)
        decisions.append(f"{node.name}: pointwise group {epilogue[0].name}… fused into its epilogue")
        nodes = [node] + epilogue
        outputs = [m.outputs[0] for m in nodes if needed_outside(m, members, users, live)]
        kernels.append(ConvKernel("", nodes, node, spec, epilogue, external_inputs(nodes, members), outputs))
    return kernels


def tiles(conv: Conv) -> tuple[int, int, int]:
    """(output channels a block, k-slices of 32 channels per (r, s), k-slices in all)."""
    bn = 64 if conv.k <= 64 else 128
    cs = math.ceil(conv.c / 32)
    return bn, cs, conv.r * conv.s * cs
