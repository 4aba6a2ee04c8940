"""The stages in order, for a problem file (optimize) and for a live module (compile)."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .bench import Timing, environment, time_cuda
from .build import Loaded, load_generated, prepare_environment
from .capture import capture
from .emit import Generated, generate
from .errors import VerifyError
from .plan import Plan, plan
from .problem import Problem, check_runs, load_problem
from .verify import VerifyResult, verify


@dataclass
class OptimizeReport:
    problem: str
    output: Path
    plan: Plan
    generated: Generated
    loaded: Loaded
    verify: VerifyResult
    cuda_ran: bool                                  # the CUDA kernels ran (else: built only)
    timings: dict[str, Timing] = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _stage(progress, text):
    return progress(text) if progress else contextlib.nullcontext()


def optimize(problem_path, output, *, device: str = "auto", trials: int = 5, bench: bool = True,
             compile_baseline: bool = False, overrides: dict | None = None,
             small: bool = False, progress=None) -> OptimizeReport:
    """Problem file → verified ModelNew file. `progress(text)` returns a context per stage."""
    prepare_environment()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    with _stage(progress, "loading the problem"):
        problem = load_problem(problem_path, overrides, small=small)
        model = problem.build(0)
        inputs = problem.inputs(0)
        check_runs(problem, model, inputs, device)
    with _stage(progress, "capturing the graph with torch.export"):
        graph = capture(model, inputs)
    with _stage(progress, "planning fusions"):
        the_plan = plan(graph)
    with _stage(progress, "generating CUDA C++ and the ModelNew file"):
        gen = generate(the_plan, name=problem.name, problem=problem)
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(gen.text)
    with _stage(progress, "building the extension (load_inline)"):
        loaded = load_generated(output, gen.ext_name)
    notes = list(gen.warnings)
    cuda_ran = device.startswith("cuda")
    if not cuda_ran:
        notes.append("no GPU: verified through the CPU twin; the CUDA kernels were compiled and "
                     "linked but not run")
    with _stage(progress, f"verifying against the reference on {device} ({trials} trials)"):
        result = verify(problem, loaded.module.ModelNew, device=device, trials=trials)
    report = OptimizeReport(problem.name, output, the_plan, gen, loaded, result, cuda_ran,
                            notes=notes)
    if bench and cuda_ran and result.passed:
        with _stage(progress, "timing eager and ModelNew on the GPU"):
            report.timings = compare_timings(problem, loaded.module.ModelNew, compile_baseline)
            report.env = environment()
    return report


def compare_timings(problem: Problem, new_cls, compile_baseline: bool = False) -> dict[str, Timing]:
    """Eager, optionally torch.compile, and the candidate, in one process on the same inputs."""
    inputs = problem.inputs(1, "cuda")
    ref = problem.build(0).cuda()
    torch.manual_seed(0)
    new = new_cls(*problem.init_args()).cuda()
    timings = {"eager": time_cuda(ref, inputs)}
    if compile_baseline:
        compiled = torch.compile(ref)
        timings["torch.compile"] = time_cuda(compiled, inputs, warmup=10)
    timings["fuseforge"] = time_cuda(new, inputs)
    return timings


def compile_module(model: torch.nn.Module, example_inputs, *, name: str | None = None,
                   cache_dir: str | os.PathLike | None = None) -> torch.nn.Module:
    """fuseforge.compile: the same pipeline for a live module; shares the module's parameters."""
    prepare_environment()
    inputs = list(example_inputs)
    graph = capture(model, inputs)
    gen = generate(plan(graph), name=name or type(model).__name__)
    loaded = load_generated(write_generated(gen, cache_dir), gen.ext_name)
    return loaded.module.Compiled(model)


def write_generated(gen, cache_dir: str | os.PathLike | None = None) -> Path:
    """The generated module's file in the cache (FUSEFORGE_CACHE, default ~/.cache/fuseforge),
    written unless it is there already."""
    root = Path(cache_dir or os.environ.get("FUSEFORGE_CACHE", Path.home() / ".cache" / "fuseforge"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{gen.ext_name}.py"
    if not path.exists() or path.read_text() != gen.text:
        path.write_text(gen.text)
    return path


def require_passed(result: VerifyResult) -> None:
    if not result.passed:
        raise VerifyError("the generated model does not match the reference:\n  " +
                          "\n  ".join(result.failures[:10]))
