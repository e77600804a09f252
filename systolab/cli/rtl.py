"""``systolab rtl``: the design's Verilog and a manifest of parameters and ports."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..files import staged_folder
from .common import chip_from_args, design_from_args, emit


def add_parser(sub, parents) -> None:
    p = sub.add_parser("rtl", parents=[parents.design, parents.chip, parents.json],
                       help="write the Verilog of the core, the bare array or a whole chip, and a manifest")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new, empty, or written by systolab)")
    p.add_argument("--unit", choices=("core", "array"),
                   help="core: the accelerator core with buffers, memory port and controller (default); "
                        "array: the bare systolic array (not with --chip)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hdl.verilog import generate_chip_verilog, generate_verilog  # noqa: PLC0415  lazy: Amaranth is slow to import

    if args.chip is not None:
        from ..flows.verify import check_simulable  # noqa: PLC0415  lazy: the flows load the benches (2 s, ml_dtypes); only a chip's RTL needs the check

        chip = chip_from_args(args)
        check_simulable(chip, "rtl")
        with staged_folder(args.out, what=f"systolab rtl --chip {chip.name}") as stage:
            staged = generate_chip_verilog(chip, stage)
    else:
        unit = args.unit or "core"
        config = design_from_args(args)
        with staged_folder(args.out, what=f"systolab rtl --unit {unit}") as stage:
            staged = generate_verilog(config, stage, unit=unit)
    final = Path(args.out).absolute()
    payload = {**staged.to_dict(), "verilog": str(final / staged.verilog.name),
               "manifest": str(final / staged.manifest.name)}
    emit(args, payload, lambda p: (
        f"wrote {p['verilog']} (top {p['top']}) and {p['manifest']}\n"
        + "\n".join(f"  {q['direction']:6} {q['width']:6}  {q['name']}" for q in p["ports"])))
    return 0
