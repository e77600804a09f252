"""``systolab validate``: the cycle model against the RTL's counters over a shape grid."""
from __future__ import annotations

import argparse
import sys

from .common import emit, int_in, seed_int


def add_parser(sub, parents) -> None:
    p = sub.add_parser("validate", parents=[parents.json],
                       help="the cycle model against the RTL's counters over a shape grid")
    p.add_argument("--chip", action="store_true",
                   help="the chip cycle model against the chip RTL (4 chips: 1, 2 and 4 cores, both dataflows, "
                        "1 to 4 DMA channels) instead of the core's")
    p.add_argument("--shapes", type=int_in(1, 10_000), default=50,
                   help="shapes (GEMMs) per configuration (default 50; 6 core configurations or 4 chips)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random shapes and values (default 0)")
    p.add_argument("--sim", default="auto", help="verilator, icarus, amaranth or auto (default)")
    p.add_argument("--jobs", type=int_in(1, 256), default=2, help="configurations simulated in parallel (default 2)")
    p.add_argument("--record", action="store_true",
                   help="store the run's summary in models/data/validation.yaml, where the compare report cites it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # why: the flows and the benches take 2 s to import (ml_dtypes); systolab --help must not
    from ..flows.validate import default_cases, default_chip_cases, record, record_file, validate, validate_chip
    from ..sim.runner import resolve_simulator

    sim = resolve_simulator(args.sim)
    if args.chip:
        report = validate_chip(default_chip_cases(shapes_per_case=args.shapes, seed=args.seed), simulator=sim,
                               seed=args.seed, jobs=args.jobs)
    else:
        report = validate(default_cases(shapes_per_case=args.shapes, seed=args.seed), simulator=sim, seed=args.seed,
                          jobs=args.jobs)

    def human(p: dict) -> str:
        lines = [f"{p['shapes']} GEMMs on {p['configurations']} configurations ({p['simulator']}): "
                 f"{p['exact_cycles']} cycle-exact, max |error| {p['max_abs_cycle_error']} cycles "
                 f"({p['max_rel_cycle_error']:.2%}); other counters max |error| "
                 + ", ".join(f"{k} {v}" for k, v in p["max_abs_error"].items() if k != "cycles")]
        for label, c in p["cases"].items():
            lines.append(f"  {label:42} {c['exact']}/{c['shapes']} exact, max |error| {c['max_abs_cycle_error']}")
        return "\n".join(lines)

    if args.record:
        command = " ".join(["systolab validate", *(["--chip"] if args.chip else []), f"--shapes {args.shapes}",
                            f"--seed {args.seed}", f"--sim {sim}"])
        record(report.to_dict(), "chip" if args.chip else "core", command=command)
        print(f"validate: recorded in {record_file()}", file=sys.stderr)
    emit(args, report.to_dict(), human)
    return 0 if report.all_passed else 1
