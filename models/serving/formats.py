"""Number formats in serving: the KV cache's default, the notes a format brings, and what
the custom chip's datapath can serve.

The GPU side's checks are :mod:`~systolab.models.gpu.formats`; this module adds what
serving needs on top: FP4 serving keeps its KV cache in FP8 unless asked (as TensorRT-LLM
and vLLM serve NVFP4 checkpoints), a weight-only format keeps it in the activations'
dtype, and the chip computes only in the formats its MAC generator builds.
"""
from __future__ import annotations

from ...dtypes import FP4_DTYPES, HARDWARE_DTYPES, canonical_dtype, get_dtype
from ...errors import UserError
from ..gpu.formats import format_notes

__all__ = ["check_chip_dtype", "default_kv_dtype", "format_notes"]


def default_kv_dtype(dtype: str) -> str:
    """The KV cache's dtype when none is given: fp8_e4m3 under FP4, the math dtype (bf16)
    under a weight-only format, ``dtype`` itself otherwise."""
    d = get_dtype(dtype)
    if d.name in FP4_DTYPES:
        return "fp8_e4m3"
    return d.math or d.name


def check_chip_dtype(chip: str, core_dtype: str, dtype: str) -> str:
    """``dtype`` (canonical) if the chip ``chip`` whose cores compute in ``core_dtype`` can
    serve in it; else a :class:`UserError` naming ``dtype`` that says what the datapath
    supports. The chip's MACs (``hdl/``) are built for :data:`~systolab.dtypes.HARDWARE_DTYPES`
    only: no block-scaled FP4 MAC and no dequantising weight path exist, so FP4 and the
    weight-only formats are unsupported, and a chip computes in its cores' one format."""
    name = canonical_dtype(dtype)
    if name not in HARDWARE_DTYPES:
        what = ("block-scaled FP4 (no E2M1 MAC with per-block scales)" if name in FP4_DTYPES
                else "weight-only quantisation (no dequantising weight path)" if get_dtype(name).weight_only
                else f"{name} MAC")
        raise UserError(f"dtype: {name} is unsupported on the systolab chip's datapath: it has no {what}; its cores "
                        f"build in {', '.join(HARDWARE_DTYPES)}, and {chip} computes in {core_dtype}",
                        parameter="dtype")
    if name != core_dtype:
        raise UserError(f"dtype: {chip}'s cores compute in {core_dtype}, not {name}", parameter="dtype")
    return name
