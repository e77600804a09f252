"""Every shell command the README and docs/*.md show runs verbatim (issue 33, class 7).

Commands are the lines of fenced ``sh`` blocks that start with ``systolab `` or ``make ``
(a trailing ``\\`` continues a line; ``# ...`` is a comment). Each runs in a fresh folder
holding links to the checkout's ``docs/`` and ``models/`` (so ``out/...`` lands there and
the paths the README names resolve), in this process, and must exit 0. The cheap ones run
in the default suite; the simulations, validations and bundled explorations behind the
``slow`` marker (``make test-slow``); two cannot run here and say why.
"""
from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from systolab.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Commands that cannot run in a test, and why.
NOT_HERE = {
    "make test": "runs this suite itself",
    "make demo": "it runs `systolab compare --out out/demo`, as the compare commands below do (slow marker)",
    "--executor dask://head:8786": "needs a Dask scheduler at head:8786 (the executor is tested on a LocalCluster in "
                                   "tests/test_explore.py)",
}
#: Minutes, not seconds, on 2 cores: simulations, validation grids, the bundled spaces, and
#: the comparisons and decisions (15 s and more each; their own tests cover them by default).
SLOW = re.compile(r"^systolab (validate|verify|rtl --chip|explore (h20-beater|cn-2025-70b|fleet-7b)|compare|decide)")
#: A default-suite command must answer within this, s (in this process, on a loaded 2-core machine).
BUDGET_S = 60


def shown_commands(path: Path) -> list[str]:
    """The commands in ``path``'s fenced shell blocks, continuation lines joined, comments dropped."""
    out = []
    for block in re.finditer(r"```(?:sh|bash|shell|console)\n(.*?)```", path.read_text(), re.S):
        lines = block.group(1).splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
            cmd = re.sub(r"\s+#.*$", "", line.strip())
            if cmd.startswith(("systolab ", "make ")):
                out.append(" ".join(cmd.split()))
    return out


COMMANDS = [(p.relative_to(ROOT).as_posix(), c) for p in DOCS for c in shown_commands(p)]


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 30 and {w for w, _ in COMMANDS} >= {"README.md"}


def _marks(cmd: str):
    if any(k in cmd for k in NOT_HERE):
        return [pytest.mark.skip(reason=next(v for k, v in NOT_HERE.items() if k in cmd))]
    marks = [pytest.mark.slow] if SLOW.search(cmd) else []
    if "--sim icarus" in cmd:
        marks.append(pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog is not installed"))
    return marks


@pytest.mark.parametrize("where, cmd", [pytest.param(w, c, marks=_marks(c), id=f"{w}:{c[:70]}") for w, c in COMMANDS])
def test_shown_command_runs_verbatim(where, cmd, tmp_path, monkeypatch, capsys):
    for name in ("docs", "models"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(cmd)[1:]
    if "--replay" in argv:                         # replays a point the command before it stored
        before = [c for w, c in COMMANDS if w == where and c.startswith(cmd.split(" --replay")[0]) and c != cmd]
        assert before and main(shlex.split(before[-1])[1:]) == 0
    t0 = time.perf_counter()
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, f"{where}: `{cmd}` exited {rc}: {err[-1500:]}"
    if not SLOW.search(cmd):
        assert time.perf_counter() - t0 < BUDGET_S, f"{where}: `{cmd}` took over {BUDGET_S} s; mark it slow"


def test_every_shown_systolab_command_parses():
    """Cheap and in the default suite for every command, slow ones included: flags that exist
    and values of the right kind."""
    parser = build_parser()
    for _, cmd in COMMANDS:
        if cmd.startswith("systolab "):
            parser.parse_args(shlex.split(cmd)[1:])
