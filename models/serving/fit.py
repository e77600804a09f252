"""Calibration of the GPU model on public LLM-serving measurements.

The measurements (``data/serving_measurements.csv``, sources in ``data/serving.yaml``)
are whole serving runs: output tokens/s of a static batch, and time to the first token at
batch 1. Each is replayed through the serving model (:mod:`~systolab.models.serving.model`),
whose GPU time is, per operator, ``max(tensor time / derate, bytes / (peak bandwidth x
memory efficiency)) + kernels x launch overhead + communication``
(:func:`~systolab.models.serving.model.combine`). Fitted, and shared by every GPU: the compute
derate (tensor throughput sustained in serving, against the best-shape GEMM benchmarks
the per-family efficiency is fitted on, which folds in the clock under the power limit)
and the HBM and GDDR memory efficiencies; fitted per serving runtime (each measurement
names its own): the fixed cost per kernel, since launch paths differ (CUDA graphs or
not). Projections use the default runtime's (``serving.yaml: default_runtime``).

A fixed cost per wave of tiles was tried as another shared parameter (on the first 36
measurements): it fitted at about 3 us and lowered the in-sample serving error (8.3 to
5.8 % median), but the best-shape GEMM benchmarks then needed tensor efficiencies above 1
(a GEMM modelled faster than its roofline), so it is not part of the model; the GEMM-shape
terms of :mod:`~systolab.models.gpu.fit` took its place.

The fit minimises the squared log error over the measurements by coordinate search
(golden sections on each parameter in turn, in log space, deterministic), evaluating every
measurement's operators at once (one stacked array: a fit takes about a second). Its error is
reported leave-one-out (each measurement predicted by a fit to all the others) and
leave-one-source-out (:func:`leave_one_source_out`: each framework version, benchmark round or
vendor table predicted by a fit to all the other sources; :mod:`~systolab.models.validation`).
A new fit is accepted only if the latter does not get worse (:func:`store_loso`).
The tile choice of every GEMM is made at the stored parameters and held during a fit.

The fit is written (:func:`store`, :func:`store_loo`, :func:`refit`) to the user's copy of
``gpu_fit.yaml``, or with ``write`` to the repository's (only from a checkout), never into
the installed package (:mod:`~systolab.models.gpu.fit_file`); the model reads the user's
copy when it exists and is newer than the shipped one, else the shipped one.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..fitting import coordinate_search
from ..gpu import fit as gemm_fit
from ..gpu.fit_file import fit_file, fit_target, reads_fit, update_fit_file
from ..gpu.model import FIT_PARAMS
from ..gpu.runtime import RUNTIMES_FILE
from ..specs import DATA_DIR, load_yaml
from ..validation import HeldOutSummary, check_accepted, summarise
from ..workloads.catalog import get_llm
from .finite_replay import finite_runs, measured_run_plan
from .model import SERVING_FILE, GpuParams, GpuServing, Precision, combine, moe_run, serve, serving_plan

MEASUREMENTS_FILE = DATA_DIR / "serving_measurements.csv"
METRICS = ("output_tokens_per_s_per_gpu", "ttft_s")
#: Search bounds of the shared parameters (compute derate, HBM and GDDR memory efficiency)
#: and of each runtime's fixed cost per kernel; all are searched in log space.
SHARED_BOUNDS = ((0.3, 1.5), (0.5, 0.95), (0.5, 0.95))
LAUNCH_BOUNDS = (1e-7, 5e-5)
PASSES = 8


@dataclass(frozen=True)
class Measurement:
    id: str
    gpu_id: str
    model: str
    dtype: str
    kv_dtype: str
    tp: int
    batch: int
    isl: int
    osl: int
    metric: str
    value: float
    source: str
    notes: str
    kv_shared: bool    # the decode-attention kernel reads each KV head once for its query heads
    runtime: str       # the serving runtime: its fixed cost per kernel is fitted on its own


@cache
def measurements(path: str = str(MEASUREMENTS_FILE)) -> tuple[Measurement, ...]:
    """The public serving measurements, validated (a bad row names its line and column)."""
    sources = load_yaml(SERVING_FILE).get("measurement_sources", {})
    out = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                m = Measurement(row["id"], row["gpu_id"], row["model"], row["dtype"], row["kv_dtype"],
                                int(row["tp"]), int(row["batch"]), int(row["isl"]), int(row["osl"]),
                                row["metric"], float(row["value"]), row["source"], row["notes"],
                                {"per_kv_head": True, "per_query_head": False}[row["kv_reads"]], row["runtime"])
            except (KeyError, ValueError) as exc:
                raise UserError(f"{path} line {line}: {exc}") from None
            if m.metric not in METRICS or m.source not in sources or not m.value > 0:
                raise UserError(f"{path} line {line}: metric must be one of {METRICS}, source a key of "
                                f"measurement_sources in {SERVING_FILE.name}, value > 0")
            out.append(m)
    return tuple(out)


def check_only_sources() -> dict[str, str]:
    """Sources whose rows are predicted and reported but never fitted (``serving.yaml``:
    ``check_only_sources``, each with the reason: a replay that needs assumptions the fitted
    rows do not, e.g. lengths drawn at random replaced by their mean)."""
    return {str(k): str(v) for k, v in (load_yaml(SERVING_FILE).get("check_only_sources") or {}).items()}


def fit_indices() -> list[int]:
    """Indices of the measurements a fit may use: all but those of :func:`check_only_sources`."""
    skip = check_only_sources()
    return [i for i, m in enumerate(measurements()) if m.source not in skip]


#: Ids of in-flight (continuous) batching measurements start with this; their ``batch`` is the concurrency.
IN_FLIGHT_PREFIX = "ifb-"


def in_flight(m: Measurement) -> bool:
    """Whether ``m`` was measured under continuous (in-flight) batching, not as a static batch."""
    return m.id.startswith(IN_FLIGHT_PREFIX)


@dataclass(frozen=True)
class _Replay:
    """One measurement as cost terms: the run's time is ``total @ combine(terms)`` and
    the first token's ``ttft @ combine(terms)``."""

    terms: np.ndarray
    total: np.ndarray
    ttft: np.ndarray
    tokens_per_device: float    # output tokens of the run per device


def _replay(m: Measurement) -> _Replay:
    dev = GpuServing(m.gpu_id, m.dtype, runtime=m.runtime)      # the runtime's own all-reduce, if it declares one
    shape = get_llm(m.model)
    prec = Precision(m.dtype, m.kv_dtype)
    tokens = m.batch * m.osl / m.tp
    run = finite_runs().get(m.id)
    if run is not None:     # a finite run (serving.yaml: finite_runs): its own requests through its runtime's scheduler
        plan, sched = measured_run_plan(run, m.runtime, m.gpu_id, shape, tp=m.tp, prec=prec, kv_shared=m.kv_shared,
                                        moe=moe_run(m.runtime, m.source))
        tokens = sched.output_tokens / m.tp
    else:
        plan = serving_plan(shape, isl=m.isl, osl=m.osl, seqs=m.batch, static=not in_flight(m), tp=m.tp, pp=1,
                            prec=prec, kv_shared=m.kv_shared, moe=moe_run(m.runtime, m.source))
    blocks, total, ttft = [], [], []
    for (w, ops), c in zip(plan["steps"], plan["ttft"]):
        t = dev.terms(ops, m.tp)
        blocks.append(t)
        total.append(np.full(len(t), w))
        ttft.append(np.full(len(t), c))
    return _Replay(np.vstack(blocks), np.concatenate(total), np.concatenate(ttft), tokens)


@reads_fit
@cache
def replays() -> tuple[_Replay, ...]:
    return tuple(_replay(m) for m in measurements())


def runtimes() -> tuple[str, ...]:
    """The serving runtimes of the measurements, sorted: the fit's per-kernel costs follow
    the three shared parameters in this order."""
    return tuple(sorted({m.runtime for m in measurements()}))


def default_runtime() -> str:
    """The runtime whose per-kernel cost every GPU estimate uses (``serving.yaml``)."""
    name = load_yaml(SERVING_FILE).get("default_runtime")
    if name not in runtimes():
        raise UserError(f"{SERVING_FILE}: default_runtime must be one of the measurements' runtimes "
                        f"({', '.join(runtimes())}), not {name!r}")
    return name


def bounds() -> list[tuple[float, float]]:
    return [*SHARED_BOUNDS, *[LAUNCH_BOUNDS] * len(runtimes())]


def stored_theta() -> np.ndarray:
    """The stored fit (the one the model reads) as the search's parameter vector (shared,
    then per-runtime costs)."""
    shared = GpuParams.stored().as_array()
    by_runtime = load_yaml(fit_file()).get("launch_overhead_s_by_runtime") or {}
    return np.array([*shared[:3], *[float(by_runtime.get(r, shared[3])) for r in runtimes()]])


@dataclass(frozen=True)
class _Stack:
    """Every measurement's operators stacked in one array, so that a fit evaluates all of
    them in a few vector operations: ``owner`` is each operator's measurement, ``runtime``
    the index of its runtime's per-kernel cost, ``total``/``ttft`` its weight in the run's
    time and in the first token's."""

    terms: np.ndarray
    owner: np.ndarray
    runtime: np.ndarray
    total: np.ndarray
    ttft: np.ndarray
    tokens: np.ndarray      # output tokens of each run per device
    is_ttft: np.ndarray     # the measurement's metric is ttft_s


@reads_fit
@cache
def _stack() -> _Stack:
    rs, ms, names = replays(), measurements(), runtimes()
    owner = np.concatenate([np.full(len(r.terms), i) for i, r in enumerate(rs)])
    runtime = np.array([names.index(m.runtime) for m in ms])[owner]
    return _Stack(np.vstack([r.terms for r in rs]), owner, runtime, np.concatenate([r.total for r in rs]),
                  np.concatenate([r.ttft for r in rs]), np.array([r.tokens_per_device for r in rs]),
                  np.array([m.metric == "ttft_s" for m in ms]))


@reads_fit
@lru_cache(maxsize=4)
def _sub_stack(which: tuple[int, ...]) -> _Stack:
    """The stack of the measurements ``which`` only (distinct, in that order): a fit evaluates the
    rows it fits, not the held-out ones (a finite run's hundreds of steps included)."""
    st = _stack()
    pos = np.full(len(st.tokens), -1)
    pos[list(which)] = np.arange(len(which))
    keep = pos[st.owner] >= 0
    return _Stack(st.terms[keep], pos[st.owner[keep]], st.runtime[keep], st.total[keep], st.ttft[keep],
                  st.tokens[list(which)], st.is_ttft[list(which)])


def predict(theta: np.ndarray, which: list[int] | None = None) -> np.ndarray:
    """Each measurement's modelled value (its metric's unit) at parameters ``theta``
    (the order of :func:`bounds`), of the measurements ``which`` (default all), in that order."""
    distinct = which is not None and len(set(which)) == len(which)
    st = _sub_stack(tuple(int(i) for i in which)) if distinct and which is not None else _stack()
    # combine() with no per-kernel cost, then each operator's own runtime's cost
    sec = combine(st.terms, np.array([theta[0], theta[1], theta[2], 0.0])) + st.terms[:, 3] * np.asarray(theta)[3:][st.runtime]
    n = len(st.tokens)
    ttft = np.bincount(st.owner, weights=st.ttft * sec, minlength=n)
    total = np.bincount(st.owner, weights=st.total * sec, minlength=n)
    out = np.where(st.is_ttft, ttft, st.tokens / total)
    return out if which is None or distinct else out[list(which)]


def _loss(theta: np.ndarray, idx: list[int], measured: np.ndarray) -> float:
    return float(np.sum(np.log(predict(theta, idx) / measured) ** 2))


def fit(which: list[int] | None = None, start: np.ndarray | None = None) -> np.ndarray:
    """Parameters (the order of :func:`bounds`) that minimise the squared log error over
    the measurements ``which`` (default :func:`fit_indices`: all but the check-only sources')."""
    idx = fit_indices() if which is None else list(which)
    measured = np.array([measurements()[i].value for i in idx])
    return coordinate_search(lambda theta: _loss(theta, idx, measured), stored_theta() if start is None else start,
                             bounds(), passes=PASSES, steps=40)


def report(theta: np.ndarray | None = None, *, loo: bool = True) -> list[dict]:
    """Every measurement against the model at ``theta`` (default: the stored fit) and,
    with ``loo``, against a fit to all the other measurements (the check-only sources' never
    enter a fit)."""
    ms = measurements()
    fitted = fit_indices()
    theta = stored_theta() if theta is None else theta
    pred = predict(theta)
    rows = []
    for i, m in enumerate(ms):
        row = {"id": m.id, "gpu": m.gpu_id, "runtime": m.runtime, "model": m.model, "dtype": m.dtype, "tp": m.tp, "batch": m.batch,
               "isl": m.isl, "osl": m.osl, "metric": m.metric, "measured": m.value, "model_value": float(pred[i]),
               "error_pct": 100 * (pred[i] / m.value - 1)}
        if loo:
            others = [j for j in fitted if j != i]
            p = predict(fit(others, start=theta), [i])[0]
            row.update(loo_value=float(p), loo_error_pct=100 * (p / m.value - 1))
        rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict:
    """Median and worst |error| (in-sample and leave-one-out) per metric."""
    out = {}
    for metric in METRICS:
        sel = [r for r in rows if r["metric"] == metric]
        if not sel:
            continue
        d = {"n": len(sel), "median_abs_error_pct": float(np.median([abs(r["error_pct"]) for r in sel])),
             "worst_abs_error_pct": float(max(abs(r["error_pct"]) for r in sel))}
        if "loo_error_pct" in sel[0]:
            loo = [abs(r["loo_error_pct"]) for r in sel]
            worst = max(sel, key=lambda r: abs(r["loo_error_pct"]))
            d.update(median_abs_loo_error_pct=float(np.median(loo)), worst_abs_loo_error_pct=float(max(loo)),
                     worst_loo_case=worst["id"])
        out[metric] = d
    return out


def check_capacity() -> list[str]:
    """Ids of measurements that :func:`~systolab.models.serving.model.serve` refuses (a published
    run that does not fit the model's memory accounting, or is not a valid scenario)."""
    bad = []
    for m in measurements():
        try:
            serve(m.gpu_id, m.model, isl=m.isl, osl=m.osl, tp=m.tp, dtype=m.dtype, kv_dtype=m.kv_dtype,
                  batch=None if in_flight(m) else m.batch, concurrency=m.batch if in_flight(m) else None)
        except UserError:
            bad.append(m.id)
    return bad


def store(theta: np.ndarray, rows: list[dict] | None = None, path: str | Path | None = None, *,
          write: bool = False) -> Path:
    """Write ``theta`` to ``gpu_fit.yaml`` (atomically), with the fit's in-sample error when
    ``rows`` (from :func:`report`) are given: into ``path`` when given, else the repository's
    copy with ``write`` (only from a checkout), else the user's copy; every later model run
    reads it (:func:`~systolab.models.gpu.fit_file.fit_file`). Returns the file written."""
    by_runtime = {r: float(f"{v:.6g}") for r, v in zip(runtimes(), theta[3:])}
    doc: dict = {"schema": "systolab-gpu-fit/1"}
    doc.update({k: float(f"{v:.6g}") for k, v in zip(FIT_PARAMS, [*theta[:3], by_runtime[default_runtime()]])})
    doc["default_runtime"] = default_runtime()
    doc["launch_overhead_s_by_runtime"] = by_runtime
    doc["measurements"] = len(measurements())
    doc["basis"] = fit_basis()
    if rows:
        doc["in_sample"] = summary(rows)
    doc["leave_one_out"] = None         # a new fit: its leave-one-out error is measured again (store_loo)
    return update_fit_file(doc, path, write=write)


def fit_basis() -> str:
    """What the stored fit was fitted on and how (``gpu_fit.yaml: basis``)."""
    return (
        "fitted by `python benchmarks/serving.py fit`: systolab.models.serving.fit (least squared log error of "
        f"the serving model against {len(fit_indices())} of the {len(measurements())} public serving measurements "
        "in serving_measurements.csv, the rest from check-only sources (serving.yaml: check_only_sources): "
        "static-batch and in-flight output tokens/s and batch-1 time to first token on H100, H200, A100 and L40S; "
        "Llama-2 7B/13B/70B, Llama-3 8B/70B and Mixtral-8x7B; FP8, FP16 and BF16; TensorRT-LLM 0.5-0.12, "
        "LMDeploy 0.1, vLLM and gpt-fast) sets compute_derate (tensor throughput in serving over the best-shape GEMM benchmarks of "
        "gemm_calibration.csv: clocks under the power limit, less tuned kernels), the memory efficiencies "
        "(fraction of peak DRAM bandwidth, searched up to 0.95) and the fixed cost per kernel of each runtime "
        "(launch_overhead_s is the default runtime's, the one projections assume); systolab.models.gpu.fit sets "
        "the GEMM-shape terms tile_overhead_k, operand_bytes_per_clock and dram_sm_fraction on gemm_heldout.csv's dense "
        "rows marked fit (its heldout rows never enter a fit). All GPUs share these values.")


def store_loo(rows: list[dict], path: str | Path | None = None, *, write: bool = False) -> Path:
    """Record the leave-one-out error of the stored fit (``rows`` from :func:`report`
    with ``loo``) in ``gpu_fit.yaml``, where the compare report reads it: ``path``, the
    repository's copy with ``write``, else the user's copy. Returns the file written."""
    loo = {metric: {k: s[k] for k in ("n", "median_abs_loo_error_pct", "worst_abs_loo_error_pct", "worst_loo_case")}
           for metric, s in summary(rows).items()}
    return update_fit_file({"leave_one_out": loo}, path, write=write)


def refit(rounds: int = 4, rtol: float = 1e-2, *, write: bool = False) -> tuple[np.ndarray, list[dict]]:
    """Fit and store both fits until their parameters settle: the GEMM-shape terms
    (:mod:`~systolab.models.gpu.fit`) and the serving parameters change each other's
    inputs (tilings, per-family efficiencies), so each is refitted from the other's
    result (at most ``rounds`` times). Both are stored in the user's copy of
    ``gpu_fit.yaml``, or the repository's with ``write`` (only from a checkout). Returns
    the serving parameters and rows."""
    fit_target(write)                   # outside a checkout, write fails now, not after the fits
    theta, shape = stored_theta(), gemm_fit.stored()
    for _ in range(rounds):
        new_shape = gemm_fit.fit(shape)
        gemm_fit.store(new_shape, gemm_fit.report(new_shape), write=write)
        new = _fill_unseen(fit(start=theta), fit_indices())
        rows = report(new, loo=False)
        store(new, rows, write=write)
        done = bool(np.all(np.abs(new / theta - 1) < rtol) and np.all(np.abs(new_shape / shape - 1) < rtol))
        theta, shape = new, new_shape
        if done:
            break
    return theta, rows


def unseen_like() -> dict[str, str]:
    """Each runtime's stand-in when a fit has not seen it (``runtimes.yaml``: ``like``), by fit name."""
    doc = load_yaml(RUNTIMES_FILE).get("runtimes", {})
    return {str(e.get("fit_name", n)): str(e["like"]) for n, e in doc.items() if e.get("like")}


def _fill_unseen(theta: np.ndarray, which: list[int]) -> np.ndarray:
    """``theta`` with the per-kernel cost of every runtime that none of the measurements
    ``which`` ran (it has no cost of its own) set to its ``like`` runtime's when that one was
    seen, else to the geometric mean of the seen runtimes' costs."""
    names = runtimes()
    seen = {measurements()[i].runtime for i in which}
    typical = float(np.exp(np.mean(np.log([theta[3 + k] for k, r in enumerate(names) if r in seen]))))
    like = unseen_like()
    out = theta.copy()
    for k, r in enumerate(names):
        if r not in seen:
            out[3 + k] = theta[3 + names.index(like[r])] if like.get(r) in seen else typical
    return out


def sources() -> tuple[str, ...]:
    """The measurements' sources (framework versions, benchmark rounds, vendor tables), sorted."""
    return tuple(sorted({m.source for m in measurements()}))


def leave_one_source_out(start: np.ndarray | None = None) -> HeldOutSummary:
    """Each source's measurements predicted by a fit to every other source's (warm-started at
    ``start``, default the stored fit; each pass searches every parameter over its whole
    range): the held-out errors, per row and per source (:class:`~systolab.models.validation.HeldOutSummary`)."""
    ms = measurements()
    theta0 = stored_theta() if start is None else start
    rows = []
    for src in sources():
        train = [i for i in fit_indices() if ms[i].source != src]
        test = [i for i, m in enumerate(ms) if m.source == src]
        theta = _fill_unseen(fit(train, start=theta0), train)
        for i, p in zip(test, predict(theta, test)):
            m = ms[i]
            rows.append({"id": m.id, "source": src, "runtime": m.runtime, "gpu": m.gpu_id, "model": m.model,
                         "metric": m.metric, "measured": m.value, "predicted": float(p),
                         "error_pct": 100 * (float(p) / m.value - 1)})
    return summarise(rows)


def store_loso(summary: HeldOutSummary, path: str | Path | None = None, *, write: bool = False,
               check: bool = True) -> Path:
    """Record the leave-one-source-out summary in ``gpu_fit.yaml`` (``path``, the repository's
    copy with ``write``, else the user's), after :func:`~systolab.models.validation.check_accepted`
    against the one stored there (with ``check``): a worse held-out error is refused and
    nothing is written. Returns the file written."""
    new = summary.to_dict()
    if check:
        check_accepted(new, stored_loso(path))
    return update_fit_file({"leave_one_source_out": new}, path, write=write)


def stored_loso(path: str | Path | None = None) -> dict | None:
    """The leave-one-source-out summary recorded in ``gpu_fit.yaml`` (``path``, else the one
    the model reads), or None."""
    return load_yaml(Path(path) if path else fit_file()).get("leave_one_source_out")
