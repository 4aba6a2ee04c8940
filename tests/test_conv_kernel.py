"""Generated convolutions (plan_conv.py, codegen/conv.py; FUSEFORGE_CONV=1): the plan, and the
results against references on fresh random inputs, on the CPU twin and on the GPU (the implicit
GEMM on TF32 tensor cores):
- against float64 convolutions of the operands rounded to TF32 as cuDNN rounds them (tight: only
  the float32 sums differ), so a wrong tap, channel or tile shows;
- against eager: no looser than eager's own TF32 convolution (GPU) or within KernelBench's
  tolerance of eager's float32 one (CPU)."""
import copy

import pytest
import torch
import torch.nn as nn

import fuseforge
from fuseforge.capture import capture
from fuseforge.plan import plan
from fuseforge.plan_conv import ConvKernel

from .test_gemm import _tf32
from .test_layout import _no_looser_than_eager


class ConvZoo(nn.Module):
    """Tails everywhere: 24 input channels (part of a 32-channel k-slice), 40 and 80 output
    channels (part of a 64- or 128-channel tile), pixel counts that are not a multiple of the
    128-pixel tile; padding, stride and dilation; an epilogue, a result that is also read by its
    epilogue, and an epilogue that reads the convolution's own input."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(24, 40, 3, padding=1)
        self.b = nn.Conv2d(32, 80, 3, stride=2, padding=2, dilation=2)
        self.c = nn.Conv2d(16, 16, 1, bias=False)

    def forward(self, x, y, z):
        p = torch.relu(self.a(x)) * 2
        q = self.b(y)
        return p, q, q.sigmoid() - 0.5, self.c(z) + z


def inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g).to(device) for s in ((2, 24, 9, 11), (2, 32, 13, 10), (3, 16, 5, 7))]


def rounded_reference(model, x):
    """The model in float64 with every convolution's input and weight rounded to TF32 first."""
    m = copy.deepcopy(model).double()
    for conv in (m.a, m.b, m.c):
        conv.weight.data = _tf32(conv.weight.data.float()).double()
        conv.register_forward_pre_hook(lambda mod, args: (_tf32(args[0].float()).double(),))
    with torch.no_grad():
        return m(*[t.double() for t in x])


@pytest.fixture(scope="module")
def compiled():
    torch.manual_seed(0)
    model = ConvZoo()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSEFORGE_CONV", "1")
        p = plan(capture(model, inputs(0)))
        return model, p, fuseforge.compile(model, inputs(0))


def test_plan_takes_every_convolution(compiled, monkeypatch):
    _, p, _ = compiled
    convs = [k for k in p.kernels if isinstance(k, ConvKernel)]
    assert sorted(len(k.epilogue) for k in convs) == [1, 3, 3], p.decisions
    assert not [e for e in p.externs if "conv" in e.node.target], p.decisions
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)   # off by default for now
    assert not [k for k in plan(capture(ConvZoo(), inputs(0))).kernels if isinstance(k, ConvKernel)]


class ConvMean(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 32, 3)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


def test_a_convolution_without_epilogue_stays_cudnn(monkeypatch):
    """Its bias add goes into the mean's row kernel: nothing to fuse, so cuDNN runs it."""
    monkeypatch.setenv("FUSEFORGE_CONV", "1")
    p = plan(capture(ConvMean(), [torch.randn(2, 16, 8, 8)]))
    assert not [k for k in p.kernels if isinstance(k, ConvKernel)], p.decisions
    assert any("no pointwise epilogue" in e.reason for e in p.externs if "conv" in e.node.target), p.decisions


def _close_to_rounded(got, want):
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.is_contiguous()
        err = float((a.double() - b.to(a.device)).abs().max())
        assert err <= 1e-5 * float(b.abs().max()) + 1e-6, err


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_rounded_reference_on_cpu(compiled, seed):
    model, _, fast = compiled
    x = inputs(seed)
    with torch.no_grad():
        got, ref = fast(*x), model(*x)
    _close_to_rounded(got, rounded_reference(model, x))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_rounded_reference_and_no_looser_than_eager_on_cuda(compiled, seed):
    model, _, fast = compiled
    model, fast = model.cuda(), fast.cuda()
    x = inputs(seed, "cuda")
    with torch.no_grad():
        got = fast(*x)
    _close_to_rounded(got, rounded_reference(model, x))
    # eager: cuDNN under PyTorch's default flags (TF32 in at least one of NCHW and channels-last)
    _no_looser_than_eager(model, fast, x)
