"""Framework overhead of the decision's Monte Carlo: drawing 10,000 samples of 40
uncertain inputs (every shape, two correlated groups), one call of a cheap vectorised
model, and the summary of its outputs; then Sobol' indices (SALib) on the same inputs.

    .venv/bin/python benchmarks/decision_mc.py [--draws 10000] [--inputs 40] [--repeat 5]

The model is a sum of products (microseconds), so the times are the framework's own.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--inputs", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--n-base", type=int, default=1024)
    args = ap.parse_args()

    import numpy as np

    from systolab.models.decision import Uncertain, propagate, sample, sobol

    shapes = ("triangular", "pert", "uniform", "lognormal", "fixed")
    inputs = [Uncertain(f"x{i}", 1.0, 1.5 + (i % 3) * 0.2, 3.0, shapes[i % len(shapes)],
                        group=("g1" if i < 6 else "g2" if i < 10 else None)) for i in range(args.inputs)]
    corr = {("g1", "g2"): 0.5, ("x11", "x12"): -0.3}
    names = [i.name for i in inputs]

    def model(v):
        total = sum(v[n] for n in names)
        return {"build": total, "buy": 1.1 * total + v["x11"] - v["x12"], "margin": v["x11"] * v["x13"] - 2.0}

    def best(f):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t)
        return min(times), out

    propagate(model, inputs, 100, 0)           # warm scipy's first-call paths
    t_sample, _ = best(lambda: sample(inputs, args.draws, 1, correlations=corr))
    t_lhs, _ = best(lambda: sample(inputs, args.draws, 1, correlations=corr, method="lhs"))
    t_mc, mc = best(lambda: (propagate(model, inputs, args.draws, 1, correlations=corr), )[0])
    t_sum, _ = best(lambda: (mc.to_dict(), mc.p_less("build", "buy")))
    t_sobol, so = best(lambda: sobol(model, inputs, "buy", n_base=args.n_base, seed=1))
    again = propagate(model, inputs, args.draws, 1, correlations=corr)
    same = all(np.array_equal(again[k], mc[k]) for k in mc.outputs)
    print(f"{args.draws} draws x {args.inputs} inputs ({len(so.indices)} sampled variables), best of {args.repeat}:")
    print(f"  sample (random, copula)   {t_sample * 1e3:8.1f} ms")
    print(f"  sample (lhs, copula)      {t_lhs * 1e3:8.1f} ms")
    print(f"  propagate (draw + model)  {t_mc * 1e3:8.1f} ms")
    print(f"  summaries + P(a < b)      {t_sum * 1e3:8.1f} ms")
    print(f"  sobol n_base={args.n_base} ({so.n_evaluations} points, SALib)  {t_sobol * 1e3:8.1f} ms")
    print(f"  same seed reproduces every output exactly: {same}")


if __name__ == "__main__":
    main()
