"""FUSEFORGE_OUTER_STAGE=1 (codegen/rows.py's stage_pass, off by default until measured): an outer-
schedule reduction whose rows lie side by side in memory (a channels-last convolution's output
reduced over its pixels, a reduction over the middle dim of [B, D, N]) reads each step of its
block's rows 16 bytes at a time into shared memory. The text of the kernels it changes, the cases
it leaves alone, and on the GPU the results against eager on fresh inputs: whole rows and split
ones, steps that end inside a row (the tails), Welford and plain sums."""
import pytest
import torch
import torch.nn as nn

import fuseforge
from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan

STAGED = "[element][row] of a step"   # the staged tile (stage_pass)


class VarMiddle(nn.Module):
    """A variance over dim 1 of [B, D, N]: rows (b, n) side by side along n, D elements apart."""
    def forward(self, x):
        return torch.var(x, dim=1) + x.mean(dim=1)


class ConvInstanceNorm(nn.Module):
    """level2/005's shape of work: a channels-last convolution, then an instance norm over its
    pixels (the statistics a split-row kernel), then a division."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 32, 3)
        self.norm = nn.InstanceNorm2d(32)

    def forward(self, x):
        return self.norm(self.conv(x)) / 2


class ConvBatchNorm(nn.Module):
    """A training-mode batch norm after a channels-last convolution: 64 rows of every pixel of
    every image, split over many blocks."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 64, 3)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def _cases(device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (VarMiddle(), [torch.randn(4, 96, 256, generator=g).to(device)]),
        (ConvInstanceNorm(), [torch.randn(2, 16, 33, 35, generator=g).to(device)]),   # 31 x 33 pixels
        (ConvBatchNorm().train(), [torch.randn(4, 16, 30, 29, generator=g).to(device)]),
    ]


def _text(model, inputs):
    return generate(plan(capture(model, inputs)), name="outer_stage").text


@pytest.mark.parametrize("case", range(3))
def test_staged_only_with_the_flag(monkeypatch, case):
    model, inputs = _cases()[case]
    assert STAGED not in _text(model, inputs)
    monkeypatch.setenv("FUSEFORGE_OUTER_STAGE", "1")
    text = _text(model, inputs)
    assert STAGED in text and "__syncthreads();" in text
    assert "ff::aligned16(ff::operand(" in text                  # the staged input's start aligned


def test_left_alone(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_OUTER_STAGE", "1")
    g = torch.Generator().manual_seed(0)
    assert STAGED not in _text(VarMiddle(), [torch.randn(4, 96, 250, generator=g)])   # 250 rows: not whole blocks
    assert STAGED not in _text(VarMiddle(), [torch.randn(4, 96, 256, generator=g).transpose(1, 2).contiguous()
                                             .transpose(1, 2)])   # rows D apart: the inner schedule


class Together(nn.Module):
    """The three cases in one module: one build (nvcc compiles the staged code; the CPU twin runs
    the plain loop)."""
    def __init__(self):
        super().__init__()
        self.parts = nn.ModuleList(m for m, _ in _cases())

    def forward(self, a, b, c):
        return tuple(m(x) for m, x in zip(self.parts, (a, b, c)))


def test_builds_and_matches_eager_on_cpu(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_OUTER_STAGE", "1")
    torch.manual_seed(0)
    model, reference = Together(), Together()
    reference.load_state_dict(model.state_dict())
    inputs = [x for _, [x] in _cases()]
    fast = fuseforge.compile(model, inputs)
    assert STAGED in _text(Together(), inputs)
    xs = [x for _, [x] in _cases(seed=1)]
    with torch.no_grad():
        for got, want in zip(fast(*xs), reference(*xs)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("case", range(3))
def test_matches_eager(monkeypatch, case):
    monkeypatch.setenv("FUSEFORGE_OUTER_STAGE", "1")
    torch.manual_seed(case)
    model, inputs = _cases("cuda", 0)[case]
    model = model.cuda()
    reference = type(model)().cuda().train(model.training)
    reference.load_state_dict(model.state_dict())
    fast = fuseforge.compile(model, inputs)
    tol = 1e-4 if case == 0 else 2e-3   # (the convolutions: cuDNN's TF32, in both)
    for seed in (1, 2):
        [x] = _cases("cuda", seed)[case][1]
        with torch.no_grad():
            torch.testing.assert_close(fast(x), reference(x), rtol=tol, atol=tol)
