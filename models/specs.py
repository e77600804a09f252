"""Loading and validating the project's data files (YAML), with errors that name the
file and the field."""
from __future__ import annotations

from collections.abc import Mapping
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
