"""Speed of the cycle model (models/core/perf.py): GEMM x configuration evaluations per second.

    python benchmarks/perf_speed.py

Evaluates every GEMM of the Llama-3-8B prefill and decode workloads and a grid of random
shapes on a set of core configurations, in one process, and prints evaluations per second:
one at a time (each evaluation = cycles + counters of one GEMM on one configuration, no
caching) and, for the cycles alone, a configuration's shapes in one call of the compiled
recurrence (``core_cycles_many``). The compiled code is loaded (or, the first time on a
machine, compiled) before the clock starts; the time it took is printed first.
"""
from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from systolab import AcceleratorConfig
    from systolab.models.core.perf import MemorySystem, core_cycles_many, core_perf
    from systolab.models.workloads.catalog import get_workload

    shapes = sorted({(g.M, g.N, g.K) for name in ("llama3-8b-prefill", "llama3-8b-decode")
                     for g in get_workload(name, dtype="int8").gemms})
    rng = np.random.default_rng(0)
    shapes += [tuple(int(v) for v in rng.integers(1, 2049, 3)) for _ in range(200)]
    configs = [AcceleratorConfig(rows=r, cols=c, dataflow=df) for r, c in ((4, 4), (16, 16), (32, 8), (64, 64))
               for df in ("os", "ws")]
    mem = MemorySystem(100, 32)
    t0 = time.perf_counter()
    core_cycles_many(configs[0], [1], [1], [1], mem)
    print(f"compiled model ready in {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    n = 0
    for cfg in configs:
        for s in shapes:
            core_perf(cfg, *s, mem)
            n += 1
    dt = time.perf_counter() - t0
    print(f"{n} evaluations ({len(shapes)} shapes x {len(configs)} configurations) in {dt:.2f} s: "
          f"{n / dt:,.0f} evaluations/s on one core, one at a time with the counters")
    M, N, K = np.array(shapes).T
    t0 = time.perf_counter()
    for cfg in configs:
        core_cycles_many(cfg, M, N, K, mem)
    dt = time.perf_counter() - t0
    print(f"the same cycles, a configuration's shapes in one call: {dt * 1e3:.1f} ms = {n / dt:,.0f} evaluations/s")


if __name__ == "__main__":
    main()
