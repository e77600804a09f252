"""Replicas of published accelerators: systolab's area, peak, power and performance models
against the published figures (models/data/replicas.yaml, models/report/replicas.py).

    python benchmarks/replicas.py [--json] [--ranges]

Prints, for every replica, modelled vs published die area, peak TOPS, TDP and one
throughput or efficiency figure with the error of each; then the median |error| per
quantity, and the leave-one-out reading of area and TDP (the model scaled by the
geometric-mean gap of the other replicas). Die area is chip_area, TDP the design power of
chip_power (SRAM traffic, control processors and the static floor included; data/die.yaml),
each with the replica's control processors. Nothing is fitted to the replicas.
--ranges adds the medians with each figure of data/die.yaml at its low and at its high
(the others at their values): how far the result moves within the sources' ranges.
--checks adds the candidate explanations of the remaining gaps, each computed from the
model's own breakdown (no model changes): global SRAM at an SRAM-only die's density, a
vector lane with its register file (x2) or an engine ten times the lane, the static floor
as a fraction of the design power instead of per mm2, the 14 nm replica's SRAM at its own
process's bitcell, and (with --liberty FILE) the arrays scaled by the PE's area in a real
cell library over its generic-gate estimate.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from unittest import mock

from systolab.config import AcceleratorConfig
from systolab.models.gpu.power import power_params
from systolab.models.report.replicas import HELD_OUT, QUANTITIES, load_replicas, replica_table
from systolab.models.silicon import area, energy
from systolab.models.silicon.nodes import get_node
from systolab.models.silicon.synthesis import synthesize

#: GlobalFoundries 14LPP (Samsung's licensed 14 nm FinFET, on which the Groq TSP was made): its
#: high-density 6T bitcell, um2 (Samsung, ISSCC 2014, a 14 nm FinFET 128 Mb SRAM; WikiChip '14 nm
#: lithography process'), against data/nodes.yaml's n16 (TSMC 16FF+, 0.07) that replicas.yaml maps it to.
GF14_BITCELL_UM2 = 0.064

FIGURES = ("sram_die_efficiency", "scalar_core_mm2", "scalar_core_mW_per_GHz", "whitespace_fraction",
           "idle_W_per_die_mm2")


def ranges() -> None:
    """Median |error| of die area and TDP with each die figure at its low and its high."""
    base = area.die_data()
    print("\n| die.yaml figure | at low: area, TDP | at high: area, TDP |\n|---|---|---|")
    for name in FIGURES:
        fig = getattr(base, name)
        cells = []
        for end in (fig.low, fig.high):
            data = replace(base, **{name: replace(fig, value=end)})
            with mock.patch.object(area, "die_data", lambda d=data: d), \
                    mock.patch.object(energy, "die_data", lambda d=data: d):
                area.core_area.cache_clear()
                t = replica_table()
                cells.append(f"{end:g}: {t.median_abs_error_pct('die_mm2'):.1f} %, "
                             f"{t.median_abs_error_pct('tdp_W'):.1f} %")
        area.core_area.cache_clear()
        print(f"| {name} ({fig.value:g}) | {cells[0]} | {cells[1]} |")


def library_ratio(liberty: str) -> float:
    """NAND2-equivalents of the int8 PE (32-bit accumulator; WS and OS, mean) mapped to the
    Liberty library ``liberty`` (its area over its NAND2's) over the generic-gate estimate
    (transistors / 4) that the area fit is built on."""
    text = Path(liberty).read_text()
    cell = re.search(r"cell\s*\(\s*\"?NAND2_?X1\"?\s*\)\s*\{[^}]*?area\s*:\s*([0-9.]+)", text)
    if cell is None:
        raise SystemExit(f"--liberty: no NAND2X1 / NAND2_X1 cell with an area in {liberty}")
    nand2 = float(cell.group(1))
    ratios = []
    for df in ("ws", "os"):
        c = AcceleratorConfig(rows=4, cols=4, dataflow=df, dtype="int8", acc_bits=32)
        generic, mapped = synthesize(c).pe, synthesize(c, liberty=liberty).pe
        assert generic.transistors and mapped.area_um2
        ratios.append(mapped.area_um2 / nand2 / (generic.transistors / 4))
        print(f"  {df} int8 PE: generic {generic.transistors / 4:,.0f} NAND2, {Path(liberty).name} "
              f"{mapped.area_um2 / nand2:,.0f} NAND2: x{ratios[-1]:.2f}")
    return statistics.fmean(ratios)


def checks(liberty: str | None) -> None:
    """Area and TDP medians under each candidate explanation of the remaining gaps."""
    die = area.die_data()
    white = 1 + die.whitespace_fraction.value
    dense = die.sram_die_efficiency.value / die.sram_die_efficiency.high
    idle = power_params().idle_fraction
    ratio = library_ratio(liberty) if liberty else None
    n16_bitcell = get_node("n16").sram_bitcell_um2.value
    rows: dict[str, list[tuple[float, float]]] = {}
    for r in load_replicas():
        a = area.chip_area(r.chip, scalar_cores=r.scalar_cores)
        p = energy.chip_power(r.chip, scalar_cores=r.scalar_cores)
        arrays = r.chip.cores * a.core_array_mm2 * (1 + r.chip.noc_overhead_fraction) * white
        design = p.tdp_W - p.static_W
        cases = {
            "global SRAM at the SRAM-only die's share": a.die_mm2 - a.global_sram_mm2 * (1 - dense) * white,
            "vector lane x2 (its register file)": a.die_mm2 + a.vector_mm2 * white,
            "vector engines x10 the lane": a.die_mm2 + 9 * a.vector_mm2 * white,
            "static floor = idle fraction of design power (TDP)": design + max(
                0.0, idle / (1 - idle) * design - p.leakage_W),
        }
        if r.chip.node == "n16":       # the TSP: GlobalFoundries 14LPP's bitcell for the n16 stand-in's
            sram = a.global_sram_mm2 + r.chip.cores * a.core_sram_mm2
            cases[f"14 nm FinFET SRAM at GF 14LPP's {GF14_BITCELL_UM2} um2 bitcell"] = \
                a.die_mm2 - sram * (1 - GF14_BITCELL_UM2 / n16_bitcell) * white
        else:
            cases[f"14 nm FinFET SRAM at GF 14LPP's {GF14_BITCELL_UM2} um2 bitcell"] = a.die_mm2
        if ratio is not None:
            cases[f"arrays x{ratio:.2f} (real cell library)"] = a.die_mm2 - arrays * (1 - ratio)
        for name, v in cases.items():
            pub = r.tdp_W.value if "TDP" in name else r.die_mm2.value
            rows.setdefault(name, []).append((v, 100 * (v - pub) / pub))
    print("\n| check | per replica (model, error) | median abs error |\n|---|---|---:|")
    keys = [r.key for r in load_replicas()]
    for name, vals in rows.items():
        cells = ", ".join(f"{k} {v:,.0f} ({e:+.0f} %)" for k, (v, e) in zip(keys, vals))
        print(f"| {name} | {cells} | {statistics.median(abs(e) for _, e in vals):.1f} % |")


def _fmt(v: float) -> str:
    return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the table as one JSON object")
    ap.add_argument("--ranges", action="store_true", help="also the medians with each die figure at its low and high")
    ap.add_argument("--checks", action="store_true", help="also the medians under each candidate explanation of the gaps")
    ap.add_argument("--liberty", metavar="FILE", help="with --checks: a Liberty library to map the PE to (slow: synthesis)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    table = replica_table()
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps(table.to_dict(), indent=1))
        return
    print(f"Replica table, {date.today()} ({seconds:.1f} s)\n")
    print("| replica | quantity | model | published (range) | error | held-out error |")
    print("|---|---|---:|---:|---:|---:|")
    for r in table.rows:
        rng = "" if r.low == r.high else f" ({_fmt(r.low)}–{_fmt(r.high)})"
        held = "" if r.held_out_error_pct is None else f"{r.held_out_error_pct:+.0f} %"
        print(f"| {r.replica} | {r.name} [{r.unit}] | {_fmt(r.modelled)} | {_fmt(r.published)}{rng} | "
              f"{r.error_pct:+.1f} % | {held} |")
    print()
    for q in QUANTITIES:
        print(f"median |error| {q}: {table.median_abs_error_pct(q):.1f} %")
    for q in HELD_OUT:
        print(f"median |error| {q}, held-out overhead reading: {table.median_abs_error_pct(q, held_out=True):.1f} %")
    print("\nwhere the model's area and power go (per replica):")
    for r in table.rows:
        if r.quantity in ("die_mm2", "tdp_W", "figure"):
            print(f"  {r.replica} {r.quantity}: {r.basis}")
    if args.ranges:
        ranges()
    if args.checks:
        checks(args.liberty)


if __name__ == "__main__":
    main()
