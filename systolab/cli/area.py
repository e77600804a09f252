"""``systolab area``: silicon area from synthesis and from the analytic model; energy of a GEMM."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..models.workloads.gemm import parse_gemm
from .common import chip_from_args, design_from_args, emit


def add_parser(sub, parents) -> None:
    p = sub.add_parser("area", parents=[parents.design, parents.chip, parents.json],
                       help="silicon area from synthesis and from the analytic model; energy of a GEMM")
    p.add_argument("--node", help="process node: n28, n16, n7 (default), n5, n4, n3, smic-7duv (a --chip has its own)")
    p.add_argument("--liberty", metavar="FILE", help="also map to this Liberty standard-cell library (um2)")
    p.add_argument("--gemm", metavar="MxNxK", help="also report energy, power and TOPS/W of this GEMM")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.silicon.area_check import area_check, chip_area_check  # noqa: PLC0415  lazy: models.silicon loads Amaranth (synthesis), slow to import; systolab --help must not
    from ..models.silicon.energy import gemm_energy  # noqa: PLC0415  lazy: as above
    from ..models.silicon.nodes import get_node  # noqa: PLC0415  lazy: as above

    if args.chip is not None:                 # the chip's die and its attainable clock (its own node)
        chip = chip_from_args(args)
        for flag in ("gemm", "liberty", "node"):
            if getattr(args, flag) is not None:
                raise UserError(f"{flag}: applies to a lone core, not to --chip", parameter=flag)
        emit(args, chip_area_check(chip).to_dict(), _chip_lines)
        return 0
    config = design_from_args(args)
    node = get_node("n7" if args.node is None else args.node)
    gemm = parse_gemm(args.gemm, dtype=config.dtype) if args.gemm is not None else None
    payload = {**area_check(config, node.name, liberty=args.liberty).to_dict(), "energy": None}
    if gemm is not None:
        e = gemm_energy(config, gemm, node=node.name)
        payload["energy"] = {"gemm": args.gemm, "joules": e.joules, "seconds": e.seconds,
                             "average_watts": e.average_watts, "tops_per_watt": e.tops_per_watt,
                             "assumptions": list(e.assumptions)}

    def human(p: dict) -> str:
        b = p["breakdown"]
        lines = [f"{config.name} at {p['node']}: synthesis {p['synth_area_mm2']:.4f} mm2, "
                 f"model {p['model_area_mm2']:.4f} mm2 ({p['model_error_pct']:+.2f} %)",
                 f"  {p['synth_transistors']} transistors, {p['nand2_equivalent']:.0f} NAND2-eq, "
                 f"{p['flip_flops']} flip-flops; PEs {b['pe_share']:.1%} of the area",
                 f"  logic depth (gates): PE {p['logic_depth_gates']['pe']}, top {p['logic_depth_gates']['top_level']}; "
                 f"assumed clock {p['assumed_clock_MHz']:g} MHz"]
        if p["fmax_mhz"]:
            f, c = p["fmax_mhz"], p["critical_path"]
            lines.append(f"  fmax (estimate) {f['value']:.0f} MHz (range {f['low']:.0f}-{f['high']:.0f}); critical path "
                         f"{c['location']}, {c['depth_gates']} gates, {c['delay_ps']:.0f} ps")
        if p["liberty"]:
            lines.append(f"  liberty {p['liberty']['file']}: {p['liberty']['area_um2']:.0f} um2")
        if p["energy"]:
            e = p["energy"]
            lines.append(f"  {e['gemm']}: {e['joules'] * 1e6:.2f} uJ in {e['seconds'] * 1e6:.1f} us, "
                         f"{e['average_watts']:.3f} W, {e['tops_per_watt']:.2f} TOPS/W")
        lines += [f"  assumption: {a}" for a in p["assumptions"]]
        return "\n".join(lines)

    emit(args, payload, human)
    return 0


def _chip_lines(p: dict) -> str:
    f, c = p["fmax_mhz"], p["critical_path"]
    return (f"{p['chip']} at {p['node']}: die {p['die_mm2']:.1f} mm2 (model)\n"
            f"  fmax (estimate) {f['value']:.0f} MHz (range {f['low']:.0f}-{f['high']:.0f}) against its "
            f"{p['clock_mhz']:g} MHz{'' if p['meets_clock'] else ' (not met)'}; critical path {c['location']}, "
            f"{c['depth_gates']} gates, {c['delay_ps']:.0f} ps")
