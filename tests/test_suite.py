"""The problem suite (suite/): every file well formed and runnable at its SMALL sizes; a slice
through the whole pipeline on the CPU twin; load_problem(small=True) and `fuseforge sweep`."""
import ast
import json
from pathlib import Path

import pytest
import torch

from fuseforge.cli import main
from fuseforge.errors import ProblemError
from fuseforge.pipeline import optimize
from fuseforge.problem import load_problem
from fuseforge.sweep import SUITE, discover, problem_id

ROOT = Path(__file__).resolve().parents[1]
FILES = discover([SUITE])
MINIMUM = {"level1": 60, "level2": 80, "level3": 15}
SMALL_MAX_ELEMENTS = 150_000          # "roughly 100k elements per tensor" at SMALL sizes
FULL_MAX_BYTES = 1.1e9                # full-size inputs and parameters: under ~1 GB each

# A slice through the pipeline: conv and GEMM based, each level, reductions and norms inside.
SLICE = [
    "level1/055_softmax",
    "level1/073_logsumexp_dim",
    "level2/001_conv2d_batchnorm_relu",
    "level2/002_conv2d_gelu_groupnorm",
    "level2/042_convtranspose3d_maxpool_softmax_subtract_swish_max",
    "level2/064_linear_layernorm_gelu",
    "level3/005_resnet_basic_block",
    "level3/010_transformer_encoder_block",
]


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    assert isinstance(out, (tuple, list)) and out, f"expected a tensor or a tuple of tensors, got {type(out)}"
    assert all(isinstance(o, torch.Tensor) for o in out), [type(o) for o in out]
    return list(out)


def test_levels_meet_the_minimum_counts():
    counts = {level: sum(1 for f in FILES if f.parent.name == level) for level in MINIMUM}
    assert all(counts[level] >= n for level, n in MINIMUM.items()), counts
    assert len({f.name for f in FILES}) == len(FILES)


def test_file_names_are_numbered_per_level():
    for level in MINIMUM:
        names = sorted(f.name for f in FILES if f.parent.name == level)
        numbers = [int(n[:3]) for n in names]
        assert numbers == list(range(1, len(names) + 1)), level
        assert all(n[3] == "_" and n[4:-3].replace("_", "").isalnum() and n[4:-3].islower() for n in names)


@pytest.mark.parametrize("path", FILES, ids=[problem_id(f) for f in FILES])
def test_suite_file(path):
    source = path.read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert doc and "\n" not in doc.strip(), "needs a one-line module docstring"
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Try, ast.Pass))], "no try/pass"
    imported = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert {"torch", "torch.nn"} <= imported
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {"Model", "get_inputs", "get_init_inputs"} <= defined
    # Module level: imports, definitions, plain literal size names (read by get_inputs and
    # get_init_inputs at call time, so overriding one name is enough), SMALL, and __main__.
    sizes, has_main = {}, False
    for node in tree.body[1:]:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If):
            assert ast.unparse(node.test) == "__name__ == '__main__'", ast.unparse(node.test)
            has_main = True
            continue
        assert isinstance(node, ast.Assign), f"unexpected module-level statement: {ast.unparse(node)}"
        value = ast.literal_eval(node.value)      # a literal: no derived globals, no randomness
        for target in node.targets:
            assert isinstance(target, ast.Name)
            sizes[target.id] = value
    assert has_main, "needs an if __name__ == '__main__' block"
    small = sizes.pop("SMALL", None)
    assert isinstance(small, dict) and small, "needs a SMALL dict"
    assert set(small) <= set(sizes), f"SMALL names no module-level size: {set(small) - set(sizes)}"

    # Full size, on the meta device (no memory): inputs and parameters under ~1 GB each.
    full = load_problem(path)
    with torch.device("meta"):
        full_inputs = full.get_inputs()
        full_model = full.model_cls(*full.get_init_inputs())
    full_tensors = [x for x in full_inputs if isinstance(x, torch.Tensor)] + list(full_model.parameters())
    assert max(t.numel() * t.element_size() for t in full_tensors) < FULL_MAX_BYTES
    assert all(t.dtype in (torch.float32, torch.int64, torch.bool) for t in full_tensors)

    # SMALL: runs on the CPU, returns tensors, random (not all-zero) inputs, small tensors.
    problem = load_problem(path, small=True)
    model = problem.build(0)
    inputs = problem.inputs(0)
    assert inputs and all(isinstance(x, torch.Tensor) for x in inputs)
    assert all(x.device.type == "cpu" for x in inputs)
    for x in inputs:
        assert x.numel() and x.any(), "an input is all zeros"
        if x.is_floating_point():
            assert torch.isfinite(x).all()
    assert max(x.numel() for x in inputs) < max(x.numel() for x in full_inputs), "SMALL does not shrink"
    with torch.no_grad():
        outs = _tensors(model(*inputs))
    for t in inputs + outs + list(model.parameters()):
        assert t.numel() <= SMALL_MAX_ELEMENTS, f"a tensor of {t.numel()} elements at SMALL sizes"
    for o in outs:
        if o.is_floating_point():
            assert not torch.isnan(o).any(), "NaN in the output at SMALL sizes"


def test_load_problem_small_then_overrides(tmp_path):
    path = SUITE / "level2" / "002_conv2d_gelu_groupnorm.py"
    small = load_problem(path, small=True)
    assert small.module.batch_size == 2 and small.module.height == 16
    both = load_problem(path, {"height": 20}, small=True)
    assert both.module.height == 20 and both.module.batch_size == 2      # explicit overrides win
    assert both.overrides["height"] == 20 and both.overrides["num_groups"] == 4
    assert list(both.inputs(0)[0].shape) == [2, 3, 20, 17]
    assert load_problem(path).module.batch_size == 64                    # the full size untouched
    with pytest.raises(ProblemError, match="no SMALL"):
        load_problem(ROOT / "examples" / "conv2d_min_add_mul.py", small=True)


def test_discover_skips_private_files_and_readmes(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/002_b.py", "a/001_a.py", "a/_helper.py", "README.py", "a/notes.txt"):
        (tmp_path / name).write_text("")
    assert [f.relative_to(tmp_path).as_posix() for f in discover([tmp_path])] == ["a/001_a.py", "a/002_b.py"]


@pytest.mark.parametrize("name", SLICE)
def test_slice_verifies_on_cpu(name, tmp_path):
    report = optimize(SUITE / f"{name}.py", tmp_path / "model_new.py", small=True, device="cpu",
                      bench=False, trials=2)
    assert report.verify.passed, report.verify.failures


def test_sweep_cli_records_each_status(tmp_path):
    # the slice problem is built by then (content-hash cache); the broken file fails at import
    out = tmp_path / "sweep.json"
    rc = main(["sweep", str(SUITE / f"{SLICE[0]}.py"), str(ROOT / "tests" / "problems" / "broken_import.py"),
               "--small", "--device", "cpu", "--trials", "1", "--out", str(tmp_path / "out"),
               "--json", str(out)])
    assert rc == 1
    data = json.loads(out.read_text())
    by_name = {r["problem"]: r for r in data["results"]}
    assert by_name["level1/055_softmax"]["status"] == "pass"
    assert (tmp_path / "out" / "level1" / "055_softmax_new.py").is_file()
    broken = by_name["problems/broken_import"]
    assert broken["status"] == "problem-error" and "broken on purpose" in broken["cause"]
    assert data["counts"]["pass"] == 1 and data["counts"]["problem-error"] == 1 and data["complete"]
