"""Nothing outlives a run (issue 33, class 5): no worker process of a killed ``explore``,
no staging folder of a killed build, no point evaluated twice by two runs on one store,
no cached synthesis holding NaN, and output folders made as the umask says."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from systolab.files import atomic_write_text, staged_folder, sweep_stale

ROOT = Path(__file__).resolve().parents[1]
SPACE = {
    "base": "sl-n7-os32-edge",
    "parameters": {"cores": [2, 4, 8, 16], "clock_mhz": {"min": 500, "max": 1200, "step": 10}},
    "workloads": [{"name": "bert-base", "batch": 1, "seq_len": 128}],
    "objectives": [{"metric": "throughput", "workload": "bert-base", "goal": "max"},
                   {"metric": "power_W", "goal": "min"}],
    "constraints": {"die_mm2_max": 858},
}


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_killed_explore_leaves_no_worker_behind(tmp_path):
    """kill -9 an ``explore --jobs 2`` mid-sweep (the run only, not its group, as a crash
    or the OOM killer would): its workers exit within seconds instead of waiting forever."""
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    db = tmp_path / "s.sqlite"
    argv = [sys.executable, "-m", "systolab", "explore", str(path), "--out", str(tmp_path / "o"), "--db", str(db),
            "--jobs", "2", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        workers: set[int] = set()
        while time.time() < deadline and proc.poll() is None and not (len(workers) >= 2 and _stored(db) >= 2):
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert proc.poll() is None and len(workers) >= 2, "the sweep ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "worker processes outlived the killed run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _explore_after(barrier, space, db, results) -> None:
    from systolab.models.explore import run_explore

    barrier.wait()
    r = run_explore(space, db=db)
    results.put({"points": r["points"], "evaluated": r["evaluated"], "pareto": r["pareto"]})


@pytest.mark.skipif(sys.platform != "linux", reason="forks two runs of this process")
def test_two_explores_on_one_store_evaluate_each_point_once(tmp_path):
    """Two runs started together on one store claim points in it: together they evaluate
    every point exactly once, and both report the whole set and the same front."""
    import multiprocessing

    from systolab.models.explore import run_explore

    space = {**SPACE, "parameters": {"cores": [2, 4, 8, 16], "clock_mhz": {"min": 500, "max": 1200, "step": 20}}}
    points = 4 * 36
    run_explore({**space, "parameters": {"cores": [2], "clock_mhz": [500]}}, db=tmp_path / "warm.sqlite")
    ctx = multiprocessing.get_context("fork")           # models loaded and compiled: the runs start at once
    barrier, results = ctx.Barrier(2), ctx.Queue()
    db = tmp_path / "shared.sqlite"
    procs = [ctx.Process(target=_explore_after, args=(barrier, space, db, results)) for _ in range(2)]
    for p in procs:
        p.start()
    runs = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [r["points"] for r in runs] == [points, points]
    assert sum(r["evaluated"] for r in runs) == points, [r["evaluated"] for r in runs]
    assert min(r["evaluated"] for r in runs) > 0, "the runs did not overlap: nothing was shared"
    assert runs[0]["pareto"] == runs[1]["pareto"]
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT hash) FROM points").fetchone() == (points, points)
        assert c.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)    # every claim settled


def test_a_dead_runs_claims_are_taken_over(tmp_path):
    """Points claimed by a run that died are evaluated by the next run, not waited for."""
    from systolab.models.explore import run_explore
    from systolab.models.explore.store import Store

    space = {**SPACE, "parameters": {"cores": [2, 4], "clock_mhz": [500, 600]}}
    hashes = [p["design_hash"] for p in run_explore(space, db=tmp_path / "probe.sqlite")["all_points"]]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = Store(tmp_path / "s.sqlite")
    with store.db:
        store.db.executemany("INSERT INTO claims VALUES (?, ?, ?)", [(h, socket.gethostname(), dead.pid) for h in hashes])
    store.close()
    t0 = time.perf_counter()
    again = run_explore(space, db=tmp_path / "s.sqlite")
    assert again["evaluated"] == 4 and time.perf_counter() - t0 < 60


def _stale_kinds() -> set[str]:
    """The kinds of private folders and files systolab creates (``<kind>-<pid>-...``)."""
    kinds = set()
    for f in [*ROOT.joinpath("systolab").rglob("*.py"), *ROOT.joinpath("sim").rglob("*.py"),
              *ROOT.joinpath("models").rglob("*.py"), *ROOT.joinpath("hdl").rglob("*.py")]:
        for m in re.finditer(r"prefix=f\"\.?(?:\{[^}]*\}\.)?([a-z]+)-\{os\.getpid\(\)\}-", f.read_text()):
            kinds.add(m.group(1))
    return kinds


def test_every_private_folder_kind_is_swept(tmp_path):
    """Whatever kind of private folder the package makes with its process id, the sweep
    removes it once that process is gone (a folder kind the sweep did not know, such as
    Verilator's runtime-<pid>-*, stayed for ever)."""
    kinds = _stale_kinds()
    assert {"runtime", "staging", "build", "synth"} <= kinds, kinds
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for kind in kinds:
        (tmp_path / f"{kind}-{dead.pid}-abc123").mkdir()
        (tmp_path / f".out.{kind}-{dead.pid}-abc123").mkdir()
        (tmp_path / f"{kind}-{os.getpid()}-mine").mkdir()      # a live process's: kept
    sweep_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{k}-{os.getpid()}-mine" for k in kinds)


@pytest.mark.verilator
def test_a_killed_verilator_runtime_build_leaves_no_folder(tmp_path):
    """kill -9 the first Verilator build of a fresh cache while it compiles the runtime
    objects: the next build's sweep removes the private runtime-<pid>-* folder."""
    from systolab.sim.runner import runtime_cache, simulator_status, sweep_runtime_leftovers

    if simulator_status()["verilator"] is not None:
        pytest.skip(simulator_status()["verilator"])
    env = {**os.environ, "SYSTOLAB_CACHE": str(tmp_path / "cache")}
    code = "from systolab.sim.runner import prepare_verilator; prepare_verilator()"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "cache" / "verilator-runtime"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(folder.glob("runtime-*/build")):
        time.sleep(0.05)
    assert proc.poll() is None, "the runtime build ended before it could be killed"
    time.sleep(0.5)                                   # into the compiler
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(folder.glob("runtime-*"))             # what the killed build left
    os.environ["SYSTOLAB_CACHE"], before = str(tmp_path / "cache"), os.environ["SYSTOLAB_CACHE"]
    try:
        assert runtime_cache() == folder
        sweep_runtime_leftovers()
    finally:
        os.environ["SYSTOLAB_CACHE"] = before
    assert not list(folder.glob("runtime-*"))


def test_a_synthesis_cache_entry_holding_nan_is_not_trusted(tmp_path, monkeypatch):
    from systolab import AcceleratorConfig
    from systolab.models.silicon.synthesis import synthesize

    monkeypatch.setenv("SYSTOLAB_CACHE", str(tmp_path))
    cfg = AcceleratorConfig(rows=1, cols=1)
    good = synthesize(cfg)
    [entry] = (tmp_path / "synth").glob("*.json")
    d = json.loads(entry.read_text())
    d["pe"]["transistors"] = float("nan")
    entry.write_text(json.dumps(d))                   # NaN, as json writes it
    again = synthesize(cfg)
    assert again.pe.transistors == good.pe.transistors
    assert "NaN" not in entry.read_text()             # rebuilt


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_output_folders_and_files_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        with staged_folder(tmp_path / "out") as stage:
            (stage / "a.txt").write_text("x")
        atomic_write_text(tmp_path / "out2" / "f.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "out2" / "f.json").stat().st_mode & 0o777 == 0o666 & ~mask
