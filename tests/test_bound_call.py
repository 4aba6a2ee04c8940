"""The bound call (wrapper.bound_call, on unless FUSEFORGE_BOUND_CALL=0): the module calls the extension's `call` with its
inputs as arguments and its state bound once in an ff::State. The bound state must follow the
module: a buffer replaced when the module is moved (_apply), a parameter changed in place, a deep
copy's own tensors, a module saved and loaded; a lone output comes back as a tensor, several as the forward's structure."""
import copy
import io
import sys

import pytest
import torch

import fuseforge
from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.errors import ConfigError
from fuseforge.plan import plan


class Shifted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(8))
        self.register_buffer("b", torch.randn(8))

    def forward(self, x):
        return torch.relu(x * self.w + self.b)


class Two(torch.nn.Module):
    def forward(self, x, y):
        return torch.sigmoid(x) * y, x + y


def _x(seed, n=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 8, generator=g) for _ in range(n)]


@pytest.fixture(scope="module")
def bound():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FUSEFORGE_BOUND_CALL", raising=False)   # the default
        model, two = Shifted(), Two()
        return model, fuseforge.compile(model, _x(0, 1)), two, fuseforge.compile(two, _x(0))


def test_matches_eager_and_follows_the_module(bound):
    model, fast, _, _ = bound
    [x] = _x(1, 1)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-6, atol=1e-6)
        fast.w.mul_(2)              # a parameter changed in place (the reference's own: adopted)
        torch.testing.assert_close(fast(x), model(x), rtol=1e-6, atol=1e-6)
        fast._apply(lambda t: t.clone())   # moved: the buffer is a new tensor, the reference keeps the old
        assert fast.b is not model.b
        fast.b.add_(1)
        torch.testing.assert_close(fast(x), torch.relu(x * model.w + model.b + 1), rtol=1e-6, atol=1e-6)


def test_deep_copy_binds_its_own_tensors(bound):
    model, fast, _, _ = bound
    [x] = _x(2, 1)
    twin = copy.deepcopy(fast)
    with torch.no_grad():
        want = fast(x)
        twin.w.mul_(3)
        torch.testing.assert_close(fast(x), want, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(twin(x), torch.relu(x * fast.w * 3 + fast.b), rtol=1e-6, atol=1e-6)


def test_saved_and_loaded(bound):
    _, fast, _, _ = bound
    [x] = _x(4, 1)
    buf = io.BytesIO()
    torch.save(fast, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    with torch.no_grad():
        back.w.mul_(5)   # the loaded module's own tensors, bound to its own state
        torch.testing.assert_close(back(x), torch.relu(x * fast.w * 5 + fast.b), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(fast(x), torch.relu(x * fast.w + fast.b), rtol=1e-6, atol=1e-6)


def test_several_outputs(bound):
    _, _, two, fast_two = bound
    x, y = _x(3)
    with torch.no_grad():
        got, want = fast_two(x, y), two(x, y)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)


def test_on_by_default_and_checked(monkeypatch):
    p = plan(capture(Shifted(), _x(0, 1)))
    monkeypatch.delenv("FUSEFORGE_BOUND_CALL", raising=False)
    text = generate(p, name="shifted").text
    assert "return _ext.call(x, self._ff_bound)" in text and "at::Tensor call(const at::Tensor& in0" in text
    monkeypatch.setenv("FUSEFORGE_BOUND_CALL", "0")
    text = generate(p, name="shifted").text
    assert "_ext.call" not in text and "_ext.forward([x], self._ff_state)" in text
    monkeypatch.setenv("FUSEFORGE_BOUND_CALL", "yes")
    with pytest.raises(ConfigError, match="FUSEFORGE_BOUND_CALL='yes'"):
        generate(p, name="shifted")


@pytest.mark.gpu
def test_moved_to_the_gpu_and_replayed(bound):
    """Built on the CPU, moved: the state bound again to the GPU's tensors, the forward replayed as
    a CUDA graph that reads them (a weight changed in place shows in the next calls)."""
    model, _, _, _ = bound
    fast = fuseforge.compile(copy.deepcopy(model), _x(0, 1)).cuda()
    ext = sys.modules[type(fast).__module__]._ext
    x = _x(5, 1)[0].cuda()
    with torch.no_grad():
        for scale in (1.0, 1.5):
            fast.w.mul_(scale)
            for _ in range(4):   # op by op, captured, replayed twice
                torch.testing.assert_close(fast(x), torch.relu(x * fast.w + fast.b), rtol=1e-6, atol=1e-6)
        twin = copy.deepcopy(fast)
        twin.b.add_(2)
        torch.testing.assert_close(twin(x), torch.relu(x * fast.w + fast.b + 2), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(fast(x), torch.relu(x * fast.w + fast.b), rtol=1e-6, atol=1e-6)
    assert ext.replays()[1] >= 4
