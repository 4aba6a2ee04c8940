"""FUSEFORGE_OUTER_TX=64 (codegen/rows.py, off by default until measured): the outer schedule's
statistics kernels take 64 rows a block instead of 32, so that one block reads the 256 bytes of 64
channels of a channels-last pixel whole. The text it changes, and the results against eager on
fresh inputs: on the CPU (one build: nvcc compiles the launch, the CPU twin runs the same row
code) and on the GPU (rows split over blocks, the team's reduction over 16 threads)."""
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


def _blocks(monkeypatch, flag):
    if flag:
        monkeypatch.setenv("FUSEFORGE_OUTER_TX", "64")
    text = generate(plan(capture(ConvStatistics(), _inputs())), name="outer_tx").text
    return {(int(x), int(y)) for x, y in BLOCK.findall(text)}


def test_the_block_only_with_the_flag(monkeypatch):
    default = _blocks(monkeypatch, False)
    assert any(x == 32 for x, _ in default) and not any(x == 64 for x, _ in default), default
    flagged = _blocks(monkeypatch, True)
    assert any(x == 64 and x * y <= 1024 for x, y in flagged) and not any(x == 32 for x, _ in flagged), flagged


def test_matches_eager_on_cpu(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_OUTER_TX", "64")
    assert_compiled_matches(ConvStatistics, _inputs, "cpu", 1e-4)


@pytest.mark.gpu
def test_matches_eager(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_OUTER_TX", "64")
    assert_compiled_matches(ConvStatistics, _inputs, "cuda", 2e-3)   # (the convolution: cuDNN's TF32, in both)
