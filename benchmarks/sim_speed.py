"""Simulation speed: Verilog generation time and simulated cycles per second.

For each array size and each available simulator, runs a plan of P products of shape
N x N x 4N (output-stationary int8, no stalls) once cold (simulator build included, fresh
cache), then warm with P and with 4P products. The cycles per second are the marginal
rate between the two warm runs, so the fixed cost of starting a simulation (process
start, cocotb start-up) is reported separately and does not hide the simulator's speed.
Prints a table; record it in benchmarks/README.md with the machine and date.

    python benchmarks/sim_speed.py [--sizes 4 8 16] [--sims verilator icarus amaranth]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--sims", nargs="+", default=None)
    ap.add_argument("--products", type=int, default=20)
    args = ap.parse_args()
    os.environ["SYSTOLAB_CACHE"] = tempfile.mkdtemp(prefix="systolab-bench-")

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


if __name__ == "__main__":
    main()
