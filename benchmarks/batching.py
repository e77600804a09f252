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

Usage: ``.venv/bin/python benchmarks/batching.py [capacity|ifb]``
"""
from __future__ import annotations

import argparse

import numpy as np

from systolab.models.serving import fit as sf
from systolab.models.serving.kv_cache import published_max_batches
from systolab.models.serving.model import GpuServing, Precision, serve, step_ops
from systolab.models.workloads.catalog import get_llm


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


def legacy_rate(m: sf.Measurement) -> float:
    """Output tokens/s per device of ``m`` under the model before batched prefill: per
    pool of ``batch`` requests, each prefill alone, then ``osl - 1`` decode steps of the
    pool at the mean context."""
    dev, shape, prec = GpuServing(m.gpu_id, m.dtype), get_llm(m.model), Precision(m.dtype, m.kv_dtype)

    def step(seqs: int, q_len: int, ctx: int) -> float:
        ops = step_ops(shape, seqs=seqs, q_len=q_len, ctx=ctx, tp=m.tp, prec=prec, kv_shared=m.kv_shared)
        return float(dev.seconds(ops, m.tp).sum())

    total = m.batch * step(1, m.isl, m.isl) + max(m.osl - 1, 1) * step(m.batch, 1, m.isl + m.osl // 2)
    return m.batch * m.osl / total / m.tp


def do_ifb() -> None:
    ms = sf.measurements()
    idx = [i for i, m in enumerate(ms) if sf.in_flight(m)]
    after = sf.predict(sf.stored_theta(), idx)
    errs_b, errs_a = [], []
    print(f"{'measurement':40} {'measured':>9} {'before':>9} {'err %':>7} {'after':>9} {'err %':>7}")
    for i, a in zip(idx, after):
        m = ms[i]
        b = legacy_rate(m)
        eb, ea = 100 * (b / m.value - 1), 100 * (a / m.value - 1)
        errs_b.append(eb)
        errs_a.append(ea)
        print(f"{m.id:40} {m.value:>9.4g} {b:>9.4g} {eb:>7.1f} {a:>9.4g} {ea:>7.1f}")
    for name, e in (("before", errs_b), ("after", errs_a)):
        e = np.array(e)
        print(f"{name}: n={len(e)}, median |error| {np.median(np.abs(e)):.1f} %, 90th percentile "
              f"{np.percentile(np.abs(e), 90):.1f} %, bias (median error) {np.median(e):+.1f} %, "
              f"worst {np.max(np.abs(e)):.1f} %")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="ifb", choices=["capacity", "ifb"])
    a = p.parse_args()
    {"capacity": do_capacity, "ifb": do_ifb}[a.what]()


if __name__ == "__main__":
    main()
