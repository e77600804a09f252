"""MAC utilisation of the accelerator core (both dataflows) over shapes, bandwidths and latencies.

    python benchmarks/core_utilization.py              # int8, both dataflows
    python benchmarks/core_utilization.py --pipelined  # bf16 and fp8 cores with pipelined MACs
    python benchmarks/core_utilization.py --pipelined ws   # only their weight-stationary rows

Runs whole GEMMs on the core in Amaranth's simulator (bit-exact against the golden
model) and prints cycles from the core's own counters, utilisation = MACs / (rows x cols x
cycles), the compute floor (slices the array must accept) and the memory floor (bytes
read / bandwidth), and how close the cycle count gets to the larger floor.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

PIPELINED = [  # rows, cols, dataflow, dtype, mac_stages, (M, N, K), beat_bytes, bytes_per_cycle, latency
    (4, 4, "os", "bf16", 2, (32, 32, 64), 16, 16, 10),
    (4, 4, "os", "bf16", 4, (32, 32, 64), 16, 16, 10),
    (4, 4, "os", "fp8_e4m3", 3, (48, 32, 64), 16, 16, 10),    # M: whole tiles of 3 x 4 rows
    (4, 4, "ws", "bf16", 2, (32, 32, 64), 16, 16, 10),
    # weight-stationary over a long M (each 4x4 weight tile streams 512 rows of A in bf16,
    # 1,024 in fp8): the port's cost per weight tile (its B tile, the receiver's gaps) and
    # the first fill, which nothing overlaps, spread over the rows
    (4, 4, "ws", "bf16", 1, (1024, 8, 64), 16, 16, 10),
    (4, 4, "ws", "bf16", 2, (1024, 8, 64), 16, 16, 10),
    (4, 4, "ws", "fp8_e4m3", 3, (1024, 8, 64), 16, 16, 10),
]


def pipelined(dataflows: tuple[str, ...] = ("os", "ws")) -> None:
    """Floating-point cores at 1 to 4 MAC pipeline stages (the C-slow OS schedule, the WS
    skew by S): cycles and utilisation, the cycle model's count beside the RTL's, and the
    share of cycles the array accepted operands (``busy``: a k-slice a cycle for OS, an A
    row a cycle for WS; 1.0 is one MAC per PE per cycle on full tiles)."""
    from systolab import AcceleratorConfig
    from systolab.models.core import MemorySystem, core_perf
    from systolab.sim.core_bench import run_gemm
    from systolab.sim.stimulus import random_operands

    print(f"{'core':16} {'S':>2} {'MxNxK':>12} {'cycles':>7} {'model':>7} {'util':>6} {'busy':>6} {'s':>5}")
    rng = np.random.default_rng(0)
    for R, C, df, dt, S, (M, N, K), W, bw, lat in (row for row in PIPELINED if row[2] in dataflows):
        cfg = AcceleratorConfig(rows=R, cols=C, dataflow=df, dtype=dt, mac_stages=S, beat_bytes=W)
        a, b = random_operands(rng, cfg.input_dtype, (M, K)), random_operands(rng, cfg.input_dtype, (K, N))
        t = time.perf_counter()
        run = run_gemm(cfg, a, b, bytes_per_cycle=bw, latency=lat)
        secs = time.perf_counter() - t
        assert run.passed, "mismatch: the benchmark only reports correct runs"
        model = core_perf(cfg, M, N, K, MemorySystem(lat, bw)).cycles
        print(f"{df} {R}x{C} {dt:9} {S:2d} {f'{M}x{N}x{K}':>12} {run.counters['cycles']:7d} {model:7d} "
              f"{run.utilization:6.3f} {run.counters['busy_cycles'] / run.counters['cycles']:6.3f} {secs:5.1f}",
              flush=True)


def main() -> None:
    from systolab import AcceleratorConfig
    from systolab.sim.core_bench import run_gemm

    grid = [  # rows, cols, dataflow, (M, N, K), beat_bytes, bytes_per_cycle, latency (default buffers)
        (4, 4, "os", (64, 64, 64), 16, 16, 10),
        (4, 4, "os", (64, 64, 64), 16, 16, 100),
        (4, 4, "os", (64, 64, 64), 16, 8, 10),
        (4, 4, "os", (64, 64, 64), 16, 4, 10),
        (4, 4, "os", (64, 64, 64), 16, 2, 10),
        (4, 4, "os", (37, 23, 19), 16, 16, 10),
        (4, 4, "os", (128, 16, 256), 16, 16, 10),
        (8, 8, "os", (64, 64, 128), 16, 16, 10),
        (8, 8, "os", (64, 64, 128), 16, 8, 10),
        (4, 4, "ws", (64, 64, 64), 16, 16, 10),
        (4, 4, "ws", (64, 64, 64), 16, 16, 100),
        (4, 4, "ws", (64, 64, 64), 16, 8, 10),
        (4, 4, "ws", (64, 64, 64), 4, 4, 10),
        (4, 4, "ws", (37, 23, 19), 16, 16, 10),
        (8, 8, "ws", (64, 64, 128), 16, 16, 10),
    ]
    print(f"{'core':8} {'MxNxK':>12} {'W':>3} {'B/cyc':>5} {'lat':>4} {'cycles':>7} {'util':>6} "
          f"{'compute_floor':>13} {'memory_floor':>12} {'cycles/floor':>12} {'s':>5}")
    rng = np.random.default_rng(0)
    for R, C, df, (M, N, K), W, bw, lat in grid:
        cfg = AcceleratorConfig(rows=R, cols=C, dataflow=df, beat_bytes=W)
        a = rng.integers(-128, 127, (M, K), endpoint=True)
        b = rng.integers(-128, 127, (K, N), endpoint=True)
        t = time.perf_counter()
        run = run_gemm(cfg, a, b, bytes_per_cycle=bw, latency=lat)
        secs = time.perf_counter() - t
        assert run.passed, "mismatch: the benchmark only reports correct runs"
        c = run.counters
        # operands the array must accept: k-slices per output tile (OS), A rows per K-tile (WS)
        if df == "os":
            compute = math.ceil(M / R) * math.ceil(N / C) * K
        else:
            compute = M * math.ceil(N / C) * math.ceil(K / R)
        memory = max(c["bytes_read"] / bw, c["bytes_read"] / W)   # at most one beat per cycle
        floor = max(compute, memory)
        print(f"{df} {R}x{C:<3} {f'{M}x{N}x{K}':>12} {W:3d} {bw:5g} {lat:4d} {c['cycles']:7d} {run.utilization:6.3f} "
              f"{compute:13d} {memory:12.0f} {c['cycles'] / floor:12.3f} {secs:5.1f}", flush=True)


if __name__ == "__main__":
    if "--pipelined" in sys.argv[1:]:
        pipelined(tuple(a for a in sys.argv[1:] if a in ("os", "ws")) or ("os", "ws"))
    else:
        main()
