"""Loading and validating the project's data files (YAML), with errors that name the
file and the field."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from ..files import is_user_file, read_text

DATA_DIR = Path(__file__).resolve().parent / "data"


class SpecError(UserError):
    """A data file is malformed; the message names the file and the field."""

    def __init__(self, path: str | Path, field: str, message: str):
        self.path, self.field = str(path), field
        super().__init__(f"{path}: {field}: {message}")


@cache
def _load_cached(path: str, mtime_ns: int) -> Any:
    try:
        return yaml.safe_load(read_text(path, parameter="file"))
    except SpecError:
        raise
    except UserError as exc:
        raise SpecError(path, "(file)", str(exc).split(": ", 1)[-1]) from None
    except yaml.YAMLError as exc:
        raise SpecError(path, "(file)", f"cannot parse YAML: {' '.join(str(exc).split())}") from None


def load_yaml(path: str | Path) -> Any:
    if not is_user_file(path, parameter="file"):       # the checked opener: over-long names, /proc, folders
        raise SpecError(path, "(file)", "no such file")
    path = Path(path)
    return _load_cached(str(path), path.stat().st_mtime_ns)


def need(path: str | Path, where: str, data: Mapping, key: str, kind: type | tuple = object,
         *, positive: bool = False, optional: bool = False) -> Any:
    """``data[key]`` checked for type (and > 0 for numbers when ``positive``)."""
    if not isinstance(data, Mapping):
        raise SpecError(path, where, f"must be a table, not {type(data).__name__}")
    field = f"{where}.{key}" if where else key
    if key not in data or data[key] is None:
        if optional:
            return None
        raise SpecError(path, field, "missing")
    value = data[key]
    if kind in (int, float, (int, float)):
        if isinstance(value, bool) or not isinstance(value, int if kind is int else (int, float)):
            raise SpecError(path, field, f"must be {'an integer' if kind is int else 'a number'}, not {value!r}")
        if positive and not value > 0:
            raise SpecError(path, field, f"must be > 0, not {value!r}")
        return value
    if kind is not object and not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SpecError(path, field, f"must be a {name}, not {value!r}")
    return value


#: The distributions an uncertain figure may be drawn from (the project's schema).
SHAPES = ("fixed", "uniform", "triangular", "pert", "lognormal")


@dataclass(frozen=True)
class UncertainFigure:
    """An uncertain input of a data file, ``{value, low, high, source, shape?}``: its value,
    its range, the distribution shape a Monte Carlo draws it from, and its source (units in
    the input's name)."""

    value: float
    low: float
    high: float
    source: str
    shape: str = "triangular"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "source": self.source, "shape": self.shape}


def uncertain_figure(path: str | Path, where: str, d: Any, *, range_optional: bool = False,
                     positive: bool = False) -> UncertainFigure:
    """``d`` read as an :class:`UncertainFigure`, every field checked (errors name the file
    and field). With ``range_optional`` a missing ``low``/``high`` is the value itself."""
    num = (int, float)
    value = need(path, where, d, "value", num, positive=positive)
    low = need(path, where, d, "low", num, optional=range_optional)
    high = need(path, where, d, "high", num, optional=range_optional)
    low, high = value if low is None else low, value if high is None else high
    source = " ".join(need(path, where, d, "source", str).split())
    shape = need(path, where, d, "shape", str, optional=True) or "triangular"
    if not source:
        raise SpecError(path, f"{where}.source", "must name where the figure comes from")
    if shape not in SHAPES:
        raise SpecError(path, f"{where}.shape", f"must be one of {', '.join(SHAPES)}, not {shape!r}")
    if low > high:
        raise SpecError(path, where, f"low ({low}) > high ({high}): an empty range")
    if not low <= value <= high:
        raise SpecError(path, where, f"needs low <= value <= high, not {low}, {value}, {high}")
    return UncertainFigure(float(value), float(low), float(high), source, shape)
