"""Simulation speed: Verilog generation time and simulated cycles per second.

For each array size and each available simulator, runs a plan of P products of shape
N x N x 4N (output-stationary int8, no stalls) once cold (simulator build included, fresh
cache), then warm with P and with 4P products. The cycles per second are the marginal
rate between the two warm runs, so the fixed cost of starting a simulation (process
start, cocotb start-up) is reported separately and does not hide the simulator's speed.
Prints a table; record it in benchmarks/README.md with the machine and date.

With ``--chip NAME`` it times the chip instead (Verilator): one GEMM (``--gemm``, the
mapper's blocking) as plans of ``--counts`` descriptors (random operands) for each
harness: the DRAM in the design (``hdl``) or the Python model driving every beat
(``python``), each at a Verilator optimisation level (``sim/runner.py``'s
``VERILATOR_OPT``), and for ``hdl`` optionally where the clock toggles: ``inside`` the
design (the default) or from cocotb's C++ clock (``gpi``). ``build_s``: Verilog generation and simulator build in an empty cache;
``cycles/s``: marginal rate between the two plans (and per CPU second of the simulator
process, steadier on a shared machine); ``fixed_s``: the rest of a run.

    python benchmarks/sim_speed.py [--sizes 4 8 16] [--sims verilator icarus amaranth]
    python benchmarks/sim_speed.py --chip sl-small [--harness hdl:fast hdl:fast:gpi hdl:O0 python:O0] [--gemm 128x128x256]

Besides ``VERILATOR_OPT``'s levels, ``--harness`` takes the trial levels of
:data:`TRIAL_OPT` (measured here, not used by the runner).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time

import numpy as np

_FAST_ARGS = ["--x-assign", "fast", "--x-initial", "fast"]
#: Optimisation levels tried on the chip (make flags, Verilator arguments), beside the
#: runner's (``sim/runner.py: VERILATOR_OPT``); each builds in a folder of its own name.
TRIAL_OPT = {
    "O3": ("OPT_FAST=-O3 OPT_SLOW=-O0 OPT_GLOBAL=-O0", _FAST_ARGS),
    "native": (r"OPT_FAST=-O2\ -march=native OPT_SLOW=-O0 OPT_GLOBAL=-O0", _FAST_ARGS),
    "O3native": (r"OPT_FAST=-O3\ -march=native OPT_SLOW=-O0 OPT_GLOBAL=-O0", _FAST_ARGS),
    "O1": ("OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O0", _FAST_ARGS),
    "rt2": ("OPT_FAST=-O2 OPT_SLOW=-O0 OPT_GLOBAL=-O2", _FAST_ARGS),
    "rt2native": (r"OPT_FAST=-O2\ -march=native OPT_SLOW=-O0 OPT_GLOBAL=-O2\ -march=native", _FAST_ARGS),
    "v3": ("OPT_FAST=-O2 OPT_SLOW=-O0 OPT_GLOBAL=-O2", [*_FAST_ARGS, "-O3"]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--sims", nargs="+", default=None)
    ap.add_argument("--products", type=int, default=20)
    ap.add_argument("--chip", default=None, help="time this chip's RTL instead of the arrays")
    ap.add_argument("--harness", nargs="+", default=["hdl:fast", "hdl:O0", "python:O0"],
                    help="DRAM harness:Verilator optimisation level[:inside|gpi, the clock], for --chip")
    ap.add_argument("--gemm", default="128x128x256", help="MxNxK, for --chip")
    ap.add_argument("--counts", type=int, nargs=2, default=[1, 3], help="descriptors in the two plans, for --chip")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each plan (the least time kept), for --chip")
    ap.add_argument("--keep-cache", action="store_true",
                    help="use $SYSTOLAB_CACHE as it is (builds already there are not timed) instead of an empty one")
    args = ap.parse_args()
    if not args.keep_cache:
        os.environ["SYSTOLAB_CACHE"] = tempfile.mkdtemp(prefix="systolab-bench-")
    if args.chip:
        chip_speed(args.chip, args.harness, tuple(int(v) for v in args.gemm.split("x")), args.counts, args.repeats)
        return

    from systolab import AcceleratorConfig
    from systolab.hdl import generate_verilog
    from systolab.sim.amaranth_bench import run_plan_amaranth
    from systolab.sim.plan import Plan
    from systolab.sim.runner import available_simulators, run_plan_hdl
    from systolab.sim.stimulus import random_product

    sims = args.sims or available_simulators()
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"{'N':>3} {'simulator':10} {'verilog_s':>9} {'cold_s':>7} {'fixed_s':>7} {'cycles/s':>10}")
    for n in args.sizes:
        cfg = AcceleratorConfig(rows=n, cols=n, dataflow="os")
        t = time.perf_counter()
        generate_verilog(cfg, tempfile.mkdtemp())
        vgen = time.perf_counter() - t
        rng = np.random.default_rng(0)
        products = [random_product(rng, cfg, f"p{i}", m=n, n=n, k=4 * n) for i in range(4 * args.products)]
        small = Plan.build(cfg, products[: args.products], seed=0, stall_prob=0.0)
        large = Plan.build(cfg, products, seed=0, stall_prob=0.0)
        for sim in sims:
            def timed(plan, sim=sim):
                t = time.perf_counter()
                res = run_plan_amaranth(plan) if sim == "amaranth" else run_plan_hdl(plan, sim)[0]
                return time.perf_counter() - t, res.last_cycle[-1] + 1
            cold, _ = timed(small)
            t1, c1 = timed(small)
            t2, c2 = timed(large)
            rate = (c2 - c1) / max(t2 - t1, 1e-9)
            fixed = max(0.0, t1 - c1 / rate)
            print(f"{n:>3} {sim:10} {vgen:9.2f} {cold:7.2f} {fixed:7.2f} {rate:10.0f}", flush=True)


def _least(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    """(least wall time, least CPU time, cycles) of repeated runs of one plan."""
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def chip_speed(name: str, harnesses: list[str], gemm: tuple[int, int, int], counts: list[int],
               repeats: int = 1) -> None:
    import systolab as sl
    from systolab.sim.chip_bench import random_products
    from systolab.sim.chip_plan import ChipPlan
    from systolab.sim.runner import VERILATOR_OPT, run_chip_plan_hdl

    for level, flags in TRIAL_OPT.items():
        VERILATOR_OPT.setdefault(level, flags)
    chip = sl.get_chip(name)
    M, N, K = gemm
    blk = sl.map_gemm(chip, M, N, K, search="exhaustive").blocking
    rng = np.random.default_rng(0)
    runs = [(random_products(chip, M, N, K, 1, rng), blk) for _ in range(max(counts))]
    print(f"# {platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}; {name}, {M}x{N}x{K} as {blk}")
    print(f"{'harness':12} {'build_s':>8} {'fixed_s':>8} {'cycles/s':>10} {'per CPU s':>10}  cycles")
    for spec in harnesses:
        dram, opt, *clock = spec.split(":")
        inside = None if not clock else clock[0] == "inside"

        def timed(n, dram=dram, opt=opt, inside=inside):
            plan = ChipPlan.build(chip, runs[:n], dram=dram)
            t, cpu = time.perf_counter(), _children_cpu_s()
            outs = run_chip_plan_hdl(chip, plan, "verilator", opt=opt, clock_inside=inside)
            return time.perf_counter() - t, _children_cpu_s() - cpu, sum(o.counters["cycles"] for o in outs)

        cold, _, _ = timed(counts[0])
        # each plan `repeats` times, the least time kept: a run's fixed cost (process and
        # cocotb start-up) wanders by tenths of a second, as much as a few descriptors take
        (t1, cpu1, c1), (t2, cpu2, c2) = (_least([timed(n) for _ in range(repeats)]) for n in counts)
        rate, cpu_rate = (c2 - c1) / max(t2 - t1, 1e-9), (c2 - c1) / max(cpu2 - cpu1, 1e-9)
        fixed = max(0.0, t1 - c1 / rate)
        print(f"{spec:12} {cold - t1:8.1f} {fixed:8.1f} {rate:10.0f} {cpu_rate:10.0f}  {c1} / {c2} "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the simulator processes): on a
    shared machine a rate per CPU second is steadier than one per wall-clock second."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
