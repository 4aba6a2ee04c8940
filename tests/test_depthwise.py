"""Depthwise convolutions as window kernels (ops/windows.depthwise; FUSEFORGE_DEPTHWISE=all): each
output its channel's window times that channel's weights, in float32, with the pointwise ops
around it fused; against float64 and eager on fresh random inputs, on the CPU twin and the GPU.
Kernels 3x3 (padded), 3x5 with stride 2 and dilation (1, 2), a 1x1; a tail of the channels."""
import copy

import pytest
import torch
import torch.nn as nn

import fuseforge
from fuseforge.capture import capture
from fuseforge.plan import plan
from fuseforge.plan_windows import WindowKernel

from .test_conv_kernel import random_inputs


class DepthwiseZoo(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(24, 24, 3, padding=1, groups=24)
        self.b = nn.Conv2d(20, 20, (3, 5), stride=2, dilation=(1, 2), padding=(1, 0), groups=20, bias=False)
        self.c = nn.Conv2d(8, 8, 1, groups=8)

    def forward(self, x, y, z):
        return torch.clamp(self.a(x), 0, 6), self.b(torch.tanh(y)) * 2, self.c(z)


inputs = random_inputs((2, 24, 13, 17), (3, 20, 15, 19), (2, 8, 5, 6))


@pytest.fixture(scope="module")
def compiled():
    torch.manual_seed(0)
    model = DepthwiseZoo()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSEFORGE_DEPTHWISE", "all")   # (y's tanh: a computed input)
        return model, plan(capture(model, inputs(0))), fuseforge.compile(model, inputs(0))


def test_every_depthwise_convolution_is_a_window_kernel(compiled):
    _, p, _ = compiled
    windows = [k for k in p.kernels if isinstance(k, WindowKernel)]
    assert sorted(k.window.kernel for k in windows) == [(1, 1), (3, 3), (3, 5)], p.decisions
    assert not [e for e in p.externs if "conv" in e.node.target], [e.node.target for e in p.externs]
    assert any(len(k.prologue) == 1 for k in windows) and all(k.epilogue for k in windows if k.window.kernel != (3, 5))


def test_default_takes_model_inputs_only(monkeypatch):
    """By default a depthwise convolution of a model input is a window kernel; one of a computed
    input (b reads tanh(y)) stays cuDNN's (measured slower); =0 turns them all off."""
    monkeypatch.delenv("FUSEFORGE_DEPTHWISE", raising=False)
    p = plan(capture(DepthwiseZoo(), inputs(0)))
    assert sorted(k.window.kernel for k in p.kernels if isinstance(k, WindowKernel)) == [(1, 1), (3, 3)], p.decisions
    monkeypatch.setenv("FUSEFORGE_DEPTHWISE", "0")
    p = plan(capture(DepthwiseZoo(), inputs(0)))
    assert not [k for k in p.kernels if isinstance(k, WindowKernel)], p.decisions


def _check(model, fast, x):
    """Within float32 sums of float64 (1e-5 of the largest value), and no looser than eager (2x)."""
    with torch.no_grad():
        got, ref = fast(*x), model(*x)
        exact = copy.deepcopy(model).double()(*[t.double() for t in x])
    for a, b, e in zip(got, ref, exact):
        assert a.shape == b.shape and a.stride() == b.stride()
        ours, eagers = float((a.double() - e).abs().max()), float((b.double() - e).abs().max())
        assert ours <= 1e-5 * float(e.abs().max()) and ours <= 2 * eagers + 1e-6, (ours, eagers)


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_float64_and_eager_on_cpu(compiled, seed):
    model, _, fast = compiled
    _check(model, fast, inputs(seed))


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_float64_and_eager_on_cuda(compiled, seed):
    model, _, fast = compiled
    _check(model.cuda(), fast.cuda(), inputs(seed, "cuda"))


def test_unknown_mode_is_an_error(monkeypatch):
    from fuseforge.errors import ConfigError
    monkeypatch.setenv("FUSEFORGE_DEPTHWISE", "fast")
    with pytest.raises(ConfigError, match="FUSEFORGE_DEPTHWISE='fast'"):
        plan(capture(DepthwiseZoo(), inputs(0)))
