"""Channels-last convolutions (layout.py): chosen only where measured faster and where the
epilogue kernel reads them through a transposing tile; results compared with eager."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fuseforge
from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan


class ConvEpilogues(nn.Module):
    def __init__(self):
        super().__init__()
        self.c2 = nn.Conv2d(16, 24, 3)
        self.c3 = nn.ConvTranspose3d(16, 8, 3)
        self.t2 = nn.ConvTranspose2d(16, 8, 3, stride=2)
        self.c1x1 = nn.Conv2d(16, 8, 1)
        self.few = nn.Conv2d(3, 8, 3)
        self.bias = nn.Parameter(torch.randn(24, 1, 1))

    def forward(self, x, v, r):
        a = torch.min(self.c2(x), torch.tensor(0.3)) + self.bias     # channels-last, per-channel operand
        b = torch.tanh(self.c3(v)) * 2                                # 3D, transposed
        c = torch.relu(self.t2(x)) + r                                # transposed, an NCHW operand too
        d = torch.sigmoid(self.c1x1(x))                               # 1x1: stays NCHW
        e = self.few(x[:, :3]) + 1                                    # 3 input channels: stays NCHW
        return a, b, c, d, e


class ConvRows(nn.Module):
    """Row kernels reading channels-last outputs: batch norm (rows split over blocks), softmax
    over channels, group norm (its grouped view of a channels-last tensor)."""
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(16, 8, 3, padding=1), nn.Conv2d(16, 8, 3), nn.Conv2d(16, 8, 3)
        self.bn, self.gn = nn.BatchNorm2d(8), nn.GroupNorm(2, 8)

    def forward(self, x):
        return torch.relu(self.bn(self.a(x))), torch.softmax(self.b(x), 1), self.gn(self.c(x))


def row_inputs(seed, device="cpu"):
    return [torch.randn(2, 16, 64, 64, generator=torch.Generator().manual_seed(seed)).to(device)]


def test_row_readers():
    from fuseforge.plan_rows import RowKernel
    p = plan(capture(ConvRows(), row_inputs(0)))
    cl = {e.node.name for e in p.externs if e.channels_last}
    assert cl == {"conv2d", "conv2d_1", "conv2d_2"}, p.decisions
    rows = [k for k in p.kernels if isinstance(k, RowKernel)]
    assert len(rows) == 3 and any(k.splits > 1 for k in rows), [(k.name, k.splits) for k in rows]
    torch.manual_seed(0)
    model = ConvRows()
    fast = fuseforge.compile(model, row_inputs(0))
    with torch.no_grad():
        _check(fast(*row_inputs(1)), model(*row_inputs(1)))


class ConvPools(nn.Module):
    """Window kernels reading channels-last outputs (threads walk channels fastest)."""
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(16, 8, 3), nn.ConvTranspose3d(16, 8, 3)
        self.bias = nn.Parameter(torch.randn(8, 1, 1))

    def forward(self, x, v):
        p = F.max_pool2d(torch.tanh(self.a(x)) * 2 + self.bias, 3, 2, 1) + 1
        q = torch.sigmoid(F.avg_pool3d(self.b(v), 2, ceil_mode=True))
        return p, q


def test_window_readers():
    from fuseforge.plan_windows import WindowKernel
    from fuseforge.codegen.window import reads_channels_last
    x, v, _ = inputs(0)
    p = plan(capture(ConvPools(), [x, v]))
    assert all(e.channels_last for e in p.externs), p.decisions
    pools = [k for k in p.kernels if isinstance(k, WindowKernel)]
    assert len(pools) == 2 and all(reads_channels_last(k) for k in pools)
    torch.manual_seed(0)
    model = ConvPools()
    fast = fuseforge.compile(model, [x, v])
    with torch.no_grad():
        for seed in (1, 2):
            x, v, _ = inputs(seed)
            _check(fast(x, v), model(x, v))


def inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 16, 11, 13, generator=g)
    v = torch.randn(2, 16, 5, 6, 7, generator=g)
    r = torch.randn(2, 8, 23, 27, generator=g)                       # the NCHW residual of t2
    return [t.to(device) for t in (x, v, r)]


def test_choice():
    p = plan(capture(ConvEpilogues(), inputs(0)))
    chosen = {e.node.target: e.channels_last for e in p.externs if "conv" in e.node.target}
    cl = [e.node.name for e in p.externs if e.channels_last]
    assert len(cl) == 3, p.decisions
    assert chosen["aten.conv_transpose3d.input"] and chosen["aten.conv_transpose2d.input"], chosen
    src = generate(p, name="layout").text
    assert src.count(".contiguous(at::MemoryFormat::ChannelsLast") == 3     # the input of each
    assert src.count("ff::converted_once(") == 3                             # the weight, once
    assert src.count("__shared__ float t_in") >= 3     # the epilogues read through tiles


@pytest.fixture(scope="module")
def compiled():
    torch.manual_seed(0)
    model = ConvEpilogues()
    return model, fuseforge.compile(model, inputs(0))


def _check(new, ref):
    for a, b in zip(new, ref):
        assert a.shape == b.shape and a.stride() == b.stride(), (a.shape, a.stride(), b.stride())
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_eager_on_cpu(compiled, seed):
    model, fast = compiled
    with torch.no_grad():
        _check(fast(*inputs(seed)), model(*inputs(seed)))


def test_weight_updated_in_place_is_converted_again():
    torch.manual_seed(0)
    model = ConvEpilogues()
    fast = fuseforge.compile(model, inputs(0))
    with torch.no_grad():
        fast(*inputs(1))
        model.t2.weight.mul_(-0.5)           # bumps the version counter: the cached copy is stale
        _check(fast(*inputs(1)), model(*inputs(1)))


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_eager_on_cuda(compiled, seed):
    model, fast = compiled
    x = inputs(seed, "cuda")
    with torch.no_grad():
        _check(fast.cuda()(*x), model.cuda()(*x))


@pytest.mark.gpu
def test_row_readers_on_cuda():
    torch.manual_seed(0)
    model = ConvRows().cuda()
    fast = fuseforge.compile(model, row_inputs(0, "cuda"))
    with torch.no_grad():
        _check(fast(*row_inputs(1, "cuda")), model(*row_inputs(1, "cuda")))


@pytest.mark.gpu
def test_window_readers_on_cuda():
    torch.manual_seed(0)
    model = ConvPools().cuda()
    x, v, _ = inputs(0, "cuda")
    fast = fuseforge.compile(model, [x, v])
    with torch.no_grad():
        x, v, _ = inputs(1, "cuda")
        _check(fast(x, v), model(x, v))
