"""End to end on the CPU twin: problem file → ModelNew file → build → verify."""
import ast
import sys
from pathlib import Path

import pytest
import torch

import fuseforge
from fuseforge.cli import main
from fuseforge.errors import BuildError, CaptureError, ProblemError
from fuseforge.build import load_generated
from fuseforge.pipeline import optimize
from fuseforge.problem import load_problem
from fuseforge.verify import verify

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "conv2d_min_add_mul.py"
PROBLEMS = Path(__file__).parent / "problems"
SMALL = {"batch_size": 2, "height": 20, "width": 17}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    out = tmp_path_factory.mktemp("example") / "model_new.py"
    return optimize(EXAMPLE, out, device="cpu", trials=3, overrides=SMALL)


def test_example_is_one_generated_conv_with_its_epilogue(example):
    # the convolution is generated (plan_conv: 64 input channels into 128 on the model's input),
    # without its bias, which its epilogue adds (a view of it as [C, 1, 1])
    assert [e.node.target for e in example.plan.externs] == ["aten.view.default"]
    [kernel] = example.plan.kernels
    assert [n.target for n in kernel.nodes] == ["aten.conv2d.default", "aten.add.Tensor", "aten.min.other",
                                                "aten.add.Tensor", "aten.mul.Tensor"]
    assert kernel.node.arg("bias") is None and kernel.name == "fused_conv2d_add_min_add_mul"


def test_example_verifies_on_cpu(example):
    assert example.verify.passed, example.verify.failures
    assert example.verify.max_abs < 1e-4
    assert not example.cuda_ran and any("CPU twin" in n for n in example.notes)


def test_emitted_file_is_kernelbench_clean(example):
    text = example.output.read_text()
    tree = ast.parse(text)
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Try, ast.Pass))]
    imported = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            imported |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            imported.add(n.module.split(".")[0])
    assert imported <= {"torch"} | set(sys.stdlib_module_names), imported
    assert "load_inline(" in text and "cuda_sources=" in text
    assert "struct fused_conv2d_add_min_add_mul_conv {" in text and "ffconv::launch<fused_conv2d_add_min_add_mul_conv>" in text


def test_same_seed_same_state_dict(example):
    problem = load_problem(EXAMPLE, SMALL)
    torch.manual_seed(7)
    ref = problem.model_cls(*problem.init_args())
    torch.manual_seed(7)
    new = example.loaded.module.ModelNew(*problem.init_args())
    a, b = ref.state_dict(), new.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_model_new_rejects_other_init_args(example):
    with pytest.raises(ValueError, match="generated for"):
        example.loaded.module.ModelNew(3, 8, 3, 0.5, (8, 1, 1), 2.0)


def test_second_optimize_reuses_the_build(example, tmp_path):
    again = optimize(EXAMPLE, tmp_path / "again.py", device="cpu", trials=1, overrides=SMALL)
    assert again.loaded.cached
    assert again.generated.ext_name == example.generated.ext_name


def test_input_shape_guard(example):
    problem = load_problem(EXAMPLE, SMALL)
    torch.manual_seed(0)
    new = example.loaded.module.ModelNew(*problem.init_args())
    with pytest.raises(RuntimeError, match="compiled for"):
        new(torch.randn(3, 64, 20, 17))


def test_training_mode_batch_norm_and_dropout(tmp_path):
    report = optimize(PROBLEMS / "bn_dropout.py", tmp_path / "bn_new.py", device="cpu", trials=3)
    assert report.verify.passed, report.verify.failures
    problem = load_problem(PROBLEMS / "bn_dropout.py")
    torch.manual_seed(0)
    new = report.loaded.module.ModelNew(*problem.init_args())
    before = new.bn.running_mean.clone()
    new(*problem.inputs(1))
    assert not torch.equal(before, new.bn.running_mean), "running statistics were not updated"
    new.eval()
    with pytest.raises(RuntimeError, match="training"):
        new(*problem.inputs(1))


def test_verify_catches_a_wrong_model(tmp_path):
    """The checker must be able to fail: a ModelNew off by a little is rejected."""
    problem = load_problem(PROBLEMS / "bn_dropout.py")

    class Wrong(problem.model_cls):
        def forward(self, x):
            return super().forward(x) * 1.05 + 0.02

    assert not verify(problem, Wrong, trials=1).passed


def test_multi_output_problem(tmp_path):
    report = optimize(PROBLEMS / "multi_output.py", tmp_path / "multi_new.py", device="cpu", trials=3)
    assert report.verify.passed, report.verify.failures
    kernels = report.plan.kernels
    # relu*sigmoid(scale)*2 before the linear, tanh+add after it, and y.sum (a row kernel alone:
    # generated too)
    assert len(kernels) == 3, [k.name for k in kernels]
    assert any(n.target == "aten.sigmoid.default" for n in kernels[0].nodes)


def test_library_compile_shares_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.Hardtanh(-0.5, 0.5))
    x = torch.randn(3, 8)
    compiled = fuseforge.compile(model, [x])
    torch.testing.assert_close(compiled(x), model(x))
    with torch.no_grad():
        model[0].bias.add_(1.0)        # the compiled module sees the same parameters
    torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.parametrize("name, error, text", [
    ("broken_import.py", ProblemError, "does not import"),
    ("missing_names.py", ProblemError, "get_inputs, get_init_inputs"),
    ("fails_on_inputs.py", ProblemError, "fails on its own inputs"),
    ("data_dependent.py", CaptureError, "torch.export could not capture"),
])
def test_clear_errors(tmp_path, name, error, text):
    with pytest.raises(error, match=text):
        optimize(PROBLEMS / name, tmp_path / "x.py", device="cpu")


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    assert main(["optimize", str(PROBLEMS / "missing_names.py"), "-o", str(tmp_path / "x.py")]) == 1
    assert "error:" in capsys.readouterr().out


def test_build_error_names_the_source(example, tmp_path):
    broken = tmp_path / "broken.py"
    text = example.output.read_text().replace('_ELEMENT_SOURCE = r"""', '_ELEMENT_SOURCE = r"""\n#error deliberately broken\n', 1)
    broken.write_text(text.replace(example.generated.ext_name, example.generated.ext_name + "_broken"))
    with pytest.raises(BuildError) as info:
        load_generated(broken, example.generated.ext_name + "_broken")
    assert str(broken) in str(info.value)
    assert "deliberately broken" in info.value.log


@pytest.mark.gpu
def test_example_full_size_on_gpu(tmp_path):
    report = optimize(EXAMPLE, tmp_path / "new.py", device="cuda", trials=3, bench=False)
    assert report.cuda_ran and report.verify.passed, report.verify.failures


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["bn_dropout.py", "multi_output.py"])
def test_problems_on_gpu(tmp_path, name):
    report = optimize(PROBLEMS / name, tmp_path / "new.py", device="cuda", trials=3, bench=False)
    assert report.verify.passed, report.verify.failures
