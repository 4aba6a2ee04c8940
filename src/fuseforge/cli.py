"""fuseforge command line: optimize a problem file, or run the bundled demo."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from rich.console import Console

from .errors import BuildError, FuseforgeError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "conv2d_min_add_mul.py"
# Sizes for a CPU-only demo: the full problem (batch 128) takes minutes per convolution on a CPU.
CPU_DEMO_OVERRIDES = {"batch_size": 2}


def _overrides(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        if not _:
            raise SystemExit(f"--set expects NAME=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _run_optimize(console: Console, problem, output, args, overrides) -> int:
    from .pipeline import optimize, require_passed
    from .report import as_dict, print_report

    @contextlib.contextmanager
    def progress(text):
        with console.status(f"[bold]{text}…"):
            yield
        console.print(f"[dim]✓ {text}[/dim]")

    report = optimize(problem, output, device=args.device, trials=args.trials,
                      bench=not args.no_bench, compile_baseline=args.compile, overrides=overrides,
                      small=getattr(args, "small", False),
                      progress=progress)
    print_report(report, console)
    if args.json:
        Path(args.json).write_text(json.dumps(as_dict(report), indent=2))
    require_passed(report.verify)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fuseforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--device", default="auto", help="auto (cuda if available), cuda or cpu")
        p.add_argument("--trials", type=int, default=5, help="verification trials (fresh inputs each)")
        p.add_argument("--no-bench", action="store_true", help="skip the GPU timing")
        p.add_argument("--compile", action="store_true", help="also time torch.compile")
        p.add_argument("--json", help="write the report as JSON to this file")
        p.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help="override a module-level name of the problem (e.g. batch_size=2)")
        from .plan_gemm import add_gemm_option
        add_gemm_option(p)

    opt = sub.add_parser("optimize", help="problem file → verified ModelNew file")
    opt.add_argument("problem", help="a KernelBench-format problem file")
    opt.add_argument("-o", "--output", help="where to write ModelNew (default: <problem>_new.py)")
    opt.add_argument("--small", action="store_true",
                     help="apply the problem's SMALL sizes first (--set still overrides them)")
    common(opt)
    from .sweep import add_sweep_parser
    add_sweep_parser(sub)
    demo = sub.add_parser("demo", help="optimize the bundled example (conv2d → min → +bias → ×scale)")
    demo.add_argument("-o", "--output", default="out/conv2d_min_add_mul_new.py")
    common(demo)
    from .suite_bench import add_bench_parser
    add_bench_parser(sub)
    from .check.cli import add_check_parser
    add_check_parser(sub)
    from .tune import add_tune_parser
    add_tune_parser(sub)

    args = parser.parse_args(argv)
    if getattr(args, "gemm", None):
        os.environ["FUSEFORGE_GEMM"] = args.gemm
    if getattr(args, "tf32", False):
        os.environ["FUSEFORGE_TF32"] = "1"
    console = Console()
    try:
        if args.command == "bench":
            from .suite_bench import main_bench
            return main_bench(args, console)
        if args.command == "tune":
            from .tune import main_tune
            return main_tune(args, console)
        if args.command == "sweep":
            from .sweep import main_sweep
            return main_sweep(args, console)
        overrides = _overrides(args.set)
        if args.command == "check":
            from .check.cli import run_check
            return run_check(args, console, overrides)
        if args.command == "demo":
            import torch
            if not torch.cuda.is_available() and args.device in ("auto", "cpu") and not overrides:
                overrides = dict(CPU_DEMO_OVERRIDES)
                console.print("[yellow]No GPU here: the demo runs the example at batch_size=2 on the "
                              "CPU twin (the full size runs with a GPU).[/yellow]")
            return _run_optimize(console, EXAMPLE, args.output, args, overrides)
        output = args.output or str(Path(args.problem).with_name(Path(args.problem).stem + "_new.py"))
        return _run_optimize(console, args.problem, output, args, overrides)
    except BuildError as e:
        console.print(f"[red]build error:[/red] {e}")
        if e.log:
            console.print(e.log[-4000:], markup=False, highlight=False)
        return 2
    except FuseforgeError as e:
        console.print(f"[red]error:[/red] {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
