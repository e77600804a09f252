"""Design-space exploration: the space file's checks, samplers, the store's resume after
kill -9, exact Pareto fronts and bit-identical replay."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from systolab.cli import main
from systolab.errors import UserError
from systolab.flows.deep import deep_check
from systolab.models.chip.config import get_chip
from systolab.models.explore import explore, load_space, replay, run_explore
from systolab.models.explore.stages import pareto

SPACE = {
    "base": "sl-n7-os32-edge",
    "parameters": {"cores": [4, 8, 16], "clock_mhz": {"min": 600, "max": 800, "step": 200}},
    "workloads": [{"name": "bert-base", "batch": 1, "seq_len": 128}],
    "objectives": [{"metric": "throughput", "workload": "bert-base", "goal": "max"},
                   {"metric": "power_W", "goal": "min"}],
    "constraints": {"die_mm2_max": 858},
}


def _space(**changes) -> dict:
    d = json.loads(json.dumps(SPACE))
    for key, value in changes.items():
        d[key] = value
    return d


@pytest.mark.parametrize("change, field", [
    (dict(parameters={"corez": [4]}), "parameters.corez"),
    (dict(parameters={"cores": []}), "parameters.cores"),
    (dict(parameters={"cores": {"min": 8, "max": 4}}), "parameters.cores"),
    (dict(objectives=[{"metric": "tokens", "goal": "max"}]), "objectives[0].metric"),
    (dict(objectives=[{"metric": "throughput", "workload": "dlrm", "goal": "max"}]), "objectives[0].workload"),
    (dict(constraints={"die_max": 1}), "constraints.die_max"),
    (dict(workloads=[{"name": "gpt5"}]), "workloads[0]"),
    (dict(speed=1), "speed"),
    (dict(budget_usd=-1), "budget_usd"),
    (dict(gpus=["h999"]), "gpus[0]"),
    (dict(workloads=[{"serve": "llama9", "isl": 8, "osl": 8, "batch": 1}]), "workloads[0].serve"),
    (dict(workloads=[{"serve": "llama3-8b", "isl": 8, "osl": 8}]), "workloads[0].batch"),
    (dict(workloads=[{"serve": "llama3-8b", "isl": 0, "osl": 8, "batch": 1}]), "workloads[0].isl"),
    (dict(workloads=[{"serve": "llama3-8b", "isl": 8, "osl": 8, "batch": 1, "pp": 2}]), "workloads[0].pp"),
    (dict(workloads=[{"serve": "llama3-8b", "isl": 8, "osl": 8, "batch": 1}],
          objectives=[{"metric": "utilization", "workload": "llama3-8b-serving", "goal": "max"}]),
     "objectives[0].metric"),
])
def test_a_bad_space_names_the_file_and_field(tmp_path, change, field):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(_space(**change)))
    with pytest.raises(UserError) as e:
        load_space(path)
    assert str(path) in str(e.value) and field in str(e.value) and e.value.parameter == "space"


def test_grid_random_and_lhs_are_deterministic_and_cover_the_space():
    sp = load_space(_space(parameters={"cores": [4, 8, 16], "clock_mhz": {"min": 600, "max": 1000}}))
    with pytest.raises(UserError, match="continuous range has no grid"):
        sp.grid()
    a, b = sp.sample("lhs", 30, seed=3), sp.sample("lhs", 30, seed=3)
    assert a == b and a != sp.sample("lhs", 30, seed=4)
    clocks = np.sort([p["clock_mhz"] for p in a])
    # a Latin hypercube puts exactly one point in each of the 30 strata of every dimension
    assert np.array_equal(np.floor((clocks - 600) / 400 * 30).astype(int), np.arange(30))
    assert {p["cores"] for p in sp.sample("random", 40, seed=1)} == {4, 8, 16}
    assert len(load_space(SPACE).grid()) == 6


def test_pareto_front_is_exact(tmp_path):
    res = run_explore(SPACE, db=tmp_path / "db.sqlite")
    points = res["all_points"]
    assert res["points"] == 6 and res["feasible"] == 6
    front = {p["design_hash"] for p in res["pareto"]}
    for p in points:
        t, w = p["result"]["workloads"]["bert-base"]["throughput"], p["result"]["power_W"]
        dominated = any(q["result"]["workloads"]["bert-base"]["throughput"] >= t and q["result"]["power_W"] <= w
                        and (q["result"]["workloads"]["bert-base"]["throughput"] > t or q["result"]["power_W"] < w)
                        for q in points)
        assert (p["design_hash"] in front) == (not dominated)
    assert pareto(load_space(SPACE), []) == []


def test_infeasible_space_says_which_constraint_empties_it(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(_space(constraints={"power_W_max": 0.5})))
    assert main(["explore", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feasible"] == 0 and out["pareto"] == [] and out["binding"] == "power_W_max"


def test_replay_is_bit_identical(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    assert main(["explore", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert all(Path(f).is_file() and Path(f).stat().st_size > 0 for f in first["outputs"].values())
    assert "## Pareto front" in (tmp_path / "out" / "report.md").read_text()
    for p in first["pareto"]:                       # every Pareto point reruns bit-identically
        assert replay(path, db=tmp_path / "out.sqlite", design_hash_=p["design_hash"])["identical"]
    assert main(["explore", str(path), "--out", str(tmp_path / "out"), "--replay", "feedface", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "replay"


def test_a_killed_sweep_resumes_with_nothing_lost_or_repeated(tmp_path):
    """kill -9 a real sweep mid-run; the rerun evaluates only what is missing and ends with
    the uninterrupted run's points and Pareto front."""
    # enough designs that a sweep cannot finish between two looks at the store (the
    # compiled models evaluate a hundred or more a second)
    space = _space(parameters={"cores": [2, 4, 8, 16], "clock_mhz": {"min": 500, "max": 1200, "step": 10}})
    total = 4 * 71
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    db = tmp_path / "killed.sqlite"
    argv = [sys.executable, "-m", "systolab", "explore", str(path), "--out", str(tmp_path / "k"), "--db", str(db),
            "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if db.exists():
            try:
                with sqlite3.connect(db) as c:
                    stored = c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
            except sqlite3.OperationalError:
                stored = 0
            if stored >= 3:
                break
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as c:
        before = c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    assert 3 <= before < total
    resumed = run_explore(space, db=db)
    assert resumed["evaluated"] == total - before and resumed["points"] == total
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT hash) FROM points").fetchone() == (total, total)
    clean = run_explore(space, db=tmp_path / "clean.sqlite")
    assert resumed["pareto"] == clean["pareto"]
    assert [p["result"] for p in resumed["all_points"]] == [p["result"] for p in clean["all_points"]]


@pytest.mark.parametrize("kwargs, parameter", [(dict(trials=0, search="lhs"), "trials"), (dict(seed=-1), "seed"),
                                               (dict(jobs=2, executor="dask://127.0.0.1:8786"), "jobs"),
                                               (dict(executor="ray://127.0.0.1:10001"), "executor"),
                                               (dict(executor="dask://nohost"), "executor"), (dict(deep=-1), "deep"),
                                               (dict(search="anneal"), "search")])
def test_library_explore_checks_its_parameters(tmp_path, kwargs, parameter):
    with pytest.raises(UserError) as e:
        run_explore(SPACE, db=tmp_path / "db.sqlite", **kwargs)
    assert e.value.parameter == parameter


def test_library_explore_returns_a_frame_with_units(tmp_path):
    df = explore(SPACE, db=tmp_path / "db.sqlite")
    assert len(df) == 6 and {"cores", "clock_mhz", "power_W", "bert-base.throughput_units_per_s",
                             "bert-base.seconds_s", "pareto"} <= set(df.columns)
    assert df.attrs["feasible"] == 6 and df["pareto"].sum() == len(df.attrs["pareto"]) >= 1


@pytest.mark.parametrize("search", ["nsga2", "tpe"])
def test_optuna_searches_store_every_point_and_resume(tmp_path, search):
    space = _space(parameters={"cores": {"min": 4, "max": 32, "step": 4}, "clock_mhz": [500, 700, 900]})
    first = run_explore(space, db=tmp_path / "db.sqlite", search=search, trials=6, seed=2)
    assert 1 <= first["points"] <= 6 and first["evaluated"] == first["points"]
    again = run_explore(space, db=tmp_path / "db.sqlite", search=search, trials=8, seed=2)
    assert again["points"] >= first["points"] and again["evaluated"] <= 2
    assert all(p["design_hash"] for p in again["pareto"])


@pytest.mark.parametrize("argv, parameter", [
    (["--trials", "5"], "trials"),
    (["--replay", "abc", "--deep", "1"], "deep"),
    (["--executor", "ray://127.0.0.1:10001"], "executor"),
    (["--replay", "abc", "--search", "lhs"], "search"),
    (["--search", "anneal"], "search"),
])
def test_explore_cli_refuses_flags_that_would_be_ignored(tmp_path, capsys, argv, parameter):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    assert main(["explore", str(path), "--out", str(tmp_path / "o"), *argv, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == parameter


def test_a_local_dask_cluster_of_two_workers_gives_the_local_result(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = run_explore(SPACE, db=tmp_path / "local.sqlite")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        remote = run_explore(SPACE, db=tmp_path / "dask.sqlite", executor=address)
        again = run_explore(SPACE, db=tmp_path / "dask.sqlite", executor=address)
        tpe = run_explore(SPACE, db=tmp_path / "tpe.sqlite", executor=address, search="tpe", trials=4, seed=1)
    assert remote["evaluated"] == 6 and again["evaluated"] == 0 and remote["executor"] == address
    assert [p["result"] for p in remote["all_points"]] == [p["result"] for p in local["all_points"]]
    assert remote["pareto"] == local["pareto"]
    assert 1 <= tpe["points"] <= 4 and tpe["evaluated"] == tpe["points"]


def test_optuna_searches_ask_a_batch_per_local_worker(tmp_path):
    space = _space(parameters={"cores": {"min": 4, "max": 32, "step": 4}, "clock_mhz": [500, 700, 900]})
    one = run_explore(space, db=tmp_path / "a.sqlite", search="nsga2", trials=6, seed=3, jobs=2)
    two = run_explore(space, db=tmp_path / "b.sqlite", search="nsga2", trials=6, seed=3, jobs=2)
    assert one["pareto"] == two["pareto"] and 1 <= one["points"] <= 6


@pytest.mark.verilator
def test_the_deep_stage_verifies_a_pareto_point_and_is_kept_in_the_store(tmp_path):
    space = _space(base="sl-tiny", parameters={"cores": [1, 2]}, constraints={})
    res = run_explore(space, db=tmp_path / "db.sqlite", deep=1, deep_stage=deep_check)
    (d,) = res["deep"]
    best = max(res["pareto"], key=lambda p: p["objectives"]["throughput[bert-base]"])   # the first objective
    assert d["design_hash"] == best["design_hash"]
    assert d["passed"] and d["cycles_exact"] and d["rtl_cycles"] == d["model_cycles"]
    assert abs(d["area_error"]) < 0.05 and d["synth_array_mm2"] > 0

    def boom(job):
        raise AssertionError("the deep stage ran again")

    again = run_explore(space, db=tmp_path / "db.sqlite", deep=1, deep_stage=boom)
    assert again["deep"] == res["deep"] and again["evaluated"] == 0


def test_fleet_metrics_follow_the_budget_without_reevaluating(tmp_path):
    space = _space(objectives=[{"metric": "fleet_throughput", "workload": "bert-base", "goal": "max"},
                               {"metric": "fleet_units", "goal": "max"}], budget_usd=1e6)
    small = explore(space, db=tmp_path / "db.sqlite")
    big = explore({**space, "budget_usd": 1e9}, db=tmp_path / "db.sqlite")
    assert big.attrs["evaluated"] == 0                      # the budget is judged at read
    for df, budget in ((small, 1e6), (big, 1e9)):
        assert (df["fleet_units"] == np.floor(budget / df["unit_cost_usd"])).all()
        assert np.allclose(df["bert-base.fleet_throughput_units_per_s"],
                           df["fleet_units"] * df["bert-base.throughput_units_per_s"])


def test_a_serving_workload_is_timed_by_the_serving_model_and_buys_whole_groups(tmp_path):
    from systolab.models.serving.model import serve_auto

    w = {"serve": "llama3-8b", "isl": 512, "osl": 64, "concurrency": 8}
    space = _space(base="sl-n4-os32", parameters={"cores": [64, 512], "dram_stacks": [1]},
                   workloads=[w], budget_usd=1e8,
                   objectives=[{"metric": "fleet_throughput", "workload": "llama3-8b-serving", "goal": "max"},
                               {"metric": "ttft_s", "workload": "llama3-8b-serving", "goal": "min"}],
                   gpus=["h100-sxm", "h20"])
    res = run_explore(space, db=tmp_path / "db.sqlite")
    assert res["points"] == 2 and res["feasible"] == 2 and res["pareto"]
    for p in res["all_points"]:
        chip = get_chip("sl-n4-os32").derive(**p["design"])
        r = serve_auto(chip, "llama3-8b", isl=512, osl=64, concurrency=8)
        m = p["result"]["workloads"]["llama3-8b-serving"]
        assert (m["throughput"], m["ttft_s"], m["devices"]) == (r.output_tokens_per_s, r.ttft_s, r.devices)
        groups = p["result"]["fleet_units"] // r.devices
        assert m["fleet_throughput"] == pytest.approx(groups * r.output_tokens_per_s_group)
    # the GPUs serve it too (in their own format), as reference points
    from systolab.models.explore import gpu_reference

    ref = gpu_reference(load_space(space))
    assert ref["h100-sxm"]["workloads"]["llama3-8b-serving"]["throughput"] == pytest.approx(
        serve_auto("h100-sxm", "llama3-8b", isl=512, osl=64, concurrency=8).output_tokens_per_s)


def test_a_design_whose_memory_holds_no_serving_group_is_marked_capacity(tmp_path):
    space = _space(workloads=[{"serve": "llama3-70b", "isl": 2048, "osl": 256, "concurrency": 64, "tp": 1}],
                   objectives=[{"metric": "throughput", "workload": "llama3-70b-serving", "goal": "max"}])
    res = run_explore(space, db=tmp_path / "db.sqlite")
    assert res["feasible"] == 0 and res["pareto"] == [] and res["binding"] == "capacity"


def test_the_bundled_spaces_load_by_name():
    for name in ("h20-beater", "fleet-7b"):
        sp = load_space(name)
        assert sp.source.endswith(f"{name}.yaml") and sp.grid()
    assert load_space("fleet-7b").budget_usd == 7e9 and "b200" in load_space("fleet-7b").gpus


def test_the_pareto_plot_has_a_panel_per_pair_of_objectives(tmp_path):
    from systolab.models.explore import plot_pareto

    space = _space(objectives=[*SPACE["objectives"], {"metric": "die_mm2", "goal": "min"}])
    res = run_explore(space, db=tmp_path / "db.sqlite")
    sp = load_space(space)
    fig = plot_pareto(sp, res["all_points"], {p["design_hash"] for p in res["pareto"]})
    assert len(fig.axes) == 3
    assert [a.get_xlabel().split(" ")[0] for a in fig.axes] == ["throughput[bert-base]", "throughput[bert-base]",
                                                                 "power_W"]
    assert all(len(a.collections) >= 2 for a in fig.axes)     # feasible points and the front on every panel
    with pytest.raises(UserError, match="3 axes"):
        plot_pareto(sp, res["all_points"], set(), ax=fig.axes[0])


def test_the_deep_stage_is_injected_and_the_models_never_import_the_flows(tmp_path):
    """The models run no simulator: a deep stage is the caller's (systolab.explore and the
    CLI pass systolab.flows.deep.deep_check), and importing the models' exploration leaves
    systolab.flows unimported."""
    import systolab
    import systolab.flows.explore

    with pytest.raises(UserError) as e:
        run_explore(SPACE, db=tmp_path / "db.sqlite", deep=1)
    assert e.value.parameter == "deep"
    assert systolab.explore is systolab.flows.explore.explore
    code = "import sys, systolab.models.explore; print(any(m.startswith('systolab.flows') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_deep_stage_result_is_stored_as_its_dict_and_a_failure_is_not(tmp_path):
    from systolab.errors import SimulationError
    from systolab.models.explore.stages import deep_job

    class Result:
        def to_dict(self):
            return {"passed": True}

    def fails(job):
        raise SimulationError("verilator: build failed")

    assert deep_job((lambda job: Result(), (None, {}, 0))) == {"passed": True}
    assert deep_job((fails, (None, {}, 0))) == {"error": "verilator: build failed"}


def test_the_report_writer_writes_every_file_and_keeps_the_store_outside(tmp_path):
    from systolab.models.explore import write_explore_report
    from systolab.models.explore.report import REPORT_FILES

    res = run_explore(SPACE, db=tmp_path / "db.sqlite")
    files = write_explore_report(res, tmp_path / "out", SPACE)
    assert list(files) == list(REPORT_FILES)
    assert all(Path(f).is_file() and Path(f).stat().st_size > 0 for f in files.values())
    assert "## Pareto front" in (tmp_path / "out" / "report.md").read_text()
    inside = run_explore(SPACE, db=tmp_path / "out2" / "db.sqlite")
    with pytest.raises(UserError) as e:
        write_explore_report(inside, tmp_path / "out2", SPACE)
    assert e.value.parameter == "db"


def test_a_deep_check_reads_as_the_dict_the_store_keeps():
    from systolab.flows.deep import DeepCheck

    d = DeepCheck(core={"rows": 4}, node="n7", simulator="verilator", seed=1, shapes=((5, 7, 9),), passed=True,
                  mismatches=0, messages=(), rtl_cycles=(120,), model_cycles=(120,), synth_array_mm2=0.5,
                  model_array_mm2=0.51, verify_s=1.0, synth_s=2.0).to_dict()
    assert list(d) == ["core", "node", "simulator", "seed", "shapes", "passed", "mismatches", "messages", "rtl_cycles",
                       "model_cycles", "cycles_exact", "synth_array_mm2", "model_array_mm2", "area_error", "verify_s",
                       "synth_s"]
    assert d["shapes"] == [[5, 7, 9]] and d["rtl_cycles"] == [120] and d["cycles_exact"]
    assert d["area_error"] == 0.51 / 0.5 - 1 and json.loads(json.dumps(d)) == d
