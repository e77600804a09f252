"""A runtime's own attention kernel, where it declares one (``runtimes.yaml: <runtime>.attention_kernel``).

The per-step model runs attention's FLOPs at the GEMM calibration's efficiency of the
16-bit peak (:class:`~.model.GpuServing`). A runtime whose attention kernel is known to
reach a different fraction of that peak on a GPU family declares it, with its source and
range; SGLang 0.4.0 declares FlashInfer 0.1.6's FlashAttention-2-style kernels on Hopper.
The fraction is a kernel's, like the calibration's: the runtime's fitted compute derate
still applies on top.
"""
from __future__ import annotations

from functools import cache

from ..gpu.runtime import RUNTIMES_FILE
from ..specs import SpecError, load_yaml, need

__all__ = ["attention_kernel_fraction"]


@cache
def attention_kernel_fraction(runtime: str | None, family: str, path: str = str(RUNTIMES_FILE)) -> float | None:
    """The fraction of the 16-bit dense peak (0-1] that ``runtime``'s attention kernel reaches
    on GPUs of ``family`` (``hopper``, ...), or None where the runtime declares none for it
    (the per-step model's calibration then stands)."""
    if runtime is None:
        return None
    entry = (load_yaml(path).get("runtimes") or {}).get(runtime) or {}
    where = f"runtimes.{runtime}"
    kernel = need(path, where, entry, "attention_kernel", dict, optional=True)
    if kernel is None:
        return None
    by_family = need(path, f"{where}.attention_kernel", kernel, "fraction_of_peak_by_family", dict)
    value = by_family.get(family)
    if value is None:
        return None
    fraction = float(need(path, f"{where}.attention_kernel.fraction_of_peak_by_family.{family}", value, "value",
                          (int, float), positive=True))
    if fraction > 1:
        raise SpecError(path, f"{where}.attention_kernel.fraction_of_peak_by_family.{family}.value",
                        f"must be at most 1, not {fraction}")
    return fraction
