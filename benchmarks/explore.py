"""Design-space exploration: how fast the analytic stage evaluates points, and how much of
the exhaustive grid's Pareto hypervolume the multi-objective searches reach with 10 % of
its evaluations.

The space: the edge chip with 4 ... 128 cores (step 4) x 500 ... 1,200 MHz (step 50) = 480
designs, on BERT-base (batch 1, 128 tokens); objectives: throughput (max) and power
(min); constraint: die <= 858 mm². The grid runs on ``--jobs`` local processes (a fresh
store, so every point is evaluated); NSGA-II and TPE get 48 trials each (10 %), seeds 0-2.
Hypervolume (2-D, exact): the area the front dominates up to the reference point (the
grid's worst throughput and power), in the objectives normalised by the grid's ranges.

Usage: ``.venv/bin/python benchmarks/explore.py [--jobs 2]``
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SPACE = {
    "base": "sl-n7-os32-edge",
    "parameters": {"cores": {"min": 4, "max": 128, "step": 4}, "clock_mhz": {"min": 500, "max": 1200, "step": 50}},
    "workloads": [{"name": "bert-base", "batch": 1, "seq_len": 128}],
    "objectives": [{"metric": "throughput", "workload": "bert-base", "goal": "max"},
                   {"metric": "power_W", "goal": "min"}],
    "constraints": {"die_mm2_max": 858},
}


def hypervolume(front: list[dict], lo: np.ndarray, hi: np.ndarray) -> float:
    """Area dominated by the front (throughput up, power down) within the normalised box."""
    pts = np.array([[p["objectives"]["throughput[bert-base]"], p["objectives"]["power_W"]] for p in front])
    x = (pts[:, 0] - lo[0]) / (hi[0] - lo[0])          # 0 = worst throughput, 1 = best
    y = (hi[1] - pts[:, 1]) / (hi[1] - lo[1])          # 0 = worst power, 1 = best
    order = np.argsort(-x)
    area, best_y = 0.0, 0.0
    for i in order:                                     # sweep from the highest throughput down
        if y[i] > best_y:
            area += x[i] * (y[i] - best_y)
            best_y = y[i]
    return area


def main() -> None:
    from systolab.models.explore import run_explore

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    grid = run_explore(SPACE, db=tmp / "grid.sqlite", search="grid", jobs=args.jobs)
    dt = time.perf_counter() - t
    print(f"grid: {grid['points']} points in {dt:.1f} s on {args.jobs} processes = {grid['points'] / dt:.1f} points/s "
          f"({len(grid['pareto'])} on the front)")
    vals = np.array([[p["result"]["workloads"]["bert-base"]["throughput"], p["result"]["power_W"]]
                     for p in grid["all_points"] if p["result"]["feasible"]])
    lo = np.array([vals[:, 0].min(), vals[:, 1].min()])
    hi = np.array([vals[:, 0].max(), vals[:, 1].max()])
    ref = hypervolume(grid["pareto"], lo, hi)
    budget = grid["points"] // 10
    for search in ("nsga2", "tpe"):
        for seed in range(3):
            t = time.perf_counter()
            r = run_explore(SPACE, db=tmp / f"{search}{seed}.sqlite", search=search, trials=budget, seed=seed)
            hv = hypervolume(r["pareto"], lo, hi) if r["pareto"] else 0.0
            print(f"{search} seed {seed}: {budget} trials ({r['evaluated']} distinct points) in "
                  f"{time.perf_counter() - t:.1f} s: hypervolume {hv / ref:.1%} of the grid's")


if __name__ == "__main__":
    main()
