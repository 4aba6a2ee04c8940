"""FUSEFORGE_CL_COPY=128 (codegen/cl_copy.py, off): the copy to channels-last with a 32 x 128 tile and
float4 reads and writes where they fit. The default text keeps the 32 x 32 tile byte for byte; the
variant computes what eager computes, on every path that copies to channels-last: a cuDNN
convolution's input, a cat's pieces written into their slices, a generated convolution's input
(rounded to TF32), with channel counts, offsets and pixel counts that do and do not allow float4."""
import pytest
import torch

import fuseforge
from fuseforge.capture import capture
from fuseforge.codegen import cl_copy, conv, cpp
from fuseforge.emit import generate
from fuseforge.errors import ConfigError
from fuseforge.plan import plan


class CatNet(torch.nn.Module):
    """A cat along the channels between two convolutions of 16 or more input channels."""

    def __init__(self, c):
        super().__init__()
        self.a = torch.nn.Conv2d(c, 16, 3, padding=1)
        self.b = torch.nn.Conv2d(c + 16, 24, 3, padding=1)

    def forward(self, x):
        y = torch.cat([x, torch.relu(self.a(x))], 1)
        return torch.sigmoid(self.b(y))


def _x(c, hw, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, c, hw, hw, generator=g).to(device)


def test_the_default_text_is_the_one_replaced():
    # the variant replaces these texts: a change of the default that misses them fails here
    assert cl_copy.TO_CHANNELS_LAST[0] in cpp.CUDA_PRELUDE
    assert cl_copy.INTO_CHANNELS_LAST[0] in cpp.CAT_CL_CUDA
    assert cl_copy.CONV_INPUT[0] in conv.CONV_LIBRARY


@pytest.mark.parametrize("mode, calls", [("auto", {"ff_cl_copy<false>(": 2, "ff_cl_copy<true>(": 0}),
                                         ("all", {"ff_cl_copy<false>(": 1, "ff_cl_copy<true>(": 1})])
def test_off_by_default_and_every_launch_replaced(monkeypatch, mode, calls):
    monkeypatch.setenv("FUSEFORGE_CONV", mode)
    p = plan(capture(CatNet(20), [_x(20, 15, 0)]))
    monkeypatch.delenv("FUSEFORGE_CL_COPY", raising=False)
    default = generate(p, name="catnet").text
    assert "ff_cl_copy" not in default
    monkeypatch.setenv("FUSEFORGE_CL_COPY", "128")
    text = generate(p, name="catnet").text
    for call, n in calls.items():
        assert text.count(call) == n
    assert "ff_transpose_kernel<<<grid, dim3(32, 8), 0, static_cast<cudaStream_t>(stream)>>>(\n      x, y, " \
        "static_cast<unsigned>(c)" not in text   # no launch of the 32 x 32 tile to channels-last is left
    monkeypatch.setenv("FUSEFORGE_CL_COPY", "64")
    with pytest.raises(ConfigError, match="FUSEFORGE_CL_COPY='64'"):
        generate(p, name="catnet")


@pytest.mark.gpu
@pytest.mark.parametrize("c, hw", [(20, 15), (18, 16), (32, 32)])   # float4 writes, reads, both
@pytest.mark.parametrize("mode", ["auto", "all"])
def test_matches_eager_and_the_default_copy(monkeypatch, c, hw, mode):
    monkeypatch.setenv("FUSEFORGE_CONV", mode)
    torch.manual_seed(0)
    model = CatNet(c).cuda()
    outs = {}
    for flag in ("32", "128"):
        monkeypatch.setenv("FUSEFORGE_CL_COPY", flag)
        fast = fuseforge.compile(model, [_x(c, hw, 0, "cuda")])
        with torch.no_grad():
            outs[flag] = [fast(_x(c, hw, seed, "cuda")) for seed in (1, 2, 3)]
    with torch.no_grad():
        want = [model(_x(c, hw, seed, "cuda")) for seed in (1, 2, 3)]
    for got, ref, default in zip(outs["128"], want, outs["32"]):
        torch.testing.assert_close(got, ref, rtol=1e-2, atol=1e-2)   # (TF32 convolutions, as eager's)
        assert torch.equal(got, default)   # the same values copied: the same result bit for bit


def test_the_variant_builds_and_matches_eager_on_the_cpu(monkeypatch):
    """The extension builds with the variant (its CUDA side compiled too where CUDA is installed)
    and its CPU twin computes eager's values."""
    monkeypatch.setenv("FUSEFORGE_CONV", "all")   # both instantiations: a generated convolution's input
    monkeypatch.setenv("FUSEFORGE_CL_COPY", "128")
    torch.manual_seed(0)
    model = CatNet(20)
    fast = fuseforge.compile(model, [_x(20, 15, 0)])
    with torch.no_grad():
        for seed in (1, 2):
            torch.testing.assert_close(fast(_x(20, 15, seed)), model(_x(20, 15, seed)), rtol=1e-2, atol=1e-2)
