"""The decision as a page: ``report.md``, a self-contained ``report.html`` with every plot
embedded, ``decision.json`` and the plots as PNG files, written into one folder atomically."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...files import atomic_write_text, finite_json, staged_folder
from ..cost.plots import waterfall
from ..cost.schedule import plot_timeline, time_to_silicon
from ..report.html import write_html_report
from ..serving.goodput import plot_goodput
from .compose import Decision
from .plots import plot_distributions, plot_sobol, plot_tornado

FIGURE_DPI = 110


def _usd(x: float) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:,.2f}{unit}"
    return f"${x:,.2f}"


def _f(x: Any) -> float:
    """A figure at the mode (a deployment at the mode holds one draw)."""
    return float(np.mean(x))


def _band(m: dict[str, float], fmt: str = "{:.3g}") -> str:
    if not m or m["p50"] == float("inf"):
        return "n/a"
    return f"{fmt.format(m['p50'])} ({fmt.format(m['p5'])}–{fmt.format(m['p95'])})"


def figures(d: Decision) -> dict[str, Any]:
    """The report's plots by file name (matplotlib Figures; a plot without data is left out)."""
    out: dict[str, Any] = {}
    deps = {o.option.label: o.deployment for o in d.options if o.deployment is not None}
    if deps:
        out["tco.png"] = waterfall(deps)
    curves = [o.served.goodput for o in d.options if o.served is not None and o.served.goodput is not None]
    if curves:
        out["goodput.png"] = plot_goodput(curves)
    chip = next((o for o in d.options if o.option.side == "build" and o.served is not None), None)
    if chip is not None:
        sched = time_to_silicon(start=d.scenario.date, node=d.question["node"])
        out["timeline.png"] = plot_timeline(sched, {o.option.name: d.scenario.date for o in d.options
                                                    if o.option.side == "buy" and o.deployment is not None})
    names = [f"usd_per_Mtok.{o.option.name}" for o in d.options if o.deployment is not None]
    if names:
        out["distributions.png"] = plot_distributions(d.monte_carlo, names, unit="USD per million output tokens",
                                                      log=True)
    if d.sensitivity is not None:
        out["sobol.png"] = plot_sobol(d.sensitivity)
    if d.tornado is not None:
        out["tornado.png"] = plot_tornado(d.tornado)
    return out


def _option_table(d: Decision) -> list[str]:
    rows = ["| option | side | legal status | units | facility MW | fleet tokens/s within targets | $/M tokens "
            "(90 %) | tokens per $ over the horizon | P(build beats this) |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for o in d.options:
        if o.deployment is None:
            continue
        m = o.measures
        p = "" if o.p_build_beats is None else f"{o.p_build_beats:.0%}"
        rows.append(f"| {o.option.label} | {o.option.side} | {o.option.status.replace('_', ' ')} | "
                    f"{_band(m['units'], '{:,.0f}')} | {_band(m['facility_MW'], '{:,.0f}')} | "
                    f"{_band(m['fleet_tokens_per_s'], '{:.3g}')} | {_band(m['usd_per_Mtok'])} | "
                    f"{_band(m['tokens_per_usd_h'])} | {p} |")
    return rows


def _legal_table(d: Decision) -> list[str]:
    rows = ["| option | ECCN | status | weighed | deciding rule | note |", "|---|---|---|---|---|---|"]
    for o in d.options:
        opt = o.option
        live = opt.weighed and o.served is not None and not o.served.reason
        if o.served is not None and o.served.reason:
            note = f"meets no target: {o.served.reason}"
        elif not opt.weighed:
            note = opt.why[-1] if opt.why else opt.status.replace("_", " ")
        else:
            note = "weighed only as if a licence were granted" if opt.needs_licence else ""
        rows.append(f"| {opt.name} | {opt.eccn} | {opt.status.replace('_', ' ')} | {'yes' if live else 'no'}"
                    f"{' (licence)' if live and opt.needs_licence else ''} | {opt.policy or '-'} | "
                    f"{note.replace('|', '/')} |")
    rows += ["", "Deciding rules and their citations: `systolab legal --gpu ID --buyer B --date D` "
             "(`docs/legal.md`)."]
    return rows


def _serving_table(d: Decision) -> list[str]:
    q = d.question
    rows = [f"Each option at its goodput point: the most output tokens/s per device with TTFT ≤ {q['ttft_s']:g} s "
            f"and TPOT ≤ {q['tpot_s']:g} s ({q['model']}, {q['isl']} + {q['osl']} tokens per request).", "",
            "| option | tp | concurrency | TTFT s | TPOT s | tokens/s per device | power W (idle) | TDP W |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for o in d.options:
        s = o.served
        if s is None:
            continue
        if s.reason:
            rows.append(f"| {o.option.label} | – | – | – | – | 0 | – | {s.tdp_W:,.0f} |")
            continue
        rows.append(f"| {o.option.label} | {s.tp} | {s.concurrency} | {s.ttft_s:.3g} | {s.tpot_s:.3g} | "
                    f"{s.tokens_per_s:,.1f} | {s.power_W:,.0f} ({s.idle_power_W:,.0f}) | {s.tdp_W:,.0f} |")
    return rows


def _tco_table(d: Decision) -> list[str]:
    deps = [(o.option.label, o.deployment) for o in d.options if o.deployment is not None]
    if not deps:
        return []
    keys = list(deps[0][1].lines)
    rows = ["| budget line (USD, inputs at their modes) | " + " | ".join(n for n, _ in deps) + " |",
            "|---|" + "---:|" * len(deps)]
    for k in keys:
        rows.append(f"| {k.removesuffix('_usd').replace('_', ' ')} | " +
                    " | ".join(_usd(_f(dep.lines[k])) for _, dep in deps) + " |")
    rows.append("| **total (the budget)** | " + " | ".join(_usd(sum(_f(v) for v in dep.lines.values())) for _, dep in deps)
                + " |")
    return rows


def _uncertainty_section(d: Decision) -> list[str]:
    out = ["## How sure", ""]
    if d.p_build_beats_buy:
        out += [f"- P(building beats buying {g}) = {p:.1%} over {d.question['draws']:,} draws (seed "
                f"{d.question['seed']})" for g, p in d.p_build_beats_buy.items()]
    if d.sensitivity is not None:
        out += ["", f"Top inputs by total-order Sobol index of `{d.sensitivity.output}` (SALib, "
                    f"{d.sensitivity.n_evaluations:,} model points):", "",
                "| input | total order ST | first order S1 |", "|---|---:|---:|"]
        out += [f"| {s.name} | {s.ST:.3f} ± {s.ST_conf:.3f} | {s.S1:.3f} ± {s.S1_conf:.3f} |"
                for s in d.sensitivity.top(5)]
        out += ["", "![Sobol indices](sobol.png)", "", "![Tornado](tornado.png)"]
    if d.break_evens:
        out += ["", "Break-even of the top inputs (each alone, the others at their mode, searched beyond its "
                    "stated range):", ""]
        out += [f"- {b.text}" + ("" if b.value is None or b.in_range else " (outside its stated range)")
                for b in d.break_evens]
    out += ["", "![Distributions of $/M tokens](distributions.png)"]
    return out


def report_markdown(d: Decision, figure_names: set[str]) -> str:
    """The report's Markdown (images by file name; those not in ``figure_names`` left out)."""
    q = d.question
    be = d.break_even_date or {}
    lines = [f"# Build or buy: {q['chip']} against the GPUs open to {d.scenario.buyer} on {d.scenario.date}", "",
             f"**{d.verdict}**", "",
             f"Question: serve {q['model']} ({q['isl']} + {q['osl']} tokens per request) within TTFT ≤ "
             f"{q['ttft_s']:g} s and TPOT ≤ {q['tpot_s']:g} s, with {_usd(q['budget_usd'])} spent on whole "
             f"deployments (hardware, facility and lifetime running costs; the chip's NRE first)"
             + (f" under a {q['power_cap_MW']:g} MW power cap" if q["power_cap_MW"] else "")
             + f", compared over {q['horizon_years']:g} years from the decision date.", "",
             "## Who may have what", "", *_legal_table(d), "",
             "## The options, as fleets", "", *_option_table(d), "",
             "Medians with 5th–95th percentiles over the Monte Carlo. $/M tokens counts each fleet over its "
             "lifetime; tokens per $ over the horizon counts only what it delivers within the horizon (the chip "
             "after its time to silicon, GPUs improving with software).", "",
             "## Serving within the targets", "", *_serving_table(d), "", "![Goodput](goodput.png)", "",
             "## Total cost of ownership", "", *_tco_table(d), "", "![TCO](tco.png)", "",
             "## Time", "",
             (f"Break-even: {be.get('date') or 'not within the horizon'}"
              f"{' — ' + be['reason'] if be.get('reason') else ''} (the chip's cumulative tokens per $ against "
              f"{be.get('against')})." if be else "No break-even: nothing to compare the chip with."), "",
             "![Timeline](timeline.png)", "",
             *_uncertainty_section(d), "",
             "## Assumptions and sources", "",
             "Every uncertain input, its range, shape and source:", "",
             "| input | low | mode | high | shape | source |", "|---|---:|---:|---:|---|---|"]
    lines += [f"| {i.name} | {i.low:.4g} | {i.mode:.4g} | {i.high:.4g} | {i.shape} | "
              f"{' '.join(i.source.split()).replace('|', '/')} |" for i in d.inputs]
    lines += ["", *(f"- {n}" for n in d.notes)]
    text = "\n".join(lines) + "\n"
    for name in ("sobol.png", "tornado.png", "distributions.png", "goodput.png", "tco.png", "timeline.png"):
        if name not in figure_names:
            text = "\n".join(line for line in text.splitlines() if f"({name})" not in line) + "\n"
    return text


def write_decision_report(d: Decision, out: str | Path) -> dict[str, str]:
    """Write ``report.md``, ``report.html`` (self-contained), ``decision.json`` and the PNG
    plots into ``out`` (swapped in whole: a killed run leaves the old folder or the new);
    returns the files' paths by kind."""
    figs = figures(d)
    text = report_markdown(d, set(figs))
    with staged_folder(out, what="systolab decide") as stage:
        for name, fig in figs.items():
            fig.savefig(stage / name, dpi=FIGURE_DPI)
        atomic_write_text(stage / "report.md", text)
        write_html_report(stage / "report.html", title="systolab decide", markdown_text=text,
                          figures={n: stage / n for n in figs})
        atomic_write_text(stage / "decision.json", json.dumps(finite_json(d.to_dict()), sort_keys=True, default=str, indent=1,
                                                                 allow_nan=False))
    root = Path(out).expanduser().absolute()
    return {"report": str(root / "report.md"), "html": str(root / "report.html"),
            "json": str(root / "decision.json"), **{n.removesuffix(".png"): str(root / n) for n in figs}}
