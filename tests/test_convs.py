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
    torch.manual_seed(0)
    model = TransposedAsConv()
    return model, fuseforge.compile(model, transposed_inputs(0))


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


@pytest.mark.gpu
def test_stride_one_transposed_3d_on_cuda(transposed):
    model, fast = transposed
    _no_looser_than_eager(model.cuda(), fast.cuda(), transposed_inputs(2, "cuda"))
