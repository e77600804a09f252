"""The numpy golden model: matrix multiply with the hardware's exact arithmetic.

Written once and imported by the Amaranth tests, the cocotb checker and the model tests.

Floating point (see :class:`systolab.hdl.FloatMac`): operands and results are raw bit
patterns (integers). ``C = init + A @ B`` is a chain of fused multiply-adds in ascending k,
each rounded once to fp32 (round-to-nearest-even). The product of two inputs is exact in
float64; the sum is formed in float64 with *round-to-odd* (the float64 sum, moved to its
odd neighbour when the TwoSum error says it was inexact), which makes the final rounding to
fp32 correct: 53 bits >= 24 + 2 (Boldo and Melquiond, "Emulation of FMA and correctly
rounded sums: proved algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008).
The formats come from ``ml_dtypes``; NaNs become the canonical ``0x7FC00000``.

On the chip (``k_block``, ``k_part``) K is cut into K-blocks and each K-block into K-groups
(split-K, one core each): a K-group's core sums its part of each K-block as such a chain
from +0 and the slice adds it to the group's stored total (stored first, K-blocks in
order); the write-back then adds the groups' totals in a balanced pairwise tree, K-group 0
first (``(T0 + T1) + (T2 + T3)``, :mod:`systolab.hdl.float_add`), each addition rounded
once to fp32.

Semantics (see :class:`systolab.hdl.IntegerMac`): ``C = init + A @ B`` accumulated in
ascending k. ``wrap`` keeps the result modulo 2**acc_bits (two's complement for signed
accumulators), so the order does not matter and int64 arithmetic, itself exact modulo
2**64, gives the exact answer. ``saturate`` clamps to the accumulator's range after every
addition, so it is evaluated step by step in k.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from ..config import AcceleratorConfig
from ..dtypes import DType, get_dtype

FP32 = get_dtype("fp32")


def _as_int_matrix(name: str, x: object) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 2-D integer matrix, not {arr.dtype} with shape {arr.shape}")
    return arr.astype(np.int64)


def wrap_to(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Reduce int64 values modulo 2**bits into the signed or unsigned range."""
    if bits >= 64:
        if signed:
            return values
        return values.astype(object) % (1 << 64)
    mask = (1 << bits) - 1
    out = values & mask
    if signed:
        out = np.where(out >= (1 << (bits - 1)), out - (1 << bits), out)
    return out


CANONICAL_NAN = 0x7FC00000
_STORAGE = {8: np.uint8, 16: np.uint16, 32: np.uint32}    # unsigned integers of a format's width


def decode(bits: object, dtype: DType, *, flush: bool = False) -> np.ndarray:
    """float64 values of raw ``dtype`` bit patterns (subnormals flushed to signed zeros
    with ``flush``)."""
    raw = np.asarray(bits)
    store = _STORAGE[dtype.bits]
    with np.errstate(invalid="ignore"):   # NaN patterns convert to NaN, as they should
        values = raw.astype(np.int64).astype(store).view(dtype.numpy_type).astype(np.float64)
    if flush:
        tiny = float(ml_dtypes.finfo(dtype.numpy_type).smallest_normal)
        values = np.where(np.abs(values) < tiny, np.copysign(0.0, values), values)
    return values


def encode(values: object, dtype: DType) -> np.ndarray:
    """Raw bit patterns (int64) of ``values`` rounded to ``dtype`` (nearest-even)."""
    store = _STORAGE[dtype.bits]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, np.float64).astype(dtype.numpy_type).view(store).astype(np.int64)


def fma_fp32(acc: object, a: object, b: object, dtype: DType, *, flush: bool = False) -> np.ndarray:
    """fp32 bits of ``round(acc + a * b)``, elementwise: ``acc`` raw fp32 bits, ``a`` and
    ``b`` raw ``dtype`` bits (broadcast together)."""
    c = decode(acc, FP32, flush=flush)
    with np.errstate(over="ignore", invalid="ignore"):
        p = decode(a, dtype, flush=flush) * decode(b, dtype, flush=flush)   # exact
        s = c + p
        bv = s - c                                   # TwoSum: err is exactly (c + p) - s
        err = (c - (s - bv)) + (p - bv)
        inexact = np.isfinite(s) & (err != 0)
        even = (s.view(np.int64) & 1) == 0
        s = np.where(inexact & even, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
        out = encode(s, FP32)
    out = np.where(np.isnan(s), CANONICAL_NAN, out)
    if flush:
        tiny = (out & 0x7F800000) == 0
        out = np.where(tiny, out & 0x80000000, out)
    return out


def add_fp32(x: object, y: object, *, flush: bool = False) -> np.ndarray:
    """fp32 bits of ``round(x + y)``, elementwise (raw fp32 bits in and out): the chip's
    fp32 adder (:class:`systolab.hdl.float_add.Fp32Adder`)."""
    return fma_fp32(x, y, encode(1.0, FP32), FP32, flush=flush)


def tree_sum_fp32(parts: list, *, flush: bool = False) -> np.ndarray:
    """The fp32 sum of ``parts`` (raw fp32 bit arrays, K-group 0 first) in the chip's
    split-K order: a balanced pairwise tree, each pair ``parts[2i] + parts[2i+1]`` and
    so on up (:mod:`systolab.hdl.float_add`); an odd one out goes up unchanged."""
    if not parts:
        raise ValueError("tree_sum_fp32 needs at least one part")
    level = list(parts)
    while len(level) > 1:
        level = [add_fp32(level[i], level[i + 1], flush=flush) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return np.asarray(level[0])


def _float_chain(A: np.ndarray, B: np.ndarray, acc: np.ndarray, k0: int, k1: int, dt: DType,
                 flush: bool) -> np.ndarray:
    for k in range(k0, k1):
        acc = fma_fp32(acc, A[:, k][:, None], B[k, :][None, :], dt, flush=flush)
    return acc


def _check_init(C0: np.ndarray) -> None:
    if C0.size and (C0.min() < 0 or C0.max() >= 1 << 32):
        raise ValueError("init must hold raw fp32 bit patterns, 0..4294967295")


def _k_group_sums(A: np.ndarray, B: np.ndarray, config: AcceleratorConfig, C0: np.ndarray,
                  k_block: int | None, k_part: int | None) -> list[np.ndarray]:
    """Per K-group (``k_part`` of each K-block), its fp32 total in the chip's order: a chain
    per K-block from +0 (from ``C0`` with one K-group), added to the group's running total,
    stored sum first; a K-group with nothing of a K-block adds nothing."""
    dt, flush = config.input_dtype, config.subnormals == "flush"
    K = A.shape[1]
    step = K if k_block is None else k_block
    part = max(step, 1) if k_part is None else k_part
    groups = max(1, -(-min(step, K) // part))
    if groups > 1 and np.any(C0):
        raise ValueError("init must be zero with split-K (k_part below k_block)")
    totals: list = [None] * groups
    for k0 in range(0, max(K, 1), step):
        k_end = min(K, k0 + step)
        for g in range(groups):
            lo, hi = k0 + g * part, min(k_end, k0 + (g + 1) * part)
            if lo >= hi and (k0 or K):          # this K-group has nothing of this K-block
                continue
            start = C0 if k0 == 0 and groups == 1 else np.zeros_like(C0)
            acc = _float_chain(A, B, start, lo, hi, dt, flush)
            totals[g] = acc if totals[g] is None else add_fp32(totals[g], acc, flush=flush)
    return [C0 if t is None else t for t in totals]


def k_group_sums(a: object, b: object, config: AcceleratorConfig, *, k_block: int | None = None,
                 k_part: int | None = None) -> list[np.ndarray]:
    """Floating point on the chip: the fp32 totals (raw bits) that the K-groups' cores hold
    when a block is written back, K-group 0 first (``k_block`` and ``k_part`` as for
    :func:`golden_matmul`); :func:`tree_sum_fp32` of them is the result."""
    A, B = _as_int_matrix("a", a), _as_int_matrix("b", b)
    if not config.is_float:
        raise ValueError(f"k_group_sums is for floating-point cores, not {config.input_dtype.name}")
    _check_split(A, B, k_block, k_part)
    return _k_group_sums(A, B, config, np.zeros((A.shape[0], B.shape[1]), np.int64), k_block, k_part)


def _check_split(A: np.ndarray, B: np.ndarray, k_block: object, k_part: object) -> None:
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"a is {A.shape} and b is {B.shape}: inner dimensions differ")
    for name, v in (("k_block", k_block), ("k_part", k_part)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive integer, not {v!r}")


def _float_matmul(A: np.ndarray, B: np.ndarray, config: AcceleratorConfig, C0: np.ndarray,
                  k_block: int | None, k_part: int | None) -> np.ndarray:
    """The chip's order: each K-group's total (:func:`_k_group_sums`), then the groups'
    totals added in the split-K tree."""
    _check_init(C0)
    return tree_sum_fp32(_k_group_sums(A, B, config, C0, k_block, k_part), flush=config.subnormals == "flush")


def show_value(value: int | np.integer | None, config: AcceleratorConfig) -> str:
    """An accumulator value as a message shows it: integers as they are, fp32 bit patterns
    in hex with the number they encode."""
    if value is None or not config.is_float:
        return str(value)
    return f"0x{int(value):08x} ({float(decode(np.array([value]), FP32)[0]):.9g})"


def golden_matmul(a: object, b: object, config: AcceleratorConfig, init: object | None = None, *,
                  k_block: int | None = None, k_part: int | None = None) -> np.ndarray:
    """Expected accumulator values of ``init + a @ b`` on hardware described by ``config``.

    Parameters
    ----------
    a : (M, K) integer matrix, values in the input format's range (floating point: raw bit
        patterns of the format).
    b : (K, N) integer matrix, likewise.
    config : AcceleratorConfig
        Supplies ``dtype``, ``acc_bits`` and ``overflow``.
    init : (M, N) integer matrix, optional
        Initial accumulator values (within the accumulator's range; floating point: raw
        fp32 bits); zero (+0.0) by default.
    k_block : int, optional
        Floating point on the chip: K is summed in blocks of this many, each block's fp32
        chain from +0 and then added to the running sums (the chip's K-block order). The
        integer results do not depend on it (wrap-around is exact modulo 2**acc_bits).
    k_part : int, optional
        Floating point on the chip, split-K: each K-block is cut into K-groups of this many
        (the blocking's ``kc``; the last may be shorter); each K-group sums its parts of
        the K-blocks as above, and the groups' totals are added in the chip's pairwise
        tree (:func:`tree_sum_fp32`). ``init`` must then be zero.

    Returns
    -------
    numpy.ndarray
        (M, N) int64 matrix (object dtype for unsigned 64-bit accumulators).
    """
    A, B = _as_int_matrix("a", a), _as_int_matrix("b", b)
    _check_split(A, B, k_block, k_part)
    M, N = A.shape[0], B.shape[1]
    C0 = np.zeros((M, N), np.int64) if init is None else _as_int_matrix("init", init)
    if C0.shape != (M, N):
        raise ValueError(f"init must have shape {(M, N)}, not {C0.shape}")
    dt = config.input_dtype
    lo, hi = dt.code_range
    for name, arr in (("a", A), ("b", B)):
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"{name} must hold raw {dt.name} bit patterns, {lo}..{hi}" if config.is_float
                             else f"{name} holds values outside the {dt.name} range {lo}..{hi}")
    if config.is_float:
        return _float_matmul(A, B, config, C0, k_block, k_part)
    bits, signed = config.acc_bits, config.acc_signed
    if config.overflow == "wrap":
        return wrap_to(C0 + A @ B, bits, signed)
    lo, hi = config.acc_min, config.acc_max
    # Python ints avoid int64 overflow of acc + product for accumulators wider than 62 bits.
    acc = C0.astype(object) if bits > 62 else C0.copy()
    for k in range(A.shape[1]):
        acc = np.clip(acc + np.outer(A[:, k], B[k, :]), lo, hi)
    return acc
