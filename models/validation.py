"""Leave-one-source-out validation: how a fit does on a source it never saw, and the rule
that a new fit must not do worse there.

A *source* is one framework version, benchmark round or vendor table (the ``source``
column of the measurements). Each source is held out in turn: the model is fitted to all
the others and predicts the held-out one. This is a harder and fairer test than
leave-one-out per row: rows of one table share a software version, a harness and a way of
counting, so a row left out alone is still predicted by its own table's siblings.

This module holds what the serving fit (:mod:`~systolab.models.serving.fit`) and the GEMM
fit (:mod:`~systolab.models.gpu.fit`) share: the summary of the held-out errors
(:func:`summarise`) and the acceptance rule (:func:`check_accepted`). It imports neither fit.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from .frames import data_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TOLERANCE_PCT", "HeldOutSummary", "SourceError", "check_accepted", "summarise"]

#: Held-out |error| may rise by this much (percentage points) before a fit counts as worse:
#: the search's own noise (a deterministic search, but a new start moves its optimum a little).
TOLERANCE_PCT = 0.05


@dataclass(frozen=True)
class SourceError:
    """One held-out source: ``n`` rows, their median |error| and median signed error (%)."""

    source: str
    n: int
    median_abs_error_pct: float
    bias_pct: float             # median signed error: > 0, the model is too high (too fast for tokens/s)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "n": self.n, "median_abs_error_pct": self.median_abs_error_pct,
                "bias_pct": self.bias_pct}


@dataclass(frozen=True)
class HeldOutSummary:
    """Leave-one-source-out errors (%) over every row, each predicted by a fit that never saw
    its source: median and 90th percentile of |error|, bias (median signed error), and each
    source's own median."""

    n: int
    median_abs_error_pct: float
    p90_abs_error_pct: float
    bias_pct: float
    sources: tuple[SourceError, ...]
    rows: tuple[Mapping[str, Any], ...] = ()     # each row: id, source, measured, predicted, error_pct

    @property
    def worst_source(self) -> SourceError:
        return max(self.sources, key=lambda s: s.median_abs_error_pct)

    def to_dict(self) -> dict[str, Any]:
        """The figures the fit file records (rows left out)."""
        return {"n": self.n, "median_abs_error_pct": round(self.median_abs_error_pct, 3),
                "p90_abs_error_pct": round(self.p90_abs_error_pct, 3), "bias_pct": round(self.bias_pct, 3),
                "worst_source": self.worst_source.source,
                "sources": {s.source: {"n": s.n, "median_abs_error_pct": round(s.median_abs_error_pct, 3),
                                       "bias_pct": round(s.bias_pct, 3)} for s in self.sources}}

    def to_frame(self) -> pd.DataFrame:
        """One row per source (n, median |error| %, bias %), then one for all rows."""
        rows = [s.to_dict() for s in self.sources]
        rows.append({"source": "all", "n": self.n, "median_abs_error_pct": self.median_abs_error_pct,
                     "bias_pct": self.bias_pct})
        return data_frame(rows)


def summarise(rows: Sequence[Mapping[str, Any]]) -> HeldOutSummary:
    """The summary of held-out ``rows`` (each with ``source`` and ``error_pct``, the signed
    error in % of the measured value)."""
    if not rows:
        raise UserError("rows: no held-out rows to summarise", parameter="rows")
    err = np.array([float(r["error_pct"]) for r in rows])
    by_source: dict[str, list[float]] = {}
    for r, e in zip(rows, err):
        by_source.setdefault(str(r["source"]), []).append(float(e))
    sources = tuple(SourceError(s, len(v), float(np.median(np.abs(v))), float(np.median(v)))
                    for s, v in sorted(by_source.items()))
    return HeldOutSummary(len(rows), float(np.median(np.abs(err))), float(np.percentile(np.abs(err), 90)),
                          float(np.median(err)), sources, tuple(rows))


def check_accepted(candidate: Mapping[str, Any], stored: Mapping[str, Any] | None, *,
                   tolerance_pct: float = TOLERANCE_PCT) -> None:
    """Raise a :class:`~systolab.errors.UserError` naming ``fit`` when the candidate fit's
    held-out error (``candidate``, a :meth:`HeldOutSummary.to_dict`) is worse than the stored
    one's on the same rows: a higher median or 90th-percentile |error|, or a worst source
    worse than before. A fit that improves in-sample but worsens held-out error is rejected.

    Nothing stored, or a summary of other rows (the data changed: ``n`` or the sources
    differ), sets no bar: the candidate becomes the reference."""
    if not stored or stored.get("n") != candidate["n"] or set(stored.get("sources", {})) != set(candidate["sources"]):
        return
    worse = []
    for key in ("median_abs_error_pct", "p90_abs_error_pct"):
        if candidate[key] > stored[key] + tolerance_pct:
            worse.append(f"{key} {candidate[key]:.2f} % > stored {stored[key]:.2f} %")
    worst_before = max(s["median_abs_error_pct"] for s in stored["sources"].values())
    worst_now = max(s["median_abs_error_pct"] for s in candidate["sources"].values())
    if worst_now > worst_before + tolerance_pct:
        worse.append(f"worst source's median {worst_now:.2f} % > stored {worst_before:.2f} %")
    if worse:
        raise UserError("fit: rejected, its leave-one-source-out error is worse than the stored fit's on the same "
                        f"measurements ({'; '.join(worse)}); gpu_fit.yaml is left as it was", parameter="fit")
