"""The human summary of a check (rich)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

VERDICT_STYLE = {"pass": "green", "flagged": "yellow", "incorrect": "red"}


def print_summary(result, console: Console | None = None, *, show_log: bool = True) -> None:
    console = console or Console()
    d = result.as_dict()
    table = Table(title=f"fuseforge check: {result.candidate}  vs  {result.reference}", show_header=False,
                  title_justify="left", box=None, padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    style = VERDICT_STYLE.get(result.verdict, "red")
    table.add_row("verdict", f"[{style}]{result.verdict.upper()}[/{style}]  "
                             f"(exit code {0 if result.passed else 1})")
    table.add_row("device", d["device"] + (f"  [dim]{escape(str(d['env'].get('gpu')))}[/dim]"
                                           if d["env"].get("gpu") else ""))
    build = "yes" if d["compiled"] else "no"
    if d.get("build_seconds") is not None:
        build += f"  [dim](import/build {d['build_seconds']:.2f} s)[/dim]"
    table.add_row("compiled", build)
    err = result.error
    if err:
        table.add_row("error", f"[red]{escape(err['kind'])}[/red] in stage '{escape(str(err.get('stage')))}': "
                               f"{escape(err['message'][:800])}")
    if d["correctness_trials"]:
        ok = d["correctness"]
        line = (f"{'[green]yes[/green]' if ok else '[red]no[/red]'}: {d['trials_passed']} of "
                f"{d['correctness_trials']} trials, max abs error {d['max_abs_error']:.2e}, "
                f"max rel error {d['max_rel_error']:.2e}")
        table.add_row("correct", line)
        for failure in d["failures"][:5]:
            table.add_row("", f"[red]{escape(failure)}[/red]")
    fp = d.get("fp64")
    if fp:
        table.add_row("vs float64", f"candidate {fp['candidate_rel_error']:.2e}, eager float32 "
                                    f"{fp['eager_rel_error']:.2e} [dim](normwise relative error)[/dim]")
    t = d.get("timing")
    if t:
        line = f"eager {t['eager_ms']:.4f} ms, candidate {t['candidate_ms']:.4f} ms → " \
               f"{t['speedup_vs_eager']:.2f}× eager"
        if "compile_ms" in t:
            line += f"; torch.compile {t['compile_ms']:.4f} ms → {t['speedup_vs_compile']:.2f}× compile"
        table.add_row("timing", line + f"  [dim](median of {t['trials']}, L2 flushed)[/dim]")
    roof = d.get("roofline")
    if roof and roof.get("floor_ms"):
        table.add_row("roofline", f"floor {roof['floor_ms']:.4f} ms ({roof.get('bound')}-bound: "
                                  f"{roof['flops']:.3g} FLOPs, {roof['min_bytes'] / 1e6:.1f} MB); candidate at "
                                  f"{roof['candidate_vs_floor']:.1f}× the floor, eager at {roof['eager_vs_floor']:.1f}×")
    errors = [f for f in result.flags if f["severity"] == "error"]
    warnings = [f for f in result.flags if f["severity"] == "warning"]
    for label, group, color in (("flags", errors, "red"), ("warnings", warnings, "yellow")):
        for i, f in enumerate(group):
            where = f" line {f['line']}" if f.get("line") else ""
            count = f" [dim](×{f['count']})[/dim]" if f.get("count", 1) > 1 else ""
            table.add_row(label if i == 0 else "",
                          f"[{color}]{f['id']}[/{color}] [dim]{f['source']}{where}[/dim]: "
                          f"{escape(f['message'][:400])}{count}")
    if not errors and not warnings:
        table.add_row("flags", "[green]none[/green]")
    for s in d["skipped"]:
        table.add_row("skipped", f"{escape(s['what'])} [dim]({escape(s['why'])})[/dim]")
    for n in d["notes"]:
        table.add_row("note", escape(n))
    console.print(table)
    if show_log and err and err.get("log") and err["kind"] in ("build_error", "import_error", "crash",
                                                               "runtime_error", "cuda_error", "checker_error"):
        console.print(f"[dim]--- {err['kind']} log (tail) ---[/dim]")
        console.print(err["log"][-3000:], markup=False, highlight=False)
