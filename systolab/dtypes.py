"""Number formats known to systolab.

One table, shared by the hardware generator, the golden model and the analytic models, so
that a format's width and signedness are written down once.
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class DType:
    """A number format.

    Attributes
    ----------
    name : str
        Stable lower-case id (``int8``, ``bf16`` ...), as used on the command line.
    bits : int
        Storage width in bits.
    kind : str
        ``"int"`` or ``"float"``.
    signed : bool
        Two's-complement signed (integers); always True for floats.
    exp_bits, man_bits : int
        Floating point: exponent and stored mantissa (fraction) bits; 0 for integers. The
        exponent bias is ``2**(exp_bits - 1) - 1`` for every format here.
    has_inf : bool
        Floating point: the all-ones exponent encodes Inf (mantissa 0) and NaN (any other
        mantissa), as in IEEE 754. False for OCP fp8 E4M3, which has no Inf and only one NaN
        mantissa (all ones), so that the all-ones exponent still holds finite values.
    block, scale_bits : int
        Block-scaled and group-quantised formats: every ``block`` elements share a scale of
        ``scale_bits`` bits (NVFP4: an FP8 E4M3 scale per 16; MXFP4: an E8M0 scale per 32;
        int4 weights: an fp16 scale and a 4-bit zero point per group of 128). 0: no scale.
    math : str
        Weight-only formats: the dtype the GEMM's math (and its activation operand) runs in;
        the weights are read at :attr:`storage_bits` and dequantised on the fly. Empty for
        every other format.
    """

    name: str
    bits: int
    kind: str
    signed: bool
    exp_bits: int = 0
    man_bits: int = 0
    has_inf: bool = True
    block: int = 0
    scale_bits: int = 0
    math: str = ""

    @property
    def storage_bits(self) -> float:
        """Bits an element takes in memory with its share of the block scales (NVFP4 4.5,
        MXFP4 4.25, int4 with group-128 scales 4.156; the unscaled formats their width,
        TF32 stored as 32)."""
        if self.block:
            return self.bits + self.scale_bits / self.block
        return 8.0 * self.bytes

    @property
    def storage_bytes(self) -> float:
        """Bytes an element takes in memory, scales included (:attr:`storage_bits` / 8):
        fractional for the 4-bit formats, :attr:`bytes` for the others."""
        return self.storage_bits / 8

    @property
    def weight_only(self) -> bool:
        """Whether only the weights are stored in this format (math in :attr:`math`)."""
        return bool(self.math)

    @property
    def bytes(self) -> int:
        """Bytes an element occupies in memory: the bits rounded up to a power-of-two byte
        count (TF32's 19 bits are stored in 4 bytes, as fp32)."""
        return 1 << max(0, (self.bits - 1).bit_length() - 3)

    @property
    def min_int(self) -> int:
        if self.kind != "int":
            raise TypeError(f"{self.name} is not an integer format")
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        if self.kind != "int":
            raise TypeError(f"{self.name} is not an integer format")
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def code_range(self) -> tuple[int, int]:
        """(lowest, highest) integer that carries a value of this format to the hardware:
        the values themselves for integers, the raw bit patterns for floating point."""
        if self.kind == "float":
            return 0, (1 << self.bits) - 1
        return self.min_int, self.max_int

    @property
    def product_bits(self) -> int:
        """Width that holds any product of two values of this format exactly."""
        return 2 * self.bits

    @property
    def bias(self) -> int:
        """Floating point: the exponent bias."""
        if self.kind != "float":
            raise TypeError(f"{self.name} is not a floating-point format")
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def numpy_type(self) -> type:
        """The numpy scalar type of this floating-point format (``ml_dtypes`` for the
        8- and 16-bit formats numpy lacks); values and raw bits convert through it."""
        types = {"fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
                 "fp16": np.float16, "bf16": ml_dtypes.bfloat16, "fp32": np.float32,
                 # the block-scaled FP4 formats' elements (their scales are separate tensors)
                 "nvfp4": ml_dtypes.float4_e2m1fn, "mxfp4": ml_dtypes.float4_e2m1fn}
        if self.name not in types:
            raise TypeError(f"{self.name} has no numpy type here (formats with one: {', '.join(types)})")
        return types[self.name]


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("int8", 8, "int", True),
        DType("uint8", 8, "int", False),
        DType("int16", 16, "int", True),
        # OCP 8-bit floating point (OFP8) v1.0, 2023: E4M3 (no Inf, NaN = S.1111.111, max
        # 448) and E5M2 (IEEE-like); IEEE 754 binary16; bfloat16; TF32 (NVIDIA); binary32.
        DType("fp8_e4m3", 8, "float", True, 4, 3, has_inf=False),
        DType("fp8_e5m2", 8, "float", True, 5, 2),
        DType("fp16", 16, "float", True, 5, 10),
        DType("bf16", 16, "float", True, 8, 7),
        DType("tf32", 19, "float", True, 8, 10),
        DType("fp32", 32, "float", True, 8, 23),
        # Block-scaled FP4, E2M1 elements (max 6, no Inf or NaN): NVFP4 (NVIDIA Blackwell: an
        # FP8 E4M3 scale per 16 elements and an fp32 scale per tensor, negligible here) and
        # MXFP4 (OCP Microscaling Formats v1.0, 2023: an E8M0 power-of-two scale per 32).
        DType("nvfp4", 4, "float", True, 2, 1, has_inf=False, block=16, scale_bits=8),
        DType("mxfp4", 4, "float", True, 2, 1, has_inf=False, block=32, scale_bits=8),
        # Weight-only quantisation: weights stored narrow, dequantised to bf16 for the math.
        # w4a16: int4, an fp16 scale and a 4-bit zero point per group of 128 input channels
        # (AWQ and GPTQ's default group); w8a16: int8 with a scale per output channel
        # (negligible); w8a16_fp8: fp8 E4M3 weights, a scale per channel (FP8 Marlin).
        DType("w4a16", 4, "int", True, block=128, scale_bits=20, math="bf16"),
        DType("w8a16", 8, "int", True, math="bf16"),
        DType("w8a16_fp8", 8, "float", True, 4, 3, has_inf=False, math="bf16"),
    )
}

#: Other spellings of a format: ``fp4`` is NVIDIA's FP4 for inference on Blackwell.
DTYPE_ALIASES = {"fp4": "nvfp4"}
#: The block-scaled 4-bit floating-point formats (Blackwell tensor cores run them natively).
FP4_DTYPES = ("nvfp4", "mxfp4")

#: The accumulator format of integer inputs (not an input format: absent from DTYPES).
INT32 = DType("int32", 32, "int", True)

#: The output format of a GEMM on each input format, as libraries return it: integers
#: accumulate into int32, OCP fp8 into bf16, the others into themselves.
OUTPUT_DTYPE = {"int8": INT32, "uint8": INT32, "int16": INT32, "fp8_e4m3": DTYPES["bf16"], "fp8_e5m2": DTYPES["bf16"],
                "fp16": DTYPES["fp16"], "bf16": DTYPES["bf16"], "tf32": DTYPES["fp32"], "fp32": DTYPES["fp32"],
                "nvfp4": DTYPES["bf16"], "mxfp4": DTYPES["bf16"], "w4a16": DTYPES["bf16"], "w8a16": DTYPES["bf16"],
                "w8a16_fp8": DTYPES["bf16"]}

#: Input formats the hardware generator builds: integers (``IntegerMac``) and the
#: floating-point formats with fp32 accumulation (``FloatMac``).
HARDWARE_DTYPES = ("int8", "uint8", "int16", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2")
FLOAT_ACC_BITS = 32          # floating-point inputs accumulate in IEEE binary32


def canonical_dtype(name: str, *, field: str = "dtype") -> str:
    """The id of a format given by id or alias (``fp4`` -> ``nvfp4``); a bad name raises
    :class:`ConfigError` naming ``field``."""
    name = DTYPE_ALIASES.get(name, name) if isinstance(name, str) else name
    return get_dtype(name, field=field).name


def get_dtype(name: str, *, field: str = "dtype") -> DType:
    """Look up a format by id (or alias: :data:`DTYPE_ALIASES`); a bad id raises
    :class:`ConfigError` naming ``field``."""
    if isinstance(name, str):
        name = DTYPE_ALIASES.get(name, name)
    if not isinstance(name, str) or name not in DTYPES:
        raise ConfigError(field, f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[name]


def math_dtype(name: str) -> str:
    """The dtype a GEMM's math runs in: a weight-only format's :attr:`DType.math`, any other
    format itself."""
    d = get_dtype(name)
    return d.math or d.name


def operand_bytes(name: str) -> tuple[float, float]:
    """Bytes per element of a GEMM's (activation operand A, weight operand B) in ``name``,
    scales included: a weight-only format reads A in its math dtype, every other format
    both in itself."""
    d = get_dtype(name)
    return (get_dtype(d.math).storage_bytes if d.math else d.storage_bytes), d.storage_bytes
