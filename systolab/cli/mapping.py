"""``systolab map``: the mapper's choice for a GEMM or every GEMM of a workload on a chip."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..models.chip.mapper import LOOP_ORDERS, map_gemm, map_gemms, mapping_totals, workload_rows
from .common import chip_from_args, emit, gemms_from_args, int_in, naming_workload, search_argument


def add_parser(sub, parents) -> None:
    p = sub.add_parser("map", parents=[parents.json, parents.workload, parents.chip],
                       help="how the mapper blocks and spreads a GEMM or a workload over a chip's cores")
    g = p.add_argument_group("mapping")
    search_argument(g)
    g.add_argument("--count", type=int_in(1, 1 << 20),
                   help="independent products of --gemm in one descriptor (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.chip is None:
        raise UserError("chip: map needs --chip NAME_OR_FILE (a chip of models/data/chips.yaml or a chips YAML file)",
                        parameter="chip")
    chip = chip_from_args(args)
    gemms, workload = gemms_from_args(args, chip.core.dtype)
    base = {"chip": chip.name, "search": args.search,
            "model": "mappings timed by models/chip/perf.py (equal to the chip RTL's counters: systolab validate "
                     "--chip)"}
    if workload is None:
        g = gemms[0]
        m = map_gemm(chip, g.M, g.N, g.K, args.count or 1, args.search)
        payload = {**base, "gemms": [{"name": g.name, **m.to_dict()}]}
        payload["totals"] = mapping_totals(chip, payload["gemms"])
    else:
        if args.count is not None:
            raise UserError("count: applies to --gemm (a workload's GEMMs carry their own)", parameter="count")
        workload.check_fits(chip.dram.GB, chip.name)        # the one capacity check, as perf --chip and compare
        with naming_workload(workload):
            mapped = map_gemms(chip, [(g.M, g.N, g.K, g.parallel) for g in gemms], args.search)
        rows = workload_rows(gemms, mapped)
        payload = {**base, "workload": workload.to_dict(), "gemms": rows, "totals": mapping_totals(chip, rows)}

    def human(q: dict) -> str:
        t = q["totals"]
        lines = [f"{chip.name} ({q['search']} search): {t['cycles']:,} cycles ({t['seconds'] * 1e3:.4f} ms), "
                 f"MAC utilisation {t['utilization']:.3f}, DRAM bandwidth used {t['dram_bandwidth_utilization']:.3f}, "
                 f"{t['bound']}-bound; DRAM {t['dram_bytes']:,} B (lower bound {t['dram_bytes_lower_bound']:,} B, "
                 f"{t['dram_bytes_lower_bound_dma']:,} B in the DMA's beats)"]
        for r in q["gemms"][:60]:
            lines.append(f"  {r['name']:14} {'x'.join(map(str, r['gemm']))} x{r['count']}: {r['mapping']['text']:36} "
                         f"util {r['utilization']:.3f} DRAM {r['dram_bandwidth_utilization']:.3f} {r['bound']:8} "
                         f"bytes/bound {r['dram_bytes'] / max(1, r['dram_bytes_lower_bound']):.3f} "
                         f"({r['evaluated']} of {r['candidates']} timed)")
        for order in sorted({r["mapping"]["order"] for r in q["gemms"]}):
            lines.append(f"  loop order{' (/n-outer)' if order else ''}: {LOOP_ORDERS[order]}")
        return "\n".join(lines)

    emit(args, payload, human)
    return 0

