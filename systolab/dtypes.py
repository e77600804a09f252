"""Number formats known to systolab.

One table, shared by the hardware generator, the golden model and the analytic models, so
that a format's width and signedness are written down once.
"""
from __future__ import annotations

from dataclasses import dataclass

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
    """

    name: str
    bits: int
    kind: str
    signed: bool

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
    def product_bits(self) -> int:
        """Width that holds any product of two values of this format exactly."""
        return 2 * self.bits


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("int8", 8, "int", True),
        DType("uint8", 8, "int", False),
        DType("int16", 16, "int", True),
        DType("fp8_e4m3", 8, "float", True),
        DType("fp8_e5m2", 8, "float", True),
        DType("fp16", 16, "float", True),
        DType("bf16", 16, "float", True),
        DType("tf32", 19, "float", True),
        DType("fp32", 32, "float", True),
    )
}

#: Formats the hardware generator can build today. Floating-point MAC units plug into the
#: same processing element later (see ``systolab.hdl.mac``).
HARDWARE_DTYPES = ("int8", "uint8", "int16")


def get_dtype(name: str, *, field: str = "dtype") -> DType:
    """Look up a format by id; a bad id raises :class:`ConfigError` naming ``field``."""
    if not isinstance(name, str) or name not in DTYPES:
        raise ConfigError(field, f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[name]
