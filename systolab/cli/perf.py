"""``systolab perf``: the cycle model's time, utilisation and bound of a GEMM or workload."""
from __future__ import annotations

import argparse

from .common import design_from_args, emit, gemms_from_args, int_in, memory_from_args, real_in


def add_parser(sub, parents) -> None:
    p = sub.add_parser("perf", parents=[parents.design, parents.workload, parents.memory, parents.json],
                       help="modelled cycles, time, utilisation and bound of a GEMM or workload")
    p.add_argument("--cores", type=int_in(1, 1_000_000), default=1,
                   help="identical cores sharing the memory bandwidth (default 1)")
    p.add_argument("--clock-mhz", type=real_in(0.0, 100_000.0), default=1000.0, dest="clock_mhz",
                   help="clock in MHz (default 1000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.perf import workload_perf

    config = design_from_args(args)
    gemms, workload = gemms_from_args(args, config.dtype)
    latency, bytes_per_cycle = memory_from_args(args)
    clock = args.clock_mhz * 1e6
    perf = workload_perf(config, gemms, cores=args.cores, clock_hz=clock, dram_bytes_per_s=bytes_per_cycle * clock,
                         dram_latency_ns=latency / clock * 1e9)
    payload = {"design": config.to_dict(), "cores": args.cores, "clock_mhz": args.clock_mhz,
               "bytes_per_cycle": bytes_per_cycle, "latency_cycles": latency, **perf.to_dict(),
               "workload": workload.to_dict() if workload is not None else None,
               "units_per_second": workload.units_per_run / perf.seconds if workload is not None else None,
               "model": "models/perf.py (cycle model of the core's schedule; error vs RTL: systolab validate)"}
    if workload is not None:
        payload[f"{workload.unit}s_per_second"] = payload["units_per_second"]

    def human(p: dict) -> str:
        lines = [f"{config.name} x {p['cores']} core(s) at {p['clock_mhz']:g} MHz, {p['bytes_per_cycle']:g} B/cycle: "
                 f"{p['cycles']} cycles, {p['seconds'] * 1e6:.1f} us, utilisation {p['utilization']:.3f}, "
                 f"{p['bound']}-bound"]
        for g in p["gemms"][:40]:
            lines.append(f"  {g['name']:20} {g['M']}x{g['N']}x{g['K']} x{g['count']}: {g['cycles']:12} cycles "
                         f"util {g['utilization']:.3f} {g['bound']:8} split {g['split']}")
        return "\n".join(lines)

    emit(args, payload, human)
    return 0
