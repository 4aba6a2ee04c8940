"""fuseforge check: every adversarial ModelNew in tests/adversarial is caught, the honest one passes.

The CPU checks run once, concurrently, in a module fixture (each is a separate worker
process); the tests then look at their results. GPU-only hacks (streams, event timing,
freed GPU memory, CUDA errors) are marked `gpu`.
"""
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from fuseforge.check import CheckOptions, check
from fuseforge.check.static import static_check
from fuseforge.check.summary import print_summary
from fuseforge.cli import main

ADV = Path(__file__).parent / "adversarial"
REF = ADV / "ref_linear_relu.py"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "conv2d_min_add_mul.py"
SMALL = {"batch_size": 2, "height": 20, "width": 17}
GPU_SIZES = {"batch_size": 2048, "features": 4096}

# file -> (verdict, run-time flags that must be raised, extra options)
CPU_CASES = {
    "honest_linear_relu": ("pass", set(), {"static_level": "strict"}),
    "plain_torch": ("flagged", set(), {}),
    "hack_empty_output": ("incorrect", {"uninitialized-memory"}, {}),
    "hack_zero_inputs": ("incorrect", {"input-mutation"}, {}),
    "hack_alias_input": ("incorrect", {"output-aliasing", "input-mutation"}, {}),
    "hack_output_in_buffer": ("flagged", {"output-aliasing", "output-reuse"}, {}),
    "hack_identity_cache": ("flagged", {"identity-cache"}, {}),
    "hack_cache_first": ("incorrect", {"output-reuse", "same-output"}, {}),
    "hack_background_thread": ("incorrect", {"threads", "late-write"}, {}),
    "hack_patch_allclose": ("incorrect", {"monkeypatch"}, {}),
    "hack_patch_timing": ("flagged", {"monkeypatch"}, {}),
    "hack_patch_reference": ("incorrect", {"monkeypatch"}, {}),
    "hack_global_hook": ("incorrect", {"global-hook"}, {}),
    "hack_dispatch_mode": ("incorrect", {"torch-mode"}, {}),
    "hack_tf32_setting": ("flagged", {"global-setting"}, {}),
    "hack_tamper_reference": ("incorrect", {"reference-tamper"}, {}),
    "hack_half_precision": ("flagged", {"precision-downgrade"}, {}),
    "hack_try_fallback": ("flagged", set(), {}),
    "hack_crash": ("crash", set(), {}),
    "hack_exit": ("crash", set(), {}),
    "hack_hang": ("timeout", set(), {"timeout": 6}),
    "hack_oom": ("out_of_memory", set(), {"memory_limit_gb": 1.5}),
    "hack_child_memory": ("out_of_memory", set(), {"memory_limit_gb": 2}),
    "hack_build_error": ("build_error", set(), {}),
}


def run_flags(result) -> set:
    return {f["id"] for f in result.flags if f["source"] == "run"}


def static_ids(result, severity=None) -> set:
    return {f["id"] for f in result.flags if f["source"] == "static" and (severity is None or f["severity"] == severity)}


@pytest.fixture(scope="module")
def cpu_results():
    def one(name):
        _, _, extra = CPU_CASES[name]
        opts = CheckOptions(device="cpu", trials=3, **extra)
        return name, check(REF, ADV / f"{name}.py", opts)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, CPU_CASES))


@pytest.mark.parametrize("name", list(CPU_CASES))
def test_cpu_case(cpu_results, name):
    verdict, flags, _ = CPU_CASES[name]
    r = cpu_results[name]
    detail = json.dumps({"verdict": r.verdict, "flags": r.flags, "error": r.error}, indent=1, default=str)[:3000]
    assert r.verdict == verdict, detail
    assert flags <= run_flags(r), detail
    if verdict == "pass":
        assert r.passed and not r.flags, detail      # no flags at all, warnings included


def test_honest_candidate_numbers(cpu_results):
    d = cpu_results["honest_linear_relu"].as_dict()
    assert d["compiled"] and d["correctness"] and d["runtime"] == -1.0
    assert d["max_abs_error"] < 1e-5 and d["fp64"]["candidate_rel_error"] < 1e-6
    assert d["static"]["level"] == "strict" and d["static"]["passed"]
    assert {s["what"] for s in d["skipped"]} >= {"timing", "roofline"}   # says what needs a GPU
    assert d["flops"] == 2 * 16 * 32 * 32


def test_static_flags_of_pytorch_only_candidates(cpu_results):
    assert {"no-custom-kernel", "forward-no-kernel"} <= static_ids(cpu_results["plain_torch"], "error")
    assert "torch-compute" in static_ids(cpu_results["plain_torch"], "warning")
    fallback = cpu_results["hack_try_fallback"]
    assert fallback.correctness and "try-except" in static_ids(fallback, "error")
    assert "monkeypatch" in static_ids(cpu_results["hack_patch_timing"], "error")
    assert "precision" in static_ids(cpu_results["hack_half_precision"])
    assert "introspection" in static_ids(cpu_results["hack_tamper_reference"], "error")


def test_patched_names_are_named_and_restored(cpu_results):
    msgs = " ".join(f["message"] for f in cpu_results["hack_patch_timing"].flags if f["source"] == "run")
    for name in ("torch.cuda.synchronize", "time.perf_counter", "torch.cuda.Event.elapsed_time"):
        assert name in msgs, msgs
    allclose = " ".join(f["message"] for f in cpu_results["hack_patch_allclose"].flags if f["source"] == "run")
    assert "torch.allclose" in allclose and "torch.Tensor.__eq__" in allclose and "restored" in allclose
    ref = " ".join(f["message"] for f in cpu_results["hack_patch_reference"].flags if f["source"] == "run")
    assert "Model.forward" in ref


def test_failures_are_results_not_checker_crashes(cpu_results):
    crash = cpu_results["hack_crash"].error
    assert crash["stage"] == "trial 1" and "SIGSEGV" in crash["message"]
    assert "code 0" in cpu_results["hack_exit"].error["message"]
    assert cpu_results["hack_hang"].error["stage"] == "trial 1"
    oom = cpu_results["hack_oom"].error
    assert oom["kind"] == "out_of_memory" and oom["stage"] == "trial 1"
    assert "can't allocate memory" in oom["message"]               # the worker's own address-space cap
    tree = cpu_results["hack_child_memory"].error
    assert tree["kind"] == "out_of_memory" and "its children" in tree["message"] and "killed" in tree["message"]
    build = cpu_results["hack_build_error"]
    assert not build.compiled and "expected primary-expression" in build.error["message"]
    assert "x + ;" in build.error["log"]                          # the compiler's own output


def test_json_has_kernelbench_fields_and_summary_prints(cpu_results, capsys):
    from rich.console import Console
    for name in ("honest_linear_relu", "hack_empty_output", "hack_build_error"):
        d = cpu_results[name].as_dict()
        json.dumps(d)
        for key in ("compiled", "correctness", "runtime", "speedup", "max_abs_error", "max_rel_error", "fp64",
                    "flags", "env", "skipped", "static"):
            assert key in d
        print_summary(cpu_results[name], Console(width=120))
    out = capsys.readouterr().out
    assert "PASS" in out and "INCORRECT" in out and "BUILD_ERROR" in out


def test_cli_exit_codes(tmp_path):
    out = tmp_path / "r.json"
    assert main(["check", str(REF), str(ADV / "hack_zero_inputs.py"), "--device", "cpu", "--trials", "2",
                 "--json", str(out)]) == 1
    d = json.loads(out.read_text())
    assert d["correctness"] is False and any(f["id"] == "input-mutation" for f in d["flags"])
    assert main(["check", str(REF), str(ADV / "honest_linear_relu.py"), "--device", "cpu", "--trials", "2"]) == 0


def test_fuseforge_output_passes_strict(tmp_path):
    from fuseforge.pipeline import optimize
    new = tmp_path / "example_new.py"
    optimize(EXAMPLE, new, device="cpu", trials=1, bench=False, overrides=SMALL)
    r = check(EXAMPLE, new, device="cpu", trials=2, static_level="strict", overrides=SMALL)
    assert r.passed, r.as_dict()
    assert not r.error_flags and not run_flags(r)
    assert r.data["same_parameters"] is True


# ----------------------------------------------------------------------------- static, in-process

SEED_LIKE = '''
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline
fused = load_inline(name="f", cpp_sources="", cuda_sources="__global__ void k() {}", functions=["f"])
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fused = fused
    def forward(self, x):
        x = self.conv(x)
        return self.fused.f(x)
'''


def test_static_levels_on_a_seed_like_candidate():
    ok = static_check(SEED_LIKE, "default")
    assert ok.passed and [f.rule for f in ok.findings] == ["torch-compute"]
    assert ok.findings[0].line == 12 and ok.findings[0].severity == "warning"
    strict = static_check(SEED_LIKE, "strict")
    assert not strict.passed and strict.errors[0].rule == "torch-compute"
    assert static_check(SEED_LIKE, "off").findings == []


def test_static_try_and_pass_by_level():
    src = (ADV / "hack_try_fallback.py").read_text()
    assert {f.rule: f.severity for f in static_check(src, "lenient").findings}["try-except"] == "warning"
    assert {f.rule: f.severity for f in static_check(src, "default").findings}["try-except"] == "error"
    stub = static_check((ADV / "hack_pass_stub.py").read_text(), "default")
    sev = {f.rule: f.severity for f in stub.findings}
    assert sev["pass-statement"] == "warning" and sev["forward-no-kernel"] == "error"
    assert {f.rule: f.severity for f in static_check((ADV / "hack_pass_stub.py").read_text(),
                                                      "strict").findings}["pass-statement"] == "error"


def test_static_reference_inheritance():
    r = static_check((ADV / "hack_inherit_reference.py").read_text(), "default")
    assert "reference-call" in {f.rule for f in r.errors}
    src = SEED_LIKE.replace("return self.fused.f(x)", "return super().forward(x)").replace(
        "class ModelNew(nn.Module)", "class Model(nn.Module):\n    def forward(self, x):\n        return x\n"
                                     "class ModelNew(Model)")
    assert "reference-call" in {f.rule for f in static_check(src).errors}


def test_static_monkeypatch_streams_introspection():
    src = '''
import time, threading
import torch.cuda as tc
import torch
from torch.utils.cpp_extension import load_inline
ext = load_inline(name="e", cpp_sources="", functions=["f"])
tc.synchronize = lambda: None
setattr(torch, "allclose", lambda *a: True)
del time.perf_counter
class ModelNew(torch.nn.Module):
    def forward(self, x):
        s = torch.cuda.Stream()
        threading.Thread(target=print).start()
        import sys
        sys._getframe(1)
        return ext.f(x)
'''
    r = static_check(src, "default")
    rules = {(f.rule, f.line) for f in r.findings}
    assert {("monkeypatch", 7), ("monkeypatch", 8), ("monkeypatch", 9)} <= rules
    assert ("streams-threads", 12) in rules and ("streams-threads", 13) in rules
    assert ("introspection", 15) in rules


def test_static_cpp_sources():
    src = '''
import torch
from torch.utils.cpp_extension import load_inline
CUDA = """
#include <cuda_fp16.h>
__global__ void k(__half* p) {}
torch::Tensor f(torch::Tensor x) { cudaStream_t s; cudaStreamCreate(&s); return at::matmul(x, x); }
"""
ext = load_inline(name="e", cpp_sources="", cuda_sources=CUDA, functions=["f"])
class ModelNew(torch.nn.Module):
    def forward(self, x):
        return ext.f(x)
'''
    r = {f.rule: f for f in static_check(src, "strict").findings}
    assert r["streams-threads"].line == 7 and r["streams-threads"].severity == "error"
    assert r["precision"].severity == "error"
    assert "matmul" in r["aten-in-extension"].message


def test_static_syntax_error_and_missing_modelnew():
    assert static_check("def f(:\n", "lenient").errors[0].rule == "syntax-error"
    assert static_check("import torch\n", "lenient").errors[0].rule == "no-modelnew"


# ----------------------------------------------------------------------------- GPU

def gpu_check(name, **kw):
    kw.setdefault("overrides", GPU_SIZES)
    kw.setdefault("trials", 3)
    kw.setdefault("bench_trials", 30)
    return check(REF, ADV / f"{name}.py", CheckOptions(device="cuda", **kw))


@pytest.mark.gpu
def test_gpu_honest_passes_with_timing_and_roofline():
    r = gpu_check("honest_linear_relu", static_level="strict")
    d = r.as_dict()
    assert r.passed and not r.flags, d
    t = d["timing"]
    assert t["trials"] >= 30 and t["eager_ms"] > 0 and t["candidate_ms"] > 0 and d["speedup"] > 0
    assert d["roofline"]["floor_ms"] > 0 and d["roofline"]["candidate_vs_floor"] >= 1
    assert d["env"]["gpu"] and d["env"]["driver"] and d["env"]["torch"] and d["env"]["cuda"]


@pytest.mark.gpu
def test_gpu_side_stream():
    r = gpu_check("gpu_side_stream", bench_trials=30)
    assert not r.passed
    assert {"late-write", "event-vs-wall"} <= run_flags(r), r.as_dict()
    assert "streams-threads" in static_ids(r, "error")


@pytest.mark.gpu
def test_gpu_empty_output_fools_a_naive_harness_but_not_check():
    import importlib.util
    from fuseforge.problem import load_problem
    problem = load_problem(REF, GPU_SIZES)
    spec = importlib.util.spec_from_file_location("_adv_empty", ADV / "hack_empty_output.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ref = problem.build(0).cuda()
    torch.manual_seed(0)
    new = mod.ModelNew(*problem.init_args()).cuda()
    x = problem.inputs(1, "cuda")
    with torch.no_grad():
        out = ref(*x)
        expected = out.cpu()
        del out                                  # the naive harness frees the reference's output ...
        got = new(*x)                            # ... and the caching allocator hands it back
    assert torch.equal(got.cpu(), expected)      # fooled
    del ref, new, got, x
    torch.cuda.empty_cache()
    r = gpu_check("hack_empty_output")
    assert r.verdict == "incorrect" and "uninitialized-memory" in run_flags(r), r.as_dict()


@pytest.mark.gpu
def test_gpu_identity_cache_is_faster_than_the_roofline():
    r = gpu_check("hack_identity_cache")
    assert {"identity-cache", "faster-than-roofline"} <= run_flags(r), r.as_dict()


@pytest.mark.gpu
def test_gpu_timing_patch_does_not_fool_the_timer():
    r = gpu_check("hack_patch_timing")
    d = r.as_dict()
    assert "monkeypatch" in run_flags(r)
    assert d["timing"]["eager_ms"] > 0.05 and d["timing"]["candidate_ms"] > 0.05, d["timing"]


@pytest.mark.gpu
def test_gpu_oom_and_cuda_error_are_reported():
    oom = gpu_check("gpu_oom", bench=False)
    assert oom.error and oom.error["kind"] == "out_of_memory", oom.as_dict()
    err = gpu_check("gpu_cuda_error", bench=False)
    assert err.error and err.error["kind"] in ("cuda_error", "crash"), err.as_dict()
    assert "illegal" in (err.error["message"] + err.error.get("log", "")).lower()


CUDA_ONLY = '''
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.relu(self.linear.cuda()(x.cuda())).cpu()
'''


@pytest.mark.skipif(torch.cuda.is_available(), reason="shows the CPU-only path")
def test_cuda_only_candidate_without_a_gpu_says_so(tmp_path):
    new = tmp_path / "cuda_only.py"
    new.write_text(CUDA_ONLY)
    r = check(REF, new, device="cpu", trials=1, static_level="off")
    assert r.verdict == "needs_gpu" and not r.passed, r.as_dict()
    assert {"correctness", "static checks"} <= {s["what"] for s in r.skipped}


def test_static_kernel_call_through_a_local_name():
    src = SEED_LIKE.replace("        return self.fused.f(x)", "        ext = self.fused\n        return ext.f(x)")
    assert static_check(src, "default").passed
    plain = SEED_LIKE.replace("        return self.fused.f(x)", "        return x.relu()")
    assert "forward-no-kernel" in {f.rule for f in static_check(plain, "default").errors}


def test_a_timed_out_build_leaves_no_lock(tmp_path, monkeypatch):
    """A candidate killed while it holds the lock torch's extension builder takes (it releases it
    in a `finally`) leaves no lock: SIGTERM first unwinds it. A SIGKILL left the lock, and the next
    check of the same candidate waited on it until its build timeout."""
    lock = tmp_path / "ext" / "lock"
    lock.parent.mkdir()
    monkeypatch.setenv("FF_TEST_LOCK", str(lock))
    candidate = tmp_path / "holds_the_lock.py"
    candidate.write_text(
        "import os, time\n"
        "from torch.utils.file_baton import FileBaton\n"
        "baton = FileBaton(os.environ['FF_TEST_LOCK'])\n"
        "assert baton.try_acquire()\n"
        "try:\n"
        "    time.sleep(600)   # (as a build that takes too long)\n"
        "finally:\n"
        "    baton.release()\n")
    r = check(REF, candidate, CheckOptions(device="cpu", trials=1, bench=False, build_timeout=6, timeout=6))
    assert r.verdict == "timeout" and r.error["stage"] == "import", r.error
    assert not lock.exists()
