"""Convolutions with a bias (ops/convs.py): run without it, the kernel after them adds it.
Every convolution target in one model, compared with eager on fresh random inputs."""
import pytest
import torch
import torch.nn.functional as F

import fuseforge
from fuseforge.capture import capture
from fuseforge.plan import plan

from .outputs import assert_same_layout_and_close
from .test_layout import _no_looser_than_eager

# target -> (input shape, weight shape, fn(x, w, b))
CASES = {
    "aten.conv1d.default": ((2, 5, 19), (6, 5, 3), lambda x, w, b: F.conv1d(x, w, b, stride=2)),
    "aten.conv2d.default": ((2, 5, 9, 11), (6, 5, 3, 3), lambda x, w, b: F.conv2d(x, w, b, padding=1)),
    "aten.conv3d.default": ((2, 5, 5, 6, 7), (6, 5, 3, 3, 3), lambda x, w, b: F.conv3d(x, w, b)),
    "aten.conv1d.padding": ((2, 5, 19), (6, 5, 4), lambda x, w, b: F.conv1d(x, w, b, padding="same")),
    "aten.conv2d.padding": ((2, 6, 9, 11), (4, 3, 3, 2), lambda x, w, b: F.conv2d(x, w, b, padding="same", groups=2)),
    "aten.conv3d.padding": ((2, 5, 5, 6, 7), (6, 5, 2, 3, 3), lambda x, w, b: F.conv3d(x, w, b, padding="valid")),
    "aten.conv_transpose1d.default": ((2, 5, 9), (5, 6, 3), lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2)),
    "aten.conv_transpose2d.input": ((2, 5, 7, 8), (5, 6, 3, 3),
                                    lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, output_padding=1)),
    "aten.conv_transpose3d.input": ((2, 5, 4, 5, 6), (5, 6, 3, 3, 3), lambda x, w, b: F.conv_transpose3d(x, w, b)),
}


class Convs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(w, generator=g) * 0.2) for _, w, _ in CASES.values()])
        # the bias has one value per output channel: dim 0 of a conv weight, dim 1 x groups of a
        # transposed one (groups are 1 there)
        self.biases = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(w[1] if "transpose" in t else w[0], generator=g))
             for t, (_, w, _) in CASES.items()])

    def forward(self, *xs):
        return tuple(torch.relu(fn(x, w, b)) for x, w, b, (_, _, fn) in
                     zip(xs, self.weights, self.biases, CASES.values()))


def conv_inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g).to(device) for shape, _, _ in CASES.values()]


def test_each_convolution_runs_without_its_bias():
    p = plan(capture(Convs(), conv_inputs(0)))
    convs = [e.node for e in p.externs if "conv" in e.node.target]
    # padding="valid" is spelled out (.default); "same" through an even window extent (pads one more
    # at the end) stays as it is
    want = [t if t != "aten.conv3d.padding" else "aten.conv3d.default" for t in CASES]
    assert sorted(n.target for n in convs) == sorted(want), [n.target for n in convs]
    assert all(n.arg("bias") is None for n in convs)
    fused = [k for k in p.kernels if [n.target for n in k.nodes] == ["aten.add.Tensor", "aten.relu.default"]]
    assert len(fused) == len(CASES), [k.summary() for k in p.kernels]


@pytest.fixture(scope="module")
def convs():
    model = Convs()
    return model, fuseforge.compile(model, conv_inputs(0))


def _check(new, ref):
    assert len(new) == len(CASES)
    assert_same_layout_and_close(new, ref, 1e-4, 1e-5, names=list(CASES))


def test_matches_eager_on_cpu(convs):
    model, fast = convs
    with torch.no_grad():
        _check(fast(*conv_inputs(1)), model(*conv_inputs(1)))


@pytest.mark.gpu
def test_matches_eager_on_cuda(convs):
    """Small convolutions: cuDNN picks full-float32 algorithms for them (TF32 differences would
    show in the 1e-4 tolerance; the layout tests cover the TF32 case)."""
    model, fast = convs
    x = conv_inputs(2, "cuda")
    with torch.no_grad():
        _check(fast.cuda()(*x), model.cuda()(*x))


def _compiled(cls, inputs):
    """A model of `cls` (seeded weights) and fuseforge's compilation of it on inputs(0)."""
    torch.manual_seed(0)
    model = cls()
    return model, fuseforge.compile(model, inputs(0))


class TransposedAsConv(torch.nn.Module):
    """3D transposed convolutions over 16 channels: of stride 1, padded and dilated (lowered to the
    convolution of the flipped weights), and of stride 2 (left as it is)."""
    def __init__(self):
        super().__init__()
        self.one = torch.nn.ConvTranspose3d(16, 16, 3, padding=(1, 0, 1), dilation=(1, 2, 1))
        self.two = torch.nn.ConvTranspose3d(16, 16, 3, stride=2)

    def forward(self, x):
        return self.one(x), self.two(x)


def transposed_inputs(seed, device="cpu"):
    return [torch.randn(2, 16, 4, 6, 5, generator=torch.Generator().manual_seed(seed)).to(device)]


@pytest.fixture(scope="module")
def transposed():
    return _compiled(TransposedAsConv, transposed_inputs)


def test_stride_one_transposed_3d_runs_as_a_convolution(transposed, monkeypatch):
    p = plan(capture(TransposedAsConv(), transposed_inputs(0)))
    lowered = [d for d in p.decisions if "(aten.conv_transpose3d.input): lowered to" in d]
    assert len(lowered) == 2 and sum("flip.default" in d and "conv3d.default" in d for d in lowered) == 1, lowered
    conv = [n for n in p.graph.nodes if n.target == "aten.conv3d.default"]
    assert len(conv) == 1 and conv[0].arg("padding") == [1, 4, 1], p.decisions
    model, fast = transposed
    with torch.no_grad():
        assert_same_layout_and_close(fast(*transposed_inputs(1)), model(*transposed_inputs(1)), 1e-4, 1e-5)
    monkeypatch.setenv("FUSEFORGE_CONVT_AS_CONV", "0")
    p = plan(capture(TransposedAsConv(), transposed_inputs(0)))
    assert not any(n.target == "aten.conv3d.default" for n in p.graph.nodes), p.decisions


def test_flipped_weights_are_made_once_and_again_when_they_change():
    """The flipped weights come from the weight alone: made once (wrapper.made_once), and again
    after the weight changes in place (its version moves), compared with eager after each."""
    from fuseforge.wrapper import made_once
    torch.manual_seed(0)
    model = TransposedAsConv()
    p = plan(capture(model, transposed_inputs(0)))
    once = made_once(p)
    assert sorted(s.node.target if hasattr(s, "node") else s.summary() for s in once) == \
        ["aten.flip.default", "clone"], p.decisions
    assert set(once.values()) == {"p_one_weight"}
    fast = fuseforge.compile(model, transposed_inputs(0))
    with torch.no_grad():
        assert_same_layout_and_close(fast(*transposed_inputs(1)), model(*transposed_inputs(1)), 1e-4, 1e-5)
        model.one.weight.mul_(-2.0)
        assert_same_layout_and_close(fast(*transposed_inputs(1)), model(*transposed_inputs(1)), 1e-4, 1e-5)


@pytest.mark.gpu
def test_stride_one_transposed_3d_on_cuda(transposed):
    model, fast = transposed
    _no_looser_than_eager(model.cuda(), fast.cuda(), transposed_inputs(2, "cuda"))


class OnePhase(torch.nn.Module):
    """2D transposed convolutions whose dilation is a multiple of the stride (every tap on the rows
    of one phase: lowered to a convolution and a slice_scatter into the bias): level1/035's form
    (its rows written in place by the convolution's kernel), and strided along both dims (the inner
    slice_scatter in place, the outer one ATen's, read by a kernel after it: its result of an
    expanded bias is contiguous). Left as they are: one of dilation 1, one over 2 x 16 x 16 input
    pixels and one in 1D (eager's runs float32 there, bench/session32/probe)."""
    def __init__(self):
        super().__init__()
        self.one = torch.nn.ConvTranspose1d(32, 3, 3, stride=3, padding=2, dilation=3, bias=False)
        self.two = torch.nn.ConvTranspose2d(32, 16, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1))
        self.three = torch.nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, dilation=2)
        self.left = torch.nn.ConvTranspose2d(32, 3, 3, stride=2, padding=1)
        self.few = torch.nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, dilation=2)

    def forward(self, x1, x2, x3):
        return self.one(x1), self.two(x2), torch.relu(self.three(x2)), self.left(x2), self.few(x3)


def phase_inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).to(device) for s in ((2, 32, 9), (2, 32, 64, 64), (2, 32, 16, 16))]


@pytest.fixture(scope="module")
def one_phase():
    return _compiled(OnePhase, phase_inputs)


def test_one_phase_transposed_runs_as_a_convolution(one_phase, monkeypatch):
    p = plan(capture(OnePhase(), phase_inputs(0)))
    scatters = [n for n in p.graph.nodes if n.target == "aten.slice_scatter.default"]
    convs = sorted(n.target for n in p.graph.nodes if "conv" in n.target)
    assert convs == ["aten.conv2d.default"] * 2 + ["aten.conv_transpose1d.default"] + \
        ["aten.conv_transpose2d.input"] * 2, p.decisions
    assert sorted((n.arg("dim"), n.arg("start"), n.arg("step")) for n in scatters) == \
        [(2, 1, 2), (2, 1, 2), (3, 1, 2)], scatters
    # their results as a device lays them out (over an expanded bias: contiguous, whatever the meta
    # device says; torch 2.11's had zero strides there, and a buffer of those overlaps)
    assert all(n.outputs[0].type.strides == torch.empty(n.outputs[0].type.shape).stride() for n in scatters)
    # in place: 035's rows and the both-dims one's inner rows (their src a bias add), not its outer
    assert sorted(e.node.arg("dim") for e in p.externs if e.scatter_src) == [2, 3], p.decisions
    model, fast = one_phase
    with torch.no_grad():
        assert_same_layout_and_close(fast(*phase_inputs(1)), model(*phase_inputs(1)), 1e-4, 1e-5)
    monkeypatch.setenv("FUSEFORGE_SCATTER_IN_PLACE", "0")
    assert not any(e.scatter_src for e in plan(capture(OnePhase(), phase_inputs(0))).externs)
    monkeypatch.setenv("FUSEFORGE_CONVT_AS_CONV", "0")
    p = plan(capture(OnePhase(), phase_inputs(0)))
    assert not any(n.target == "aten.slice_scatter.default" for n in p.graph.nodes), p.decisions


@pytest.mark.gpu
def test_one_phase_transposed_on_cuda(one_phase):
    model, fast = one_phase
    _no_looser_than_eager(model.cuda(), fast.cuda(), phase_inputs(2, "cuda"))


@pytest.mark.parametrize("n,start,end,step", [(15, 1, 15, 2), (9, 0, 9, 2), (10, 2, 7, 3), (5, 0, 5, 1), (6, 4, 6, 1)])
def test_other_rows_cover_what_the_slice_leaves(n, start, end, step):
    """scatter_rows.other_rows: with the slice's rows, every row once."""
    from fuseforge.scatter_rows import other_rows
    rows = [r for a, b, s in other_rows(n, start, end, step) for r in range(a, b, s)]
    assert sorted(rows + list(range(start, end, step))) == list(range(n))


class MeanOfConv(torch.nn.Module):
    """Convolutions (stride 1) averaged over their pixels: with a bias and padding, kept dims
    (level2/016's form); dilated, padded along one dim, without a bias, dims dropped; and one whose
    output is read by more than the mean (left as it is)."""
    def __init__(self):
        super().__init__()
        self.one = torch.nn.Conv2d(32, 16, 3, padding=1)
        self.two = torch.nn.Conv2d(32, 8, (3, 2), padding=(0, 2), dilation=(2, 3), bias=False)
        self.three = torch.nn.Conv2d(32, 8, 3)

    def forward(self, x):
        y = self.three(x)
        return (self.one(x).mean(dim=(2, 3), keepdim=True), self.two(x).mean(dim=[-1, -2]),
                y.mean(dim=(2, 3)), torch.relu(y))


def mean_inputs(seed, device="cpu"):
    return [torch.randn(2, 32, 11, 13, generator=torch.Generator().manual_seed(seed)).to(device)]


@pytest.fixture(scope="module")
def mean_of_conv():
    return _compiled(MeanOfConv, mean_inputs)


def _nodes_left(cls, *targets):
    """How many nodes of each target the plan of a `cls` model (on mean_inputs) keeps, and its
    decisions (for the assertion's message)."""
    p = plan(capture(cls(), mean_inputs(0)))
    return [sum(n.target == t for n in p.graph.nodes) for t in targets], p.decisions


def test_mean_of_a_convolution_pools_its_input(mean_of_conv, monkeypatch):
    counts, why = _nodes_left(MeanOfConv, "aten.avg_pool2d.default", "aten.conv2d.default")
    assert counts == [4, 1], why
    _close_and_off(mean_of_conv, MeanOfConv, "aten.conv2d.default", 3, monkeypatch)


def _close_and_off(compiled, cls, target, kept, monkeypatch):
    """The compiled model (a `cls`) close to eager on fresh inputs; with FUSEFORGE_MEAN_OF_CONV=0
    its plan keeps `kept` convolutions (nodes of `target`)."""
    model, fast = compiled
    with torch.no_grad():
        assert_same_layout_and_close(fast(*mean_inputs(1)), model(*mean_inputs(1)), 1e-4, 1e-5)
    monkeypatch.setenv("FUSEFORGE_MEAN_OF_CONV", "0")
    counts, why = _nodes_left(cls, target)
    assert counts == [kept], why


class MeanOfConvTranspose(torch.nn.Module):
    """Transposed convolutions averaged over their pixels: level2/027's form (stride 2, padding 1,
    an output padding, a bias, kept dims); and strides, padding and dilation that differ between
    rows and columns, so that the first taps' input ranges start late and the last taps' end early,
    without a bias, dims dropped."""
    def __init__(self):
        super().__init__()
        self.one = torch.nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1)
        self.two = torch.nn.ConvTranspose2d(32, 8, (3, 4), stride=(1, 3), padding=(2, 1), dilation=(2, 1), bias=False)

    def forward(self, x):
        return self.one(x).mean(dim=(2, 3), keepdim=True), self.two(x).mean(dim=[-1, -2])


@pytest.fixture(scope="module")
def mean_of_conv_transpose():
    return _compiled(MeanOfConvTranspose, mean_inputs)


def test_mean_of_a_transposed_convolution_sums_its_input(mean_of_conv_transpose, monkeypatch):
    counts, why = _nodes_left(MeanOfConvTranspose, "aten.conv_transpose2d.input")
    assert counts == [0], why
    _close_and_off(mean_of_conv_transpose, MeanOfConvTranspose, "aten.conv_transpose2d.input", 2, monkeypatch)


@pytest.mark.gpu
@pytest.mark.parametrize("compiled", ["mean_of_conv", "mean_of_conv_transpose"])
def test_means_of_convolutions_on_cuda(request, compiled):
    model, fast = request.getfixturevalue(compiled)
    _no_looser_than_eager(model.cuda(), fast.cuda(), mean_inputs(2, "cuda"))
