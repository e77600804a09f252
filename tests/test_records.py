"""Records and fits that runs write: never into the installed package; the user's copy by
default, the repository's only with --write from a checkout; readers take the user's copy
when it is newer than the shipped one."""
import json
import os

import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.files import data_root
from systolab.flows import validate as val
from systolab.models import records
from systolab.models.gpu import fit as gemm_fit
from systolab.models.gpu.fit_file import FIT_FILE, clear_fit_caches, fit_file, fit_target
from systolab.models.gpu.model import estimate_gemm
from systolab.models.report.compare import validation_text
from systolab.models.serving import fit as sf
from systolab.models.specs import load_yaml
from systolab.models.workloads.gemm import Gemm

REPORT = {"simulator": "verilator", "seed": 1, "shapes": 3, "configurations": 1, "exact_cycles": 2,
          "max_abs_cycle_error": 4, "all_passed": True, "max_abs_error": {"cycles": 4, "steps": 0, "macs": 1},
          "cases": {"a chip": {"exact": 2, "shapes": 3}}}


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    """An empty user data folder; the fit's caches dropped before and after."""
    folder = tmp_path / "data"
    monkeypatch.setenv("SYSTOLAB_DATA_DIR", str(folder))
    clear_fit_caches()
    yield folder
    monkeypatch.delenv("SYSTOLAB_DATA_DIR")
    clear_fit_caches()


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The models package as an install lays it out (site-packages, no checkout)."""
    package = tmp_path / "site-packages" / "systolab" / "models"
    (package / "data").mkdir(parents=True)
    monkeypatch.setattr(records, "DATA_DIR", package / "data")
    return package


def test_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SYSTOLAB_DATA_DIR", str(tmp_path / "mine"))
    assert data_root() == tmp_path / "mine"
    monkeypatch.delenv("SYSTOLAB_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "systolab"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".local" / "share" / "systolab"
    assert not (tmp_path / "home").exists()         # looking does not create it


def test_a_checkout_is_a_git_work_tree_with_pyproject_beside_models(tmp_path, installed):
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    assert records.checkout_root(repo / "models") is None          # no pyproject.toml
    (repo / "pyproject.toml").write_text("")
    assert records.checkout_root(repo / "models") is None          # not in a git work tree
    (repo / ".git").write_text("gitdir: elsewhere\n")              # a worktree's .git is a file
    assert records.checkout_root(repo / "models") == repo.resolve()
    # an installed package, even in a virtual environment inside a checkout, is not one
    assert records.checkout_root(installed) is None
    (tmp_path / ".git").mkdir()
    assert records.checkout_root(installed) is None


def test_write_outside_a_checkout_is_refused_naming_the_parameter(installed, user_data, capsys):
    with pytest.raises(UserError, match="write: .*only a git checkout") as e:
        records.write_target("validation.yaml", write=True)
    assert e.value.parameter == "write"
    with pytest.raises(UserError) as e:
        val.record(REPORT, "chip", command="systolab validate --chip", write=True)
    assert e.value.parameter == "write"
    with pytest.raises(UserError) as e:
        fit_target(write=True)
    assert e.value.parameter == "write"
    with pytest.raises(UserError) as e:
        sf.refit(write=True)        # refused before minutes of fitting
    assert e.value.parameter == "write"
    # the command refuses before it simulates anything
    assert main(["validate", "--write", "--sim", "no-such-simulator", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "write"
    assert not user_data.exists()
    # without --write the user's copy is the target, wherever the package is
    assert records.write_target("validation.yaml", write=False) == user_data / "validation.yaml"


def test_from_a_checkout_write_targets_the_repository_copy():
    root = records.checkout_root()
    assert records.write_target("validation.yaml", write=True) == root / "models" / "data" / "validation.yaml"
    assert fit_target(write=True) == root / "models" / "data" / "gpu_fit.yaml"


def test_readers_take_the_user_copy_when_it_is_newer(user_data):
    shipped = records.shipped("validation.yaml")
    assert records.record_file() == shipped             # no user copy
    mine = user_data / "validation.yaml"
    mine.parent.mkdir()
    mine.write_text("core: null\n")
    assert records.record_file() == mine                # newer than the shipped one
    t = shipped.stat().st_mtime_ns
    os.utime(mine, ns=(t - 10**9, t - 10**9))
    assert records.record_file() == shipped             # older: the shipped one wins


def test_validate_records_to_the_user_copy_by_default(user_data):
    shipped = records.shipped("validation.yaml")
    before = (shipped.read_bytes(), shipped.stat().st_mtime_ns)
    core = records.recorded("core")
    written = val.record(REPORT, "chip", command="systolab validate --chip")
    assert written == user_data / "validation.yaml" and records.record_file() == written
    assert (shipped.read_bytes(), shipped.stat().st_mtime_ns) == before
    assert records.recorded("core") == core             # merged into what readers took
    assert validation_text("chip").startswith("2 of 3 GEMMs cycle-exact (max |error| 4 cycles)")


def test_fits_write_the_user_copy_by_default_and_the_model_reads_it(user_data):
    gemm = Gemm(4096, 4096, 4096, "fp16")
    want = estimate_gemm("h100-sxm", gemm).to_dict()
    before = (FIT_FILE.read_bytes(), FIT_FILE.stat().st_mtime_ns)
    theta = sf.stored_theta()
    written = gemm_fit.store(gemm_fit.stored(), gemm_fit.report())
    assert written == user_data / "gpu_fit.yaml" and fit_file() == written
    assert sf.store(theta) == written                   # merged: both fits in one file
    doc = load_yaml(written)
    assert doc["tile_overhead_k"] == load_yaml(FIT_FILE)["tile_overhead_k"] and doc["leave_one_out"] is None
    rows = [{"metric": "ttft_s", "error_pct": 1.0, "loo_error_pct": e, "id": f"run{e}"} for e in (-3.0, 2.0, 9.0)]
    assert sf.store_loo(rows) == written
    assert load_yaml(written)["leave_one_out"]["ttft_s"]["worst_loo_case"] == "run9.0"
    # the stored values again: the same numbers, from the user's copy
    assert estimate_gemm("h100-sxm", gemm).to_dict() == want
    assert (FIT_FILE.read_bytes(), FIT_FILE.stat().st_mtime_ns) == before


def test_the_validate_help_states_the_reading_rule(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "newer than the one shipped" in out and "--write" in out and "SYSTOLAB_DATA_DIR" in out
