"""The ``systolab`` command line.

Every command takes ``--json`` and then prints exactly one JSON object on stdout. User
mistakes exit non-zero with one line naming the parameter (and, with ``--json``, an
``{"error": ..., "parameter": ...}`` object); they never show a traceback.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import AcceleratorConfig
from .errors import ConfigError, SimulationError, UserError

DESIGN_FIELDS = ("rows", "cols", "dataflow", "dtype", "acc_bits", "overflow")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UserError(message)


def _add_design_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("design")
    g.add_argument("--config", metavar="FILE", help="TOML/YAML file with the design fields (flags override it)")
    g.add_argument("--rows", type=int, help="array rows, 1..64 (default 4)")
    g.add_argument("--cols", type=int, help="array columns, 1..64 (default 4)")
    g.add_argument("--dataflow", help="os (output-stationary) or ws (weight-stationary); default os")
    g.add_argument("--dtype", help="int8, uint8 or int16 (default int8)")
    g.add_argument("--acc-bits", type=int, dest="acc_bits", help="accumulator width in bits (default 32)")
    g.add_argument("--overflow", help="wrap or saturate (default wrap)")


def design_from_args(args: argparse.Namespace) -> AcceleratorConfig:
    """The design named by ``--config`` and the design flags (flags win)."""
    base = AcceleratorConfig.from_file(args.config).to_dict() if args.config else {}
    flags = {f: getattr(args, f) for f in DESIGN_FIELDS if getattr(args, f) is not None}
    return AcceleratorConfig.from_dict({**base, **flags}, source="command line")


def _parse_gemm(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise UserError(f"gemm: expected MxNxK with positive integers (e.g. 37x23x19), not {text!r}")
    dims = tuple(int(v) for v in m.groups())
    if min(dims) < 1:
        raise UserError(f"gemm: every dimension must be >= 1, not {text!r}")
    return dims  # type: ignore[return-value]


def _emit(args: argparse.Namespace, payload: dict, human: Callable[[dict], str]) -> None:
    if args.json:
        print(json.dumps(payload, sort_keys=True, default=str))
    else:
        print(human(payload))


# -- commands --------------------------------------------------------------------------------
def cmd_rtl(args: argparse.Namespace) -> int:
    from .hdl import generate_verilog

    config = design_from_args(args)
    out = generate_verilog(config, args.out)
    payload = {"verilog": str(out.verilog), "manifest": str(out.manifest), "top": out.top,
               "params": out.params, "ports": out.ports}
    _emit(args, payload, lambda p: (
        f"wrote {p['verilog']} (top {p['top']}) and {p['manifest']}\n"
        + "\n".join(f"  {q['direction']:6} {q['width']:6}  {q['name']}" for q in p["ports"])))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import numpy as np

    from .sim.stimulus import campaign, check_fits, random_product
    from .sim.verify import verify_products

    config = design_from_args(args)
    if args.gemms < 0:
        raise UserError(f"gemms: must be >= 0, not {args.gemms}")
    if not 0.0 <= args.stall_prob < 1.0:
        raise UserError(f"stall-prob: must be in [0, 1), not {args.stall_prob}")
    if args.gemm:
        m, n, k = _parse_gemm(args.gemm)
        try:
            check_fits(config, m, n, k)
        except ValueError as exc:
            raise UserError(f"gemm: {exc}") from None
        rng = np.random.default_rng(args.seed)
        products = [random_product(rng, config, f"gemm_{m}x{n}x{k}", m, n, k)]
    else:
        products = campaign(config, count=args.gemms, seed=args.seed, corners=not args.no_corners)
        if not products:
            raise UserError("gemms: nothing to run (0 random products and --no-corners)")
    report = verify_products(config, products, seed=args.seed, simulator=args.sim,
                             stall_prob=args.stall_prob, waves=args.waves)
    payload = {"design": config.to_dict(), **report.to_dict()}

    def human(p: dict) -> str:
        lines = [f"{config.name}: {p['gemms']} products on {p['simulator']} (seed {p['seed']}, "
                 f"{p['seconds']} s): {'PASSED' if p['passed'] else 'FAILED'}, {p['mismatches']} mismatching elements"]
        for label, shape, cyc in zip(p["labels"], p["shapes"], p["cycles"]):
            lines.append(f"  {label:16} {'x'.join(map(str, shape)):>10}  {cyc:6} cycles")
        lines += [f"  {m}" for m in p["messages"]]
        return "\n".join(lines)

    _emit(args, payload, human)
    return 0 if report.passed else 1


# -- entry point -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="systolab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("rtl", help="write the design's Verilog and a manifest of parameters and ports")
    _add_design_flags(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=cmd_rtl)

    p = sub.add_parser("verify", help="random and corner-case products through the RTL, checked bit-exactly")
    _add_design_flags(p)
    p.add_argument("--gemm", metavar="MxNxK", help="one product of this shape (random values)")
    p.add_argument("--gemms", type=int, default=8, metavar="N", help="random products (default 8), plus corner cases")
    p.add_argument("--no-corners", action="store_true", help="skip the corner-case products")
    p.add_argument("--seed", type=int, default=1, help="seed for values and stalls (default 1)")
    p.add_argument("--sim", default="auto", help="verilator, icarus, amaranth or auto (default: verilator, else icarus)")
    p.add_argument("--stall-prob", type=float, default=0.2, dest="stall_prob",
                   help="chance of a gap/back-pressure per beat on every stream (default 0.2)")
    p.add_argument("--waves", action="store_true", help="dump a waveform and report where")
    p.set_defaults(func=cmd_verify)

    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        field = exc.field if isinstance(exc, ConfigError) else None
        if want_json:
            print(json.dumps({"error": str(exc), "parameter": field}))
        print(f"systolab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("systolab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `systolab verify | head`
        sys.stderr.close()
        return 0
    except SimulationError as exc:  # a tool failed: say where its log is, no traceback
        if want_json:
            print(json.dumps({"error": str(exc), "parameter": None}))
        print(f"systolab: simulation failed: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
