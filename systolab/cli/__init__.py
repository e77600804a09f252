"""The ``systolab`` command line.

Every command takes ``--json`` and then prints exactly one JSON object on stdout. User
mistakes exit with 2 and one line naming the parameter (and, with ``--json``, an
``{"error": ..., "parameter": ...}`` object); they never show a traceback. One module per
command; the flags they share come from parent parsers in :mod:`.common`.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from types import SimpleNamespace

from .. import __version__
from ..errors import SimulationError, UserError
from . import (
    area,
    compare,
    decide,
    explore,
    export_control,
    fleet,
    gpu,
    legal,
    listing,
    mapping,
    perf,
    rtl,
    serve,
    validate,
    verify,
)
from .common import Parser, chip_parent, design_parent, json_parent, memory_parent, workload_parent
from .examples import HelpFormatter, add_examples

COMMANDS = (rtl, verify, perf, mapping, validate, compare, decide, explore, serve, fleet, area, gpu, export_control, legal, listing)

#: The first commands to try (``systolab --help``); each command's ``--help`` has its own.
EXAMPLES = """examples:
  systolab list                                   # the chips, GPUs, workloads, LLMs and spaces by name
  systolab decide --out out/decision              # build or buy: report.md, report.html (what make demo runs)
  systolab compare --out out/compare              # the default chip against the GPUs: report.md, plots
  systolab perf --chip sl-n4-os32 --workload llama3-8b-decode
  systolab serve --device h200-sxm --model llama3-70b --isl 2048 --osl 256 --concurrency 64 --tp 2
  systolab explore h20-beater --search lhs --trials 64 --seed 0 --out out/h20
"""


def build_parser() -> Parser:
    parser = Parser(prog="systolab", description=__doc__.splitlines()[0], epilog=EXAMPLES,
                    formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"systolab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    parents = SimpleNamespace(json=json_parent(), design=design_parent(), memory=memory_parent(),
                              workload=workload_parent(), chip=chip_parent(blocking=False),
                              chip_run=chip_parent(blocking=True))
    for command in COMMANDS:
        command.add_parser(sub, parents)
    add_examples(sub.choices)
    return parser


def _error(want_json: bool, message: str, parameter: str | None, prefix: str = "error") -> None:
    if want_json:
        print(json.dumps({"error": message, "parameter": parameter}))
    print(f"systolab: {prefix}: {' '.join(message.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        _error(want_json, str(exc), exc.parameter)
        return 2
    except KeyboardInterrupt:
        print("systolab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `systolab verify | head`
        sys.stderr.close()
        return 0
    except SimulationError as exc:  # a tool failed: say where its log is, no traceback
        _error(want_json, str(exc), None, "simulation failed")
        return 3


if __name__ == "__main__":
    sys.exit(main())
