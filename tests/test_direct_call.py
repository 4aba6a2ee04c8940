"""The generated module's __call__ (emit.DIRECT_CALL, on unless FUSEFORGE_DIRECT_CALL=0) calls forward
itself where no hook is registered, and goes through nn.Module.__call__ where one is, on the module
or globally (registered before or after the module was made), or where Module.compile() was called:
the hooks and the compiled call run as on any module."""
import pytest
import torch

import fuseforge
from fuseforge.capture import capture
from fuseforge.emit import generate
from fuseforge.errors import ConfigError
from fuseforge.plan import plan


class Scaled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(8))

    def forward(self, x):
        return torch.relu(x * self.w + 1)


def _x(seed):
    return torch.randn(4, 8, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def direct():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FUSEFORGE_DIRECT_CALL", raising=False)   # the default
        model = Scaled()
        return model, fuseforge.compile(model, [_x(0)])


def test_calls_forward_directly_and_matches_eager(direct):
    model, fast = direct
    assert type(fast).__call__ is not torch.nn.Module.__call__
    with torch.no_grad():
        torch.testing.assert_close(fast(_x(1)), model(_x(1)), rtol=1e-6, atol=1e-6)


def test_hooks_still_run(direct):
    model, fast = direct
    x = _x(2)
    with torch.no_grad():
        want = model(x)
        handle = fast.register_forward_hook(lambda m, args, out: out + 10)
        try:
            torch.testing.assert_close(fast(x), want + 10, rtol=1e-6, atol=1e-6)
        finally:
            handle.remove()
        handle = fast.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
        try:
            torch.testing.assert_close(fast(x), model(x * 0), rtol=1e-6, atol=1e-6)
        finally:
            handle.remove()
        seen = []
        handle = torch.nn.modules.module.register_module_forward_hook(lambda m, args, out: seen.append(m))
        try:
            fast(x)
        finally:
            handle.remove()
        assert fast in seen
        torch.testing.assert_close(fast(x), want, rtol=1e-6, atol=1e-6)   # (none left)


def test_module_compile_still_runs(direct):
    """Module.compile() sets _compiled_call_impl, which nn.Module.__call__ calls instead of forward."""
    model, fast = direct
    x = _x(3)
    calls = []

    def compiled(*args, **kwargs):
        calls.append(args)
        return fast.forward(*args, **kwargs)

    fast._compiled_call_impl = compiled
    try:
        with torch.no_grad():
            torch.testing.assert_close(fast(x), model(x), rtol=1e-6, atol=1e-6)
    finally:
        fast._compiled_call_impl = None
    assert len(calls) == 1


def test_off_with_zero_and_checked(monkeypatch):
    p = plan(capture(Scaled(), [_x(0)]))
    monkeypatch.delenv("FUSEFORGE_DIRECT_CALL", raising=False)
    assert "__call__ = _direct_call" in generate(p, name="scaled").text
    monkeypatch.setenv("FUSEFORGE_DIRECT_CALL", "0")
    assert "_direct_call" not in generate(p, name="scaled").text
    monkeypatch.setenv("FUSEFORGE_DIRECT_CALL", "yes")
    with pytest.raises(ConfigError, match="FUSEFORGE_DIRECT_CALL='yes'"):
        generate(p, name="scaled")
