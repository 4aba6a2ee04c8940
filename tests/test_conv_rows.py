"""Row kernels over a convolution's channels run in its epilogue (plan_conv.fold_pixel_rows,
codegen/rows.py's pixel rows): min, amin, max with its indices, softmax, layer norm over the
channels, with pointwise ops before and after, against references on fresh random inputs: on
the CPU twin against float64 (and eager), on the GPU against float64 of the TF32-rounded operands
and no looser than eager. Output channel counts: 20 (a tile's tail), 48, 64, 96 (a 128-channel
tile); pixel counts that are not a multiple of the 128-pixel tile; padding and stride; a 1x1."""
import copy
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan
from fuseforge.plan_conv import ConvKernel

from .test_conv_kernel import _close_to_rounded, _compile, cpu_results, random_inputs, rounded_reference
from .test_gemm import _tf32
from .test_layout import _no_looser_than_eager


class PixelRowZoo(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(32, 20, 3, padding=1)
        self.b = nn.Conv2d(32, 96, 3, stride=2)
        self.c = nn.Conv2d(36, 64, 1)
        self.d = nn.Conv2d(32, 64, 3, padding=1)
        self.e = nn.Conv2d(32, 48, 3)
        self.bias = nn.Parameter(torch.randn(64, 1, 1))
        self.mult = nn.Parameter(torch.randn(48, 1, 1))
        self.ln = nn.LayerNorm(64)

    def forward(self, x, y, z):
        a = torch.softmax(torch.min(self.a(x), dim=1, keepdim=True)[0], dim=-1)
        b = torch.amin(self.b(y) * 2.0, dim=1, keepdim=True)
        c = torch.sigmoid((torch.softmax(self.c(z), dim=1) + self.bias) * 2.0)
        d = F.gelu(self.ln(self.d(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        e_max, e_at = torch.max(self.e(y) * self.mult, dim=1)
        return a, b, c, d, e_max, e_at


inputs = random_inputs((2, 32, 9, 11), (3, 32, 13, 10), (2, 36, 7, 9))


@pytest.fixture(scope="module")
def compiled():
    torch.manual_seed(0)
    model = PixelRowZoo()
    return (model, *_compile(model, inputs(0)))   # every one the kernel computes (the layer norm's too)


def _folded(p):
    return sorted(k.conv.k for k in p.kernels if isinstance(k, ConvKernel) and k.rows is not None)


def test_plan_runs_every_channel_row_in_its_convolution(compiled):
    _, p, _ = compiled
    assert _folded(p) == [20, 48, 64, 64, 96], p.decisions
    assert not [e for e in p.externs if "conv" in e.node.target], p.decisions


def test_default_rules(monkeypatch):
    """By default a layer norm over the channels (a Welford stage, measured slower in the
    epilogue) keeps cuDNN and its row kernel; the others run in their convolutions."""
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)
    p = plan(capture(PixelRowZoo(), inputs(0)))
    assert _folded(p) == [20, 48, 64, 96], p.decisions
    assert [tuple(e.node.arg("weight").type.shape) for e in p.externs if "conv" in e.node.target] == \
        [(64, 32, 3, 3)], p.decisions


def test_a_softmax_exp_is_computed_once_an_element(compiled):
    """exp(x - max), folded into the softmax's sum, is kept for its result where the row is held
    (the same value, an exponential an element fewer): in the epilogue (c) and in the row kernel
    over a's minimum (its rows in registers)."""
    _, p, _ = compiled
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSEFORGE_CONV", "all")
        text = generate(p, name="zoo").text
    kept = re.findall(r"(\w+)_e\[k\] = ff_exp\(", text)
    assert len(kept) == 2, kept
    for acc in kept:
        assert f"static_cast<float>({acc}_e[k] / {acc}.v)" in text
        assert not re.search(rf"ff_exp\([^;]*\) / {acc}\.v", text)


def test_the_convolution_plus_its_bias_is_held_in_place_of_the_two(compiled):
    """d's layer norm reads its permuted conv + bias alone (an add after a permute is not folded into
    the sums, plan_conv.bias_add): the row holds that sum (one register a channel, the add once)
    instead of the convolution's values and the bias apart. c's add, straight after its
    convolution, is folded: c's row reads the accumulators (conv) as they are."""
    _, p, _ = compiled
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSEFORGE_CONV", "all")
        text = generate(p, name="zoo").text
    held = re.findall(r"float (\w+)_c\[PER\];  // this thread's share of the row, made of (.*)", text)
    assert any(m.startswith("conv, ") for _, m in held), held
    for n, made_of in held:
        function = next(f for f in text.split("\nFF_HD void ") if f"{n}_c[PER];" in f).split("\n}\n")[0]
        assert f"const float {n} = {n}_c[k];" in function
        assert not [m for m in made_of.split(", ") if f" {m}_c[PER];" in function], function


def test_the_epilogue_addresses_a_channel_from_its_pixel_signed(compiled):
    """In the convolution's epilogue a channel's element is read and written at a signed offset
    from the pixel's start ((a.out + o_out)[int(r) * stride]): the compiler folds each step's
    offset into the access (an unsigned o_out + r * stride must wrap, so it is computed anew)."""
    _, p, _ = compiled
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSEFORGE_CONV", "all")
        text = generate(p, name="zoo").text
    rows = [f for f in text.split("\nFF_HD void ") if "_pixel_row(" in f.split("\n")[0]]
    assert rows
    stores = [line for f in rows for line in f.split("\n") if re.match(r"\s*\(a\.(out\d+) \+ o_\1\)\[int\(r\)", line)]
    assert len(stores) == 2, stores   # c's sigmoid and d's gelu (the others store one value a pixel)
    assert not [f for f in rows if re.search(r"a\.\w+\[o_\w+ \+ ", f)]


def test_a_result_read_elsewhere_is_not_folded():
    """The convolution's result (no bias to move out) is also a model output: its row kernel reads
    it from memory."""
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(32, 64, 3, bias=False)

        def forward(self, x):
            y = self.conv(x)
            return y, y.amin(1)
    p = plan(capture(Both(), [torch.randn(2, 32, 8, 8)]))
    assert not [k for k in p.kernels if getattr(k, "rows", None) is not None], p.decisions


def _check_indices(got, want_values, want_at):
    """Indices: where the reference's largest value is clear of the runner-up, the same channel."""
    assert got.dtype == torch.int64 and got.shape == want_at.shape
    top2 = want_values.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4 * top2[:, 0].abs().clamp(min=1)
    assert clear.float().mean() > 0.9
    assert torch.equal(got.cpu()[clear.cpu()], want_at.cpu()[clear.cpu()])


def _scores(model, x, rounded):
    """The float64 values torch.max reduces (self.e(y) * self.mult), operands TF32-rounded or not."""
    m = copy.deepcopy(model).double()
    w, yy = m.e.weight.data, x[1].double()
    if rounded:
        w, yy = _tf32(w.float()).double(), _tf32(x[1].float()).double()
    return F.conv2d(yy, w, m.e.bias) * m.mult


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_float64_and_eager_on_cpu(compiled, seed):
    model, _, fast = compiled
    x = inputs(seed)
    got, ref, exact = cpu_results(model, fast, x)
    with torch.no_grad():
        scores = _scores(model, x, rounded=False)
    _close_to_rounded(got[:5], exact[:5], ref)
    _check_indices(got[5], scores, exact[5])
    for a, b in zip(got[:5], ref[:5]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_rounded_reference_and_no_looser_than_eager_on_cuda(compiled, seed):
    model, _, fast = compiled
    model, fast = model.cuda(), fast.cuda()
    x = inputs(seed, "cuda")
    with torch.no_grad():
        got, ref = fast(*x), model(*x)
        scores = _scores(model, x, rounded=True)
    want = rounded_reference(model, x)
    _close_to_rounded(got[:5], want[:5], ref)
    _check_indices(got[5], scores, want[5])
    _no_looser_than_eager(model, fast, x)
