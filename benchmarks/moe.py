"""Mixture-of-experts serving accuracy: the Mixtral rows of ``models/data/serving_measurements.csv``.

Every MoE measurement against the stored fit (in-sample), against a fit to all the other
measurements (leave-one-out), and against a fit to the dense rows only (every MoE row held
out at once: the fit never sees an MoE run). Then Mixtral-8x7B decode per step at batch
1-8 (TPOT, the expert GEMMs' share) on H100 and A100, tp 2, to show what the MoE terms
change (``models/serving/moe.py``).

``cv``: the grouped GEMM efficiency (``serving.yaml: moe``) each MoE row implies, and each
row's error at the efficiency the other rows imply.

``terms``: the MoE rows at the stored fit with the runtime terms (``serving.yaml: moe.runtimes``,
``moe.random_weights``; :class:`~systolab.models.serving.moe.MoeRun`) added one by one: 16-bit
experts, Ampere kernels on Hopper, the rows' copy to their experts, collapsed routing.

``loso``: leave-one-source-out (``benchmarks/validation.py``) by kind of row: Mixtral, dense,
in-flight, with the worst source.

Usage: ``.venv/bin/python benchmarks/moe.py [loo|cv|decode|terms|loso]``
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from systolab.models.gpu.fit_file import clear_fit_caches
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


def _run_steps(full: sm.MoeRun) -> list[tuple[str, sm.MoeRun]]:
    """The runtime terms of ``full`` switched on one after another."""
    dtypes = dataclasses.replace(sm.MoeRun(), expert_dtypes=full.expert_dtypes)
    legacy = dataclasses.replace(dtypes, legacy_mma=full.legacy_mma)
    expand = dataclasses.replace(legacy, expand_rows=full.expand_rows)
    return [("none", sm.MoeRun()), ("16-bit experts", dtypes), ("+ Ampere kernels", legacy),
            ("+ row copy", expand), ("+ routing", full)]


def do_terms() -> None:
    ms, idx = sf.measurements(), moe_rows()
    stored_run = sf.moe_run
    steps = {(m.runtime, m.source): _run_steps(stored_run(m.runtime, m.source)) for m in ms}
    cols = [name for name, _ in _run_steps(sm.MoeRun())]
    errs = []
    try:
        for k in range(len(cols)):
            sf.moe_run = lambda runtime=None, source=None, _k=k: steps[(runtime, source)][_k][1]
            clear_fit_caches()
            errs.append(100 * (sf.predict(sf.stored_theta(), idx) / [ms[i].value for i in idx] - 1))
    finally:
        sf.moe_run = stored_run
        clear_fit_caches()
    e = np.array(errs)
    print(f"{'measurement':36} {'measured':>9} " + " ".join(f"{c:>16}" for c in cols))
    for k, i in enumerate(idx):
        print(f"{ms[i].id:36} {ms[i].value:>9.4g} " + " ".join(f"{v:>+15.1f}%" for v in e[:, k]))
    print(f"{'median |error| %':46} " + " ".join(f"{v:>16.1f}" for v in np.median(np.abs(e), axis=1)))
    print(f"{'90th percentile |error| %':46} " + " ".join(f"{v:>16.1f}" for v in np.percentile(np.abs(e), 90, axis=1)))


def do_loso() -> None:
    t0 = time.perf_counter()
    s = sf.leave_one_source_out()
    kinds = {"Mixtral": lambda r: get_llm(r["model"]).experts > 1, "dense": lambda r: get_llm(r["model"]).experts <= 1,
             "in-flight": lambda r: r["id"].startswith(sf.IN_FLIGHT_PREFIX)}
    print(f"all: n={s.n}, median |error| {s.median_abs_error_pct:.2f} %, 90th percentile "
          f"{s.p90_abs_error_pct:.2f} %, bias {s.bias_pct:+.2f} %")
    for name, sel in kinds.items():
        e = np.abs([r["error_pct"] for r in s.rows if sel(r)])
        print(f"{name}: n={len(e)}, median |error| {np.median(e):.1f} %, 90th percentile {np.percentile(e, 90):.1f} %")
    worst = max(s.sources, key=lambda x: x.median_abs_error_pct)
    print(f"worst source: {worst.source} {worst.median_abs_error_pct:.3f} %  ({time.perf_counter() - t0:.0f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="loo", choices=["loo", "cv", "decode", "terms", "loso"])
    a = p.parse_args()
    {"loo": do_loo, "cv": do_cv, "decode": do_decode, "terms": do_terms, "loso": do_loso}[a.what]()


if __name__ == "__main__":
    main()
