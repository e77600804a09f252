"""GPU board power by phase: idle power plus what the tensor cores and DRAM are busy with.

    P = P_idle + (TDP - P_idle) x min(1, compute_coeff x u_compute + memory_coeff x u_memory)

clipped to a power cap where one is set. ``u_compute`` is the fraction of a step the tensor
cores are busy, ``u_memory`` the fraction DRAM is busy (both 0..1); the serving model gives
them per step (:func:`step_activity` of ``GpuServing.busy_s``). Tensor-core busy time is
the step's useful FLOPs at the dtype's dense peak (attention at the 16-bit peak): padding a
decode GEMM's few rows up to a tile multiplies zeros, which switch little, so it is not
counted; DRAM busy time is the serving model's (bytes over the fitted effective bandwidth).
``P_idle = idle_fraction x TDP``.

Assumptions (stated with every fit, ``data/gpu_power_fit.yaml``):

* one idle fraction and two coefficients for every GPU: power is a fraction of the board's
  TDP, so boards of one generation and of different TDPs share the parameters;
* idle fraction = the median of three published idle powers (A100, H100, H200), with its range;
* power is linear in the two activities until it reaches TDP (the board's limiter holds it
  there); clocks, temperature and voltage are not modelled; a step's power is its mean;
* the activities are the serving model's, for a well-tuned runtime. A measured runtime that
  leaves DRAM idler than the model assumes (Hugging Face transformers at batch 1) draws less
  than predicted: the leave-one-source-out error (:func:`fit_report`) shows how much.

The coefficients are fitted (``models/fitting.py``) to public measurements
(``data/gpu_power.csv``): every source weighs the same, loss = squared relative error.
:func:`fit_report` refits without each source in turn and predicts its rows: that
held-out error is the model's measured accuracy. The measurements' activities come from the
serving model, so the report itself is built in :mod:`~systolab.models.serving.power_fit`.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ...checks import check_choice, check_int, check_numeric, check_positive
from ...errors import UserError
from ..fitting import coordinate_search
from ..frames import data_frame
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .specs import GpuSpec, get_gpu, load_gpus

MEASUREMENTS_FILE = DATA_DIR / "gpu_power.csv"
POWER_FIT_FILE = DATA_DIR / "gpu_power_fit.yaml"
PHASES = ("prefill", "decode", "request", "serving")
#: Search bounds of the two coefficients (fractions of TDP - idle per unit activity).
COEFF_BOUNDS = ((0.02, 4.0), (0.02, 4.0))


@dataclass(frozen=True)
class PowerParams:
    """The power model's parameters: ``idle_fraction`` of TDP (with its range and source)
    and the fitted ``compute_coeff`` and ``memory_coeff``."""

    idle_fraction: float
    compute_coeff: float
    memory_coeff: float
    idle_range: tuple[float, float] = (0.0, 1.0)
    idle_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"idle_fraction": self.idle_fraction, "compute_coeff": self.compute_coeff,
                "memory_coeff": self.memory_coeff, "idle_range": list(self.idle_range),
                "idle_source": self.idle_source}


@cache
def power_fit_data(path: str = str(POWER_FIT_FILE)) -> dict:
    """The fit file, checked: the idle fraction (value, low, high, source), the fitted
    coefficients and the sources the measurements cite."""
    d = load_yaml(path)
    idle = need(path, "", d, "idle_fraction", dict)
    for key in ("value", "low", "high"):
        need(path, "idle_fraction", idle, key, (int, float), positive=True)
    if not idle["low"] <= idle["value"] <= idle["high"] < 1:
        raise SpecError(path, "idle_fraction", "needs low <= value <= high < 1")
    need(path, "idle_fraction", idle, "source", str)
    fit = need(path, "", d, "fit", dict)
    for key in ("compute_coeff", "memory_coeff"):
        need(path, "fit", fit, key, (int, float), positive=True)
    sources = need(path, "", d, "sources", dict)
    for key, s in sources.items():
        need(path, f"sources.{key}", s, "citation", str)
        need(path, f"sources.{key}", s, "url", str)
    return d


def power_params() -> PowerParams:
    """The power model's fitted parameters as stored in ``data/gpu_power_fit.yaml``: idle
    power as a fraction of TDP and the compute and memory activity coefficients."""
    d = power_fit_data()
    idle = d["idle_fraction"]
    return PowerParams(float(idle["value"]), float(d["fit"]["compute_coeff"]), float(d["fit"]["memory_coeff"]),
                       (float(idle["low"]), float(idle["high"])), " ".join(str(idle["source"]).split()))


def _spec(gpu: GpuSpec | str) -> GpuSpec:
    if isinstance(gpu, str) and gpu not in load_gpus():
        raise UserError(f"gpu: {gpu!r} is not a GPU id ({', '.join(load_gpus())})", parameter="gpu")
    return get_gpu(gpu)


def gpu_idle_W(gpu: GpuSpec | str, params: PowerParams | None = None) -> float:
    """Board power of ``gpu`` powered on with nothing to do, W (idle fraction x TDP)."""
    p = params or power_params()
    return p.idle_fraction * float(_spec(gpu).tdp_W)


def _activity(name: str, value: Any) -> np.ndarray:
    a = np.asarray(value, dtype=float) if not isinstance(value, str) else np.array(np.nan)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > 1 + 1e-9):
        raise UserError(f"{name}: must be a fraction of the step in 0..1, not {value!r}", parameter=name)
    return np.clip(a, 0.0, 1.0)


def fraction_of_tdp(compute_activity: Any, memory_activity: Any, params: PowerParams) -> Any:
    """Board power as a fraction of TDP at these activities (before any power cap)."""
    load = np.minimum(1.0, params.compute_coeff * compute_activity + params.memory_coeff * memory_activity)
    return params.idle_fraction + (1 - params.idle_fraction) * load


def gpu_power_W(gpu: GpuSpec | str, *, compute_activity: Any, memory_activity: Any,
                power_cap_W: float | None = None, params: PowerParams | None = None) -> float | np.ndarray:
    """Mean board power of ``gpu``, W, with its tensor cores busy ``compute_activity`` and its
    DRAM busy ``memory_activity`` of the time (fractions 0..1, scalars or arrays), at most
    TDP and at most ``power_cap_W`` where given. A float for scalar activities, else an array."""
    spec = _spec(gpu)
    uc, um = _activity("compute_activity", compute_activity), _activity("memory_activity", memory_activity)
    p = params or power_params()
    watts = fraction_of_tdp(uc, um, p) * float(spec.tdp_W)
    if power_cap_W is not None:
        cap = check_positive("power_cap_W", power_cap_W)
        if cap < p.idle_fraction * spec.tdp_W:
            raise UserError(f"power_cap_W: {cap:g} W is below {spec.id}'s idle power "
                            f"({p.idle_fraction * spec.tdp_W:.0f} W)", parameter="power_cap_W")
        watts = np.minimum(watts, cap)
    return float(watts) if np.ndim(watts) == 0 else watts


def step_activity(tensor_s: Any, dram_s: Any, seconds: Any, weights: Any = None) -> tuple[float, float]:
    """(compute, memory) activity of one or more steps: tensor-core busy seconds and DRAM
    busy seconds over the steps' seconds (arrays over operators, each weighted by
    ``weights``, the times it runs; default 1). The serving model gives the three per
    operator (``GpuServing.busy_s``)."""
    for name, x in (("tensor_s", tensor_s), ("dram_s", dram_s), ("seconds", seconds)):
        check_numeric(name, x)
    if weights is not None:
        check_numeric("weights", weights)
    t, d, s = (np.asarray(x, dtype=float) for x in (tensor_s, dram_s, seconds))
    w = np.ones(s.shape) if weights is None else np.asarray(weights, dtype=float)
    total = float(np.sum(w * s))
    if total <= 0:
        return 0.0, 0.0
    return min(1.0, float(np.sum(w * t)) / total), min(1.0, float(np.sum(w * d)) / total)


# -- measurements and the fit -------------------------------------------------------------------
@dataclass(frozen=True)
class PowerMeasurement:
    """One published measurement of mean board power per GPU (``data/gpu_power.csv``)."""

    id: str
    gpu_id: str
    model: str
    phase: str
    batch: int
    isl: int
    osl: int
    tp: int
    dtype: str
    measured_W: float
    tdp_W: float
    power_cap_W: float | None
    source: str
    reference: str
    notes: str


@cache
def load_measurements(path: str = str(MEASUREMENTS_FILE)) -> tuple[PowerMeasurement, ...]:
    """The measurements, checked: a known GPU, a phase, positive sizes and power, a cited source."""
    p = Path(path)
    sources = power_fit_data()["sources"]
    with p.open(newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    out = []
    for r in rows:
        where = r.get("id") or "?"
        try:
            if r["gpu_id"] not in load_gpus():
                raise ValueError(f"unknown gpu_id {r['gpu_id']!r}")
            check_choice("phase", r["phase"], PHASES)
            if r["source"] not in sources or not r["reference"].strip():
                raise ValueError(f"source {r['source']!r} is not in gpu_power_fit.yaml or has no reference")
            cap = float(r["power_cap_W"]) if r["power_cap_W"] else None
            out.append(PowerMeasurement(r["id"], r["gpu_id"], r["model"], r["phase"], check_int("batch", int(r["batch"])),
                                        check_int("isl", int(r["isl"])), check_int("osl", int(r["osl"])),
                                        check_int("tp", int(r["tp"])), r["dtype"],
                                        check_positive("measured_W", float(r["measured_W"])),
                                        check_positive("tdp_W", float(r["tdp_W"])), cap, r["source"], r["reference"],
                                        r["notes"]))
        except (KeyError, ValueError, UserError) as exc:
            raise SpecError(p, where, str(exc)) from None
    return tuple(out)


def _predict_fraction(act: np.ndarray, rows: Sequence[PowerMeasurement], params: PowerParams) -> np.ndarray:
    frac = fraction_of_tdp(act[:, 0], act[:, 1], params)
    caps = np.array([(r.power_cap_W or math.inf) / r.tdp_W for r in rows])
    return np.minimum(frac, caps)


def fit_coefficients(act: np.ndarray, rows: Sequence[PowerMeasurement], idle_fraction: float,
                     start: Sequence[float] = (1.0, 0.5)) -> tuple[float, float]:
    """(compute_coeff, memory_coeff) minimising the squared relative error of predicted
    against measured power over ``rows`` (activities ``act``: one (compute, memory) row
    each), every source weighing the same."""
    measured = np.array([r.measured_W / r.tdp_W for r in rows])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.source] = counts.get(r.source, 0) + 1
    weights = np.array([1.0 / counts[r.source] for r in rows])

    def loss(x: np.ndarray) -> float:
        pred = _predict_fraction(act, rows, PowerParams(idle_fraction, float(x[0]), float(x[1])))
        return float(weights @ ((pred - measured) / measured) ** 2)

    x = coordinate_search(loss, np.asarray(start, dtype=float), COEFF_BOUNDS, passes=6, steps=40)
    return float(x[0]), float(x[1])


@dataclass(frozen=True)
class PowerFitReport:
    """The power model against its measurements: ``params`` fitted to all of them, each
    row's measured and predicted W (in sample) and predicted W with its source left out of
    the fit (held out), and the median and mean |relative error| of both, fractions."""

    params: PowerParams
    rows: tuple[dict[str, Any], ...]
    in_sample_median_abs_error: float
    in_sample_mean_abs_error: float
    held_out_median_abs_error: float
    held_out_mean_abs_error: float
    held_out_by_source: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params.to_dict(), "rows": [dict(r) for r in self.rows],
                "in_sample_median_abs_error": self.in_sample_median_abs_error,
                "in_sample_mean_abs_error": self.in_sample_mean_abs_error,
                "held_out_median_abs_error": self.held_out_median_abs_error,
                "held_out_mean_abs_error": self.held_out_mean_abs_error,
                "held_out_by_source": dict(self.held_out_by_source)}

    def to_frame(self) -> Any:
        """One row per measurement: id, gpu, phase, batch, activities, measured and predicted W, errors."""
        return data_frame(self.rows)


def fit_report(rows: Sequence[PowerMeasurement], act: np.ndarray, idle_fraction: float | None = None
               ) -> PowerFitReport:
    """Fit the coefficients to ``rows`` (activities ``act``, one (compute, memory) row each)
    and refit leaving out each source in turn to predict its rows."""
    if not rows or len(act) != len(rows):
        raise UserError("rows: give one activity pair per measurement", parameter="rows")
    stored = power_params()
    idle = stored.idle_fraction if idle_fraction is None else idle_fraction
    act = np.asarray(act, dtype=float)
    a, b = fit_coefficients(act, rows, idle)
    params = PowerParams(idle, a, b, stored.idle_range, stored.idle_source)
    inside = _predict_fraction(act, rows, params)
    held = np.empty(len(rows))
    for source in sorted({r.source for r in rows}):
        keep = np.array([r.source != source for r in rows])
        kept = [r for r in rows if r.source != source]
        ha, hb = fit_coefficients(act[keep], kept, idle)
        held[~keep] = _predict_fraction(act[~keep], [r for r in rows if r.source == source],
                                        PowerParams(idle, ha, hb))[:]
    table, err_in, err_out = [], [], []
    for i, r in enumerate(rows):
        p_in, p_out = inside[i] * r.tdp_W, held[i] * r.tdp_W
        e_in, e_out = p_in / r.measured_W - 1, p_out / r.measured_W - 1
        err_in.append(abs(e_in))
        err_out.append(abs(e_out))
        table.append({"id": r.id, "gpu_id": r.gpu_id, "model": r.model, "phase": r.phase, "batch": r.batch,
                      "source": r.source, "compute_activity": float(act[i, 0]), "memory_activity": float(act[i, 1]),
                      "measured_W": r.measured_W, "predicted_W": float(p_in), "held_out_W": float(p_out),
                      "error": float(e_in), "held_out_error": float(e_out)})
    by_source = {s: float(np.median([e for e, r in zip(err_out, rows) if r.source == s]))
                 for s in sorted({r.source for r in rows})}
    return PowerFitReport(params, tuple(table), float(np.median(err_in)), float(np.mean(err_in)),
                          float(np.median(err_out)), float(np.mean(err_out)), by_source)
