"""The TCO model's figures and speed.

1. ``fleets``: what $7B buys of each of the compare report's GPUs and of two custom chips
   (sl-cn-n7-lp5x, sl-n4-os32: manufacturing cost, NRE of their node, TDP; on an OAM module
   with in-package memory, else on a PCIe card), all in (servers,
   network, owned facility, lifetime energy and running costs), with and without a 100 MW
   cap on facility power. Devices serve 60 % of the time at 60 % of TDP and idle at 15 %
   of TDP (placeholders until the power model lands), in replicas of 8.
2. ``speed``: one vectorised ``per_device_tco`` + ``deploy`` over 10,000 draws of every
   figure the H100's TCO reads (triangular on each figure's low/value/high), best of 5.

Usage: ``.venv/bin/python benchmarks/tco.py [fleets|speed]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from systolab.models.chip.config import get_chip
from systolab.models.cost import chip_unit_cost, cost_inputs, deploy, gpu_per_device_tco, per_device_tco, tco_figures
from systolab.models.gpu.specs import get_gpu
from systolab.models.silicon.energy import chip_power
from systolab.models.silicon.memory import get_memory_kind

BUDGET_USD = 7e9
GPUS = ("h100-sxm", "h200-sxm", "h20", "a100-sxm4-80gb", "b200")
CHIPS = ("sl-cn-n7-lp5x", "sl-n4-os32")


def _row(name: str, per_device, fixed_usd: float) -> str:
    free = deploy(budget_usd=BUDGET_USD, per_device=per_device, fixed_usd=fixed_usd, devices_per_replica=8)
    cap = deploy(budget_usd=BUDGET_USD, per_device=per_device, fixed_usd=fixed_usd, devices_per_replica=8,
                 power_cap_MW=100.0)
    b = per_device
    return (f"| {name} | {b.system} | {b.total_usd:,.0f} | {b.accelerator_usd / b.total_usd:.0%} | {free.units:,} | "
            f"{free.nre_per_unit_usd:,.0f} | {free.facility_power_MW:,.0f} | {cap.units:,} ({cap.limited_by}) |")


def fleets() -> None:
    print("| option | system | TCO per device, USD | accelerator share | units for $7B | NRE per unit, USD "
          "| facility MW | units under 100 MW |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for gid in GPUS:
        tdp = get_gpu(gid).tdp_W
        print(_row(gid, gpu_per_device_tco(gid, avg_power_W=0.6 * tdp, idle_power_W=0.15 * tdp, utilization=0.6), 0.0))
    for name in CHIPS:
        chip = get_chip(name)
        tdp, node = chip_power(chip).tdp_W, cost_inputs().nodes[chip.node]
        system = "custom-oam-8" if get_memory_kind(chip.dram.kind).in_package else "custom-pcie-8"   # HBM: a module
        b = per_device_tco(system=system, accelerator_usd=chip_unit_cost(chip).manufacturing_usd, peak_power_W=tdp,
                           avg_power_W=0.6 * tdp, idle_power_W=0.15 * tdp, utilization=0.6)
        print(_row(f"{name} ({tdp:,.0f} W)", b, node["design_nre_usd"].value + node["mask_set_usd"].value))


def speed(n: int = 10_000) -> None:
    rng = np.random.default_rng(0)
    figures = {k: rng.triangular(f["low"], f["value"], f["high"], n) if f["low"] < f["high"] else f["value"]
               for k, f in tco_figures("hgx-h100-8gpu").items()}
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        b = gpu_per_device_tco("h100-sxm", accelerator_usd=rng.uniform(25e3, 40e3, n), avg_power_W=420.0,
                               idle_power_W=100.0, utilization=0.6, figures=figures)
        d = deploy(budget_usd=BUDGET_USD, per_device=b, devices_per_replica=8, power_cap_MW=150.0)
        best = min(best, time.perf_counter() - t)
    p5, p50, p95 = np.percentile(b.total_usd, [5, 50, 95])
    print(f"{n:,} draws of {len(figures)} figures: per_device_tco + deploy best of 5 {best * 1e3:.1f} ms; "
          f"H100 TCO per device p5/p50/p95 ${p5:,.0f} / ${p50:,.0f} / ${p95:,.0f}; "
          f"limited by {d.to_dict()['limited_by']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("fleets", "speed"), default="fleets")
    {"fleets": fleets, "speed": speed}[parser.parse_args().what]()
