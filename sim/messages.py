"""Plans and results as frozen dataclasses that travel as JSON, the same way for every bench.

A plan is written to a file for the cocotb process and its result read back; the array,
core and chip benches all use :class:`Message` for both. Kept light: the cocotb process
imports it.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Self

import numpy as np


@dataclass(frozen=True)
class Message:
    """Base of every plan and result.

    Fields hold JSON data (numbers, strings, lists and dicts of them) or other messages,
    also in a list or optional; :meth:`from_dict` rebuilds the nested messages from the
    field annotations. Fields that hold no message (operands, C matrices) pass through as
    they are, uncopied and unvisited: a chip plan's operands are a million integers.
    """

    def to_dict(self) -> dict[str, Any]:
        hints = _hints(type(self))
        return {f.name: _encode(getattr(self, f.name)) if _holds_message(hints[f.name]) else getattr(self, f.name)
                for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        hints = _hints(cls)
        return cls(**{f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(cls)
                      if f.init and f.name in data})

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """``cls``'s field annotations, resolved once."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


@functools.cache
def _holds_message(hint: Any) -> bool:
    """Whether the annotation ``hint`` names a :class:`Message`, at any depth."""
    if isinstance(hint, type) and issubclass(hint, Message):
        return True
    return any(_holds_message(a) for a in typing.get_args(hint))


def _encode(value: Any) -> Any:
    """``value`` as JSON data: messages as dicts, in lists, tuples and dicts too."""
    if isinstance(value, Message):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def decode(hint: Any, value: Any) -> Any:
    """``value`` (JSON data) as the annotation ``hint`` wants it: messages rebuilt, in lists
    and optionals too; anything else as it is."""
    if value is None or not _holds_message(hint):
        return value
    if isinstance(hint, type) and issubclass(hint, Message):
        return hint.from_dict(value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and args:
        return [decode(args[0], v) for v in value]
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return decode(inner[0], value) if len(inner) == 1 else value
    return value


@dataclass(frozen=True)
class Matrices(Message):
    """The operands of one product C = A @ B, as integer lists (row-major)."""

    a: list[list[int]]
    b: list[list[int]]

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> Matrices:
        return cls(a.tolist(), b.tolist())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) as int64 arrays."""
        return np.array(self.a, dtype=np.int64), np.array(self.b, dtype=np.int64)
