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

from ..errors import SimulationError, UserError
from . import area, compare, decide, explore, export_control, fleet, gpu, legal, mapping, perf, rtl, serve, validate, verify
from .common import Parser, chip_parent, design_parent, json_parent, memory_parent, workload_parent

COMMANDS = (rtl, verify, perf, mapping, validate, compare, decide, explore, serve, fleet, area, gpu, export_control, legal)


def build_parser() -> Parser:
    parser = Parser(prog="systolab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    parents = SimpleNamespace(json=json_parent(), design=design_parent(), memory=memory_parent(),
                              workload=workload_parent(), chip=chip_parent(blocking=False),
                              chip_run=chip_parent(blocking=True))
    for command in COMMANDS:
        command.add_parser(sub, parents)
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
