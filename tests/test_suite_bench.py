"""`fuseforge bench`: sharding, resume, merge, summary math, report/plots, roofline, failure paths.

Everything except the last test runs without a GPU; the measuring path runs on the CPU
(device="cpu", wall-clock timer) in fresh subprocesses, like on a GPU.
"""
import io
import json
import math
import textwrap
from pathlib import Path

import pytest
import torch
from rich.console import Console

from fuseforge import bench_report as br
from fuseforge import suite_bench as sb
from fuseforge.ceilings import floor_seconds, roofline
from fuseforge.cli import main

CEIL = {"copy_bytes_per_s": 2e12, "fp32_flops_per_s": 50e12, "tf32_flops_per_s": 400e12}

POINTWISE = """
import torch
class Model(torch.nn.Module):
    def forward(self, x, y):
        return torch.relu(x) + y * 2
def get_inputs():
    return [torch.randn(8, 5), torch.randn(8, 5)]
def get_init_inputs():
    return []
"""
# torch.export cannot capture data-dependent control flow: fuseforge fails fast, eager still runs
DATA_DEPENDENT = """
import torch
class Model(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1
def get_inputs():
    return [torch.randn(3, 4)]
def get_init_inputs():
    return []
"""
RAISES = """
import torch
class Model(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("boom in forward")
def get_inputs():
    return [torch.randn(4, 4)]
def get_init_inputs():
    return []
"""
HANGS = """
import time, torch
class Model(torch.nn.Module):
    def forward(self, x):
        time.sleep(600)
        return x
def get_inputs():
    return [torch.randn(4, 4)]
def get_init_inputs():
    return []
"""
DIES = """
import os, torch
class Model(torch.nn.Module):
    def forward(self, x):
        os._exit(7)
def get_inputs():
    return [torch.randn(4, 4)]
def get_init_inputs():
    return []
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def rec(name, level, eager=None, ff=None, comp=None, *, ff_ok=True, comp_ok=True, status="ok", floor=None):
    """A hand-written record: times in ms (None: not timed)."""
    versions = {}
    if eager is not None:
        versions["eager"] = {"correct": True, "ms": eager}
    if comp is not None or not comp_ok:
        versions["compile:default"] = {"correct": comp_ok, "ms": comp if comp_ok else None}
    versions["fuseforge"] = {"correct": ff_ok, "ms": ff if ff_ok else None}
    r = {"problem": f"suite/{level}/{name}.py", "name": name, "level": level, "status": status,
         "versions": versions if status == "ok" else {}, "config": {"small": False, "compile_modes": ["default"]}}
    if status != "ok":
        r["error"] = "timed out after 300 s"
    if floor is not None:
        r["floor_ms"] = floor
    return r


# --------------------------------------------------------------------------- problem list and sharding

def test_find_problems_sorted_unique_skips_private(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    b = write(tmp_path, "suite/level2/b.py", POINTWISE)
    a = write(tmp_path, "suite/level1/a.py", POINTWISE)
    write(tmp_path, "suite/level1/__init__.py", "")
    write(tmp_path, "suite/level1/_helper.py", "")
    found = sb.find_problems(["suite", a])
    assert [sb.problem_key(p) for p in found] == ["suite/level1/a.py", "suite/level2/b.py"]
    assert sb.level_of(b) == "level2"
    with pytest.raises(FileNotFoundError):
        sb.find_problems(["nope"])


def test_shards_are_deterministic_disjoint_and_cover():
    items = [f"suite/level{k % 3}/p{k:02d}.py" for k in range(23)]
    shards = [sb.shard(list(reversed(items)), i, 4) for i in range(1, 5)]
    assert sorted(x for s in shards for x in s) == sorted(items)
    assert sum(map(len, shards)) == len(items)
    assert shards == [sb.shard(items, i, 4) for i in range(1, 5)]     # input order does not matter
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert sb.parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1-4"):
        with pytest.raises(ValueError):
            sb.parse_shard(bad)


# --------------------------------------------------------------------------- resume

def test_jsonl_latest_record_wins_and_cut_line_is_ignored(tmp_path):
    path = tmp_path / "results.jsonl"
    sb.append_jsonl(path, rec("a", "level1", 1, 0.5))
    sb.append_jsonl(path, rec("b", "level1", status="timeout"))
    sb.append_jsonl(path, rec("a", "level1", 1, 0.25))
    with open(path, "a") as f:
        f.write('{"problem": "suite/level1/c.py", "sta')        # a kill mid-write
    latest = sb.latest_records(sb.read_jsonl(path))
    assert set(latest) == {"suite/level1/a.py", "suite/level1/b.py"}
    assert latest["suite/level1/a.py"]["versions"]["fuseforge"]["ms"] == 0.25


def test_pending_skips_done_unless_forced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = [Path(f"suite/level1/{n}.py") for n in "abcd"]
    done = sb.latest_records([rec("a", "level1", 1, 1), rec("b", "level1", status="timeout"),
                              {**rec("c", "level1", 1, 1), "config": {"small": True, "compile_modes": ["default"]}}])
    config = {"small": False, "compile_modes": ["default"]}
    todo, skipped = sb.pending(paths, done, config=config)
    assert [p.stem for p in todo] == ["c", "d"]            # c: measured at other sizes
    assert [p.stem for p in skipped] == ["a", "b"]
    todo, _ = sb.pending(paths, done, config=config, retry_failed=True)
    assert [p.stem for p in todo] == ["b", "c", "d"]
    todo, skipped = sb.pending(paths, done, config=config, force=True)
    assert len(todo) == 4 and not skipped
    more = {"small": False, "compile_modes": ["default", "max-autotune-no-cudagraphs"]}
    assert len(sb.pending(paths, done, config=more)[0]) == 4   # a mode not measured yet


# --------------------------------------------------------------------------- summary math

def test_summary_fast_p_geomeans_floor():
    records = [
        rec("a", "level1", eager=4.0, ff=1.0, comp=2.0, floor=0.5),     # 4× eager, 2× compile
        rec("b", "level1", eager=3.0, ff=2.0, comp=1.0, floor=1.0),     # 1.5×, 0.5×
        rec("c", "level1", eager=1.0, ff=2.0, comp=1.0, floor=0.25),    # 0.5× (slower), 0.5×
        rec("d", "level1", eager=1.0, ff_ok=False, comp=1.0),           # incorrect
        rec("e", "level1", status="timeout"),                            # failed run
        rec("f", "level2", eager=2.0, ff=1.0, comp_ok=False, floor=1.0),  # compile incorrect
        rec("g", "level2", eager=1.0, ff=1.01, comp=1.0, floor=1.0),    # 0.99×: slower, within noise
    ]
    s = br.summarize(records)
    l1 = s["levels"]["level1"]
    assert l1["problems"] == 5 and l1["failed_runs"] == 1 and l1["fuseforge_correct"] == 3
    assert l1["fast_p"] == {"0": 3 / 5, "1": 2 / 5, "1.5": 1 / 5, "2": 1 / 5}   # 1.5 is not > 1.5
    assert l1["geomean_speedup_vs_eager"] == pytest.approx((4 * 1.5 * 0.5) ** (1 / 3))
    assert l1["geomean_speedup_vs_compile"]["compile:default"] == pytest.approx((2 * 0.5 * 0.5) ** (1 / 3))
    assert l1["fuseforge_faster_than_compile"]["compile:default"] == 1
    assert l1["compile_geomean_speedup_vs_eager"]["compile:default"] == pytest.approx((2 * 3 * 1 * 1) ** (1 / 4))
    assert l1["slower_than_eager"] == l1["slower_than_eager_beyond_noise"] == ["suite/level1/c.py"]
    assert l1["time_over_floor"]["fuseforge"] == pytest.approx((2 * 2 * 8) ** (1 / 3))
    assert l1["time_over_floor"]["eager"] == pytest.approx((8 * 3 * 4) ** (1 / 3))
    l2 = s["levels"]["level2"]
    assert l2["fast_p"]["2"] == 0 and l2["fast_p"]["1"] == 1 / 2
    assert l2["slower_than_eager"] == ["suite/level2/g.py"] and not l2["slower_than_eager_beyond_noise"]
    assert l2["geomean_speedup_vs_compile"]["compile:default"] == pytest.approx(1 / 1.01)   # f's was wrong
    assert s["all"]["problems"] == 7 and s["all"]["fast_p"]["0"] == pytest.approx(5 / 7)
    r = br.attach_speedups(records[0])
    assert r["speedup"] == {"compile:default/eager": 2.0, "fuseforge/eager": 4.0,
                            "fuseforge/compile:default": 2.0}
    assert br.geomean([]) is None and br.geomean([None, 2, 8]) == pytest.approx(4)


def test_roofline_floor():
    # memory bound: 4 GB at 2 TB/s = 2 ms; 1 GFLOP at 400 TFLOP/s is far less
    assert floor_seconds(1e9, 4e9, CEIL) == (pytest.approx(2e-3), "memory")
    # compute bound: 4 TFLOP at 400 TFLOP/s = 10 ms (float32: 80 ms)
    r = roofline(4e12, 1e6, CEIL)
    assert r["bound"] == "compute"
    assert r["floor_ms"] == pytest.approx(10.0) and r["floor_fp32_ms"] == pytest.approx(80.0)
    assert roofline(0, 2e9, CEIL)["floor_ms"] == pytest.approx(1.0)
    assert roofline(1, 1, None) == {}


def test_flops_and_minimal_bytes():
    lin = torch.nn.Linear(16, 8)
    x = torch.randn(4, 16)
    flops, out = sb.count_flops(lin, [x, ])
    assert flops == 2 * 4 * 16 * 8
    nbytes = sb.minimal_bytes(lin, [x, x], out)         # the same input twice counts once
    assert nbytes == 4 * (4 * 16 + 16 * 8 + 8 + 4 * 8)
    expanded = torch.randn(1, 16).expand(1000, 16)      # a broadcast view reads its storage only
    assert sb.minimal_bytes(torch.nn.Identity(), [expanded], torch.zeros(2)) == 4 * (16 + 2)


# --------------------------------------------------------------------------- report, plots, merge

def sample_records():
    return [rec("a", "level1", 4.0, 1.0, 2.0, floor=0.5), rec("b", "level1", 3.0, 2.0, 1.0, floor=1.0),
            rec("c", "level2", 1.0, 2.0, 1.0, floor=0.25), rec("d", "level2", 1.0, ff_ok=False, comp=1.0),
            rec("e", "level3", status="timeout")]


RUN = {"run": "r1", "started": "now", "shard": "1/2", "env": {"gpu": "NVIDIA H100", "torch": "2.11"},
       "ceilings": CEIL, "config": {"small": False, "compile_modes": ["default"], "trials": [30, 100]}}


def test_report_and_plots(tmp_path):
    written = br.write_report(tmp_path, sample_records(), [RUN])
    md = (tmp_path / "report.md").read_text()
    assert "NVIDIA H100" in md and "copy 2000 GB/s" in md and "TF32 GEMM 400.0 TFLOP/s" in md
    assert "| level1 | 2 | 2 (100 %) | 100 % | 50 % | 50 % | 2.45 |" in md
    assert "| **all** | 5 |" in md
    assert "## Failures" in md and "timeout" in md and "fuseforge incorrect" in md
    assert "## Slower than eager" in md and "level2/c (0.50×)" in md
    for name in ("speedup_distribution.png", "fuseforge_vs_compile.png", "roofline.png"):
        png = tmp_path / "plots" / name
        assert png.read_bytes()[:4] == b"\x89PNG" and f"plots/{name}" in md
        assert written[name] == png
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["env"]["gpu"] == "NVIDIA H100" and doc["ceilings"] == CEIL
    assert len(doc["records"]) == 5 and doc["summary"]["levels"]["level1"]["fast_p"]["2"] == 0.5
    br.write_report(tmp_path / "empty", [rec("x", "level1", status="crashed")], [])   # nothing timed


def test_host_time_is_the_calls_own_cost():
    """bench.host_time: the median wall time of a call as its thread sees it (on the CPU, the
    whole call)."""
    import time
    from fuseforge.bench import host_time
    assert 2.9 <= host_time(lambda: time.sleep(0.003), ()) < 30
    assert host_time(lambda: None, ()) < 0.5


def test_report_gives_the_host_share():
    """The wrapper's own cost (issue 6: under 5 % of the model's time): each version's median host
    time over its GPU time, and fuseforge's problems above 5 %, largest first."""
    recs = sample_records()
    for r, (eager_host, ff_host) in zip(recs, [(0.2, 0.01), (0.1, 0.5), (0.05, 0.2)]):
        r["versions"]["eager"]["host_ms"], r["versions"]["fuseforge"]["host_ms"] = eager_host, ff_host
    host = br.summarize(recs)["host"]
    assert host["fuseforge"]["problems"] == 3 and host["fuseforge"]["median_share"] == pytest.approx(0.1)
    assert host["fuseforge"]["above"] == [("suite/level1/b.py", 0.25), ("suite/level2/c.py", 0.1)]
    assert host["eager"]["median_share"] == pytest.approx(0.05)
    md = br.render_markdown(recs, [RUN], br.summarize(recs), {})
    assert "fuseforge median 10.0% over 3 problems (eager 5.0%); fuseforge above 5% on 2: level1/b (25%), " \
           "level2/c (10%)" in md, md


def test_report_flags_unstable_timings():
    """A timing whose median lies more than 10 % above its minimum is flagged, in the summary and
    beside the problem."""
    recs = sample_records()
    recs[0]["versions"]["fuseforge"]["min_ms"] = 0.8       # median 1.0: 1.25x its minimum
    recs[1]["versions"]["fuseforge"]["min_ms"] = 1.95      # 1.03x: stable
    assert br.unstable(recs[0]) == [("fuseforge", pytest.approx(1.25))] and br.unstable(recs[1]) == []
    md = br.render_markdown(recs, [RUN], br.summarize(recs), {})
    assert "unstable timings (median more than 10% above the minimum" in md and "1 of 11: level1/a fuseforge (1.25×)" in md
    assert "| a |" in md and "fuseforge timing unstable (1.25× its minimum) |" in md


def test_merge_prefers_completed_records(tmp_path):
    a, b = tmp_path / "shard1", tmp_path / "shard2"
    recs = sample_records()
    for d, part, run in ((a, recs[:3], RUN), (b, recs[3:], {**RUN, "run": "r2", "shard": "2/2"})):
        d.mkdir()
        for r in part:
            sb.append_jsonl(d / sb.RESULTS, {**r, "finished": "2026-01-01T00:00:00"})
        sb.append_jsonl(d / sb.RUNS, run)
    # shard 2 also holds an older failed attempt at a problem that shard 1 completed
    sb.append_jsonl(b / sb.RESULTS, {**rec("a", "level1", status="crashed"), "finished": "2026-01-02T00:00:00"})
    out = tmp_path / "merged"
    assert main(["bench", "merge", str(a), str(b / sb.RESULTS), "-o", str(out)]) == 0
    merged = sb.read_jsonl(out / sb.RESULTS)
    assert [r["name"] for r in merged] == list("abcde")
    assert merged[0]["status"] == "ok"
    assert {r["run"] for r in sb.read_jsonl(out / sb.RUNS)} == {"r1", "r2"}
    assert (out / "report.md").is_file() and (out / "plots" / "roofline.png").is_file()
    assert main(["bench", "merge", str(tmp_path / "nothing"), "-o", str(out)]) != 0


# --------------------------------------------------------------------------- CLI without a GPU

@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_bench_says_it_needs_a_gpu(tmp_path, capsys):
    p = write(tmp_path, "level1/p.py", POINTWISE)
    assert main(["bench", str(p), "-o", str(tmp_path / "out")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- failure paths, in subprocesses

def measure_spec(problem, **kw):
    spec = {"kind": "measure", "problem_path": str(problem), "new_path": None, "compile_modes": [],
            "ceilings": CEIL, "device": "cpu", "fuseforge_error": "prepare failed: test"}
    spec.update(kw)
    return spec


def test_failures_are_recorded_with_their_cause(tmp_path):
    raises = write(tmp_path, "level1/raises.py", RAISES)
    status, result, why = sb.run_child(measure_spec(raises), timeout=120, workdir=tmp_path / "w",
                                       log_path=tmp_path / "raises.log")
    assert status == "ok" and result["status"] == "error" and result["phase"] == "flops"
    assert "boom in forward" in result["error"]

    hangs = write(tmp_path, "level1/hangs.py", HANGS)
    status, result, why = sb.run_child(measure_spec(hangs), timeout=8, workdir=tmp_path / "w",
                                       log_path=tmp_path / "hangs.log")
    assert status == "timeout" and why == "timed out after 8 s"
    assert result["phase"] == "flops" and result["status"] == "running"   # the partial record says where

    dies = write(tmp_path, "level1/dies.py", DIES)
    status, result, why = sb.run_child(measure_spec(dies), timeout=120, workdir=tmp_path / "w",
                                       log_path=tmp_path / "dies.log")
    assert status == "crashed" and "exit code 7" in why and result["phase"] == "flops"
    assert not list((tmp_path / "w").iterdir())                          # spec/out files cleaned up


def test_run_on_cpu_records_every_problem_and_resumes(tmp_path, monkeypatch):
    """The whole runner without a GPU: prepare in workers, measure in fresh processes, report."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "suite/level1/data_dependent.py", DATA_DEPENDENT)
    write(tmp_path, "suite/level2/raises.py", RAISES)
    out = tmp_path / "out"
    new = sb.run_suite(["suite"], out, jobs=2, compile_modes=[], device="cpu", ceilings=CEIL, timeout=120,
                       console=quiet(), plots=False)
    by = {r["name"]: r for r in new}
    assert set(by) == {"data_dependent", "raises"}
    dd = by["data_dependent"]
    assert dd["status"] == "ok" and dd["versions"]["eager"]["ms"] > 0 and dd["floor_ms"] > 0
    assert not dd["versions"]["fuseforge"]["correct"]
    assert "CaptureError" in dd["versions"]["fuseforge"]["error"]       # fuseforge's cause, from prepare
    assert by["raises"]["status"] == "error" and "boom" in by["raises"]["error"]
    assert Path(by["raises"]["log"]).is_file()
    md = (out / "report.md").read_text()
    assert "CaptureError" in md and "boom in forward" in md
    assert len(sb.read_jsonl(out / sb.RUNS)) == 1
    # a second run skips both; --force would redo them
    assert sb.run_suite(["suite"], out, jobs=2, compile_modes=[], device="cpu", ceilings=CEIL,
                        console=quiet(), plots=False) == []
    assert len(sb.read_jsonl(out / sb.RESULTS)) == 2 and len(sb.read_jsonl(out / sb.RUNS)) == 1


# --------------------------------------------------------------------------- on a GPU

@pytest.mark.gpu
def test_bench_two_tiny_problems_on_the_gpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "suite/level1/relu_add.py", POINTWISE.replace("(8, 5)", "(256, 1000)"))
    write(tmp_path, "suite/level2/linear_gelu.py", """
        import torch
        class Model(torch.nn.Module):
            def __init__(self, n):
                super().__init__()
                self.lin = torch.nn.Linear(n, n)
            def forward(self, x):
                return torch.nn.functional.gelu(self.lin(x)) * 0.5
        def get_inputs():
            return [torch.randn(512, 1024)]
        def get_init_inputs():
            return [1024]
        """)
    out = tmp_path / "out"
    assert main(["bench", "suite", "-o", str(out), "--jobs", "2", "--timeout", "400"]) == 0
    records = {r["name"]: r for r in sb.read_jsonl(out / sb.RESULTS)}
    assert set(records) == {"relu_add", "linear_gelu"}
    for r in records.values():
        assert r["status"] == "ok", r
        for v in ("eager", "compile:default", "fuseforge"):
            assert r["versions"][v]["correct"], (v, r["versions"][v])
            assert r["versions"][v]["ms"] > 0 and r["versions"][v]["trials"] >= 30
            assert 0 < r["versions"][v]["host_ms"] < 1000
        captures, replays = r["versions"]["fuseforge"]["replays"]   # the timed forward replayed
        assert captures >= 1 and replays >= 30, r["versions"]["fuseforge"]
        assert r["floor_ms"] > 0 and r["bytes"] > 0
        assert r["prepare"]["fuseforge"]["ok"] and r["prepare"]["compile"]["default"]["ok"]
    assert records["linear_gelu"]["flops"] == 2 * 512 * 1024 * 1024
    [run] = sb.read_jsonl(out / sb.RUNS)
    assert run["env"]["gpu"] and run["ceilings"]["tf32_flops_per_s"] > run["ceilings"]["fp32_flops_per_s"]
    assert (out / "plots" / "roofline.png").is_file() and "level2" in (out / "report.md").read_text()
    print((out / "report.md").read_text())


def test_a_killed_child_leaves_no_build_lock(tmp_path, monkeypatch):
    """torch's extension builder locks the build directory on every load and unlocks it in a
    `finally`; a child killed there left the lock, and every later load of that extension waited
    on it until the run's budget was spent. A child killed at its timeout takes the lock of the
    generated file it loads with it; one that ends by itself leaves the directory alone."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    from fuseforge.build import build_dir

    def generated(name):
        path = tmp_path / f"{name}.py"
        path.write_text(f'_ext = load_inline(\n        name="{name}",\n        cpp_sources=[],\n)\n')
        lock = build_dir(name) / "lock"
        lock.write_text("")
        return path, lock

    new_path, lock = generated("ff_hangs_0123abcd")
    hangs = write(tmp_path, "level1/hangs.py", HANGS)
    status, _, _ = sb.run_child(measure_spec(hangs, new_path=str(new_path)), timeout=8, workdir=tmp_path / "w",
                                log_path=tmp_path / "hangs.log")
    assert status == "timeout" and not lock.exists()

    new_path, lock = generated("ff_raises_4567cdef")
    raises = write(tmp_path, "level1/raises.py", RAISES)
    status, _, _ = sb.run_child(measure_spec(raises, new_path=str(new_path)), timeout=120, workdir=tmp_path / "w",
                                log_path=tmp_path / "raises.log")
    assert status == "ok" and lock.exists()
