"""The child process of `fuseforge check`: builds and runs the candidate beside the reference.

    python -m fuseforge.check.worker SPEC.json EVENTS.jsonl

Everything it learns goes to EVENTS as JSON lines, as soon as it is known, so that a crash,
hang or kill leaves the parent with everything up to that point:
  {"stage": name, "limit": "build"|"run"}   a stage begins (the parent's watchdog uses it)
  {"set": key, "value": v}                   a result field
  {"flag": id, "severity": s, "message": m}  something suspicious
  {"note": text} / {"skipped": what, "why": why}
  {"error": kind, "message": m, "log": l}    the run cannot go on (build, crash in forward, ...)
  {"done": true}                             finished normally

Order of work (see check/__init__.py for why):
  reference: load, probe run (FLOPs, ops used, output sizes) · guards snapshot ·
  import the candidate (= build) · guards · construct both after the same seed ·
  trials (candidate first, on clones, after poisoning free memory; settle; checks;
  then the reference, a float64 reference, comparisons) · a same-objects recompute
  check · on a GPU: ceilings, timing, event-vs-wall, torch.compile, roofline.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import traceback

# Bound before the candidate exists: the harness's own clocks and synchronization.
_perf_counter = time.perf_counter
_sleep = time.sleep

import torch  # noqa: E402

from ..build import prepare_environment  # noqa: E402
from . import memory  # noqa: E402
from .compare import Comparison, compare, error_vs  # noqa: E402
from .guards import Guards, OpRecorder  # noqa: E402

_cuda_sync = torch.cuda.synchronize
_Event = torch.cuda.Event
_no_grad = torch.no_grad
_manual_seed = torch.manual_seed

SETTLE_S = 0.05               # wait after a call before looking for late writes
THREAD_JOIN_S = 5.0           # longest wait for threads a call left running
WARN_SETTINGS = ("torch.backends.cudnn.benchmark", "torch.get_num_threads()")


class Terminated(BaseException):
    """SIGTERM from the runner (a stage past its time limit): unwinds the worker through the
    `finally`s on its stack before it exits. torch's extension builder unlocks the build directory
    in one; a SIGKILL left the lock, and the next check of the same candidate waited on it until its
    build timeout."""


def _terminated(signum, frame):
    raise Terminated()


class Stop(Exception):
    """The run cannot continue; the event has been written."""


class CandidateError(Exception):
    def __init__(self, kind: str, message: str, log: str = ""):
        super().__init__(message)
        self.kind, self.message, self.log = kind, message, log


def classify(exc: BaseException) -> str:
    name = type(exc).__name__
    msg = str(exc)
    low = msg.lower()
    if isinstance(exc, MemoryError) or name == "OutOfMemoryError" or "out of memory" in low or \
            "can't allocate memory" in low or "cannot allocate memory" in low:
        return "out_of_memory"
    if name == "AcceleratorError" or "cuda error" in low or "cudaerror" in low or \
            "cublas_status" in low or "cudnn_status" in low or "illegal memory access" in low or \
            "device-side assert" in low:
        return "cuda_error"
    if isinstance(exc, SystemExit):
        return "exit"
    return "runtime_error"


def _tb(exc: BaseException, limit: int = 4000) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text[-limit:]


class Events:
    def __init__(self, path: str):
        self.f = open(path, "a", buffering=1)

    def emit(self, **kw):
        self.f.write(json.dumps(kw, default=str) + "\n")
        self.f.flush()

    def stage(self, name: str, limit: str = "run"):
        self.emit(stage=name, limit=limit, t=time.monotonic())

    def set(self, key: str, value):
        self.emit(set=key, value=value)

    def flag(self, fid: str, message: str, severity: str = "error"):
        self.emit(flag=fid, severity=severity, message=message)

    def note(self, text: str):
        self.emit(note=text)

    def skipped(self, what: str, why: str):
        self.emit(skipped=what, why=why)


def _sync(device: str):
    if device.startswith("cuda"):
        _cuda_sync()


def _clone(xs: list) -> list:
    return [x.clone() if isinstance(x, torch.Tensor) else copy.deepcopy(x) for x in xs]


def _to64(xs: list) -> list:
    return [x.to(torch.float64) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in xs]


def _state(model: torch.nn.Module) -> dict:
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


class Worker:
    def __init__(self, spec: dict, events: Events):
        self.spec = spec
        self.ev = events
        self.device = spec["device"]
        self.seed = int(spec.get("seed", 42))
        self.atol, self.rtol = spec.get("atol"), spec.get("rtol")
        self.flags_seen: set[tuple] = set()
        self.correct_trials = 0

    # ------------------------------------------------------------------ helpers
    def flag(self, fid: str, message: str, severity: str = "error"):
        key = (fid, message)
        if key not in self.flags_seen:
            self.flags_seen.add(key)
            self.ev.flag(fid, message, severity)

    def guard_check(self, when: str):
        found = self.guards.check()
        groups: dict[tuple, list[str]] = {}
        for line in found:
            sev = "warning" if line.startswith(WARN_SETTINGS) else "error"
            fid = "global-setting" if "changed from" in line else "monkeypatch"
            if "mode stacks" in line:
                fid = "torch-mode"
            elif "global module hooks" in line:
                fid = "global-hook"
            elif "dispatcher kernels" in line:
                fid = "dispatch-override"
            groups.setdefault((fid, sev), []).append(line)
        for (fid, sev), lines in groups.items():
            undone = "" if fid == "dispatch-override" else "; restored"
            self.flag(fid, f"{'; '.join(lines)} ({when}){undone}", sev)
        if found:
            self.guards.restore()
            left = self.guards.check()
            if left:
                self.ev.note(f"could not undo: {'; '.join(left)[:500]}")
        return found

    def candidate(self, fn, *args):
        """Run candidate code; its failures become CandidateError with a kind."""
        try:
            return fn(*args)
        except BaseException as e:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from candidate code too
            if isinstance(e, (CandidateError, Terminated)):
                raise
            raise CandidateError(classify(e), f"{type(e).__name__}: {e}"[:2000], _tb(e)) from None

    # ------------------------------------------------------------------ stages
    def run(self):
        ev, dev = self.ev, self.device
        ev.stage("start")
        prepare_environment()
        ev.set("device", dev)
        if dev.startswith("cuda"):
            if not torch.cuda.is_available():
                ev.emit(error="setup", message="--device cuda but no GPU is visible")
                raise Stop
            frac = self.spec.get("gpu_memory_fraction")
            if frac:
                torch.cuda.set_per_process_memory_fraction(float(frac))
            from ..bench import environment
            ev.set("env", environment())
        self.load_reference()
        self.guards = Guards(self.problem.module, self.probe_model, self.ops)
        del self.probe_model
        self.import_candidate()
        self.construct()
        self.limit_host_memory()
        self.trials()
        self.recompute()
        self.bench()
        ev.emit(done=True)

    def load_reference(self):
        from ..problem import load_problem
        self.ev.stage("reference")
        try:
            self.problem = load_problem(self.spec["reference"], self.spec.get("overrides") or {})
            model = self.problem.build(self.seed).to(self.device)
            inputs = self.problem.inputs(0, self.device)
        except Exception as e:  # noqa: BLE001 - the reference's own failure
            self.ev.emit(error="reference_error", message=str(e)[:2000], log=_tb(e))
            raise Stop from None
        from torch.utils.flop_counter import FlopCounterMode
        rec = OpRecorder()
        try:
            with _no_grad(), FlopCounterMode(display=False) as fc:
                with rec:
                    out = model(*inputs)
            _sync(self.device)
        except Exception as e:  # noqa: BLE001
            self.ev.emit(error="reference_error", message=f"the reference fails on its own inputs: "
                                                            f"{type(e).__name__}: {e}"[:2000], log=_tb(e))
            raise Stop from None
        self.ops = rec.ops
        self.flops = int(fc.get_total_flops())
        self.min_bytes = memory.tensor_bytes([inputs, list(_state(model).values()), out])
        self.out_sizes = [t.numel() * t.element_size() for t in memory.tensors(out)]
        self.in_sizes = [t.numel() * t.element_size() for t in memory.tensors(inputs)]
        self.ref_fps = {memory.fingerprint(out)}
        self.probe_model = model
        self.ev.set("reference_ops", sorted(self.ops))
        self.ev.set("flops", self.flops)
        self.ev.set("min_bytes", self.min_bytes)
        for k, x in enumerate(inputs):
            if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() > 1:
                if not bool(x.any()):
                    self.flag("weak-inputs", f"get_inputs()[{k}] is all zeros: a check on it proves little",
                              "warning")
                elif bool((x == x.reshape(-1)[0]).all()):
                    self.flag("weak-inputs", f"get_inputs()[{k}] is constant: a check on it proves little",
                              "warning")
        del out, inputs

    def import_candidate(self):
        self.ev.stage("import", limit="build")
        path = self.spec["candidate"]
        name = "_fuseforge_candidate"
        start = _perf_counter()
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, Terminated):
                raise
            msg = f"{type(e).__name__}: {e}"
            build = "Error building extension" in msg or "ninja" in msg.lower() or \
                type(e).__name__ in ("CalledProcessError",) or "error:" in msg and ".cu" in msg
            self.ev.set("compiled", False)
            self.ev.emit(error="build_error" if build else "import_error", message=_first_error(msg),
                         log=msg[-8000:] if build else _tb(e))
            raise Stop from None
        self.ev.set("build_seconds", round(_perf_counter() - start, 2))
        self.guard_check("after importing the candidate")
        if not hasattr(module, "ModelNew"):
            self.ev.set("compiled", False)
            self.ev.emit(error="import_error", message="the candidate file defines no ModelNew")
            raise Stop
        self.ev.set("compiled", True)
        self.module = module

    def construct(self):
        self.ev.stage("construct")
        init = self.problem.init_args()
        self.ref = self.problem.build(self.seed)
        try:
            self.ref64 = copy.deepcopy(self.ref).to(torch.float64)
        except Exception as e:  # noqa: BLE001
            self.ref64 = None
            self.ev.note(f"no float64 reference: {type(e).__name__}: {e}")
        _manual_seed(self.seed)
        try:
            self.new = self.candidate(lambda: self.module.ModelNew(*init))
        except CandidateError as e:
            self.ev.emit(error=e.kind, message=f"ModelNew(*get_init_inputs()) failed: {e.message}", log=e.log)
            raise Stop from None
        self.guard_check("after constructing ModelNew")
        ref_sd, new_sd = self.ref.state_dict(), self.new.state_dict()
        same = list(ref_sd) == list(new_sd) and all(
            ref_sd[k].shape == new_sd[k].shape and memory.same_bits(ref_sd[k], new_sd[k]) for k in ref_sd)
        self.ev.set("same_parameters", same)
        if not same:
            self.ev.note("ModelNew's state_dict differs from Model's after the same seed "
                         "(names or values); only outputs are compared")
        self.ref.to(self.device)
        if self.ref64 is not None:
            self.ref64.to(self.device)
        try:
            self.candidate(lambda: self.new.to(self.device))
        except CandidateError as e:
            self.ev.emit(error=e.kind, message=f"ModelNew.to({self.device}) failed: {e.message}", log=e.log)
            raise Stop from None
        # a clean copy of the reference's state: tampering is detected and undone
        self.ref_state_copy = {k: v.detach().clone() for k, v in _state(self.ref).items()}
        self.ref_state_fp = memory.fingerprint(list(self.ref_state_copy.values()))

    def limit_host_memory(self):
        """CPU runs: cap the address space (RLIMIT_AS); CUDA runs are polled by the parent instead."""
        limit = self.spec.get("memory_limit_bytes")
        if not limit or self.device != "cpu" or torch.cuda.is_initialized():
            return
        import resource
        with open("/proc/self/status") as f:
            status = {line.split(":")[0]: line.split()[1:] for line in f}
        vm, rss = int(status["VmSize"][0]) * 1024, int(status["VmRSS"][0]) * 1024
        # address space grows at least as fast as resident memory: this cap is reached before
        # the parent's resident-memory limit, and fails as an allocation error in the worker
        cap = vm + max(int(limit) - rss, 256 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        self.ev.set("address_space_limit_bytes", cap)

    # ------------------------------------------------------------------ one candidate call
    def call_candidate(self, args: list, tag: str):
        """Call ModelNew with everything a hack could hide behind watched; returns (out, snapshot)."""
        dev = self.device
        threads_before = set(threading.enumerate())
        _manual_seed(self.call_seed)
        with _no_grad():
            out = self.candidate(self.new, *args)
        outs = memory.tensors(out)
        # what the caller sees when forward returns: copied on the current stream, no sync
        try:
            snap = [t.detach().clone() for t in outs]
        except Exception as e:  # noqa: BLE001
            raise CandidateError(classify(e), f"reading the candidate's output failed: {e}", _tb(e)) from None
        try:
            _sync(dev)
        except Exception as e:  # noqa: BLE001
            raise CandidateError(classify(e), f"{type(e).__name__}: {e}"[:2000], _tb(e)) from None
        new_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if new_threads:
            self.flag("threads", f"{tag}: forward returned with {len(new_threads)} thread(s) still running "
                                 f"({', '.join(t.name for t in new_threads[:3])})")
            deadline = _perf_counter() + THREAD_JOIN_S
            for t in new_threads:
                t.join(max(0.0, deadline - _perf_counter()))
        _sleep(SETTLE_S)
        try:
            _sync(dev)
        except Exception as e:  # noqa: BLE001
            raise CandidateError(classify(e), f"{type(e).__name__}: {e}"[:2000], _tb(e)) from None
        late = [k for k, (t, s) in enumerate(zip(outs, snap)) if not memory.same_bits(t, s)]
        if late:
            self.flag("late-write", f"{tag}: output {late} changed after forward returned (work on another "
                                    "stream or thread that was not finished when the call returned)")
        self.guard_check(f"during the forward call ({tag})")
        return out, outs, snap

    # ------------------------------------------------------------------ trials
    def trials(self):
        ev, dev = self.ev, self.device
        n = int(self.spec.get("trials", 5))
        ev.set("trials", n)
        total = Comparison()
        prev_outs, prev_new_fp, prev_ref_fp = None, None, None
        trial_results = []
        fp64_new, fp64_eager = [], []
        for t in range(n):
            tag = f"trial {t + 1}"
            ev.stage(tag)
            inputs = self.problem.inputs(self.seed + 1 + t, dev)
            fp_inputs = memory.fingerprint(inputs)
            cand_in = _clone(inputs)
            memory.poison_free_memory(dev, self.out_sizes + self.in_sizes)
            self.call_seed = self.seed + 1000 + t
            try:
                out, outs, snap = self.call_candidate(cand_in, tag)
            except CandidateError as e:
                ev.set("trials_run", t)
                if dev == "cpu" and t == 0 and any(w in e.message.lower() for w in ("cuda", "nvidia", "gpu")):
                    ev.skipped("correctness", "the candidate runs only on a GPU and none is used here")
                    ev.emit(error="needs_gpu", message=f"{tag}: the candidate's forward needs CUDA: {e.message}",
                            log=e.log)
                else:
                    ev.emit(error=e.kind, message=f"{tag}: the candidate's forward failed: {e.message}", log=e.log)
                raise Stop from None
            # harness state the candidate could reach through gc
            if memory.fingerprint(inputs) != fp_inputs:
                self.flag("harness-tamper", f"{tag}: the harness's own copy of the inputs changed during the "
                                            "candidate's call (it was never passed to it)")
                inputs = self.problem.inputs(self.seed + 1 + t, dev)
            if memory.fingerprint(list(_state(self.ref).values())) != self.ref_state_fp:
                self.flag("reference-tamper", f"{tag}: the reference model's parameters/buffers changed during "
                                              "the candidate's call; restored")
                with torch.no_grad():
                    for k, v in _state(self.ref).items():
                        v.copy_(self.ref_state_copy[k])
            mutated = [k for k, (a, b) in enumerate(zip(cand_in, inputs))
                       if isinstance(a, torch.Tensor) and not memory.same_bits(a, b)]
            # outputs: objects and storage shared with the previous call, inputs, parameters
            if prev_outs is not None:
                for k, o in enumerate(outs):
                    if any(o is p or memory.overlaps(o, p) for p in prev_outs):
                        self.flag("output-reuse", f"{tag}: output {k} is the same tensor/storage as an output of "
                                                  "the previous call (a result cached or kept across calls)")
            new_alias = self.aliases(outs, cand_in, self.new)
            poisoned = sum(memory.count_poison(s) for s in snap)
            if poisoned:
                self.flag("uninitialized-memory", f"{tag}: {poisoned} output element(s) hold the poison pattern "
                                                  "written into freed memory: the output was never written")
            new_fp = memory.fingerprint(snap)
            # the reference, on its own clones, after the candidate
            ref_in = _clone(inputs)
            _manual_seed(self.call_seed)
            try:
                with _no_grad():
                    ref_out = self.ref(*ref_in)
                _sync(dev)
            except Exception as e:  # noqa: BLE001
                ev.emit(error="reference_error", message=f"{tag}: the reference failed: {type(e).__name__}: {e}",
                        log=_tb(e))
                raise Stop from None
            ref_outs = memory.tensors(ref_out)
            ref_alias = self.aliases(ref_outs, ref_in, self.ref)
            for k in range(min(len(new_alias), len(ref_alias))):
                # parameter names may differ between the models: any parameter counts as one kind
                ref_kinds = {a.split(" ")[0] if a.startswith("parameter") else a for a in ref_alias[k]}
                extra = sorted(a for a in new_alias[k]
                               if (a.split(" ")[0] if a.startswith("parameter") else a) not in ref_kinds)
                if extra:
                    self.flag("output-aliasing", f"{tag}: output {k} shares memory with {', '.join(extra)} "
                                                 "(the reference's output does not)")
            ref_mutated = [k for k, (a, b) in enumerate(zip(ref_in, inputs))
                           if isinstance(a, torch.Tensor) and not memory.same_bits(a, b)]
            extra_mut = sorted(set(mutated) - set(ref_mutated))
            if extra_mut:
                self.flag("input-mutation", f"{tag}: the candidate changed input(s) {extra_mut} in place "
                                            "(the reference does not)")
            # compare what the caller saw at return time
            seen = _replace_tensors(out, snap)
            c = compare(f"{tag} output", seen, ref_out, self.atol, self.rtol)
            for k in sorted(set(mutated) | set(ref_mutated)):
                compare(f"{tag} input {k} after the call", cand_in[k], ref_in[k], self.atol, self.rtol, c)
            rb, nb = dict(self.ref.named_buffers()), dict(self.new.named_buffers())
            common = [k for k in rb if k in nb and rb[k].shape == nb[k].shape]
            if common:
                compare(f"{tag} buffers", [nb[k] for k in common], [rb[k] for k in common],
                        self.atol, self.rtol, c)
            ref_fp = memory.fingerprint(ref_out)
            if new_fp in self.ref_fps and new_fp != ref_fp:
                self.flag("stale-result", f"{tag}: the output equals a result of an earlier reference call "
                                          "(memory left by the reference, or a cached result)")
            if prev_new_fp is not None and new_fp == prev_new_fp and ref_fp != prev_ref_fp:
                self.flag("same-output", f"{tag}: the same output values as on the previous call, for "
                                         "different inputs (a cached result)")
            self.ref_fps.add(ref_fp)
            # float64 reference: the candidate's error next to eager's own
            if self.ref64 is not None:
                try:
                    _manual_seed(self.call_seed)
                    with _no_grad():
                        exact = self.ref64(*_to64(inputs))
                    _sync(dev)
                    en, ee = error_vs(seen, exact), error_vs(ref_out, exact)
                    if en and ee:
                        fp64_new.append(en)
                        fp64_eager.append(ee)
                    del exact
                except Exception as e:  # noqa: BLE001
                    self.ev.note(f"float64 reference failed, skipped: {type(e).__name__}: {e}"[:300])
                    self.ref64 = None
            total.failures += c.failures
            total.max_abs = max(total.max_abs, c.max_abs)
            total.max_rel = max(total.max_rel, c.max_rel)
            total.tol_ratio = max(total.tol_ratio, c.tol_ratio)
            trial_results.append(c.ok)
            self.correct_trials += c.ok
            ev.set("trials_passed", self.correct_trials)
            prev_outs, prev_new_fp, prev_ref_fp = outs, new_fp, ref_fp
            del ref_out, ref_outs, ref_in, seen, snap, out, cand_in, inputs
        self.correct = all(trial_results)
        ev.set("correctness", self.correct)
        ev.set("max_abs_error", total.max_abs)
        ev.set("max_rel_error", total.max_rel)
        ev.set("tolerance_ratio", total.tol_ratio)
        ev.set("failures", total.failures[:20])
        if fp64_new:
            cand_rel = max(r for r, _ in fp64_new)
            eager_rel = max(r for r, _ in fp64_eager)
            factor = float(self.spec.get("precision_factor", 10.0))
            floor = float(self.spec.get("precision_floor", 1e-5))
            ev.set("fp64", {"candidate_rel_error": cand_rel, "eager_rel_error": eager_rel,
                            "candidate_max_abs": max(a for _, a in fp64_new),
                            "eager_max_abs": max(a for _, a in fp64_eager),
                            "ratio": cand_rel / eager_rel if eager_rel > 0 else None})
            if self.correct and cand_rel > factor * eager_rel and cand_rel > floor:
                self.flag("precision-downgrade",
                          f"error against a float64 reference is {cand_rel:.2e} (normwise), eager float32's is "
                          f"{eager_rel:.2e}: more than {factor:g}x worse (lower precision than the reference)")

    def aliases(self, outs, inputs, model) -> list[set]:
        named = [(f"input {k}", x) for k, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
        named += [(f"parameter/buffer {k}", v) for k, v in _state(model).items()]
        return [{n for n, x in named if memory.overlaps(o, x)} for o in outs]

    # ------------------------------------------------------------------ same tensors, new contents
    def recompute(self):
        """A cache keyed on tensor identity/address: same input objects, contents changed in place."""
        dev = self.device
        self.ev.stage("recompute")
        a = self.problem.inputs(self.seed + 1, dev)
        b = self.problem.inputs(self.seed + 2, dev)
        if not any(isinstance(x, torch.Tensor) and x.is_floating_point() for x in a):
            return
        self.call_seed = self.seed + 1000
        x = _clone(a)
        try:
            out1, outs1, _ = self.call_candidate(x, "recompute, first call")
            with torch.no_grad():
                for xi, bi in zip(x, b):
                    if isinstance(xi, torch.Tensor):
                        xi.copy_(bi)
            self.call_seed = self.seed + 1001
            out2, outs2, snap2 = self.call_candidate(x, "recompute, second call")
        except CandidateError as e:
            self.ev.emit(error=e.kind, message=f"recompute check: the candidate's forward failed: {e.message}",
                         log=e.log)
            raise Stop from None
        _manual_seed(self.seed + 1001)
        with _no_grad():
            ref_b = self.ref(*_clone(b))
        _sync(dev)
        c = compare("recompute", _replace_tensors(out2, snap2), ref_b, self.atol, self.rtol)
        if not c.ok and self.correct:
            self.flag("identity-cache", "called again on the same input tensors after their contents were "
                                        "changed in place, the candidate returned a wrong result (a result "
                                        "cached by tensor identity or address)")
        if any(o2 is o1 for o2 in outs2 for o1 in outs1):
            self.flag("output-reuse", "recompute: the second call returned the same tensor object as the first")

    # ------------------------------------------------------------------ timing
    def bench(self):
        ev, dev = self.ev, self.device
        if not dev.startswith("cuda"):
            for what in ("timing", "roofline", "event-vs-wall stream check", "CUDA memory poisoning"):
                ev.skipped(what, "needs a GPU")
            return
        if not self.spec.get("bench", True):
            ev.skipped("timing", "--no-bench")
            return
        from ..bench import time_cuda
        if not self.correct:
            ev.skipped("timing", "the candidate is not correct (only the event-vs-wall stream check ran)")
            ev.stage("timing")
            try:
                self.stream_check(self.problem.inputs(self.seed + 1, dev))
            except CandidateError as e:
                ev.emit(error=e.kind, message=f"timing: the candidate's forward failed: {e.message}", log=e.log)
                raise Stop from None
            return
        ev.stage("ceilings")
        ceilings = None
        try:
            from ..ceilings import measure_ceilings
            ceilings = measure_ceilings()
            ev.set("ceilings", ceilings)
        except Exception as e:  # noqa: BLE001
            ev.skipped("roofline", f"measuring the GPU's ceilings failed: {type(e).__name__}: {e}")
        self.guards.restore()
        ev.stage("timing")
        inputs = self.problem.inputs(self.seed + 1, dev)
        trials = max(30, int(self.spec.get("bench_trials", 100)))
        try:
            eager = time_cuda(self.ref, inputs, trials=trials)
            new = self.candidate(lambda: time_cuda(self.new, _clone(inputs), trials=trials))
            self.guard_check("during timing")
            paired_eager, paired_new = self.stream_check(inputs)
        except CandidateError as e:
            ev.emit(error=e.kind, message=f"timing: the candidate's forward failed: {e.message}", log=e.log)
            raise Stop from None
        timing = {"eager_ms": eager.median_ms, "candidate_ms": new.median_ms, "eager_min_ms": eager.min_ms,
                  "candidate_min_ms": new.min_ms, "trials": trials,
                  "speedup_vs_eager": eager.median_ms / new.median_ms,
                  "event_vs_wall": {"candidate_event_ms": paired_new[0], "candidate_wall_ms": paired_new[1],
                                    "eager_event_ms": paired_eager[0], "eager_wall_ms": paired_eager[1]},
                  "how": "CUDA events on the current stream, L2 flushed (256 MB write) before each call, "
                         "warm-up 5, median"}
        ev.set("timing", timing)
        if ceilings:
            from ..ceilings import roofline
            roof = roofline(self.flops, self.min_bytes, ceilings)
            roof.update(flops=self.flops, min_bytes=self.min_bytes,
                        candidate_vs_floor=new.median_ms / roof["floor_ms"] if roof.get("floor_ms") else None,
                        eager_vs_floor=eager.median_ms / roof["floor_ms"] if roof.get("floor_ms") else None)
            ev.set("roofline", roof)
            margin = float(self.spec.get("roofline_margin", 0.9))
            if roof.get("floor_ms") and eager.median_ms < margin * roof["floor_ms"]:
                ev.note(f"eager ({eager.median_ms:.4f} ms) is below the computed floor ({roof['floor_ms']:.4f} ms): "
                        "the floor is not trusted for this problem and raises no flag")
            elif roof.get("floor_ms") and new.median_ms < margin * roof["floor_ms"]:
                self.flag("faster-than-roofline",
                          f"{new.median_ms:.4f} ms is below the roofline floor {roof['floor_ms']:.4f} ms "
                          f"({self.flops:.3g} FLOPs, {self.min_bytes / 1e6:.1f} MB at the measured ceilings): "
                          "impossible without skipping work")
        if self.spec.get("compile"):
            ev.stage("torch.compile", limit="build")
            try:
                compiled = torch.compile(self.ref)
                comp = time_cuda(compiled, inputs, trials=trials, warmup=10)
                timing["compile_ms"] = comp.median_ms
                timing["speedup_vs_compile"] = comp.median_ms / new.median_ms
                ev.set("timing", timing)
            except Exception as e:  # noqa: BLE001
                ev.skipped("torch.compile timing", f"{type(e).__name__}: {e}"[:300])


    def stream_check(self, inputs):
        """Event time on the current stream vs wall time to a device-wide synchronize, eager as the yardstick."""
        paired_eager = _paired(self.ref, inputs)
        paired_new = self.candidate(lambda: _paired(self.new, _clone(inputs)))
        self.guard_check("during timing")
        self.ev.set("event_vs_wall", {"candidate_event_ms": paired_new[0], "candidate_wall_ms": paired_new[1],
                                      "eager_event_ms": paired_eager[0], "eager_wall_ms": paired_eager[1]})
        gap_new = paired_new[1] - paired_new[0]
        allowance = max(0.1, 2 * (paired_eager[1] - paired_eager[0]))
        if paired_new[0] < 0.5 * paired_new[1] and gap_new > allowance:
            self.flag("event-vs-wall", f"event time {paired_new[0]:.3f} ms on the current stream but "
                                       f"{paired_new[1]:.3f} ms wall time to a device synchronize: work runs "
                                       "outside the timed stream")
        return paired_eager, paired_new


def _paired(fn, args, n: int = 10) -> tuple[float, float]:
    """Median (event ms on the current stream, wall ms to a device-wide synchronize)."""
    import statistics
    flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device="cuda")
    events, walls = [], []
    with _no_grad():
        for _ in range(n):
            flush.zero_()
            _cuda_sync()
            s, e = _Event(enable_timing=True), _Event(enable_timing=True)
            s.record()
            t0 = _perf_counter()
            fn(*args)
            e.record()
            _cuda_sync()
            walls.append((_perf_counter() - t0) * 1e3)
            events.append(s.elapsed_time(e))
    return statistics.median(events), statistics.median(walls)


def _replace_tensors(obj, replacements: list):
    """obj with its tensor leaves replaced, in order, by replacements."""
    import torch.utils._pytree as pytree
    leaves, spec = pytree.tree_flatten(obj)
    it = iter(replacements)
    return pytree.tree_unflatten([next(it) if isinstance(x, torch.Tensor) else x for x in leaves], spec)


def _first_error(msg: str) -> str:
    lines = msg.splitlines()
    for line in lines:
        if "error" in line.lower() and ("error:" in line or "Error" in line) and "Error building" not in line:
            return line.strip()[:500]
    return (lines[0] if lines else msg)[:500]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path, events_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    signal.signal(signal.SIGTERM, _terminated)
    events = Events(events_path)
    worker = Worker(spec, events)
    try:
        worker.run()
    except (Stop, Terminated):
        pass
    except BaseException as e:  # noqa: BLE001 - the checker's own failure: report it, never hang
        events.emit(error="checker_error", message=f"{type(e).__name__}: {e}"[:2000], log=_tb(e))
    events.f.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)   # candidate threads or atexit handlers must not keep the process alive


if __name__ == "__main__":
    main()
