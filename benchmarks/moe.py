"""Mixture-of-experts serving accuracy: the Mixtral rows of ``models/data/serving_measurements.csv``.

Every MoE measurement against the stored fit (in-sample), against a fit to all the other
measurements (leave-one-out), and against a fit to the dense rows only (every MoE row held
out at once: the fit never sees an MoE run). Then Mixtral-8x7B decode per step at batch
1-8 (TPOT, the expert GEMMs' share) on H100 and A100, tp 2, to show what the MoE terms
change (``models/serving/moe.py``).

``cv``: the grouped GEMM efficiency (``serving.yaml: moe``) each MoE row implies, and each
row's error at the efficiency the other rows imply.

Usage: ``.venv/bin/python benchmarks/moe.py [loo|cv|decode]``
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from systolab.models.serving import fit as sf
from systolab.models.serving import model as sm
from systolab.models.serving.model import serve
from systolab.models.workloads.catalog import get_llm

_STORED = sm.serving_data


def moe_rows() -> list[int]:
    return [i for i, m in enumerate(sf.measurements()) if get_llm(m.model).experts > 1]


def do_loo() -> None:
    t0 = time.perf_counter()
    ms, idx = sf.measurements(), moe_rows()
    theta = sf.stored_theta()
    dense = [j for j in range(len(ms)) if j not in idx]
    held = sf.predict(sf.fit(dense, start=theta), idx)
    ins = sf.predict(theta, idx)
    print(f"{'measurement':36} {'measured':>9} {'in-sample':>10} {'err %':>7} {'LOO err %':>9} {'dense-fit err %':>15}")
    errs: dict[str, list[float]] = {"in": [], "loo": [], "dense": []}
    for k, i in enumerate(idx):
        others = [j for j in range(len(ms)) if j != i]
        loo = sf.predict(sf.fit(others, start=theta), [i])[0]
        e = [100 * (v / ms[i].value - 1) for v in (ins[k], loo, held[k])]
        for key, v in zip(errs, e):
            errs[key].append(abs(v))
        print(f"{ms[i].id:36} {ms[i].value:>9.4g} {ins[k]:>10.4g} {e[0]:>7.1f} {e[1]:>9.1f} {e[2]:>15.1f}")
    print("median |error| %: " + ", ".join(f"{k} {np.median(v):.1f}" for k, v in errs.items()))
    print(f"({time.perf_counter() - t0:.0f} s)")


def _errors_at(efficiency: float) -> np.ndarray:
    """The MoE rows' in-sample errors, %, with the grouped GEMM efficiency set to ``efficiency``."""
    base = sm.serving_data()
    sm.serving_data = lambda: dataclasses.replace(base, grouped_gemm_efficiency=efficiency)
    try:
        sf.replays.cache_clear()
        idx = moe_rows()
        return 100 * (sf.predict(sf.stored_theta(), idx) / [sf.measurements()[i].value for i in idx] - 1)
    finally:
        sm.serving_data = _STORED
        sf.replays.cache_clear()


def do_cv() -> None:
    """The grouped GEMM efficiency each MoE row alone implies (a grid over the stored
    range), and each row predicted at the efficiency the other rows imply (k-fold, k = rows)."""
    grid = np.round(np.arange(0.37, 1.0001, 0.01), 2)
    errs = np.array([_errors_at(e) for e in grid])            # (grid, rows)
    ms, idx = sf.measurements(), moe_rows()
    stored = _STORED().grouped_gemm_efficiency
    print(f"stored efficiency {stored}: errors % {np.round(_errors_at(stored), 1).tolist()}")
    best = [float(grid[np.argmin(np.abs(errs[:, k]))]) for k in range(len(idx))]
    for k, i in enumerate(idx):
        others = [j for j in range(len(idx)) if j != k]
        e_other = float(grid[np.argmin(np.sum(errs[:, others] ** 2, axis=1))])
        held = float(errs[list(grid).index(e_other), k])
        print(f"{ms[i].id:36} implies {best[k]:.2f}; at the others' {e_other:.2f}: held-out error {held:+.1f} %")


def do_decode() -> None:
    print(f"{'gpu':10} {'batch':>5} {'TPOT ms':>8} {'experts ms':>10} {'share':>6}")
    for gpu in ("h100-sxm", "a100-sxm4-80gb"):
        for batch in (1, 2, 4, 8, 32, 128):
            r = serve(gpu, "mixtral-8x7b", isl=128, osl=128, batch=batch, tp=2, dtype="bf16")
            ex = sum(o["seconds"] for o in r.decode_ops if o["name"].startswith("expert_"))
            tot = sum(o["seconds"] for o in r.decode_ops)
            print(f"{gpu:10} {batch:>5} {r.tpot_s * 1e3:>8.2f} {ex * 1e3:>10.2f} {ex / tot:>6.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="loo", choices=["loo", "cv", "decode"])
    a = p.parse_args()
    {"loo": do_loo, "cv": do_cv, "decode": do_decode}[a.what]()


if __name__ == "__main__":
    main()
