"""Which number formats a GPU's tensor cores run, checked once for ``gpu --gemm`` and ``serve``.

Three kinds of format reach a GPU (``systolab/dtypes.py``):

* formats with a tensor rate of their own in ``data/gpus.yaml`` (bf16, fp8_e4m3 ...), or a
  stated fallback (:data:`~systolab.models.gpu.model.FALLBACK`);
* the block-scaled FP4 formats (NVFP4, MXFP4): native on Blackwell only. A GPU without
  FP4 tensor cores has no rate to fall back on (emulating them would be slower than
  FP8), so asking for FP4 there is an error naming ``dtype``;
* weight-only formats (w4a16, w8a16, w8a16_fp8): the weights are read at their storage
  bits and dequantised in the GEMM's main loop; the math runs at the 16-bit rate, so any
  GPU with a 16-bit tensor rate runs them.
"""
from __future__ import annotations

from ...dtypes import DTYPES, FP4_DTYPES, canonical_dtype, get_dtype, math_dtype
from ...errors import UserError
from .specs import GpuSpec, load_gpus

#: What the weight-only formats' GEMMs are charged, stated with every result that uses one.
WEIGHT_ONLY_ASSUMPTION = (
    "weight-only formats (w4a16, w8a16, w8a16_fp8): weights read at their storage bits (int4 with an fp16 scale "
    "and 4-bit zero point per 128: 4.16 bits), activations and math in bf16 at the 16-bit tensor rate; the "
    "dequantisation runs in the GEMM's main loop (Marlin-style kernels) and is not charged beyond that: it hides "
    "under the weight reads when memory-bound (decode) and is counted at the 16-bit rate when compute-bound"
)
#: What the FP4 formats are charged.
FP4_ASSUMPTION = (
    "FP4 (nvfp4, mxfp4): weights and GEMM activations in E2M1 with their block scales (NVFP4 4.5 bits/element, "
    "MXFP4 4.25) at the GPU's dense FP4 rate; the activations are quantised in the preceding kernel's epilogue "
    "(not charged); compute efficiency borrowed from the GPU's FP8 GEMM measurements (none public for FP4)"
)


def fp4_gpus() -> list[str]:
    """Ids of the GPUs in ``data/gpus.yaml`` with FP4 tensor cores."""
    return [g.id for g in load_gpus().values() if g.fp4_dtypes]


def check_gpu_dtype(spec: GpuSpec, dtype: str, *, parameter: str = "dtype") -> str:
    """``dtype`` as its canonical id (``fp4`` -> ``nvfp4``) once checked to run on ``spec``:
    FP4 needs FP4 tensor cores; any other format a tensor rate for its math (its own or a
    16-bit one for the weight-only formats). Otherwise a :class:`UserError` naming
    ``parameter``."""
    if not isinstance(dtype, str) or canonical_name(dtype) not in DTYPES:
        raise UserError(f"{parameter}: unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)} (or fp4 = nvfp4)",
                        parameter=parameter)
    name = canonical_dtype(dtype, field=parameter)
    if name in FP4_DTYPES and not spec.peak(name):
        has = ", ".join(spec.fp4_dtypes) or "no FP4 tensor cores"
        raise UserError(f"{parameter}: {spec.id} ({spec.architecture}) has {has}: {name} runs natively only on "
                        f"Blackwell ({', '.join(fp4_gpus()) or 'none listed'}); use fp8_e4m3 where the GPU has it, "
                        "or a weight-only format (w4a16)", parameter=parameter)
    if not spec.peak(math_dtype(name)) and not get_dtype(name).weight_only:
        rates = ", ".join(k for k, v in sorted(spec.peak_dense_tflops.items()) if v)
        raise UserError(f"{parameter}: {spec.id} has no {name} tensor rate (it has {rates})", parameter=parameter)
    if get_dtype(name).weight_only and not (spec.peak("bf16") or spec.peak("fp16")):
        raise UserError(f"{parameter}: {spec.id} has no 16-bit tensor rate for {name}'s math", parameter=parameter)
    return name


def format_notes(dtype: str) -> tuple[str, ...]:
    """The stated assumptions a format adds to a result (none for the plain formats)."""
    d = get_dtype(dtype)
    if d.name in FP4_DTYPES:
        return (FP4_ASSUMPTION,)
    if d.weight_only:
        return (WEIGHT_ONLY_ASSUMPTION,)
    return ()


def canonical_name(dtype: str) -> str:
    """``dtype`` with its alias resolved, not checked (``fp4`` -> ``nvfp4``)."""
    try:
        return canonical_dtype(dtype)
    except UserError:
        return dtype
