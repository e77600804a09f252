"""Issue 33, class 2: operating-system errors never escape. Every path or name argument of
every command goes through the one checked opener (:func:`systolab.files.user_path`):
a name or path longer than the OS takes, a path in /proc or /sys, a folder where a file
belongs, is refused with exit 2 and the argument named, never a traceback. The output
folder is never the folder the user stands in.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import systolab as sl
from systolab import AcceleratorConfig, UserError
from systolab.cli import main
from systolab.files import NAME_MAX_BYTES, PATH_MAX_BYTES, check_output_folder, is_user_file, path_kind, read_text, user_path
from systolab.models.chip.config import load_chips
from systolab.models.explore.space import load_space
from systolab.models.serving.model import get_device
from systolab.models.workloads.catalog import get_workload

LONG_NAME = "a" * (NAME_MAX_BYTES + 45)
LONG_PATH = "/".join(["d" * 200] * (PATH_MAX_BYTES // 200 + 2))

# (command line with {} where the path goes, the parameter the error must name); each is
# cheap: the path is checked before any work
PATH_ARGS = [
    (["perf", "--workload", "{}", "--gemm-less"], "workload"),
    (["perf", "--config", "{}", "--gemm", "4x4x4"], "config"),
    (["perf", "--chip", "{}", "--gemm", "4x4x4"], "chip"),
    (["map", "--chip", "{}", "--gemm", "4x4x4"], "chip"),
    (["map", "--chip", "sl-tiny", "--workload", "{}"], "workload"),
    (["rtl", "--out", "{}"], "out"),
    (["rtl", "--config", "{}", "--out", "{tmp}/rtl"], "config"),
    (["rtl", "--chip", "{}", "--out", "{tmp}/rtl"], "chip"),
    (["verify", "--config", "{}", "--gemm", "2x2x2", "--sim", "amaranth"], "config"),
    (["explore", "{}", "--out", "{tmp}/ex"], "space"),
    (["explore", "h20-beater", "--out", "{}"], "out"),
    (["explore", "h20-beater", "--out", "{tmp}/ex", "--db", "{}"], "db"),
    (["compare", "{}", "--out", "{tmp}/cmp", "--workload", "dlrm", "--gpus", "h20"], "chip"),
    (["compare", "--out", "{}", "--workload", "dlrm", "--gpus", "h20"], "out"),
    (["compare", "--out", "{tmp}/cmp", "--workload", "{}", "--gpus", "h20"], "workload"),
    (["serve", "--device", "{}", "--model", "llama3-8b", "--isl", "8", "--osl", "8", "--batch", "1"], "device"),
    (["legal", "--chip", "{}", "--buyer", "us", "--date", "2025-01-15"], "chip"),
    (["area", "--liberty", "{}"], "liberty"),
    (["decide", "--chip", "{}", "--gpus", "h20", "--draws", "100", "--out", "{tmp}/dec"], "chip"),
    (["decide", "--gpus", "h20", "--draws", "100", "--out", "{}"], "out"),
]
BAD = {
    "long name": LONG_NAME,
    "long name .yaml": LONG_NAME + ".yaml",
    "long path": LONG_PATH + ".yaml",
    "/proc": "/proc/x.yaml",
    "/sys": "/sys/x.yaml",
    "a folder": "{tmp}/folder.yaml",
}


def _run(argv: list[str], capsys) -> tuple[int, dict, str]:
    rc = main([*argv, "--json"])
    cap = capsys.readouterr()
    lines = [line for line in cap.out.splitlines() if line.strip()]
    return rc, json.loads(lines[-1]) if lines else {}, cap.err


@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
@pytest.mark.parametrize("argv, parameter", PATH_ARGS, ids=[f"{a[0]}-{p}" for a, p in PATH_ARGS])
def test_every_path_argument_refuses_what_the_os_would_raise_on(argv, parameter, bad, tmp_path, capsys):
    (tmp_path / "folder.yaml").mkdir()
    value = BAD[bad].format(tmp=tmp_path)
    if "--gemm-less" in argv:           # perf --workload alone
        argv = [a for a in argv if a != "--gemm-less"]
    args = [value if a == "{}" else a.format(tmp=tmp_path) for a in argv]
    if parameter == "out" and bad == "a folder":       # a folder is what --out wants: an empty one is written
        pytest.skip("an empty folder is a valid --out")
    rc, err, stderr = _run(args, capsys)
    assert rc == 2, (args[:3], err)
    assert err.get("parameter") == parameter, err
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("out", [".", "..", "./", "{cwd}"])
def test_out_is_never_the_folder_the_user_stands_in(out, tmp_path, monkeypatch, capsys):
    here = tmp_path / "work"
    here.mkdir()
    (here / "mine.txt").write_text("keep me")
    (here / ".systolab").write_text("{}")         # even one that looks like systolab's own output
    monkeypatch.chdir(here)
    rc, err, _ = _run(["rtl", "--out", out.format(cwd=here)], capsys)
    assert rc == 2 and err["parameter"] == "out"
    assert Path.cwd() == here and (here / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_the_checked_opener(tmp_path):
    assert user_path("~/x.yaml", parameter="p") == Path.home() / "x.yaml"
    for bad in ("", "  ", "a\x00b", LONG_NAME, LONG_PATH, "/proc/self/status", "/sys", None, 3, b"x"):
        with pytest.raises(UserError) as exc:
            user_path(bad, parameter="p")
        assert exc.value.parameter == "p" and str(exc.value).startswith("p: ")
    (tmp_path / "f.csv").write_text("x")
    assert path_kind(tmp_path / "f.csv", parameter="p") == "file" and path_kind(tmp_path, parameter="p") == "folder"
    assert path_kind(tmp_path / "nothing", parameter="p") is None
    assert path_kind(tmp_path / "f.csv" / "under", parameter="p") is None       # not a folder: nothing there
    assert is_user_file(tmp_path / "f.csv", parameter="p") and not is_user_file(tmp_path, parameter="p")
    os.mkfifo(tmp_path / "pipe")                    # reading a pipe would block: refused, not opened
    assert path_kind(tmp_path / "pipe", parameter="p") == "other"
    for path in (tmp_path, tmp_path / "pipe", tmp_path / "nothing"):
        with pytest.raises(UserError) as exc:
            read_text(path, parameter="workload")
        assert exc.value.parameter == "workload"


def test_a_link_into_proc_is_refused(tmp_path):
    (tmp_path / "status.yaml").symlink_to("/proc/self/status")
    with pytest.raises(UserError, match="/proc"):
        read_text(tmp_path / "status.yaml", parameter="space")


def test_an_output_folder_that_cannot_be_created_names_out(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError) as exc:
        check_output_folder(tmp_path / "file" / "out")
    assert exc.value.parameter == "out"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the permissions say")
def test_permission_errors_name_the_parameter(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "w.csv").write_text("name,M,N,K\na,1,1,1\n")
    locked.chmod(0)
    try:
        for call in (lambda: read_text(locked / "w.csv", parameter="workload"),
                     lambda: check_output_folder(locked / "out")):
            with pytest.raises(UserError):
                call()
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("text, parameter", [("5: x\nrows: 4\n", "5"), ("accelerator: {rows: 4}\n5: x\n", "5"),
                                              ("accelerator: {rows: 4, 7: 1}\n", "7")])
def test_a_config_with_an_integer_key_names_it(text, parameter, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    rc, err, _ = _run(["perf", "--config", str(cfg), "--gemm", "4x4x4"], capsys)
    assert rc == 2 and err["parameter"] == parameter


@pytest.mark.parametrize("bad", ["long name", "long path", "/proc", "/sys"])
def test_every_library_entry_point_that_opens_a_path_names_its_parameter(bad):
    value = BAD[bad]
    calls = {
        "workload": lambda: get_workload(value, dtype="int8"),
        "config": lambda: AcceleratorConfig.from_file(value),
        "space": lambda: load_space(value),
        "chip": lambda: sl.get_chip(value),
        "chip ": lambda: load_chips(value),
        "device": lambda: get_device(value),
    }
    for parameter, call in calls.items():
        with pytest.raises(UserError) as exc:
            call()
        assert exc.value.parameter == parameter.strip(), (parameter, exc.value)
