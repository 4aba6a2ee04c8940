"""`fuseforge check REF.py NEW.py`: the subcommand's arguments and its run."""
from __future__ import annotations

import json
from pathlib import Path

from . import DEFAULT_BUILD_TIMEOUT_S, DEFAULT_TIMEOUT_S, LEVELS, CheckOptions, check
from .summary import print_summary


def add_check_parser(sub) -> None:
    p = sub.add_parser("check", help="evaluate any ModelNew file against a problem file (isolated, hack-aware)")
    p.add_argument("reference", help="the problem file (Model, get_inputs, get_init_inputs)")
    p.add_argument("candidate", help="the file that defines ModelNew")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: cuda if a GPU is visible, else cpu")
    p.add_argument("--trials", type=int, default=5, help="correctness trials, fresh seeded inputs each (5)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default by dtype: float32 1e-2)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default by dtype: float32 1e-2)")
    p.add_argument("--static-level", default="default", choices=LEVELS,
                   help="strictness of the static checks (default: default)")
    p.add_argument("--json", help="write the result as JSON to this file")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds one stage of the run may take (a trial, the timing; default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--build-timeout", type=float, default=DEFAULT_BUILD_TIMEOUT_S,
                   help=f"seconds for the worker's start, importing/building the candidate and "
                        f"torch.compile (default {DEFAULT_BUILD_TIMEOUT_S:g})")
    p.add_argument("--memory", type=float, default=None, metavar="GB",
                   help="host memory limit of the worker process tree (default 80%% of RAM)")
    p.add_argument("--gpu-memory-fraction", type=float, default=0.9,
                   help="cap of the worker's CUDA caching allocator (default 0.9)")
    p.add_argument("--no-bench", action="store_true", help="skip the GPU timing")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the reference")
    p.add_argument("--bench-trials", type=int, default=100, help="timed calls per version (at least 30)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a module-level name of the problem (e.g. batch_size=2)")


def run_check(args, console, overrides: dict) -> int:
    opts = CheckOptions(device=args.device, trials=args.trials, atol=args.atol, rtol=args.rtol, seed=args.seed,
                        static_level=args.static_level, timeout=args.timeout, build_timeout=args.build_timeout,
                        memory_limit_gb=args.memory, gpu_memory_fraction=args.gpu_memory_fraction,
                        bench=not args.no_bench, compile=args.compile, bench_trials=args.bench_trials,
                        overrides=overrides)
    with console.status("[bold]checking (the candidate runs in a separate process)…"):
        result = check(args.reference, args.candidate, opts)
    print_summary(result, console)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=2, default=str))
    return 0 if result.passed else 1
