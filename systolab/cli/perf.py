"""``systolab perf``: the cycle model's time, utilisation and bound of a GEMM or workload,
on a lone core (or cores streaming from DRAM) or on a chip (``--chip``)."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..models.chip.choose import descriptor_perf
from ..models.chip.workload import chip_workload_perf
from ..models.core.perf import workload_perf
from .common import chip_from_args, design_from_args, emit, gemms_from_args, int_in, lines_of, memory_from_args, naming_workload, real_in
from .units import human_bytes, human_seconds


def add_parser(sub, parents) -> None:
    p = sub.add_parser("perf", parents=[parents.design, parents.workload, parents.memory, parents.chip_run,
                                        parents.json],
                       help="modelled cycles, time, utilisation and bound of a GEMM or workload")
    p.add_argument("--cores", type=int_in(1, 1_000_000),
                   help="identical cores sharing the memory bandwidth, each streaming from DRAM (default 1; "
                        "not with --chip)")
    p.add_argument("--clock-mhz", type=real_in(0.0, 100_000.0), dest="clock_mhz",
                   help="clock in MHz (default 1000; not with --chip)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.chip is not None:
        return _chip(args)
    for flag in ("count", "block", "grid", "order", "search"):
        if getattr(args, flag) is not None:
            raise UserError(f"{flag}: applies to --chip", parameter=flag)
    config = design_from_args(args)
    gemms, workload = gemms_from_args(args, config.dtype)
    latency, bytes_per_cycle = memory_from_args(args)
    cores = args.cores or 1
    clock_mhz = args.clock_mhz or 1000.0
    clock = clock_mhz * 1e6
    with naming_workload(workload):
        perf = workload_perf(config, gemms, cores=cores, clock_hz=clock, dram_bytes_per_s=bytes_per_cycle * clock,
                             dram_latency_ns=latency / clock * 1e9)
    payload = {"design": config.to_dict(), "cores": cores, "clock_mhz": clock_mhz,
               "bytes_per_cycle": bytes_per_cycle, "latency_cycles": latency, **perf.to_dict(),
               "workload": workload.to_dict() if workload is not None else None,
               "units_per_second": perf.units_per_second(workload.units_per_run) if workload is not None else None,
               "unit": workload.unit if workload is not None else None,
               "model": "models/core/perf.py (cycle model of the core's schedule; error vs RTL: systolab validate)"}

    def human(p: dict) -> str:
        return lines_of(f"{config.name} x {p['cores']} core(s) at {p['clock_mhz']:g} MHz, {p['bytes_per_cycle']:g} "
                        f"B/cycle: {p['cycles']:,} cycles, {human_seconds(p['seconds'])}, utilisation "
                        f"{p['utilization']:.3f}, {p['bound']}-bound", p["gemms"],
                        lambda g: f"  {g['name']:20} {g['M']}x{g['N']}x{g['K']} x{g['count']}: {g['cycles']:15,} cycles "
                                  f"util {g['utilization']:.3f} {g['bound']:8} split {g['split']}", limit=40)

    emit(args, payload, human)
    return 0


def _chip(args: argparse.Namespace) -> int:
    chip = chip_from_args(args)
    gemms, workload = gemms_from_args(args, chip.core.dtype)
    base = {"chip": chip.to_dict(), "model": "models/chip/perf.py (cycle model of the chip RTL; error vs RTL: "
                                             "systolab validate --chip)"}
    if workload is None:
        g = gemms[0]
        count = args.count or 1
        d = descriptor_perf(chip, g.M, g.N, g.K, count, block=args.block, grid=args.grid, order=args.order,
                            search=args.search or "fast")
        payload = {**base, **d.to_dict()}

        def human(q: dict) -> str:
            moved = q["dram_bytes_read"] + q["dram_bytes_written"]
            return "\n".join([
                f"{chip.name}: {'x'.join(map(str, q['gemm']))} x{q['count']} as {q['blocking_text']}"
                f"{' (searched, ' + str(q['candidates']) + ' candidates)' if q['searched'] else ''}",
                f"  {q['cycles']:,} cycles ({human_seconds(q['seconds'])}), {q['steps']:,} steps, utilisation "
                f"{q['utilization']:.3f}, {q['bound']}-bound",
                f"  DRAM {human_bytes(q['dram_bytes_read'])} read + {human_bytes(q['dram_bytes_written'])} written = "
                f"{human_bytes(moved)} "
                f"({q['dram_bandwidth_utilization']:.1%} of its bandwidth); the blocks must move "
                f"{human_bytes(q['blocking_traffic_bytes'])}, any schedule at least "
                f"{human_bytes(q['dram_bytes_lower_bound'])}",
                f"  SRAM {human_bytes(q['sram_bytes_read'])} read, {human_bytes(q['sram_bytes_written'])} written; "
                f"busiest core {max(q['per_core_busy']):,} busy cycles"])
    else:
        for flag in ("count", "block", "grid", "order"):
            if getattr(args, flag) is not None:
                raise UserError(f"{flag}: applies to --gemm (a workload's GEMMs are mapped by the search)",
                                parameter=flag)
        with naming_workload(workload):
            perf = chip_workload_perf(chip, workload, args.search or "fast")     # its resident data must fit
        payload = {**base, **perf.to_dict(), "workload": workload.to_dict(),
                   "units_per_second": perf.units_per_second(workload.units_per_run), "unit": workload.unit,
                   "dram_bandwidth_utilization": perf.dram_bandwidth_utilization(chip.dram_bytes_per_cycle)}

        def human(q: dict) -> str:
            return lines_of(f"{chip.name}: {workload.name}, {q['cycles']:,} cycles ({human_seconds(q['seconds'])}), "
                            f"utilisation {q['utilization']:.3f}, DRAM bandwidth used "
                            f"{q['dram_bandwidth_utilization']:.3f}, {q['bound']}-bound", q["gemms"],
                            lambda g: f"  {g['name']:14} {g['M']}x{g['N']}x{g['K']} x{g['count']}: {g['blocking']:34} "
                                      f"util {g['utilization']:.3f} DRAM {g['dram_bandwidth_utilization']:.3f} "
                                      f"{g['bound']}", limit=40)

    emit(args, payload, human)
    return 0
