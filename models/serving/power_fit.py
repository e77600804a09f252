"""The GPU power model (:mod:`~systolab.models.gpu.power`) fitted to its public
measurements, with the serving model's activities for each measured scenario, and its
leave-one-source-out error. Lives here, not beside the power model, because the activities
come from the serving model's operators (which itself uses the power model)."""
from __future__ import annotations

from functools import cache

import numpy as np

from ..gpu.power import PowerFitReport, PowerMeasurement, fit_report, load_measurements, step_activity
from ..workloads.catalog import get_llm
from .model import GpuServing, Precision, step_ops


@cache
def measurement_activity(m: PowerMeasurement) -> tuple[float, float]:
    """(compute, memory) activity of a measured scenario per the serving model: a prefill of
    ``batch`` prompts of ``isl`` tokens, a decode step of ``batch`` sequences at the mean
    context, a whole request (the prefill, then ``osl - 1`` decode steps) or continuous
    serving at a concurrency of ``batch`` (per pool of requests: each prefills alone, then
    the pool decodes ``osl - 1`` steps, as ``serving_plan`` times it)."""
    dev = GpuServing(m.gpu_id, m.dtype)
    shape = get_llm(m.model)
    prec = Precision(m.dtype, m.dtype)
    alone = m.phase == "serving"            # continuous batching: every prompt prefills alone
    prefill = dev.busy_s(step_ops(shape, seqs=1 if alone else m.batch, q_len=m.isl, ctx=m.isl, tp=m.tp, prec=prec),
                         m.tp)
    decode = dev.busy_s(step_ops(shape, seqs=m.batch, q_len=1, ctx=m.isl + m.osl // 2, tp=m.tp, prec=prec), m.tp)
    if m.phase == "prefill":
        return step_activity(*prefill)
    if m.phase == "decode":
        return step_activity(*decode)
    weights = np.concatenate([np.full(len(prefill[0]), m.batch if alone else 1),
                              np.full(len(decode[0]), max(m.osl - 1, 1))])
    tensor, dram, seconds = (np.concatenate([a, b]) for a, b in zip(prefill, decode))
    return step_activity(tensor, dram, seconds, weights)


def power_fit_report() -> PowerFitReport:
    """The power model fitted to every measurement in ``data/gpu_power.csv``, with each
    row's prediction in sample and with its source held out; median and mean |error|."""
    rows = load_measurements()
    act = np.array([measurement_activity(m) for m in rows])
    return fit_report(rows, act)
