"""Guards: what a candidate may not change in the process it shares with the reference.

A snapshot taken before the candidate is imported records, by identity:
- every function, class and descriptor in the namespaces a harness relies on: torch,
  torch.nn.functional, torch.cuda (synchronize, Event, Stream, ...), torch.testing
  (assert_close), torch.nn.init, torch.random, time (perf_counter, ...), builtins, and the
  classes torch.Tensor, TensorBase, nn.Module, nn.Parameter, cuda.Event/Stream;
- the reference: its module's names (Model, get_inputs, ...), the Model class's attributes
  and the classes of all its submodules (nn.Linear.forward, ...);
- global module hooks (nn.modules.module._global_*), the torch-function and dispatch mode
  stacks, the dispatcher tables of the ATen ops the reference calls (a C++ extension can
  re-register aten::addmm), and the numerics/global settings (TF32, cuDNN flags, float32
  matmul precision, default dtype, grad mode, deterministic algorithms).

`Guards.check()` lists what differs; `Guards.restore()` puts the originals back (for names
and settings) so that nothing after a detected patch runs patched code. Dispatcher entries,
modes and hooks cannot all be undone from Python: they are reported, modes are popped and
hooks removed where possible.
"""
from __future__ import annotations

import builtins
import sys
import time
import types

import torch

_NAMESPACES = [
    ("torch", lambda: torch),
    ("torch.nn.functional", lambda: torch.nn.functional),
    ("torch.functional", lambda: sys.modules.get("torch.functional")),
    ("torch.cuda", lambda: torch.cuda),
    ("torch.testing", lambda: torch.testing),
    ("torch.nn.init", lambda: torch.nn.init),
    ("torch.random", lambda: torch.random),
    ("torch.autograd.grad_mode", lambda: torch.autograd.grad_mode),
    ("torch.nn.modules.module", lambda: sys.modules.get("torch.nn.modules.module")),
    ("time", lambda: time),
    ("builtins", lambda: builtins),
    ("torch.Tensor", lambda: torch.Tensor),
    ("torch._C.TensorBase", lambda: torch._C.TensorBase),
    ("torch.nn.Module", lambda: torch.nn.Module),
    ("torch.nn.Parameter", lambda: torch.nn.Parameter),
    ("torch.cuda.Event", lambda: torch.cuda.Event),
    ("torch.cuda.Stream", lambda: torch.cuda.Stream),
    ("torch.cuda.streams", lambda: sys.modules.get("torch.cuda.streams")),
    ("torch.Event", lambda: getattr(torch, "Event", None)),
]
COMPOSITE_OPS = ["aten::linear", "aten::matmul", "aten::conv1d", "aten::conv2d", "aten::conv3d",
                 "aten::convolution", "aten::_convolution", "aten::batch_norm", "aten::layer_norm",
                 "aten::group_norm", "aten::instance_norm", "aten::softmax.int", "aten::log_softmax.int",
                 "aten::dropout", "aten::allclose", "aten::isclose", "aten::equal"]


_GETTERS = {
    "torch.backends.cuda.matmul.allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
    "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction":
        lambda: torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
    "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction":
        lambda: torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
    "torch.backends.cudnn.allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
    "torch.backends.cudnn.enabled": lambda: torch.backends.cudnn.enabled,
    "torch.backends.cudnn.benchmark": lambda: torch.backends.cudnn.benchmark,
    "torch.backends.cudnn.deterministic": lambda: torch.backends.cudnn.deterministic,
    "torch.get_float32_matmul_precision()": lambda: torch.get_float32_matmul_precision(),
    "torch.get_default_dtype()": lambda: torch.get_default_dtype(),
    "torch.is_grad_enabled()": lambda: torch.is_grad_enabled(),
    "torch.are_deterministic_algorithms_enabled()": lambda: torch.are_deterministic_algorithms_enabled(),
    "torch.get_num_threads()": lambda: torch.get_num_threads(),
}


def _settings() -> dict:
    out = {}
    for key, get in _GETTERS.items():
        try:
            out[key] = get()
        except Exception as e:  # noqa: BLE001 - e.g. mixed legacy/new TF32 APIs make the getter raise
            out[key] = f"<unreadable: {str(e)[:80]}>"
    return out


def _set_setting(name: str, value) -> None:
    b = torch.backends
    setters = {
        "torch.backends.cuda.matmul.allow_tf32": lambda v: setattr(b.cuda.matmul, "allow_tf32", v),
        "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction":
            lambda v: setattr(b.cuda.matmul, "allow_fp16_reduced_precision_reduction", v),
        "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction":
            lambda v: setattr(b.cuda.matmul, "allow_bf16_reduced_precision_reduction", v),
        "torch.backends.cudnn.allow_tf32": lambda v: setattr(b.cudnn, "allow_tf32", v),
        "torch.backends.cudnn.enabled": lambda v: setattr(b.cudnn, "enabled", v),
        "torch.backends.cudnn.benchmark": lambda v: setattr(b.cudnn, "benchmark", v),
        "torch.backends.cudnn.deterministic": lambda v: setattr(b.cudnn, "deterministic", v),
        "torch.get_float32_matmul_precision()": torch.set_float32_matmul_precision,
        "torch.get_default_dtype()": torch.set_default_dtype,
        "torch.is_grad_enabled()": torch.set_grad_enabled,
        "torch.are_deterministic_algorithms_enabled()": torch.use_deterministic_algorithms,
        "torch.get_num_threads()": torch.set_num_threads,
    }
    setters[name](value)


def _is_code(value) -> bool:
    return callable(value) or isinstance(value, (staticmethod, classmethod, property, types.ModuleType)) \
        or hasattr(value, "__get__") and not isinstance(value, (int, float, str, bytes, bool, type(None)))


def _entries(obj) -> dict:
    try:
        items = dict(vars(obj))
    except TypeError:
        return {}
    return {k: v for k, v in items.items() if _is_code(v)}


def _op_key(func) -> str:
    schema = func._schema
    overload = getattr(func, "_overloadname", "default")
    return schema.name if overload in ("default", "") else f"{schema.name}.{overload}"


class OpRecorder(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the dispatcher names of the ops a model calls."""

    def __init__(self):
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        try:
            self.ops.add(_op_key(func))
        except AttributeError:
            self.ops.add(str(func))
        return func(*args, **(kwargs or {}))


class Guards:
    def __init__(self, reference_module=None, reference_model: torch.nn.Module | None = None,
                 ops: set[str] | None = None):
        self.spaces: list[tuple[str, object, dict]] = []
        for name, get in _NAMESPACES:
            obj = get()
            if obj is not None:
                self.spaces.append((name, obj, _entries(obj)))
        if reference_module is not None:
            self.spaces.append(("reference module", reference_module, _entries(reference_module)))
        seen = set()
        if reference_model is not None:
            for mod in reference_model.modules():
                for cls in type(mod).__mro__:
                    if cls in seen or cls is object or cls is torch.nn.Module:
                        continue
                    seen.add(cls)
                    self.spaces.append((f"{cls.__module__}.{cls.__qualname__}", cls, _entries(cls)))
        self.settings = _settings()
        self.modes = (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack())
        hooks_mod = sys.modules["torch.nn.modules.module"]
        self.hook_dicts = {k: (v, list(v.keys())) for k, v in vars(hooks_mod).items()
                           if k.startswith("_global_") and isinstance(v, dict)}
        names = set(ops or ()) | set(COMPOSITE_OPS)
        all_ops = set(torch._C._dispatch_get_all_op_names())
        self.tables = {n: torch._C._dispatch_dump_table(n) for n in sorted(names & all_ops)}

    def _spaces_now(self):
        """(name, object, snapshot entries, its names now) for each namespace that still has them."""
        for name, obj, entries in self.spaces:
            try:
                yield name, obj, entries, vars(obj)
            except TypeError:
                continue

    def check(self) -> list[str]:
        """What changed since the snapshot, one line each (empty: nothing)."""
        found = []
        for name, obj, entries, now in self._spaces_now():
            for key, value in entries.items():
                cur = now.get(key, _MISSING)
                if cur is _MISSING:
                    found.append(f"{name}.{key} was deleted")
                elif cur is not value:
                    found.append(f"{name}.{key} was replaced")
            if isinstance(obj, type):   # a new method on a class shadows the inherited one
                for key in now.keys() - entries.keys():
                    if _is_code(now[key]) and any(key in vars(base) for base in obj.__mro__[1:]):
                        found.append(f"{name}.{key} was added, overriding {obj.__mro__[1].__name__}.{key}")
        for key, value in self.settings.items():
            cur = _settings()[key]
            if cur != value:
                found.append(f"{key} changed from {value!r} to {cur!r}")
        modes = (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack())
        if modes != self.modes:
            found.append(f"torch function/dispatch mode stacks changed from {self.modes} to {modes}: "
                         "a mode intercepts every op (the reference's too)")
        for key, (d, keys) in self.hook_dicts.items():
            if list(d.keys()) != keys:
                found.append(f"global module hooks changed: torch.nn.modules.module.{key} "
                             f"has {len(d)} entries (had {len(keys)})")
        for op, table in self.tables.items():
            if torch._C._dispatch_dump_table(op) != table:
                found.append(f"dispatcher kernels of {op} were re-registered")
        return found

    def restore(self) -> None:
        """Put back replaced names, settings, hooks and modes (dispatcher tables stay)."""
        for name, obj, entries, now in self._spaces_now():
            for key, value in entries.items():
                if now.get(key, _MISSING) is not value:
                    try:
                        setattr(obj, key, value)
                    except (AttributeError, TypeError):
                        continue
            if isinstance(obj, type):
                for key in list(now.keys() - entries.keys()):
                    if _is_code(now[key]) and any(key in vars(base) for base in obj.__mro__[1:]):
                        try:
                            delattr(obj, key)
                        except (AttributeError, TypeError):
                            continue
        for key, value in self.settings.items():
            if _settings()[key] != value:
                try:
                    _set_setting(key, value)
                except Exception:  # noqa: BLE001 - reported by the next check()
                    continue
        for key, (d, keys) in self.hook_dicts.items():
            for k in [k for k in d if k not in keys]:
                del d[k]
        from torch.overrides import _pop_mode as pop_function_mode
        from torch.utils._python_dispatch import _pop_mode as pop_dispatch_mode
        while torch._C._len_torch_function_stack() > self.modes[0]:
            pop_function_mode()
        while torch._C._len_torch_dispatch_stack() > self.modes[1]:
            pop_dispatch_mode()


_MISSING = object()
