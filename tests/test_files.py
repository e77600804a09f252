"""Crash safety: atomic files, staged output folders, killed runs and builds, healing caches,
and an import that works from any working directory."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from systolab import AcceleratorConfig, UserError
from systolab.files import MARKER, atomic_write_text, check_output_folder, staged_folder, sweep_stale


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    f = atomic_write_text(tmp_path / "a" / "x.json", "{}")
    assert f.read_text() == "{}" and sorted(p.name for p in f.parent.iterdir()) == ["x.json"]


def test_staged_folder_is_all_or_nothing(tmp_path):
    out = tmp_path / "report"
    with staged_folder(out) as stage:
        (stage / "a.txt").write_text("old a")
        (stage / "b.txt").write_text("old b")
    assert (out / MARKER).is_file() and (out / "a.txt").read_text() == "old a"
    with pytest.raises(RuntimeError), staged_folder(out) as stage:
        (stage / "a.txt").write_text("new a")
        raise RuntimeError("killed midway")
    assert (out / "a.txt").read_text() == "old a" and (out / "b.txt").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]        # no staging leftovers
    with staged_folder(out) as stage:
        (stage / "a.txt").write_text("new a")
    assert (out / "a.txt").read_text() == "new a" and not (out / "b.txt").exists()


def test_staged_folder_keeps_the_time_of_unchanged_files(tmp_path):
    out = tmp_path / "rtl"
    for text in ("same", "same"):
        with staged_folder(out) as stage:
            (stage / "x.v").write_text(text)
        if text == "same" and "t0" not in locals():
            t0 = (out / "x.v").stat().st_mtime_ns
            time.sleep(0.01)
    assert (out / "x.v").stat().st_mtime_ns == t0


@pytest.mark.parametrize("make, why", [
    (lambda p: None, "give a folder name"),
    (lambda p: (p / "f").write_text("x"), "is a file"),
    (lambda p: (p / "mine").mkdir() or (p / "mine" / "notes.txt").write_text("x"), "did not write"),
])
def test_output_folder_refusals(tmp_path, make, why):
    make(tmp_path)
    target = {"give a folder name": "", "is a file": tmp_path / "f", "did not write": tmp_path / "mine"}[why]
    with pytest.raises(UserError, match=f"out: .*{why}"):
        check_output_folder(target)


def test_leftovers_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f".report.staging-{dead.pid}-abc", f"build-{dead.pid}-xyz", f"run-{os.getpid()}-live"):
        (tmp_path / name).mkdir()
    sweep_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run-{os.getpid()}-live"]


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_a_killed_compare_leaves_the_previous_report_whole(tmp_path):
    out = tmp_path / "cmp"
    argv = [sys.executable, "-m", "systolab", "compare", "--out", str(out), "--workload", "dlrm", "--gpus", "h20",
            "--buyer", "any"]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    before = {name: (out / name).read_bytes() for name in _files(out)}
    for delay in (0.3, 1.0, 2.0):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _files(out) == set(before)                 # the whole old set or the whole new one
        summary = json.loads((out / "summary.json").read_text())
        assert {r["device"] for r in summary["rows"]} == {"sl-n4-os32", "h20"}
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]      # staging folders of the dead are gone


def test_a_truncated_synthesis_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    from systolab.models.silicon import synthesis

    monkeypatch.setenv("SYSTOLAB_CACHE", os.environ["SYSTOLAB_CACHE"])
    cfg = AcceleratorConfig(rows=1, cols=1)
    first = synthesis.synthesize(cfg)
    # this configuration's entry under today's sources (a persistent cache holds older ones)
    entry = synthesis.cache_root() / "synth" / f"{cfg.name}-{synthesis._cache_key(cfg, 'generic', '')}.json"
    entry.write_text(entry.read_text()[:25])             # a write cut short
    again = synthesis.synthesize(cfg)
    assert again.transistors == first.transistors and json.loads(entry.read_text())["pe_count"] == 1


def test_the_hdl_fingerprint_covers_the_configuration_module(monkeypatch, tmp_path):
    from systolab import config as config_module
    from systolab.hdl.verilog import hdl_fingerprint

    cfg = AcceleratorConfig()
    before = hdl_fingerprint(cfg)
    edited = tmp_path / "config.py"
    edited.write_text(Path(config_module.__file__).read_text() + "\n# k_chunk derivation changed\n")
    monkeypatch.setattr(config_module, "__file__", str(edited))
    assert hdl_fingerprint(cfg) != before


def test_import_works_beside_a_folder_named_systolab(tmp_path):
    # A notebook saved next to a clone called `systolab`: the clone must not shadow the install.
    (tmp_path / "systolab").mkdir()
    (tmp_path / "systolab" / "README.md").write_text("a clone")
    proc = subprocess.run([sys.executable, "-c", "import systolab as sl; from systolab import AcceleratorConfig; "
                           "print(sl.get_chip().name, AcceleratorConfig().name)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "sl-n4-os32 os_4x4_int8_acc32_wrap" in proc.stdout


@pytest.mark.verilator
def test_a_killed_verilator_build_does_not_break_the_next_run(tmp_path):
    from systolab.sim.runner import simulator_status

    if simulator_status()["verilator"] is not None:
        pytest.skip("Verilator is not installed")
    env = {**os.environ, "SYSTOLAB_CACHE": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "systolab", "verify", "--rows", "2", "--cols", "3", "--gemm", "3x4x5",
            "--sim", "verilator", "--json"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "cache").rglob("build-*")):
        time.sleep(0.05)
    assert list((tmp_path / "cache").rglob("build-*")), "the build never started"
    time.sleep(1.0)                                      # make and the compilers are running now
    proc.send_signal(signal.SIGKILL)                     # orphans them: they keep writing
    proc.wait()
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["passed"] is True
