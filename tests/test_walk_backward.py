"""Kernels that walk a tensor last to first (codegen/pointwise.walk_backward): where the kernel before
left a tensor written in the model with its end in L2, the outer schedule's row tiles (codegen/rows.py)
and the channels-last transposing tiles (codegen/pointwise.py) go last to first, and the kernel after
goes first to last again. The direction each kernel takes, and the results against eager on fresh
inputs: on the CPU (one build: nvcc compiles the launches, the CPU twin runs the same row and element
code, not the tiles' order) and on the GPU (the reversed tiles, split rows, the last tile partial)."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan

from .outputs import assert_compiled_matches


class Chains(nn.Module):
    """level2/005's and 021's work at a small size (a channels-last convolution's instance norm: the
    statistics, then the normalize; a mean over its pixels), a convolution's mish (one transposing
    kernel after it) and an L1 normalize of a model input over its channels (outer rows)."""
    def __init__(self):
        super().__init__()
        self.conv, self.conv2, self.conv3 = nn.Conv2d(16, 64, 3), nn.Conv2d(16, 64, 3), nn.Conv2d(16, 64, 3)
        self.norm = nn.InstanceNorm2d(64)

    def forward(self, x, y):
        return (self.norm(self.conv(x)) / 2, torch.tanh(F.hardtanh(self.conv2(x)).mean((2, 3))),
                F.mish(self.conv3(x)), y / y.abs().sum(1, keepdim=True))


def _inputs(device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 16, 98, 98, generator=g).to(device),   # 96 x 96 pixels: rows split
            torch.randn(2, 64, 95, 93, generator=g).to(device)]


BACK = {"tile": "gridDim.x / splits - 1u - blockIdx.x / splits", "img": "(gridDim.z - 1u - blockIdx.z)"}
FORWARD = {"tile": "blockIdx.x", "img": "blockIdx.z"}


def _origins(text) -> dict[str, str]:
    """Each fused kernel's first tile or image origin: `tile = ...` or `img = ...`, as written."""
    out = {}
    for m in re.finditer(r"__global__ void __launch_bounds__\(\d+\) (fused_\w+)_kernel\(", text):
        origin = re.compile(r"const uint32_t (tile|img) = ([^;]*);").search(text, m.end())
        out[m.group(1)] = (origin.group(1), origin.group(2))
    return out


def test_directions_alternate_along_each_chain():
    origins = _origins(generate(plan(capture(Chains(), _inputs())), name="walk_backward").text)
    stats = next(k for k in origins if "var_mean" in k)   # (with the mean: one kernel over both convolutions)
    want = {stats: ("tile", BACK["tile"]),                  # the convolutions' ends in L2: from there
            "fused_add_sub_mul_div": ("img", FORWARD["img"]),   # after the statistics: their end is the start
            "fused_add_mish": ("img", BACK["img"]),             # right after its convolution
            "fused_abs_sum_div": ("tile", FORWARD["tile"])}     # a model input: from DRAM either way
    assert origins == want, origins


def test_matches_eager_on_cpu():
    assert_compiled_matches(Chains, _inputs, "cpu", 1e-4)


@pytest.mark.gpu
def test_matches_eager():
    assert_compiled_matches(Chains, _inputs, "cuda", 2e-3)   # (the convolutions: cuDNN's TF32, in both)
