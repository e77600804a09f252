"""The first hour with the command line (issue 33, class 8): a version, a list of every
name the commands accept, examples in every --help that parse, help that cites only
commands that exist, explore's progress and why it returned fewer points than trials."""
from __future__ import annotations

import io
import json
import re
import shlex

import pytest

import systolab as sl
from systolab.cli import EXAMPLES as TOP_EXAMPLES
from systolab.cli import build_parser, main
from systolab.cli.examples import EXAMPLES
from systolab.models.explore.space import SPACES_DIR
from systolab.models.workloads.catalog import llm_models


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return parser, action.choices


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"systolab {sl.__version__}"


def test_list_names_everything_the_commands_accept(capsys):
    assert main(["list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {kind: [r["name"] for r in rows] for kind, rows in out.items()}
    assert names["chips"] == sl.list_chips() and names["gpus"] == sl.list_gpus()
    assert names["workloads"] == sl.list_workloads()
    assert set(names["models"]) == {shape.name for shape in llm_models().values()}
    assert names["spaces"] == sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
    assert all(r["about"] for rows in out.values() for r in rows)
    assert main(["list", "gpus"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("gpus:\n") and all(g in text for g in sl.list_gpus()) and "chips:" not in text
    assert main(["list", "nope", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "kind"


def test_every_command_has_examples_and_each_parses():
    parser, commands = _subparsers()
    assert set(commands) <= set(EXAMPLES), set(commands) - set(EXAMPLES)
    examples = [e for name, group in EXAMPLES.items() if name in commands for e in group]
    top = [line.split("#")[0].strip() for line in TOP_EXAMPLES.splitlines()[1:] if line.strip()]
    for example in examples + top:
        argv = shlex.split(example)
        assert argv[0] == "systolab"
        parser.parse_args(argv[1:])                    # a UserError if an example went stale
    for name, sub in commands.items():
        help_text = sub.format_help()
        assert "examples:\n  systolab " + name in help_text, name


def test_help_cites_only_commands_that_exist():
    parser, commands = _subparsers()
    texts = [" ".join(t.split()) for t in [parser.format_help(), *(sub.format_help() for sub in commands.values())]]
    cited = {m.group(1) for t in texts for m in re.finditer(r"(?<![/\w.])systolab ([a-z][a-z-]+)", t)}
    assert {"list", "map", "validate"} <= cited
    cited -= {"cores"}                                   # "a chip of systolab cores": prose, not a command
    assert cited <= set(commands), cited - set(commands)


def test_explore_help_names_the_bundled_spaces():
    _, commands = _subparsers()
    text = " ".join(commands["explore"].format_help().split())
    assert all(p.stem in text for p in SPACES_DIR.glob("*.yaml"))


SMALL = {
    "base": "sl-n7-os32-edge",
    "parameters": {"cores": [4, 8, 16], "clock_mhz": [600, 800]},
    "workloads": [{"name": "bert-base", "batch": 1, "seq_len": 128}],
    "objectives": [{"metric": "throughput", "workload": "bert-base", "goal": "max"}, {"metric": "power_W", "goal": "min"}],
}


def test_explore_says_why_it_returned_fewer_points_than_trials(tmp_path, capsys):
    import yaml

    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump(SMALL))
    assert main(["explore", str(space), "--search", "random", "--trials", "24", "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == 6
    assert out["note"].startswith("18 of the 24 trials drew a design already drawn") and "6 designs" in out["note"]
    assert main(["explore", str(space), "--out", str(tmp_path / "g"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["note"] is None          # the grid: every design once
    assert main(["explore", str(space), "--search", "lhs", "--trials", "24", "--out", str(tmp_path / "o")]) == 0
    assert "fewer points than trials: 18 of the 24" in capsys.readouterr().out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_explore_draws_progress_on_a_terminal_unless_quiet(tmp_path, monkeypatch, capsys, quiet):
    import yaml

    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump(SMALL))
    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    assert main(["explore", str(space), "--out", str(tmp_path / "o"), *(["--quiet"] if quiet else [])]) == 0
    assert ("explore: 100%" in err.getvalue() and "6/6" in err.getvalue()) != quiet
    assert "points" in capsys.readouterr().out


def test_human_units():
    from systolab.cli.units import human_bytes, human_seconds

    assert [human_seconds(s) for s in (15.158671, 3e-7, 2.5e-5, 0.0123, 0, 300, 9000)] == \
        ["15.2 s", "300 ns", "25 µs", "12.3 ms", "0 s", "5 min", "2.5 h"]
    assert [human_bytes(b) for b in (12, 1234, 5.6e9)] == ["12 B", "1.23 kB", "5.6 GB"]


@pytest.mark.parametrize("argv", [["perf", "--rows", "4", "--cols", "4", "--gemm", "4096x4096x4096"],
                                  ["perf", "--chip", "sl-tiny", "--gemm", "512x512x512"],
                                  ["perf", "--chip", "sl-tiny", "--workload", "dlrm"]])
def test_perf_text_reads_in_human_units(capsys, argv):
    """Times in ns ... h and bytes in kB ... PB, never '15158671.0 us' or a 12-digit byte count."""
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert re.search(r"\d(\.\d+)? (ns|µs|ms|s|min|h)\b", text)
    assert not re.search(r"\d{5,}\.\d+ (us|ms)|\d{7,} B\b", text), text


PUBLIC_MODULES = ["systolab", "systolab.models", *[f"systolab.models.{p}" for p in (
    "core", "chip", "gpu", "serving", "silicon", "cost", "legal", "explore", "report", "workloads")]]


def _public_functions():
    import importlib
    import inspect

    for m in PUBLIC_MODULES:
        mod = importlib.import_module(m)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{m}.{name}", obj
    for name in ("unit_cost", "export_class", "summary", "evaluate", "area", "power_W"):
        yield f"Chip.{name}", getattr(sl.get_chip().__class__, name)


def _says_something(doc: str | None) -> bool:
    """More than a cross-reference: a few words once the :role:`target` parts are dropped."""
    words = re.sub(r":\w+:`[^`]*`", "", doc or "").split()
    return len(words) >= 6


def test_public_functions_say_what_they_do():
    silent = sorted(name for name, fn in _public_functions() if not _says_something(fn.__doc__))
    assert not silent, silent


def test_no_two_public_functions_share_a_name():
    """One name, one function (``sl.fleet`` and ``models.cost.fleet`` once did different
    things); the wrappers listed are the same operation one layer up."""
    wrappers = {"explore": "flows adds the deep stage", "get_chip": "the report's Chip, with its methods"}
    by_name: dict[str, set] = {}
    for qual, fn in _public_functions():
        if qual.startswith("Chip."):
            continue
        by_name.setdefault(qual.rsplit(".", 1)[1], set()).add(inspect_origin(fn))
    shared = {n: sorted(o) for n, o in by_name.items() if len(o) > 1 and n not in wrappers}
    assert not shared, shared


def inspect_origin(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def test_a_resized_chip_never_keeps_its_name():
    """largest_outside, fit_cores and match_gpu rename what they resize (a report once showed
    sl-n4-os32 as 'none' beside sl-n4-os32 as 3A090.a.1)."""
    from systolab.models.report.sizing import fit_cores, largest_outside

    chip = sl.get_chip("sl-n4-os32")
    free = largest_outside(chip)
    assert free.cores < chip.cores and free.name == f"sl-n4-os32+cores={free.cores}"
    assert free.export_class().eccn == "none" and chip.export_class().eccn != "none"
    fitted = fit_cores(chip, die_mm2=300)
    assert fitted.name == f"sl-n4-os32+cores={fitted.cores}"
    assert fit_cores(fitted, die_mm2=300).name == fitted.name          # nothing resized: the same chip
