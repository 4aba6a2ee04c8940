"""The forward replayed as a CUDA graph (replay.py, ff::replayed in the host runtime): which plans
replay, and on the GPU that every call still computes from the memory it is given (inputs changed
in place, new input tensors, a weight updated in place) while outputs a caller keeps are never
overwritten by a later replay. Each call is compared with eager on the same tensors."""
import sys

import pytest
import torch
import torch.nn.functional as F

import fuseforge
from fuseforge import replay
from fuseforge.capture import capture
from fuseforge.plan import plan


class Block(torch.nn.Module):
    """A cuDNN convolution (an extern), generated pointwise and row kernels, two outputs."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 8, 3)
        self.scale = torch.nn.Parameter(torch.randn(8, 1, 1))

    def forward(self, x):
        y = torch.relu(self.conv(x)) * self.scale
        return y, y.mean(dim=(2, 3))


class TwoConvs(torch.nn.Module):
    """The first convolution cuDNN's on channels-last copies of its weight made once (a cache in
    the extension), the second generated."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = torch.nn.Conv2d(16, 32, 3), torch.nn.Conv2d(32, 32, 3)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


class TrainingNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(x) * 2


class InPlace(torch.nn.Module):
    def forward(self, x):
        return x.mul_(2).sum(dim=1)


class Recurrent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(8, 16, num_layers=2, dropout=0.5, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0][:, -1]


class Histogram(torch.nn.Module):
    """histc with no range given reads the input's min and max back to the host: a capture fails."""

    def forward(self, x):
        return torch.histc(x * 2, bins=8)


class Dropout(torch.nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5, training=True) + 1


TF32 = 5e-3   # a generated convolution against cuDNN's, both TF32


def _x(seed, device="cpu"):
    return torch.randn(2, 4, 10, 12, generator=torch.Generator().manual_seed(seed)).to(device)


def _decision(model, inputs):
    return [d for d in plan(capture(model, inputs)).decisions if d.startswith("forward: ")]


def test_which_forwards_replay(monkeypatch):
    assert _decision(Block(), [_x(0)]) == ["forward: replayed as a CUDA graph on a GPU"]
    assert _decision(TrainingNorm().train(), [_x(0)]) == ["forward: replayed as a CUDA graph on a GPU"]
    [why] = _decision(InPlace(), [_x(0)])
    assert "updates an input in place" in why
    [why] = _decision(Dropout(), [_x(0)])
    assert "not known to be safe in a CUDA graph" in why
    seq = [torch.randn(3, 5, 8)]
    assert _decision(Recurrent().eval(), seq) == ["forward: replayed as a CUDA graph on a GPU"]
    [why] = _decision(Recurrent().train(), seq)   # dropout between its layers
    assert "aten.lstm.input is not known to be safe" in why
    monkeypatch.setenv("FUSEFORGE_REPLAY", "0")
    assert _decision(Block(), [_x(0)]) == ["forward: op by op, FUSEFORGE_REPLAY=0"]


def _compiled(model, example):
    """The generated module for `model`, its extension, and the extension's replay counters since
    now ([captures, replays]; modules of one extension, the same model and shapes in this
    process, share them)."""
    fast = fuseforge.compile(model, [example])
    ext = sys.modules[type(fast).__module__]._ext
    ext.set_replay(False)   # a fresh start: an earlier test's graphs dropped (its key may recur:
    ext.set_replay(True)    # freed tensors' addresses are reused)
    base = ext.replays()
    return fast, ext, lambda: [a - b for a, b in zip(ext.replays(), base)]


def _start(cls, seed):
    """A model of `cls` on the GPU (seeded), its generated module, extension and replay counters
    (_compiled), and an input."""
    torch.manual_seed(seed)
    model = cls().cuda()
    return (model, *_compiled(model, _x(0, "cuda")), _x(1, "cuda"))


def _check(fast, model, x, tol=1e-4):
    with torch.no_grad():
        got, want = fast(x), model(x)
    for a, b in zip(*((t,) if isinstance(t, torch.Tensor) else t for t in (got, want))):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    return got


@pytest.mark.gpu
def test_replays_compute_every_call():
    model, fast, _, counts, x = _start(Block, 0)
    for seed in range(2, 7):   # op by op, captured and replayed, then replayed
        _check(fast, model, x)
        x.copy_(_x(seed, "cuda"))   # the same tensor, new contents
    captures, replays = counts()
    assert captures == 1 and replays == 4
    _check(fast, model, _x(7, "cuda"))   # a new tensor: op by op
    with torch.no_grad():
        model.conv.weight.mul_(-0.5)      # a weight updated in place
    for _ in range(3):
        _check(fast, model, x)
    assert counts() == [2, 6]


@pytest.mark.gpu
def test_kept_outputs_are_not_overwritten():
    """Outputs a caller keeps: the next call replays a second graph with memory of its own; with
    both graphs' outputs kept, calls run op by op. Nothing kept is ever overwritten."""
    model, fast, _, counts, x = _start(Block, 1)
    for _ in range(3):
        _check(fast, model, x)
    assert counts() == [1, 2]
    kept = _check(fast, model, x)        # a replay, its outputs kept
    first = [t.clone() for t in kept]
    view = kept[1][:1]                    # a view alone keeps the storage too
    x.copy_(_x(2, "cuda"))
    kept = kept[0]
    second = _check(fast, model, x)       # the first graph's outputs are held: a second graph
    assert counts() == [2, 4]
    x.copy_(_x(3, "cuda"))
    third = _check(fast, model, x)        # both graphs' outputs held: op by op
    assert counts() == [2, 4]
    assert len({t.data_ptr() for t in (kept, second[0], third[0])}) == 3
    torch.testing.assert_close(kept, first[0], rtol=0, atol=0)
    torch.testing.assert_close(view, first[1][:1], rtol=0, atol=0)
    del kept, view
    _check(fast, model, x)               # the first graph's outputs are free again: replayed
    assert counts() == [2, 5]


@pytest.mark.gpu
def test_graphs_take_turns_while_the_caller_holds_the_last_result():
    """`y = model(x)` in a loop holds the last y during each call: two graphs take turns, each
    result eager's and untouched by the next call."""
    model, fast, _, counts, x = _start(Block, 4)
    y = _check(fast, model, x)
    for seed in range(2, 7):
        x.copy_(_x(seed, "cuda"))
        was = [t.clone() for t in y]
        last, y = y, _check(fast, model, x)   # the last y held during the call
        _unchanged(last, was)
        del last
    assert counts() == [2, 5]


def _unchanged(got, want):
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class Viewed(torch.nn.Module):
    """Outputs that are views: a permutation of a kernel's result (its base holds the storage too)
    and the result itself."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 8, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x)) + 1
        return y.permute(0, 2, 3, 1), y


@pytest.mark.gpu
def test_view_outputs_replay():
    model, fast, _, counts, x = _start(Viewed, 6)
    for seed in range(2, 7):
        _check(fast, model, x, TF32)
        x.copy_(_x(seed, "cuda"))
    assert counts() == [1, 4]
    kept = _check(fast, model, x, TF32)[0]   # a view handed out, held: the next call a second graph
    was = kept.clone()
    x.copy_(_x(7, "cuda"))
    _check(fast, model, x, TF32)
    _unchanged([kept], [was])
    assert counts() == [2, 6]


@pytest.mark.gpu
def test_set_replay_switches_to_op_by_op_and_back():
    model, fast, ext, counts, x = _start(Block, 5)
    for _ in range(3):
        _check(fast, model, x)
    ext.set_replay(False)
    for seed in range(2, 5):
        x.copy_(_x(seed, "cuda"))
        _check(fast, model, x)
    assert counts() == [1, 2]
    ext.set_replay(True)
    for _ in range(3):
        _check(fast, model, x)
    assert counts() == [2, 4]


@pytest.mark.gpu
def test_modules_sharing_the_extension():
    """Modules of one generated extension share its replay and its weight-conversion caches: the
    graph captured for one must keep the converted weights it reads after the other's calls
    replaced them in the cache (the freed copy filled with NaN by later allocations otherwise)."""
    torch.manual_seed(2)
    ma, mb = TwoConvs().cuda(), TwoConvs().cuda()
    x = torch.randn(2, 16, 12, 12, device="cuda")
    (fa, ext, _), (fb, ext_b, counts) = (_compiled(m, x) for m in (ma, mb))
    assert ext is ext_b
    for f, m in ((fa, ma), (fa, ma), (fb, mb), (fb, mb), (fa, ma)):
        _check(f, m, x, TF32)
    junk = [torch.full((32 * 16 * 9,), float("nan"), device="cuda") for _ in range(64)]
    _check(fb, mb, x, TF32)
    assert counts() == [2, 3] and len(junk) == 64


@pytest.mark.gpu
def test_running_statistics_updated_by_replays():
    """Batch norm in training mode: each replay updates the running statistics as eager's call
    does, and moves their version counters."""
    torch.manual_seed(3)
    ref = TrainingNorm().cuda().train()
    mine = TrainingNorm().cuda().train()
    mine.load_state_dict(ref.state_dict())
    fast, _, counts = _compiled(mine, _x(0, "cuda"))
    x = _x(1, "cuda")
    for seed in range(2, 7):
        version = mine.bn.running_mean._version
        _check(fast, ref, x)
        assert mine.bn.running_mean._version > version
        x.copy_(_x(seed, "cuda"))
    assert counts() == [1, 4]
    for name, b in ref.bn.named_buffers():
        torch.testing.assert_close(getattr(mine.bn, name), b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.gpu
def test_a_capture_that_fails_leaves_the_forward_op_by_op(monkeypatch):
    """An extern wrongly listed as capture-safe: the capture fails, the module warns once and runs
    op by op from then on, every result still eager's."""
    monkeypatch.setattr(replay, "CAPTURE_SAFE", replay.CAPTURE_SAFE | {"histc"})
    model = Histogram()
    fast, _, counts = _compiled(model, _x(0, "cuda"))
    x = _x(1, "cuda")
    _check(fast, model, x)
    with pytest.warns(UserWarning, match="could not be captured as a CUDA graph"):
        _check(fast, model, x)
    for seed in range(2, 4):
        x.copy_(_x(seed, "cuda"))
        _check(fast, model, x)
    assert counts() == [0, 0]


@pytest.mark.gpu
def test_a_graph_that_draws_random_numbers_draws_fresh_ones_every_replay(monkeypatch):
    """Dropout wrongly listed as capture-safe: its graph draws random numbers, so every replay goes
    through torch's (which moves the generator) rather than cudaGraphLaunch alone (ff::launch),
    and each call drops other elements."""
    monkeypatch.setattr(replay, "CAPTURE_SAFE", replay.CAPTURE_SAFE | {"native_dropout"})
    fast, _, counts = _compiled(Dropout(), _x(0, "cuda"))
    x = _x(1, "cuda")
    dropped = []
    with torch.no_grad():
        for _ in range(6):
            y = fast(x)
            d = y == 1   # a dropped element is 0 + 1; a kept one eager's 2x + 1 (scaled by 1 / (1 - p))
            torch.testing.assert_close(y[~d], 2 * x[~d] + 1)
            dropped.append(d)
            del y   # (a caller holding it would get the second graph)
    assert counts() == [1, 5]
    for a, b in zip(dropped, dropped[1:]):
        assert 0.3 < a.float().mean() < 0.7
        assert not torch.equal(a, b), "a replay dropped the same elements as the call before"
