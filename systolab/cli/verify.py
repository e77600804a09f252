"""``systolab verify``: GEMMs through the RTL, checked bit-exactly against the golden model."""
from __future__ import annotations

import argparse

import numpy as np

from ..blocking import Blocking
from ..errors import UserError
from ..models.chip.choose import choose_blocking
from ..models.workloads.gemm import parse_gemm
from .common import chip_from_args, design_from_args, emit, int_in, memory_from_args, memory_given, real_in, seed_int


def add_parser(sub, parents) -> None:
    p = sub.add_parser("verify", parents=[parents.design, parents.memory, parents.chip_run, parents.json],
                       help="random and corner-case GEMMs through the RTL (core, array or chip), checked bit-exactly")
    p.add_argument("--gemm", metavar="MxNxK", help="one GEMM of this shape (random values)")
    p.add_argument("--gemms", type=int_in(0, 10_000), metavar="N",
                   help="random GEMMs (default 8), plus the corner cases")
    p.add_argument("--no-corners", action="store_true", help="skip the corner cases")
    p.add_argument("--seed", type=seed_int, default=1, help="seed for values and stalls (default 1)")
    p.add_argument("--sim", default="auto", help="verilator, icarus, amaranth or auto (default: verilator, else icarus)")
    p.add_argument("--stall-prob", type=real_in(0.0, 1.0, lo_open=False), default=0.2, dest="stall_prob",
                   help="chance of a gap/back-pressure per beat on every stream, in [0, 1) (default 0.2)")
    p.add_argument("--waves", action="store_true", help="write a waveform and report where")
    p.add_argument("--dram", choices=("hdl", "python"), default=None,
                   help="with --chip under cocotb: the DRAM model inside the simulated design (hdl, the default: "
                        "fast) or the Python model driving every beat (python: slow, the independent check)")
    p.add_argument("--unit", choices=("core", "array"),
                   help="core: whole GEMMs from memory through buffers and controller (default); "
                        "array: products that fit one pass of the bare systolic array (not with --chip)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = design_from_args(args)
    if args.stall_prob >= 1.0:
        raise UserError(f"stall-prob: must be < 1 (at 1 nothing ever moves), not {args.stall_prob:g}")
    gemm = parse_gemm(args.gemm) if args.gemm is not None else None
    if gemm is not None:            # one given GEMM: the campaign's flags do not apply
        for flag, given in (("gemms", args.gemms is not None), ("no-corners", args.no_corners)):
            if given:
                raise UserError(f"{flag}: applies to a random campaign, not to --gemm (one GEMM)", parameter=flag)
    args.gemms = 8 if args.gemms is None else args.gemms
    if args.chip is not None:
        return _chip(args, gemm)
    for flag in ("count", "block", "grid", "order", "search", "dram"):
        if getattr(args, flag) is not None:
            raise UserError(f"{flag}: applies to --chip", parameter=flag)
    if args.unit in (None, "core"):
        return _core(args, config, gemm)
    if memory_given(args):
        raise UserError("latency: --latency and --bytes-per-cycle describe the core's memory; the bare array "
                        "(--unit array) has none")
    return _array(args, config, gemm)


def _core(args, config, gemm) -> int:
    from ..flows.verify import verify_core  # noqa: PLC0415  lazy: the flows and the benches take 2 s to import (ml_dtypes); systolab --help must not
    from ..sim.core_bench import core_shapes  # noqa: PLC0415  lazy: as above

    if gemm is not None:
        shapes = [(gemm.M, gemm.N, gemm.K)]
    else:
        shapes = core_shapes(config, count=args.gemms, seed=args.seed, corners=not args.no_corners)
        if not shapes:
            raise UserError("gemms: nothing to run (0 random GEMMs and --no-corners)")
    latency, bytes_per_cycle = memory_from_args(args)
    report = verify_core(config, shapes, seed=args.seed, simulator=args.sim, latency=latency,
                         bytes_per_cycle=bytes_per_cycle, stall_prob=args.stall_prob, waves=args.waves)

    def human(p: dict) -> str:
        lines = [f"{config.name} core, {p['gemms']} GEMM(s) on {p['simulator']} (seed {p['seed']}): "
                 f"{'PASSED' if p['passed'] else 'FAILED'}, {p['mismatches']} mismatching elements"]
        for shape, cnt, util in zip(p["shapes"], p["counters"], p["utilization"]):
            lines.append(f"  {'x'.join(map(str, shape)):>12}  {cnt['cycles']:8} cycles, utilisation {util:.3f}, "
                         f"busy {cnt['busy_cycles']}, memory stalls {cnt['stall_cycles']}, {cnt['macs']} MACs, "
                         f"{cnt['bytes_read']} B read, {cnt['bytes_written']} B written")
        if p["waveform"]:
            lines.append(f"  waveform: {p['waveform']}")
        return "\n".join(lines + [f"  {m}" for m in p["messages"]])

    emit(args, report.to_dict(), human)
    return 0 if report.passed else 1


def _array(args, config, gemm) -> int:
    from ..flows.verify import verify_products  # noqa: PLC0415  lazy: the flows and the benches take 2 s to import (ml_dtypes); systolab --help must not
    from ..sim.stimulus import campaign, check_fits, random_product  # noqa: PLC0415  lazy: as above

    if gemm is not None:
        try:
            check_fits(config, gemm.M, gemm.N, gemm.K)
        except ValueError as exc:
            raise UserError(f"gemm: {exc}") from None
        rng = np.random.default_rng(args.seed)
        products = [random_product(rng, config, f"gemm_{gemm.M}x{gemm.N}x{gemm.K}", gemm.M, gemm.N, gemm.K)]
    else:
        products = campaign(config, count=args.gemms, seed=args.seed, corners=not args.no_corners)
        if not products:
            raise UserError("gemms: nothing to run (0 random products and --no-corners)")
    report = verify_products(config, products, seed=args.seed, simulator=args.sim, stall_prob=args.stall_prob,
                             waves=args.waves)
    payload = {"design": config.to_dict(), "unit": "array", **report.to_dict()}

    def human(p: dict) -> str:
        lines = [f"{config.name}: {p['gemms']} products on {p['simulator']} (seed {p['seed']}, "
                 f"{p['seconds']} s): {'PASSED' if p['passed'] else 'FAILED'}, {p['mismatches']} mismatching elements"]
        for label, shape, cyc in zip(p["labels"], p["shapes"], p["cycles"]):
            lines.append(f"  {label:16} {'x'.join(map(str, shape)):>10}  {cyc:6} cycles")
        if p["waveform"]:
            lines.append(f"  waveform: {p['waveform']}")
        lines += [f"  {m}" for m in p["messages"]]
        return "\n".join(lines)

    emit(args, payload, human)
    return 0 if report.passed else 1


def _chip(args, gemm) -> int:
    from ..flows.verify import check_simulable, verify_chip  # noqa: PLC0415  lazy: the flows and the benches take 2 s to import (ml_dtypes); systolab --help must not
    from ..sim.chip_bench import chip_campaign  # noqa: PLC0415  lazy: as above

    chip = chip_from_args(args)
    check_simulable(chip, "verify")
    if args.waves:
        raise UserError("waves: the chip bench writes no waveform from the command line; call "
                        "systolab.sim.chip_bench.run_chip_gemm(..., vcd=PATH) for one descriptor", parameter="waves")
    if gemm is not None:
        count = args.count or 1
        blocking, _ = choose_blocking(chip, gemm.M, gemm.N, gemm.K, count, block=args.block, grid=args.grid,
                                      order=args.order, search=args.search or "fast")
        cases = [(gemm.M, gemm.N, gemm.K, count, blocking)]
    else:
        for flag in ("count", "block", "grid", "order", "search"):
            if getattr(args, flag) is not None:
                raise UserError(f"{flag}: applies to --gemm (random GEMMs get random blockings)", parameter=flag)
        cases = chip_campaign(chip, count=args.gemms, seed=args.seed, corners=not args.no_corners)
        if not cases:
            raise UserError("gemms: nothing to run (0 random GEMMs and --no-corners)", parameter="gemms")
    report = verify_chip(chip, cases, seed=args.seed, simulator=args.sim, stall_prob=args.stall_prob,
                         dram=args.dram or "hdl")

    def human(p: dict) -> str:
        lines = [f"{chip.name}: {p['gemms']} GEMM(s) on {p['simulator']} (seed {p['seed']}, stalls "
                 f"{p['stall_prob']:g}, {p['seconds']} s): {'PASSED' if p['passed'] else 'FAILED'}, "
                 f"{p['mismatches']} mismatching elements"]
        for shape, n, blk, cnt, model in zip(p["shapes"], p["counts"], p["blockings"], p["counters"],
                                              p["model_cycles"]):
            lines.append(f"  {'x'.join(map(str, shape)):>12} x{n} {_blocking_text(blk):30} {cnt['cycles']:8} cycles "
                         f"(model {model} without stalls), DRAM {cnt['dram_bytes_read']} B read "
                         f"{cnt['dram_bytes_written']} B written, SRAM {cnt['sram_bytes_read']} B read "
                         f"{cnt['sram_bytes_written']} B written")
        return "\n".join(lines + [f"  {m}" for m in p["messages"]])

    emit(args, report.to_dict(), human)
    return 0 if report.passed else 1


def _blocking_text(b: dict) -> str:
    return str(Blocking(**b))
