"""Window ops (pooling) with the pointwise ops around them, generated and compared with eager:
every registry entry on odd sizes, padding, ceil mode, dilation, a channels-last input, NaN."""
import pytest
import torch
import torch.nn.functional as F

import fuseforge
from fuseforge import ops
from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan
from fuseforge.plan_windows import WindowKernel

from .outputs import assert_zoo_matches

A = torch.ops.aten
RTOL, ATOL = 1e-5, 1e-6

# registry target -> fn(inputs) -> tensor or tuple of tensors
CASES = {
    "aten.max_pool1d.default": lambda t: (F.max_pool1d(t["x3"], 3), F.max_pool1d(t["x3"], 4, 3, 2, 2, True)),
    "aten.max_pool2d.default": lambda t: (F.max_pool2d(t["x4"], 2), F.max_pool2d(t["x4"], 3, 2, 1, ceil_mode=True),
                                          F.max_pool2d(t["x4"], (3, 2), (1, 2), (1, 0), (2, 1)),
                                          F.max_pool2d(t["cl"], 2), F.max_pool2d(t["nan"], 2)),
    "aten.max_pool3d.default": lambda t: (F.max_pool3d(t["x5"], 2), F.max_pool3d(t["x5"], 3, 2, 1, ceil_mode=True)),
    "aten.avg_pool1d.default": lambda t: (F.avg_pool1d(t["x3"], 4), F.avg_pool1d(t["x3"], 4, 3, 2, True, False)),
    "aten.avg_pool2d.default": lambda t: (F.avg_pool2d(t["x4"], 2), F.avg_pool2d(t["x4"], 3, 2, 1, True, False),
                                          F.avg_pool2d(t["x4"], 3, 2, 1, True, True),
                                          F.avg_pool2d(t["x4"], (3, 2), 1, (1, 0), divisor_override=5),
                                          F.avg_pool2d(t["cl"], 3, 2)),
    "aten.avg_pool3d.default": lambda t: (F.avg_pool3d(t["x5"], 2), F.avg_pool3d(t["x5"], 3, 2, 1, True, False)),
    "aten.adaptive_avg_pool1d.default": lambda t: F.adaptive_avg_pool1d(t["x3"], 7),
    "aten.adaptive_avg_pool2d.default": lambda t: (F.adaptive_avg_pool2d(t["x4"], (5, 4)),
                                                   F.adaptive_avg_pool2d(t["x4"], 1)),
    "aten._adaptive_avg_pool2d.default": lambda t: A._adaptive_avg_pool2d.default(t["x4"], [6, 6]),
    "aten.adaptive_avg_pool3d.default": lambda t: (F.adaptive_avg_pool3d(t["x5"], (2, 3, 4)),
                                                   F.adaptive_avg_pool3d(t["x5"], 1)),
    "aten._adaptive_avg_pool3d.default": lambda t: A._adaptive_avg_pool3d.default(t["x5"], [3, 3, 3]),
    "aten.adaptive_max_pool1d.default": lambda t: F.adaptive_max_pool1d(t["x3"], 6),
    "aten.adaptive_max_pool2d.default": lambda t: F.adaptive_max_pool2d(t["x4"], (4, 5)),
    "aten.adaptive_max_pool3d.default": lambda t: F.adaptive_max_pool3d(t["x5"], (3, 2, 4)),
}

# chains that must become exactly one generated kernel
CHAINS = {
    "conv_epilogue_maxpool": lambda t: F.max_pool2d(torch.tanh(t["x4"]) * 2.0 + t["b"], 2) * 3 - 1,
    "bn_relu_maxpool_3x3": lambda t: F.max_pool2d(torch.relu(t["x4"] * t["b"] + 0.5), 3, 2, 1),
    "avgpool_sigmoid": lambda t: torch.sigmoid(F.avg_pool3d(t["x5"] - 0.5, 2)),
    "global_avg_bias": lambda t: F.adaptive_avg_pool2d(torch.relu(t["x4"]), 1) + t["b"],
}


class WindowZoo(torch.nn.Module):
    def __init__(self, cases):
        super().__init__()
        self.cases = cases

    def forward(self, x3, x4, x5, cl, nan, b):
        t = dict(x3=x3, x4=x4, x5=x5, cl=cl, nan=nan, b=b)
        out = []
        for fn in self.cases.values():
            r = fn(t)
            out.extend(v + 1 for v in (r if isinstance(r, tuple) else (r,)))   # `+ 1`: something to fuse
        return tuple(out)


def window_inputs(seed: int, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x3 = torch.randn(2, 3, 31, generator=g)
    x4 = torch.randn(2, 3, 13, 14, generator=g)
    x5 = torch.randn(2, 3, 7, 9, 10, generator=g)
    cl = torch.randn(2, 3, 13, 14, generator=g).to(memory_format=torch.channels_last)
    nan = torch.randn(2, 3, 8, 8, generator=g)
    nan[0, 1, 3, 4] = float("nan")
    nan[1, 2, 0, 0] = float("-inf")
    b = torch.randn(3, 1, 1, generator=g)
    return [v.to(device) for v in (x3, x4, x5, cl, nan, b)]


@pytest.fixture(scope="module")
def windows():
    model = WindowZoo({**CASES, **CHAINS})
    return model, fuseforge.compile(model, window_inputs(0))


def test_every_window_entry_has_a_case():
    entries = {t for t, e in ops.REGISTRY.items() if e.kind == ops.WINDOW}
    assert entries == set(CASES), sorted(entries ^ set(CASES))


def test_every_window_case_is_generated():
    the_plan = plan(capture(WindowZoo(CASES), window_inputs(0)))
    generated = {n.target for k in the_plan.kernels for n in k.nodes}
    externs = sorted({f"{e.node.target}: {e.reason}" for e in the_plan.externs})
    assert not sorted(set(CASES) - generated), f"not generated; externs: {externs}"


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_chain_is_one_kernel(chain):
    the_plan = plan(capture(WindowZoo({chain: CHAINS[chain]}), window_inputs(0)))
    assert not the_plan.externs, [e.node.target for e in the_plan.externs]
    assert len(the_plan.kernels) == 1, [k.name for k in the_plan.kernels]


def test_prologue_needed_elsewhere_is_not_fused():
    # relu(x) is also returned: it must be written once, so it is not recomputed inside the pool
    def both(t):
        r = torch.relu(t["x4"])
        return r, F.max_pool2d(r, 2)
    model = WindowZoo({"both": both})
    the_plan = plan(capture(model, window_inputs(0)))
    pools = [k for k in the_plan.kernels if isinstance(k, WindowKernel)]
    assert len(pools) == 1 and not pools[0].prologue


# 1D windows that overlap, paired (two outputs a thread; FUSEFORGE_PAIR_1D=0: one); 31 outputs
# of the last case: the odd one's pair half out of range
PAIRED_1D = {
    "avg_4_2_1": lambda t: F.avg_pool1d(t["x3"], 4, 2, 1),
    "max_4_2_1": lambda t: F.max_pool1d(t["x3"], 4, 2, 1),
    "avg_3_2_ceil_no_pad_count": lambda t: F.avg_pool1d(t["x3"], 3, 2, 1, True, False),
    "max_3_1_ceil": lambda t: F.max_pool1d(t["x3"], 3, 1, 1, 1, True),
}


@pytest.fixture(scope="module")
def paired_1d():
    model = WindowZoo(PAIRED_1D)
    text = generate(plan(capture(model, window_inputs(0))), name="paired_1d").text
    assert text.count("2 outputs along dim 2 per thread") == len(PAIRED_1D), text[:3000]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSEFORGE_PAIR_1D", "0")
        text = generate(plan(capture(model, window_inputs(0))), name="paired_1d").text
        assert "2 outputs along dim 2 per thread" not in text
    return model, fuseforge.compile(model, window_inputs(0))


@pytest.mark.parametrize("zoo_name", ["windows", "paired_1d"])
@pytest.mark.parametrize("seed", [1, 2])
def test_windows_match_eager_on_cpu(request, zoo_name, seed):
    assert_zoo_matches(request.getfixturevalue(zoo_name), window_inputs, seed, RTOL, ATOL)


@pytest.mark.gpu
@pytest.mark.parametrize("zoo_name", ["windows", "paired_1d"])
@pytest.mark.parametrize("seed", [1, 2])
def test_windows_match_eager_on_cuda(request, zoo_name, seed):
    assert_zoo_matches(request.getfixturevalue(zoo_name), window_inputs, seed, RTOL, ATOL, "cuda")
