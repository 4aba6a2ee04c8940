"""The vector path of a pointwise kernel (codegen/pointwise.py) loads a split's half 4 values at a
time and a per-channel bias once a step (FUSEFORGE_PW_RUNS=0: not). The
text of the kernels the rule makes, the cases it must leave alone, and on the GPU the results
against eager on fresh inputs."""
import pytest
import torch

import fuseforge
from fuseforge.capture import capture
from fuseforge.codegen.pointwise import render
from fuseforge.plan import Kernel, plan


class Gated(torch.nn.Module):
    """WaveNet's gate over a [N, 2C, L] tensor: the halves of a split, a bias per channel each."""

    def __init__(self, c):
        super().__init__()
        self.b1, self.b2 = torch.nn.Parameter(torch.randn(c, 1)), torch.nn.Parameter(torch.randn(c, 1))

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a + self.b1) * torch.sigmoid(b + self.b2)


def _x(length, seed=0, device="cpu"):
    return torch.randn(2, 16, length, generator=torch.Generator().manual_seed(seed)).to(device)


def _cuda_text(length):
    [k] = [k for k in plan(capture(Gated(8), [_x(length)])).kernels if type(k) is Kernel]
    return render(k).cuda


def test_runs_and_shared_values():
    text = _cuda_text(12)
    assert text.count("ff_load4(in") == 2                       # the two halves, 4 at a time
    assert text.count("const float in") == 2                    # the biases, once a step
    assert "ff_aligned16(a.in0)" in text                        # the halves' alignment checked at launch


def test_left_alone(monkeypatch):
    text = _cuda_text(10)                                       # rows of 10: a step would cross them
    assert "ff_load4(in" not in text and "const float in" not in text
    monkeypatch.setenv("FUSEFORGE_PW_RUNS", "0")
    assert "ff_load4(in" not in _cuda_text(12)                  # turned off


@pytest.mark.gpu
@pytest.mark.parametrize("length", [12, 10])
def test_matches_eager(length):
    torch.manual_seed(0)
    model = Gated(8).cuda()
    fast = fuseforge.compile(model, [_x(length, device="cuda")])
    for seed in (1, 2):
        x = _x(length, seed, "cuda")
        with torch.no_grad():
            torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-5)
