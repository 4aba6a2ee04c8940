"""tune: time every GEMM of some problems on this GPU, for the planner (tuning.py, issue 7).

    fuseforge tune PROBLEM... [--trials 30] [--force]

The problems are planned with every product the generated GEMM can compute taken
(FUSEFORGE_GEMM=all). One model then holds, for each product not yet in the tuning file and each
configuration (plan_gemm.configs: the tiles, split-K), that product alone on inputs of its own in the product's
operand layouts; such models of a few products each are built side by side. Each candidate is checked against cuBLAS float32 on its inputs,
then the candidates' kernels (by name) and cuBLAS float32 (torch.matmul on the same inputs) are
timed under the profiler, L2 flushed before each, medians over the trials. The times go to the
tuning file under this GPU's name; the next plan for this GPU takes them (plan_gemm.choose).
"""
from __future__ import annotations

import os
import re
import statistics
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from . import tuning
from .errors import FuseforgeError
from .ops.gemm import Gemm


@dataclass
class Form:
    """A product as the tuning model computes it: operand shapes as stored, and whether each is
    read transposed (so that the product's operand layouts are the measured one's)."""
    gemm: Gemm
    key: str
    a_shape: list[int]
    a_t: bool
    b_shape: list[int]
    b_t: bool


def form(g: Gemm, tf32: bool) -> Form | None:
    """The product's form, or None where a model of contiguous inputs cannot give its layouts (A
    read along k with a B shared by the batch: matmul folds such a batch into A's rows)."""
    from .plan_gemm import operand_layout
    a_k, b_k = operand_layout(g, "a")[0], operand_layout(g, "b")[0]
    if g.batch > 1 and not g.b.batch and a_k:
        return None
    a_lead = [g.batch] if g.batch > 1 and g.a.batch else []
    b_lead = [g.batch] if g.batch > 1 and g.b.batch else []
    return Form(g, tuning.key(g, tf32), a_lead + ([g.m, g.k] if a_k else [g.k, g.m]), not a_k,
                b_lead + ([g.n, g.k] if b_k else [g.k, g.n]), b_k)


def product(f: Form, a, b):
    """The form's product of stored operands a and b, as torch computes it."""
    return torch.matmul(a.transpose(-1, -2) if f.a_t else a, b.transpose(-1, -2) if f.b_t else b)


class Products(torch.nn.Module):
    """Each form's product, on its own pair of inputs."""
    def __init__(self, forms: list[Form]):
        super().__init__()
        self.forms = forms

    def forward(self, *xs):
        return tuple(product(f, a, b) for f, a, b in zip(self.forms, xs[0::2], xs[1::2]))


@contextmanager
def every_gemm():
    """Plans in this block take every product the generated GEMM can compute, and no measured
    choices (what is measured is each configuration, whatever the planner would choose)."""
    saved = {k: os.environ.get(k) for k in ("FUSEFORGE_GEMM", "FUSEFORGE_TUNING")}
    os.environ.update(FUSEFORGE_GEMM="all", FUSEFORGE_TUNING="off")
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def products_of(paths, progress=None) -> dict[str, Gemm]:
    """Every product of the problems that the generated GEMM can compute, by tuning key."""
    from .capture import capture
    from .plan import plan
    from .plan_gemm import GemmKernel, tf32_mode
    from .problem import load_problem
    found: dict[str, Gemm] = {}
    with every_gemm():
        for path in paths:
            with progress(f"planning {path}") if progress else nullcontext():
                problem = load_problem(path)
                with torch.no_grad():
                    p = plan(capture(problem.build(0), problem.inputs(0)))
            for k in p.kernels:
                if isinstance(k, GemmKernel):
                    found.setdefault(tuning.key(k.gemm, tf32_mode()), k.gemm)
    return found


def _kernel_times(prof) -> dict[str, float]:
    """Median ms of each generated GEMM kernel's launches (pack kernels included) per call, by the
    kernel struct's name (ffgemm's templates take <name>_gemm)."""
    durations = defaultdict(list)
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA and (m := re.search(r"<(\w+)_gemm\b", e.name)):
            durations[(m[1], e.name)].append(e.time_range.elapsed_us() / 1e3)
    per_struct = defaultdict(float)
    for (struct, _), ds in durations.items():
        per_struct[struct] += statistics.median(ds)
    return dict(per_struct)


@dataclass
class Chunk:
    """Products measured together: their candidates' forms, the model computing them, its plan's
    GEMM kernels (one per candidate, tiles set) and the generated module's file."""
    forms: list[Form]
    candidates: list[str]
    model: Products
    kernels: list
    path: object = None
    ext_name: str = ""


def prepare(products: dict[str, Gemm]) -> Chunk:
    """The tuning model of these products, planned (every product generated) and written out."""
    from .capture import capture
    from .emit import generate
    from .pipeline import write_generated
    from .plan import plan
    from .plan_gemm import MAX_PACKED_BYTES, GemmKernel, configs, packed_bytes, tf32_mode

    tf32 = tf32_mode()
    forms, candidates = [], []      # one form per candidate (the product and its tiles' name)
    for g in products.values():
        for name, (tiles, _) in configs(g).items():
            if packed_bytes(g, tiles) <= MAX_PACKED_BYTES and (f := form(g, tf32)):
                forms.append(f)
                candidates.append(name)
    model = Products(forms)
    xs = [torch.empty(*s, device="meta") for f in forms for s in (f.a_shape, f.b_shape)]
    with every_gemm(), torch.no_grad():
        p = plan(capture(model, xs))
    kernels = [k for k in p.kernels if isinstance(k, GemmKernel)]
    if [tuning.key(k.gemm, tf32) for k in kernels] != [f.key for f in forms]:
        raise FuseforgeError("the tuning model's products are not the ones it was built for: "
                             f"{[tuning.key(k.gemm, tf32) for k in kernels]} against {[f.key for f in forms]}")
    for k, name in zip(kernels, candidates):
        k.tiles, k.split = configs(k.gemm)[name]
    gen = generate(p, name="tune")
    return Chunk(forms, candidates, model, kernels, write_generated(gen), gen.ext_name)


def build_all(chunks: list[Chunk], jobs: int) -> None:
    """Build the chunks' extensions, several at once (a process each: one build is mostly two
    compiler processes, so a machine of many cores runs several side by side)."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def one(c: Chunk) -> str:
        code = ("from fuseforge.build import load_generated; "
                f"load_generated({str(c.path)!r}, {c.ext_name!r})")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        return "" if done.returncode == 0 else done.stderr[-2000:]
    with ThreadPoolExecutor(jobs) as pool:
        errors = [e for e in pool.map(one, chunks) if e]
    if errors:
        raise FuseforgeError(f"building the tuning kernels failed:\n{errors[0]}")


def time_chunk(c: Chunk, trials: int) -> dict[str, dict]:
    """{key: {"cublas": ms, tiles name: ms, ...}}: the chunk's candidates checked against cuBLAS
    float32, then timed with it under the profiler."""
    from .bench import FLUSH_BYTES
    from .build import load_generated
    from .plan_gemm import tf32_mode

    fast = load_generated(c.path, c.ext_name).module.Compiled(c.model).cuda()
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(*s, generator=gen).cuda() for f in c.forms for s in (f.a_shape, f.b_shape)]
    pairs = list(zip(xs[0::2], xs[1::2]))
    with torch.no_grad():
        ref = [product(f, a, b) for f, (a, b) in zip(c.forms, pairs)]
        got = fast(*xs)
    tol = 1e-2 if tf32_mode() else 1e-4
    for f, name, r, o in zip(c.forms, c.candidates, ref, got):
        err = float((o - r).abs().max() / r.abs().max().clamp_min(1e-30))
        if not err <= tol:
            raise FuseforgeError(f"{f.key} on {name} tiles: relative error {err:.2e} against cuBLAS float32")
    del ref, got

    flush = torch.empty(FLUSH_BYTES // 4, device="cuda")
    first = {}
    for i, f in enumerate(c.forms):
        first.setdefault(f.key, i)
    cublas = {key: (lambda i=i: product(c.forms[i], *pairs[i])) for key, i in first.items()}
    from torch.profiler import ProfilerActivity, profile, record_function
    with torch.no_grad():
        for _ in range(3):
            fast(*xs)
            [fn() for fn in cublas.values()]
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(trials):
                flush.zero_()
                fast(*xs)
                for key, fn in cublas.items():
                    flush.zero_()
                    with record_function(f"ff_cublas {key}"):
                        fn()
            torch.cuda.synchronize()
    ours = _kernel_times(prof)
    lib = defaultdict(list)
    for e in prof.events():
        if e.name.startswith("ff_cublas "):
            lib[e.name.removeprefix("ff_cublas ")].append(e.device_time_total / 1e3)
    out: dict[str, dict] = {}
    for k, f, name in zip(c.kernels, c.forms, c.candidates):
        entry = out.setdefault(f.key, {"cublas": statistics.median(lib[f.key])})
        entry[name] = ours[k.name]
    return out


def measure(products: dict[str, Gemm], *, trials: int = 30, per_build: int = 6, jobs: int = 8,
            progress=None) -> dict[str, dict]:
    """{key: {"cublas": ms, "large": ms, "small": ms}} for each product, on this GPU: built in
    chunks of per_build products (jobs builds at once), timed chunk by chunk."""
    from .build import prepare_environment
    prepare_environment()
    items = list(products.items())
    with progress(f"planning the tuning kernels of {len(items)} products") if progress else nullcontext():
        chunks = [prepare(dict(items[i:i + per_build])) for i in range(0, len(items), per_build)]
    with progress(f"building {sum(len(c.kernels) for c in chunks)} candidate kernels in "
                  f"{len(chunks)} extensions") if progress else nullcontext():
        build_all(chunks, jobs)
    out: dict[str, dict] = {}
    for i, c in enumerate(chunks):
        with progress(f"timing chunk {i + 1}/{len(chunks)}: {len(c.kernels)} candidates and cuBLAS, "
                      f"{trials} calls each") if progress else nullcontext():
            out.update(time_chunk(c, trials))
    return out


def add_tune_parser(sub) -> None:
    p = sub.add_parser("tune", help="time each GEMM of the problems on this GPU (cuBLAS and each tile "
                                    "configuration) and cache the times for the planner")
    p.add_argument("problems", nargs="+", help="problem files")
    p.add_argument("--trials", type=int, default=30, help="timed calls per candidate (medians)")
    p.add_argument("--force", action="store_true", help="measure products the tuning file already has")
    p.add_argument("--file", help="the tuning file (default: FUSEFORGE_TUNING or ~/.cache/fuseforge/gemm_tuning.json)")


def main_tune(args, console) -> int:
    import contextlib
    from pathlib import Path

    from rich.table import Table
    if not torch.cuda.is_available():
        console.print("[red]error:[/red] fuseforge tune measures on a GPU: none is visible here")
        return 1
    if args.file:
        os.environ["FUSEFORGE_TUNING"] = args.file
    file = tuning.path() or tuning.DEFAULT_PATH

    @contextlib.contextmanager
    def progress(text):
        with console.status(f"[bold]{text}…"):
            yield
        console.print(f"[dim]✓ {text}[/dim]")

    gpu = torch.cuda.get_device_name(0)
    products = products_of(args.problems, progress)
    have = tuning.load(file).get(gpu, {})
    todo = {k: g for k, g in products.items()
            if args.force or have.get(k, {}).get("library") != tuning.library_hash()}
    console.print(f"{len(products)} products, {len(products) - len(todo)} already measured on {gpu}")
    if todo:
        tuning.store(gpu, measure(todo, trials=args.trials, progress=progress), Path(file))
    data = tuning.load(file).get(gpu, {})
    products = {k: g for k, g in products.items() if k in data}
    table = Table(title=f"GEMM times on {gpu} (ms, medians) — {file}")
    for col in ("product", "cuBLAS float32", "large tiles", "small tiles", "large, k split", "fastest"):
        table.add_column(col)
    for k in products:
        e = data[k]
        times = {n: ms for n, ms in e.items() if isinstance(ms, float)}
        splits = sorted((int(n.removeprefix("large_split")), ms) for n, ms in times.items() if n.startswith("large_split"))
        table.add_row(k, *(f"{e[n]:.3f}" if n in e else "-" for n in ("cublas", "large", "small")),
                      " ".join(f"{s}: {ms:.3f}" for s, ms in splits) or "-",
                      min(times, key=times.get))
    console.print(table)
    return 0
