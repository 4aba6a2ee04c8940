"""Launch options of a channels-last convolution's statistics and normalize, each off by default
until measured: FUSEFORGE_OUTER_TX=64, the outer schedule's statistics kernels take 64 rows a block
instead of 32 (one block reads the 256 bytes of 64 channels of a pixel whole, codegen/rows.py);
FUSEFORGE_ROW_REVERSE=1, their row tiles go last to first, and FUSEFORGE_CL_TILE_REVERSE=1, the
transposing tiles of the pointwise kernel after them (codegen/pointwise.py): the tensor's end, left
in L2 by the kernel before, read first. The text each changes, and the results against eager on
fresh inputs: on the CPU (one build: nvcc compiles the launches, the CPU twin runs the same row and
element code) and on the GPU (rows split over blocks, the team's reduction over 16 threads, the
tiles' order)."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan

from .outputs import assert_compiled_matches

BLOCK = re.compile(r"fused_\w+(?:<\d+>)?<<<[^;]*dim3\((\d+), (\d+)\)")   # the row kernel's launch (rows.py)


class ConvStatistics(nn.Module):
    """level2/005's and 021's work at a small size: channels-last convolutions of 64 output
    channels, an instance norm over the pixels, and a mean over them."""
    def __init__(self):
        super().__init__()
        self.conv, self.conv2 = nn.Conv2d(16, 64, 3), nn.Conv2d(16, 64, 3)
        self.norm = nn.InstanceNorm2d(64)

    def forward(self, x):
        return self.norm(self.conv(x)) / 2, torch.tanh(F.hardtanh(self.conv2(x)).mean((2, 3)))


def _inputs(device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 16, 98, 98, generator=g).to(device)]   # 96 x 96 pixels: rows split


FLAGS = [("FUSEFORGE_OUTER_TX", "64"), ("FUSEFORGE_ROW_REVERSE", "1"), ("FUSEFORGE_CL_TILE_REVERSE", "1")]
REVERSED = {FLAGS[1]: "const uint32_t tile = gridDim.x / splits - 1u - blockIdx.x / splits;",
            FLAGS[2]: "const uint32_t img = (gridDim.z - 1u - blockIdx.z);"}


def _text(monkeypatch, flag=None):
    if flag:
        monkeypatch.setenv(*flag)
    return generate(plan(capture(ConvStatistics(), _inputs())), name="launch_flags").text


def _blocks(text):
    return {(int(x), int(y)) for x, y in BLOCK.findall(text)}


def test_the_block_only_with_its_flag(monkeypatch):
    default = _blocks(_text(monkeypatch))
    assert any(x == 32 for x, _ in default) and not any(x == 64 for x, _ in default), default
    flagged = _blocks(_text(monkeypatch, FLAGS[0]))
    assert any(x == 64 and x * y <= 1024 for x, y in flagged) and not any(x == 32 for x, _ in flagged), flagged


@pytest.mark.parametrize("flag", FLAGS[1:], ids=[f for f, _ in FLAGS[1:]])
def test_the_order_only_with_its_flag(monkeypatch, flag):
    assert not any(r in _text(monkeypatch) for r in REVERSED.values())
    text = _text(monkeypatch, flag)
    assert [r in text for r in REVERSED.values()] == [f == flag for f in REVERSED], flag


def test_matches_eager_on_cpu(monkeypatch):
    for flag in FLAGS:   # (one build: all together)
        monkeypatch.setenv(*flag)
    assert_compiled_matches(ConvStatistics, _inputs, "cpu", 1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("flag", FLAGS, ids=[f for f, _ in FLAGS])
def test_matches_eager(monkeypatch, flag):
    monkeypatch.setenv(*flag)
    assert_compiled_matches(ConvStatistics, _inputs, "cuda", 2e-3)   # (the convolution: cuDNN's TF32, in both)
