"""The one configuration object that drives the RTL, the testbench and the models.

:class:`AcceleratorConfig` describes one accelerator core. It is frozen, validated on
construction (an error names the field and the bad value), hashable by content
(:attr:`AcceleratorConfig.config_hash`, SHA-256 over canonical JSON, never Python's
``hash()``), and loads from TOML, YAML, plain dicts or command-line flags.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .checks import is_int, is_real
from .dtypes import FLOAT_ACC_BITS, HARDWARE_DTYPES, DType, get_dtype
from .errors import ConfigError, UserError
from .files import read_text

DATAFLOWS = ("os", "ws")
OVERFLOW_MODES = ("wrap", "saturate")
SUBNORMAL_MODES = ("keep", "flush")
MAX_ARRAY_DIM = 64
MAX_ACC_BITS = 64
BEAT_BYTES = (2, 4, 8, 16, 32, 64)
MAX_CHUNK = 1 << 15       # K-chunk / M-block limit (the controller's 16-bit counters)
MAX_MAC_STAGES = 7        # pipeline stages of the floating-point MAC (hdl.float_mac.CUTS)


#: Fields added after the first release, with their defaults: omitted from the canonical
#: JSON at those defaults so that configuration ids (caches, resumable sweeps) stay stable.
_LATER_FIELDS: dict[str, Any] = {"subnormals": "keep", "mac_stages": 1}


def hash_once(self) -> int:
    """A frozen config's hash, computed once: configs key the models' caches, and hashing
    every field at each lookup dominated the mapper's time. (``__getstate__`` below keeps
    it out of pickles: string hashes differ between processes.)"""
    h = self.__dict__.get("_hash")
    if h is None:
        h = hash(tuple(getattr(self, f.name) for f in fields(self)))
        object.__setattr__(self, "_hash", h)
    return h


def state_without_hash(self) -> dict:
    return {k: v for k, v in self.__dict__.items() if k != "_hash"}


def _check_kib(field: str, value: Any) -> float:
    if not is_real(value) or not 0 < value <= 1 << 20:
        raise ConfigError(field, f"must be a buffer size in KiB, > 0 and <= 1048576, not {value!r}")
    return float(value)


def _check_int(field: str, value: Any, lo: int, hi: int) -> int:
    if not is_int(value):
        raise ConfigError(field, f"must be an integer in {lo}..{hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(field, f"must be in {lo}..{hi}, not {value if abs(value) < 10**12 else 'a huge number'}")
    return int(value)


def _check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(field, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


@dataclass(frozen=True)
class AcceleratorConfig:
    """One accelerator core: a ``rows`` x ``cols`` systolic array and its arithmetic.

    Parameters
    ----------
    rows, cols : int
        Array height and width in processing elements, each 1..64, independently.
    dataflow : str
        ``"os"`` (output-stationary: each PE owns one output element, A and B stream in)
        or ``"ws"`` (weight-stationary: each PE holds one weight, A streams in, partial
        sums flow down the columns).
    dtype : str
        Input format: ``int8``, ``uint8`` or ``int16`` (integer accumulation), or ``bf16``,
        ``fp16``, ``fp8_e4m3``, ``fp8_e5m2`` (fp32 accumulation, see :class:`FloatMac`).
    acc_bits : int
        Integers: accumulator width in bits, at least the product width (2 x input bits)
        and at most 64; signed for signed inputs and unsigned for ``uint8``. Floating
        point: 32 (IEEE binary32), the only width built.
    overflow : str
        Integers: ``"wrap"`` (two's-complement wrap-around, i.e. modulo 2**acc_bits) or
        ``"saturate"`` (clamp to the accumulator range after every addition). Floating
        point: ``"wrap"`` only, which there means IEEE overflow to ±Inf.
    subnormals : str
        Floating point: ``"keep"`` (IEEE gradual underflow) or ``"flush"`` (subnormal
        inputs, accumulators and results count as zeros of their sign). Integers: ``"keep"``.
    mac_stages : int
        Floating point: pipeline stages of the fused multiply-add, 1..7 (default 1: one
        combinational stage, as before). With S > 1 every PE still takes one operand pair
        per cycle: output-stationary arrays interleave S row groups (an output tile of
        S x ``rows`` rows, each PE keeps S accumulators), weight-stationary arrays let a
        partial sum take S cycles per row of PEs (see :mod:`systolab.hdl.array`).
        Integers: 1.
    beat_bytes : int
        Width of one external-memory data beat in bytes (2..64, a power of two, at least
        one input element).
    a_buffer_kib, b_buffer_kib, acc_buffer_kib : float
        On-chip SRAM of the core, in KiB, each holding two banks (double buffering) except
        the accumulators. Output-stationary: A and B hold ``rows`` / ``cols`` lanes of a
        K-chunk each (:attr:`k_chunk` = the largest multiple of a beat that fits both);
        the accumulators live in the PEs, so ``acc_buffer_kib`` is unused. Weight-
        stationary: A holds an M-block of :attr:`tile_m` rows of ``rows`` elements, B one
        ``rows`` x ``cols`` weight tile per bank, and the accumulator buffer ``tile_m``
        rows of ``cols`` partial sums (the K-tiles of an output block accumulate there).

    Raises
    ------
    ConfigError
        A field is missing, unknown or out of range; the message names it.
    """

    rows: int = 4
    cols: int = 4
    dataflow: str = "os"
    dtype: str = "int8"
    acc_bits: int = 32
    overflow: str = "wrap"
    beat_bytes: int = 16
    a_buffer_kib: float = 8.0
    b_buffer_kib: float = 8.0
    acc_buffer_kib: float = 16.0
    subnormals: str = "keep"
    mac_stages: int = 1

    __hash__ = hash_once
    __getstate__ = state_without_hash

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "acc_bits", "beat_bytes", "mac_stages"):
            value = getattr(self, name)
            if is_int(value):      # numpy integers become plain ints (canonical JSON, hashing)
                object.__setattr__(self, name, int(value))
        _check_int("rows", self.rows, 1, MAX_ARRAY_DIM)
        _check_int("cols", self.cols, 1, MAX_ARRAY_DIM)
        _check_choice("dataflow", self.dataflow, DATAFLOWS)
        get_dtype(self.dtype)
        if self.dtype not in HARDWARE_DTYPES:
            raise ConfigError(
                "dtype",
                f"{self.dtype!r} has no hardware MAC yet; choose one of {', '.join(HARDWARE_DTYPES)}",
            )
        _check_choice("overflow", self.overflow, OVERFLOW_MODES)
        _check_choice("subnormals", self.subnormals, SUBNORMAL_MODES)
        _check_int("mac_stages", self.mac_stages, 1, MAX_MAC_STAGES)
        if self.is_float:
            if self.acc_bits != FLOAT_ACC_BITS:
                raise ConfigError("acc_bits", f"{self.dtype} accumulates in fp32: must be {FLOAT_ACC_BITS}, "
                                              f"not {self.acc_bits!r}")
            if self.overflow != "wrap":
                raise ConfigError("overflow", f"{self.dtype} overflows to ±Inf as IEEE 754 does: leave it at "
                                              f"'wrap'; 'saturate' is for integer formats")
        else:
            _check_int("acc_bits", self.acc_bits, self.input_dtype.product_bits, MAX_ACC_BITS)
            if self.subnormals != "keep":
                raise ConfigError("subnormals", f"applies to floating-point formats only; {self.dtype} "
                                                f"takes 'keep', not {self.subnormals!r}")
            if self.mac_stages != 1:
                raise ConfigError("mac_stages", f"pipelines the floating-point MAC only; {self.dtype} "
                                                f"takes 1, not {self.mac_stages!r}")
        eb = self.input_bytes
        if self.beat_bytes not in BEAT_BYTES or self.beat_bytes < eb:
            raise ConfigError("beat_bytes", f"must be a power of two in 2..64 and >= {eb}, not {self.beat_bytes!r}")
        for name in ("a_buffer_kib", "b_buffer_kib", "acc_buffer_kib"):
            object.__setattr__(self, name, _check_kib(name, getattr(self, name)))  # 8 and 8.0 hash alike
        self._check_buffers()

    def _check_buffers(self) -> None:
        per_beat = self.beat_bytes // self.input_bytes
        if self.dataflow == "os":
            for name, lanes in (("a_buffer_kib", self.tile_m), ("b_buffer_kib", self.cols)):
                if self._bytes(name) // (2 * lanes * self.input_bytes) < per_beat:
                    raise ConfigError(name, f"{getattr(self, name):g} KiB cannot hold two banks of {lanes} lanes "
                                            f"of one {self.beat_bytes}-byte beat")
            return
        if self._bytes("a_buffer_kib") // (2 * self.rows * self.input_bytes) < 1:
            raise ConfigError("a_buffer_kib", f"{self.a_buffer_kib:g} KiB cannot hold two banks of one "
                                              f"{self.rows}-element row")
        need = 2 * self.cols * self.weight_words * self.beat_bytes
        if self._bytes("b_buffer_kib") < need:
            raise ConfigError("b_buffer_kib", f"{self.b_buffer_kib:g} KiB cannot hold two banks of a "
                                              f"{self.rows}x{self.cols} weight tile ({need} bytes)")
        if self._bytes("acc_buffer_kib") // (self.cols * self.acc_bytes) < 1:
            raise ConfigError("acc_buffer_kib", f"{self.acc_buffer_kib:g} KiB cannot hold one row of "
                                                f"{self.cols} accumulators")

    def _bytes(self, name: str) -> int:
        return int(getattr(self, name) * 1024)

    # -- derived, read-only -------------------------------------------------------------
    @property
    def input_dtype(self) -> DType:
        return get_dtype(self.dtype)

    @property
    def is_float(self) -> bool:
        return self.input_dtype.kind == "float"

    @property
    def acc_signed(self) -> bool:
        """Whether memory and ports hold the accumulator as a signed integer (floats travel
        as raw, unsigned bit patterns)."""
        return self.input_dtype.signed and not self.is_float

    @property
    def acc_min(self) -> int:
        return -(1 << (self.acc_bits - 1)) if self.acc_signed else 0

    @property
    def acc_max(self) -> int:
        return (1 << (self.acc_bits - 1)) - 1 if self.acc_signed else (1 << self.acc_bits) - 1

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols

    @property
    def buffer_kib(self) -> float:
        """On-chip SRAM of the core in KiB: A and B buffers, and the accumulator buffer
        for weight-stationary (output-stationary keeps its sums in the PEs)."""
        return self.a_buffer_kib + self.b_buffer_kib + (self.acc_buffer_kib if self.dataflow == "ws" else 0.0)

    @property
    def input_bytes(self) -> int:
        return self.input_dtype.bytes

    @property
    def acc_bytes(self) -> int:
        """Bytes of one accumulator value in memory (C is written at this width)."""
        return (self.acc_bits + 7) // 8

    @property
    def elements_per_beat(self) -> int:
        return self.beat_bytes // self.input_bytes

    @property
    def weight_words(self) -> int:
        """Memory beats per B lane of one weight tile (weight-stationary)."""
        return -(-self.rows // self.elements_per_beat)

    @property
    def k_chunk(self) -> int:
        """K elements per buffered chunk: the buffers' size for OS, ``rows`` for WS."""
        if self.dataflow == "ws":
            return self.rows
        eb, per_beat = self.input_bytes, self.elements_per_beat
        fit = min(self._bytes("a_buffer_kib") // (2 * self.tile_m * eb), self._bytes("b_buffer_kib") // (2 * self.cols * eb))
        return min(fit, MAX_CHUNK) // per_beat * per_beat

    @property
    def tile_m(self) -> int:
        """Output rows per tile: ``rows`` x ``mac_stages`` for OS (the row groups a pipelined
        MAC interleaves); for WS the M-block the A and accumulator buffers hold."""
        if self.dataflow == "os":
            return self.rows * self.mac_stages
        fit = min(self._bytes("a_buffer_kib") // (2 * self.rows * self.input_bytes),
                  self._bytes("acc_buffer_kib") // (self.cols * self.acc_bytes))
        return min(fit, MAX_CHUNK)

    # -- identity -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fields; ``mac_stages`` only where it is not 1, so that every design's
        dictionary (JSON outputs, manifests, cache keys) stays as it was before it existed."""
        d = asdict(self)
        if d["mac_stages"] == 1:
            del d["mac_stages"]
        return d

    def canonical_json(self) -> str:
        d = self.to_dict()
        for name, default in _LATER_FIELDS.items():  # at their default they keep earlier ids
            if d.get(name, default) == default:
                d.pop(name, None)
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        """SHA-256 (hex, first 16 digits) of the canonical JSON: stable across runs."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        """Short human-readable id, e.g. ``os_4x4_int8_acc32_wrap``."""
        if self.is_float:
            ftz = "_ftz" if self.subnormals == "flush" else ""
            stages = f"_s{self.mac_stages}" if self.mac_stages > 1 else ""
            return f"{self.dataflow}_{self.rows}x{self.cols}_{self.dtype}_fp32acc{ftz}{stages}"
        return f"{self.dataflow}_{self.rows}x{self.cols}_{self.dtype}_acc{self.acc_bits}_{self.overflow}"

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "configuration") -> AcceleratorConfig:
        """Build from a mapping; unknown keys are an error naming the key and ``source``."""
        if not isinstance(data, Mapping):
            raise ConfigError(source, f"must be a table of fields, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown field in {source}; known fields: {', '.join(sorted(known))}")
        return cls(**dict(data))

    @classmethod
    def from_file(cls, path: str | Path) -> AcceleratorConfig:
        """Load from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file.

        The fields may sit at the top level or under an ``[accelerator]`` table.
        """
        path = Path(path)
        if path.suffix not in (".toml", ".yaml", ".yml"):
            raise ConfigError("config", f"{path}: use a .toml, .yaml or .yml file")
        try:
            text = read_text(path, parameter="config")
        except UserError as exc:
            raise ConfigError("config", str(exc).split(": ", 1)[-1]) from None
        try:
            if path.suffix == ".toml":
                data: Any = tomllib.loads(text)
            else:
                data = yaml.safe_load(text)
                data = {} if data is None else data
        except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError and friends
            raise ConfigError("config", f"{path}: cannot parse: {' '.join(str(exc).split())}") from None
        if not isinstance(data, Mapping):
            raise ConfigError("config", f"{path}: must hold a table of design fields, not a {type(data).__name__}")
        if "accelerator" in data:
            others = sorted(map(str, set(data) - {"accelerator"}))
            if others:
                raise ConfigError(others[0], f"sits beside the [accelerator] table in {path}: put every field "
                                             "inside the table (or drop the table)")
            data = data["accelerator"]
        try:
            return cls.from_dict(data, source=str(path))
        except ConfigError as exc:
            raise ConfigError(exc.field, f"{exc.args[0].split(': ', 1)[1]} (in {path})") from None

    def replace(self, **changes: Any) -> AcceleratorConfig:
        """A copy with some fields changed (validated again)."""
        return AcceleratorConfig.from_dict({**self.to_dict(), **changes})
