"""sweep: run optimize over many problem files and say, for each one that fails, why.

`fuseforge sweep [PATHS...]` finds the problem files (directories are searched recursively;
README files and names starting with `_` are skipped), runs `optimize(..., bench=False)` on
each, writes ModelNew files under `<out>/<level>/<name>_new.py` (the level is the problem's
folder name) and records one status per problem:

    pass           built and verified
    verify-fail    built, but ModelNew does not compute the reference's function
    build-error    the generated C++/CUDA did not compile or link
    capture-error  torch.export could not capture the model (or the IR cannot hold it)
    problem-error  the problem file itself is unusable (import, missing names, fails on its inputs)
    crash          anything else: an unexpected exception in the compiler, a dead worker, a timeout

Problems run one at a time in a worker process. An exception is caught per problem; a worker
that dies (a segfault in a generated kernel) or runs past the timeout is replaced, and the
sweep goes on with the next problem.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUSES = ("pass", "verify-fail", "build-error", "capture-error", "problem-error", "crash")
SUITE = Path(__file__).resolve().parents[2] / "suite"
DEFAULT_OUT = Path("out") / "sweep"


@dataclass
class SweepResult:
    problem: str                      # <level>/<name>
    path: str
    status: str                       # one of STATUSES
    cause: str = ""                   # first line of the error ("" when passed)
    seconds: float = 0.0
    output: str | None = None         # the ModelNew file, when one was written
    kernels: int | None = None        # generated kernels / ATen externs in the plan
    externs: int | None = None
    max_abs: float | None = None      # largest abs error seen by verify
    build_cached: bool | None = None
    detail: str = ""                  # the tail of the traceback for a crash


@dataclass
class SweepReport:
    results: list[SweepResult]
    config: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.results)
        return {s: c.get(s, 0) for s in STATUSES}

    @property
    def failures(self) -> list[SweepResult]:
        return [r for r in self.results if r.status != "pass"]

    def as_dict(self) -> dict:
        return {"config": self.config, "counts": self.counts, "total": len(self.results),
                "results": [asdict(r) for r in self.results]}


def discover(paths=None) -> list[Path]:
    """The problem files under `paths` (files as given, directories recursively), sorted."""
    found: list[Path] = []
    for p in [Path(p) for p in (paths or [SUITE])]:
        if p.is_dir():
            found += [f for f in sorted(p.rglob("*.py"))
                      if not f.name.startswith("_") and not f.stem.upper().startswith("README")]
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    seen, unique = set(), []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def problem_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0][:400] if lines else ""


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, cause) for an exception raised by optimize."""
    from .errors import BuildError, CaptureError, ProblemError, VerifyError
    kinds = [(ProblemError, "problem-error"), (CaptureError, "capture-error"),
             (BuildError, "build-error"), (VerifyError, "verify-fail")]
    for cls, status in kinds:
        if isinstance(exc, cls):
            return status, _first_line(str(exc)) or cls.__name__
    message = _first_line(str(exc))
    return "crash", f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run_one(path, output, *, small: bool = False, device: str = "auto", trials: int = 5) -> SweepResult:
    """optimize one problem with bench=False; never raises (except KeyboardInterrupt)."""
    from .pipeline import optimize
    path = Path(path)
    result = SweepResult(problem_id(path), str(path), "crash")
    start = time.perf_counter()
    Path(output).unlink(missing_ok=True)      # never report a stale file from an earlier sweep
    try:
        report = optimize(path, output, device=device, trials=trials, bench=False, small=small)
    except (Exception, SystemExit) as e:
        result.status, result.cause = classify(e)
        if result.status == "crash":
            result.detail = "".join(traceback.format_exception(type(e), e, e.__traceback__))[-3000:]
        if Path(output).exists():
            result.output = str(output)
    else:
        result.output = str(report.output)
        result.kernels = len(report.plan.kernels)
        result.externs = len(report.plan.externs)
        result.max_abs = report.verify.max_abs
        result.build_cached = report.loaded.cached
        if report.verify.passed:
            result.status = "pass"
        else:
            result.status = "verify-fail"
            result.cause = _first_line(report.verify.failures[0] if report.verify.failures else
                                       "verification failed")
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def output_path(path: Path, out_dir) -> Path:
    return Path(out_dir) / path.parent.name / f"{path.stem}_new.py"


# ------------------------------------------------------------------ the worker process

def _worker_main(conn) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(asdict(run_one(**job)))


class _Worker:
    """One child process that runs problems one at a time; replaced when it dies or hangs."""

    def __init__(self):
        self.proc = None
        self.conn = None

    def _start(self):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def run(self, job: dict, timeout: float | None) -> SweepResult:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        start = time.perf_counter()
        self.conn.send(job)
        path = Path(job["path"])
        if self.conn.poll(timeout):
            try:
                return SweepResult(**self.conn.recv())
            except EOFError:
                self.proc.join(5)
                code = self.proc.exitcode
                self.proc = None
                why = (f"signal {-code} ({signal.Signals(-code).name})" if code is not None and code < 0
                       else f"exit code {code}")
                return SweepResult(problem_id(path), str(path), "crash",
                                   f"the worker process died ({why})",
                                   round(time.perf_counter() - start, 2))
        self.stop(kill=True)
        return SweepResult(problem_id(path), str(path), "crash", f"timed out after {timeout:.0f} s",
                           round(time.perf_counter() - start, 2))

    def stop(self, kill: bool = False):
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                self.proc.kill()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.proc = None


# ------------------------------------------------------------------ the sweep

def run_sweep(paths=None, *, small: bool = False, device: str = "auto", trials: int = 5,
              out_dir=DEFAULT_OUT, timeout: float | None = 900, isolate: bool = True,
              console=None, json_path=None) -> SweepReport:
    """Optimize every problem under `paths`; one failure never stops the others. With
    `json_path`, the report so far is rewritten after every problem (an interrupted sweep
    keeps what it did; "complete" says whether it finished)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console()
    files = discover(paths)
    config = {"paths": [str(p) for p in (paths or [SUITE])], "small": small, "device": device,
              "trials": trials, "out": str(out_dir), "timeout_s": timeout}
    results: list[SweepResult] = []
    worker = _Worker() if isolate else None
    columns = (TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("", total=len(files))
            for path in files:
                name = problem_id(path)
                progress.update(task, description=name)
                job = {"path": str(path), "output": str(output_path(path, out_dir)), "small": small,
                       "device": device, "trials": trials}
                r = worker.run(job, timeout) if worker else run_one(**job)
                results.append(r)
                style = {"pass": "green"}.get(r.status, "red")
                cause = f"  [dim]{r.cause}[/dim]" if r.cause else ""
                progress.console.print(f"[{style}]{r.status:>13}[/{style}]  {name}  "
                                       f"[dim]{r.seconds:.1f} s[/dim]{cause}", highlight=False)
                progress.advance(task)
                if json_path:
                    write_json(SweepReport(results, config), json_path, complete=len(results) == len(files))
    finally:
        if worker:
            worker.stop()
    return SweepReport(results, config)


def write_json(report: SweepReport, path, *, complete: bool) -> None:
    import json
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps({**report.as_dict(), "complete": complete}, indent=2))
    tmp.replace(path)


def print_summary(report: SweepReport, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    failures = report.failures
    if failures:
        table = Table(title=f"{len(failures)} of {len(report.results)} problems failed",
                      title_justify="left")
        table.add_column("problem", no_wrap=True)
        table.add_column("status", no_wrap=True, style="red")
        table.add_column("cause", overflow="fold")
        for r in failures:
            table.add_row(r.problem, r.status, r.cause)
        console.print(table)
    counts = ", ".join(f"{status} {n}" for status, n in report.counts.items() if n)
    verdict = "[green]all passed[/green]" if not failures else "[red]failures[/red]"
    console.print(f"sweep: {len(report.results)} problems: {counts or 'none'} ({verdict})")


def add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="optimize every problem under PATHS (default: suite/) and "
                                     "report what failed")
    p.add_argument("paths", nargs="*", help="problem files or directories (default: the suite/ directory)")
    p.add_argument("--small", action="store_true", help="use each problem's SMALL sizes")
    from .plan_gemm import add_gemm_option
    add_gemm_option(p)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto (cuda if available), cuda or cpu")
    p.add_argument("--trials", type=int, default=5, help="verification trials per problem")
    p.add_argument("--json", help="write every result as JSON to this file (rewritten after each problem)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where ModelNew files go (<out>/<level>/<name>_new.py)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per problem before it counts as a crash")


def main_sweep(args, console) -> int:
    try:
        files = discover(args.paths or None)
    except FileNotFoundError as e:
        console.print(f"[red]error:[/red] {e}")
        return 1
    if not files:
        console.print("[red]error:[/red] no problem files found")
        return 1
    report = run_sweep(args.paths or None, small=args.small, device=args.device, trials=args.trials,
                       out_dir=args.out, timeout=args.timeout, console=console, json_path=args.json)
    print_summary(report, console)
    return 0 if not report.failures else 1
