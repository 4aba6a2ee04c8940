"""The parent side: start the worker, watch it, survive it.

The worker runs as `python -m fuseforge.check.worker` in a new session (its own process
group, so that compilers and anything the candidate starts are killed with it). The parent
polls every 0.1 s:
- the events file, for the stage the worker is in and the results so far;
- the stage's age: the worker's own start (its imports), the import (build) stage and
  torch.compile get `build_timeout`, every other stage (one trial, the timing, ...) gets
  `timeout`; past it the group is killed and the result says which stage hung;
- the resident memory of the whole process tree (the worker, ninja/nvcc, anything the
  candidate forked): above `memory_limit` the group is killed ("out of host memory").
  On CPU runs the worker also caps its own address space (RLIMIT_AS) before the first
  model call, so an over-allocation there fails as a clean MemoryError. CUDA runs cannot
  use RLIMIT_AS (the driver reserves huge virtual ranges); their GPU memory is capped with
  torch.cuda.set_per_process_memory_fraction (the caching allocator's limit: memory a
  candidate gets with cudaMalloc from its own C++ bypasses it).
A worker that exits without its final event (a segfault, os._exit, an abort in CUDA code)
is reported with its exit code or signal and the stage it was in.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC_ROOT = str(Path(__file__).resolve().parents[2])
TERM_GRACE_S = 3.0   # a timed-out worker's time to unwind after SIGTERM (_terminate)
POLL_S = 0.1


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out += [int(c) for c in f.read().split()]
            except OSError:
                continue
    except OSError:
        return out
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (Linux /proc)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
        todo += _children(p)
    return total


def total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 16 << 30


class EventLog:
    """Reads the worker's JSON lines as they appear; keeps the merged state."""

    def __init__(self, path: Path):
        self.path = path
        self.pos = 0
        self.data: dict = {}
        self.flags: list[dict] = []
        self.notes: list[str] = []
        self.skipped: list[dict] = []
        self.error: dict | None = None
        self.done = False
        self.stage: tuple[str, str] | None = None
        self.stage_started = time.monotonic()
        self.stages: list[dict] = []

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind("\n")
        if end < 0:
            return
        self.pos += len(chunk[:end + 1].encode())
        for line in chunk[:end].splitlines():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.apply(ev)

    def apply(self, ev: dict):
        if "stage" in ev:
            # the worker stamps stages with CLOCK_MONOTONIC, which is system-wide on Linux
            now = ev.get("t", time.monotonic())
            if self.stage:
                self.stages.append({"stage": self.stage[0], "seconds": round(now - self.stage_started, 2)})
            self.stage, self.stage_started = (ev["stage"], ev.get("limit", "run")), now
        elif "set" in ev:
            self.data[ev["set"]] = ev.get("value")
        elif "flag" in ev:
            self.flags.append({"id": ev["flag"], "severity": ev.get("severity", "error"),
                               "message": ev.get("message", ""), "source": "run"})
        elif "note" in ev:
            self.notes.append(ev["note"])
        elif "skipped" in ev:
            self.skipped.append({"what": ev["skipped"], "why": ev.get("why", "")})
        elif "error" in ev:
            if self.error is None:
                self.error = {"kind": ev["error"], "message": ev.get("message", ""), "log": ev.get("log", ""),
                              "stage": self.stage[0] if self.stage else None}
        elif ev.get("done"):
            self.done = True

    def close_stage(self):
        if self.stage:
            self.stages.append({"stage": self.stage[0],
                                "seconds": round(time.monotonic() - self.stage_started, 2)})
            self.stage = None


def run_worker(spec: dict, *, timeout: float, build_timeout: float, memory_limit: int | None,
               workdir: str | None = None, log_tail: int = 6000) -> EventLog:
    tmp = tempfile.TemporaryDirectory(prefix="fuseforge-check-") if workdir is None else None
    root = Path(workdir or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    spec_path, events_path, log_path = root / "spec.json", root / "events.jsonl", root / "worker.log"
    spec_path.write_text(json.dumps(spec))
    events_path.write_text("")
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    log = EventLog(events_path)
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "fuseforge.check.worker", str(spec_path), str(events_path)],
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        killed = None
        peak = 0
        try:
            while True:
                rc = proc.poll()
                log.poll()
                if rc is not None:
                    break
                # (before its first event the worker is importing torch, none of the candidate's
                # code: a loaded machine must not fail a tight --timeout there)
                stage, limit = log.stage or ("start", "build")
                allowed = build_timeout if limit == "build" else timeout
                if time.monotonic() - log.stage_started > allowed:
                    killed = ("timeout", f"no progress for {allowed:g} s in stage '{stage}': killed "
                                         "(a hang or a limit too small for this problem: see --timeout)")
                    break
                if memory_limit:
                    rss = tree_rss(proc.pid)
                    peak = max(peak, rss)
                    if rss > memory_limit:
                        killed = ("out_of_memory", f"host memory of the worker and its children reached "
                                                   f"{rss / 2**30:.1f} GiB (limit {memory_limit / 2**30:.1f} GiB) "
                                                   f"in stage '{stage}': killed")
                        break
                time.sleep(POLL_S)
        finally:
            if killed and killed[0] == "timeout":
                _terminate(proc)
            _kill_group(proc)
        rc = proc.wait()
    log.poll()
    stage = log.stage[0] if log.stage else None
    log.close_stage()
    tail = _tail(log_path, log_tail)
    if killed and stage == "torch.compile":   # the baseline's compiler, not the candidate: a skip
        log.skipped.append({"what": "torch.compile timing", "why": killed[1]})
        log.done = True
    elif killed:
        log.error = {"kind": killed[0], "message": killed[1], "stage": stage, "log": tail}
    elif not log.done and log.error is None:
        if rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            what = f"the worker was killed by {name} in stage '{stage}'"
        else:
            what = f"the worker exited with code {rc} in stage '{stage}' before finishing"
        log.error = {"kind": "crash", "message": what + " (a crash or an exit in the candidate's code)",
                     "stage": stage, "log": tail, "returncode": rc}
    elif log.error is not None and not log.error.get("log"):
        log.error["log"] = tail
    log.data["peak_host_memory_bytes"] = peak or None
    log.data["worker_log_tail"] = tail
    if tmp is not None:
        tmp.cleanup()
    return log


def _terminate(proc: subprocess.Popen, grace: float = TERM_GRACE_S):
    """SIGTERM to the worker and a moment to unwind (worker.Terminated: the `finally`s on its stack
    run, torch's extension builder unlocking its build directory in one) before _kill_group. Not
    for a worker over its memory limit: that one goes at once."""
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
        pass


def _kill_group(proc: subprocess.Popen):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return


def _tail(path: Path, n: int) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-n:].decode("utf-8", "replace")
