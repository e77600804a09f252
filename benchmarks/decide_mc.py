"""The default decision's Monte Carlo on one core: 10,000 draws of every uncertain input
through the whole vectorised model (TCO, deployments, schedule and NRE, horizon), then its
Sobol' indices, apart from the serving search (done once per option, before any draw).

    .venv/bin/python benchmarks/decide_mc.py [--draws 10000] [--repeat 3] [--sobol-base 512]

Prints the times, the number of inputs and whether a seed reproduces the draws exactly.
The issue's target: 10,000 draws in under 10 s on one core.
"""
from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sobol-base", type=int, default=512)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")           # one core, as the target states

    import numpy as np

    from systolab.models.decision.compose import decide
    from systolab.models.decision.evaluate import decision_inputs, decision_model
    from systolab.models.decision.sensitivity import sobol
    from systolab.models.decision.uncertainty import propagate

    t = time.perf_counter()
    d = decide(draws=100, sobol_base=16)                   # serves every option once (cached after)
    serve_s = time.perf_counter() - t
    setting = d.setting
    inputs, fn = decision_inputs(setting), decision_model(setting)
    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        mc = propagate(fn, inputs, args.draws, 0)
        runs.append(time.perf_counter() - t)
    again = propagate(fn, inputs, args.draws, 0)
    same = all(np.array_equal(mc[k], again[k]) for k in mc.outputs)
    out = d.sensitivity.output if d.sensitivity else next(iter(mc.outputs))
    t = time.perf_counter()
    s = sobol(fn, inputs, out, n_base=args.sobol_base, seed=0)
    sobol_s = time.perf_counter() - t
    t = time.perf_counter()
    full = decide(draws=args.draws)
    decide_s = time.perf_counter() - t
    print(f"inputs: {len(inputs)} ({sum(i.varies for i in inputs)} uncertain); outputs: {len(mc.outputs)}")
    print(f"serving search, once per option: {serve_s:.2f} s")
    print(f"Monte Carlo, {args.draws:,} draws: best {min(runs):.3f} s of {args.repeat} (all: "
          f"{', '.join(f'{r:.3f}' for r in runs)}); same seed, same draws: {'yes' if same else 'NO'}")
    print(f"Sobol' of {out}, n_base {args.sobol_base}: {s.n_evaluations:,} points in {sobol_s:.2f} s; "
          f"top 5 by ST: {', '.join(f'{i.name} {i.ST:.2f}' for i in s.top(5))}")
    print(f"decide() end to end after the search (draws, Sobol', tornado, break-even, timeline): {decide_s:.2f} s")
    print(f"P(build beats buy): {full.p_build_beats_buy}")


if __name__ == "__main__":
    main()
