"""Parameter checks shared by every public function and command.

Each check takes the parameter's name as the user spells it, accepts what a user
naturally passes (numpy integers and floats included, never ``bool``), rejects what
would break a model later (``inf``, ``nan``, out-of-range values, 300-digit integers),
and raises :class:`~systolab.errors.UserError` naming the parameter.
"""
from __future__ import annotations

import datetime as dt
import math
import numbers
from typing import Any

from .errors import UserError

#: Largest GEMM dimension or count the models accept (beyond it, nothing is meaningful
#: and integer arithmetic in numpy would overflow).
MAX_DIM = 2**31 - 1
#: Seeds go to numpy's generators, which take non-negative integers.
MAX_SEED = 2**63 - 1


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, lo: int = 1, hi: int = MAX_DIM) -> int:
    """``value`` as an ``int`` in ``lo..hi``."""
    if not is_int(value):
        raise UserError(f"{name}: must be an integer in {lo}..{hi}, not {value!r}", parameter=name)
    v = int(value)
    if not lo <= v <= hi:
        shown = v if abs(v) < 10**12 else f"a {len(str(abs(v)))}-digit number"
        raise UserError(f"{name}: must be in {lo}..{hi}, not {shown}", parameter=name)
    return v


def check_seed(name: str, value: Any) -> int:
    return check_int(name, value, lo=0, hi=MAX_SEED)


def check_real(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a finite ``float`` within the bounds (open or closed)."""
    if not is_real(value):
        raise UserError(f"{name}: must be a number, not {value!r}", parameter=name)
    try:
        v = float(value)
    except OverflowError:          # an integer beyond any float
        v = math.inf if value > 0 else -math.inf
    if not math.isfinite(v):
        raise UserError(f"{name}: must be a finite number, not {v}", parameter=name)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise UserError(f"{name}: must be {'>' if lo_open else '>='} {lo:g}, not {v:g}", parameter=name)
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise UserError(f"{name}: must be {'<' if hi_open else '<='} {hi:g}, not {v:g}", parameter=name)
    return v


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    return check_real(name, value, lo=0.0, lo_open=True)


def check_nonnegative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    return check_real(name, value, lo=0.0)


def check_choice(name: str, value: Any, choices) -> str:
    if value not in tuple(choices):
        raise UserError(f"{name}: must be one of {', '.join(map(str, choices))}, not {value!r}", parameter=name)
    return value


def check_date(name: str, value: Any) -> dt.date:
    """A date, or one written ``YYYY-MM-DD``; anything else names ``name``."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise UserError(f"{name}: expected YYYY-MM-DD (a date), not {value!r}", parameter=name)


def check_kind(name: str, value: Any, attributes: tuple[str, ...], what: str) -> Any:
    """``value`` if it has the ``attributes`` of the kind of object expected (a chip, a GPU
    spec ...: checked by what it offers, since the lower layers cannot import the class);
    else a ``TypeError`` saying ``name must be <what>``, raised here and not from deep
    inside a model."""
    if isinstance(value, (str, bytes)) or not all(hasattr(value, a) for a in attributes):
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
    return value


def check_iterable(name: str, value: Any, what: str) -> Any:
    """``value`` if it is a list, tuple or other iterable of items (not text); else a
    ``TypeError`` saying ``name must be <what>``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
    return value


def check_numeric(name: str, value: Any) -> Any:
    """``value`` if it is a number or an array-like of numbers (what numpy turns into
    floats); else a ``TypeError`` saying ``name must be a number or an array of numbers``."""
    if isinstance(value, (str, bytes, bool)):
        raise TypeError(f"{name} must be a number or an array of numbers, not {type(value).__name__}")
    if isinstance(value, numbers.Real):
        return value
    try:
        import numpy as np  # noqa: PLC0415  lazy: the base layer imports numpy only when it checks an array

        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, not {type(value).__name__}") from None
    return value


def check_callable(name: str, value: Any, what: str) -> Any:
    """``value`` if it can be called; else a ``TypeError`` saying ``name must be <what>``."""
    if not callable(value):
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
    return value


def check_chip(name: str, value: Any) -> Any:
    """``value`` if it is a chip (a ``ChipConfig``, e.g. ``systolab.get_chip(...)``); else a ``TypeError``."""
    return check_kind(name, value, ("core", "cores", "node", "dram", "clock_mhz"), "a ChipConfig (systolab.get_chip)")


def check_core(name: str, value: Any) -> Any:
    """``value`` if it is a core's ``AcceleratorConfig``; else a ``TypeError``."""
    return check_kind(name, value, ("rows", "cols", "dataflow", "dtype", "beat_bytes"),
                      "an AcceleratorConfig (systolab.AcceleratorConfig)")


def check_gpu_spec(name: str, value: Any) -> Any:
    """``value`` if it is a ``GpuSpec`` (``systolab.get_gpu``); else a ``TypeError``."""
    return check_kind(name, value, ("peak_dense_tflops", "die_area_mm2", "price"), "a GpuSpec (systolab.get_gpu)")
