"""report: what optimize did, as a short table for people (rich) or a dict for machines."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table


def as_dict(report) -> dict:
    t = report.timings
    out = {
        "problem": report.problem,
        "output": str(report.output),
        "kernels": [{"name": k.name, "ops": [n.target for n in k.nodes], "shape": list(k.shape)}
                    for k in report.plan.kernels],
        "externs": [{"op": e.node.target, "why": e.reason, "channels_last": e.channels_last}
                    for e in report.plan.externs],
        "decisions": report.plan.decisions,
        "build": {"seconds": round(report.loaded.seconds, 2), "cached": report.loaded.cached,
                  "extension": report.generated.ext_name},
        "verify": {"device": report.verify.device, "trials": report.verify.trials,
                   "passed": report.verify.passed, "max_abs": report.verify.max_abs,
                   "max_rel": report.verify.max_rel, "failures": report.verify.failures},
        "cuda_ran": report.cuda_ran,
        "timings_ms": {k: v.median_ms for k, v in t.items()},
        "env": report.env,
        "notes": report.notes,
    }
    if "eager" in t and "fuseforge" in t:
        out["speedup_vs_eager"] = t["eager"].median_ms / t["fuseforge"].median_ms
    return out


def print_report(report, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"fuseforge optimize: {report.problem} → {report.output}", show_header=False,
                  title_justify="left", box=None, padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    kernels = "\n".join(f"{k.name}  [dim]({k.summary()}; {k.nodes[-1].outputs[0].type})[/dim]"
                        for k in report.plan.kernels) or "none"
    externs = "\n".join(f"{e.node.target}{' channels-last' if e.channels_last else ''}  "
                        f"[dim]({e.reason.split(':')[0]})[/dim]" for e in report.plan.externs) or "none"
    table.add_row("generated kernels", kernels)
    table.add_row("ATen externs", externs)
    table.add_row("build", f"{report.loaded.seconds:.2f} s "
                           f"({'cached library' if report.loaded.cached else 'compiled'}: "
                           f"{report.generated.ext_name})")
    v = report.verify
    verdict = "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]"
    table.add_row("verify", f"{verdict} on {v.device}, {v.trials} trials, "
                            f"max abs error {v.max_abs:.2e}, max rel error {v.max_rel:.2e}")
    for failure in v.failures[:5]:
        table.add_row("", f"[red]{failure}[/red]")
    t = report.timings
    if t:
        gpu = report.env.get("gpu", "GPU")
        parts = [f"{name} {tm.median_ms:.3f} ms" for name, tm in t.items()]
        line = ", ".join(parts)
        if "eager" in t and "fuseforge" in t:
            line += f"  → {t['eager'].median_ms / t['fuseforge'].median_ms:.2f}× eager"
        if "torch.compile" in t:
            line += f", {t['torch.compile'].median_ms / t['fuseforge'].median_ms:.2f}× torch.compile"
        table.add_row("timing", f"{line}  [dim](median of {next(iter(t.values())).trials}, {gpu})[/dim]")
    for note in report.notes:
        table.add_row("note", note)
    console.print(table)
