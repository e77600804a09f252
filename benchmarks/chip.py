"""The chip at scale and on the RTL: what the issue's "done when" asks to measure.

1. ``scale``: the default chip (or ``--chip``) on Llama-3-8B prefill of 2,048 tokens and
   decode at batch 1, every GEMM with the exhaustive search's blocking, timed by the chip
   cycle model: MAC utilisation, share of DRAM bandwidth, die and power beside the old
   default's; and the search's speed (blockings evaluated per second).
2. ``traffic``: large GEMMs on sl-small's RTL (Verilator) with the search's blocking: DRAM
   bytes measured by the chip's counters over the traffic the block sizes require
   (A once per N-block, B once per M-block, less what stays on chip between steps, C
   once) and over the lower bound any schedule
   meets (Hong-Kung), and the model's cycles beside the RTL's.

Usage: ``.venv/bin/python benchmarks/chip.py [scale|traffic|all] [--chip NAME]``
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def scale(chip_name: str | None) -> None:
    import systolab as sl
    from systolab.models.chip.blocking import candidates
    from systolab.models.chip.perf import chip_gemm_cycles

    warnings.simplefilter("ignore")
    chip, old = sl.get_chip(chip_name), sl.get_chip("sl-n4-os64")
    print(f"{chip.name}: {chip.area().die_mm2:.1f} mm², {chip.power_W().tdp_W:.0f} W, "
          f"{chip.peak_tops:,.0f} int8 TOPS; {old.name}: {old.area().die_mm2:.1f} mm², "
          f"{old.power_W().tdp_W:.0f} W, {old.peak_tops:,.0f} TOPS")
    for name, kw in (("llama3-8b-prefill", dict(seq_len=2048)), ("llama3-8b-decode", dict(batch=1))):
        wl = sl.get_workload(name, dtype="int8", **kw)
        for c in (chip, old):
            t = time.perf_counter()
            ev = c.evaluate(wl)
            print(f"  {name:18} on {c.name:11}: MAC utilisation {ev.utilization:6.1%}, DRAM bandwidth used "
                  f"{ev.dram_bandwidth_utilization:6.1%}, {ev.bound}-bound, {ev.throughput:,.0f} tokens/s "
                  f"({time.perf_counter() - t:.1f} s with the search)")
    M, N, K = 2048, 4096, 4096
    cands = candidates(chip, M, N, K)
    t = time.perf_counter()
    for b in cands:
        chip_gemm_cycles(chip, M, N, K, b)
    dt = time.perf_counter() - t
    print(f"  search speed: {len(cands)} blockings of {M}x{N}x{K} in {dt:.2f} s = {len(cands) / dt:,.0f} per second")


def traffic() -> None:
    import systolab as sl
    from systolab.models.chip.blocking import blocking_traffic, dram_traffic_lower_bound
    from systolab.models.chip.perf import chip_gemm_perf
    from systolab.sim.chip_bench import random_products
    from systolab.sim.golden import golden_matmul
    from systolab.sim.runner import run_chip_hdl

    chip = sl.get_chip("sl-small")
    shapes = [(128, 128, 256), (96, 160, 512), (256, 64, 384)]
    rng = np.random.default_rng(0)
    runs = [(random_products(chip, M, N, K, 1, rng), sl.map_gemm(chip, M, N, K, search="exhaustive").blocking)
            for M, N, K in shapes]
    t = time.perf_counter()
    outs = run_chip_hdl(chip, runs, "verilator")
    print(f"{chip.name} on Verilator ({time.perf_counter() - t:.0f} s, build included):")
    for (M, N, K), (products, blk), out in zip(shapes, runs, outs):
        (a, b), = products
        ok = np.array_equal(np.array(out.c[0], dtype=object), golden_matmul(a, b, chip.core, k_block=blk.kb).astype(object))
        moved = out.counters["dram_bytes_read"] + out.counters["dram_bytes_written"]
        need, floor = blocking_traffic(chip, M, N, K, blk), dram_traffic_lower_bound(chip, M, N, K)
        model = chip_gemm_perf(chip, M, N, K, blk).cycles
        print(f"  {M}x{N}x{K} as {blk}: {'bit-exact' if ok else 'WRONG'}, {out.counters['cycles']} cycles "
              f"(model {model}), DRAM {moved:,} B = {moved / need:.3f} x the blocks' traffic ({need:,} B), "
              f"{moved / floor:.3f} x the lower bound ({floor:,} B)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", nargs="?", default="all", choices=("scale", "traffic", "all"))
    p.add_argument("--chip", default=None, help="chip for the scale figures (default: the default chip)")
    args = p.parse_args()
    if args.what in ("scale", "all"):
        scale(args.chip)
    if args.what in ("traffic", "all"):
        traffic()


if __name__ == "__main__":
    main()
