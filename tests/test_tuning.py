"""GEMM tuning (tuning.py, tune.py, plan_gemm.choose): the tuning model reproduces each product's
layouts, the planner takes measured times where the tuning file has fresh ones for the target GPU
(and the estimates elsewhere), and on a GPU `fuseforge tune` measures and the plan follows."""
import json

import pytest
import torch
import torch.nn as nn

from fuseforge import tuning
from fuseforge.capture import capture
from fuseforge.plan import plan
from fuseforge.plan_gemm import LARGE, SMALL, GemmKernel
from fuseforge.tune import Products, form


class Layouts(nn.Module):
    """Products whose operands are read along k or along m/n, batched, with A or B shared."""
    def forward(self, a, b, at, bt, ab, bb, a3t, a3):
        return (a @ b, at.t() @ bt.t(), torch.relu(a @ bt.t()), ab @ bb, a[:80] @ bb,
                a3t.transpose(1, 2) @ b, a3.transpose(0, 1) @ b)


def layout_inputs():
    m, n, k = 160, 120, 72
    return [torch.randn(*s) for s in [(m, k), (k, n), (k, m), (n, k), (3, 40, k), (3, k, 64), (2, k, 50), (50, 2, k)]]


def gemms(model, xs):
    return [k.gemm for k in plan(capture(model, xs)).kernels if isinstance(k, GemmKernel)]


@pytest.fixture
def every_gemm(monkeypatch):
    monkeypatch.setenv("FUSEFORGE_GEMM", "all")
    monkeypatch.setenv("FUSEFORGE_TUNING", "off")


def test_tuning_model_reproduces_each_layout(every_gemm):
    """The model `fuseforge tune` builds computes each product with the layouts it was given (its
    key), for every operand layout the planner distinguishes; a product it cannot give them is
    left out (None), not timed under another key."""
    found = gemms(Layouts(), layout_inputs())
    keys = [tuning.key(g, False) for g in found]
    assert len(set(keys)) == len(found) == 7, keys
    assert [k.split(" ")[1:3] for k in keys] == [["a:k16", "b:mn16"], ["a:mn16", "b:k16"], ["a:k16", "b:k16"],
                                                  ["a:k16", "b:mn16"], ["a:k16s", "b:mn16"], ["a:mn4", "b:mn16s"],
                                                  ["a:k16", "b:mn16s"]], keys
    forms = [form(g, False) for g in found]
    assert forms[-1] is None and all(forms[:-1])      # A along k, B shared: matmul would fold the batch
    xs = [torch.randn(*s) for f in forms[:-1] for s in (f.a_shape, f.b_shape)]
    assert [tuning.key(g, False) for g in gemms(Products(forms[:-1]), xs)] == keys[:-1]


def _write(tmp_path, monkeypatch, g, times, library=None):
    file = tmp_path / "tuning.json"
    file.write_text(json.dumps({"Test GPU": {tuning.key(g, False): {**times, "library": library or tuning.library_hash()}}}))
    monkeypatch.setenv("FUSEFORGE_TUNING", str(file))
    monkeypatch.setenv("FUSEFORGE_GPU", "Test GPU")


class One(nn.Module):
    def forward(self, a, b):
        return torch.relu(a @ b)


def test_plan_follows_measured_times(tmp_path, monkeypatch):
    """Where the tuning file has this product for the target GPU, its times decide: the fastest
    tile configuration, or cuBLAS when it is faster than that plus the epilogue pass the fusion
    saves; the decision log says so. A stale entry (another GEMM library) or another GPU: the
    estimates."""
    monkeypatch.delenv("FUSEFORGE_GEMM", raising=False)
    xs = [torch.empty(2048, 1024), torch.empty(1024, 2048)]
    monkeypatch.setenv("FUSEFORGE_TUNING", "off")
    g = gemms(One(), xs)[0]
    assert plan(capture(One(), xs)).kernels[0].tiles == LARGE    # the estimate: 256 large tiles

    _write(tmp_path, monkeypatch, g, {"cublas": 1.0, "large": 0.9, "small": 0.5})
    p = plan(capture(One(), xs))
    assert [k.tiles for k in p.kernels if isinstance(k, GemmKernel)] == [SMALL], p.decisions
    assert any("measured on Test GPU" in d for d in p.decisions), p.decisions

    # the epilogue pass saved (2 x 16 MB at the copy rate, about 0.011 ms) does not cover 0.1 ms
    _write(tmp_path, monkeypatch, g, {"cublas": 0.4, "large": 0.5, "small": 0.6})
    p = plan(capture(One(), xs))
    assert not [k for k in p.kernels if isinstance(k, GemmKernel)], p.decisions
    assert any("extern, cuBLAS float32 (measured on Test GPU" in d for d in p.decisions), p.decisions
    # ... but covers 0.005 ms
    _write(tmp_path, monkeypatch, g, {"cublas": 0.4, "large": 0.405, "small": 0.6})
    assert [k.tiles for k in plan(capture(One(), xs)).kernels if isinstance(k, GemmKernel)] == [LARGE]

    _write(tmp_path, monkeypatch, g, {"cublas": 0.4, "large": 0.5, "small": 0.6}, library="0" * 12)
    assert [k.tiles for k in plan(capture(One(), xs)).kernels if isinstance(k, GemmKernel)] == [LARGE]
    _write(tmp_path, monkeypatch, g, {"cublas": 0.4, "large": 0.5, "small": 0.6})
    monkeypatch.setenv("FUSEFORGE_GPU", "Another GPU")
    assert [k.tiles for k in plan(capture(One(), xs)).kernels if isinstance(k, GemmKernel)] == [LARGE]


def test_measured_times_keep_the_accuracy_rule(tmp_path, monkeypatch):
    """A short product (K < MIN_K) stays with cuBLAS however fast the measured kernel was."""
    monkeypatch.delenv("FUSEFORGE_GEMM", raising=False)
    xs = [torch.empty(4096, 32), torch.empty(32, 4096)]
    monkeypatch.setenv("FUSEFORGE_GEMM", "all")
    g = gemms(One(), xs)[0]
    monkeypatch.delenv("FUSEFORGE_GEMM")
    _write(tmp_path, monkeypatch, g, {"cublas": 1.0, "large": 0.1, "small": 0.2})
    p = plan(capture(One(), xs))
    assert not [k for k in p.kernels if isinstance(k, GemmKernel)] and "K = 32 < 64" in "\n".join(p.decisions)


@pytest.mark.gpu
def test_tune_measures_and_the_plan_follows(tmp_path, monkeypatch):
    """`fuseforge tune` on a problem file: every product gets cuBLAS's and each configuration's time
    (positive, cuBLAS within a plausible range of its own event timing), and the next plan names
    the measurement."""
    from fuseforge.bench import time_cuda
    from fuseforge.cli import main
    problem = tmp_path / "p.py"
    problem.write_text('''import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1024, 2048)

    def forward(self, x):
        return torch.relu(self.fc(x))


def get_inputs():
    return [torch.randn(4096, 1024)]


def get_init_inputs():
    return []
''')
    file = tmp_path / "t.json"
    monkeypatch.delenv("FUSEFORGE_GEMM", raising=False)
    assert main(["tune", str(problem), "--file", str(file), "--trials", "10"]) == 0
    data = json.loads(file.read_text())[torch.cuda.get_device_name(0)]
    (key, entry), = data.items()
    assert key.startswith("1x4096x2048x1024 ") and entry["library"] == tuning.library_hash()
    assert all(entry[n] > 0 for n in ("cublas", "large", "small")), entry
    x, w = torch.randn(4096, 1024, device="cuda"), torch.randn(2048, 1024, device="cuda")
    events = time_cuda(lambda a, b: a @ b.t(), [x, w], trials=20).median_ms
    assert 0.5 * events < entry["cublas"] < 1.5 * events, (entry, events)
    monkeypatch.setenv("FUSEFORGE_TUNING", str(file))
    from fuseforge.problem import load_problem
    pr = load_problem(problem)
    p = plan(capture(pr.build(0), pr.inputs(0)))
    assert any(f"measured on {torch.cuda.get_device_name(0)}" in d for d in p.decisions), p.decisions


class Classifier(nn.Module):
    def forward(self, x, w):
        return x @ w.t()


def test_shipped_times_are_fresh_and_used(tmp_path, monkeypatch):
    """The package's table (the suite's products timed on the H100) was measured on the GEMM library
    of this code: if this fails, the kernels changed since; run `fuseforge tune $(cat
    bench/session18/gemm_problems.txt) --file src/fuseforge/gemm_tuning.json --force` on an H100.
    And a plan for the H100 takes it: level3/002's classifier (1024 x 8192 @ 8192 x 1000, 64 large
    tiles) measured fastest with k split 2 ways (0.220 ms; unsplit 0.322, cuBLAS 0.349)."""
    data = json.loads(tuning.SHIPPED.read_text())["NVIDIA H100 80GB HBM3"]
    assert len(data) >= 40 and {e["library"] for e in data.values()} == {tuning.library_hash()}
    monkeypatch.delenv("FUSEFORGE_GEMM", raising=False)
    monkeypatch.setenv("FUSEFORGE_TUNING", str(tmp_path / "none.json"))
    xs = [torch.empty(1024, 8192, device="meta"), torch.empty(1000, 8192, device="meta")]
    monkeypatch.setenv("FUSEFORGE_GPU", "NVIDIA H100 80GB HBM3")
    p = plan(capture(Classifier(), xs))
    assert [(k.tiles, k.split) for k in p.kernels if isinstance(k, GemmKernel)] == [(LARGE, 2)], p.decisions
    assert any("matmul: large_split2, measured on NVIDIA H100 80GB HBM3" in d for d in p.decisions), p.decisions
    monkeypatch.setenv("FUSEFORGE_TUNING", "off")
    assert any("matmul: large_split2, estimated" in d for d in plan(capture(Classifier(), xs)).decisions)
