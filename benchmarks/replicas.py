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
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import date
from unittest import mock

from systolab.models.report.replicas import HELD_OUT, QUANTITIES, replica_table
from systolab.models.silicon import area, energy

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


def _fmt(v: float) -> str:
    return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the table as one JSON object")
    ap.add_argument("--ranges", action="store_true", help="also the medians with each die figure at its low and high")
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


if __name__ == "__main__":
    main()
