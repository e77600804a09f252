"""The mapper (``models/mapper.py``): quality of the fast search against the exhaustive one,
traffic against the lower bound, speed, and how decode scales with cores.

1. ``quality``: every distinct GEMM of the built-in workloads at several batch sizes and
   sequence lengths, plus random shapes (200 or more in all), on several chips: the fast
   search's cycles over the fewest any mapping takes (worst and count above 2 %), the
   screening model's rank error (where the exact optimum sits in its ranking), and, on
   memory-bound GEMMs, DRAM bytes over the lower bound (in bytes, and in the DMA's beats).
2. ``speed``: screening evaluations per second (vectorised), exact evaluations per second,
   and the time to map a whole Llama-3-70B prefill, cold caches.
3. ``scaling``: batch-16 decode with 4,096-token contexts on the default chip with 64 ...
   1,024 cores (same slice per core): time per step and DRAM bandwidth used.

Usage: ``.venv/bin/python benchmarks/mapper.py [quality|speed|scaling|all] [--chips A,B,C]``
"""
from __future__ import annotations

import argparse
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


def quality(chip_names: list[str]) -> None:
    import systolab as sl
    from systolab.models.blocking import candidates
    from systolab.models.chip_perf import chip_gemm_cycles
    from systolab.models.mapper import map_gemm, screen_cycles

    shapes = suite()
    n_work = len(workload_gemms())
    print(f"suite: {len(shapes)} GEMMs ({n_work} from the workloads, then random ones)")
    for name in chip_names:
        chip = sl.get_chip(name)
        t = time.perf_counter()
        gaps, ex_gaps, ranks, ratios, dma_ratios = [], [], [], [], []
        for x, (M, N, K, p) in enumerate(shapes):
            ex = map_gemm(chip, M, N, K, p, "exhaustive")
            fa = map_gemm(chip, M, N, K, p, "fast")
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
        g = np.array(gaps)

        def spread(rs):
            r = [v for v, _ in rs] or [0.0]
            over = [work for v, work in rs if v > 1.1]
            return f"median {np.median(r):.3f}, max {max(r):.3f}, {len(over)} over 1.1 ({sum(over)} workload GEMMs)"

        print(f"{chip.name:16} worst fast gap to the fewest cycles {g.max():.2%} (mean {g.mean():.3%}, "
              f"{int(np.sum(g > 0.02))} over 2 %; the exhaustive search's own, from the traffic rule, "
              f"{max(ex_gaps):.2%}); exact optimum in the screen's best {max(ranks):.0%} at worst; "
              f"memory-bound GEMMs {len(ratios)}: DRAM bytes / lower bound {spread(ratios)}; "
              f"/ lower bound in the DMA's beats {spread(dma_ratios)}  ({time.perf_counter() - t:.0f} s)")


def speed(chip_name: str) -> None:
    import importlib

    import systolab as sl
    from systolab.models.blocking import candidates
    from systolab.models.chip_perf import chip_gemm_cycles
    from systolab.models.mapper import map_gemm, screen_cycles

    chip_perf = importlib.import_module("systolab.models.chip_perf")     # the module, not models.chip_perf()
    chip = sl.get_chip(chip_name)
    M, N, K = 2048, 4096, 4096
    cands = candidates(chip, M, N, K)
    screen_cycles(chip, M, N, K, 1, cands)           # warm the core-step cache
    reps = 200
    t = time.perf_counter()
    for _ in range(reps):
        screen_cycles(chip, M, N, K, 1, cands)
    s_rate = reps * len(cands) / (time.perf_counter() - t)
    chip_perf._core_step.cache_clear()
    chip_perf._core_max.cache_clear()
    chip_perf._block_model_cycles.cache_clear()
    t = time.perf_counter()
    for b in cands:
        chip_gemm_cycles(chip, M, N, K, b)
    e_rate = len(cands) / (time.perf_counter() - t)
    blocking = importlib.import_module("systolab.models.blocking")
    blocking._candidates.cache_clear()              # time the enumeration, not the cache
    t = time.perf_counter()
    candidates(chip, M, N, K)
    gen = time.perf_counter() - t
    print(f"{chip.name}, {M}x{N}x{K}: {len(cands)} mappings; screening {s_rate:,.0f} evaluations/s (vectorised); "
          f"exact model {e_rate:,.0f} evaluations/s; enumerating the space {gen * 1e3:.0f} ms")
    wl = sl.get_workload("llama3-70b-prefill", dtype="int8", seq_len=2048)
    for search in ("fast", "exhaustive"):
        map_gemm.cache_clear()
        chip_perf._core_step.cache_clear()
        chip_perf._channel_beats.cache_clear()
        chip_perf._step_dma.cache_clear()
        chip_perf._core_max.cache_clear()
        chip_perf._block_model_cycles.cache_clear()
        blocking._candidates.cache_clear()
        t = time.perf_counter()
        for g in wl.gemms:
            map_gemm(chip, g.M, g.N, g.K, g.parallel, search)
        print(f"  llama3-70b prefill 2048 ({len(wl.gemms)} GEMMs): mapped in {time.perf_counter() - t:.2f} s "
              f"({search}, cold caches)")


def scaling(chip_name: str) -> None:
    import systolab as sl

    base = sl.get_chip(chip_name)
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
    ap.add_argument("--chips", default="sl-n4-os32,sl-n4-os64,sl-n4-ws64,sl-n7-os32-edge")
    args = ap.parse_args()
    chips = args.chips.split(",")
    if args.what in ("quality", "all"):
        quality(chips)
    if args.what in ("speed", "all"):
        speed(chips[0])
    if args.what in ("scaling", "all"):
        scaling(chips[0])


if __name__ == "__main__":
    main()
