"""The mapper (``models/chip/mapper.py``): quality of the fast search against the exhaustive one,
traffic against the lower bound, speed, and how decode scales with cores.

1. ``quality``: every distinct GEMM of the built-in workloads at several batch sizes and
   sequence lengths, plus random shapes (200 or more in all), on several chips: the fast
   search's cycles over the fewest any mapping takes (worst and count above 2 %), whether
   it picks the exhaustive search's mapping, the screen's rank error (where the exact
   optimum sits in its ranking), and, on memory-bound GEMMs, DRAM bytes over the lower
   bound (in bytes, and in the DMA's beats). On a chip whose exact model steps through
   the schedule (the default's last chip: one HBM stack), GEMMs over ``--max-stepped-macs``
   are left out: its exhaustive reference would take hours.
2. ``speed``: exact evaluations per second, vectorised over a GEMM's mappings and one by
   one, cold and with the core's sub-GEMMs known, on one GEMM and over the quality suite;
   the time to map a whole Llama-3-70B prefill, cold caches.
3. ``scaling``: batch-16 decode with 4,096-token contexts on the default chip with 64 ...
   1,024 cores (same slice per core): time per step and DRAM bandwidth used.

Usage: ``.venv/bin/python benchmarks/mapper.py [quality|speed|scaling|all] [--chips A,B,C]``
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np

SUITE_WORKLOADS = [
    ("llama3-8b-prefill", [dict(seq_len=s) for s in (512, 2048, 8192)]),
    ("llama3-8b-decode", [dict(batch=b, seq_len=s) for b in (1, 16, 64) for s in (2048, 4096)]),
    ("llama3-70b-prefill", [dict(seq_len=2048)]),
    ("llama3-70b-decode", [dict(batch=b) for b in (1, 16)]),
    ("mixtral-8x7b-prefill", [dict(seq_len=2048)]),
    ("mixtral-8x7b-decode", [dict(batch=8)]),
    ("bert-base", [dict(batch=8)]),
    ("dlrm", [dict(batch=b) for b in (64, 2048)]),
]


def suite(random_shapes: int = 200, seed: int = 0) -> list[tuple[int, int, int, int]]:
    """(M, N, K, products) of the workloads' GEMMs, then random shapes, 200 or more in all
    (the workloads' GEMMs are the first ``len(workload_gemms())``)."""

    shapes = workload_gemms()
    rng = np.random.default_rng(seed)
    while len(shapes) < random_shapes:
        M, N, K = (int(v) for v in np.exp(rng.uniform(0, np.log(8192), 3)).round().clip(1))
        shapes.append((M, N, K, 1))
    return shapes


def workload_gemms() -> list[tuple[int, int, int, int]]:
    """The distinct (M, N, K, products) of the suite's workloads."""
    import systolab as sl

    shapes: list[tuple[int, int, int, int]] = []
    for name, kws in SUITE_WORKLOADS:
        for kw in kws:
            for g in sl.get_workload(name, dtype="int8", **kw).gemms:
                s = (g.M, g.N, g.K, g.parallel)
                if s not in shapes:
                    shapes.append(s)
    return shapes


def get(spec: str):
    """A chip by name, or derived from one: ``sl-n4-os32+dram_stacks=1``."""
    import systolab as sl

    name, *changes = spec.split("+")
    chip = sl.get_chip(name)
    if changes:
        chip = chip.derive(**{k: float(v) if "." in v else int(v) for k, v in (c.split("=") for c in changes)})
    return chip


def quality(chip_names: list[str], max_stepped_macs: int = 1 << 31) -> None:
    from systolab.models.chip.blocking import candidates
    from systolab.models.chip.mapper import map_gemm, screen_cycles
    from systolab.models.chip.perf import block_model_applies, chip_dram_bytes_read, chip_gemm_cycles

    shapes = suite()
    n_work = len(workload_gemms())
    print(f"suite: {len(shapes)} GEMMs ({n_work} from the workloads, then random ones)")
    for name in chip_names:
        chip = get(name)
        t = time.perf_counter()
        gaps, ex_gaps, ranks, ratios, dma_ratios, timed, over = [], [], [], [], [], [], []
        differ = measured = 0
        stepped = not block_model_applies(chip)
        for x, (M, N, K, p) in enumerate(shapes):
            if stepped and M * N * K * p > max_stepped_macs:
                continue            # the exhaustive reference steps through every mapping: hours
            measured += 1
            ex = map_gemm(chip, M, N, K, p, "exhaustive")
            fa = map_gemm(chip, M, N, K, p, "fast")
            differ += fa.blocking != ex.blocking
            timed.append(fa.evaluated / fa.candidates)
            cands = candidates(chip, M, N, K, p)
            exact = [chip_gemm_cycles(chip, M, N, K, b, p) for b in cands]     # cached by the exhaustive search
            fastest = min(exact)
            gaps.append(fa.cycles / fastest - 1)
            ex_gaps.append(ex.cycles / fastest - 1)
            screened = screen_cycles(chip, M, N, K, p, cands)
            best = int(np.argmin(exact))
            ranks.append(int(np.sum(screened < screened[best])) / len(cands))
            if fa.bound == "memory":
                ratios.append((fa.dram_bytes / fa.dram_bytes_lower_bound, x < n_work))
                dma_ratios.append((fa.dram_bytes / fa.dram_bytes_lower_bound_dma, x < n_work))
                if dma_ratios[-1][0] > 1.1:         # what moving fewer bytes would cost
                    cap = 1.1 * fa.dram_bytes_lower_bound_dma - fa.perf.dram_bytes_written
                    within = [c for b, c in zip(cands, exact) if chip_dram_bytes_read(chip, M, N, K, b, p) <= cap]
                    cost = f"{min(within) / fa.cycles - 1:+.1%}" if within else "none in the space"
                    over.append(f"    {M}x{N}x{K} x{p}: {fa.blocking}, {dma_ratios[-1][0]:.3f}x the DMA-beat bound, "
                                f"{fa.perf.dram_bandwidth_utilization:.0%} of the DRAM bandwidth; the fastest "
                                f"mapping within 1.1x: {cost}")
        g = np.array(gaps)

        def spread(rs):
            r = [v for v, _ in rs] or [0.0]
            over = [work for v, work in rs if v > 1.1]
            return f"median {np.median(r):.3f}, max {max(r):.3f}, {len(over)} over 1.1 ({sum(over)} workload GEMMs)"

        how = "vectorised exact model, whole space" if block_model_applies(chip) else "pruned by the block model's bound"
        print(f"{chip.name:16} {measured} GEMMs; fast search ({how}, {np.mean(timed):.0%} of the space timed on average): "
              f"worst gap to the fewest cycles {g.max():.2%} (mean {g.mean():.3%}, {int(np.sum(g > 0.02))} over 2 %), "
              f"choice differs from the exhaustive search's on {differ} GEMMs; the exhaustive search's own gap, "
              f"from the traffic rule, {max(ex_gaps):.2%}; exact optimum in the screen's best {max(ranks):.0%} at worst; "
              f"memory-bound GEMMs {len(ratios)}: DRAM bytes / lower bound {spread(ratios)}; "
              f"/ lower bound in the DMA's beats {spread(dma_ratios)}  ({time.perf_counter() - t:.0f} s)")
        print("\n".join(over))


def speed(chip_name: str) -> None:
    import importlib

    import systolab as sl
    from systolab.models.chip.batch import block_model_cycles_many, chip_gemm_cycles_batch, core_table
    from systolab.models.chip.blocking import candidates
    from systolab.models.chip.mapper import clear_cache, map_gemms
    from systolab.models.chip.perf import chip_gemm_cycles
    from systolab.models.core.perf import MemorySystem, core_cycles_many

    chip_perf = importlib.import_module("systolab.models.chip.perf")     # the module, not models.chip_perf()
    blocking = importlib.import_module("systolab.models.chip.blocking")
    chip_batch = importlib.import_module("systolab.models.chip.batch")
    chip = get(chip_name)
    port = MemorySystem(chip.sram_latency_cycles, float(chip.core.beat_bytes))
    t = time.perf_counter()
    core_cycles_many(chip.core, [1], [1], [1], port)
    chip_gemm_cycles_batch(chip, 64, 64, 64, candidates(chip, 64, 64, 64))
    print(f"{chip.name}: the compiled core and block models ready in {time.perf_counter() - t:.2f} s (compiled once "
          f"per machine, then loaded from Numba's cache)")

    def cold(kept: bool = False):
        """Every cache emptied; the core tables kept in the build cache too, unless ``kept``
        (as a new process finds them after an earlier run)."""
        if not kept:
            os.environ["SYSTOLAB_CACHE"] = tempfile.mkdtemp(prefix="systolab-bench-")
        clear_cache()
        core_table.cache_clear()
        for f in (chip_perf._core_step, chip_perf._channel_beats, chip_perf._step_dma, chip_perf._core_max, chip_perf._stepped_cycles,
                  chip_perf._block_model_cycles, blocking._candidates):
            f.cache_clear()

    def rate(fn, items):
        t = time.perf_counter()
        n = sum(fn(*item) for item in items)
        return n / (time.perf_counter() - t)

    def batch(M, N, K, p, cands):
        chip_gemm_cycles_batch(chip, M, N, K, cands, p)
        return len(cands)

    def scalar(M, N, K, p, cands):
        for b in cands:
            chip_gemm_cycles(chip, M, N, K, b, p)
        return len(cands)

    # one GEMM's space, as before
    M, N, K = 2048, 4096, 4096
    one = [(M, N, K, 1, candidates(chip, M, N, K))]
    cold()
    b_cold = rate(batch, one)
    b_warm = max(rate(batch, one) for _ in range(20))       # the VM is shared: the best of 20
    cold()
    s_cold = rate(scalar, one)
    print(f"{chip.name}, {M}x{N}x{K}: {len(one[0][4])} mappings; exact model vectorised {b_cold:,.0f} evaluations/s "
          f"cold, {b_warm:,.0f}/s with the core sub-GEMMs known (best of 20); one by one {s_cold:,.0f}/s cold")
    # every GEMM of the quality suite: each GEMM's whole space in one call, as the mapper does
    spaces = [(M, N, K, p, candidates(chip, M, N, K, p)) for M, N, K, p in suite()]
    total = sum(len(s[4]) for s in spaces)
    cold()
    first = rate(batch, spaces)
    again = sorted(rate(batch, spaces) for _ in range(3))
    table = core_table(chip.core, port)
    table.save()
    bits = chip_batch._BITS
    shapes = np.stack([table.keys >> 2 * bits, (table.keys >> bits) & (2**bits - 1), table.keys & (2**bits - 1)])
    t = time.perf_counter()
    core_cycles_many(chip.core, *shapes, port)
    per_shape = (time.perf_counter() - t) / len(table.keys)
    cold(kept=True)
    kept = rate(batch, spaces)
    one_pass = lambda: sum(map(len, block_model_cycles_many(chip, spaces)))     # noqa: E731
    many = max(rate(one_pass, [()]) for _ in range(3))
    cold()
    many_cold = rate(one_pass, [()])
    cold()
    t = time.perf_counter()
    candidates(chip, 2048, 4096, 4096)
    gen = time.perf_counter() - t
    print(f"  the suite's {len(spaces)} GEMMs, {total:,} mappings: vectorised exact model {first:,.0f} evaluations/s "
          f"from cold caches, {again[0]:,.0f}-{again[-1]:,.0f}/s run again (3 runs), {kept:,.0f}/s in a new process "
          f"that finds the core's table kept by this one; enumerating one space {gen * 1e3:.0f} ms; all {len(spaces)} "
          f"spaces in one vectorised pass (as a workload's GEMMs are mapped) {many:,.0f}/s (best of 3), "
          f"{many_cold:,.0f}/s from cold caches; the core model {per_shape * 1e6:.2f} us a shape over the "
          f"{len(table.keys):,} distinct core sub-GEMMs of the suite")
    wl = sl.get_workload("llama3-70b-prefill", dtype="int8", seq_len=2048)
    for search in ("fast", "exhaustive"):
        cold()
        t = time.perf_counter()
        map_gemms(chip, [(g.M, g.N, g.K, g.parallel) for g in wl.gemms], search)
        print(f"  llama3-70b prefill 2048 ({len(wl.gemms)} GEMMs): mapped in {time.perf_counter() - t:.2f} s "
              f"({search}, cold caches)")


def scaling(chip_name: str) -> None:
    import systolab as sl

    base = get(chip_name)
    wl = sl.get_workload("llama3-8b-decode", dtype="int8", batch=16, seq_len=4096)
    print(f"{wl.name} batch 16, context 4096, on {base.name} with more or fewer cores (same slice per core):")
    for cores in (32, 64, 128, 256, 512, 1024, 2048):
        chip = base.with_cores(cores)
        p = chip.workload_perf(wl.gemms)
        bw = p.bytes_moved / (chip.dram_bytes_per_cycle * p.cycles)
        print(f"  {cores:5} cores: {p.seconds * 1e3:7.3f} ms per step, DRAM bandwidth used {bw:6.1%}, "
              f"MAC utilisation {p.utilization:6.2%}, {p.bound}-bound")


def main() -> None:
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="all", choices=("quality", "speed", "scaling", "all"))
    ap.add_argument("--max-stepped-macs", type=float, default=2.0**31,
                    help="on chips whose exact model steps, leave out larger GEMMs (default 2^31 MACs)")
    ap.add_argument("--chips", default="sl-n4-os32,sl-n4-os64,sl-n4-ws64,sl-n7-os32-edge,sl-n4-os32+dram_stacks=1")
    args = ap.parse_args()
    chips = args.chips.split(",")
    if args.what in ("quality", "all"):
        quality(chips, int(args.max_stepped_macs))
    if args.what in ("speed", "all"):
        speed(chips[0])
    if args.what in ("scaling", "all"):
        scaling(chips[0])


if __name__ == "__main__":
    main()
