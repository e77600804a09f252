"""The report of an exploration: the points as a table, the GPUs as reference points, the
Pareto plot, the ECCN 3A090 map and the markdown report, and the writer that puts them
all in a folder at once."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UserError
from ...files import atomic_write_text, staged_folder
from ..chip.config import get_chip
from ..frames import data_frame
from ..legal.purchase import purchasability
from ..report.compare import compare_row, gpu_device
from ..report.evaluate import evaluate_gpu
from ..report.figures import plot_export_map
from ..workloads.catalog import get_workload
from .space import DESIGN_METRICS, GEMM_METRICS, Space, load_space
from .stages import serving_metrics, with_fleet

#: The files :func:`write_explore_report` writes.
REPORT_FILES = ("report.md", "points.csv", "pareto.csv", "pareto.png", "export_map.png")

#: Units of the metrics, for column names.
UNITS = {"die_mm2": "die_mm2", "power_W": "power_W", "unit_cost_usd": "unit_cost_usd", "peak_tops": "peak_TOPS",
         "tpp": "tpp", "fleet_units": "fleet_units", "fleet_throughput": "fleet_throughput_units_per_s",
         "throughput": "throughput_units_per_s", "seconds": "seconds_s", "utilization": "utilization",
         "energy_per_unit_J": "energy_per_unit_J", "usd_per_million_units": "usd_per_million_units",
         "ttft_s": "ttft_s", "devices": "devices", "concurrency": "concurrency", "meets_targets": "meets_targets",
         "reason": "reason", "usd_per_million_tokens_tco": "usd_per_million_tokens_tco",
         "lifetime_cost_per_device_usd": "lifetime_cost_per_device_usd", "tco_units": "tco_units"}


def points_frame(points: list[dict], front: set[str] | frozenset[str] = frozenset()):
    """The stored points as a pandas DataFrame: the design, feasibility, the constraints
    that failed, the design's metrics and each workload's (``<workload>.<metric>``), units
    in the column names, the clock a float design was run at where its fmax is below its stated
    clock (``attainable_clock_mhz``, MHz; else empty), and whether the point is on the Pareto front."""
    rows = []
    for p in points:
        r = p["result"]
        row = {"design_hash": p["design_hash"], **p["design"], "feasible": r["feasible"],
               "failed": ";".join(r["failed"]), "eccn": r.get("eccn"),
               **{UNITS[k]: r.get(k) for k in DESIGN_METRICS},
               "attainable_clock_mhz": r.get("clock_mhz")}       # None: the design runs at its stated clock
        for w, m in r["workloads"].items():
            row.update({f"{w}.{UNITS[k]}": v for k, v in m.items()})
        row["pareto"] = p["design_hash"] in front
        rows.append(row)
    return data_frame(rows)


def gpu_reference(space: Space) -> dict[str, dict]:
    """The space's metrics on its reference GPUs (the compare model: same workloads, the
    chip's dtype, the fleet the space's budget buys), shaped like a design's results."""
    dtype = get_chip(space.base).core.dtype
    names = list(dict.fromkeys([*space.gpus, *(b["gpu"] for b in space.constraints.get("beat") or [])]))
    out = {}
    for g in names:
        dev = gpu_device(g, dtype)
        res: dict[str, Any] = {"die_mm2": dev.die_mm2, "power_W": dev.tdp_W, "unit_cost_usd": dev.price_usd,
                               "peak_tops": dev.peak_tops, "tpp": dev.tpp, "eccn": dev.eccn, "workloads": {}}
        for w in space.workloads:
            if "serve" in w:
                try:
                    res["workloads"][w["name"]] = serving_metrics(g, w)
                except UserError:               # fits no tensor-parallel group of this GPU: no reference
                    res["workloads"][w["name"]] = {}
                continue
            wl = get_workload(w["name"], dtype=dtype, batch=w.get("batch"), seq_len=w.get("seq_len"))
            row = compare_row(dev, evaluate_gpu(g, wl))
            res["workloads"][w["name"]] = {k: row.get(k) for k in GEMM_METRICS}
        if "buyer" in space.constraints:
            res["purchasability"] = purchasability(g, space.constraints["buyer"], str(space.constraints["rule_date"])).status
        out[g] = with_fleet(res, space.budget_usd, corrected=space.corrected)
    return out


def plot_pareto(space: Space, points: list[dict], front: set[str], gpus: dict[str, dict] | None = None, ax=None):
    """Every point in each 2-D projection of the objectives (one panel per pair; grey:
    infeasible, blue: feasible, red: the Pareto front) with GPUs as labelled reference
    points. Returns the ``Figure`` (drawn into ``ax``, one axes per pair, when given)."""
    from matplotlib.figure import Figure  # noqa: PLC0415  lazy: matplotlib is slow to import, and only the plots need it

    objs = space.objectives
    pairs = list(itertools.combinations(range(len(objs)), 2)) or [(0, 0)]
    if ax is None:
        fig = Figure(figsize=(6.5 * len(pairs), 5))
        axes = list(np.atleast_1d(fig.subplots(1, len(pairs))))
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(pairs):
            raise UserError(f"ax: this space's objectives need {len(pairs)} axes, not {len(axes)}", parameter="ax")
        fig = axes[0].figure

    def value(result, o):
        try:
            v = result["workloads"][o.workload][o.metric] if o.workload else result[o.metric]
        except KeyError:
            return None
        return v if isinstance(v, (int, float)) and v > 0 else None

    for a, (i, j) in zip(axes, pairs):
        def xy(result, i=i, j=j):
            v = (value(result, objs[i]), value(result, objs[j]))
            return None if None in v else v

        for kind, color, pick in (("infeasible", "0.75", lambda p: not p["result"]["feasible"]),
                                  ("feasible", "tab:blue", lambda p: p["result"]["feasible"]),
                                  ("Pareto front", "tab:red", lambda p: p["design_hash"] in front)):
            pts = [v for p in points if pick(p) and (v := xy(p["result"])) is not None]
            if pts:
                a.scatter(*zip(*pts), s=14 if kind != "Pareto front" else 30, c=color, label=kind)
        for g, res in (gpus or {}).items():
            v = xy(res)
            if v is not None:
                a.scatter(*v, marker="*", s=160, c="k")
                a.annotate(g, v, textcoords="offset points", xytext=(5, 5))
        a.set_xlabel(f"{objs[i].label} ({objs[i].goal})")
        a.set_ylabel(f"{objs[j].label} ({objs[j].goal})")
        a.set_xscale("log")
        a.set_yscale("log")
        a.legend(loc="best", fontsize=8)
    fig.suptitle(f"{len(points)} designs, {len(front)} on the Pareto front")
    return fig


def export_map(points: list[dict], front: set[str], gpus: dict[str, dict], ax=None):
    """The Pareto points (at most 20, labelled by hash) and the GPUs on the ECCN 3A090 map
    (TPP against performance density, with the rule's thresholds). Returns the ``Figure``."""
    devices = [{"id": p["design_hash"][:6], "kind": "custom", "tpp": p["result"]["tpp"], "eccn": p["result"]["eccn"],
                "performance_density": p["result"]["tpp"] / p["result"]["die_mm2"]}
               for p in points if p["design_hash"] in front][:20]
    devices += [{"id": g, "kind": "gpu", "tpp": r["tpp"], "eccn": r["eccn"],
                 "performance_density": r["tpp"] / r["die_mm2"] if r["die_mm2"] else None} for g, r in gpus.items()]
    return plot_export_map({"devices": devices}, ax=ax)


def report_markdown(space: Space, res: dict, gpus: dict[str, dict]) -> str:
    """The run's report: the Pareto table, the best point per objective against each GPU,
    and the constraint that binds."""
    labels = [o.label for o in space.objectives]
    lines = [f"# Exploration of {space.source}", "",
             f"{res['points']} points ({res['search']}, seed {res['seed']}), {res['feasible']} feasible, "
             f"{len(res['pareto'])} on the Pareto front. Store: `{res['store']}`.", ""]
    if res["rejected_by"]:
        lines.append("Rejected by constraint: " + ", ".join(f"{k} {v}" for k, v in res["rejected_by"].items())
                     + (f"; nothing is feasible, and `{res['binding']}` rejects the most." if res["binding"] else
                        f"; `{max(res['rejected_by'], key=res['rejected_by'].get)}` rejects the most."))
        lines.append("")
    if res["pareto"]:
        lines += ["## Pareto front", "", "| design_hash | design | " + " | ".join(labels) + " |",
                  "|---|---|" + "---:|" * len(labels)]
        for p in res["pareto"]:
            lines.append(f"| {p['design_hash']} | {p['design']} | "
                         + " | ".join(f"{p['objectives'][k]:.4g}" for k in labels) + " |")
        lines += ["", "## Best point per objective against the GPUs", ""]
        for o in space.objectives:
            best = (max if o.goal == "max" else min)(res["pareto"], key=lambda p: p["objectives"][o.label])
            v = best["objectives"][o.label]
            refs = []
            for g, r in gpus.items():
                gv = r["workloads"].get(o.workload, {}).get(o.metric) if o.workload else r.get(o.metric)
                if gv:
                    mark = f", {r['purchasability'].replace('_', ' ')}" if r.get("purchasability", "allowed") != "allowed" else ""
                    refs.append(f"{g} {gv:.4g} ({v / gv:.2f}x{mark})")
            lines.append(f"- {o.label} ({o.goal}): {v:.4g} at {best['design']}; " + (", ".join(refs) or "no GPU value"))
            if "buyer" in space.constraints:
                lines.append(f"  - {_best_free_gpu(space, o, v, gpus)}")
    if res.get("deep"):
        lines += ["", "## Deep stage: the core's RTL on Verilator, its array synthesised", "",
                  "| design_hash | GEMMs bit-exact | RTL cycles = model | array mm², synthesis | model error | s |",
                  "|---|---|---|---:|---:|---:|"]
        for d in res["deep"]:
            if "error" in d:
                lines.append(f"| {d['design_hash']} | failed: {d['error']} | | | | |")
            else:
                lines.append(f"| {d['design_hash']} | {'yes' if d['passed'] else 'NO'} | "
                             f"{'yes' if d['cycles_exact'] else 'NO'} {d['rtl_cycles']} | {d['synth_array_mm2']:.4g} | "
                             f"{d['area_error']:+.1%} | {d['verify_s'] + d['synth_s']:.0f} |")
    lines += ["", "![Pareto front](pareto.png)", "", "![ECCN 3A090 map](export_map.png)", ""]
    return "\n".join(lines)


def _best_free_gpu(space: Space, o: Any, v: float, gpus: dict[str, dict]) -> str:
    """The best value of objective ``o`` among the GPUs the space's buyer may buy without a
    licence on its date, against the design's ``v``."""
    values = {g: (r["workloads"].get(o.workload, {}).get(o.metric) if o.workload else r.get(o.metric))
              for g, r in gpus.items() if r.get("purchasability") == "allowed"}
    free: dict[str, float] = {g: float(x) for g, x in values.items() if x}
    who = f"a buyer in {space.constraints['buyer']} on {space.constraints['rule_date']}"
    if not free:
        return f"no reference GPU with a value here may be bought by {who} without a licence"
    g = (max if o.goal == "max" else min)(free, key=lambda k: free[k])
    beats = v > free[g] if o.goal == "max" else v < free[g]
    return (f"best GPU {who} may buy without a licence: {g} {free[g]:.4g}; the design "
            f"{'beats' if beats else 'does not beat'} it ({v / free[g]:.2f}x)")


def write_explore_report(result: dict, out_dir: str | Path, space: Space | str | Path | dict) -> dict[str, str]:
    """Write an exploration's report into the folder ``out_dir`` all at once (built in a
    staging folder beside it and swapped in when complete, so a run killed midway leaves
    the previous report whole): ``report.md``, ``points.csv`` (every point, units in the
    column names), ``pareto.csv``, ``pareto.png`` and ``export_map.png``. ``result`` is
    :func:`~systolab.models.explore.run.run_explore`'s (with its ``all_points``), ``space``
    the space it explored. The store must lie outside ``out_dir`` (the folder is replaced
    whole). Returns each file's path, by name."""
    out = Path(out_dir)
    if out.resolve() in Path(result["store"]).resolve().parents:
        raise UserError("db: keep the store outside --out (the output folder is replaced whole)", parameter="db")
    sp = space if isinstance(space, Space) else load_space(space)
    points = result["all_points"]
    front = {p["design_hash"] for p in result["pareto"]}
    df = points_frame(points, front)
    gpus = gpu_reference(sp)
    summary = {k: v for k, v in result.items() if k != "all_points"}
    with staged_folder(out, what="systolab explore") as stage:
        atomic_write_text(stage / "points.csv", df.to_csv(index=False))
        atomic_write_text(stage / "pareto.csv", df[df["pareto"]].to_csv(index=False) if len(df) else "")
        plot_pareto(sp, points, front, gpus).savefig(stage / "pareto.png", dpi=110)
        export_map(points, front, gpus).savefig(stage / "export_map.png", dpi=110)
        atomic_write_text(stage / "report.md", report_markdown(sp, summary, gpus))
    return {name: str(out / name) for name in REPORT_FILES}


__all__ = ["REPORT_FILES", "UNITS", "export_map", "gpu_reference", "plot_pareto", "points_frame", "report_markdown",
           "write_explore_report"]
