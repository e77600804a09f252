"""The numpy golden model: integer matrix multiply with the hardware's exact overflow rules.

Written once and imported by the Amaranth tests, the cocotb checker and the model tests.

Semantics (see :class:`systolab.hdl.IntegerMac`): ``C = init + A @ B`` accumulated in
ascending k. ``wrap`` keeps the result modulo 2**acc_bits (two's complement for signed
accumulators), so the order does not matter and int64 arithmetic, itself exact modulo
2**64, gives the exact answer. ``saturate`` clamps to the accumulator's range after every
addition, so it is evaluated step by step in k.
"""
from __future__ import annotations

import numpy as np

from ..config import AcceleratorConfig


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


def golden_matmul(a: object, b: object, config: AcceleratorConfig, init: object | None = None) -> np.ndarray:
    """Expected accumulator values of ``init + a @ b`` on hardware described by ``config``.

    Parameters
    ----------
    a : (M, K) integer matrix, values in the input format's range.
    b : (K, N) integer matrix, likewise.
    config : AcceleratorConfig
        Supplies ``dtype``, ``acc_bits`` and ``overflow``.
    init : (M, N) integer matrix, optional
        Initial accumulator values (within the accumulator's range); zero by default.

    Returns
    -------
    numpy.ndarray
        (M, N) int64 matrix (object dtype for unsigned 64-bit accumulators).
    """
    A, B = _as_int_matrix("a", a), _as_int_matrix("b", b)
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"a is {A.shape} and b is {B.shape}: inner dimensions differ")
    dt = config.input_dtype
    for name, arr in (("a", A), ("b", B)):
        if arr.size and (arr.min() < dt.min_int or arr.max() > dt.max_int):
            raise ValueError(f"{name} holds values outside the {dt.name} range {dt.min_int}..{dt.max_int}")
    M, N = A.shape[0], B.shape[1]
    C0 = np.zeros((M, N), np.int64) if init is None else _as_int_matrix("init", init)
    if C0.shape != (M, N):
        raise ValueError(f"init must have shape {(M, N)}, not {C0.shape}")
    bits, signed = config.acc_bits, config.acc_signed
    if config.overflow == "wrap":
        return wrap_to(C0 + A @ B, bits, signed)
    lo, hi = config.acc_min, config.acc_max
    # Python ints avoid int64 overflow of acc + product for accumulators wider than 62 bits.
    acc = C0.astype(object) if bits > 62 else C0.copy()
    for k in range(A.shape[1]):
        acc = np.clip(acc + np.outer(A[:, k], B[k, :]), lo, hi)
    return acc
