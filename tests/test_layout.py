"""Channels-last convolutions (layout.py): chosen only where measured faster and where the
epilogue kernel reads them through a transposing tile; results compared with eager."""
import copy
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fuseforge
from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.plan import plan

from .outputs import assert_same_layout_and_close


class ConvEpilogues(nn.Module):
    def __init__(self):
        super().__init__()
        self.c2 = nn.Conv2d(16, 24, 3)
        self.c3 = nn.ConvTranspose3d(16, 8, 3, stride=2)
        self.t2 = nn.ConvTranspose2d(16, 8, 3, stride=2)
        self.c1x1 = nn.Conv2d(16, 8, 1)
        self.few = nn.Conv2d(3, 8, 3)
        self.bias = nn.Parameter(torch.randn(24, 1, 1))

    def forward(self, x, v, r):
        a = torch.min(self.c2(x), torch.tensor(0.3)) + self.bias     # channels-last, per-channel operand
        b = torch.tanh(self.c3(v)) * 2                                # 3D, transposed (stride 2: kept)
        c = torch.relu(self.t2(x)) + r                                # transposed, an NCHW operand too
        d = torch.sigmoid(self.c1x1(x))                               # 1x1, 8 channels out: stays NCHW
        e = self.few(x[:, :3]) + 1                                    # 3 input channels: stays NCHW
        return a, b, c, d, e


class ConvPools(nn.Module):
    """A window kernel reading a convolution: it reads the channels-last output in place through
    a tile (one thread an output measured slower on a channels-last input)."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(16, 8, 3)

    def forward(self, x):
        return F.max_pool2d(self.c(x), 2)


def row_inputs(seed, device="cpu"):
    return [torch.randn(2, 16, 64, 64, generator=torch.Generator().manual_seed(seed)).to(device)]


def test_window_readers_read_channels_last_through_a_tile(monkeypatch):
    def convs():
        p = plan(capture(ConvPools(), row_inputs(0)))
        return p, [(e.channels_last, e.to_nchw) for e in p.externs if "conv" in e.node.target]
    p, got = convs()
    assert got == [(True, False)], p.decisions
    assert "fused_add_max_pool2d_pool(a, (img" in generate(p, name="pools").text
    monkeypatch.setenv("FUSEFORGE_CL_WINDOWS", "0")   # converted back to NCHW for it instead
    p, got = convs()
    assert got == [(True, True)], p.decisions
    assert sum("converted back to NCHW, since" in d and "does not read it through a tile" in d
               for d in p.decisions) == 1, p.decisions
    assert "_pool(a," not in generate(p, name="pools").text
    monkeypatch.setenv("FUSEFORGE_CL_BACK", "0")
    assert not any(e.channels_last for e in plan(capture(ConvPools(), row_inputs(0))).externs)


class ConvReadBack(nn.Module):
    """Convolutions whose readers want NCHW or read channels-last through a tile: a window kernel
    (max pool), an extern (cat), the model's result, and a 3D transposed convolution's window
    kernel (from channels-last-3d; of stride 2: one of stride 1 runs as a convolution, ops/convs.py).
    Odd sizes: the conversion's 32 x 32 tiles have tails along the channels (6 and 5) and the
    pixels (33 x 35, 32 x 34), the window tiles' (32 channels x 32 output pixels) too: 8 channels
    of 15 x 16 and 5 x 6 x 7 outputs."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(40, 8, 3)
        self.b = nn.Conv2d(40, 6, 3, padding=1, bias=False)
        self.c = nn.Conv2d(40, 5, 2, bias=False)
        self.t = nn.ConvTranspose3d(16, 8, 3, stride=2)

    def forward(self, x, v):
        return F.max_pool2d(self.a(x), 2), torch.cat([x, self.b(x)], 1), self.c(x), F.max_pool3d(self.t(v), 2)


def read_back_inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 40, 33, 35, generator=g).to(device), torch.randn(2, 16, 5, 6, 7, generator=g).to(device)]


def test_convolutions_read_back_in_nchw():
    """Each runs channels-last (input converted, weight once); the pools read theirs in place, the
    others' outputs are converted back (their results: test_layout_choices_match_eager_*); the
    three 2D ones read x converted once."""
    p = plan(capture(ConvReadBack(), read_back_inputs(0)))
    assert [(e.channels_last, e.to_nchw) for e in p.externs if "conv" in e.node.target] == \
        [(True, False), (True, True), (True, True), (True, False)], p.decisions
    src = generate(p, name="read_back").text
    assert src.count("ff::to_nchw(ff::call(") == 2 and src.count("ff::to_channels_last(") == 2
    assert src.count("_pool(a, (img") == 2


class ConvWindows(nn.Module):
    """Window kernels reading a channels-last convolution through tiles, at 40 channels (a full
    tile of 32 and a tail) over 15 x 16 and 16 x 17 outputs: average pooling with a prologue
    and an epilogue (which reads an operand of the output's size as it stores), overlapping padded
    max pooling."""
    def __init__(self):
        super().__init__()
        self.w = nn.Conv2d(40, 40, 3, bias=False)
        self.r = nn.Parameter(torch.randn(40, 15, 16))

    def forward(self, x):
        y = self.w(x)
        return F.avg_pool2d(torch.tanh(y - 0.5), 2) * 3 + self.r, F.max_pool2d(y, 3, 2, 1)


class ConvPixelRows(nn.Module):
    """Row kernels over the pixels of a convolution: batch norm in training (40 channels: a
    block's 32 rows and a partial tile; rows split over blocks), group norm, instance norm of a
    13 x 13 image (rows cached), a mean."""
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(16, 40, 3, padding=1), nn.Conv2d(16, 16, 3)
        self.c, self.d = nn.Conv2d(16, 24, 3, stride=5), nn.Conv2d(16, 8, 3)
        self.bn, self.gn, self.inorm = nn.BatchNorm2d(40), nn.GroupNorm(4, 16), nn.InstanceNorm2d(24)

    def forward(self, x):
        return torch.relu(self.bn(self.a(x))), self.gn(F.gelu(self.b(x))), self.inorm(self.c(x)) / 2, \
            torch.tanh(self.d(x).mean((2, 3)))


def test_scalar_group_joins_a_row_kernel(monkeypatch):
    """The batch norm's num_batches_tracked + 1 is a side op of a row kernel, not a pointwise
    kernel of its own (FUSEFORGE_SCALAR_SIDE=0: its own)."""
    from fuseforge.plan_rows import RowKernel
    def scalar_kernels():
        p = plan(capture(ConvPixelRows(), row_inputs(0)))
        own = [k for k in p.kernels if not isinstance(k, RowKernel) and k.outputs and
               all(o.type.shape == () for o in k.outputs)]
        return own, sum("as a side op" in d for d in p.decisions)
    assert scalar_kernels() == ([], 1)
    monkeypatch.setenv("FUSEFORGE_SCALAR_SIDE", "0")
    own, joined = scalar_kernels()
    assert len(own) == 1 and joined == 0


def test_pixel_rows_take_channels_last(monkeypatch):
    """Every one of these convolutions runs channels-last. The mean reads it on the outer
    schedule. The norms split: their statistics are a row kernel that only reduces (batch and
    instance norm on the outer schedule), their application pointwise ops that read the
    convolution through the transposing tile and write NCHW. Kept whole (FUSEFORGE_SPLIT_RESULTS=0:
    it is a result of the model), the group norm reads runs of 4 channels (its NCHW result written
    element by element)."""
    from fuseforge.codegen.rows import render
    from fuseforge.plan_rows import ELEM, RowKernel

    def row_kernels(p):
        return {next(iter(k.recipes)).target.split(".")[1]: k for k in p.kernels if isinstance(k, RowKernel)}
    monkeypatch.setenv("FUSEFORGE_MEAN_OF_CONV", "0")   # (the mean reads the convolution: not pooled first)
    p = plan(capture(ConvPixelRows(), row_inputs(0)))
    assert [e.channels_last for e in p.externs if "conv" in e.node.target] == [True] * 4, p.decisions
    assert sum("statistics, then pointwise ops" in d for d in p.decisions) == 3, p.decisions
    rows = row_kernels(p)
    assert sorted(rows) == ["_native_batch_norm_legit_functional", "mean", "native_group_norm", "var_mean"], rows
    for name in ("_native_batch_norm_legit_functional", "var_mean", "native_group_norm"):
        k = rows[name]
        assert not any(k.phase.get(o) == ELEM for o in k.outputs), k.summary()   # statistics only
        assert name == "native_group_norm" or "schedule outer" in render(k).shared
    applied = [k for k in p.kernels if type(k) is not RowKernel and "sub" in k.name]
    assert sorted(k.shape for k in applied) == [(2, 16, 62, 62), (2, 24, 13, 13), (2, 40, 64, 64)], p.decisions
    monkeypatch.setenv("FUSEFORGE_SPLIT_RESULTS", "0")
    p = plan(capture(ConvPixelRows(), row_inputs(0)))
    assert [e.channels_last for e in p.externs if "conv" in e.node.target] == [True] * 4, p.decisions
    source = render(row_kernels(p)["group_norm"]).shared
    assert "schedule inner" in source and "4 elements per access" in source, source


def test_pixel_rows_all_take_the_tile(monkeypatch):
    """Every pixel-row reader channels-last (FUSEFORGE_CL_ROWS=all): the norms' rows on the outer
    schedule, their NCHW results written through the shared-memory tile (run: conv_rows below)."""
    from fuseforge.plan_rows import RowKernel
    from fuseforge.codegen.rows import render
    monkeypatch.setenv("FUSEFORGE_CL_ROWS", "all")
    monkeypatch.setenv("FUSEFORGE_MEAN_OF_CONV", "0")   # (the mean reads the convolution: not pooled first)
    p = plan(capture(ConvPixelRows(), row_inputs(0)))
    assert [e.channels_last for e in p.externs if "conv" in e.node.target] == [True] * 4, p.decisions
    rows = {next(iter(k.recipes)).target.split(".")[1]: k for k in p.kernels if isinstance(k, RowKernel)}
    assert sorted(rows) == ["_native_batch_norm_legit_functional", "group_norm", "instance_norm", "mean"], rows
    for name in ("_native_batch_norm_legit_functional", "instance_norm"):
        source = render(rows[name]).shared
        assert "schedule outer" in source and "__shared__ float t_out" in source, source
    assert rows["instance_norm"].splits == 1 and rows["_native_batch_norm_legit_functional"].splits > 1
    assert "cached in registers" in render(rows["instance_norm"]).shared


class ConvChannelRows(nn.Module):
    """Row kernels over the channels of a convolution: a ConvNeXt layer norm through permutes
    (the bias add moves after the permute), a min over channels, a softmax over channels (its
    full-size result written NCHW). Channels-last makes their rows contiguous, so these
    convolutions run channels-last."""
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(16, 24, 3, padding=1), nn.Conv2d(16, 8, 3), nn.Conv2d(16, 12, 3)
        self.ln = nn.LayerNorm(24)

    def forward(self, x):
        y = F.gelu(self.ln(self.a(x).permute(0, -2, -1, 1))).permute(0, 3, 1, 2)   # dims from the end too
        m = torch.amin(self.b(x), dim=1, keepdim=True)
        return y, torch.softmax(m, -1), torch.sigmoid(torch.softmax(self.c(x), 1) * 2)


def test_row_readers_over_channels_take_channels_last():
    from fuseforge.plan_rows import RowKernel
    p = plan(capture(ConvChannelRows(), row_inputs(0)))
    assert [e.channels_last for e in p.externs if "conv" in e.node.target] == [True] * 3, p.decisions
    rows = [[n.target.split(".")[1] for n in k.nodes] for k in p.kernels if isinstance(k, RowKernel)]
    assert ["add", "layer_norm", "gelu"] in rows and ["add", "amin"] in rows, rows
    assert ["add", "softmax", "mul", "sigmoid"] in rows, rows
    assert len(p.kernels) == 4, p.decisions
    # the softmax reads its rows twice (cached): a block's rows of 12 contiguous channels are staged
    # through shared memory with 16-byte loads (the GPU test below runs it, a partial last block too)
    staged = [line.strip() for line in generate(p, name="channel_rows").text.splitlines() if "ff_stage_rows<" in line]
    assert len(staged) == 1 and staged[0].startswith("ff_stage_rows<32, 12,"), staged


class ConvGroupNormRows(nn.Module):
    """level2/014's chain at odd sizes: conv, group norm, tanh, hardswish, the conv added, then a
    logsumexp over the channels. The group norm splits (FUSEFORGE_SPLIT_GROUP_NORM=0 keeps it
    whole): native_group_norm's statistics, a row kernel that only reduces, and pointwise ops
    that the logsumexp's row kernel applies as it reads the convolution: no full-size tensor
    between them."""
    def __init__(self):
        super().__init__()
        self.conv, self.gn = nn.Conv2d(16, 24, 3), nn.GroupNorm(4, 24)

    def forward(self, x):
        y = self.conv(x)
        return torch.logsumexp(y + F.hardswish(torch.tanh(self.gn(y))), dim=1, keepdim=True)


def test_group_norm_split_for_a_row_reader(monkeypatch):
    from fuseforge.plan_rows import RowKernel
    p = plan(capture(ConvGroupNormRows(), row_inputs(0)))
    monkeypatch.setenv("FUSEFORGE_SPLIT_GROUP_NORM", "0")
    whole = plan(capture(ConvGroupNormRows(), row_inputs(0)))
    assert not any("statistics, then pointwise ops" in d for d in whole.decisions), whole.decisions
    assert sum("statistics, then pointwise ops" in d for d in p.decisions) == 1, p.decisions
    assert [e.channels_last for e in p.externs if "conv" in e.node.target] == [True], p.decisions
    rows = sorted(next(iter(k.recipes)).target for k in p.kernels if isinstance(k, RowKernel))
    assert rows == ["aten.logsumexp.default", "aten.native_group_norm.default"], rows
    conv_shape = (2, 24, 62, 62)
    assert not any(o.type.shape == conv_shape for k in p.kernels for o in k.outputs), p.decisions
    assert any(o.type.shape == conv_shape for k in whole.kernels for o in k.outputs)   # (whole: written)


class ConvSqueeze(nn.Module):
    """An EfficientNet block's middle (level3/008) at odd sizes: depthwise convolution, batch norm
    (training), silu, a squeeze over the pixels, its scale applied, a 1x1 projection. The mean
    computes the norm and silu again from the convolution, which then stays channels-last (no
    conversion back; FUSEFORGE_RECOMPUTE=0 converts it back)."""
    def __init__(self):
        super().__init__()
        self.dw, self.bn = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16)
        self.se, self.project = nn.Linear(16, 16), nn.Conv2d(16, 24, 1, bias=False)

    def forward(self, x):
        y = F.silu(self.bn(self.dw(x)))
        s = torch.sigmoid(self.se(y.mean((2, 3))))
        return self.project(y * s[:, :, None, None])


def test_recomputed_for_the_squeeze_the_convolution_stays_channels_last(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_DEPTHWISE", "0")   # (the depthwise convolution of a model input stays cuDNN's)
    def back():
        p = plan(capture(ConvSqueeze(), row_inputs(0)))
        return [e.to_nchw for e in p.externs if e.node.target == "aten.conv2d.default" and e.node.arg("groups") > 1]
    assert back() == [False]
    monkeypatch.setenv("FUSEFORGE_RECOMPUTE", "0")
    assert back() == [True]


class DenseCats(nn.Module):
    """DenseNet's block (level3/009) at odd sizes: each layer reads the cat of every feature before
    it, so cat(x), cat(x, y1) are views of cat(x, y1, y2)'s buffer, each piece copied in once; the
    batch norms read those views (strided) directly. 6 + 2 x 4 channels, 9 x 11 pixels (widths
    16, 20: wide enough for channels-last convolutions, DenseRows)."""
    def __init__(self, widths=(6, 10), bias=True):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 4, 3, padding=1, bias=bias)) for c in widths)

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class DenseRows(nn.Module):
    """DenseCats over 16 + 4 channels, without biases (as DenseNet): each batch norm splits (not
    with FUSEFORGE_CL_TILE_IN=0) and its relu, reading a view of the cats' buffer (NCHW), is
    written channels-last for the convolution through a transposing tile (16-byte loads; on 63 x
    62 pixels, not a multiple of 4, one float each). Each convolution's output is converted back
    to NCHW straight into its slice of the buffer. `mix` reads x + a slice of the first block's
    result, both NCHW, through two tiles."""
    def __init__(self):
        super().__init__()
        self.whole, self.cropped = DenseCats((16, 20), bias=False), DenseCats((16, 20), bias=False)
        self.mix = nn.Conv2d(16, 32, 3, bias=False)

    def forward(self, x):
        a = self.whole(x)
        return a, self.cropped(x[:, :, 1:, 2:]), self.mix(torch.relu(x + a[:, 4:20]))


def test_norm_results_written_channels_last_through_a_tile(monkeypatch):
    p = plan(capture(DenseRows(), row_inputs(0)))
    assert sum("written channels-last for the convolution" in d for d in p.decisions) == 5, p.decisions
    assert sum("reads its result and may run channels-last" in d for d in p.decisions) == 4, p.decisions
    assert sum(e.into_slice is not None for e in p.externs) == 4, p.decisions
    src = generate(p, name="dense_rows").text
    assert src.count("NCHW input(s) cat") == 4 and src.count("NCHW input(s) x, slice") == 1, src[:2000]
    # the inputs copied into the buffers; the convolutions converted into them
    assert len(re.findall(r"ff::copy_into\(\w+_buffer\.narrow\(1, \d+, \d+\), ", src)) == 2
    assert len(re.findall(r"ff::to_nchw\(.*, \w+_buffer\.narrow\(1, (?:16|20), 4\)\);", src)) == 4, src[-6000:]
    monkeypatch.setenv("FUSEFORGE_CAT_INTO", "0")
    assert not any(e.into_slice for e in plan(capture(DenseRows(), row_inputs(0))).externs)
    monkeypatch.setenv("FUSEFORGE_CL_TILE_IN", "0")
    assert "NCHW input(s)" not in generate(plan(capture(DenseRows(), row_inputs(0))), name="off").text


@pytest.fixture(scope="module", params=[(ConvPixelRows, {}), (ConvChannelRows, {}),
                                        (ConvGroupNormRows, {}),
                                        (ConvPixelRows, {"FUSEFORGE_SCALAR_SIDE": "0", "FUSEFORGE_SPLIT_RESULTS": "0"}),
                                        (ConvPixelRows, {"FUSEFORGE_CL_ROWS": "all"}),
                                        (ConvSqueeze, {}), (DenseRows, {})],
                ids=["pixel_rows", "channel_rows", "group_norm_split", "pixel_rows_own_scalar_launch_whole_group_norm",
                     "pixel_rows_all", "squeeze_recomputed", "dense_tile_in"])
def conv_rows(request):
    torch.manual_seed(0)
    cls, env = request.param
    model = cls()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        return model, fuseforge.compile(model, row_inputs(0))


def _buffers_follow_eager(model, fast, xs):
    """The buffers (a batch norm's running statistics, num_batches_tracked) after one call of the
    candidate, which shares them with the model, against a copy of the model taken before and
    called once by eager."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        fast(*xs)
        ref(*xs)
    for (name, ours), (_, theirs) in zip(model.named_buffers(), ref.named_buffers()):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)


def test_conv_rows_match_eager_on_cpu(conv_rows):
    model, fast = conv_rows
    with torch.no_grad():
        assert_same_layout_and_close(fast(*row_inputs(1)), model(*row_inputs(1)))
    _buffers_follow_eager(model, fast, row_inputs(3))


@pytest.mark.gpu
def test_conv_rows_match_eager_on_cuda(conv_rows):
    """Outputs against float64 (no looser than eager), and the buffers as eager updates them."""
    model, fast = conv_rows
    model, fast = model.cuda(), fast.cuda()
    _no_looser_than_eager(model, fast, row_inputs(2, "cuda"))
    _buffers_follow_eager(model, fast, row_inputs(3, "cuda"))


def inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 16, 11, 13, generator=g)
    v = torch.randn(2, 16, 5, 6, 7, generator=g)
    r = torch.randn(2, 8, 23, 27, generator=g)                       # the NCHW residual of t2
    return [t.to(device) for t in (x, v, r)]


def test_choice():
    p = plan(capture(ConvEpilogues(), inputs(0)))
    chosen = {e.node.target: e.channels_last for e in p.externs if "conv" in e.node.target}
    cl = [e.node.name for e in p.externs if e.channels_last]
    assert len(cl) == 3, p.decisions
    assert chosen["aten.conv_transpose3d.input"] and chosen["aten.conv_transpose2d.input"], chosen
    src = generate(p, name="layout").text
    assert src.count("ff::to_channels_last(") == 2                           # x (c2 and t2 share it), v
    assert src.count("ff::converted_once(") == 3                             # the weight, once
    assert src.count("__shared__ float t_in") >= 3     # the epilogues read through tiles


@pytest.fixture(scope="module")
def compiled():
    torch.manual_seed(0)
    model = ConvEpilogues()
    return model, fuseforge.compile(model, inputs(0))


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_eager_on_cpu(compiled, seed):
    model, fast = compiled
    with torch.no_grad():
        assert_same_layout_and_close(fast(*inputs(seed)), model(*inputs(seed)))


def test_weight_updated_in_place_is_converted_again():
    torch.manual_seed(0)
    model = ConvEpilogues()
    fast = fuseforge.compile(model, inputs(0))
    with torch.no_grad():
        fast(*inputs(1))
        model.t2.weight.mul_(-0.5)           # bumps the version counter: the cached copy is stale
        assert_same_layout_and_close(fast(*inputs(1)), model(*inputs(1)))


def _channels_last(t):
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(t.dim())
    return t.contiguous(memory_format=fmt) if fmt else t


def _no_looser_than_eager(model, fast, x):
    """cuDNN may use TF32 for float32 convolutions under PyTorch's default flags, and whether it
    does depends on the layout (on small shapes NCHW often gets a full-float32 algorithm, channels-
    last a TF32 one). The candidate's error against float64 must be no larger (2x margin) than
    eager's own in the worse of the two layouts: the same flags, the same library."""
    with torch.no_grad():
        got, ref = fast(*x), model(*x)
        cl_model = copy.deepcopy(model)
        for p in cl_model.parameters():
            p.data = _channels_last(p.data)
        ref_cl = cl_model(*[_channels_last(t) for t in x])
        exact = copy.deepcopy(model).double()(*[t.double() for t in x])
    for k, (a, b, c, e) in enumerate(zip(got, ref, ref_cl, exact)):
        assert a.shape == b.shape and a.stride() == b.stride()
        ours = float((a.double() - e).abs().max())
        eagers = max(float((b.double() - e).abs().max()), float((c.double() - e).abs().max()))
        assert ours <= 2 * eagers + 1e-6, (f"output {k}", ours, eagers)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_eager_on_cuda(compiled, seed):
    model, fast = compiled
    _no_looser_than_eager(model.cuda(), fast.cuda(), inputs(seed, "cuda"))


class WideConv(nn.Module):
    """40 input channels and 33 x 35 pixels: the input conversion's tiles (32 x 32) have tails
    along both channels and pixels. The epilogues' tiles (32 channels x 64 pixels, 4 of each
    per access) too: 8 channels over 31 x 33 pixels (not a multiple of 4), 6 channels (not a
    multiple of 4) over 32 x 34."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(40, 8, 3)
        self.six = nn.Conv2d(40, 6, 2)

    def forward(self, x):
        return torch.relu(self.conv(x)), torch.sigmoid(self.six(x))


@pytest.mark.gpu
def test_input_conversion_tiles_have_tails():
    torch.manual_seed(0)
    model = WideConv()
    x = [torch.randn(3, 40, 33, 35)]
    p = plan(capture(model, x))
    assert [e.channels_last for e in p.externs if "conv" in e.node.target] == [True, True], p.decisions
    fast = fuseforge.compile(model, x)
    _no_looser_than_eager(model.cuda(), fast.cuda(), [t.cuda() for t in x])


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.g2 = nn.Conv2d(16, 16, 3, groups=4)                    # grouped: stays NCHW
        self.dw = nn.Conv2d(16, 16, 3, groups=16)                   # depthwise: channels-last
        self.gt2 = nn.ConvTranspose2d(16, 8, 3, stride=2, groups=2)  # grouped transposed 2D: channels-last

    def forward(self, x):
        return torch.relu(self.g2(x)), torch.relu(self.dw(x)), torch.relu(self.gt2(x))


def test_grouped_convolutions_measured_slower_keep_nchw(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_DEPTHWISE", "0")   # (the depthwise convolution of a model input stays cuDNN's)
    p = plan(capture(Grouped(), row_inputs(0)))
    chosen = [e.channels_last for e in p.externs if "conv" in e.node.target]
    assert chosen == [False, True, True], p.decisions
    assert any("a grouped 2D convolution (measured slower" in d for d in p.decisions), p.decisions


class ConvChain(nn.Module):
    """conv -> relu * per-channel scale -> conv -> relu, and a residual add of an NCHW tensor before
    a third conv: the first pointwise kernel (its inputs the
    channels-last convolution's output and a broadcast scale) writes channels-last for the conv
    after it; so does the residual kernel, reading its full-size NCHW input through a transposing
    tile (FUSEFORGE_CL_TILE_IN=0: it keeps NCHW). Odd sizes: 20 x 21 pixels."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(16, 16, 3)
        self.b = nn.Conv2d(16, 16, 3, padding=1)
        self.c = nn.Conv2d(16, 8, 3)
        self.s = nn.Parameter(torch.randn(16, 1, 1))

    def forward(self, x, r):
        y = torch.relu(self.a(x)) * self.s
        return torch.relu(self.c(torch.relu(self.b(y)) + r))


def chain_inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 16, 20, 21, generator=g).to(device), torch.randn(2, 16, 18, 19, generator=g).to(device)]


def test_convolution_inputs_written_channels_last(monkeypatch):
    from fuseforge.layout import channels_last_order, channels_last_strides
    p = plan(capture(ConvChain(), chain_inputs(0)))
    first, residual, _ = p.kernels     # relu * s (for conv b); relu + r (for conv c); the last relu
    assert first.order == channels_last_order(4) and first.outputs[0].type.strides == channels_last_strides(first.shape)
    assert residual.order == channels_last_order(4), residual.order
    assert [e.channels_last for e in p.externs if "conv" in e.node.target] == [True] * 3, p.decisions
    assert sum("written channels-last for the convolution" in d for d in p.decisions) == 2, p.decisions
    monkeypatch.setenv("FUSEFORGE_CL_TILE_IN", "0")
    residual = plan(capture(ConvChain(), chain_inputs(0))).kernels[1]
    assert residual.order == (0, 1, 2, 3), residual.order
    monkeypatch.setenv("FUSEFORGE_CL_PRODUCERS", "0")
    first = plan(capture(ConvChain(), chain_inputs(0))).kernels[0]
    assert first.outputs[0].type.strides != channels_last_strides(first.shape)


class CatConv(nn.Module):
    """A cat along the channels that only a channels-last convolution reads (U-Net's skip
    connection): each piece goes straight into its slice of a channels-last
    result. Pieces of 16, 16, 8 and 8 channels over 20 x 21 pixels (the tiles' tails); the last a
    strided view of the input (ATen's copy takes it); the second computed from a channels-last
    convolution for the cat alone, written in place into its slice by its kernel."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(16, 16, 3, padding=1)
        self.b = nn.Conv2d(48, 8, 3, bias=False)

    def forward(self, x):
        return torch.relu(self.b(torch.cat([x, torch.relu(self.a(x)), x[:, :8] * 2, x[:, 8:]], 1)))


def cat_inputs(seed, device="cpu"):
    return [torch.randn(2, 16, 20, 21, generator=torch.Generator().manual_seed(seed)).to(device)]


def test_cat_written_channels_last_for_its_convolution(monkeypatch):
    p = plan(capture(CatConv(), cat_inputs(0)))
    [cat] = [e for e in p.externs if e.node.target == "aten.cat.default"]
    assert cat.cat_channels_last, p.decisions
    src = generate(p, name="cat_conv").text
    assert src.count("ff::cat_channels_last({") == 1 and "int ff_into_channels_last(" in src
    assert cat.cat_placed == ("relu",)
    assert any(d.startswith("relu: written in place into cat's channels-last buffer") for d in p.decisions)
    assert "const at::Tensor relu = cat_buffer.narrow(1, 16, 16);" in src
    assert "ff_store4(a.out0 + ((i / 16u) * 48u + (i % 16u)), out0);" in src   # 4 channels a store
    monkeypatch.setenv("FUSEFORGE_CAT_IN_PLACE", "0")
    p = plan(capture(CatConv(), cat_inputs(0)))
    assert [e.cat_placed for e in p.externs if e.cat_channels_last] == [()]
    assert "cat_buffer" not in generate(p, name="cat_conv").text
    monkeypatch.setenv("FUSEFORGE_CAT_CL", "0")
    assert "ff_into_channels_last" not in generate(plan(capture(CatConv(), cat_inputs(0))), name="off").text


class PooledSkip(nn.Module):
    """U-Net's level: a skip connection both pooled on the way down and concatenated with the
    upsampled result. Both pieces of the cat are written into its channels-last buffer by the
    kernels that compute them (the pool reads its slice through its channels-last tile)."""
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.up, self.c = nn.ConvTranspose2d(16, 16, 2, stride=2), nn.Conv2d(32, 8, 3)

    def forward(self, x):
        s = torch.relu(self.a(x))
        d = torch.relu(self.b(F.max_pool2d(s, 2)))
        return torch.relu(self.c(torch.cat([s, self.up(d)], 1)))


def pooled_skip_inputs(seed, device="cpu"):
    return [torch.randn(2, 16, 20, 22, generator=torch.Generator().manual_seed(seed)).to(device)]


def test_pooled_skip_written_in_place(monkeypatch):
    from fuseforge.codegen.window import channels_last_tile
    from fuseforge.plan_windows import WindowKernel
    p = plan(capture(PooledSkip(), pooled_skip_inputs(0)))
    [cat] = [e for e in p.externs if e.cat_channels_last]
    assert len(cat.cat_placed) == 2, p.decisions
    [pool] = [k for k in p.kernels if type(k) is WindowKernel]
    assert channels_last_tile(pool) and pool.inputs[0].name == cat.cat_placed[0]
    assert pool.inputs[0].type.strides == (32 * 20 * 22, 1, 22 * 32, 32)   # its slice of the buffer
    monkeypatch.setenv("FUSEFORGE_CAT_IN_PLACE", "0")
    p = plan(capture(PooledSkip(), pooled_skip_inputs(0)))
    assert [e.cat_placed for e in p.externs if e.cat_channels_last] == [()]


class OneByOne(nn.Module):
    """1x1 convolutions among channels-last neighbours (level3/005-008): a strided one reading the
    input that a 3x3 convolution converts anyway (one conversion for both), one reading a relu
    written channels-last for it, one widening its input for a 3x3 convolution (its relu written
    channels-last), two reading the same input (one conversion for both); they stay NCHW where
    their input would be converted for them alone (`alone`) or their output has few channels
    (`head`, 4). 15 x 17 pixels (8 x 9 strided), 9 x 10."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.down = nn.Conv2d(16, 24, 1, stride=2)
        self.expand = nn.Conv2d(16, 24, 1, bias=False)
        self.head = nn.Conv2d(24, 4, 1)
        self.alone = nn.Conv2d(16, 16, 1)
        self.wide, self.c3 = nn.Conv2d(16, 24, 1), nn.Conv2d(24, 16, 3)   # (under 32 channels: cuDNN)
        self.p1, self.p2 = nn.Conv2d(16, 16, 1), nn.Conv2d(16, 24, 1, bias=False)

    def forward(self, x, x2, x3, x4):
        z = torch.relu(self.expand(torch.relu(self.a(x)))) + self.down(x)
        return self.head(z), torch.sigmoid(self.alone(x2)), self.c3(torch.relu(self.wide(x3))), \
            torch.cat([self.p1(x4), self.p2(x4)], 1)


def one_by_one_inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 16, *hw, generator=g).to(device) for hw in ((15, 17), (9, 10), (9, 10), (9, 10))]


def test_one_by_one_convolutions_follow_their_neighbours(monkeypatch):
    p = plan(capture(OneByOne(), one_by_one_inputs(0)))
    layouts = {e.node.name: e.channels_last for e in p.externs if "conv" in e.node.target}
    assert sum(layouts.values()) == 7 and len(layouts) == 9, p.decisions      # all but head, alone
    assert sum("a 1x1 convolution whose input would need a conversion" in d for d in p.decisions) == 1, p.decisions
    assert sum("a 1x1 convolution with 4 output channels" in d for d in p.decisions) == 1, p.decisions
    src = generate(p, name="one_by_one").text
    for x in ("x", "x3", "x4"):   # x: a's and down's input, converted once; x4: p1's and p2's
        assert src.count(f"= ff::to_channels_last({x}, ") == 1, x
    monkeypatch.setenv("FUSEFORGE_CL_1X1", "0")
    p = plan(capture(OneByOne(), one_by_one_inputs(0)))
    assert sum(e.channels_last for e in p.externs) == 2, p.decisions         # a, c3


class SamePadding(nn.Module):
    """padding="same" (aten.conv2d.padding, spelled out as conv2d.default's 2, ops/convs.py):
    channels-last like the others, its output (the model's result) converted back (16 input
    channels: not a generated convolution). 5 x 5 kernel over 13 x 14 pixels."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(16, 8, 5, padding="same", bias=False)

    def forward(self, x):
        return self.c(x)


def test_same_padding_runs_channels_last():
    p = plan(capture(SamePadding(), [torch.randn(2, 16, 13, 14)]))
    assert [(e.node.target, e.channels_last, e.to_nchw) for e in p.externs] == \
        [("aten.conv2d.default", True, True)], p.decisions
    assert p.externs[0].node.arg("padding") == [2, 2], p.decisions


def dense_inputs(seed, device="cpu"):
    return [torch.randn(2, 6, 9, 11, generator=torch.Generator().manual_seed(seed)).to(device)]


def test_cats_share_the_last_ones_buffer(monkeypatch):
    from fuseforge.plan import Extern
    p = plan(capture(DenseCats(), dense_inputs(0)))
    cats = [e for e in p.externs if e.node.target == "aten.cat.default"]
    assert [e.cat_buffer for e in cats] == [cats[-1].node.name] * 3, p.decisions
    last = cats[-1].node.outputs[0].type.strides
    for e in cats[:-1]:   # views: the last cat's strides, which the kernels reading them take
        assert e.node.outputs[0].type.strides == last
        readers = [s for s in p.steps if not isinstance(s, Extern) and e.node.outputs[0] in s.inputs]
        assert readers and all(s.strides[e.node.outputs[0]] == last for s in readers), p.decisions
    src = generate(p, name="dense").text
    assert len(re.findall(r"ff::copy_into\(\w+_buffer\.narrow\(1, \d+, \d+\), ", src)) == 3   # x, y1, y2 once each
    assert len(re.findall(r"const at::Tensor \w+ = \w+_buffer\.narrow\(1, 0, ", src)) == 2   # the views
    assert "ff::op(\"aten::cat\"" not in src
    monkeypatch.setenv("FUSEFORGE_CAT_VIEWS", "0")
    assert not any(e.cat_buffer for e in plan(capture(DenseCats(), dense_inputs(0))).externs)


class CatSliced(nn.Module):
    """cat(x, y) begins cat(x, y, z), but a slice of it is returned: a view of the buffer would
    change that result's strides, so the cats stay apart."""
    def forward(self, x, y, z):
        first = torch.cat([x, y], 1)
        return torch.cat([x, y, z], 1) * 2, first[:, 1:3], torch.relu(first)


def test_cats_read_by_views_keep_their_own_memory():
    xs = [torch.randn(2, 3, 5, 6) for _ in range(3)]
    p = plan(capture(CatSliced(), xs))
    cats = [e for e in p.externs if e.node.target == "aten.cat.default"]
    assert len(cats) == 2 and not any(e.cat_buffer for e in cats), p.decisions


class LayoutChoices(nn.Module):
    """ConvReadBack, ConvChain, CatConv, OneByOne, SamePadding, DenseCats, ConvWindows and PooledSkip in one module, built once (a build costs CI
    about 50 s), (channels-last producers and cats change neither ConvReadBack's code nor each
    other's model)."""
    def __init__(self):
        super().__init__()
        self.read_back, self.chain, self.cat, self.one = ConvReadBack(), ConvChain(), CatConv(), OneByOne()
        self.same, self.dense, self.windows, self.skip = SamePadding(), DenseCats(), ConvWindows(), PooledSkip()

    def forward(self, x, v, xc, r, xk, xo, xo2, xo3, xo4, xs, xd, xp):
        return (*self.read_back(x, v), self.chain(xc, r), self.cat(xk), *self.one(xo, xo2, xo3, xo4), self.same(xs),
                self.dense(xd), *self.windows(x), self.skip(xp))


def choices_inputs(seed, device="cpu"):
    return read_back_inputs(seed, device) + chain_inputs(seed + 10, device) + cat_inputs(seed + 20, device) + \
        one_by_one_inputs(seed + 30, device) + [torch.randn(2, 16, 13, 14, generator=torch.Generator().manual_seed(seed)).to(device)] + \
        dense_inputs(seed + 40, device) + pooled_skip_inputs(seed + 50, device)


@pytest.fixture(scope="module")
def layout_choices():
    torch.manual_seed(0)
    model = LayoutChoices()
    p = plan(capture(model, choices_inputs(0)))
    return model, p, fuseforge.compile(model, choices_inputs(0))


def test_layout_choices_match_eager_on_cpu(layout_choices):
    model, p, fast = layout_choices
    # converted back: ConvReadBack's 2 (the pools read theirs through tiles), OneByOne's p2 (the
    # cat reads it; p1's bias add reads p1 in place), SamePadding's
    assert sum(e.to_nchw for e in p.externs) == 4 and sum(e.cat_channels_last for e in p.externs) == 2, p.decisions
    assert sorted(len(e.cat_placed) for e in p.externs if e.cat_channels_last) == [1, 2], p.decisions
    assert sum("written channels-last for the convolution" in d for d in p.decisions) == 5, p.decisions  # (PooledSkip: d)
    with torch.no_grad():
        assert_same_layout_and_close(fast(*choices_inputs(1)), model(*choices_inputs(1)))


@pytest.mark.gpu
def test_layout_choices_match_eager_on_cuda(layout_choices):
    model, _, fast = layout_choices
    _no_looser_than_eager(model.cuda(), fast.cuda(), choices_inputs(2, "cuda"))


@pytest.fixture(scope="module")
def foreach_state():
    """DenseCats: its two batch norms' running statistics copied by one aten::_foreach_copy_ a
    dtype (float32: 4 tensors, int64: 2) instead of six copy_ (FUSEFORGE_FOREACH_STATE=0)."""
    torch.manual_seed(0)
    model = DenseCats()
    text = generate(plan(capture(model, dense_inputs(0))), name="foreach").text
    return model, text, fuseforge.compile(model, dense_inputs(0))


def test_state_updates_copied_together_on_cpu(foreach_state, monkeypatch):
    model, text, fast = foreach_state
    assert text.count("ff::call(op_foreach_copy,") == 2 and "running_mean.copy_(" not in text
    monkeypatch.setenv("FUSEFORGE_FOREACH_STATE", "0")
    one_each = generate(plan(capture(model, dense_inputs(0))), name="foreach").text
    assert "op_foreach_copy" not in one_each and one_each.count("running_mean.copy_(") == 2
    _buffers_follow_eager(model, fast, dense_inputs(1))


@pytest.mark.gpu
def test_state_updates_copied_together_on_cuda(foreach_state):
    model, _, fast = foreach_state
    _buffers_follow_eager(model.cuda(), fast.cuda(), dense_inputs(2, "cuda"))
