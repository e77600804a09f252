"""``systolab export-control``: the ECCN 3A090 view of a GPU or a custom chip."""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from ..models.gpu.specs import get_gpu
from ..models.legal import export_control as ec
from .common import emit, int_in, nonnegative_real, real_in

CUSTOM_FLAGS = ("rows", "cols", "dtype", "clock_mhz", "cores", "die_area_mm2", "io_bidir_gbps", "dram_bw_gbps",
                "not_data_center")


def add_parser(sub, parents) -> None:
    p = sub.add_parser("export-control", parents=[parents.json], help="ECCN 3A090 view of a GPU or a custom chip")
    p.add_argument("--gpu", metavar="ID", help="classify this GPU (its figures come from models/data/gpus.yaml)")
    g = p.add_argument_group("a custom chip (instead of --gpu)")
    g.add_argument("--rows", type=int_in(1, 1 << 20), help="array rows")
    g.add_argument("--cols", type=int_in(1, 1 << 20), help="array columns")
    g.add_argument("--dtype", help="MAC dtype (default int8)")
    g.add_argument("--clock-mhz", type=real_in(0.0, 100_000.0), dest="clock_mhz", help="clock in MHz")
    g.add_argument("--cores", type=int_in(1, 1 << 24), help="number of arrays (default 1)")
    g.add_argument("--die-area-mm2", type=real_in(0.0, 1e6), dest="die_area_mm2", help="applicable die area")
    g.add_argument("--io-bidir-gbps", type=nonnegative_real, dest="io_bidir_gbps",
                   help="aggregate bidirectional I/O in GB/s (the Oct-2022 rule tests it)")
    g.add_argument("--dram-bw-gbps", type=nonnegative_real, dest="dram_bw_gbps",
                   help="DRAM bandwidth in GB/s (the 2026 licence policy tests it)")
    g.add_argument("--not-data-center", action="store_true", dest="not_data_center",
                   help="not designed or marketed for data centers")
    p.add_argument("--rule-date", dest="rule_date", metavar="YYYY-MM-DD",
                   help="rule set in force on this date (default: latest)")
    p.set_defaults(func=run)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def run(args: argparse.Namespace) -> int:
    given = [f for f in CUSTOM_FLAGS if getattr(args, f) not in (None, False)]
    if args.gpu:
        if given:
            raise UserError(f"{_flag(given[0])}: describes a custom chip; a GPU's figures come from its spec "
                            "(give either --gpu or the custom-chip flags)")
        gpu = get_gpu(args.gpu)
        result = ec.classify_gpu(gpu, rule_date=args.rule_date)
        payload = {"device": gpu.id, "name": gpu.name, **result.to_dict(), "headroom": None}
    else:
        for flag in ("rows", "cols", "clock_mhz", "die_area_mm2"):
            if getattr(args, flag) is None:
                raise UserError(f"{_flag(flag)}: required for a custom chip (or give --gpu ID)")
        dtype, cores = args.dtype or "int8", args.cores or 1
        chip = dict(die_area_mm2=args.die_area_mm2, cores=cores, data_center=not args.not_data_center,
                    io_bidir_GBps=args.io_bidir_gbps, dram_bw_GBps=args.dram_bw_gbps, rule_date=args.rule_date)
        result = ec.classify_custom(rows=args.rows, cols=args.cols, dtype=dtype, clock_mhz=args.clock_mhz, **chip)
        if not result.determined:
            raise UserError(f"{result.missing[0]}: the {result.rule_set} rule needs it to classify this chip "
                            f"(TPP {result.tpp:,.0f}); {result.decided_by[0]}", parameter=result.missing[0])
        payload = {"device": f"custom {cores}x{args.rows}x{args.cols} {dtype} @ {args.clock_mhz:g} MHz",
                   **result.to_dict()}
        # Designing around the rule: how far this design could grow and stay unclassified
        # (None: no limit under this rule set).
        others = {k: v for k, v in chip.items() if k != "cores"}
        payload["headroom"] = {
            "largest_square_array_outside_3A090": ec.largest_square_array(dtype=dtype, clock_mhz=args.clock_mhz,
                                                                          cores=cores, **others),
            "max_clock_mhz_outside_3A090": ec.max_clock_mhz(rows=args.rows, cols=args.cols, dtype=dtype,
                                                            cores=cores, **others),
            "tpp_limit_outside_3A090": ec.max_tpp(**others),
        }

    def human(p: dict) -> str:
        pd = "unknown" if p["performance_density"] is None else f"{p['performance_density']:.2f}"
        lines = [f"{p['device']}: ECCN {p['eccn']} under {p['rule_set']} ({p['citation']})",
                 f"  TPP {p['tpp']:.0f}, performance density {pd}"]
        lines += [f"  {d}" for d in p["decided_by"]]
        if p.get("licence_policy"):
            lines.append(f"  {p['licence_policy']}")
        for k, v in (p["headroom"] or {}).items():
            lines.append(f"  {k}: {'no limit under this rule set' if v is None else v}")
        lines += [f"  note: {n}" for n in p["notes"]]
        return "\n".join(lines)

    emit(args, payload, human)
    if payload["eccn"] == ec.UNDETERMINED:
        print(f"systolab: export class undetermined: {payload['decided_by'][0]}", file=sys.stderr)
        return 1
    return 0
