"""What the commands share: the parser class, argument types, parent parsers for the
design, memory and workload flags, and the one way a command prints its result."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..checks import MAX_DIM, MAX_SEED
from ..config import AcceleratorConfig
from ..errors import UserError
from ..files import finite_json
from ..models.chip.choose import ORDER_FLAGS
from ..models.chip.mapper import SEARCHES
from ..models.legal.purchase import Scenario, scenario
from ..models.report.chip import get_chip
from ..models.workloads.catalog import get_workload
from ..models.workloads.gemm import parse_gemm

DESIGN_FIELDS = ("rows", "cols", "dataflow", "dtype", "acc_bits", "overflow", "beat_bytes", "a_buffer_kib",
                 "b_buffer_kib", "acc_buffer_kib", "subnormals", "mac_stages")

NUMBER_FORMAT = ("dtype", "subnormals", "mac_stages")   # core fields a chip's cores can be derived to
_ARG_NAME = re.compile(r"argument (?:-\w+/)?-{0,2}([\w-]+)")
_REQUIRED = re.compile(r"arguments are required: --?([\w-]+)")
_UNKNOWN = re.compile(r"unrecognized arguments: --?([\w-]+)")
_ONE_OF = re.compile(r"one of the arguments --?([\w-]+)")


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UserError` (one line, the flag named) instead of
    printing usage and exiting."""

    def _get_values(self, action, arg_strings):
        # argparse turns `--flag=--` into an empty list for a one-value flag: refuse it
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            raise argparse.ArgumentError(action, "expected a value, not '--'")
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> None:  # type: ignore[override]
        arg = _ARG_NAME.match(message)
        if arg:     # "argument --seq-len: invalid ..." -> "seq-len: invalid ..."
            name = "command" if arg.group(1) == "COMMAND" else arg.group(1)
            raise UserError(f"{name}: {message[arg.end():].lstrip(': ')}", parameter=name)
        m = _REQUIRED.search(message) or _UNKNOWN.search(message) or _ONE_OF.search(message)
        raise UserError(f"{m.group(1)}: {message}" if m else message, parameter=m.group(1) if m else None)


# -- argument types: each rejects what the models would choke on later --------------------------
def int_in(lo: int, hi: int = MAX_DIM) -> Callable[[str], int]:
    def parse(text: str) -> int:
        t = text.strip()
        if not re.fullmatch(r"[+-]?\d{1,30}", t):
            raise argparse.ArgumentTypeError(f"must be an integer in {lo}..{hi}, not {text!r}")
        v = int(t)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, not {v}")
        return v
    parse.__name__ = "integer"
    return parse


def real_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = True) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise argparse.ArgumentTypeError(f"must be {'>' if lo_open else '>='} {lo:g}, not {text}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi:g}, not {text}")
        return v
    parse.__name__ = "number"
    return parse


positive_int = int_in(1)
seed_int = int_in(0, MAX_SEED)
positive_real = real_in(0.0)
nonnegative_real = real_in(0.0, lo_open=False)


# -- parent parsers ---------------------------------------------------------------------------------
def json_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def legal_parent(*, required: bool = False, buyer: str | None = None, date: str | None = None,
                 what: str = "with --date, each GPU says whether that buyer may buy it") -> argparse.ArgumentParser:
    """``--buyer`` and ``--date``: the scenario the licence rules are read for (``required``,
    or with the defaults ``buyer`` and ``date``); ``what`` says what the scenario does."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--buyer", required=required, default=buyer,
                   help="destination group of the buyer (models/data/licence_rules.yaml: us, allied, china ...; any: "
                        f"the unconstrained view){f'; default {buyer}' if buyer else ''}; {what}")
    p.add_argument("--date", required=required, default=date, metavar="YYYY-MM-DD",
                   help=f"the decision date{f' (default {date})' if date else ''}")
    return p


def scenario_from_args(args: argparse.Namespace) -> Scenario | None:
    """The scenario of ``--buyer`` and ``--date`` (both or neither)."""
    if (args.buyer is None) != (args.date is None):
        missing = "date" if args.date is None else "buyer"
        raise UserError(f"{missing}: --buyer and --date go together", parameter=missing)
    return scenario(args.buyer, args.date) if args.buyer is not None else None


def design_parent() -> argparse.ArgumentParser:
    """The core's design fields (``AcceleratorConfig``), or ``--config FILE``."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("design (AcceleratorConfig fields; flags override --config)")
    g.add_argument("--config", metavar="FILE", help="TOML/YAML file with the design fields")
    g.add_argument("--rows", type=int_in(1, 64), help="array rows, 1..64 (default 4)")
    g.add_argument("--cols", type=int_in(1, 64), help="array columns, 1..64 (default 4)")
    g.add_argument("--dataflow", help="os (output-stationary) or ws (weight-stationary); default os")
    g.add_argument("--dtype", help="int8, uint8, int16, or bf16, fp16, fp8_e4m3, fp8_e5m2 with fp32 "
                                   "accumulation (default int8)")
    g.add_argument("--acc-bits", type=int_in(1, 64), dest="acc_bits",
                   help="accumulator width in bits (default 32; floating point: 32 only)")
    g.add_argument("--overflow", help="wrap or saturate (default wrap; floating point: wrap = IEEE overflow to Inf)")
    g.add_argument("--subnormals", help="floating point: keep (IEEE, default) or flush to signed zeros")
    g.add_argument("--mac-stages", type=int_in(1, 7), dest="mac_stages",
                   help="floating point: pipeline stages of the MAC, 1..7 (default 1)")
    g.add_argument("--beat-bytes", type=int_in(1, 64), dest="beat_bytes", help="memory data beat in bytes (default 16)")
    for buf, default in (("a", 8), ("b", 8), ("acc", 16)):
        g.add_argument(f"--{buf}-buffer-kib", type=positive_real, dest=f"{buf}_buffer_kib",
                       help=f"{buf.upper()} buffer SRAM in KiB (default {default})")
    return p


def memory_parent(*, bandwidth_help: str = "memory bandwidth in bytes per cycle (default 16)") -> argparse.ArgumentParser:
    """The external memory a core sees in simulation and in the cycle model."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("external memory")
    g.add_argument("--latency", type=int_in(1, 100_000), help="read latency in cycles (default 10)")
    g.add_argument("--bytes-per-cycle", type=real_in(0.0, 1024.0), dest="bytes_per_cycle", help=bandwidth_help)
    return p


def memory_given(args: argparse.Namespace) -> bool:
    return args.latency is not None or args.bytes_per_cycle is not None


def memory_from_args(args: argparse.Namespace) -> tuple[int, float]:
    """(latency in cycles, bytes per cycle), defaults filled in."""
    return (10 if args.latency is None else args.latency,
            16.0 if args.bytes_per_cycle is None else args.bytes_per_cycle)


def workload_parent(*, workload_help: str = "a built-in workload or a GEMM/SCALE-Sim CSV") -> argparse.ArgumentParser:
    """``--gemm`` or ``--workload`` with its batch and sequence length."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("what to run (one of --gemm, --workload)")
    g.add_argument("--gemm", metavar="MxNxK", help="one GEMM")
    g.add_argument("--workload", metavar="NAME_OR_FILE", help=workload_help)
    g.add_argument("--batch", type=positive_int, help="batch of a built-in workload")
    g.add_argument("--seq-len", type=positive_int, dest="seq_len", help="sequence length of a built-in workload")
    return p


def chip_parent(*, blocking: bool) -> argparse.ArgumentParser:
    """``--chip NAME|FILE`` (the chip instead of a lone core) and, for commands that run
    one descriptor, its product count and blocking."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("chip (instead of a lone core: the design flags then do not apply)")
    g.add_argument("--chip", metavar="NAME_OR_FILE",
                   help="a chip of models/data/chips.yaml (systolab list chips) or a chips YAML file")
    if blocking:
        g.add_argument("--count", type=int_in(1, 1 << 20), help="independent products in the descriptor (default 1)")
        g.add_argument("--block", metavar="MBxNBxKB", help="block sizes (default: the mapper's choice, see --search)")
        g.add_argument("--grid", metavar="GPxGMxGN[xGK]",
                       help="cores per block: products x row groups x column groups [x K-groups] (with --block; "
                            "default: the fastest grid for the block)")
        g.add_argument("--order", choices=ORDER_FLAGS,
                       help="loop order of the M- and N-blocks (with --block): mn (N-blocks inside: with one K-block A "
                            "stays on chip along them) or nm (M-blocks inside: B stays); default: the faster")
        search_argument(g, default=None)        # None: not given (it applies to --chip only)
    return p


def search_argument(group, default: str | None = "fast") -> None:
    """``--search fast|exhaustive``: the mapper's search (``models/chip/mapper.py``)."""
    group.add_argument("--search", choices=SEARCHES, default=default,
                       help="the mapper's search when no --block is given: fast (screened, the default) or "
                            "exhaustive (every mapping timed by the exact model)")


def chip_from_args(args: argparse.Namespace):
    """The chip of ``--chip``, refusing the flags that describe a lone core or its memory
    (``--dtype``, ``--subnormals`` and ``--mac-stages`` derive the chip with its cores in that format)."""
    given = [f for f in (*DESIGN_FIELDS, "config", "latency", "bytes_per_cycle", "cores", "clock_mhz", "unit")
             if getattr(args, f, None) is not None and f not in NUMBER_FORMAT]
    if given:
        flag = given[0].replace("_", "-")
        raise UserError(f"{flag}: describes a lone core; --chip takes its cores, memory and clock from the chip's "
                        "table (derive a chip file to change them)", parameter=flag)
    if not str(args.chip).strip():
        raise UserError("chip: give a chip name (systolab list chips) or a chips YAML file, not an empty string",
                        parameter="chip")
    try:
        chip = get_chip(args.chip)
    except UserError as exc:
        raise UserError(f"chip: {str(exc).split(': ', 1)[-1]}", parameter="chip") from None
    return in_number_format(chip, args)


def in_number_format(chip, args: argparse.Namespace):
    """``chip`` with its cores derived to ``--dtype`` / ``--subnormals`` / ``--mac-stages`` where given."""
    changes = {f: getattr(args, f) for f in NUMBER_FORMAT if getattr(args, f, None) is not None}
    return chip.derive(**changes) if changes else chip


# -- resolving flags ---------------------------------------------------------------------------------
def design_from_args(args: argparse.Namespace) -> AcceleratorConfig:
    """The design named by ``--config`` and the design flags (flags win)."""
    base = AcceleratorConfig.from_file(args.config).to_dict() if args.config else {}
    flags = {f: getattr(args, f) for f in DESIGN_FIELDS if getattr(args, f, None) is not None}
    return AcceleratorConfig.from_dict({**base, **flags}, source="command line")


def gemms_from_args(args: argparse.Namespace, dtype: str):
    """(GEMMs, workload or None) from exactly one of --gemm and --workload; --batch and
    --seq-len belong to --workload."""
    if (args.gemm is None) == (args.workload is None):
        raise UserError("gemm: give exactly one of --gemm MxNxK or --workload NAME_OR_FILE")
    if args.gemm is not None:
        for flag, v in (("batch", args.batch), ("seq-len", args.seq_len)):
            if v is not None:
                raise UserError(f"{flag}: applies to --workload, not to --gemm")
        return [parse_gemm(args.gemm, dtype=dtype)], None
    workload = get_workload(args.workload, batch=args.batch, seq_len=args.seq_len, dtype=dtype)
    return list(workload.gemms), workload


@contextlib.contextmanager
def naming_workload(workload) -> Iterator[None]:
    """Inside, a GEMM beyond a model's range (a :class:`UserError` naming ``gemm``) names
    ``workload`` instead when the GEMMs came from ``--workload``: the flag the user gave."""
    try:
        yield
    except UserError as exc:
        if workload is None or exc.parameter != "gemm":
            raise
        raise UserError(f"workload: {workload.name}: {str(exc).split(': ', 1)[-1]}", parameter="workload") from None


# -- output --------------------------------------------------------------------------------------------
def lines_of(head: str, rows, line: Callable[[Any], str], *, limit: int | None = None, tail: Sequence[str] = ()) -> str:
    """A human-readable table: ``head``, then ``line(row)`` for the first ``limit`` rows, then ``tail``."""
    return "\n".join([head, *(line(r) for r in list(rows)[:limit]), *tail])


def emit(args: argparse.Namespace, payload: dict, human: Callable[[dict], str]) -> None:
    if args.json:
        print(json.dumps(finite_json(payload), sort_keys=True, default=str, allow_nan=False))
    else:
        print(human(payload))
