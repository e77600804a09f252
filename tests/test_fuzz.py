"""Property-based tests: every command and every public library function, given bad input,
answers with a clear error and never a traceback or a hang.

A command gets a valid base invocation with one flag made bad (a value of the wrong
kind, out of range, non-finite, absurdly long), an unknown flag, or a broken file; it must
exit 2 with one line on stderr naming the flag and, under ``--json``, exactly one JSON
object whose ``parameter`` is that flag. Library functions must raise ``UserError`` (or
``TypeError`` for a wrong Python type, raised by an argument check and not from deeper
inside) within hypothesis's deadline.

The default suite runs ``FUZZ_EXAMPLES`` examples per property (``SYSTOLAB_FUZZ_EXAMPLES``
raises it; README: "Fuzzing").
"""
from __future__ import annotations

import contextlib
import inspect
import io
import json
import linecache
import math
import os
import string
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from systolab import AcceleratorConfig, UserError
from systolab.cli import build_parser, main
from systolab.sim.core_bench import run_gemms

FUZZ_EXAMPLES = int(os.environ.get("SYSTOLAB_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# -- the command line ---------------------------------------------------------------------------
# A valid base invocation per command (cheap when valid: nothing below reaches a simulator or
# synthesis, since exactly one flag is always bad and flags are checked before any work).
BASE = {
    "rtl": ["rtl", "--out", "{tmp}/rtl"],
    "verify": ["verify", "--gemm", "2x2x2", "--sim", "amaranth"],
    "perf": ["perf", "--gemm", "8x8x8"],
    "map": ["map", "--chip", "sl-tiny", "--gemm", "8x8x8"],
    "explore": ["explore", "{tmp}/no-such-space.yaml", "--out", "{tmp}/ex", "--search", "lhs"],
    "validate": ["validate", "--sim", "amaranth", "--shapes", "1"],
    "compare": ["compare", "--out", "{tmp}/cmp", "--workload", "dlrm", "--gpus", "h20"],
    "area": ["area", "--rows", "2", "--cols", "2"],
    "gpu": ["gpu", "--gpu", "h20", "--gemm", "8x8x8"],
    "export-control": ["export-control", "--rows", "8", "--cols", "8", "--clock-mhz", "500", "--die-area-mm2", "50"],
}
POSITIVE_INT = ["0", "-1", "1.5", "x", "", "9" * 40, "1e3", "inf", "0x10"]
POSITIVE_REAL = ["0", "-1", "inf", "-inf", "nan", "x", "", "1e999", "--", "1,5"]
SEED = ["-1", "x", "1.5", "9" * 40]
# flag -> bad values, per command; None: a choice or name (any text that is not a valid one)
FLAGS = {
    "rtl": {"rows": POSITIVE_INT + ["65"], "cols": POSITIVE_INT + ["65"], "acc-bits": POSITIVE_INT,
            "beat-bytes": POSITIVE_INT + ["3"], "a-buffer-kib": POSITIVE_REAL, "dataflow": None, "dtype": None,
            "overflow": None, "out": [""]},
    "verify": {"gemm": ["0x1x1", "1x1", "axbxc", "", "9" * 20 + "x1x1"], "gemms": ["-1", "x", "100000"],
               "seed": SEED, "stall-prob": ["1", "-0.1", "nan", "inf", "2"], "latency": POSITIVE_INT,
               "bytes-per-cycle": POSITIVE_REAL, "sim": None, "rows": POSITIVE_INT},
    "perf": {"gemm": ["0x1x1", "1x1", ""], "cores": POSITIVE_INT, "clock-mhz": POSITIVE_REAL,
             "latency": POSITIVE_INT, "bytes-per-cycle": POSITIVE_REAL, "batch": POSITIVE_INT,
             "seq-len": POSITIVE_INT},
    "map": {"gemm": ["0x1x1", "1x1", ""], "count": POSITIVE_INT, "search": None, "chip": None},
    "explore": {"trials": POSITIVE_INT, "seed": SEED, "jobs": POSITIVE_INT, "search": None, "out": [""]},
    "validate": {"shapes": POSITIVE_INT, "seed": SEED, "jobs": POSITIVE_INT, "sim": None},
    "compare": {"batch": POSITIVE_INT, "seq-len": POSITIVE_INT, "fit-die-mm2": POSITIVE_REAL,
                "fit-power-w": POSITIVE_REAL, "gpus": None, "iso": None, "out": [""]},
    "area": {"node": None, "gemm": ["0x1x1", "x"], "rows": POSITIVE_INT},
    "gpu": {"gpu": None, "dtype": None, "gemm": ["0x1x1", "1x1x"], "batch": POSITIVE_INT},
    "export-control": {"rows": POSITIVE_INT, "clock-mhz": POSITIVE_REAL, "die-area-mm2": POSITIVE_REAL,
                       "cores": POSITIVE_INT, "io-bidir-gbps": ["-1", "nan", "inf", "x"],
                       "dram-bw-gbps": ["-1", "nan", "inf", "x"], "rule-date": None},
}
VALID_NAMES = {"dataflow": {"os", "ws"}, "dtype": {"int8", "uint8", "int16", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2",
                                                   "tf32", "fp32"},
               "overflow": {"wrap", "saturate"}, "sim": {"auto", "verilator", "icarus", "amaranth"},
               "node": {"n28", "n16", "n7", "n5", "n4", "n3", "smic-7duv"}, "gpus": set(), "iso": {"area", "power", "price"},
               "gpu": set(), "rule-date": set(), "search": {"fast", "exhaustive", "grid", "random", "lhs", "nsga2", "tpe"},
               "chip": set()}


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _check_user_error(argv: list[str], flag: str | None) -> None:
    rc, out, err = _cli(argv + ["--json"])
    assert rc == 2, (argv, rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("systolab: error: "), (argv, err)
    payload = json.loads(out)               # exactly one JSON object
    assert set(payload) == {"error", "parameter"} and payload["error"]
    if flag is not None:
        assert payload["parameter"] in (flag, flag.replace("-", "_")), (argv, payload)


name_text = st.text(alphabet=string.ascii_letters + string.digits + "_-./", min_size=0, max_size=12)


@st.composite
def bad_invocations(draw):
    command = draw(st.sampled_from(sorted(BASE)))
    flag = draw(st.sampled_from(sorted(FLAGS[command])))
    values = FLAGS[command][flag]
    if values is None:
        value = draw(name_text.filter(lambda t: t not in VALID_NAMES[flag] and not t.startswith("-")
                                      and (flag != "gpus" or t.strip(", ") != "")
                                      and (flag != "rule-date" or not t[:4].isdigit())))
        if flag == "gpus":
            value = value + ",nope"          # at least one id that is not a GPU
    else:
        value = draw(st.sampled_from(values))
    return command, flag, value


@FUZZ
@given(bad_invocations())
def test_cli_bad_flag_values(tmp_path_factory, case):
    command, flag, value = case
    tmp = tmp_path_factory.mktemp("fuzz")
    base = [a.format(tmp=tmp) for a in BASE[command]]
    # the flag given twice: argparse keeps the last, so the bad value wins over the base's
    argv = base + [f"--{flag}={value}"] if value.startswith("-") else base + [f"--{flag}", value]
    _check_user_error(argv, flag)


@FUZZ
@given(command=st.sampled_from(sorted(BASE)),
       flag=st.text(alphabet=string.ascii_lowercase + "-", min_size=2, max_size=10))
def test_cli_unknown_flags(tmp_path_factory, command, flag):
    known = {a for action in build_parser()._subparsers._group_actions[0].choices[command]._actions
             for a in action.option_strings}
    if f"--{flag}" in known or any(k.startswith(f"--{flag}") for k in known):
        return                                # a real flag, or a prefix argparse would expand
    tmp = tmp_path_factory.mktemp("fuzz")
    _check_user_error([a.format(tmp=tmp) for a in BASE[command]] + [f"--{flag}", "1"], flag)


CONFIG_FILES = [
    (b"rows = = 3\n", "config", ".toml"),
    (b"\xff\xfe\x00rows = 3\n", "config", ".toml"),
    (b"rows: [1, 2\n", "config", ".yaml"),
    (b"colls = 3\n", "colls", ".toml"),
    (b"rows = 3\n[accelerator]\ncols = 4\n", "rows", ".toml"),
    (b"rows = 0\n", "rows", ".toml"),
    (b"rows = inf\n", "rows", ".toml"),
    (b"a_buffer_kib = nan\n", "a_buffer_kib", ".toml"),
    (b"!!python/object:os.system 'ls'\n", "config", ".yaml"),
    (b"- 1\n- 2\n", "config", ".yaml"),
    (b"rows: 4\n", "config", ".txt"),
]


@pytest.mark.parametrize("text, parameter, suffix", CONFIG_FILES)
def test_cli_bad_config_files(tmp_path, text, parameter, suffix):
    f = tmp_path / f"design{suffix}"
    f.write_bytes(text)
    _check_user_error(["perf", "--gemm", "8x8x8", "--config", str(f)], None)
    rc, out, _ = _cli(["perf", "--gemm", "8x8x8", "--config", str(f), "--json"])
    assert parameter in json.loads(out)["error"]


WORKLOAD_FILES = [
    b"name,M,N,K\nx,1,1\n",
    b"name,M,N,K\n\xff,1,1,1\n",
    b"name,M,N,K\nx,-1,1,1\n",
    b"name,M,N,K\nx,1,1," + b"9" * 40 + b"\n",
    b"Layer, M, N, K,\nx, 1, 2\n",
    b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    b"c, 8, 8, 3, 3, 1, 4, 0,\n",
    b"name,M,N,K\n",
    b"",
]


@pytest.mark.parametrize("text", WORKLOAD_FILES)
@pytest.mark.parametrize("command", [["perf"], ["gpu", "--gpu", "h20"]])
def test_cli_bad_workload_files(tmp_path, text, command):
    f = tmp_path / "w.csv"
    f.write_bytes(text)
    _check_user_error(command + ["--workload", str(f)], "workload")


CHIP_EDITS = ["chips: {}\n", "schema: x\n", "schema: systolab-chips/1\nchips: {x: {core: {rows: 4}}}\n",
              "\xff", "schema: systolab-chips/1\nchips: [1]\n"]


@pytest.mark.parametrize("text", CHIP_EDITS)
def test_cli_bad_chip_files(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_bytes(text.encode("latin-1"))
    _check_user_error(["compare", str(f), "--out", str(tmp_path / "o")], None)


def test_cli_bad_cache_folder(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    monkeypatch.setenv("SYSTOLAB_CACHE", str(f / "cache"))
    _check_user_error(["verify", "--gemm", "2x2x2", "--sim", "verilator"], "SYSTOLAB_CACHE")


# -- the library --------------------------------------------------------------------------------
# not a positive finite number (for every numeric parameter), and for integer ones also 1.5
bad_reals = st.one_of(st.sampled_from([0, -1, -7, float("nan"), float("inf"), -float("inf"), 10**321, True, None,
                                       "4", [], np.float64("nan")]),
                      st.integers(max_value=0), st.floats(allow_nan=True, allow_infinity=True).filter(
                          lambda v: not (math.isfinite(v) and v > 0)))
bad_numbers = st.one_of(bad_reals, st.sampled_from([1.5, 2**80]))


def _own_code(fn) -> set:
    """The code objects of ``fn``'s own body: the function's, or a class's constructor and
    ``__post_init__`` (where a dataclass checks its fields)."""
    if isinstance(fn, type):
        parts = [getattr(fn, name, None) for name in ("__new__", "__init__", "__post_init__")]
    else:
        parts = [getattr(fn, "__func__", fn)]
    return {inspect.unwrap(p).__code__ for p in parts if hasattr(inspect.unwrap(p), "__code__")}


def _from_an_argument_check(fn, error: TypeError) -> bool:
    """Whether ``error`` was raised by an argument check: the innermost frame of its traceback
    is in ``systolab.checks``, or it is a ``raise`` statement in a ``check_*``/``_check*``
    function of systolab or in the body of ``fn`` itself (its validation at the top). A
    TypeError from anywhere else (numpy, a model's arithmetic, an operation in ``fn``'s own
    body, Python's binding of the call) is a crash, not a rejection."""
    frames = list(traceback.walk_tb(error.__traceback__))
    if len(frames) < 2:                     # raised by the call itself, before fn's body ran
        return False
    frame, lineno = frames[-1]
    module, name = frame.f_globals.get("__name__", ""), frame.f_code.co_name
    if module == "systolab.checks":
        return True
    a_check = module.startswith("systolab.") and (name.startswith("check_") or name.startswith("_check"))
    if not (a_check or frame.f_code in _own_code(fn)):
        return False
    return linecache.getline(frame.f_code.co_filename, lineno).lstrip().startswith("raise ")


def _raises_cleanly(fn, *args, **kwargs):
    """Assert that ``fn(*args, **kwargs)`` rejects its input: ``UserError``, or ``TypeError``
    from an argument check (:func:`_from_an_argument_check`)."""
    try:
        fn(*args, **kwargs)
    except UserError:
        return
    except TypeError as e:
        if _from_an_argument_check(fn, e):
            return
        raise AssertionError(f"{getattr(fn, '__name__', fn)}{args}{kwargs} crashed with a TypeError "
                             f"outside the argument checks: {e}") from e
    raise AssertionError(f"{getattr(fn, '__name__', fn)}{args}{kwargs} accepted bad input")


def _validating(value):
    if not isinstance(value, int):
        raise TypeError(f"value must be an int, not {type(value).__name__}")
    return value + 1


def _deep(value):
    return [value][0] + 1                   # a TypeError from the arithmetic, not from a check


def _calls_deep(value):
    return _deep(value)


def _checks_then_adds(value):
    from systolab.checks import check_int

    return check_int("value", value) + 1


def test_raises_cleanly_tells_a_check_from_a_crash():
    _raises_cleanly(_validating, "x")                  # the function's own check at its top
    _raises_cleanly(_checks_then_adds, "x")            # systolab.checks (a UserError)
    _raises_cleanly(AcceleratorConfig, rows="4")       # a dataclass's own checks
    _raises_cleanly(run_gemms, AcceleratorConfig(), 5)  # a check_* function of systolab (a TypeError)
    assert not _from_an_argument_check(_validating, _error_of(lambda: _deep("x")))
    for fn in (_deep, _calls_deep):                    # deep inside: not a clean rejection
        with pytest.raises(AssertionError, match="outside the argument checks"):
            _raises_cleanly(fn, "x")
    with pytest.raises(AssertionError, match="accepted bad input"):
        _raises_cleanly(_validating, 1)
    assert not _from_an_argument_check(_validating, _error_of(lambda: _validating(1, 2)))


def _error_of(call) -> TypeError:
    try:
        call()
    except TypeError as e:
        return e
    raise AssertionError("no TypeError")


@FUZZ
@given(field=st.sampled_from(["rows", "cols", "acc_bits", "beat_bytes"]), value=bad_numbers,
       kib=st.sampled_from(["a_buffer_kib", "b_buffer_kib", "acc_buffer_kib"]), kib_value=bad_reals)
def test_library_config_fields(field, value, kib, kib_value):
    _raises_cleanly(AcceleratorConfig, **{field: value})
    _raises_cleanly(AcceleratorConfig, **{kib: kib_value})


@FUZZ
@given(dim=st.sampled_from(["M", "N", "K"]), value=bad_numbers)
def test_library_models_reject_bad_shapes(dim, value):
    from systolab.models.core.perf import core_perf
    from systolab.models.workloads.gemm import Gemm

    shape = {"M": 8, "N": 8, "K": 8, dim: value}
    _raises_cleanly(Gemm, shape["M"], shape["N"], shape["K"], "int8")
    _raises_cleanly(core_perf, AcceleratorConfig(), shape["M"], shape["N"], shape["K"])


@FUZZ
@given(latency=bad_numbers, bandwidth=st.one_of(bad_reals, st.sampled_from([0.5, 2000.0])))
def test_library_memory_system(latency, bandwidth):
    from systolab.models.core.perf import MemorySystem

    _raises_cleanly(MemorySystem, latency_cycles=latency)
    _raises_cleanly(MemorySystem, bytes_per_cycle=bandwidth)


@FUZZ
@given(name=st.sampled_from(["cores", "clock_hz", "dram_bytes_per_s"]), value=bad_reals)
def test_library_chip_perf(name, value):
    from systolab.models.core.perf import chip_perf

    kwargs = {"cores": 4, "clock_hz": 1e9, "dram_bytes_per_s": 1e11, name: value}
    _raises_cleanly(chip_perf, AcceleratorConfig(), 64, 64, 64, **kwargs)


@FUZZ
@given(name=st.sampled_from(["tpp", "die_area_mm2", "io_bidir_GBps", "dram_bw_GBps"]), value=bad_reals)
def test_library_export_control(name, value):
    from systolab.models.legal.export_control import classify

    kwargs = {"tpp": 100.0, "die_area_mm2": 100.0, name: value}
    if name != "tpp" and value is None:
        return                                        # None is "unknown" for these, by design
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300 \
        and math.isfinite(value)
    if name != "die_area_mm2" and finite and value >= 0:
        return                                        # zero TPP or bandwidth is valid
    _raises_cleanly(classify, **kwargs)


@FUZZ
@given(field=st.sampled_from(["cores", "clock_mhz", "global_sram_mib", "noc_overhead_fraction", "rows",
                              "dram_stacks", "dram_GBps_per_stack", "volume_units"]), value=bad_numbers)
def test_library_chip_derive(field, value):
    from systolab.models.chip.config import get_chip

    valid = {"global_sram_mib": (0, 1.5), "noc_overhead_fraction": (0,), "clock_mhz": (1.5,),
             "dram_GBps_per_stack": (1.5,)}
    if value in valid.get(field, ()) and not isinstance(value, bool):
        return                                        # valid for these fields
    _raises_cleanly(get_chip().derive, **{field: value})


@FUZZ
@given(name=st.sampled_from(["batch", "seq_len"]), value=bad_numbers)
def test_library_workloads(name, value):
    from systolab.models.workloads.catalog import get_workload

    if value is None:
        return                                        # None means "the default"
    _raises_cleanly(get_workload, "llama3-8b-decode", dtype="int8", **{name: value})


@FUZZ
@given(name=st.sampled_from(["die_area_mm2", "memory_GB"]), value=bad_reals)
def test_library_cost(name, value):
    from systolab.models.cost.pricing import unit_cost

    if name == "memory_GB" and value == 0:
        return
    _raises_cleanly(unit_cost, **{"die_area_mm2": 100.0, "node": "n7", "memory_GB": 8.0, name: value})


def _objects_of_the_wrong_kind():
    from systolab.models.chip.config import get_chip
    from systolab.models.chip.mapper import map_gemms
    from systolab.models.chip.perf import chip_gemm_perf
    from systolab.models.core.perf import core_cycles, core_cycles_many, core_perf
    from systolab.models.gpu.model import estimate_gemm
    from systolab.models.report.evaluate import evaluate_chip, evaluate_gpu
    from systolab.models.silicon.area import model_area
    from systolab.models.silicon.synthesis import synthesize

    cfg = AcceleratorConfig()
    return [(core_perf, (cfg, 8, 8, 8, "memory")), (core_cycles, (cfg, 8, 8, 8, "memory")),
            (core_cycles_many, (cfg, [8], [8], [8], "memory")), (map_gemms, ("sl-tiny", [])),
            (chip_gemm_perf, (get_chip("sl-tiny"), 8, 8, 8, "32x32x32")), (synthesize, ("config",)),
            (model_area, ("config",)), (estimate_gemm, ("h100-sxm", (8, 8, 8))),
            (evaluate_chip, (get_chip(), "llama3-8b-decode")), (evaluate_gpu, ("h100-sxm", "llama3-8b-decode"))]


def test_library_objects_of_the_wrong_kind():
    # a name or a tuple where an object is expected: a TypeError from the function's own check
    for fn, args in _objects_of_the_wrong_kind():
        _raises_cleanly(fn, *args)


@pytest.mark.parametrize("kwargs", [dict(stall_prob=1.0), dict(stall_prob=-0.5), dict(stall_prob=float("nan")),
                                    dict(latency=0), dict(bytes_per_cycle=0), dict(seed=-1)])
def test_run_gemm_rejects_memory_that_never_moves(kwargs):
    from systolab.sim.core_bench import run_gemm

    a = np.ones((2, 2), dtype=int)
    _raises_cleanly(run_gemm, AcceleratorConfig(), a, a, **kwargs)


@pytest.mark.parametrize("a, b", [(np.ones(3, int), np.ones((3, 2), int)), (np.ones((2, 3), int), np.ones((2, 2), int)),
                                  (np.ones((2, 2)) * 0.5, np.ones((2, 2), int)), (np.full((2, 2), 300), np.ones((2, 2), int)),
                                  (np.ones((0, 2), int), np.ones((2, 2), int))])
def test_run_gemm_rejects_bad_matrices(a, b):
    from systolab.sim.core_bench import run_gemm

    _raises_cleanly(run_gemm, AcceleratorConfig(), a, b)
