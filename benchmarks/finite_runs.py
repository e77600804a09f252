"""The finite-run replay of SGLang's offline rows (``serving.yaml: finite_runs``), against what
the runs reported, and the share of each mechanism in the held-out error.

``rows`` (default): each row's replay at the held-out parameters (SGLang's rows are never
fitted: the stored fit, SGLang's per-kernel cost borrowed from its ``like`` runtime, as
``benchmarks/validation.py`` holds it out): output tokens/s against the measured figure, and
the replay's makespan, median time to first token, median gap between tokens and mean request
latency against the run's own (``reported``, never fitted), with the schedule (mean decode
batch, prefill and decode steps, the share of time in decode steps).

``mechanisms``: the rows' held-out errors with the mechanisms added one at a time: the steady
state at the mean lengths and the derived concurrency (the replay before); a finite run at the
mean lengths with mixed prefill-and-decode steps (the ramp and the drain); at the drawn lengths
(a long request's context growing, the lengths' spread); with SGLang's separate prefill batches
(the replay now); and with SGLang's other admission rule.

``sensitivity``: what it would take to close the rest (not part of the model): every step, or
only prefill or decode steps, slower by a factor; an extra per-kernel cost on decode steps above
SGLang's CUDA-graph limit of 160 requests; a lower compute derate or HBM efficiency.

Usage: ``.venv/bin/python benchmarks/finite_runs.py [rows|mechanisms|sensitivity]``
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from systolab.models.serving import fit as sf
from systolab.models.serving.finite_replay import (
    finite_plan,
    finite_runs,
    finite_throughput,
    runtime_scheduler,
)
from systolab.models.serving.finite_run import DECODE, PREFILL, simulate
from systolab.models.serving.model import GpuServing, Precision, combine, serve, step_ops
from systolab.models.workloads.catalog import get_llm

RUNTIME = "sglang"


def held_out_theta() -> np.ndarray:
    """The device parameters SGLang's rows are predicted at: the stored fit, SGLang's per-kernel
    cost that of its ``like`` runtime (the stored fit holds none of its own)."""
    names = sf.runtimes()
    theta = sf.stored_theta()
    like = sf.unseen_like()[RUNTIME]
    return np.array([*theta[:3], theta[3 + names.index(like)]])


def _rows() -> list:
    runs = finite_runs()
    return [(m, runs[m.id]) for m in sf.measurements() if m.id in runs]


def _scheduler(m):
    return runtime_scheduler(m.runtime, m.gpu_id, get_llm(m.model), tp=m.tp, prec=Precision(m.dtype, m.kv_dtype))


def rows() -> None:
    theta = held_out_theta()
    print(f"{'row':12} {'measured':>9} {'replay':>8} {'err %':>6}   {'duration s':>11} {'TTFT s':>12} "
          f"{'ITL ms':>11} {'e2e s':>11}  batch  prefill/decode steps  decode share")
    for m, run in _rows():
        isl, osl = run.lengths()
        t0 = time.process_time()
        r = finite_throughput(m.gpu_id, get_llm(m.model), isl=isl, osl=osl, tp=m.tp, dtype=m.dtype,
                              scheduler=_scheduler(m), runtime=m.runtime, theta=theta)
        rep = dict(run.reported)
        s = r.schedule
        print(f"{run.input_len}/{run.output_len:<6} {m.value:>9.1f} {r.output_tokens_per_s:>8.1f} "
              f"{100 * (r.output_tokens_per_s / m.value - 1):>+6.1f}   {r.makespan_s:>5.0f}/{rep['duration_s']:<5.0f} "
              f"{r.median_ttft_s:>5.1f}/{rep['median_ttft_s']:<6.1f} {1e3 * r.median_itl_s:>4.0f}/{1e3 * rep['median_itl_s']:<6.0f}"
              f"{r.mean_e2e_s:>5.0f}/{rep['mean_e2e_latency_s']:<5.0f} {s.mean_decode_batch:>6.0f}  "
              f"{s.prefill_steps:>6}/{s.decode_steps:<6}          {r.decode_share:.2f}   "
              f"({time.process_time() - t0:.2f} CPU s)")


def _finite(m, isl, osl, cfg, theta) -> float:
    return finite_throughput(m.gpu_id, get_llm(m.model), isl=isl, osl=osl, tp=m.tp, dtype=m.dtype, scheduler=cfg,
                             runtime=m.runtime, theta=theta).output_tokens_per_s


def mechanisms() -> None:
    theta = held_out_theta()
    names = sf.runtimes()
    full = sf.stored_theta().copy()
    full[3 + names.index(RUNTIME)] = theta[3]
    variants: dict[str, list[float]] = {k: [] for k in (
        "steady state, mean lengths (before)", "finite, mean lengths, mixed steps", "finite, drawn lengths, mixed steps",
        "finite, drawn lengths, separate prefill (now)", "  the same, ratio admission")}
    for m, run in _rows():
        isl, osl = run.lengths()
        cfg = _scheduler(m)
        steady = serve(m.gpu_id, m.model, isl=m.isl, osl=m.osl, tp=m.tp, dtype=m.dtype, concurrency=m.batch,
                       runtime=m.runtime).output_tokens_per_s
        mean_isl, mean_osl = np.full(len(isl), round(isl.mean())), np.full(len(isl), round(osl.mean()))
        mixed = dataclasses.replace(cfg, mixed=True)
        out = [steady, _finite(m, mean_isl, mean_osl, mixed, theta),
               _finite(m, isl, osl, mixed, theta), _finite(m, isl, osl, cfg, theta),
               _finite(m, isl, osl, dataclasses.replace(cfg, admission="ratio"), theta)]
        for k, v in zip(variants, out):
            variants[k].append(100 * (v / m.value - 1))
    print(f"{'replay':48} {'errors of the five rows, %':>36}   median |err|")
    for k, errs in variants.items():
        print(f"{k:48} {' '.join(f'{e:+6.1f}' for e in errs):>36}   {np.median(np.abs(errs)):5.1f}")


def sensitivity() -> None:
    theta = held_out_theta()
    data = []
    for m, run in _rows():
        shape, prec = get_llm(m.model), Precision(m.dtype, m.kv_dtype)
        isl, osl = run.lengths()
        sched = simulate(_scheduler(m), isl, osl)
        plan = finite_plan(lambda n, q, c, s=shape, p=prec, t=m.tp: step_ops(s, seqs=n, q_len=q, ctx=c, tp=t, prec=p),
                           sched)
        dev = GpuServing(m.gpu_id, m.dtype, runtime=m.runtime)
        data.append((m, sched, plan, [dev.terms(ops, m.tp) for _, ops in plan["steps"]]))

    def errors(th, prefill=1.0, decode=1.0, eager_s=0.0):
        out = []
        for m, sched, plan, terms in data:
            step = np.array([combine(t, th).sum() for t in terms])
            kernels = np.array([t[:, 3].sum() for t in terms])
            per = step[plan["block_step"]] + np.where((sched.kind == DECODE) & (sched.decode_seqs > 160),
                                                      kernels[plan["block_step"]] * eager_s, 0.0)
            per = per * np.where(sched.kind == PREFILL, prefill, np.where(sched.kind == DECODE, decode, 1.0))
            tokens_per_s = sched.output_tokens / m.tp / float((per * sched.count).sum())
            out.append(100 * (tokens_per_s / m.value - 1))
        return out

    cases = [("as modelled", theta, {}), ("every step x1.3", theta, {"prefill": 1.3, "decode": 1.3}),
             ("prefill steps x1.3", theta, {"prefill": 1.3}), ("decode steps x1.3", theta, {"decode": 1.3}),
             ("+20 us a kernel, decode above batch 160", theta, {"eager_s": 20e-6}),
             ("+40 us a kernel, decode above batch 160", theta, {"eager_s": 40e-6})]
    for d in (0.7, 0.6):
        cases.append((f"compute derate {d} (fitted {theta[0]:.3f})", np.array([d, *theta[1:]]), {}))
    cases.append((f"HBM efficiency 0.7 (fitted {theta[1]:.2f})", np.array([theta[0], 0.7, *theta[2:]]), {}))
    print(f"{'what changes (not in the model)':44} {'errors of the five rows, %':>36}   median |err|")
    for name, th, kw in cases:
        errs = errors(th, **kw)
        print(f"{name:44} {' '.join(f'{e:+6.1f}' for e in errs):>36}   {np.median(np.abs(errs)):5.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="rows", choices=("rows", "mechanisms", "sensitivity"))
    {"rows": rows, "mechanisms": mechanisms, "sensitivity": sensitivity}[p.parse_args().what]()


if __name__ == "__main__":
    main()
