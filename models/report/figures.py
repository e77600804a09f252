"""The `systolab compare` output folder: report.md, report.html, summary.json and PNG plots."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...dtypes import get_dtype
from ...errors import UserError
from ...files import staged_folder
from ..legal.export_control import classify, rule_set_for
from ..plotting import new_axes, new_grid
from .compare import Comparison
from .html import write_html_report

PLOTS = ("roofline.png", "latency_per_layer.png", "efficiency.png", "export_map.png")


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{digits}g}"
    return f"{v:,.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"


def as_result(result: Comparison | dict[str, Any]) -> dict[str, Any]:
    """A :class:`~systolab.models.report.compare.Comparison` as the dict the writers read
    (a dict, e.g. a summary.json read back, as it is)."""
    return result.to_dict() if isinstance(result, Comparison) else result


def plot_roofline(result: Comparison | dict[str, Any], ax: Any = None) -> Any:
    """Each device's roofline (peak TOPS, DRAM bandwidth) with the workloads' GEMMs placed
    at their arithmetic intensity and the throughput they reach on the custom chip.
    Returns the matplotlib ``Figure`` (drawn into ``ax`` when given)."""
    result = as_result(result)
    fig, ax = new_axes(ax, (8, 5.5))
    x = np.logspace(-1, 4, 200)
    for d in result["devices"]:
        roof = np.minimum(d["peak_tops"], x * d["dram_GBps"] / 1e3)
        ax.plot(x, roof, lw=2 if d["kind"] == "custom" else 1, label=d["id"])
    custom = result["rows"][0]["device"]
    dtype = result.get("dtype", "int8")
    eb = get_dtype(dtype).bits / 8
    marks = "osD^v<>"
    for i, w in enumerate(result["workloads"]):
        row = next(r for r in result["rows"] if r["device"] == custom and r["workload"] == w["name"])
        xs, ys = [], []
        for g in row["gemms"]:
            flops = 2 * g["M"] * g["N"] * g["K"] * g["count"]
            nbytes = ((g["M"] * g["K"] + g["K"] * g["N"]) * eb + 4 * g["M"] * g["N"]) * g["count"]
            xs.append(flops / nbytes)
            ys.append(flops / g["seconds"] / 1e12)
        ax.scatter(xs, ys, marker=marks[i % len(marks)], s=28, zorder=5, label=f"{w['name']} GEMMs on {custom}")
    ax.set(xscale="log", yscale="log", xlabel=f"arithmetic intensity ({dtype} ops per DRAM byte, compulsory traffic)",
           ylabel=f"TOPS ({dtype}, dense)", title="Roofline: devices and the workloads' GEMMs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_latency_per_layer(result: Comparison | dict[str, Any], ax: Any = None, workload: str | None = None) -> Any:
    """Time per GEMM (all its copies) of ``workload`` (default: the first) on every device.
    Returns the matplotlib ``Figure``."""
    result = as_result(result)
    wl = workload or result["workloads"][0]["name"]
    rows = [r for r in result["rows"] if r["workload"] == wl]
    if not rows:
        raise UserError(f"workload: {wl!r} is not in this result")
    names = [g["name"] for g in rows[0]["gemms"]]
    fig, ax = new_axes(ax, (max(8, 0.6 * len(names) + 3), 5))
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        ax.bar(np.arange(len(names)) + i * width, [g["seconds"] * 1e3 for g in r["gemms"]], width, label=r["device"])
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="milliseconds per run", title=f"Latency per layer GEMM: {wl}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


#: The efficiency plot's panels: what is divided by what (the compare table's headers say the same).
EFFICIENCY = (("throughput_per_mm2", "die area", "mm²"), ("throughput_per_W", "TDP", "W"),
              ("throughput_per_kusd", "unit price", "k$"))


def _efficiency_rows(result: dict[str, Any]) -> list[tuple[str, str, dict[str, dict[str, float | None]]]]:
    """(title, unit of throughput, {metric: {device: value}}) per workload, then the serving
    scenario's output tokens per device (when the comparison has one)."""
    devices = [d["id"] for d in result["devices"]]
    out = []
    for w in result["workloads"]:
        rows = {r["device"]: r for r in result["rows"] if r["workload"] == w["name"]}
        out.append((f"{w['name']} (GEMMs)", f"{w['unit']}s/s",
                    {key: {d: rows[d][key] if d in rows else None for d in devices} for key, _, _ in EFFICIENCY}))
    serving = result.get("serving")
    if serving and serving.get("rows"):
        die = {d["id"]: d.get("die_mm2") for d in result["devices"]}
        rows = {r["device"]: r for r in serving["rows"] if "output_tokens_per_s" in r}
        per_mm2 = {d: (rows[d]["output_tokens_per_s"] / die[d] if d in rows and die.get(d) else None) for d in devices}
        out.append((f"{serving['scenario']['model']} serving (all operators)", "output tokens/s",
                    {"throughput_per_mm2": per_mm2,
                     "throughput_per_W": {d: rows[d]["tokens_per_s_per_W"] if d in rows else None for d in devices},
                     "throughput_per_kusd": {d: rows[d]["tokens_per_s_per_kusd"] if d in rows else None
                                             for d in devices}}))
    return out


def plot_efficiency(result: Comparison | dict[str, Any], ax: Any = None) -> Any:
    """Throughput per mm² of die, per W of TDP and per k$ of unit price, in absolute units
    (each bar labelled; a log axis where a panel spans more than 50×), one row of panels per workload and one for the serving scenario; the
    custom chip's bars in orange, devices without a public figure marked "n/a". ``ax``: three
    axes per row, or None. Returns the matplotlib ``Figure``."""
    result = as_result(result)
    devices = [d["id"] for d in result["devices"]]
    custom = {d["id"] for d in result["devices"] if d["kind"] == "custom"}
    panels = _efficiency_rows(result)
    fig, axes = new_grid(ax, (14, 2.9 * len(panels) + 0.6), len(panels), 3)
    x = np.arange(len(devices))
    for row, (title, unit, values) in enumerate(panels):
        for col, (key, divisor, divisor_unit) in enumerate(EFFICIENCY):
            a = axes[row][col]
            vals = [values[key][d] for d in devices]
            a.bar(x, [v or 0 for v in vals], 0.7, color=["tab:orange" if d in custom else "tab:blue" for d in devices])
            for i, v in enumerate(vals):
                if not v:
                    a.text(i, 0.5, "n/a", transform=a.get_xaxis_transform(), ha="center", fontsize=7, color="gray")
            known = [v for v in vals if v]
            if known and max(known) / min(known) > 50:      # bars spanning decades: a log axis, said so
                a.set_yscale("log")
            for i, v in enumerate(vals):
                if v:
                    a.text(i, v, _fmt(v), ha="center", va="bottom", fontsize=6)
            a.set_xticks(x, devices if row == len(panels) - 1 else [""] * len(devices), rotation=40, ha="right",
                         fontsize=7)
            a.set_ylabel(f"{unit} per {divisor_unit}", fontsize=8)
            a.set_title(f"{title}: ÷ {divisor} ({divisor_unit})" if col == 0 else f"÷ {divisor} ({divisor_unit})",
                        fontsize=9, loc="left")
            a.grid(True, axis="y", which="both", alpha=0.3)
    fig.suptitle("Throughput per die mm², per TDP watt and per k$ of unit price (absolute; custom chip in orange)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _outside_shading(ax: Any, rules: Any) -> None:
    """Shade where a data-centre device is outside 3A090 (ECCN none) under ``rules``, from
    the classifier itself on a grid of TPP and performance density."""
    pds, tpps = np.logspace(-1, np.log10(200), 70), np.logspace(2, 5, 70)
    free = np.array([[classify(tpp=t, die_area_mm2=t / p, rule_date=rules.effective).eccn == "none" for p in pds]
                     for t in tpps], dtype=float)
    if free.any():
        ax.contourf(pds, tpps, free, levels=[0.5, 1.5], colors=["tab:green"], alpha=0.12, zorder=0)


def _declutter(fig: Any, texts: list) -> None:
    """Move texts up, one line at a time, until none overlaps another (device names at the
    same point, threshold labels side by side)."""
    placed: list = []
    for t in texts:
        for _ in range(12):
            box = t.get_window_extent().expanded(1.02, 1.1)
            if not any(box.overlaps(b) for b in placed):
                break
            step = box.height * 72 / fig.dpi
            if hasattr(t, "xyann"):
                t.xyann = (t.xyann[0], t.xyann[1] + step)
            else:
                x, y = t.get_transform().inverted().transform(
                    t.get_transform().transform(t.get_position()) + (0, box.height))
                t.set_position((x, y))
        placed.append(t.get_window_extent())


def plot_export_map(result: Comparison | dict[str, Any], ax: Any = None) -> Any:
    """TPP against performance density: the rule set's thresholds (each labelled once, with
    the classes it bounds), the region outside 3A090 shaded, and every device whose die
    area is known (devices at one point share a label; the others are listed beneath).
    Returns the matplotlib ``Figure``."""
    result = as_result(result)
    fig, ax = new_axes(ax, (8, 5.5))
    rules = rule_set_for(None)
    styles = iter(["--", ":", "-.", (0, (5, 1)), (0, (1, 3)), (0, (3, 1, 1, 1))])
    lines: dict[tuple[str, float], list[str]] = {}
    style_of: dict[tuple[str, float], Any] = {}
    if rules is not None:
        _outside_shading(ax, rules)
        for name, conds in rules.classes:
            style = next(styles, "--")
            for c in conds:
                if c.metric in ("tpp", "pd"):
                    lines.setdefault((c.metric, c.value), []).append(name)
                    style_of.setdefault((c.metric, c.value), style)
    labels = []
    for (metric, value), names in sorted(lines.items()):
        label = f"{'TPP' if metric == 'tpp' else 'PD'} {value:g} ({', '.join(names)})"
        if metric == "tpp":
            ax.axhline(value, ls=style_of[(metric, value)], color="gray", lw=1)
            labels.append(ax.text(0.11, value * 1.04, label, fontsize=7, color="gray"))
        else:
            ax.axvline(value, ls=style_of[(metric, value)], color="gray", lw=1)
            labels.append(ax.text(value * 1.03, 130, label, fontsize=7, color="gray", rotation=90, va="bottom"))
    points: dict[tuple[float, float], list[dict]] = {}
    for d in result["devices"]:
        if d["performance_density"] is not None:
            points.setdefault((round(np.log10(d["performance_density"]), 2), round(np.log10(d["tpp"]), 2)),
                              []).append(d)
    for group in points.values():
        d0 = group[0]
        pd, custom = d0["performance_density"], any(d["kind"] == "custom" for d in group)
        ax.scatter([pd], [d0["tpp"]], s=90 if custom else 30, marker="*" if custom else "o", zorder=5,
                   color="tab:orange" if custom else "tab:blue")
        eccns = sorted({d["eccn"] for d in group})
        labels.append(ax.annotate(f"{', '.join(d['id'] for d in group)} ({', '.join(eccns)})", (pd, d0["tpp"]),
                                  fontsize=7, xytext=(5, 4), textcoords="offset points", zorder=6))
    unplaced = [d["id"] for d in result["devices"] if d["performance_density"] is None]
    if unplaced:
        ax.text(0.01, -0.16, f"not placed (die area unknown): {', '.join(unplaced)}", transform=ax.transAxes,
                fontsize=7, color="gray")
    ax.plot([], [], "s", color="tab:green", alpha=0.3, markersize=10, label="outside 3A090 (ECCN none)")
    ax.legend(loc="lower right", fontsize=7)
    ax.set(xscale="log", yscale="log", xlim=(0.1, 200), ylim=(100, 1e5), xlabel="performance density (TPP / mm²)",
           ylabel="total processing performance (TPP)",
           title=f"ECCN 3A090 map ({rules.id if rules else 'no rule'}): devices by TPP and performance density")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    _declutter(fig, labels)
    return fig


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> list[str]:
    out = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k)) for k, _ in cols) + " |")
    return out


def conclusions(result: Comparison | dict[str, Any]) -> list[str]:
    """Plain-word findings, each naming the model behind it."""
    result = as_result(result)
    chip = result["chip"]
    lines, free = legal_conclusions(result)
    for w in result["workloads"]:
        rows = [r for r in result["rows"] if r["workload"] == w["name"]]
        mine = rows[0]
        gpus = [r for r in rows[1:] if free is None or r["device"] in free]   # what the buyer may not buy never leads
        if not gpus:
            lines.append(f"**{w['name']}**: {chip['name']} reaches {_fmt(mine['throughput'])} {w['unit']}s/s "
                         f"({mine['bound']}-bound, {mine['utilization']:.1%} of its peak); no compared GPU may be "
                         "bought by this buyer without a licence. [time: cycle model of the chip RTL; legal model]")
            continue
        best = max(gpus, key=lambda r: r["throughput"])
        cheapest = min((r for r in gpus if r["usd_per_million_units"]), key=lambda r: r["usd_per_million_units"],
                       default=None)
        h20 = next((r for r in gpus if r["device"] == "h20"), None)
        s = (f"**{w['name']}**: {chip['name']} reaches {_fmt(mine['throughput'])} {w['unit']}s/s "
             f"({mine['bound']}-bound, {mine['utilization']:.1%} of its peak), "
             f"{mine['throughput'] / best['throughput']:.2f}x the fastest GPU ({best['device']}, {_fmt(best['throughput'])})")
        if h20:
            s += f" and {mine['throughput'] / h20['throughput']:.2f}x the H20 (the export-compliant GPU)"
        if mine["usd_per_million_units"] and cheapest:
            s += (f"; cost per million {w['unit']}s ${_fmt(mine['usd_per_million_units'])} vs "
                  f"${_fmt(cheapest['usd_per_million_units'])} on {cheapest['device']} (cheapest GPU)")
        s += (f"; it moves {_fmt(mine['dram_GBps'])} GB/s, {mine['dram_bandwidth_utilization']:.1%} of its "
              f"{_fmt(chip['dram_GBps'])} GB/s of DRAM bandwidth (reads and writes share it)")
        lines.append(s + ". [time: custom = cycle model of the chip RTL, GPUs = calibrated GEMM model; cost: cost "
                         "model]")
    custom = [r for r in result["rows"] if r["kind"] == "custom"]
    why = {
        "memory": ("DRAM-bound", "each GEMM keeps its blocks in the global SRAM (A re-read once per N-block, B once "
                   "per M-block, less what stays on chip from step to step), so what is left is compulsory "
                   "traffic (weights, KV cache, outputs) at the DRAM's rate; more DRAM bandwidth, not more cores, "
                   "is the lever there. [chip cycle model, mapper]"),
        "sram": ("SRAM-port-bound", "its cores read more operand bytes per cycle than their slice's port carries "
                 "(an output-stationary core needs rows + columns bytes a cycle), so wider ports or smaller cores "
                 "are the lever. [chip cycle model]"),
    }
    for bound, (label, text) in why.items():
        hit = [r["workload"] for r in custom if r["bound"] == bound]
        if hit:
            lines.append(f"{chip['name']} is {label} on {', '.join(hit)}: {text}")
    compute_bound = [r for r in custom if r["bound"] == "compute"]
    if compute_bound:
        shares = ", ".join(f"{r['utilization']:.1%}" for r in compute_bound)
        lines.append(f"Compute-bound on {', '.join(r['workload'] for r in compute_bound)} at {shares} of peak: "
                     "the rest is each "
                     "core's fill and drain per block and the barrier between steps (more SRAM per core means "
                     "larger blocks). [chip cycle model]")
    lines.append(f"Export class of {chip['name']}: {chip['eccn']} (TPP {_fmt(chip['tpp'])}, performance density "
                 f"{_fmt(chip['performance_density'])}). [export-control model]")
    return lines


def _devices_with_status(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The devices, each with what the scenario's buyer may do (buy a GPU, have the chip
    built), where a buyer is given."""
    if "scenario" not in result:
        return result["devices"]
    status = {p["device"]: f"buy: {p['status'].replace('_', ' ')}" for p in result["legal"]}
    if result.get("build"):
        status[result["build"]["chip"]] = f"build: {result['build']['status'].replace('_', ' ')}"
    return [dict(d, status=status.get(d["id"], "")) for d in result["devices"]]


def legal_conclusions(result: dict[str, Any]) -> tuple[list[str], set[str] | None]:
    """The findings on who may have what (with a buyer and a date), and the GPUs that buyer
    may buy without a licence (None: no buyer given, every GPU counts)."""
    if "scenario" not in result:
        return [], None
    sc, build = result["scenario"], result.get("build")
    free = {p["device"] for p in result["legal"] if p["status"] == "allowed"}
    others = ", ".join(f"{p['device']} {p['status'].replace('_', ' ')}" for p in result["legal"]
                       if p["status"] != "allowed")
    lines = [f"For a buyer in {sc['buyer']} on {sc['date']}, GPUs they may buy without a licence: "
             f"{', '.join(sorted(free)) or 'none of those compared'}" + (f" ({others})" if others else "")
             + "; the others are marked and never lead a conclusion. [legal model]"]
    if build:
        feasible = "fits physically" if build["feasibility"]["feasible"] else "does NOT fit physically"
        lines.append(f"{build['chip']} could be built for this buyer: {build['status'].replace('_', ' ')} "
                     f"(ECCN {build['eccn']}; foundry rule: "
                     f"{'presumed 3A090.a' if build['foundry']['presumed_3a090a'] else 'not presumed 3A090.a'}; "
                     f"memory {build['memory']['kind']}: {build['memory']['eccn'] or 'outside 3A090.c'}), and it "
                     f"{feasible}. [legal model, feasibility model]")
    return lines, free


def write_report(result: Comparison | dict[str, Any], out: str | Path) -> dict[str, Any]:
    """Write report.md, report.html (the same text with the plots embedded: one file that
    opens offline), summary.json and the plots into the folder ``out``, all at once: they
    are built in a staging folder beside it and swapped in when complete, so a run killed
    midway leaves the previous report whole. Returns the file paths."""
    result = as_result(result)
    with staged_folder(out, what="systolab compare") as stage:
        plotters = (plot_roofline, plot_latency_per_layer, plot_efficiency, plot_export_map)
        for name, fn in zip(PLOTS, plotters):
            fn(result).savefig(stage / name, dpi=110)
        text = render_markdown(result)
        (stage / "report.md").write_text(text)
        # the same report as one page that needs no other file (plots embedded)
        write_html_report(stage / "report.html", title=text.splitlines()[0].lstrip("# "), markdown_text=text,
                          figures={name: stage / name for name in PLOTS})
        summary = {k: result[k] for k in ("chip", "devices", "dtype", "workloads", "rows", "iso", "serving",
                                          "model_errors", "assumptions", "scenario", "legal", "build") if k in result}
        (stage / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True, default=str))
    out = Path(out).absolute()
    return {"report": str(out / "report.md"), "html": str(out / "report.html"), "summary": str(out / "summary.json"),
            "plots": [str(out / p) for p in PLOTS]}


def legal_markdown(result: dict[str, Any]) -> list[str]:
    """The report's section on who may buy what (only with a buyer and a date): each GPU's
    purchasability with the deciding policy and its citation."""
    if "scenario" not in result:
        return []
    sc = result["scenario"]
    md = ["", f"## Who may buy what: a buyer in {sc['buyer']} on {sc['date']}", "",
          "Whether this buyer may buy each GPU without a licence on that date, and the dated policy that "
          "decides (`models/data/licence_rules.yaml`, summarised in `docs/legal.md`). A GPU the buyer may not "
          "buy freely is marked in every table below; compare with it only as a reference. [legal model]", ""]
    rows = [dict(p, status_text=p["status"].replace("_", " ") + (" (uncertain)" if p["uncertain"] else ""),
                 policy_text=p["policy"] or "none applies") for p in result["legal"]]
    md += _table(rows, [("device", "device"), ("eccn", "ECCN"), ("status_text", "may buy?"),
                        ("policy_text", "decided by"), ("citation", "citation")])
    return md


def serving_markdown(serving: dict[str, Any] | None) -> list[str]:
    """The report's serving section: tokens/s per device, per k$ and per W, and the fleet
    a budget buys, for each device in its own serving dtype."""
    if not serving:
        return []
    sc, rows = serving["scenario"], serving["rows"]
    batching = (f"continuous batching of {sc['concurrency']} requests" if sc.get("concurrency")
                else f"static batches of {sc.get('batch')}")
    budget = next((r["budget_usd"] for r in rows if "budget_usd" in r), None)
    md = ["", f"## Serving {sc['model']}", "",
          f"{sc['isl']:,} prompt + {sc['osl']:,} output tokens per request, {batching}; each device in its own "
          "serving dtype (the chip's; FP8 on GPUs that have it, else BF16), tensor-parallel over the fewest devices "
          "on which weights, activations and KV cache fit. Fleet: whole replicas the budget"
          + (f" (${budget:,.0f})" if budget else "") + " buys at each unit price. [serving model: operators "
          "incl. non-GEMM work and collectives; GPUs calibrated on public serving measurements "
          "(benchmarks/README.md); chip GEMMs on its cycle model]", ""]
    md += _table([r for r in rows if "output_tokens_per_s" in r],
                 [("device", "device"), ("dtype", "dtype"), ("tp", "tp"), ("ttft_s", "TTFT s"), ("tpot_s", "TPOT s"),
                  ("output_tokens_per_s", "tok/s per device"), ("tokens_per_s_per_kusd", "tok/s per k$"),
                  ("tokens_per_s_per_W", "tok/s per W"), ("energy_per_token_J", "J/token"),
                  ("usd_per_million_tokens", "$ per M tokens"), ("units", "units for budget"),
                  ("fleet_output_tokens_per_s", "fleet tok/s")])
    md += [f"- {r['device']}: {r['note']}" for r in rows if r.get("note")]
    return md


def render_markdown(result: Comparison | dict[str, Any]) -> str:
    """The report's text (Markdown)."""
    result = as_result(result)
    chip = result["chip"]
    md = [f"# Build versus buy: {chip['name']} against Nvidia GPUs", "",
          f"{chip['description']}", "",
          "## Conclusions", ""] + [f"- {c}" for c in conclusions(result)] + legal_markdown(result) + [
          "", "## Devices", ""]
    md += _table(_devices_with_status(result),
                 [("id", "device"), ("kind", "kind"), ("peak_tops", f"{result.get('dtype', 'int8')} TOPS"),
                  ("die_mm2", "die mm²"), ("tdp_W", "TDP W"), ("dram_GBps", "DRAM GB/s"), ("price_usd", "unit price $"),
                  ("eccn", "ECCN 3A090"), ("tpp", "TPP"), ("performance_density", "PD")]
                 + ([("status", "buyer may have it?")] if "scenario" in result else []))
    a = chip["area"]
    md += ["", f"Custom die {a['die_mm2']:.1f} mm²: cores {a['cores_mm2']:.1f} (array {a['core_array_mm2']:.3f} + "
           f"SRAM {a['core_sram_mm2']:.3f} each), NoC {a['noc_mm2']:.1f}, global SRAM {a['global_sram_mm2']:.1f}, "
           f"DRAM PHYs {a['dram_phy_mm2']:.1f}, I/O {a['io_mm2']:.1f}. Unit cost ${chip['unit_cost_usd']:,.0f} "
           f"(range ${chip['unit_cost_range_usd'][0]:,.0f}–${chip['unit_cost_range_usd'][1]:,.0f}; manufacturing "
           f"${chip['cost']['manufacturing_usd']:,.0f} + NRE ${chip['cost']['nre_per_unit_usd']:,.0f}). TDP "
           f"{chip['tdp_W']:.0f} W (logic {chip['power']['logic_W']:.0f} W, DRAM {chip['power']['dram_W']:.0f} W)."]
    for w in result["workloads"]:
        md += ["", f"## {w['name']}", "", f"{w['source']}. Unit: {w['unit']} ({w['units_per_run']} per run); "
               f"{w['gemms']} GEMMs, {w['flops'] / 1e9:,.1f} G ops.", ""]
        rows = [dict(r, cost_text=(f"{_fmt(r['usd_per_million_units'])} ({_fmt(r['usd_per_million_units_range'][0])}"
                                   f"–{_fmt(r['usd_per_million_units_range'][1])})"
                                   if r["usd_per_million_units"] else "n/a"))
                for r in result["rows"] if r["workload"] == w["name"]]
        md += ["GEMMs only: these rows time the workload's matrix multiplications; norms, attention's softmax, "
               "activations and collectives are left out" + (" (the serving section below includes them)"
                                                              if result.get("serving") else "") + ".", ""]
        md += _table(rows, [("device", "device"), ("seconds", "s per run"), ("throughput", f"{w['unit']}s/s"),
                            ("utilization", "utilisation"), ("dram_bandwidth_utilization", "DRAM BW used"),
                            ("bound", "bound"), ("energy_per_unit_J", "J per unit"),
                            ("throughput_per_mm2", f"{w['unit']}s/s per die mm²"),
                            ("throughput_per_W", f"{w['unit']}s/s per TDP W"),
                            ("throughput_per_kusd", f"{w['unit']}s/s per k$ of unit price"),
                            ("cost_text", "$ per M units (range)"),
                            ("eccn", "ECCN")] + ([("purchasability", "buyer may buy?")] if "scenario" in result else []))
    if result.get("iso"):
        md += ["", "## Iso-area, iso-power and iso-cost", "",
               "The custom chip resized (number of cores) to each GPU's die area, TDP or price, never past the "
               "reticle limit (`binds` says which stopped it); `ratio` = its "
               "throughput over the GPU's on the same workload. [area, energy and cost models; time: cycle model]", ""]
        md += _table([r for r in result["iso"] if "ratio" in r],
                     [("view", "view"), ("gpu", "matched to"), ("workload", "workload"), ("cores", "cores"),
                      ("die_mm2", "die mm²"), ("tdp_W", "TDP W"), ("unit_cost_usd", "unit $"),
                      ("throughput", "throughput"), ("gpu_throughput", "GPU throughput"), ("ratio", "ratio"),
                      ("binds", "binds")])
        md += [f"- {r['view']} with {r['gpu']}: {r['note']}" for r in result["iso"] if "note" in r]
    md += serving_markdown(result.get("serving"))
    md += ["", "## Models behind the numbers and their measured errors", ""]
    md += [f"- **{k}**: {v}" for k, v in result["model_errors"].items()]
    md += ["", "## Assumptions", ""] + [f"- {' '.join(a.split())}" for a in result["assumptions"]]
    notes = sorted({n for d in result["devices"] for n in d["notes"]})
    if notes:
        md += ["", "## Uncertain inputs", ""] + [f"- {n}" for n in notes]
    md += ["", "## Plots", ""] + [f"![{p}]({p})" for p in PLOTS]
    return "\n".join(md) + "\n"
