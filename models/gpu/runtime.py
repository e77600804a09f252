"""The GPU model's two layers, and the serving runtimes of the second.

* **kernel** layer: what a library benchmark measures. A GEMM at the efficiency
  calibrated on the best-shape benchmarks (``data/gemm_calibration.csv``), its kernels
  queued back to back (no launch gap), no serving derate.
* **runtime** layer: what a serving runtime adds to the kernels. Each kernel it launches
  costs a fixed ``launch_overhead_s`` (launch and scheduling), and the tensor cores run at
  ``compute_derate`` of the benchmarks' rate. The serving model composes its GEMMs in this
  layer.

The runtimes are data (``data/runtimes.yaml``); a value marked ``fitted`` is read from the
GPU fit (``gpu_fit.yaml``, written by the serving fit on public serving runs). This module
reads files only: the model (:mod:`~systolab.models.gpu.model`) applies what it returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ...errors import UserError
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .fit_file import fit_file, reads_fit

RUNTIMES_FILE = DATA_DIR / "runtimes.yaml"
#: The GPU model's layers: ``kernel`` (library benchmark) and ``runtime`` (serving).
LAYERS = ("kernel", "runtime")


@dataclass(frozen=True)
class Runtime:
    """A serving runtime's costs on top of the kernels (the runtime layer)."""

    name: str
    description: str
    launch_overhead_s: float     # fixed cost of every kernel launched, s
    compute_derate: float        # tensor throughput while serving / the best-shape benchmarks', 0-1
    fitted: tuple[str, ...]      # the fields read from the serving fit (gpu_fit.yaml)
    source: str                  # where the values come from

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "launch_overhead_s": self.launch_overhead_s,
                "compute_derate": self.compute_derate, "fitted": list(self.fitted), "source": self.source}


def _value(path: str, where: str, entry: dict, key: str, fit_value: float | None) -> tuple[float, bool]:
    """A runtime's ``key``: the fit's value when ``fitted``, else a cited ``{value, ...}``."""
    raw = need(path, where, entry, key)
    if raw == "fitted":
        if fit_value is None:
            raise SpecError(path, f"{where}.{key}", "is 'fitted' but the GPU fit holds no value for it")
        return fit_value, True
    value = need(path, f"{where}.{key}", raw, "value", (int, float), positive=True)
    need(path, f"{where}.{key}", raw, "source", str)
    return float(value), False


def _borrowed_launch(entries: dict, entry: dict, by_runtime: dict) -> float | None:
    """The fitted per-kernel cost of ``entry``'s ``like`` runtime (None without one), for a
    runtime the stored fit has not seen yet (as :func:`~systolab.models.serving.fit` borrows
    it for a held-out source)."""
    like = entries.get(entry.get("like"))
    return None if like is None else by_runtime.get(like.get("fit_name", entry["like"]))


@reads_fit
@cache
def load_runtimes(path: str = str(RUNTIMES_FILE)) -> dict[str, Runtime]:
    """The runtimes of ``runtimes.yaml``, with their fitted values filled in from the fit
    the model reads (:func:`~systolab.models.gpu.fit_file.fit_file`)."""
    doc = load_yaml(path)
    fit = load_yaml(fit_file())
    by_runtime = fit.get("launch_overhead_s_by_runtime") or {}
    out = {}
    entries = need(path, "", doc, "runtimes", dict)
    for name, entry in entries.items():
        where = f"runtimes.{name}"
        fit_name = entry.get("fit_name", name)
        own, borrowed = by_runtime.get(fit_name), _borrowed_launch(entries, entry, by_runtime)
        launch, launch_fitted = _value(path, where, entry, "launch_overhead_s", borrowed if own is None else own)
        derate, derate_fitted = _value(path, where, entry, "compute_derate", fit.get("compute_derate"))
        if derate > 1:
            raise SpecError(path, f"{where}.compute_derate", f"must be at most 1, not {derate}")
        fitted = tuple(k for k, f in (("launch_overhead_s", launch_fitted), ("compute_derate", derate_fitted)) if f)
        source = f"fitted on public serving runs as {fit_name!r} (gpu_fit.yaml)" if fitted else ""
        if launch_fitted and own is None:
            # rows added after the stored fit: the held-out rule's stand-in until the next refit
            source += f"; its per-kernel cost is not fitted yet: that of {entry['like']} (like)"
        out[name] = Runtime(name, str(entry.get("description", "")), launch, derate, fitted, source)
    default = need(path, "", doc, "default", str)
    if default not in out:
        raise SpecError(path, "default", f"must name a runtime ({', '.join(out)}), not {default!r}")
    return out


def runtime_names(path: str = str(RUNTIMES_FILE)) -> tuple[str, ...]:
    """The names of the runtimes in ``runtimes.yaml`` (the file alone: no fit is read)."""
    return tuple(need(path, "", load_yaml(path), "runtimes", dict))


def default_runtime(path: str = str(RUNTIMES_FILE)) -> str:
    """The runtime the serving model assumes when none is named."""
    return str(load_yaml(path)["default"])


def get_runtime(name: str | None = None) -> Runtime:
    """The runtime ``name`` (the default one when None); an unknown name is a
    :class:`~systolab.errors.UserError` naming ``runtime``."""
    runtimes = load_runtimes()
    name = default_runtime() if name is None else name
    if name not in runtimes:
        raise UserError(f"runtime: unknown runtime {name!r}; choose one of {', '.join(sorted(runtimes))}",
                        parameter="runtime")
    return runtimes[name]


def check_layer(layer: str) -> str:
    """``layer`` if it is one of :data:`LAYERS`, else a UserError naming ``layer``."""
    if layer not in LAYERS:
        raise UserError(f"layer: must be one of {', '.join(LAYERS)}, not {layer!r}", parameter="layer")
    return layer
