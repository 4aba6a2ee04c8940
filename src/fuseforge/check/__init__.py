"""fuseforge check: a hack-resistant evaluator for any ModelNew file.

    from fuseforge.check import check
    result = check("problem.py", "problem_new.py")      # CheckResult
    result.passed, result.as_dict()                      # KernelBench fields + ours

Does it build, is it correct, how fast is it, is anything suspicious:

- Static checks on the candidate's syntax tree, in this process, before anything runs
  (check/static.py: rules and strictness levels).
- Everything else in a separate worker process (check/worker.py) under a per-stage time
  limit and a memory limit (check/runner.py); a crash, hang, CUDA error or out-of-memory
  there is a result, never a failure of the checker.
- In the worker the reference is loaded and probed first (FLOPs, the ATen ops it calls),
  the process state a harness depends on is snapshotted (check/guards.py), then the
  candidate is imported (which builds its extension: build errors come back with the
  compiler's message), and both models are constructed after the same seed.
- Each trial draws fresh inputs from the problem's get_inputs() under a new seed, fills the
  allocator's free memory with a NaN poison pattern, runs the candidate FIRST on clones,
  copies its outputs at return time, synchronizes, waits for threads it left, and looks for
  late writes, mutated inputs, outputs that alias inputs/parameters or the previous call's
  outputs, poison in the outputs, results equal to earlier reference results, tampering
  with the reference's parameters or the harness's tensors, and changed guards; then runs
  the reference on its own clones, compares (tolerance by dtype, NaN/Inf positions,
  shapes/dtypes/devices) and runs a float64 copy of the reference to compare both errors.
- A recompute check calls the candidate twice on the same tensor objects with contents
  changed in between (caches keyed on identity or address).
- On a GPU: ceilings (copy bandwidth, TF32 GEMM rate), CUDA-event timing with L2 flush of
  eager and the candidate (and torch.compile) in the same process on the same inputs,
  an event-time vs synchronized-wall-time comparison, and the roofline floor.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .static import LEVELS, StaticReport, static_check

DEFAULT_TIMEOUT_S = 300.0          # one stage (a trial, the timing, ...) of the worker
DEFAULT_BUILD_TIMEOUT_S = 900.0    # importing (building) the candidate, torch.compile


@dataclass
class CheckOptions:
    device: str = "auto"               # auto | cpu | cuda
    trials: int = 5
    atol: float | None = None          # None: by dtype (float32: 1e-2, as KernelBench)
    rtol: float | None = None
    seed: int = 42
    static_level: str = "default"      # off | lenient | default | strict
    timeout: float = DEFAULT_TIMEOUT_S
    build_timeout: float = DEFAULT_BUILD_TIMEOUT_S
    memory_limit_gb: float | None = None     # host memory; None: 80% of RAM
    gpu_memory_fraction: float | None = 0.9
    bench: bool = True
    compile: bool = False
    bench_trials: int = 100
    overrides: dict = field(default_factory=dict)
    precision_factor: float = 10.0     # flag: error vs float64 more than this × eager's ...
    precision_floor: float = 1e-5      # ... and above this normwise relative error
    roofline_margin: float = 0.9       # flag: median time below margin × the floor


@dataclass
class CheckResult:
    reference: str
    candidate: str
    device: str
    static: StaticReport
    data: dict                          # fields the worker set
    flags: list[dict]                   # static errors/warnings and run-time flags
    notes: list[str]
    skipped: list[dict]
    error: dict | None
    stages: list[dict]
    options: CheckOptions

    @property
    def compiled(self) -> bool:
        return bool(self.data.get("compiled"))

    @property
    def correctness(self) -> bool | None:
        return self.data.get("correctness")

    @property
    def flag_ids(self) -> set[str]:
        return {f["id"] for f in self.flags}

    @property
    def error_flags(self) -> list[dict]:
        return [f for f in self.flags if f["severity"] == "error"]

    @property
    def passed(self) -> bool:
        return self.error is None and self.compiled and self.correctness is True and not self.error_flags

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return self.error["kind"]
        if self.correctness is None:
            return "not run"
        if not self.correctness:
            return "incorrect"
        return "flagged" if self.error_flags else "pass"

    def as_dict(self) -> dict:
        t = self.data.get("timing") or {}
        runtime = t.get("candidate_ms", -1.0)
        out = {
            # KernelBench-compatible
            "compiled": self.compiled,
            "correctness": bool(self.correctness),
            "runtime": runtime,
            "speedup": t.get("speedup_vs_eager"),
            "metadata": {"device": self.device, "correct_trials": f"({self.data.get('trials_passed', 0)} / "
                                                                  f"{self.data.get('trials', 0)})"},
            # ours
            "passed": self.passed,
            "verdict": self.verdict,
            "reference": self.reference,
            "candidate": self.candidate,
            "device": self.device,
            "error": self.error,
            "flags": self.flags,
            "correctness_trials": self.data.get("trials"),
            "trials_passed": self.data.get("trials_passed"),
            "atol": self.options.atol,
            "rtol": self.options.rtol,
            "max_abs_error": self.data.get("max_abs_error"),
            "max_rel_error": self.data.get("max_rel_error"),
            "tolerance_ratio": self.data.get("tolerance_ratio"),
            "failures": self.data.get("failures", []),
            "fp64": self.data.get("fp64"),
            "same_parameters": self.data.get("same_parameters"),
            "build_seconds": self.data.get("build_seconds"),
            "timing": t or None,
            "ref_runtime": t.get("eager_ms", -1.0),
            "compile_runtime": t.get("compile_ms", -1.0),
            "roofline": self.data.get("roofline"),
            "ceilings": self.data.get("ceilings"),
            "flops": self.data.get("flops"),
            "min_bytes": self.data.get("min_bytes"),
            "env": self.data.get("env") or _env_cpu(),
            "static": self.static.as_dict(),
            "skipped": self.skipped,
            "notes": self.notes,
            "stages": self.stages,
            "limits": {"timeout_s": self.options.timeout, "build_timeout_s": self.options.build_timeout,
                       "memory_limit_gb": self.options.memory_limit_gb,
                       "gpu_memory_fraction": self.options.gpu_memory_fraction},
            "peak_host_memory_bytes": self.data.get("peak_host_memory_bytes"),
        }
        return out


def _merge(flags: list[dict]) -> list[dict]:
    """One entry per run-time flag id: the first message, and how many times it was raised."""
    merged: dict[str, dict] = {}
    for f in flags:
        if f["id"] in merged:
            merged[f["id"]]["count"] += 1
        else:
            merged[f["id"]] = dict(f, count=1)
    return list(merged.values())


def _env_cpu() -> dict:
    import torch
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": None}


def _resolve_device(device: str) -> str:
    if device == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check(reference: str | os.PathLike, candidate: str | os.PathLike, options: CheckOptions | None = None,
          **kwargs) -> CheckResult:
    """Check candidate's ModelNew against reference's Model. Keyword arguments override options."""
    from .runner import run_worker, total_memory
    opts = options or CheckOptions()
    for k, v in kwargs.items():
        if not hasattr(opts, k):
            raise TypeError(f"check() got an unknown option {k!r}")
        setattr(opts, k, v)
    if opts.static_level not in LEVELS:
        raise ValueError(f"static level must be one of {', '.join(LEVELS)}")
    reference, candidate = str(Path(reference).resolve()), str(Path(candidate).resolve())
    device = _resolve_device(opts.device)
    source = Path(candidate).read_text() if Path(candidate).is_file() else ""
    static = static_check(source, opts.static_level, candidate) if source else StaticReport(opts.static_level)
    flags = [{"id": f.rule, "severity": f.severity, "message": f.message, "line": f.line, "source": "static"}
             for f in static.findings if f.severity in ("error", "warning")]
    skipped = []
    if opts.static_level == "off":
        skipped.append({"what": "static checks", "why": "--static-level off"})
    if not Path(candidate).is_file() or not Path(reference).is_file():
        missing = candidate if not Path(candidate).is_file() else reference
        return CheckResult(reference, candidate, device, static, {"compiled": False}, flags, [], skipped,
                           {"kind": "setup", "message": f"{missing}: no such file", "log": ""}, [], opts)
    limit = int(opts.memory_limit_gb * 2**30) if opts.memory_limit_gb else int(0.8 * total_memory())
    spec = {"reference": reference, "candidate": candidate, "device": device, "trials": opts.trials,
            "atol": opts.atol, "rtol": opts.rtol, "seed": opts.seed, "bench": opts.bench,
            "compile": opts.compile, "bench_trials": opts.bench_trials, "overrides": opts.overrides,
            "memory_limit_bytes": limit, "gpu_memory_fraction": opts.gpu_memory_fraction,
            "precision_factor": opts.precision_factor, "precision_floor": opts.precision_floor,
            "roofline_margin": opts.roofline_margin}
    log = run_worker(spec, timeout=opts.timeout, build_timeout=opts.build_timeout, memory_limit=limit)
    flags += _merge(log.flags)
    return CheckResult(reference, candidate, device, static, log.data, flags, log.notes,
                       skipped + log.skipped, log.error, log.stages, opts)


__all__ = ["CheckOptions", "CheckResult", "check", "static_check", "LEVELS"]
