"""FUSEFORGE_BOUND_CALL=1 (wrapper.bound_call): the module calls the extension's `call` with its
inputs as arguments and its state bound once in an ff::State. The bound state must follow the
module: a buffer replaced when the module is moved (_apply), a parameter changed in place, a deep
copy's own tensors; a lone output comes back as a tensor, several as the forward's structure."""
import copy

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
        mp.setenv("FUSEFORGE_BOUND_CALL", "1")
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


def test_several_outputs(bound):
    _, _, two, fast_two = bound
    x, y = _x(3)
    with torch.no_grad():
        got, want = fast_two(x, y), two(x, y)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)


def test_off_by_default_and_checked(monkeypatch):
    p = plan(capture(Shifted(), _x(0, 1)))
    monkeypatch.delenv("FUSEFORGE_BOUND_CALL", raising=False)
    assert "_ext.call" not in generate(p, name="shifted").text
    monkeypatch.setenv("FUSEFORGE_BOUND_CALL", "1")
    text = generate(p, name="shifted").text
    assert "return _ext.call(x, self._ff_bound)" in text and "at::Tensor call(const at::Tensor& in0" in text
    monkeypatch.setenv("FUSEFORGE_BOUND_CALL", "yes")
    with pytest.raises(ConfigError, match="FUSEFORGE_BOUND_CALL='yes'"):
        generate(p, name="shifted")
