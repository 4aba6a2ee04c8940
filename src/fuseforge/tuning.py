"""tuning: GEMM choices measured per shape on a GPU, cached on disk (issue 7).

Without a measurement the planner decides each product from estimates built on measured rates
(plan_gemm: cuBLAS float32's, the wgmma kernel's, the packing's). `fuseforge tune` (tune.py)
measures instead, on the GPU it runs on: cuBLAS float32 and the generated kernel in each tile
configuration (plan_gemm.configs: the tile sizes, split-K), for every product of the problems it is given. The times land in
a JSON file, by GPU name and product key (batch, M, N, K, each operand's layout, the precision
mode); an entry also names the GEMM library it measured (a hash of its CUDA text), so a change of
the kernel makes the old times stale rather than wrong. When the planner runs for a GPU the file
has a fresh entry for, the measurement decides (plan_gemm.choose).

The package ships such a file (SHIPPED: the suite's products on the H100, made by `fuseforge tune`
over the suite's GEMM problems, bench/session18/tune); the user's file wins where both have a key.
Its entries name the 34th session's library: the kernels they timed (products alone, nothing
loaded by the epilogue) compile to the same sm_90a machine code as the library they measured
(ead7515d81cf; bench/session34/notes.md).

    FUSEFORGE_TUNING   the user's file (default ~/.cache/fuseforge/gemm_tuning.json); "off": no
                       lookups at all (the shipped file's neither)
    FUSEFORGE_GPU      the GPU to plan for (default: the visible one's name; none on a CPU-only
                       machine, where the estimates decide unless this names one)
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from .ops.gemm import Gemm

DEFAULT_PATH = Path.home() / ".cache" / "fuseforge" / "gemm_tuning.json"
SHIPPED = Path(__file__).with_name("gemm_tuning.json")


def path() -> Path | None:
    """The tuning file, or None when lookups are off."""
    v = os.environ.get("FUSEFORGE_TUNING", "")
    if v == "off":
        return None
    return Path(v) if v else DEFAULT_PATH


def gpu_name() -> str | None:
    """The GPU the plan is for: FUSEFORGE_GPU, else the visible GPU's name, else None."""
    if os.environ.get("FUSEFORGE_GPU"):
        return os.environ["FUSEFORGE_GPU"]
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


@functools.cache
def library_hash() -> str:
    """The GEMM kernels' CUDA text, hashed: which code a measurement timed (fixed for a process)."""
    from .codegen import gemm
    return hashlib.sha256((gemm.SM90_PRIMITIVES + gemm.GEMM_LIBRARY).encode()).hexdigest()[:12]


def key(g: Gemm, tf32: bool) -> str:
    """A product's key: its sizes, each operand's layout (the dim inner in memory, 16-byte copies,
    shared by the batch) and the precision mode."""
    from .plan_gemm import operand_layout

    def layout(which, op):
        k_inner, vec = operand_layout(g, which)
        return ("k" if k_inner else "mn") + ("16" if vec else "4") + ("s" if g.batch > 1 and op.batch == 0 else "")
    return f"{g.batch}x{g.m}x{g.n}x{g.k} a:{layout('a', g.a)} b:{layout('b', g.b)} {'tf32' if tf32 else '3xtf32'}"


def load(file: Path | None = None) -> dict:
    """The whole file: {gpu name: {key: entry}}; empty when it does not exist."""
    file = file or path()
    if file is None or not file.exists():
        return {}
    return json.loads(file.read_text())


def lookup(g: Gemm, tf32: bool) -> dict | None:
    """The measured entry for this product on the target GPU, if the user's file or the shipped one
    has a fresh one (the user's first): {"cublas": ms, "<configuration name>": ms, ..., "gpu": name}."""
    gpu, file = gpu_name(), path()
    if gpu is None or file is None:
        return None
    k, lib = key(g, tf32), library_hash()
    for source in (file, SHIPPED):          # the user's fresh entry first, then the shipped one
        entry = load(source).get(gpu, {}).get(k)
        if entry is not None and entry.get("library") == lib:
            return {**entry, "gpu": gpu}
    return None


def store(gpu: str, entries: dict[str, dict], file: Path | None = None) -> Path:
    """Merge entries ({key: {"cublas": ms, ...}}) into the file for this GPU, written whole and
    then renamed into place (a reader never sees half a file)."""
    file = file or path() or DEFAULT_PATH
    data = load(file)
    data.setdefault(gpu, {}).update({k: {**v, "library": library_hash()} for k, v in entries.items()})
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(file)
    return file
