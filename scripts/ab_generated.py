"""Two generations of ModelNew files side by side on one GPU: each verified against its problem's
reference, then eager, the OLD and the NEW file timed in the same process, rounds interleaved
(so that a drift of the clock or the card weighs on all three alike).

    python3 scripts/ab_generated.py OLD_DIR NEW_DIR PROBLEM.py... [--rounds 5] [--json OUT] [--build-only]
                                    [--no-verify] [--swap]

OLD_DIR and NEW_DIR hold files as scripts/generate_sources.py writes them (level2_001_....py for
suite/level2/001_....py). Every file is built first, several at once (--jobs), so that the timing
loop finds them in the extension cache. Prints a table, last: each version's median over the rounds
of a round's median (time_cuda: L2 flushed before each call), NEW / OLD, and the host time of a
call of OLD and NEW (bench.host_time), back to back and with the GPU idle before each.
"""
import argparse
import json
import math
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def generated(folder: Path, problem: Path) -> Path:
    return folder / f"{problem.parent.name}_{problem.stem}.py"


def build(path: Path) -> str:
    """Build one file's extension in a process of its own (the builds of several run at once)."""
    code = ("import sys; sys.path.insert(0, 'src'); from fuseforge.build import load_generated; "
            f"load_generated({str(path)!r}, {path.parent.name + '_' + path.stem!r})")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return "" if done.returncode == 0 else f"{path}: {done.stderr.strip().splitlines()[-1:]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("problems", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--build-only", action="store_true", help="build every file, time nothing")
    ap.add_argument("--swap", action="store_true",
                    help="measure each problem twice, OLD loaded first then NEW first (fresh models): the "
                         "load order moved cuDNN- and cuBLAS-heavy problems by up to 17 %% (bench/session23/"
                         "order); NEW / OLD is then the geometric mean of the two orders' ratios")
    ap.add_argument("--no-verify", action="store_true",
                    help="time the NEW files even where wrong: ablations that drop work on purpose "
                         "(scripts/conv_ablations.py); the table marks them")
    args = ap.parse_args()

    files = [generated(d, p) for p in args.problems for d in (args.old, args.new)]
    with ThreadPoolExecutor(args.jobs) as pool:
        errors = [e for e in pool.map(build, files) if e]
    for e in errors:
        print("build failed:", e)
    if args.build_only:
        return 1 if errors else 0

    import torch
    from fuseforge.bench import environment, host_time, time_cuda
    from fuseforge.build import load_generated
    from fuseforge.problem import load_problem
    from fuseforge.verify import verify

    def load(problem, row, tag, folder, p):
        """The verified model of one file, or None (its failures in the row)."""
        path = generated(folder, p)
        try:
            cls = load_generated(path, f"{path.parent.name}_{path.stem}").module.ModelNew
            result = verify(problem, cls, device="cuda", trials=2)
            row[f"{tag}_correct"] = result.passed
            if result.passed or tag == "new" and args.no_verify:
                torch.manual_seed(0)
                return cls(*problem.init_args()).cuda()
            row[f"{tag}_failures"] = result.failures[:2]
        except Exception as e:   # reported in the table, the other problems go on
            row[f"{tag}_correct"], row[f"{tag}_failures"] = False, [f"{type(e).__name__}: {e}"[:300]]
        return None

    rows = []
    for p in args.problems:
        problem = load_problem(p)
        row = {"problem": f"{p.parent.name}/{p.stem}"}
        inputs = problem.inputs(0, "cuda")
        orders = [[("old", args.old), ("new", args.new)]]
        if args.swap:
            orders.append(orders[0][::-1])
        times, ratios = {}, []
        for k, order in enumerate(orders):   # a fresh set of models each order
            models = {"eager": problem.build(0).cuda()}
            for tag, folder in order:
                model = load(problem, row, tag, folder, p)
                if model is not None:
                    models[tag] = model
            these = {tag: [] for tag in models}
            for _ in range(args.rounds):
                for tag, model in models.items():
                    these[tag].append(time_cuda(model, inputs, trials=args.trials).median_ms)
            for tag, ts in these.items():
                times.setdefault(tag, []).extend(ts)
            if "old" in these and "new" in these:
                ratios.append(statistics.median(these["new"]) / statistics.median(these["old"]))
            if k == 0:
                for tag in models:
                    row[f"{tag}_host"] = host_time(models[tag], inputs)
                    row[f"{tag}_host_idle"] = host_time(models[tag], inputs, idle=True)
            del models
            torch.cuda.empty_cache()
        for tag, ts in times.items():
            row[tag] = statistics.median(ts)
        if ratios:
            row["ratio"] = math.prod(ratios) ** (1 / len(ratios))
            row["ratios_by_order"] = ratios
        rows.append(row)

    env = environment()
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    print(f"{env.get('gpu')}, torch {env['torch']}: ms (median of {args.rounds} rounds of {args.trials})")
    print(f"{'problem':58} {'eager':>8} {'old':>8} {'new':>8} {'new/old':>8}   host ms: {'old':>7} {'new':>7}"
          f"   GPU idle: {'old':>7} {'new':>7}")
    for r in rows:
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else "-"
        cells = [f"{r[t]:8.4f}" if t in r else f"{'FAIL':>8}" for t in ("eager", "old", "new")]
        host = [f"{r[t + k]:7.4f}" if t + k in r else f"{'-':>7}" for k in ("_host", "_host_idle") for t in ("old", "new")]
        print(f"{r['problem']:58} {' '.join(cells)} {ratio:>8}            {' '.join(host[:2])}            {' '.join(host[2:])}")
        if len(r.get("ratios_by_order", [])) > 1:
            print(f"    new/old with old loaded first {r['ratios_by_order'][0]:.3f}, new first {r['ratios_by_order'][1]:.3f}")
        for tag in ("old", "new"):
            for f in r.get(f"{tag}_failures", []):
                print(f"    {tag}: {f}")
        if args.no_verify and not r.get("new_correct"):
            print("    new: wrong on purpose (--no-verify), timed anyway")
    return 1 if errors or not args.no_verify and any(not r.get("new_correct") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
