"""suite_bench: `fuseforge bench PATHS...`, eager vs torch.compile vs fuseforge over many problems.

Two phases per batch of problems, so that the slow CPU work runs in parallel and the timing
runs alone on the GPU:

1. prepare, in `jobs` worker processes at once: `optimize(..., bench=False)` writes and builds
   each ModelNew (the build cache makes the later load instant), and each torch.compile mode
   compiles and runs the model once (a warm inductor cache makes the later compile quick);
2. measure, one fresh process per problem, one at a time: `measure_problem` verifies and times
   eager, every torch.compile mode and ModelNew on the same inputs, counts FLOPs and minimal
   bytes, and writes its record as it goes, so a crash or a timeout keeps what was measured
   and names where it stopped.

The GPU's ceilings (copy bandwidth, float32/TF32 GEMM rates) are measured once per run in the
parent. Records are appended to results.jsonl as they finish; a later run skips problems
already there (unless --force), `--shard i/n` takes every n-th problem of the sorted list,
and `merge` joins shard outputs. The report and plots come from bench_report.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

DEFAULT_OUT = "bench/suite"
RESULTS = "results.jsonl"
RUNS = "runs.jsonl"
SRC = Path(__file__).resolve().parents[1]      # the directory holding the fuseforge package
COMPILE_CHECK_TRIALS = 3


# --------------------------------------------------------------------------- problem list

def find_problems(paths) -> list[Path]:
    """Problem files named or found under directories (as `fuseforge sweep` finds them), by key."""
    from .sweep import discover
    unique = {problem_key(f): f for f in discover(paths)}
    return [unique[k] for k in sorted(unique)]


def problem_key(path) -> str:
    """The record key: the path relative to the working directory (absolute if outside it)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def level_of(path) -> str:
    """The level is the problem's folder name (suite/level1/x.py → level1)."""
    return Path(path).resolve().parent.name


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' with 1 ≤ i ≤ n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/n (e.g. 1/4), got {text!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard {text}: need 1 ≤ i ≤ n")
    return i, n


def shard(items: list, i: int, n: int) -> list:
    """Shard i of n (1-based) of a list sorted by key: every n-th item, so levels spread evenly."""
    ordered = sorted(items, key=lambda x: problem_key(x) if isinstance(x, Path) else x)
    return ordered[i - 1::n]


# --------------------------------------------------------------------------- results files

def read_jsonl(path) -> list[dict]:
    """Records of a JSONL file; a line cut off by a kill (the last one) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def latest_records(records) -> dict[str, dict]:
    """One record per problem: the last one appended wins."""
    out = {}
    for rec in records:
        if "problem" in rec:
            out[rec["problem"]] = rec
    return out


_write_lock = threading.Lock()


def append_jsonl(path, record: dict) -> None:
    line = json.dumps(record, default=_json_default) + "\n"
    with _write_lock, open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _json_default(x):
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, (set, tuple)):
        return list(x)
    return repr(x)


def _config_matches(rec: dict, config: dict) -> bool:
    old = rec.get("config", {})
    return (bool(old.get("small")) == bool(config.get("small")) and bool(old.get("tf32")) == bool(config.get("tf32"))
            and set(config.get("compile_modes", [])) <= set(old.get("compile_modes", [])))


def pending(problems, done: dict[str, dict], *, config: dict, force: bool = False,
            retry_failed: bool = False) -> tuple[list, list]:
    """(to run, skipped): a problem with a record for the same config is skipped unless forced."""
    todo, skipped = [], []
    for p in problems:
        rec = done.get(problem_key(p))
        if rec is None or force or not _config_matches(rec, config) or \
                (retry_failed and rec.get("status") != "ok"):
            todo.append(p)
        else:
            skipped.append(p)
    return todo, skipped


def base_record(problem_path) -> dict:
    return {"problem": problem_key(problem_path), "name": Path(problem_path).stem,
            "level": level_of(problem_path)}


def cause(e: BaseException, limit: int = 600) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}"[:limit] if text else type(e).__name__


def small_overrides(problem_path) -> dict:
    """The problem's SMALL sizes, as load_problem(path, small=True) applies them."""
    from .problem import load_problem
    problem = load_problem(problem_path, small=True)
    return dict(problem.overrides or getattr(problem.module, "SMALL", None) or {})


# --------------------------------------------------------------------------- measuring one problem

def _time_cpu(fn, args, trials: int = 5):
    """Wall-clock median on the CPU: only for running the measuring path without a GPU (tests)."""
    import statistics

    import torch

    from .bench import Timing
    times = []
    with torch.no_grad():
        fn(*args)
        for _ in range(trials):
            start = time.perf_counter()
            fn(*args)
            times.append((time.perf_counter() - start) * 1e3)
    return Timing(statistics.median(times), min(times), trials)


def count_flops(model, inputs) -> tuple[int, object]:
    """FLOPs of one forward (torch's FlopCounterMode: matmuls, convolutions, attention) and its output."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model(*inputs)
    return int(counter.get_total_flops()), out


def minimal_bytes(model, inputs, outputs) -> int:
    """Bytes of the distinct input tensors, parameters and buffers (read once) and outputs (written once)."""
    import torch
    import torch.utils._pytree as pytree

    def nbytes(t):
        return min(t.numel() * t.element_size(), t.untyped_storage().nbytes())

    def distinct(tensors):
        seen, total = set(), 0
        for t in tensors:
            key = (t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride()))
            if key not in seen:
                seen.add(key)
                total += nbytes(t)
        return total

    read = [x for x in pytree.tree_leaves(list(inputs)) if isinstance(x, torch.Tensor)]
    read += list(model.parameters()) + list(model.buffers())
    written = [x for x in pytree.tree_leaves(outputs) if isinstance(x, torch.Tensor)]
    return distinct(read) + distinct(written)


def _clone_tree(x):
    import torch
    import torch.utils._pytree as pytree
    return pytree.tree_map(lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else t, x)


def check_against_eager(problem, fn, ref, device, *, trials: int = COMPILE_CHECK_TRIALS, seed: int = 42):
    """Compare fn (e.g. a torch.compile'd copy) with the eager reference on fresh inputs, verify's way."""
    import torch

    from .verify import FLOAT32_TOL, VerifyResult, _compare
    result = VerifyResult(device=str(device), trials=trials, passed=False)
    for trial in range(trials):
        inputs = problem.inputs(seed + 1 + trial, device)
        with torch.no_grad():
            torch.manual_seed(seed + 1000 + trial)
            want = _clone_tree(ref(*_clone_tree(inputs)))
            torch.manual_seed(seed + 1000 + trial)
            got = _clone_tree(fn(*_clone_tree(inputs)))
        _compare(f"trial {trial} output", got, want, FLOAT32_TOL, FLOAT32_TOL, result)
        if result.failures:
            break
    result.passed = not result.failures
    return result


def measure_problem(problem_path, new_path=None, *, compile_modes=("default",), ceilings: dict | None = None,
                    small: bool = False, overrides: dict | None = None, device: str = "cuda",
                    min_trials: int = 30, max_trials: int = 100, budget_s: float = 1.0,
                    verify_trials: int = 5, ext_name: str | None = None, fuseforge_error: str | None = None,
                    on_update=None) -> dict:
    """Verify and time eager, torch.compile (each mode) and ModelNew for one problem → a record.

    All versions run in this process on the same inputs (CUDA events, L2 flushed, warm-up,
    median of min_trials..max_trials calls). torch.compile's outputs are compared with eager's
    on fresh inputs; ModelNew goes through verify. A version that fails is recorded with its
    cause and the others still run; `record["phase"]` names the step in progress, so a caller
    that sees the process die knows where (on_update(record) is called after every step).
    """
    import torch

    from .ceilings import roofline
    from .problem import load_problem
    from .verify import verify
    from .bench_report import attach_speedups

    rec = base_record(problem_path)
    rec.update(status="running", versions={},
               config={"small": small, "compile_modes": list(compile_modes), "device": device,
                       "trials": [min_trials, max_trials], "verify_trials": verify_trials})
    started = time.perf_counter()
    steps = rec["steps_s"] = {}     # seconds spent in each step (where a slow problem's time goes)
    last = [None, started]

    def step(phase):
        now = time.perf_counter()
        if last[0] is not None:
            steps[last[0]] = round(steps.get(last[0], 0) + now - last[1], 3)
        last[:] = [phase, now]
        rec["phase"] = phase
        rec["wall_s"] = round(now - started, 2)
        if on_update:
            on_update(rec)

    def timer(fn, args):
        if device == "cpu":
            return _time_cpu(fn, args)
        from .bench import time_cuda_adaptive
        return time_cuda_adaptive(fn, args, min_trials=min_trials, max_trials=max_trials, budget_s=budget_s)

    def timing(t, fn, args):
        """The GPU time, then (on a GPU) the host time of a call: the wrapper's own cost."""
        out = {"ms": t.median_ms, "min_ms": t.min_ms, "trials": t.trials}
        if device != "cpu":
            from .bench import host_time
            try:
                out["host_ms"] = host_time(fn, args)
            except Exception as e:   # the GPU time stands; the report counts only measured host times
                out["host_error"] = cause(e)
        return out

    def sync():
        if device != "cpu":
            torch.cuda.synchronize()

    def free():
        if device != "cpu":
            torch.cuda.empty_cache()

    step("load")
    try:
        if small and overrides is None:
            overrides = small_overrides(problem_path)
        rec["overrides"] = dict(overrides or {})
        problem = load_problem(problem_path, overrides)
        ref = problem.build(0).to(device)
        inputs = problem.inputs(1, device)
    except Exception as e:
        rec.update(status="error", error=f"loading the problem: {cause(e)}")
        step("load")
        return rec

    step("flops")
    try:
        rec["flops"], out = count_flops(ref, inputs)
        rec["bytes"] = minimal_bytes(ref, inputs, out)
        rec.update(roofline(rec["flops"], rec["bytes"], ceilings))
        del out
    except Exception as e:
        rec.update(status="error", error=f"the reference fails on its inputs: {cause(e)}")
        step("flops")
        return rec

    step("eager")
    try:
        rec["versions"]["eager"] = {"correct": True, **timing(timer(ref, inputs), ref, inputs)}
    except Exception as e:
        rec.update(status="error", error=f"timing eager: {cause(e)}")
        step("eager")
        return rec

    for mode in compile_modes:
        name = f"compile:{mode}"
        step(name)
        entry = rec["versions"][name] = {"correct": False}
        try:
            torch._dynamo.reset()
            model = problem.build(0).to(device)
            compiled = torch.compile(model, mode=mode)
            t0 = time.perf_counter()
            with torch.no_grad():
                compiled(*inputs)
            sync()
            entry["compile_s"] = round(time.perf_counter() - t0, 2)
            check = check_against_eager(problem, compiled, ref, device)
            entry.update(correct=check.passed, max_abs=check.max_abs, max_rel=check.max_rel,
                         failures=check.failures[:3])
            if check.passed:
                entry.update(timing(timer(compiled, inputs), compiled, inputs))
            del compiled, model
        except Exception as e:
            entry["error"] = cause(e)
        torch._dynamo.reset()
        free()

    step("fuseforge")
    entry = rec["versions"]["fuseforge"] = {"correct": False}
    if fuseforge_error or not new_path or not Path(new_path).is_file():
        entry["error"] = fuseforge_error or "no ModelNew file"
    else:
        try:
            from .build import load_generated
            loaded = load_generated(new_path, ext_name or Path(new_path).stem)
            new_cls = loaded.module.ModelNew
            entry["load_s"] = round(loaded.seconds, 2)
            step("fuseforge:verify")
            result = verify(problem, new_cls, device=device, trials=verify_trials)
            entry.update(correct=result.passed, max_abs=result.max_abs, max_rel=result.max_rel,
                         failures=result.failures[:3])
            if result.passed:
                step("fuseforge:time")
                torch.manual_seed(0)
                new = new_cls(*problem.init_args()).to(device)
                entry.update(timing(timer(new, inputs), new, inputs))
                replays = getattr(loaded.module._ext, "replays", None)
                if replays is not None:   # [CUDA graphs captured, replays] over verify and timing
                    entry["replays"] = list(replays())
        except Exception as e:
            entry["error"] = cause(e)
    rec["status"] = "ok"
    attach_speedups(rec)
    step("done")
    rec.pop("phase", None)
    if on_update:
        on_update(rec)
    return rec


# --------------------------------------------------------------------------- preparing one problem

def prepare_problem(problem_path, new_path, *, compile_modes=("default",), small: bool = False,
                    device: str = "cuda", verify_trials: int = 1) -> dict:
    """Write and build ModelNew, and compile + run each torch.compile mode once (warms the caches)."""
    import torch

    from .pipeline import optimize
    from .problem import load_problem
    info: dict = {"fuseforge": {}, "compile": {}}
    new_path = Path(new_path)
    new_path.parent.mkdir(parents=True, exist_ok=True)
    if new_path.exists():
        new_path.unlink()
    overrides = small_overrides(problem_path) if small else None
    start = time.perf_counter()
    try:
        rep = optimize(problem_path, new_path, device=device, trials=verify_trials, bench=False,
                       overrides=overrides)
        info["fuseforge"] = {
            "ok": True, "ext_name": rep.generated.ext_name, "build_s": round(rep.loaded.seconds, 2),
            "cached": rep.loaded.cached, "kernels": [k.name for k in rep.plan.kernels],
            "externs": [e.node.target for e in rep.plan.externs], "verify_passed": rep.verify.passed,
            "notes": rep.notes[:5],
        }
    except Exception as e:
        info["fuseforge"] = {"ok": False, "error": cause(e)}
    info["fuseforge"]["seconds"] = round(time.perf_counter() - start, 2)
    for mode in compile_modes:
        start = time.perf_counter()
        model = inputs = None
        try:
            torch._dynamo.reset()
            problem = load_problem(problem_path, overrides)
            model = problem.build(0).to(device)
            inputs = problem.inputs(1, device)
            with torch.no_grad():
                torch.compile(model, mode=mode)(*inputs)
            if device != "cpu":
                torch.cuda.synchronize()
            info["compile"][mode] = {"ok": True}
        except Exception as e:
            info["compile"][mode] = {"ok": False, "error": cause(e)}
        info["compile"][mode]["seconds"] = round(time.perf_counter() - start, 2)
        del model, inputs
        if device != "cpu":
            torch.cuda.empty_cache()
    return info


# --------------------------------------------------------------------------- child processes

_ACTIVE: set = set()   # the Child processes running (kill_children ends them)


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask; taskset narrows it), not the host's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _write_json(path, data) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(data, default=_json_default))
    os.replace(tmp, path)


def _warm_imports() -> None:
    """What every measuring process needs before its first step, done without touching the GPU."""
    import torch
    import torch._dynamo  # noqa: F401
    import torch._inductor.compile_fx  # noqa: F401
    from torch.utils.flop_counter import FlopCounterMode

    from . import bench, bench_report, build, ceilings, problem, verify  # noqa: F401
    with FlopCounterMode(display=False):
        torch.mm(torch.ones(2, 2), torch.ones(2, 2))


def _child_main(argv=None) -> int:
    """Entry of a worker process: run one prepare or measure spec, write its JSON result.

    A spec with "_wait" is a pre-started process: it imports and warms up, then waits for a
    line on stdin before it starts (and before it touches the GPU). The process ends with
    os._exit right after writing its result: no interpreter teardown to wait for.
    """
    spec_path, out_path = (argv or sys.argv[1:])[:2]
    spec = json.loads(Path(spec_path).read_text())
    kind = spec.pop("kind")
    spawned = spec.pop("_spawned", time.time())
    rc = 1
    try:
        from .build import prepare_environment
        prepare_environment()     # CUDA_HOME before anything imports torch.utils.cpp_extension
        if spec.pop("_wait", False):
            _warm_imports()
            sys.stdin.readline()
            spawned = time.time()
        startup = round(time.time() - spawned, 2)   # interpreter + imports not overlapped with other work
        if kind == "prepare":
            result = prepare_problem(**spec)
        else:
            result = measure_problem(**spec, on_update=lambda rec: _write_json(out_path, rec))
        result["startup_s"] = startup
        _write_json(out_path, result)
        rc = 0
    except BaseException as e:   # report anything, the parent records it
        traceback.print_exc()
        partial = json.loads(Path(out_path).read_text()) if Path(out_path).is_file() else {}
        partial.update(status="error", error=cause(e))
        _write_json(out_path, partial)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def _kill(proc) -> None:
    """End a child we started and everything it started (it leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path, lines: int = 6) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])[-800:]


def _exit_text(rc: int) -> str:
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"


class Child:
    """A fresh Python process running one spec; `wait=True` starts it early, warming up until go()."""

    def __init__(self, spec: dict, *, workdir, log_path, wait: bool = False):
        workdir, self.log_path = Path(workdir), Path(log_path)
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.new_path = spec.get("new_path")   # the generated file it loads (its build lock: kill())
        token = uuid.uuid4().hex[:12]
        self.spec_path, self.out_path = workdir / f"{token}.spec.json", workdir / f"{token}.out.json"
        self.wait = wait
        _write_json(self.spec_path, {**spec, "_spawned": time.time(), "_wait": wait})
        env = dict(os.environ)
        if spec.get("kind") == "measure":
            # the caches are warm: no pool of inductor compile workers to start (not in the cache key)
            env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + [p for p in [env.get("PYTHONPATH")] if p])
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [sys.executable, "-c", "from fuseforge.suite_bench import _child_main; _child_main()",
               str(self.spec_path), str(self.out_path)]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.PIPE if wait else subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        _ACTIVE.add(self)

    def kill(self) -> None:
        """End it and all it started; the lock it may hold on its extension's build goes too."""
        _kill(self.proc)
        _ACTIVE.discard(self)
        if self.new_path:
            from .build import release_build_lock
            release_build_lock(self.new_path)

    def go(self) -> None:
        if self.wait:
            try:
                self.proc.stdin.write(b"go\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass     # it died while warming up: finish() reports how

    def finish(self, timeout: float) -> tuple[str, dict | None, str | None]:
        """Wait (timeout counts from now) → (status 'ok'|'error'|'crashed'|'timeout', result, cause)."""
        try:
            rc = self.proc.wait(timeout=timeout)
            status = "ok" if rc == 0 else ("error" if rc == 1 else "crashed")
        except subprocess.TimeoutExpired:
            self.kill()
            rc, status = None, "timeout"
        finally:
            _ACTIVE.discard(self)
        result = None
        if self.out_path.is_file():
            try:
                result = json.loads(self.out_path.read_text())
            except json.JSONDecodeError:
                result = None
        self.cleanup()
        why = None
        if status == "timeout":
            why = f"timed out after {timeout:.0f} s"
        elif status == "crashed":
            why = f"the process died ({_exit_text(rc)}): {_tail(self.log_path)}"
        elif status == "error":
            why = (result or {}).get("error") or _tail(self.log_path)
        return status, result, why

    def cleanup(self) -> None:
        for p in (self.spec_path, self.out_path, Path(f"{self.out_path}.tmp")):
            p.unlink(missing_ok=True)


def run_child(spec: dict, *, timeout: float, workdir, log_path) -> tuple[str, dict | None, str | None]:
    """Run a spec in a fresh Python process: (status 'ok'|'error'|'crashed'|'timeout', result, cause)."""
    child = Child(spec, workdir=workdir, log_path=log_path)
    return child.finish(timeout)


def kill_children() -> None:
    for child in list(_ACTIVE):
        child.kill()


# --------------------------------------------------------------------------- the run

def run_info(config: dict, *, shard_text: str | None, device: str, ceilings: dict | None) -> dict:
    from .bench import environment
    env = environment() if device != "cpu" else {"torch": __import__("torch").__version__, "cuda": None}
    env.update(python=platform.python_version(), host=socket.gethostname(), cpus=usable_cpus(),
               visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    # an exported tree (git archive) has no .git of its own, and git would find an enclosing
    # checkout's HEAD: whoever exported it names the commit
    env["fuseforge_commit"] = os.environ.get("FUSEFORGE_COMMIT")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=SRC.parent, timeout=10)
        env["fuseforge_commit"] = env["fuseforge_commit"] or commit.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    # the checkout's HEAD can lag the files that ran (a copied working tree): name the sources too
    digest = hashlib.sha1()
    for f in sorted((SRC / "fuseforge").rglob("*.py")):
        digest.update(f.relative_to(SRC).as_posix().encode() + b"\0" + f.read_bytes())
    env["fuseforge_sources"] = digest.hexdigest()[:12]
    return {"run": time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "shard": shard_text, "env": env,
            "ceilings": ceilings, "config": config, "argv": sys.argv[1:]}


def _paths_for(out: Path, problem: Path) -> tuple[Path, Path]:
    key = problem_key(problem)
    tag = hashlib.sha1(key.encode()).hexdigest()[:6]
    level = level_of(problem)
    return (out / "generated" / level / f"{problem.stem}_{tag}_new.py",
            out / "logs" / level / f"{problem.stem}_{tag}")


def _summary_line(rec: dict) -> str:
    from rich.markup import escape
    v = rec.get("versions", {})
    name = escape(f"{rec['level']}/{rec['name']}")
    if rec.get("status") != "ok":
        where = f" in {rec['phase']}" if rec.get("phase") else ""
        return f"[red]✗ {name}: {rec.get('status')}{where}: {escape(str(rec.get('error', ''))[:300])}[/red]"
    parts = []
    for key, v_ in v.items():
        label = escape(key.replace("compile:", "compile "))
        if v_.get("ms") is not None:
            parts.append(f"{label} {v_['ms']:.3f}")
        else:
            parts.append(f"{label} [red]{'failed' if v_.get('error') else 'incorrect'}[/red]")
    sp = rec.get("speedup", {}).get("fuseforge/eager")
    tail = f"  → {sp:.2f}× eager" if sp else ""
    return f"✓ {name}: " + ", ".join(parts) + " ms" + tail


def run_suite(paths, out=DEFAULT_OUT, *, jobs: int | None = None, compile_modes=("default",),
              timeout: float = 300.0, shard_text: str | None = None, force: bool = False,
              retry_failed: bool = False, small: bool = False, min_trials: int = 30,
              max_trials: int = 100, verify_trials: int = 5, budget: float | None = None,
              batch: int = 32, device: str = "cuda", ceilings: dict | None = None,
              console=None, plots: bool = True, prestart: bool = True) -> list[dict]:
    """Prepare (in parallel) and measure (one by one) every pending problem; write the report.

    prestart: start the next problem's measuring process while the current one measures; it
    only imports and warms up on the CPU, and touches the GPU once the current one is done.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .bench_report import write_report
    console = console or Console()
    start = time.monotonic()
    deadline = start + budget if budget else None
    jobs = jobs or min(8, usable_cpus())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problems = find_problems(paths)
    if shard_text:
        problems = shard(problems, *parse_shard(shard_text))
    from .plan_gemm import tf32_mode
    config = {"small": small, "compile_modes": list(compile_modes), "device": device,
              "trials": [min_trials, max_trials], "verify_trials": verify_trials, "tf32": tf32_mode()}
    done = latest_records(read_jsonl(out / RESULTS))
    todo, skipped = pending(problems, done, config=config, force=force, retry_failed=retry_failed)
    console.print(f"fuseforge bench: {len(problems)} problem(s){f' (shard {shard_text})' if shard_text else ''}"
                  f", {len(skipped)} already in {out / RESULTS}"
                  f"{' (--force to redo)' if skipped else ''}, {len(todo)} to run → {out}")
    new_records: list[dict] = []
    try:
        if todo:
            if device != "cpu" and ceilings is None:
                from .ceilings import describe, measure_ceilings
                with console.status("measuring the GPU's ceilings (copy bandwidth, GEMM rates)…"):
                    ceilings = measure_ceilings()
                console.print(f"ceilings: {describe(ceilings)}")
            info = run_info(config, shard_text=shard_text, device=device, ceilings=ceilings)
            append_jsonl(out / RUNS, info)
            per_job = str(max(1, usable_cpus() // jobs))
            child_env = {"MAX_JOBS": per_job, "TORCHINDUCTOR_COMPILE_THREADS": per_job}
            for k, v in child_env.items():
                os.environ.setdefault(k, v)
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[current]}"), console=console)
            with progress:
                t_prep = progress.add_task("prepare", total=len(todo), current="")
                t_meas = progress.add_task("measure", total=len(todo), current="")
                for b in range(0, len(todo), max(1, batch)):
                    chunk = todo[b:b + max(1, batch)]
                    if deadline and time.monotonic() >= deadline:
                        console.print(f"[yellow]budget of {budget:.0f} s spent: {len(todo) - b} problem(s) "
                                      "left for a later run (it resumes)[/yellow]")
                        break
                    prepared = _prepare_batch(chunk, out, jobs=jobs, compile_modes=compile_modes,
                                              small=small, device=device, timeout=timeout,
                                              deadline=deadline, progress=progress, task=t_prep)
                    queue = [p for p in chunk if p in prepared]
                    ahead = None      # the next problem's process, started early to import and warm up
                    stop = False
                    for k, problem in enumerate(queue):
                        remaining = deadline - time.monotonic() if deadline else math.inf
                        if remaining <= 1:
                            stop = True
                            break
                        child = ahead or _measure_child(problem, prepared[problem], out, config, ceilings)
                        ahead = None
                        if k + 1 < len(queue) and prestart:
                            nxt = queue[k + 1]
                            ahead = _measure_child(nxt, prepared[nxt], out, config, ceilings, wait=True)
                        progress.update(t_meas, current=f"{level_of(problem)}/{problem.stem}")
                        started = time.monotonic()
                        child.go()
                        status, result, why = child.finish(min(timeout, remaining))
                        progress.advance(t_meas)
                        if status == "timeout" and remaining < timeout:
                            console.print(f"[yellow]budget spent while measuring {problem_key(problem)}: "
                                          "not recorded (a later run resumes)[/yellow]")
                            stop = True
                            break
                        rec = _measure_record(problem, prepared[problem], out, status, result, why,
                                              run=info["run"], config=config, started=started)
                        append_jsonl(out / RESULTS, rec)
                        new_records.append(rec)
                        progress.console.print(_summary_line(rec), highlight=False)
                    if ahead is not None:
                        ahead.kill()
                        ahead.cleanup()
                    if stop:
                        break
                progress.update(t_prep, current="")
                progress.update(t_meas, current="")
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: writing the report of what was measured[/yellow]")
        kill_children()
    finally:
        kill_children()
        import shutil
        shutil.rmtree(out / ".work", ignore_errors=True)
        records = list(latest_records(read_jsonl(out / RESULTS)).values())
        runs = read_jsonl(out / RUNS)
        if records:
            paths_written = write_report(out, records, runs, plots=plots)
            console.print(f"report: {paths_written['report']}  ({len(records)} problem(s); "
                          f"{time.monotonic() - start:.0f} s)")
    return new_records


def _prepare_batch(chunk, out: Path, *, jobs, compile_modes, small, device, timeout, deadline,
                   progress, task) -> dict:
    """Prepare a batch in parallel; returns {problem: prepare info} for those that were started."""
    results: dict = {}
    stop = threading.Event()

    def one(problem):
        if stop.is_set() or (deadline and time.monotonic() >= deadline):
            stop.set()
            return problem, None
        new_path, logs = _paths_for(out, problem)
        spec = {"kind": "prepare", "problem_path": str(problem), "new_path": str(new_path),
                "compile_modes": list(compile_modes), "small": small, "device": device}
        started = time.monotonic()
        limit = min(timeout, deadline - started) if deadline else timeout
        status, result, why = run_child(spec, timeout=limit, workdir=out / ".work",
                                        log_path=Path(f"{logs}.prepare.log"))
        if status == "timeout" and limit < timeout:     # stopped by the run's budget, not the problem
            return problem, None
        info = result if status == "ok" and result else {"fuseforge": {}, "compile": {}}
        info.update(status=status, seconds=round(time.monotonic() - started, 2))
        if status != "ok":
            info["error"] = why
        info["new_path"] = str(new_path)
        return problem, info

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, p) for p in chunk]
        for fut in as_completed(futures):
            problem, info = fut.result()
            progress.advance(task)
            if info is None:
                continue
            results[problem] = info
            progress.update(task, current=f"{level_of(problem)}/{problem.stem}")
            if info["status"] != "ok":
                from rich.markup import escape
                progress.console.print(f"[yellow]prepare {escape(problem_key(problem))}: {info['status']}: "
                                       f"{escape(str(info.get('error'))[:300])}[/yellow]", highlight=False)
    return results


def _measure_child(problem: Path, prep: dict, out: Path, config: dict, ceilings, *, wait: bool = False) -> Child:
    """The measuring process of one problem (not started on its work until go())."""
    ff = prep.get("fuseforge", {})
    if ff.get("ok"):
        ff_error = None
    elif prep.get("status") != "ok":
        ff_error = f"prepare {prep['status']}: {prep.get('error')}"
    else:
        ff_error = ff.get("error") or "prepare failed"
    _, logs = _paths_for(out, problem)
    spec = {"kind": "measure", "problem_path": str(problem), "new_path": prep.get("new_path"),
            "compile_modes": config["compile_modes"], "ceilings": ceilings, "small": config["small"],
            "device": config["device"], "min_trials": config["trials"][0], "max_trials": config["trials"][1],
            "verify_trials": config["verify_trials"], "ext_name": ff.get("ext_name"),
            "fuseforge_error": ff_error}
    return Child(spec, workdir=out / ".work", log_path=Path(f"{logs}.measure.log"), wait=wait)


def _measure_record(problem: Path, prep: dict, out: Path, status, result, why, *, run: str, config: dict,
                    started: float) -> dict:
    """The record of a measuring process, whatever became of it."""
    _, logs = _paths_for(out, problem)
    rec = result if result and result.get("problem") else base_record(problem)
    rec.setdefault("versions", {})
    rec.setdefault("config", config)
    if status != "ok":   # timeout/crashed: the partial record keeps what was measured and its phase
        rec["status"] = status
        rec["error"] = (rec.get("error") or why) if status == "error" else why
    rec.update(run=run, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               measure_s=round(time.monotonic() - started, 2),
               prepare={k: v for k, v in prep.items() if k != "new_path"},
               modelnew=prep.get("new_path"))
    rec["log"] = f"{logs}.measure.log"
    return rec


# --------------------------------------------------------------------------- merge

def merge(inputs, out, *, console=None, plots: bool = True) -> list[dict]:
    """Join shard outputs (directories or results.jsonl files) into out; write the report there."""
    from .bench_report import write_report
    records, runs = [], []
    for item in map(Path, inputs):
        jl = item / RESULTS if item.is_dir() else item
        if not jl.is_file():
            raise FileNotFoundError(f"{item}: no {RESULTS} there")
        records += read_jsonl(jl)
        runs += read_jsonl(jl.parent / RUNS)
    best: dict[str, dict] = {}
    for rec in records:   # the same problem in two shards: a completed record beats a failed one, then newer
        key = rec.get("problem")
        if key is None:
            continue
        old = best.get(key)
        rank = (rec.get("status") == "ok", rec.get("finished", ""))
        if old is None or rank >= (old.get("status") == "ok", old.get("finished", "")):
            best[key] = rec
    unique_runs = list({r.get("run"): r for r in runs}.values())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged = [best[k] for k in sorted(best)]
    tmp = out / f"{RESULTS}.tmp"
    tmp.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in merged))
    os.replace(tmp, out / RESULTS)
    tmp = out / f"{RUNS}.tmp"
    tmp.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in unique_runs))
    os.replace(tmp, out / RUNS)
    written = write_report(out, merged, unique_runs, plots=plots)
    if console:
        console.print(f"merged {len(merged)} problem(s) from {len(inputs)} input(s) → {written['report']}")
    return merged


# --------------------------------------------------------------------------- command line

def add_bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="eager vs torch.compile vs fuseforge over many problems (GPU)",
                       description="Benchmark problem files on a GPU: `fuseforge bench PATHS...`, or join "
                                   "shard outputs: `fuseforge bench merge RESULTS... -o DIR`.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="problem files or directories (searched for *.py); or `merge` then result dirs")
    p.add_argument("-o", "--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--jobs", type=int, default=None,
                   help="parallel prepare workers (default min(8, CPU count))")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds per problem for each phase, prepare and measure (default 300)")
    p.add_argument("--compile-modes", default="default",
                   help="comma-separated torch.compile modes, e.g. default,max-autotune-no-cudagraphs "
                        "('none' for no torch.compile)")
    p.add_argument("--shard", metavar="i/n", help="run shard i of n (1-based) of the sorted problem list")
    p.add_argument("--force", action="store_true", help="re-run problems already in results.jsonl")
    p.add_argument("--retry-failed", action="store_true", help="re-run problems whose record failed")
    p.add_argument("--small", action="store_true", help="use each problem's SMALL sizes")
    from .plan_gemm import add_gemm_option
    add_gemm_option(p)
    p.add_argument("--trials", type=int, default=100, help="most timed calls per version (default 100)")
    p.add_argument("--min-trials", type=int, default=30, help="fewest timed calls per version (default 30)")
    p.add_argument("--verify-trials", type=int, default=5, help="fresh-input checks of ModelNew (default 5)")
    p.add_argument("--budget", type=float, default=None,
                   help="wall-clock seconds for the whole run: no new problem starts after it "
                        "(the rest is left for a resumed run)")
    p.add_argument("--batch", type=int, default=32, help="problems prepared before measuring (default 32)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-prestart", action="store_true",
                   help="do not start the next measuring process (imports only) while one measures")


def main_bench(args, console) -> int:
    plots = not args.no_plots
    if args.paths[0] == "merge":
        if len(args.paths) < 2:
            console.print("[red]usage: fuseforge bench merge RESULTS... -o DIR[/red]")
            return 2
        try:
            merge(args.paths[1:], args.out, console=console, plots=plots)
        except FileNotFoundError as e:
            console.print(f"[red]error:[/red] {e}")
            return 2
        return 0
    import torch
    if not torch.cuda.is_available():
        console.print("[red]fuseforge bench needs a CUDA GPU[/red]: it times eager, torch.compile and "
                      "ModelNew on one and measures the GPU's ceilings. No GPU is visible here "
                      "(`fuseforge optimize` verifies on the CPU; `fuseforge bench merge` works anywhere).")
        return 2
    modes = [m.strip() for m in args.compile_modes.split(",") if m.strip() and m.strip() != "none"]
    try:
        shard_text = args.shard
        if shard_text:
            parse_shard(shard_text)
        paths = find_problems(args.paths)
    except (ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    if not paths:
        console.print("[red]error:[/red] no problem files found")
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    run_suite(args.paths, args.out, jobs=args.jobs, compile_modes=modes, timeout=args.timeout,
              shard_text=shard_text, force=args.force, retry_failed=args.retry_failed, small=args.small,
              min_trials=args.min_trials, max_trials=args.trials, verify_trials=args.verify_trials,
              budget=args.budget, batch=args.batch, console=console, plots=plots,
              prestart=not args.no_prestart)
    return 0
