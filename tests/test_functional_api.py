"""The pointwise ops of the core issue, written as users write them (torch / F / methods):
all of them must be generated (no extern) and match eager on fresh random inputs."""
import pytest
import torch
import torch.nn.functional as F

import fuseforge
from fuseforge.capture import capture
from fuseforge.plan import plan


class Activations(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.randn(6, 1))

    def forward(self, x, y):
        outs = [
            torch.min(x, torch.tensor(0.5)), torch.max(x, y), x.clamp(-0.2, 0.3), torch.clamp(x, min=0.1),
            x.abs(), -x, torch.exp(x), torch.log(x.abs() + 1e-3), torch.sqrt(x.abs()), torch.rsqrt(x.abs() + 0.5),
            x ** 2, torch.pow(x.abs(), 0.7), 1.0 / (x.abs() + 1), torch.reciprocal(x.abs() + 1),
            F.relu(x), F.relu6(4 * x), F.leaky_relu(x, 0.2), F.hardtanh(x, -0.4, 0.4), F.hardsigmoid(3 * x),
            F.hardswish(3 * x), torch.sigmoid(x), torch.tanh(x), F.gelu(x), F.gelu(x, approximate="tanh"),
            F.silu(x), F.mish(x), F.softplus(x, beta=2.0, threshold=3.0), F.softsign(x), F.elu(x, alpha=0.7),
            F.selu(x), torch.where(x > y, x, y), torch.where(x < 0, 0.0, x), (x >= y).float(), (x != 0.5),
            x.to(torch.float64) * 2, (x * 100).int(), x + self.bias, 2 - x, x / 3, 3 / (x.abs() + 1),
            (x * self.bias).clamp_max(1.0) * 0.5 + y,
        ]
        return tuple(outs)


def _inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 6, 7, generator=g)
    y = torch.randn(7, 6, generator=g).t()        # broadcast over dim 0 and non-contiguous
    return [x, y]


def test_nothing_falls_back_to_extern():
    p = plan(capture(Activations(), _inputs(0)))
    externs = [e.node.target for e in p.externs]
    assert externs == [], f"left to ATen: {externs}"


@pytest.fixture(scope="module")
def compiled():
    model = Activations()
    return model, fuseforge.compile(model, _inputs(0))


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_eager(compiled, seed):
    model, fast = compiled
    inputs = _inputs(seed)
    with torch.no_grad():
        for k, (a, b) in enumerate(zip(fast(*inputs), model(*inputs))):
            assert a.dtype == b.dtype and a.shape == b.shape, k
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"output {k}")


@pytest.mark.gpu
def test_matches_eager_on_cuda(compiled):
    model, fast = compiled
    inputs = [t.cuda() for t in _inputs(3)]
    model, fast = model.cuda(), fast.cuda()
    with torch.no_grad():
        for k, (a, b) in enumerate(zip(fast(*inputs), model(*inputs))):
            assert a.dtype == b.dtype and a.shape == b.shape, k
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"output {k}")


class ReshapeThenMatmul(torch.nn.Module):
    def forward(self, x, w):
        return torch.mm(x.reshape(4, -1), w) * 2


def test_view_of_other_strides_runs_as_reshape():
    """torch.export records a reshape of a contiguous tensor as a view; at run time the tensor can
    arrive with other strides (an extern's output on the GPU, here a permuted input), where a view
    fails and eager's reshape copies."""
    g = torch.Generator().manual_seed(3)
    model = ReshapeThenMatmul()
    w = torch.randn(15, 6, generator=g)
    fast = fuseforge.compile(model, [torch.randn(4, 3, 5, generator=g), w])
    x = torch.randn(5, 3, 4, generator=g).permute(2, 1, 0)      # sizes (4, 3, 5), not viewable as (4, 15)
    assert not x.is_contiguous()
    torch.testing.assert_close(fast(x, w), model(x, w), rtol=1e-5, atol=1e-5)
