"""build: compile and load a generated module (load_inline, cached by content hash).

The extension's name carries a hash of its sources and flags, so the same problem
optimized twice reuses the compiled library; torch's build directory does the rest.
Without a GPU the CUDA side is still compiled and linked (for TORCH_CUDA_ARCH_LIST).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import BuildError

DEFAULT_ARCH = "9.0"   # the H100; only used when no GPU is visible to pick the arch from


def prepare_environment() -> None:
    """CUDA_HOME and a target arch, so that CUDA extensions build on machines without a GPU."""
    if "CUDA_HOME" not in os.environ and "CUDA_PATH" not in os.environ:
        for candidate in ("/usr/local/cuda",):
            if os.path.isdir(candidate):
                os.environ["CUDA_HOME"] = candidate
                break
        else:
            nvcc = shutil.which("nvcc")
            if nvcc:
                os.environ["CUDA_HOME"] = str(Path(nvcc).resolve().parent.parent)
    if "TORCH_CUDA_ARCH_LIST" not in os.environ and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH


def build_dir(ext_name: str) -> Path:
    from torch.utils.cpp_extension import _get_build_directory
    return Path(_get_build_directory(ext_name, verbose=False))


def is_cached(ext_name: str) -> bool:
    return (build_dir(ext_name) / f"{ext_name}.so").exists()


@dataclass
class Loaded:
    module: object       # the imported generated module
    seconds: float       # time to build (or load from cache) and import
    cached: bool         # the compiled library was already there


def load_generated(path: str | Path, ext_name: str) -> Loaded:
    """Import a generated file, compiling its extension unless a cached build exists."""
    prepare_environment()
    path = Path(path)
    cached = is_cached(ext_name)
    mod_name = f"_fuseforge_gen_{ext_name}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    start = time.perf_counter()
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        log = str(e)
        raise BuildError(f"building the generated extension failed: {_first_error(log)}\n"
                         f"  generated source: {path}\n  build directory: {build_dir(ext_name)}",
                         source_path=path, log=log) from e
    sys.modules[mod_name] = module
    return Loaded(module, time.perf_counter() - start, cached)


def generated_model(path: str | Path, problem, device: str = "cuda"):
    """The ModelNew of a generated file (as scripts/generate_sources.py names them) built for
    `problem` after torch.manual_seed(0), on `device`, and the file's extension (its replay
    counters, set_replay): what the probing scripts time."""
    path = Path(path)
    module = load_generated(path, f"{path.parent.name}_{path.stem}").module
    torch.manual_seed(0)
    return module.ModelNew(*problem.init_args()).to(device), module._ext


# the extension's name in a generated file's load_inline call (emit.py writes it on a line of its own)
_EXT_NAME = re.compile(r'^\s*name="(\w+)",\s*$', re.M)


def release_build_lock(path: str | Path) -> bool:
    """After a process that loaded the generated file at `path` was killed: remove the lock it may
    have left in the extension's build directory. torch's builder takes that lock on every load,
    built or cached, and releases it in a `finally` that a SIGKILL skips; every later load of the
    extension then waits on it for ever (a resumed `fuseforge bench` spent its budget so on one
    problem, bench/session27). Only for a process that alone loads that extension. True: removed."""
    try:
        m = _EXT_NAME.search(Path(path).read_text())
    except OSError:
        return False
    if not m:
        return False
    lock = build_dir(m.group(1)) / "lock"
    try:
        lock.unlink()
        return True
    except FileNotFoundError:
        return False


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if "error" in line.lower() and ("error:" in line or "Error" in line):
            return line.strip()[:300]
    return log.strip().splitlines()[0][:300] if log.strip() else "unknown error"
