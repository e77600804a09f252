"""Fit and held-out error of the GPU model's GEMM-shape terms.

Three terms make small and skinny GEMMs slower than their FLOPs and bytes alone say
(:func:`~systolab.models.gpu.model.raw_estimate`):

* ``tile_overhead_k``: a fixed cost per output tile (filling the operand pipeline,
  writing the tile back), as so many more elements of K at the SM's 16-bit rate, which
  small-K GEMMs pay for little work;
* ``operand_bytes_per_clock``: a tile draws its operands from L2 at so many bytes per SM
  clock; a tile with too few operations per operand byte waits on its feed (small tiles:
  decode's skinny GEMMs);
* ``dram_sm_fraction``: the share of the SMs whose CTAs it takes to draw the DRAM's
  bandwidth; a GEMM of fewer tiles draws proportionally less.

They are fitted (squared log error, coordinate search in log space, deterministic) on the
rows of ``data/gemm_heldout.csv`` marked ``fit`` (DeepGEMM's published H800 FP8 table:
every other dense GEMM of each M, skinny M = 64 and 128 included, K from 512 to 16,384)
together with the best-shape benchmarks of ``data/gemm_calibration.csv``, whose
per-family efficiencies (at most 1) are refitted at every step. The rows marked
``heldout`` (the other dense GEMMs, every grouped MoE GEMM, and TileLang's H800 FP8 sweep)
never enter the fit and report its error. Each row is read with its library (DeepGEMM's rows
at the tile its published rule picks, :mod:`~systolab.models.gpu.libraries`) and, when
grouped, in its layout (:class:`~systolab.models.gpu.grouped.GroupedGemm`).

The fit is written with :func:`store` to the user's copy of ``gpu_fit.yaml`` (or the
repository's, from a checkout, with ``write``) through
:func:`~systolab.models.gpu.fit_file.update_fit_file`; the model reads the user's copy when
it is newer than the shipped one.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UserError
from ..fitting import coordinate_search
from ..specs import DATA_DIR, load_yaml
from ..validation import HeldOutSummary, summarise
from ..workloads.gemm import Gemm
from .fit_file import fit_file, update_fit_file
from .grouped import GroupedGemm
from .libraries import LAYOUTS
from .model import (
    DTYPE_CLASS,
    LIBRARIES,
    SHAPE_PARAMS,
    Calibration,
    ModelAssumptions,
    assumptions,
    benchmark_assumptions,
    calibrate,
    grouped_raw_estimate,
    raw_estimate,
    resolve_peak,
)
from .specs import get_gpu, load_gpus

HELDOUT_FILE = DATA_DIR / "gemm_heldout.csv"
#: Search bounds of SHAPE_PARAMS and of the measured library's two efficiencies, in log space.
BOUNDS = ((1.0, 4096.0), (8.0, 1024.0), (0.02, 1.0), (0.5, 1.0), (0.5, 1.0))
PASSES = 4
STEPS = 24


@dataclass(frozen=True)
class GemmMeasurement:
    device: str
    gpu_id: str
    gemm: Gemm         # a grouped row: ``parallel`` groups of M rows each, one call
    tflops: float
    fit: bool          # role "fit" (sets the shape terms) or "heldout" (never enters a fit)
    table: str = ""    # the published table the row comes from (its source, for held-out summaries)
    layout: str = "dense"        # "dense", or a grouped GEMM's layout (libraries.LAYOUTS)
    library: str = "deepgemm"    # the GEMM library whose kernels ran (model.LIBRARIES)

    @property
    def grouped(self) -> GroupedGemm | None:
        """The grouped GEMM of a grouped row (every group full, as the published benchmark
        ran it), else None."""
        return None if self.layout == "dense" else GroupedGemm.even(self.gemm, self.layout)


@cache
def gemm_measurements(path: str = str(HELDOUT_FILE)) -> tuple[GemmMeasurement, ...]:
    """The GEMM measurements, validated (a bad row names its line)."""
    out = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                groups = int(row["groups"])
                g = Gemm(int(row["M"]), int(row["N"]), int(row["K"]), row["dtype"], groups, row["notes"], groups)
                if row["role"] not in ("fit", "heldout") or not row["source"] or float(row["achieved_tflops"]) <= 0:
                    raise ValueError("role must be fit or heldout, source given, achieved_tflops > 0")
                layout, library = row["layout"], row["library"]
                if layout not in ("dense", *LAYOUTS) or library not in LIBRARIES or (layout == "dense" and groups != 1):
                    raise ValueError(f"layout must be dense (1 group) or one of {', '.join(LAYOUTS)}, library one of "
                                     f"{', '.join(LIBRARIES)}")
                out.append(GemmMeasurement(row["device"], row["model_gpu_id"], g, float(row["achieved_tflops"]),
                                           row["role"] == "fit", row.get("table") or row["source"], layout, library))
            except (KeyError, ValueError, UserError) as exc:
                raise UserError(f"{path} line {line}: {exc}") from None
    return tuple(out)


def _with(theta: np.ndarray) -> ModelAssumptions:
    """The benchmark assumptions with the shape terms ``theta[:3]`` (:data:`SHAPE_PARAMS` order)."""
    terms: dict[str, Any] = dict(zip(SHAPE_PARAMS, (float(v) for v in theta[:3])))
    return replace(benchmark_assumptions(), **terms)


def predict(theta: np.ndarray, cal: Calibration | None = None) -> np.ndarray:
    """Modelled TFLOPS of every measurement with the shape terms ``theta[:3]`` and the
    library's efficiencies ``theta[3:5]`` (benchmark reading: kernel time alone, no
    per-kernel cost). Those are the measured library's tensor rate and bandwidth against
    the model's reference (plain FP8 cuBLAS on the best-shape benchmarks; the fitted
    streaming efficiency): DeepGEMM's fine-grained scaling promotes partial sums on CUDA
    cores every 128 of K and loads scale factors. Rows of cuBLAS-class kernels (``library``
    cublas) are read at the reference itself."""
    reference = _with(theta)
    cal = cal or calibrate(reference)
    lib_c, lib_m = float(theta[3]), float(theta[4])
    deepgemm = replace(reference, compute_derate=lib_c, mem_eff_hbm=reference.mem_eff_hbm * lib_m,
                       mem_eff_gddr=reference.mem_eff_gddr * lib_m)
    out = []
    for m in gemm_measurements():
        gpu = get_gpu(m.gpu_id)
        dtype, peak, _ = resolve_peak(gpu, m.gemm.dtype)
        eff = cal.lookup(gpu.family, DTYPE_CLASS[dtype])[0]
        a = reference if m.library == "cublas" else deepgemm
        grouped = m.grouped
        if grouped is None:
            seconds = raw_estimate(gpu, m.gemm, peak, eff, a, m.library)[0]
        else:
            seconds = grouped_raw_estimate(gpu, grouped, peak, eff, a, m.library)[0]
        out.append(m.gemm.flops / seconds / 1e12)
    return np.array(out)


def _loss(theta: np.ndarray) -> float:
    """Squared log error over the fit measurements and the best-shape benchmarks (whose
    efficiencies, capped at 1, must still reach the measured rates with these terms)."""
    a = _with(theta)
    cal = calibrate(a)
    ms = gemm_measurements()
    pred = predict(theta, cal)
    loss = sum(math.log(p / m.tflops) ** 2 for p, m in zip(pred, ms) if m.fit)
    gpus = load_gpus()
    for p in cal.points:
        gpu = gpus[p.gpu_id]
        gemm = Gemm(p.M, p.N, p.K, p.dtype, 1, p.device)
        eff = cal.lookup(gpu.family, DTYPE_CLASS[p.dtype])[0]
        loss += math.log(gemm.flops / raw_estimate(gpu, gemm, p.peak_tflops, eff, a)[0] / 1e12 / p.measured_tflops) ** 2
    return float(loss)


def fit(start: np.ndarray) -> np.ndarray:
    """Shape terms minimising the squared log error over the fit measurements."""
    return coordinate_search(_loss, start, BOUNDS, passes=PASSES, steps=STEPS)


def stored() -> np.ndarray:
    """The stored shape terms and library efficiencies (the ``gpu_fit.yaml`` the model
    reads: :func:`~systolab.models.gpu.fit_file.fit_file`)."""
    a = assumptions()
    d = load_yaml(fit_file())
    lib = [float(d.get(k, 1.0)) for k in ("gemm_library_compute", "gemm_library_memory")]
    return np.array([*(getattr(a, k) for k in SHAPE_PARAMS), *lib])


def store(theta: np.ndarray, rows: list[dict], path: str | Path | None = None, *, write: bool = False) -> Path:
    """Write the shape terms (and the library efficiencies, with the fit's errors) into
    ``gpu_fit.yaml``, keeping what the serving fit wrote: into ``path`` when given, else
    the repository's copy with ``write`` (only from a checkout), else the user's copy
    (:func:`~systolab.models.gpu.fit_file.update_fit_file`). Returns the file written."""
    return update_fit_file({**{k: float(f"{v:.6g}") for k, v in zip(SHAPE_PARAMS, theta[:3])},
                            "gemm_library_compute": float(f"{theta[3]:.6g}"),
                            "gemm_library_memory": float(f"{theta[4]:.6g}"), "gemm_errors": summary(rows)},
                           path, write=write)


def report(theta: np.ndarray | None = None) -> list[dict]:
    """Every GEMM measurement against the model (stored shape terms by default)."""
    theta = stored() if theta is None else theta
    rows = []
    for m, p in zip(gemm_measurements(), predict(theta)):
        g = m.gemm
        rows.append({"device": m.device, "table": m.table, "gpu": m.gpu_id, "dtype": g.dtype, "groups": g.parallel, "M": g.M,
                     "N": g.N, "K": g.K, "measured_tflops": m.tflops, "model_tflops": float(p),
                     "error_pct": 100 * (p / m.tflops - 1), "role": "fit" if m.fit else "held out"})
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for role in ("fit", "held out"):
        errs = [abs(r["error_pct"]) for r in rows if r["role"] == role]
        out[role] = {"n": len(errs), "median_abs_error_pct": float(np.median(errs)),
                     "worst_abs_error_pct": float(max(errs))}
    return out


def heldout_summary(theta: np.ndarray | None = None) -> HeldOutSummary:
    """The kernel layer on GEMM shapes left out of the fit (rows marked ``heldout``), by the
    published table each comes from (``table``): median and 90th percentile of |error|, bias,
    and each table's median, at the shape terms ``theta`` (default: the stored ones).

    A leave-one-source-out refit is not identifiable for GEMMs: the two public sources set
    different parameters (the best-shape benchmarks of ``gemm_calibration.csv`` set each
    family's efficiency, DeepGEMM's dense table the shape terms), so neither can be fitted
    without the other; what is held out is shapes, never tables' parameters."""
    rows = [{"id": f"{r['table']} {r['groups']}x{r['M']}x{r['N']}x{r['K']}", "source": r["table"],
             "measured": r["measured_tflops"], "predicted": r["model_tflops"], "error_pct": r["error_pct"]}
            for r in report(theta) if r["role"] == "held out"]
    return summarise(rows)
