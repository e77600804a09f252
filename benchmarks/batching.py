"""Batching as runtimes do it: the paged KV cache's capacity and continuous batching's accuracy.

1. ``capacity``: the largest static batch (``--batch``) and concurrency (``--concurrency``)
   for the same model and device, and the published maximum batch sizes the capacity check
   must accept (``tests/test_batching.py`` holds them with their sources).
2. ``ifb``: the in-flight (continuous batching) rows of ``models/data/serving_measurements.csv``
   (ids ``ifb-``) against the model at the stored fit: *before* (each new request's
   prefill run alone, the model before ``models/serving/batching.py``) and *after*
   (prefills batched and chunked into the decode steps). No refit: the stored
   ``gpu_fit.yaml`` is read as it is (a runtime it has no fitted cost for takes the default
   runtime's).

Usage: ``.venv/bin/python benchmarks/batching.py [capacity|ifb [--refit]]``
"""
from __future__ import annotations

import argparse

import numpy as np

from systolab.models.serving import fit as sf
from systolab.models.serving import model as serving_model
from systolab.models.serving.kv_cache import published_max_batches
from systolab.models.serving.model import serve


def do_capacity() -> None:
    print(f"{'device':10} {'model':11} {'isl':>5} {'osl':>5} {'max --batch':>11} {'max --concurrency':>17} "
          f"{'blocks':>8}")
    for dev, model, tp in (("h100-sxm", "llama3-8b", 1), ("h200-sxm", "llama2-70b", 1), ("h100-sxm", "llama2-70b", 2)):
        for isl, osl in ((128, 128), (1024, 128), (2048, 2048)):
            b = serve(dev, model, isl=isl, osl=osl, batch=1, tp=tp)
            c = serve(dev, model, isl=isl, osl=osl, concurrency=1, tp=tp)
            assert b.kv_cache == c.kv_cache        # one cache, one definition
            print(f"{dev:10} {model:11} {isl:>5} {osl:>5} {b.max_batch:>11,} {c.max_batch:>17,} "
                  f"{b.kv_cache['blocks']:>8,}")
    source, runs = published_max_batches()
    print(f"published maximum batches, Llama-2-70B FP8 ({source.split(',')[0]} v0.9.0):")
    for dev, tp, isl, osl, batch in runs:
        r = serve(dev, "llama2-70b", isl=isl, osl=osl, batch=batch, tp=tp, dtype="fp8_e4m3")
        print(f"  {dev} tp {tp} {isl}/{osl} batch {batch:,}: accepted (holds {r.max_batch:,})")


def legacy_plan(ops_of, *, isl: int, osl: int, seqs: int, **_) -> dict:
    """The continuous-batching plan before ``batching.py``: per pool of ``seqs`` requests,
    every prefill alone, then ``osl - 1`` decode steps of the pool at the mean context."""
    return {"steps": [(seqs, ops_of(1, isl, isl)), (max(osl - 1, 1), ops_of(seqs, 1, isl + osl // 2))],
            "ttft": [1.0, 0.5], "tpot": [seqs / max(osl - 1, 1), 1.0]}


def ifb_errors(theta: np.ndarray) -> tuple[list[str], np.ndarray]:
    ms = sf.measurements()
    idx = [i for i, m in enumerate(ms) if sf.in_flight(m)]
    pred = sf.predict(theta, idx)
    return [ms[i].id for i in idx], 100 * (pred / np.array([ms[i].value for i in idx]) - 1)


def summarise(name: str, e: np.ndarray) -> None:
    print(f"{name}: n={len(e)}, median |error| {np.median(np.abs(e)):.1f} %, 90th percentile "
          f"{np.percentile(np.abs(e), 90):.1f} %, bias (median error) {np.median(e):+.1f} %, "
          f"worst {np.max(np.abs(e)):.1f} %")


def do_ifb(refit: bool = False) -> None:
    """The in-flight rows before and after batched prefill, at the stored fit; with
    ``refit``, each model also refitted in memory to every measurement (nothing written)."""
    stored = sf.stored_theta()
    real_plan = serving_model.continuous_plan
    try:
        serving_model.continuous_plan = legacy_plan          # the model before batched prefill
        sf.replays.cache_clear()
        ids, before = ifb_errors(stored)
        before_fit = ifb_errors(sf.fit(start=stored))[1] if refit else None
    finally:
        serving_model.continuous_plan = real_plan
        sf.replays.cache_clear()
    _, after = ifb_errors(stored)
    ms = {m.id: m for m in sf.measurements()}
    print(f"{'measurement':40} {'measured':>9} {'before %':>9} {'after %':>8}")
    for i, b, a in zip(ids, before, after):
        print(f"{i:40} {ms[i].value:>9.4g} {b:>9.1f} {a:>8.1f}")
    summarise("before (stored fit)", before)
    summarise("after (stored fit)", after)
    if refit:
        assert before_fit is not None
        summarise("before (refitted in memory)", before_fit)
        summarise("after (refitted in memory)", ifb_errors(sf.fit(start=stored))[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="ifb", choices=["capacity", "ifb"])
    p.add_argument("--refit", action="store_true", help="ifb: also refit both models in memory (about a minute)")
    a = p.parse_args()
    do_capacity() if a.what == "capacity" else do_ifb(a.refit)


if __name__ == "__main__":
    main()
