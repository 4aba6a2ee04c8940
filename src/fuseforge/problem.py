"""Load a problem: a KernelBench-format file (Model, get_inputs, get_init_inputs) or a live module.

Construction is seeded so that the reference and a ModelNew built after the same seed hold
the same parameters.
"""
from __future__ import annotations

import importlib.util
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import ProblemError

REQUIRED = ("Model", "get_inputs", "get_init_inputs")


@dataclass
class Problem:
    name: str
    model_cls: Callable[..., torch.nn.Module]
    get_inputs: Callable[[], list]
    get_init_inputs: Callable[[], list]
    path: Path | None = None
    source: str | None = None
    module: Any = None
    overrides: dict = field(default_factory=dict)

    def init_args(self) -> list:
        return list(self.get_init_inputs())

    def build(self, seed: int = 0) -> torch.nn.Module:
        """The reference model, constructed after torch.manual_seed(seed)."""
        args = self.init_args()
        torch.manual_seed(seed)
        try:
            return self.model_cls(*args)
        except Exception as e:  # the user's constructor: report, don't trace
            raise ProblemError(f"{self.name}: Model(*get_init_inputs()) failed: {type(e).__name__}: {e}") from e

    def inputs(self, seed: int = 0, device: str | torch.device = "cpu") -> list:
        """Fresh inputs from the problem's own get_inputs(), drawn after torch.manual_seed(seed)."""
        torch.manual_seed(seed)
        try:
            xs = list(self.get_inputs())
        except Exception as e:
            raise ProblemError(f"{self.name}: get_inputs() failed: {type(e).__name__}: {e}") from e
        return [x.to(device) if isinstance(x, torch.Tensor) else x for x in xs]


def load_problem(path: str | Path, overrides: dict | None = None, *, small: bool = False) -> Problem:
    """Import a problem file. `overrides` replaces module-level names (e.g. batch_size) to shrink it.

    `small=True` first applies the file's own `SMALL` dict (sizes that run in well under a second
    on a CPU); explicit `overrides` are applied after it and win. `Problem.overrides` holds the
    names actually replaced.
    """
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"{path}: no such file")
    source = path.read_text()
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"_fuseforge_problem_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise ProblemError(f"{path} does not import: {type(e).__name__}: {e}") from e
    missing = [n for n in REQUIRED if not hasattr(module, n)]
    if missing:
        raise ProblemError(f"{path} is not a problem file: it does not define {', '.join(missing)}")
    applied = {}
    if small:
        shrink = getattr(module, "SMALL", None)
        if not isinstance(shrink, dict):
            sys.modules.pop(mod_name, None)
            raise ProblemError(f"{path}: cannot shrink it: the file defines no SMALL dict")
        applied.update(shrink)
    applied.update(overrides or {})
    for key, value in applied.items():
        if not hasattr(module, key):
            raise ProblemError(f"{path}: cannot override {key!r}: the file has no such name")
        setattr(module, key, value)
    return Problem(
        name=path.stem,
        model_cls=module.Model,
        get_inputs=module.get_inputs,
        get_init_inputs=module.get_init_inputs,
        path=path,
        source=source,
        module=module,
        overrides=applied,
    )


def check_runs(problem: Problem, model: torch.nn.Module, inputs: list, device: str = "cpu") -> None:
    """Run the reference once on its own inputs; a model that fails here is the problem's fault.

    Runs on `device` (a GPU is much faster for benchmark sizes) and leaves the model on the CPU.
    """
    moved = [x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs]
    try:
        with torch.no_grad():
            model.to(device)(*moved)
    except Exception as e:
        raise ProblemError(f"{problem.name}: the model fails on its own inputs: {type(e).__name__}: {e}") from e
    finally:
        model.to("cpu")
