"""bench_report: summary statistics, the markdown report and the plots of a `fuseforge bench` run.

Works on records (one dict per problem, as suite_bench writes them) and needs no GPU:
`fuseforge bench merge` rebuilds everything here from results.jsonl files.

Definitions (per level = the problem's folder name, and over all problems):
- a version is *correct* when its check passed (fuseforge: verify; torch.compile: compared
  with eager on fresh inputs); a speedup exists only between correct, timed versions;
- fast_p = share of the level's problems (failed ones included) whose fuseforge version is
  correct and more than p× faster than eager; fast_0 is the share that is correct;
- geomean speedups are over the problems where both versions have a speedup;
- distance from the floor = geomean of time / roofline floor, per version.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from collections import defaultdict
from pathlib import Path

FAST_P = (0, 1, 1.5, 2)
# below this, "slower than eager" can be timing noise: problems whose forward is the very call
# eager makes (an extern alone) measured 0.99-1.01x in the H100 suite runs
NOISE = 0.02
EAGER, FF = "eager", "fuseforge"


# --------------------------------------------------------------------------- per record

def ms(rec: dict, version: str) -> float | None:
    """A correct version's median time, else None."""
    v = rec.get("versions", {}).get(version)
    if not v or not v.get("correct") or v.get("ms") is None or v["ms"] <= 0:
        return None
    return float(v["ms"])


def compile_versions(records) -> list[str]:
    """The torch.compile versions present, 'compile:default' first."""
    names = {k for r in records for k in r.get("versions", {}) if k.startswith("compile:")}
    return sorted(names, key=lambda k: (k != "compile:default", k))


def label(version: str) -> str:
    return f"torch.compile ({version.split(':', 1)[1]})" if version.startswith("compile:") else version


def speedup(rec: dict, base: str, version: str = FF) -> float | None:
    """time(base) / time(version): how many times faster `version` is than `base`."""
    a, b = ms(rec, base), ms(rec, version)
    return a / b if a is not None and b is not None else None


def attach_speedups(rec: dict) -> dict:
    """Store the record's speedups under rec['speedup'] ('fuseforge/eager', 'fuseforge/compile:default', ...)."""
    out = {}
    versions = list(rec.get("versions", {}))
    for v in versions:
        if v == EAGER:
            continue
        s = speedup(rec, EAGER, v)
        if s is not None:
            out[f"{v}/eager"] = s
    for c in [v for v in versions if v.startswith("compile:")]:
        s = speedup(rec, c, FF)
        if s is not None:
            out[f"fuseforge/{c}"] = s
    rec["speedup"] = out
    return rec


def ff_correct(rec: dict) -> bool:
    return bool(rec.get("versions", {}).get(FF, {}).get("correct"))


def geomean(xs) -> float | None:
    xs = [x for x in xs if x is not None and x > 0 and math.isfinite(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def failure_of(rec: dict) -> str | None:
    """One line on what went wrong for fuseforge or the whole problem, or None."""
    if rec.get("status") != "ok":
        where = f" in {rec['phase']}" if rec.get("phase") else ""
        return f"{rec.get('status')}{where}: {rec.get('error')}"
    v = rec.get("versions", {}).get(FF, {})
    if v.get("error"):
        return f"fuseforge: {v['error']}"
    if not v.get("correct"):
        return "fuseforge incorrect: " + "; ".join(v.get("failures", [])[:2])
    return None


# --------------------------------------------------------------------------- summary

def level_summary(recs: list[dict], compiles: list[str]) -> dict:
    n = len(recs)
    sp_eager = {r["problem"]: speedup(r, EAGER) for r in recs}
    out = {
        "problems": n,
        "failed_runs": sum(r.get("status") != "ok" for r in recs),
        "fuseforge_correct": sum(ff_correct(r) for r in recs),
        "fast_p": {},
        "geomean_speedup_vs_eager": geomean(sp_eager.values()),
        "geomean_speedup_vs_compile": {},
        "compile_geomean_speedup_vs_eager": {},
        "compile_correct": {},
        "fuseforge_faster_than_compile": {},
        "slower_than_eager": sorted(r["problem"] for r in recs if (sp_eager[r["problem"]] or 2) < 1),
        "slower_than_eager_beyond_noise": sorted(r["problem"] for r in recs
                                                 if (sp_eager[r["problem"]] or 2) < 1 - NOISE),
        "time_over_floor": {},
    }
    for p in FAST_P:
        hits = sum(ff_correct(r) and (p == 0 or (sp_eager[r["problem"]] or 0) > p) for r in recs)
        out["fast_p"][str(p)] = hits / n if n else None
    for c in compiles:
        vs = [speedup(r, c) for r in recs]
        out["geomean_speedup_vs_compile"][c] = geomean(vs)
        out["fuseforge_faster_than_compile"][c] = sum(1 for s in vs if s is not None and s > 1)
        out["compile_geomean_speedup_vs_eager"][c] = geomean(speedup(r, EAGER, c) for r in recs)
        out["compile_correct"][c] = sum(bool(r.get("versions", {}).get(c, {}).get("correct")) for r in recs)
    for v in [EAGER] + compiles + [FF]:
        ratios = [ms(r, v) / r["floor_ms"] for r in recs if ms(r, v) and r.get("floor_ms")]
        out["time_over_floor"][v] = geomean(ratios)
    return out


def summarize(records: list[dict]) -> dict:
    """{'levels': {level: summary, ...}, 'all': summary} over the given records."""
    compiles = compile_versions(records)
    by_level = defaultdict(list)
    for r in records:
        by_level[r.get("level", "?")].append(r)
    return {"levels": {lvl: level_summary(by_level[lvl], compiles) for lvl in sorted(by_level)},
            "all": level_summary(list(records), compiles), "compile_versions": compiles,
            "host": host_summary(records)}


UNSTABLE = 1.10    # a timing whose median is this far above its minimum: jitter (host, clocks), compare with care


def unstable(rec: dict) -> list[tuple[str, float]]:
    """The record's versions whose timing is unstable: (version, median / minimum)."""
    out = []
    for v, e in rec.get("versions", {}).items():
        if e.get("ms") and e.get("min_ms") and e["ms"] / e["min_ms"] > UNSTABLE:
            out.append((v, e["ms"] / e["min_ms"]))
    return out


HOST_SHARE = 0.05   # issue 6: the wrapper's host time per forward, at most this share of the model's time


def host_summary(records: list[dict]) -> dict:
    """Each version's host time per forward as a share of its GPU time, over the records that
    measured it (suite_bench: bench.host_time): the median share, and fuseforge's problems above
    HOST_SHARE, largest first."""
    out = {}
    for v in sorted({v for r in records for v, e in r.get("versions", {}).items() if e.get("host_ms")}):
        shares = {r["problem"]: r["versions"][v]["host_ms"] / r["versions"][v]["ms"] for r in records
                  if r.get("versions", {}).get(v, {}).get("host_ms") and r["versions"][v].get("ms")}
        out[v] = {"problems": len(shares), "median_share": statistics.median(shares.values()),
                  "above": sorted(((p, x) for p, x in shares.items() if x > HOST_SHARE), key=lambda px: -px[1])}
    return out


# --------------------------------------------------------------------------- environment of the runs

def _gpus(runs) -> list[str]:
    return sorted({r.get("env", {}).get("gpu") or "unknown GPU" for r in runs}) or ["unknown GPU"]


def _env_line(env: dict) -> str:
    return (f"{env.get('gpu', 'unknown GPU')} (sm {env.get('capability', '?')}), driver {str(env.get('driver', '?')).splitlines()[0]}, "
            f"torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, host {env.get('host', '?')}, "
            f"fuseforge {env.get('fuseforge_commit') or '?'} (sources {env.get('fuseforge_sources') or '?'})")


def _fmt(x, spec=".2f", none="–") -> str:
    return none if x is None else format(x, spec)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _ms(x) -> str:
    if x is None:
        return "–"
    return f"{x:.4f}" if x < 0.1 else f"{x:.3f}" if x < 100 else f"{x:.1f}"


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --------------------------------------------------------------------------- markdown

def render_markdown(records: list[dict], runs: list[dict], summary: dict, plots: dict[str, str]) -> str:
    compiles = summary["compile_versions"]
    lines = []
    gpus = _gpus(runs)
    lines.append(f"# fuseforge bench: {len(records)} problems on {', '.join(gpus)}")
    lines.append("")
    if len(gpus) > 1:
        lines.append(f"**Records come from {len(gpus)} different GPUs.** Speedups are ratios measured "
                     "side by side in one process and compare across runs; absolute times do not.")
        lines.append("")
    for r in runs:
        env = r.get("env", {})
        ceil = r.get("ceilings")
        shard = f", shard {r['shard']}" if r.get("shard") else ""
        lines.append(f"- run `{r.get('run')}` ({r.get('started', '?')}{shard}): {_env_line(env)}")
        if ceil:
            lines.append(f"  - measured ceilings: copy {ceil['copy_bytes_per_s'] / 1e9:.0f} GB/s, float32 GEMM "
                         f"{ceil['fp32_flops_per_s'] / 1e12:.1f} TFLOP/s, TF32 GEMM "
                         f"{ceil['tf32_flops_per_s'] / 1e12:.1f} TFLOP/s")
    config = next((r.get("config") for r in runs if r.get("config")), {}) or {}
    trials = config.get("trials", [30, 100])
    if config.get("tf32"):
        lines += ["", "**--tf32 mode** (opt-in): fuseforge's generated GEMMs take one TF32 product, looser than "
                      "eager's float32 matmuls; reported apart from the default mode."]
    lines += [
        "",
        f"Timing: CUDA events, L2 flushed before every call, warm-up, median of {trials[0]}–{trials[1]} "
        "calls; eager, torch.compile and fuseforge measured in one fresh process per problem on the same "
        f"inputs{' (SMALL sizes)' if config.get('small') else ''}. Correctness: fuseforge's ModelNew through "
        f"`verify` ({config.get('verify_trials', 5)} fresh inputs, atol = rtol = 1e-2, poisoned outputs, "
        "same-seed parameters); torch.compile against eager on 3 fresh inputs, same tolerance. "
        "Floor = max(minimal bytes / copy bandwidth, FLOPs / TF32 GEMM rate); minimal bytes = distinct "
        "inputs + parameters + buffers + outputs, FLOPs from torch's FlopCounterMode (matmuls, "
        "convolutions, attention).",
        "",
        "## Summary",
        "",
    ]
    head = ["level", "problems", "fuseforge correct (fast_0)", "fast_1", "fast_1.5", "fast_2",
            "geomean × eager"] + [f"geomean × {label(c)}" for c in compiles] + \
           ["slower than eager", "failed runs", "time / floor: " + " · ".join(
               ["eager"] + [label(c) for c in compiles] + ["fuseforge"])]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    rows = list(summary["levels"].items())
    if len(rows) > 1:
        rows.append(("**all**", summary["all"]))
    for name, s in rows:
        fp = s["fast_p"]
        floor = " · ".join(_fmt(s["time_over_floor"].get(v), ".1f")
                           for v in [EAGER] + compiles + [FF])
        cells = [name, str(s["problems"]), f"{s['fuseforge_correct']} ({_pct(fp['0'])})",
                 _pct(fp["1"]), _pct(fp["1.5"]), _pct(fp["2"]),
                 _fmt(s["geomean_speedup_vs_eager"])] + \
                [_fmt(s["geomean_speedup_vs_compile"].get(c)) for c in compiles] + \
                [f"{len(s['slower_than_eager'])} ({len(s['slower_than_eager_beyond_noise'])})",
                 str(s["failed_runs"]), floor]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for c in compiles:
        parts = [f"{lvl} {_fmt(s['compile_geomean_speedup_vs_eager'].get(c))}× "
                 f"({s['compile_correct'].get(c, 0)}/{s['problems']} correct, fuseforge faster on "
                 f"{s['fuseforge_faster_than_compile'].get(c, 0)})"
                 for lvl, s in summary["levels"].items()]
        lines.append(f"- {label(c)} vs eager, geomean: " + "; ".join(parts))
    host = summary.get("host", {})
    if FF in host:
        h = host[FF]
        above = ", ".join(f"{p.removeprefix('suite/').removesuffix('.py')} ({x:.0%})" for p, x in h["above"][:12])
        others = "; ".join(f"{label(v)} {host[v]['median_share']:.1%}" for v in [EAGER] + compiles if v in host)
        lines.append(f"- host time per forward (calls not synchronized), as a share of the version's GPU time: "
                     f"fuseforge median {h['median_share']:.1%} over {h['problems']} problems ({others}); "
                     f"fuseforge above {HOST_SHARE:.0%} on {len(h['above'])}" + (f": {above}" if above else "") +
                     (", ..." if len(h["above"]) > 12 else ""))
    jittery = [(r, u) for r in records for u in unstable(r)]
    if jittery:
        timed = sum(1 for r in records for e in r.get("versions", {}).values() if e.get("ms"))
        lines.append(f"- unstable timings (median more than {UNSTABLE - 1:.0%} above the minimum: host or clock "
                     f"jitter, compare with care): {len(jittery)} of {timed}: " +
                     ", ".join(f"{r.get('level')}/{r['name']} {label(v)} ({x:.2f}×)" for r, (v, x) in jittery))
    lines += ["", "fast_p: share of the level's problems where fuseforge is correct and more than p× "
              "faster than eager (failed problems count as misses). slower than eager: all below 1.00×, "
              f"in brackets those more than {NOISE:.0%} below (a forward that is eager's own call "
              "alone measures 0.99-1.01×). time / floor: geomean over the problems with that version "
              "timed; 1.0 would be at the roofline floor.", ""]
    for title, fname in plots.items():
        lines.append(f"![{title}]({fname})")
        lines.append("")
    failures = [(r, failure_of(r)) for r in records]
    failures = [(r, f) for r, f in failures if f]
    if failures:
        lines += ["## Failures", "", "| problem | level | what failed |", "|---|---|---|"]
        for r, f in sorted(failures, key=lambda x: x[0]["problem"]):
            lines.append(f"| {r['name']} | {r.get('level')} | {_cell(f, 300)} |")
        lines.append("")
    slower = sorted((speedup(r, EAGER), r) for r in records if (speedup(r, EAGER) or 2) < 1)
    if slower:
        lines += ["## Slower than eager", ""]
        for title, part in ((f"More than {NOISE:.0%} slower", [x for x in slower if x[0] < 1 - NOISE]),
                            ("Within the noise", [x for x in slower if x[0] >= 1 - NOISE])):
            if part:
                lines += [f"{title}: " + ", ".join(f"{r['level']}/{r['name']} ({s:.2f}×)" for s, r in part), ""]
    by_level = defaultdict(list)
    for r in records:
        by_level[r.get("level", "?")].append(r)
    for lvl in sorted(by_level):
        lines += [f"## {lvl}", ""]
        head = ["problem", "eager ms"] + [f"{label(c)} ms" for c in compiles] + \
               ["fuseforge ms", "× eager"] + [f"× {label(c)}" for c in compiles] + \
               ["floor ms", "bound", "fuseforge / floor", "kernels · externs", "note"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|" + "---:|" * (len(head) - 3) + "---|---|")
        for r in sorted(by_level[lvl], key=lambda r: r["name"]):
            ff_ms, floor = ms(r, FF), r.get("floor_ms")
            prep = (r.get("prepare") or {}).get("fuseforge") or {}
            ke = f"{len(prep['kernels'])} · {len(prep['externs'])}" if "kernels" in prep else "–"
            note = failure_of(r) or ""
            note += "".join(f" {label(v)} timing unstable ({x:.2f}× its minimum)" for v, x in unstable(r))
            for c in compiles:
                cv = r.get("versions", {}).get(c, {})
                if cv and not cv.get("correct"):
                    note += f" {label(c)}: " + (cv.get("error") or "incorrect")
            cells = [r["name"], _ms(ms(r, EAGER))] + [_ms(ms(r, c)) for c in compiles] + \
                    [_ms(ff_ms), _fmt(speedup(r, EAGER))] + [_fmt(speedup(r, c)) for c in compiles] + \
                    [_ms(floor), r.get("bound", "–"),
                     _fmt(ff_ms / floor if ff_ms and floor else None, ".1f"), ke, _cell(note.strip(), 120)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"_Written {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by `fuseforge bench`._")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots

LEVEL_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _log_ticks(axis, suffix: str = "×") -> None:
    """Readable log-axis labels (0.5×, 1×, 2×) instead of 5×10⁻¹."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    lo, hi = sorted(axis.get_view_interval())
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 10
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{suffix}"))
    axis.set_minor_formatter(NullFormatter())


def _empty(ax, text="no data"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def plot_speedup_distribution(records, path) -> None:
    """Per level: fuseforge and torch.compile speedup over eager (box + points, log scale)."""
    plt = _plt()
    compiles = compile_versions(records)
    levels = sorted({r.get("level", "?") for r in records})
    series = [(FF, "tab:orange")] + [(c, "tab:blue" if c == "compile:default" else "tab:cyan")
                                     for c in compiles]
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(levels) * len(series) / 2 + 2), 4.5))
    width = 0.8 / len(series)
    any_data = False
    for li, lvl in enumerate(levels):
        recs = [r for r in records if r.get("level") == lvl]
        for si, (v, color) in enumerate(series):
            xs = [s for s in (speedup(r, EAGER, v) for r in recs) if s]
            pos = li + (si - (len(series) - 1) / 2) * width
            if not xs:
                continue
            any_data = True
            ax.boxplot([xs], positions=[pos], widths=width * 0.8, showfliers=False, patch_artist=True,
                       boxprops={"facecolor": color, "alpha": 0.35}, medianprops={"color": "black"})
            jitter = [pos + width * 0.25 * math.sin(7.3 * k) for k in range(len(xs))]
            ax.scatter(jitter, xs, s=10, color=color, alpha=0.8, zorder=3, label=label(v))
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels([f"{lvl}\n(n={sum(r.get('level') == lvl for r in records)})" for lvl in levels])
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.set_ylabel("speedup over eager (×, log)")
    ax.set_title("Speedup over eager per level (correct versions only)")
    if any_data:
        ax.set_yscale("log")
        _log_ticks(ax.yaxis)
        handles, labels_ = ax.get_legend_handles_labels()
        uniq = dict(zip(labels_, handles))
        ax.legend(uniq.values(), uniq.keys(), loc="best", fontsize=8)
    else:
        _empty(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_vs_compile(records, path, compile_version: str = "compile:default") -> None:
    """Per problem: torch.compile's speedup over eager (x) against fuseforge's (y), log-log."""
    plt = _plt()
    levels = sorted({r.get("level", "?") for r in records})
    fig, ax = plt.subplots(figsize=(6, 5.5))
    lo, hi, n = math.inf, 0.0, 0
    for li, lvl in enumerate(levels):
        pts = [(speedup(r, EAGER, compile_version), speedup(r, EAGER)) for r in records if r.get("level") == lvl]
        pts = [(x, y) for x, y in pts if x and y]
        if not pts:
            continue
        n += len(pts)
        xs, ys = zip(*pts)
        lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
        ax.scatter(xs, ys, s=18, alpha=0.8, color=LEVEL_COLORS[li % len(LEVEL_COLORS)], label=lvl)
    if n:
        lo, hi = lo / 1.3, hi * 1.3
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="equal")
        ax.axhline(1.0, color="grey", lw=0.6)
        ax.axvline(1.0, color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        _log_ticks(ax.xaxis)
        _log_ticks(ax.yaxis)
        ax.legend(fontsize=8)
    else:
        _empty(ax)
    ax.set_xlabel(f"{label(compile_version)} speedup over eager (×)")
    ax.set_ylabel("fuseforge speedup over eager (×)")
    ax.set_title(f"fuseforge vs {label(compile_version)} per problem\n(above the diagonal: fuseforge faster; n={n})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_roofline(records, path) -> None:
    """Per problem and version: measured time against the roofline floor, log-log."""
    plt = _plt()
    compiles = compile_versions(records)
    styles = [(EAGER, "tab:gray", "o"), *[(c, "tab:blue", "s") for c in compiles[:1]], (FF, "tab:orange", "^")]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    lo, hi, n = math.inf, 0.0, 0
    for v, color, marker in styles:
        pts = [(r["floor_ms"], ms(r, v)) for r in records if r.get("floor_ms") and ms(r, v)]
        if not pts:
            continue
        n += len(pts)
        xs, ys = zip(*pts)
        lo, hi = min(lo, *xs), max(hi, *ys)
        ax.scatter(xs, ys, s=16, alpha=0.7, color=color, marker=marker, label=label(v))
    if n:
        lo, hi = lo / 2, hi * 2
        for k, style in ((1, "-"), (10, "--"), (100, ":")):
            ax.plot([lo, hi], [lo * k, hi * k], color="black", lw=0.7, ls=style,
                    label="floor" if k == 1 else f"{k}× floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi * 2)
        _log_ticks(ax.xaxis, "")
        _log_ticks(ax.yaxis, "")
        ax.legend(fontsize=8)
    else:
        _empty(ax)
    ax.set_xlabel("roofline floor (ms): max(bytes / copy bandwidth, FLOPs / TF32 rate)")
    ax.set_ylabel("measured time (ms)")
    ax.set_title("Time against the roofline floor")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


PLOTS = {
    "speedup distribution per level": ("speedup_distribution.png", plot_speedup_distribution),
    "fuseforge vs torch.compile per problem": ("fuseforge_vs_compile.png", plot_vs_compile),
    "time against the roofline floor": ("roofline.png", plot_roofline),
}


# --------------------------------------------------------------------------- writing everything

def write_report(out, records: list[dict], runs: list[dict], *, plots: bool = True) -> dict:
    """results.json, report.md and plots/*.png in `out`; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = sorted(records, key=lambda r: r.get("problem", ""))
    for r in records:
        if r.get("versions"):
            attach_speedups(r)
    summary = summarize(records)
    written = {}
    plot_refs = {}
    if plots:
        (out / "plots").mkdir(exist_ok=True)
        for title, (fname, fn) in PLOTS.items():
            try:
                fn(records, out / "plots" / fname)
                plot_refs[title] = f"plots/{fname}"
                written[fname] = out / "plots" / fname
            except ImportError:   # matplotlib missing: the report still gets written
                break
    envs = [r.get("env", {}) for r in runs]
    doc = {"env": envs[-1] if envs else {}, "ceilings": next((r.get("ceilings") for r in reversed(runs)
                                                             if r.get("ceilings")), None),
           "runs": runs, "summary": summary, "records": records}
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    (out / "report.md").write_text(render_markdown(records, runs, summary, plot_refs))
    written.update(results=out / "results.json", report=out / "report.md")
    return written
