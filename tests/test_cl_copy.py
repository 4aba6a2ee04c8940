"""The copy to channels-last (codegen/cl_copy.py: 32 channels x 128 pixels a block, float4 reads and
writes where they fit) on every path that copies to channels-last: a cuDNN convolution's input, a
cat's pieces written into their slices, a generated convolution's input (rounded to TF32), with
channel counts, offsets and pixel counts that do and do not allow float4, against eager."""
import pytest
import torch

import fuseforge
from fuseforge.capture import capture
from fuseforge.emit import generate
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


@pytest.mark.parametrize("mode, calls", [("auto", {"ff_cl_copy<false>(": 2, "ff_cl_copy<true>(": 0}),
                                         ("all", {"ff_cl_copy<false>(": 1, "ff_cl_copy<true>(": 1})])
def test_every_copy_to_channels_last_launches_it(monkeypatch, mode, calls):
    monkeypatch.setenv("FUSEFORGE_CONV", mode)
    text = generate(plan(capture(CatNet(20), [_x(20, 15, 0)])), name="catnet").text
    for call, n in calls.items():
        assert text.count(call) == n
    assert text.count("ff_transpose_kernel<<<") == 1   # (the copy back to NCHW only)


@pytest.mark.gpu
@pytest.mark.parametrize("c, hw", [(20, 15), (18, 16), (32, 32)])   # float4 writes, reads, both
@pytest.mark.parametrize("mode", ["auto", "all"])
def test_matches_eager(monkeypatch, c, hw, mode):
    monkeypatch.setenv("FUSEFORGE_CONV", mode)
    torch.manual_seed(0)
    model = CatNet(c).cuda()
    fast = fuseforge.compile(model, [_x(c, hw, 0, "cuda")])
    with torch.no_grad():
        for seed in (1, 2, 3):
            x = _x(c, hw, seed, "cuda")
            torch.testing.assert_close(fast(x), model(x), rtol=1e-2, atol=1e-2)   # (TF32 convolutions, as eager's)
