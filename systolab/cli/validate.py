"""``systolab validate``: the cycle model against the RTL's counters over a shape grid."""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from .common import emit, int_in, seed_int

RECORDS = ("the compare report cites the validation record: your copy (in $SYSTOLAB_DATA_DIR, else "
           "$XDG_DATA_HOME/systolab or ~/.local/share/systolab) when it exists and is newer than the one shipped "
           "in models/data/validation.yaml, else the shipped one")


def add_parser(sub, parents) -> None:
    p = sub.add_parser("validate", parents=[parents.json],
                       help="the cycle model against the RTL's counters over a shape grid",
                       description="The cycle model against the RTL's counters over a shape grid. " + RECORDS + ".")
    p.add_argument("--chip", action="store_true",
                   help="the chip cycle model against the chip RTL (4 chips: 1, 2 and 4 cores, both dataflows, "
                        "1 to 4 DMA channels) instead of the core's")
    p.add_argument("--dram", choices=("hdl", "python"), default=None,
                   help="with --chip: the DRAM model inside the simulated design (hdl, the default: fast) or the "
                        "Python model driving every beat (python: slow, the independent check)")
    p.add_argument("--shapes", type=int_in(1, 10_000), default=50,
                   help="shapes (GEMMs) per configuration (default 50; 6 core configurations or 4 chips)")
    p.add_argument("--mac-stages", type=int_in(2, 7), dest="mac_stages", default=None,
                   help="validate the core's floating-point configurations (bf16 and fp8_e4m3, both dataflows) "
                        "with a MAC of this many pipeline stages (2..7) instead of the six integer ones")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random shapes and values (default 0)")
    p.add_argument("--sim", default="auto", help="verilator, icarus, amaranth or auto (default)")
    p.add_argument("--jobs", type=int_in(1, 256), default=2, help="configurations simulated in parallel (default 2)")
    p.add_argument("--record", action="store_true",
                   help="store the run's summary in your validation record (validation.yaml in $SYSTOLAB_DATA_DIR, "
                        "else $XDG_DATA_HOME/systolab or ~/.local/share/systolab), where the compare report cites it")
    p.add_argument("--write", action="store_true",
                   help="store the run's summary in the repository's models/data/validation.yaml instead (only from "
                        "a git checkout of systolab)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..flows.validate import default_cases, default_chip_cases, pipelined_cases, record, validate, validate_chip  # noqa: PLC0415  lazy: imported when the command runs, so that `systolab --help` loads no simulator or model
    from ..models.records import VALIDATION_RECORD, write_target  # noqa: PLC0415  lazy: as above
    from ..sim.runner import resolve_simulator  # noqa: PLC0415  lazy: as above

    if args.write:
        write_target(VALIDATION_RECORD, write=True)     # outside a checkout, fail before the simulations
    if args.dram is not None and not args.chip:
        raise UserError("dram: applies to --chip (the core's bench has its own memory model)", parameter="dram")
    if args.mac_stages is not None and args.chip:
        raise UserError("mac_stages: applies to the core's validation, not --chip", parameter="mac_stages")
    sim = resolve_simulator(args.sim)
    if args.chip:
        report = validate_chip(default_chip_cases(shapes_per_case=args.shapes, seed=args.seed), simulator=sim,
                               seed=args.seed, jobs=args.jobs, dram=args.dram or "hdl")
    else:
        cases = (default_cases(shapes_per_case=args.shapes, seed=args.seed) if args.mac_stages is None else
                 pipelined_cases(args.mac_stages, shapes_per_case=args.shapes, seed=args.seed))
        report = validate(cases, simulator=sim, seed=args.seed, jobs=args.jobs)

    def human(p: dict) -> str:
        lines = [f"{p['shapes']} GEMMs on {p['configurations']} configurations ({p['simulator']}): "
                 f"{p['exact_cycles']} cycle-exact, max |error| {p['max_abs_cycle_error']} cycles "
                 f"({p['max_rel_cycle_error']:.2%}); other counters max |error| "
                 + ", ".join(f"{k} {v}" for k, v in p["max_abs_error"].items() if k != "cycles")]
        for label, c in p["cases"].items():
            lines.append(f"  {label:42} {c['exact']}/{c['shapes']} exact, max |error| {c['max_abs_cycle_error']}")
        return "\n".join(lines)

    if args.record or args.write:
        command = " ".join(["systolab validate", *(["--chip"] if args.chip else []),
                            *([f"--mac-stages {args.mac_stages}"] if args.mac_stages else []), f"--shapes {args.shapes}",
                            f"--seed {args.seed}", f"--sim {sim}"])
        written = record(report.to_dict(), "chip" if args.chip else "core", command=command, write=args.write)
        print(f"validate: recorded in {written}", file=sys.stderr)
    emit(args, report.to_dict(), human)
    return 0 if report.all_passed else 1
