"""Generated convolutions (plan_conv.py, codegen/conv.py): the plan's rules, and the results
against references on fresh random inputs, on the CPU twin and on the GPU (the implicit GEMM on
TF32 tensor cores, and the direct kernel other GPUs run):
- on the GPU, against float64 convolutions of the operands rounded to TF32 as cuDNN rounds them
  (tight: only the float32 sums differ), so a wrong tap, channel, tile or rounding shows; and no
  looser than eager's own convolution;
- on the CPU (float32 products, as eager's CPU convolution), against float64 of the operands as
  they are (tight), and as close to eager as eager's own float32 sums allow."""
import copy
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fuseforge
from fuseforge.capture import capture
from fuseforge.codegen import conv as conv_codegen
from fuseforge.errors import ConfigError
from fuseforge.plan import plan
from fuseforge.plan_conv import ConvKernel, halo, nchw_input, staged_store, tiles, tma_input

from .test_gemm import _tf32
from .test_layout import _no_looser_than_eager


class ConvZoo(nn.Module):
    """Tails everywhere: 36 input channels (a second 32-channel k-slice mostly empty), 40 and 80
    output channels (part of a 64- or 128-channel tile), pixel counts that are not a multiple of
    the 128-pixel tile; padding, stride and dilation; an epilogue, a result that is also read by
    its epilogue, and an epilogue that reads the convolution's own input."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(36, 40, 3, padding=1)
        self.b = nn.Conv2d(32, 80, 3, stride=2, padding=2, dilation=2)
        self.c = nn.Conv2d(32, 32, 1, bias=False)

    def forward(self, x, y, z):
        p = torch.relu(self.a(x)) * 2
        q = self.b(y)
        return p, q, q.sigmoid() - 0.5, self.c(z) + z


def random_inputs(*shapes):
    """inputs(seed, device): fresh normal tensors of these shapes, the same for a seed."""
    def inputs(seed, device="cpu"):
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(*s, generator=g).to(device) for s in shapes]
    return inputs


inputs = random_inputs((2, 36, 9, 11), (2, 32, 13, 10), (3, 32, 5, 7))


def rounded_reference(model, x):
    """The model in float64 with every convolution's input and weight rounded to TF32 first."""
    m = copy.deepcopy(model).double()
    for conv in (c for c in m.modules() if isinstance(c, (nn.Conv2d, nn.Conv3d))):
        conv.weight.data = _tf32(conv.weight.data.float()).double()
        conv.register_forward_pre_hook(lambda mod, args: (_tf32(args[0].float()).double(),))
    with torch.no_grad():
        return m(*[t.double() for t in x])


def _compile(model, x, mode="all", **env):
    """fuseforge.compile with FUSEFORGE_CONV=mode ("all": every convolution the kernel computes) and
    the other variables in `env` set."""
    with pytest.MonkeyPatch.context() as mp:
        for var, value in {"FUSEFORGE_CONV": mode, **env}.items():
            mp.setenv(var, value)
        return plan(capture(model, x)), fuseforge.compile(model, x)


@pytest.fixture(scope="module")
def compiled():
    torch.manual_seed(0)
    model = ConvZoo()
    return (model, *_compile(model, inputs(0)))


def _convs(p):
    return [k for k in p.kernels if isinstance(k, ConvKernel)]


def test_plan_takes_every_convolution_it_computes(compiled, monkeypatch):
    """Every one; a's and b's bias adds folded into the sums (plan_conv.bias_add: they start at the
    bias), not c's add of its own input (not one value a channel)."""
    _, p, _ = compiled
    got = sorted((len(k.epilogue), k.bias is not None) for k in _convs(p))
    assert got == [(1, False), (2, True), (2, True)], p.decisions
    assert not [e for e in p.externs if "conv" in e.node.target], p.decisions
    monkeypatch.setenv("FUSEFORGE_CONV", "0")
    assert not _convs(plan(capture(ConvZoo(), inputs(0))))


def test_a_bias_add_is_folded_into_the_sums(compiled):
    """a's and b's sums start at their bias (one load a channel a thread) and their epilogues read
    it nowhere; c's add of its own input is no bias: its sums start at 0. The values: the CPU and
    GPU tests below (the CPU twin starts its sums at the bias too)."""
    from fuseforge.emit import generate
    _, p, _ = compiled
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSEFORGE_CONV", "all")
        text = generate(p, name="zoo").text
    inits = dict(re.findall(r"struct (\w+)_conv \{.*?float init\(const Args& a, int co\) \{ return ([^;]*); \}", text, re.S))
    assert len(inits) == 3, inits
    for name, init in inits.items():
        epilogue = re.search(rf"FF_HD void {name}_epilogue\(.*?\n\}}\n", text, re.S).group(0)
        twin = re.search(rf"FF_HD void {name}_elem\(.*?\n\}}\n", text, re.S).group(0)
        assert f"float acc = {init};" in twin, twin
        if init != "0.0f":
            bias = re.fullmatch(r"a\.(in\d+)\[co\]", init).group(1)
            assert f"a.{bias}[" not in epilogue, epilogue
    assert sum(init != "0.0f" for init in inits.values()) == 2, inits


def test_an_epilogue_reads_its_inputs_through_its_load(compiled):
    """c's add of its own input is loaded by c's K_load, which the kernel calls for 16 elements
    before their stores (ffconv::epilogue); its K_epilogue takes the value from K_load's struct and
    reads no input itself (a load there waits its latency after the earlier stores). a's and b's
    epilogues read nothing (their bias is folded into the sums)."""
    from fuseforge.emit import generate
    _, p, _ = compiled
    text = generate(p, name="zoo").text
    loads = dict(re.findall(r"struct (\w+)_in \{([^}]*)\};", text))
    assert sorted(loads.values()) == ["", "", " float in0; "], loads
    for name, members in loads.items():
        load = re.search(rf"FF_HD {name}_in {name}_load\(.*?\n\}}\n", text, re.S).group(0)
        epilogue = re.search(rf"FF_HD void {name}_epilogue\(.*?\n\}}\n", text, re.S).group(0)
        assert not re.search(r"a\.in\d", epilogue), epilogue
        assert bool(members) == ("a.in0[" in load) == ("= in.in0;" in epilogue), (load, epilogue)


def test_only_a_1x1_convolution_reads_its_input_nchw(compiled, monkeypatch):
    """The 1x1 reads NCHW as it is (measured faster); the windows read a converted copy; the
    GPU tests below run both paths."""
    _, p, _ = compiled
    monkeypatch.delenv("FUSEFORGE_CONV_NCHW_IN", raising=False)
    assert sorted((k.conv.r, nchw_input(k.conv)) for k in _convs(p)) == [(1, True), (3, False), (3, False)]


def test_unknown_mode_is_an_error(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_CONV", "fast")
    with pytest.raises(ConfigError, match="FUSEFORGE_CONV='fast'"):
        plan(capture(ConvZoo(), inputs(0)))


def test_default_rules(monkeypatch):
    """By default (plan_conv.slower): 36 channels through a 3x3 window (each tap's padded to 64) stay
    cuDNN's, the 32-channel 3x3 and the 1x1 convolutions are generated."""
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)
    p = plan(capture(ConvZoo(), inputs(0)))
    assert sorted(k.conv.c for k in _convs(p)) == [32, 32], p.decisions
    assert any("36 input channels through a 3x3 window" in e.reason for e in p.externs), p.decisions


def test_sixty_four_channels_through_a_window_are_generated(monkeypatch):
    """64 -> 64 through a 3x3 window with an epilogue reading the input (level2/024's form): generated
    by default since its epilogue loads in chunks (0.90 of cuDNN's time, bench/session34/epi)."""
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(64, 64, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y * torch.sigmoid(y) + x
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)
    p = plan(capture(Residual(), [torch.randn(2, 64, 16, 16)]))
    assert [(k.conv.c, k.conv.k, len(k.epilogue)) for k in _convs(p)] == [(64, 64, 3)], p.decisions


class ConvMish(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, 32, 3)

    def forward(self, x):
        return F.mish(F.mish(self.conv(x)))


@pytest.mark.parametrize("c, why", [(32, "6 transcendental functions"), (16, "16 input channels")])
def test_stays_cudnn(monkeypatch, c, why):
    """Two mish an element measured slower inside the convolution; with 16 input channels eager's
    cuDNN may run float32 (plan_conv's numerics), which a TF32 kernel would be looser than."""
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)
    p = plan(capture(ConvMish(c), [torch.randn(2, c, 8, 8)]))
    assert not _convs(p), p.decisions
    assert any(why in e.reason for e in p.externs if "conv" in e.node.target), p.decisions


class ConvPair(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(64, 128, 3)
        self.b = nn.Conv2d(128, 128, 3)

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))))


def test_a_result_another_convolution_reads_stays_cudnn(monkeypatch):
    """The first stays cuDNN's (its result written channels-last for the second where computed);
    the second, 128 input channels into 128 through a window, is generated; so is the first alone."""
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)
    p = plan(capture(ConvPair(), [torch.randn(2, 64, 10, 10)]))
    assert [k.conv.c for k in _convs(p)] == [128], p.decisions
    assert any("read by another convolution" in e.reason for e in p.externs), p.decisions
    p = plan(capture(ConvPair().a, [torch.randn(2, 64, 10, 10)]))
    assert [k.conv.c for k in _convs(p)] == [64], p.decisions


class ConvMean(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(32, 32, 3)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


class ConvMin(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(32, 32, 3)

    def forward(self, x):
        return self.conv(x).amin(1)


class ConvNorm(nn.Module):
    """32 channels into 64, then an instance norm (a batch or a group norm; or with mean=True a mean
    over the pixels)."""
    def __init__(self, mean=False, norm="instance"):
        super().__init__()
        self.conv = nn.Conv2d(32, 64, 3, padding=1)
        self.norm = {"instance": lambda: nn.InstanceNorm2d(64), "batch": lambda: nn.BatchNorm2d(64),
                     "group": lambda: nn.GroupNorm(8, 64)}[norm]()
        self.mean = mean

    def forward(self, x):
        y = self.conv(x)
        return y.mean((2, 3)) if self.mean else self.norm(y)


LARGE = (13, 32, 180, 180)   # a 64-channel result of 108 MB (over RESIDENT_MIN_BYTES), 32400-pixel images
SMALL = (2, 32, 180, 180)    # 17 MB: stays in L2 between two reads
TILED = (120, 32, 60, 60)    # 110 MB in 3600-pixel images (under RESIDENT_MIN_RUN: not held on chip)


def _bare(model, shape) -> list[int]:
    """The epilogue lengths of the plan's generated convolutions (an uninitialized input: only its
    shape matters to the plan)."""
    return [len(k.epilogue) for k in _convs(plan(capture(model, [torch.empty(shape)])))]


def test_which_convolutions_without_epilogue_are_generated(monkeypatch):
    """By default where the model returns the result as it is (padded 'same' evenly: the padding
    spelled out), and where a norm over the pixels reads a result too large for L2 twice (its
    statistics, its normalize; its bias add goes into the row kernel): not for a mean (read once),
    not for a small result, not for images too small for a launch to hold whole (the networks'
    56 x 56); for an instance norm only, not a batch or group norm (planes). FUSEFORGE_CONV_BARE=norms
    takes those too, =all the mean and the small result too, =0 none; rows over the channels alone
    read it folded into its epilogue either way (fold_pixel_rows)."""
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)
    monkeypatch.delenv("FUSEFORGE_CONV_BARE", raising=False)
    monkeypatch.setenv("FUSEFORGE_MEAN_OF_CONV", "0")   # (a mean that reads the convolution: not pooled first)
    assert _bare(ConvNorm(), LARGE) == [0]
    assert _bare(ConvNorm(), SMALL) == []
    assert _bare(ConvNorm(), TILED) == []
    assert _bare(ConvNorm(mean=True), LARGE) == []
    p = plan(capture(ConvMean(), [torch.randn(2, 32, 8, 8)]))
    assert any("no pointwise epilogue" in e.reason for e in p.externs if "conv" in e.node.target), p.decisions
    returned = nn.Conv2d(32, 64, 5, padding="same", bias=False)   # (level1/028: cuDNN's result converted back)
    assert _bare(returned, (2, 32, 8, 8)) == [0]
    p = plan(capture(ConvNorm(), [torch.empty(LARGE)]))
    assert any("generated without an epilogue, a norm over its pixels reads it twice" in d for d in p.decisions), \
        p.decisions
    assert _bare(nn.Conv2d(32, 64, 4, padding="same", bias=False), (2, 32, 8, 8)) == []   # (padded unevenly)
    monkeypatch.setenv("FUSEFORGE_CONV_BARE", "all")
    assert _bare(ConvMean(), (2, 32, 8, 8)) == [0]
    assert _bare(ConvNorm(), SMALL) == [0]
    p = plan(capture(ConvMin(), [torch.randn(2, 32, 8, 8)]))
    assert [k.rows is not None for k in _convs(p)] == [True], p.decisions   # (folded, not bare)
    monkeypatch.setenv("FUSEFORGE_CONV_BARE", "0")
    assert _bare(ConvNorm(), LARGE) == []
    assert _bare(returned, (2, 32, 8, 8)) == []
    monkeypatch.delenv("FUSEFORGE_CONV_BARE")   # (planes: only where a row is one image's channel)
    assert _bare(ConvNorm(norm="batch"), LARGE) == [] and _bare(ConvNorm(norm="group"), LARGE) == []
    monkeypatch.setenv("FUSEFORGE_CONV_BARE", "norms")
    assert _bare(ConvNorm(), LARGE) == [0] and _bare(returned, (2, 32, 8, 8)) == [0]
    assert _bare(ConvNorm(norm="batch"), LARGE) == [0] and _bare(ConvNorm(norm="group"), LARGE) == [0]
    monkeypatch.setenv("FUSEFORGE_CONV_BARE", "1")
    with pytest.raises(ConfigError, match="FUSEFORGE_CONV_BARE='1'"):
        plan(capture(ConvMean(), [torch.randn(2, 32, 8, 8)]))


class BareZoo(nn.Module):
    """Convolutions no pointwise group consumes (FUSEFORGE_CONV_BARE=all): level2/005's instance norm
    (32 channels into 40: part of a 64-channel tile) and 021's hardtanh and mean over the pixels (into
    72: a second tile mostly empty), 7 x 15 pixels (not a multiple of the 128-pixel tile); and one
    whose result the model returns as it is, padded 'same' through a dilated uneven window."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(32, 40, 3)
        self.b = nn.Conv2d(32, 72, 3, padding=1)
        self.c = nn.Conv2d(32, 40, (3, 5), padding="same", dilation=(2, 1), bias=False)
        self.norm = nn.InstanceNorm2d(40)

    def forward(self, x):
        return self.norm(self.a(x)) / 2, torch.tanh(F.hardtanh(self.b(x)).mean((2, 3))), self.c(x)


bare_inputs = random_inputs((2, 32, 9, 17))


@pytest.fixture(scope="module")
def compiled_bare():
    torch.manual_seed(0)
    model = BareZoo()
    return (model, *_compile(model, bare_inputs(0), mode="auto", FUSEFORGE_CONV_BARE="all"))


def test_bare_convolutions_are_generated(compiled_bare):
    _, p, _ = compiled_bare
    assert sorted((k.conv.k, len(k.epilogue), k.conv.padding) for k in _convs(p)) == \
        [(40, 0, (0, 0)), (40, 0, (2, 2)), (72, 0, (1, 1))], p.decisions


class ConvZoo3D(nn.Module):
    """3D convolutions: 16 input channels (a k-slice holds two taps; 27 taps leave the last slice
    half empty) into 24 (part of a 32-channel tile), padded; 20 input channels (a slice of one
    tap, mostly channel tail) through an uneven window with stride, padding and dilation differing
    by dimension; 32 channels with no epilogue (its bias goes into the mean's row kernel). Pixel
    counts are not multiples of the 128-pixel tile."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(16, 24, 3, padding=1)
        self.b = nn.Conv3d(20, 40, (2, 3, 1), stride=(2, 1, 2), padding=(1, 0, 1), dilation=(1, 2, 1))
        self.c = nn.Conv3d(32, 32, 3)

    def forward(self, x, y, z):
        return torch.relu(self.a(x)) * 2, self.b(y).sigmoid(), self.c(z).mean((2, 3, 4))


inputs_3d = random_inputs((2, 16, 5, 6, 7), (2, 20, 7, 9, 6), (1, 32, 4, 5, 6))


@pytest.fixture(scope="module")
def compiled_3d():
    torch.manual_seed(0)
    model = ConvZoo3D()
    return (model, *_compile(model, inputs_3d(0), mode="auto"))


def test_plan_generates_3d_convolutions(compiled_3d):
    """By default: all three (16 or more input channels through a window: eager's cuDNN runs TF32,
    plan_conv's numerics), the first two with their bias adds folded into the sums, the third without
    an epilogue; two taps a k-slice for 16 channels."""
    _, p, _ = compiled_3d
    got = sorted((k.conv.c, k.conv.cp, len(k.epilogue), k.bias is not None, tiles(k.conv)) for k in _convs(p))
    assert got == [(16, 16, 2, True, (32, 14)), (20, 32, 1, True, (64, 6)), (32, 32, 0, False, (32, 27))], p.decisions


@pytest.mark.parametrize("c, kernel, why", [(8, 3, "8 input channels through 27 tap"), (16, 1, "16 input channels through 1 tap")])
def test_3d_stays_cudnn_where_eager_may_run_float32(monkeypatch, c, kernel, why):
    """Eager's cuDNN ran float32 on some 3D shapes of 8 channels, and of a 1x1x1 window
    (bench/session18/final/eager_tf32_3d_h100.txt): a TF32 kernel would be looser."""
    monkeypatch.delenv("FUSEFORGE_CONV", raising=False)
    p = plan(capture(nn.Conv3d(c, 32, kernel), [torch.randn(2, c, 4, 5, 6)]))
    assert not _convs(p), p.decisions
    assert any(why in e.reason for e in p.externs if "conv" in e.node.target), p.decisions


def _close_to_rounded(got, want, eager=None):
    """Within float32 sums of a float64 reference (1e-5 of its largest value); contiguous, or
    eager's strides where given (a permute of a channels-last result, as eager's)."""
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape and (a.is_contiguous() if eager is None else a.stride() == eager[k].stride())
        err = float((a.double() - b.to(a.device)).abs().max())
        assert err <= 1e-5 * float(b.abs().max()) + 1e-6, err


def cpu_results(model, fast, x):
    """(fuseforge's outputs, eager's, float64's) on the CPU."""
    with torch.no_grad():
        return fast(*x), model(*x), copy.deepcopy(model).double()(*[t.double() for t in x])


class HaloZoo(nn.Module):
    """The halo kernel's cases (plan_conv.halo, FUSEFORGE_CONV_HALO=1): 2D, 32 channels into 40
    through a dilated, padded 3x3 window over 13 columns (17 with the padding: its second tile of 128
    virtual pixels spans 9 rows); 3D, 16 channels into 24, padded, 7 columns; 3D, 32 into 32 through a 2x3x3
    window, unpadded, a sigmoid after it."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(32, 40, 3, padding=2, dilation=2)
        self.b = nn.Conv3d(16, 24, 3, padding=1)
        self.c = nn.Conv3d(32, 32, (2, 3, 3))

    def forward(self, x, y, z):
        return torch.relu(self.a(x)), self.b(y) * 2, self.c(z).sigmoid()


halo_inputs = random_inputs((2, 32, 11, 13), (2, 16, 5, 6, 7), (1, 32, 4, 9, 10))


@pytest.fixture(scope="module")
def compiled_halo():
    torch.manual_seed(0)
    model = HaloZoo()
    return (model, *_compile(model, halo_inputs(0), FUSEFORGE_CONV_HALO="1"))


def test_halo_kernel_only_where_asked_and_it_applies(monkeypatch):
    """Off by default; with FUSEFORGE_CONV_HALO=1 every HaloZoo convolution takes it, and none of
    ConvZoo3D's but the unstrided ones of channels a multiple of 8."""
    p = plan(capture(HaloZoo(), halo_inputs(0)))
    monkeypatch.delenv("FUSEFORGE_CONV_HALO", raising=False)
    assert len(_convs(p)) == 3 and not any(halo(k.conv) for k in _convs(p)), p.decisions
    monkeypatch.setenv("FUSEFORGE_CONV_HALO", "1")
    assert [halo(k.conv) for k in _convs(p)] == [(17, 13, 225), (9, 17, 461), (10, 15, 302)]
    p = plan(capture(ConvZoo3D(), inputs_3d(0)))
    assert sorted((k.conv.c, halo(k.conv) is not None) for k in _convs(p)) == [(16, True), (20, False), (32, True)]


class AsymmetricZoo(nn.Module):
    """2D windows whose rows and columns differ in size, stride, padding and dilation, so that a
    row/column swap in the im2col copy's corners, offsets or strides (tma_input) shows; 40
    channels: a second k-slice of 8 channels and 24 zeros. The second convolution has no epilogue:
    its results are staged through shared memory (staged_store)."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(32, 48, (3, 5), stride=(1, 2), padding=(2, 1), dilation=(2, 1))
        self.b = nn.Conv2d(40, 64, (5, 3), stride=(2, 1), padding=(0, 1))

    def forward(self, x, y):
        return torch.relu(self.a(x)), self.b(y)


asymmetric_inputs = random_inputs((2, 32, 11, 13), (3, 40, 12, 9))


@pytest.fixture(scope="module")
def compiled_asymmetric():
    torch.manual_seed(0)
    model = AsymmetricZoo()
    return (model, *_compile(model, asymmetric_inputs(0)))


def test_im2col_copies_where_they_apply(compiled, compiled_3d, compiled_asymmetric, monkeypatch):
    """TMA's im2col copy: 2D windows of whole 32-channel k-slices (36 and 40 channels too), not the
    1x1 read NCHW, not 3D; FUSEFORGE_CONV_TMA=0 turns it off. Results staged where there is no
    epilogue."""
    monkeypatch.delenv("FUSEFORGE_CONV_TMA", raising=False)
    monkeypatch.delenv("FUSEFORGE_CONV_STAGED", raising=False)
    assert sorted((k.conv.r, k.conv.c, tma_input(k.conv)) for k in _convs(compiled[1])) == \
        [(1, 32, False), (3, 32, True), (3, 36, True)]
    assert [(tma_input(k.conv), staged_store(k)) for k in _convs(compiled_asymmetric[1])] == [(True, False), (True, True)]
    assert not any(tma_input(k.conv) for k in _convs(compiled_3d[1]))
    monkeypatch.setenv("FUSEFORGE_CONV_TMA", "0")
    assert not any(tma_input(k.conv) for k in _convs(compiled[1]))


ZOOS = [("compiled", inputs), ("compiled_3d", inputs_3d), ("compiled_bare", bare_inputs)]   # (the fixture, its inputs)


@pytest.mark.parametrize("zoo, make", ZOOS)
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_float64_and_eager_on_cpu(request, zoo, make, seed):
    model, _, fast = request.getfixturevalue(zoo)
    got, ref, exact = cpu_results(model, fast, make(seed))
    _close_to_rounded(got, exact)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("zoo, make", ZOOS + [("compiled_halo", halo_inputs), ("compiled_asymmetric", asymmetric_inputs)])
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_rounded_reference_and_no_looser_than_eager_on_cuda(request, zoo, make, seed):
    model, _, fast = request.getfixturevalue(zoo)
    model, fast = model.cuda(), fast.cuda()
    x = make(seed, "cuda")
    with torch.no_grad():
        got = fast(*x)
    _close_to_rounded(got, rounded_reference(model, x))
    # eager: cuDNN under PyTorch's default flags (TF32 in at least one of NCHW and channels-last)
    _no_looser_than_eager(model, fast, x)


@pytest.mark.gpu
def test_weights_changed_in_place_are_packed_again():
    """The weights are packed on the first call and again after an in-place update (a new version:
    ff::packed_once), op by op and replayed (each update captures a new graph): every call matches
    the rounded reference of the weights it is called with, which the updates change."""
    torch.manual_seed(0)
    model = ConvZoo()
    _, fast = _compile(model, inputs(0))
    model, fast = model.cuda(), fast.cuda()
    x = inputs(4, "cuda")
    before = None
    for step in range(7):   # updated after every third call: op by op, captured, replayed
        with torch.no_grad():
            want = rounded_reference(model, x)
            _close_to_rounded(fast(*x), want)
            if step % 3 == 2:
                assert before is None or (want[0] - before[0]).abs().max() > 0.1 and (want[1] - before[1]).abs().max() > 0.1
                before = want
                model.a.weight.mul_(-0.5)
                model.b.weight.add_(0.25)


@pytest.mark.gpu
@pytest.mark.parametrize("zoo, make", [(ConvZoo, inputs), (ConvZoo3D, inputs_3d)])
def test_direct_kernel_matches_rounded_reference_on_cuda(monkeypatch, zoo, make):
    """The kernel GPUs without wgmma run, forced on the H100."""
    source = conv_codegen.CONV_LIBRARY
    assert source.count("if (!ffsm90::available()) {") == 1
    monkeypatch.setattr(conv_codegen, "CONV_LIBRARY", source.replace("if (!ffsm90::available()) {", "if (true) {"))
    torch.manual_seed(0)
    model = zoo()
    _, fast = _compile(model, make(0))
    x = make(3, "cuda")
    with torch.no_grad():
        got = fast.cuda()(*x)
    _close_to_rounded(got, rounded_reference(model.cuda(), x))


def test_ablation_script_matches_the_kernel():
    """scripts/conv_ablations.py edits the kernel's text in exactly one place per variant: a change
    to the kernel that moves one of them fails here, not on a device call."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "scripts" / "conv_ablations.py"
    spec = importlib.util.spec_from_file_location("conv_ablations", path)
    ablations = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablations)
    for variant, (old, new) in {**ablations.VARIANTS, **ablations.HALO_VARIANTS}.items():
        assert conv_codegen.CONV_LIBRARY.count(old) == 1, variant
        edited = ablations.ablate(conv_codegen.CONV_LIBRARY + 'name="ff_x"', variant)
        assert new in edited and old not in edited and f'name="ff_x_{variant}"' in edited
