"""Scans (cumsum, cumprod) with flips and the pointwise ops around them, generated and compared
with eager: every dim (negative too), odd sizes, a non-contiguous input, long lines (several
chunks of a block), many short lines, reversed / exclusive / masked forms, fused chains."""
import pytest
import torch

import fuseforge
from fuseforge import ops
from fuseforge.capture import capture
from fuseforge.plan import plan
from fuseforge.plan_scans import ScanKernel

from .outputs import assert_zoo_matches

A = torch.ops.aten
# float32 sums in another order than eager's CPU kernel (which accumulates in double)
RTOL, ATOL = 1e-4, 1e-4


def _reverse(x, d):
    return torch.cumsum(x.flip(d), d).flip(d)


def _exclusive_cat(x):                      # as suite/level1/092: the loads read one position back
    return torch.cumsum(torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1), dim=1)


# registry target -> fn(inputs) -> tensor or tuple of tensors
CASES = {
    "aten.cumsum.default": lambda t: (torch.cumsum(t["x"], 0), torch.cumsum(t["x"], 1), torch.cumsum(t["x"], -1),
                                      torch.cumsum(t["xt"], 2), torch.cumsum(t["xt"], -3),
                                      torch.cumsum(t["xl"], -1), torch.cumsum(t["xs"], 1),
                                      torch.cumsum(t["xs"], 0)),
    "aten.cumprod.default": lambda t: (torch.cumprod(t["x"] * 0.1 + 1, 2), torch.cumprod(t["x"], 0),
                                       torch.cumprod(t["xl"] * 0.01 + 1, 1), torch.cumprod(t["xs"], -1)),
    "aten.flip.default": lambda t: (_reverse(t["x"], 1), _reverse(t["xl"], -1), _reverse(t["xs"], 0),
                                    torch.cumsum(t["x"].flip(0, 2), 2).flip(0, 2),
                                    torch.cumprod((t["x"] * 0.1 + 1).flip(1), 1) * 2),
}

# chains that must become exactly one generated kernel
CHAINS = {
    "masked_cumsum": lambda t: torch.cumsum(t["x"] * t["m"], dim=1),
    "reverse_cumsum": lambda t: _reverse(t["xl"], 1),
    "exclusive_by_difference": lambda t: torch.cumsum(t["xl"], 1) - t["xl"],
    "prologue_epilogue": lambda t: torch.relu(torch.cumsum(torch.tanh(t["x"]) * 2 - 0.5, -1)) * 0.5 + t["x"],
    "reverse_with_epilogue": lambda t: torch.sigmoid(_reverse(t["x"] * t["m"], 2)) * t["x"],
    "suffix_product": lambda t: torch.cumprod((t["xs"] * 0.1 + 1).flip(1), 1).flip(1) - 1,
    "exclusive_cat": lambda t: _exclusive_cat(t["xl"]),
    "exclusive_cat_prologue": lambda t: _exclusive_cat(torch.tanh(t["xl"]) * 2) + 1,
}

OTHER = {
    "flip_before_pointwise": lambda t: torch.cumprod(t["x"].flip(1) * 0.1 + 1, 1),   # that flip: an extern
    "exclusive_cat_used": lambda t: (_exclusive_cat(t["x"]), torch.cat([torch.zeros_like(t["x"][:, :1]),
                                                                         t["x"][:, :-1]], dim=1)),
    "scan_used_twice": lambda t: (torch.cumsum(t["x"], 2), torch.cumsum(t["x"], 2) * 2),
}


class ScanZoo(torch.nn.Module):
    def __init__(self, cases):
        super().__init__()
        self.cases = cases

    def forward(self, x, xt, xl, xs, m):
        t = dict(x=x, xt=xt, xl=xl, xs=xs, m=m)
        out = []
        for fn in self.cases.values():
            r = fn(t)
            out.extend(r if isinstance(r, tuple) else (r,))
        return tuple(out)


def scan_inputs(seed: int, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 7, 9, generator=g)
    xt = torch.randn(9, 5, 7, generator=g).permute(1, 2, 0)     # non-contiguous (5, 7, 9)
    xl = torch.randn(3, 3001, generator=g)                         # lines longer than a block's chunk
    xs = torch.randn(400, 6, generator=g)                          # many short lines
    m = torch.rand(5, 7, 9, generator=g) < 0.5
    return [v.to(device) for v in (x, xt, xl, xs, m)]


@pytest.fixture(scope="module")
def scans():
    model = ScanZoo({**CASES, **CHAINS, **OTHER})
    return model, fuseforge.compile(model, scan_inputs(0))


def test_every_scan_case_is_generated():
    the_plan = plan(capture(ScanZoo(CASES), scan_inputs(0)))
    assert not the_plan.externs, [f"{e.node.target}: {e.reason}" for e in the_plan.externs]
    generated = {n.target for k in the_plan.kernels for n in k.nodes}
    assert set(CASES) <= generated
    assert all(isinstance(k, ScanKernel) for k in the_plan.kernels)


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_chain_is_one_kernel(chain):
    the_plan = plan(capture(ScanZoo({chain: CHAINS[chain]}), scan_inputs(0)))
    assert not the_plan.externs, [e.node.target for e in the_plan.externs]
    assert len(the_plan.kernels) == 1, [k.name for k in the_plan.kernels]


def test_flip_reads_reversed_indices():
    """flip → cumsum → flip is one kernel that indexes n - 1 - k on both sides, no copy."""
    from fuseforge.codegen import scan
    the_plan = plan(capture(ScanZoo({"r": CHAINS["reverse_cumsum"]}), scan_inputs(0)))
    k = the_plan.kernels[0]
    assert k.name == "fused_flip_cumsum_flip" and k.in_flip == (1,) and k.out_flip == (1,)
    assert "(3000u - k)" in scan.render(k).shared


def test_exclusive_cat_reads_one_position_back():
    """cat([zeros, x[:, :-1]]) → cumsum is one kernel: the loads read k - 1, the identity at 0."""
    from fuseforge.codegen import scan
    the_plan = plan(capture(ScanZoo({"e": CHAINS["exclusive_cat"]}), scan_inputs(0)))
    text = scan.render(the_plan.kernels[0]).shared
    assert "if (k == 0) return float(0);" in text and "(k - 1)" in text, text


def test_scan_entries_have_a_kind():
    assert ops.lookup("aten.cumsum.default").kind == ops.SCAN
    assert ops.lookup("aten.flip.default").kind == ops.VIEW


@pytest.mark.parametrize("seed", [1, 2])
def test_scans_match_eager_on_cpu(scans, seed):
    assert_zoo_matches(scans, scan_inputs, seed, RTOL, ATOL)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [1, 2])
def test_scans_match_eager_on_cuda(scans, seed):
    assert_zoo_matches(scans, scan_inputs, seed, RTOL, ATOL, "cuda")


@pytest.mark.gpu
def test_long_scans_on_cuda():
    """Benchmark-size lines (4096 x 8192) and a scan over a strided dim, against eager on the GPU
    (which also accumulates float32 in float32)."""
    cases = {"cumsum": lambda t: torch.cumsum(t["x"], 1), "cumprod": lambda t: torch.cumprod(t["x"] * 0.01 + 1, 1),
             "reverse": lambda t: _reverse(t["x"], 1), "dim0": lambda t: torch.cumsum(t["x"], 0)}

    class Big(torch.nn.Module):
        def forward(self, x):
            return tuple(fn({"x": x}) for fn in cases.values())

    x = torch.randn(4096, 8192)
    compiled = fuseforge.compile(Big(), [x])
    xc = x.cuda()
    new, ref = compiled.cuda()(xc), Big()(xc)
    for a, b in zip(new, ref):
        scale = b.abs().max().clamp_min(1)
        assert float((a - b).abs().max() / scale) < 1e-2
