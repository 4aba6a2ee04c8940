"""FUSEFORGE_DIRECT_CALL=1 (emit.DIRECT_CALL): the generated module's __call__ calls forward itself
where no hook is registered, and goes through nn.Module.__call__ where one is, on the module or
globally (registered before or after the module was made): the hooks run as on any module."""
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
        mp.setenv("FUSEFORGE_DIRECT_CALL", "1")
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


def test_off_by_default_and_checked(monkeypatch):
    monkeypatch.delenv("FUSEFORGE_DIRECT_CALL", raising=False)
    p = plan(capture(Scaled(), [_x(0)]))
    assert "_direct_call" not in generate(p, name="scaled").text
    monkeypatch.setenv("FUSEFORGE_DIRECT_CALL", "yes")
    with pytest.raises(ConfigError, match="FUSEFORGE_DIRECT_CALL='yes'"):
        generate(p, name="scaled")
