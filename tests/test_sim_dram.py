"""The simulation-only DRAM (``sim/hdl_dram.py``) against the Python memory model
(``sim/memory.py``): the same requests, cycle for cycle; the DRAM image and the C read-back
against the Python layout; and, on Verilator, both chip harnesses on the same GEMMs."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from systolab.blocking import beat_spacing
from systolab.models.chip.config import get_chip
from systolab.models.chip.perf import chip_gemm_perf
from systolab.sim.chip_bench import c_of, chip_campaign, dram_image, layout, random_products
from systolab.sim.core_bench import load_c
from systolab.sim.golden import golden_matmul
from systolab.sim.hdl_dram import MIN_DRAM_BYTES, SimDram, back_door_words, dram_size
from systolab.sim.memory import ExternalMemory

TINY = get_chip("sl-tiny")
W = 16


@pytest.mark.parametrize("word, rate", [(16, 12.0), (16, 16.0), (32, 3.0), (32, 2.0), (128, 25.6), (16, 0.1),
                                        (64, 40.0), (16, 100.0)])
def test_beat_spacing_is_the_python_memorys_credit(word, rate):
    """The spacing the cycle model and the simulated DRAM take (``systolab.blocking``) is the
    one the independent Python memory model steps to: a long read, drained every cycle."""
    mem = ExternalMemory(64 * word, latency=1, bytes_per_cycle=rate)
    mem.start_port(word)
    idle = dict(rd_cmd_addr=0, wr_cmd_valid=0, wr_cmd_addr=0, wr_cmd_beats=0, wr_data_valid=0, wr_data=0,
                wr_strobe=0)
    beats = []
    for cycle in range(40 * beat_spacing(word, rate) + 8):
        if mem.drive()["rd_data_valid"]:
            beats.append(cycle)
        mem.observe(rd_cmd_valid=int(cycle == 0), rd_cmd_beats=32, rd_data_ready=1, **idle)
    assert len(beats) >= 8 and set(np.diff(beats[1:])) == {beat_spacing(word, rate)}


def test_dram_size_is_a_power_of_two_that_holds_the_plan():
    assert dram_size(10, 16) == MIN_DRAM_BYTES
    size = dram_size(MIN_DRAM_BYTES + 1, 128)
    assert size == 2 * MIN_DRAM_BYTES and size & (size - 1) == 0


def test_dram_image_is_the_python_layout_and_c_reads_back_alike():
    rng = np.random.default_rng(0)
    chip = TINY.derive(dtype="int16", name="tiny16")
    products = random_products(chip, 5, 7, 9, 3, rng)
    mem, _, desc = layout(chip, products, stall_prob=0.0, seed=0)
    image, writable, desc2 = dram_image(chip, products)
    assert desc == desc2 and bytes(image) == bytes(mem.data)
    allowed = np.zeros(len(image), bool)
    for lo, hi in mem.writable:
        allowed[lo:hi] = True
    assert np.array_equal(allowed, writable)
    # C as the chip would write it (signed accumulators), read back by both decoders
    for p in range(3):
        c = rng.integers(-2**31, 2**31, (5, 7))
        at = desc["c_addr"] + p * desc["c_step"]
        mem.store(at, c, row_stride=desc["ldc"], elem_bytes=4)
        assert load_c(chip.core, mem, desc, step=p) == c.tolist()
        window = np.frombuffer(bytes(mem.data[at - 40:]), dtype=np.uint8)
        assert c_of(chip, window, desc, p, start=at - 40) == c.tolist()


@pytest.mark.parametrize("beat", [16, 4])
def test_bulk_load_files_are_the_image_row_after_row(tmp_path, beat):
    # $fread fills row after row, each from its most significant byte: row r is bytes
    # r*W .. r*W + W - 1 of DRAM, the last byte first; the writable bits alike, in whole bytes
    from systolab.sim.hdl_dram import LOAD_FILES, write_load_files

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, 5 * beat + 3).astype(np.uint8)
    writable = rng.random(5 * beat + 3) < 0.5
    write_load_files(tmp_path, image, writable, beat, rows=8)       # past the image: zero, not writable
    data, bits = (tmp_path / LOAD_FILES[0]).read_bytes(), (tmp_path / LOAD_FILES[1]).read_bytes()
    per_row = -(-beat // 8)
    assert len(data) == 8 * beat and len(bits) == 8 * per_row
    padded = np.zeros(8 * beat, np.uint8)
    padded[:len(image)] = image
    allowed = np.zeros(8 * beat, bool)
    allowed[:len(writable)] = writable
    for r in range(8):
        assert int.from_bytes(data[r * beat:(r + 1) * beat], "big") == \
            int.from_bytes(padded[r * beat:(r + 1) * beat].tobytes(), "little")
        assert int.from_bytes(bits[r * per_row:(r + 1) * per_row], "big") == \
            sum(int(b) << i for i, b in enumerate(allowed[r * beat:(r + 1) * beat]))


def test_bulk_read_back_decodes_writememh_rows(tmp_path):
    # $writememh writes a row a line, the last byte first (and may stamp addresses or comments)
    from systolab.sim.hdl_dram import DUMP_FILE, read_dump_file

    rows = [bytes(range(r * W, (r + 1) * W)) for r in range(3)]
    (tmp_path / DUMP_FILE).write_text("// rows 4..6\n@4\n" + "".join(
        f"{int.from_bytes(r, 'little'):0{2 * W}x}\n" for r in rows))
    assert read_dump_file(tmp_path, W).tobytes() == b"".join(rows)
    (tmp_path / DUMP_FILE).write_text("5\n")                         # unpadded: leading zero bytes
    assert read_dump_file(tmp_path, W).tolist() == [5] + [0] * (W - 1)


def test_bulk_ports_are_verilog_only_and_replace_the_back_door():
    from systolab.sim.hdl_dram import SimDram

    kw = dict(channels=1, beat_bytes=W, size_bytes=2048, latency=2, spacing=1, queue_depth=4)
    with pytest.raises(ValueError, match="bulk"):
        SimDram(**kw, verilog=False, bulk=True)
    bulk, door = SimDram(**kw, bulk=True), SimDram(**kw)
    assert {"bulk_load", "bulk_read", "bulk_first", "bulk_last"} <= set(bulk.signature.members)
    assert "ld_word" not in bulk.signature.members and "ld_word" in door.signature.members


def test_the_simulated_drams_verilog_loads_and_dumps_its_storage_by_file():
    from amaranth.back import verilog

    from systolab.sim.hdl_dram import DUMP_FILE, LOAD_FILES, SimDram

    dram = SimDram(channels=2, beat_bytes=W, size_bytes=4096, latency=3, spacing=1, queue_depth=4, bulk=True)
    text = verilog.convert(dram, name="dram", emit_src=False) + "".join(ram.verilog() for ram in dram.rams)
    assert all(f'$fopen("{name}", "rb")' in text for name in LOAD_FILES) and text.count("$fread(mem, fd)") == 2
    assert text.count(f'$writememh("{DUMP_FILE}", mem, dump_first, dump_last)') == 1    # the bytes only
    assert "ld_word" not in text and "rb_data" not in text


# -- the DRAM's ports, cycle for cycle against the Python model ------------------------------------------
class Requester:
    """A DMA-like requester of one port: write commands and their beats, then read commands,
    with random gaps and back-pressure from its own generator (drawn every cycle, whatever
    happens), never a read beat and a write beat in one cycle (as the chip's DMA)."""

    def __init__(self, seed: int, writes: list, reads: list):
        self.rng = np.random.default_rng(seed)
        self.writes, self.reads = list(writes), list(reads)      # (addr, beats[, data, strobes])
        self.beats: list = []                                     # write beats of accepted commands
        self.got: list = []                                       # (cycle, read beat)

    def offer(self) -> dict:
        gap_c, gap_d, ready = self.rng.random(3) < (0.3, 0.3, 0.4)
        out = dict(rd_cmd_valid=0, rd_cmd_addr=0, rd_cmd_beats=0, rd_data_ready=0, wr_cmd_valid=0, wr_cmd_addr=0,
                   wr_cmd_beats=0, wr_data_valid=0, wr_data=0, wr_strobe=0)
        if self.writes and not gap_c:
            out.update(wr_cmd_valid=1, wr_cmd_addr=self.writes[0][0], wr_cmd_beats=self.writes[0][1])
        if self.beats and not gap_d:
            out.update(wr_data_valid=1, wr_data=self.beats[0][0], wr_strobe=self.beats[0][1])
        if not self.writes and not self.beats:
            if self.reads and not gap_c:
                out.update(rd_cmd_valid=1, rd_cmd_addr=self.reads[0][0], rd_cmd_beats=self.reads[0][1])
            out["rd_data_ready"] = int(not ready)
        self.offered = out
        return out

    def accept(self, cycle: int, seen: dict) -> None:
        o = self.offered
        if o["wr_data_valid"] and seen["wr_data_ready"]:
            self.beats.pop(0)
        if o["wr_cmd_valid"] and seen["wr_cmd_ready"]:
            _, _, data, strobes = self.writes.pop(0)
            self.beats += list(zip(data, strobes))
        if o["rd_cmd_valid"] and seen["rd_cmd_ready"]:
            self.reads.pop(0)
        if o["rd_data_ready"] and seen["rd_data_valid"]:
            self.got.append((cycle, seen["rd_data"]))


def _script(seed: int, ch: int, writable: list) -> tuple[list, list]:
    rng = np.random.default_rng([seed, ch])
    writes = []
    for lo, hi in writable:
        beats = -(-(hi - lo) // W)
        data = [int.from_bytes(rng.bytes(W), "little") for _ in range(beats)]
        strobes = [(1 << W) - 1] * (beats - 1) + [(1 << (hi - lo - W * (beats - 1))) - 1]
        writes.append((lo, beats, data, strobes))
    writes.append((3, 1, [0xAB], [0b101]))                        # outside C: two bytes refused
    reads = [(int(a), int(n)) for a, n in zip(rng.integers(0, 900, 6), rng.integers(1, 5, 6))]
    return writes, reads + [(2044, 2)]                                   # past the storage: zeros


FIELDS = ("rd_cmd_ready", "wr_cmd_ready", "wr_data_ready", "rd_data_valid", "rd_data")


def _python_trace(mem: ExternalMemory, ports: list, requesters: list, cycles: int) -> list:
    trace = []
    idle = dict(rd_cmd_valid=0, rd_cmd_addr=0, rd_cmd_beats=0, rd_data_ready=0, wr_cmd_valid=0, wr_cmd_addr=0,
                wr_cmd_beats=0, wr_data_valid=0, wr_data=0, wr_strobe=0)
    for port in ports:
        port.start_port(W)
        for _ in range(8):              # a full credit, as the DRAM's after its load
            port.drive()
            port.observe(**idle)
    for t in range(cycles):
        offers = [req.offer() for req in requesters]
        seen = [port.drive() for port in ports]             # every port drives, then the clock edge
        for port, offer in zip(ports, offers):
            port.observe(**offer)
        for req, s in zip(requesters, seen):
            req.accept(t, s)
        trace.append([tuple(s[f] if s["rd_data_valid"] or f != "rd_data" else 0 for f in FIELDS) for s in seen])
    return trace


def _hdl_trace(dut: SimDram, image: bytes, allowed: np.ndarray, requesters: list, cycles: int) -> tuple[list, int]:
    trace: list = []
    seen_violations = []

    async def bench(ctx):
        words = back_door_words(np.frombuffer(image, np.uint8), allowed, W)
        ctx.set(dut.ld_addr, 0)
        await ctx.tick()
        ctx.set(dut.ld_valid, 1)
        for w in words:
            ctx.set(dut.ld_word, w)
            await ctx.tick()
        ctx.set(dut.ld_valid, 0)
        ctx.set(dut.arm, 1)
        await ctx.tick()
        ctx.set(dut.arm, 0)
        for t in range(cycles):
            row, seen_all = [], []
            for ch, req in enumerate(requesters):
                port, o = getattr(dut, f"mem{ch}"), req.offer()
                ctx.set(port.rd_cmd.valid, o["rd_cmd_valid"])
                ctx.set(port.rd_cmd.payload, {"addr": o["rd_cmd_addr"], "beats": o["rd_cmd_beats"]})
                ctx.set(port.rd_data.ready, o["rd_data_ready"])
                ctx.set(port.wr_cmd.valid, o["wr_cmd_valid"])
                ctx.set(port.wr_cmd.payload, {"addr": o["wr_cmd_addr"], "beats": o["wr_cmd_beats"]})
                ctx.set(port.wr_data.valid, o["wr_data_valid"])
                ctx.set(port.wr_data.payload, {"data": o["wr_data"], "strobe": o["wr_strobe"]})
            for ch in range(len(requesters)):
                port = getattr(dut, f"mem{ch}")
                seen = dict(rd_cmd_ready=ctx.get(port.rd_cmd.ready), wr_cmd_ready=ctx.get(port.wr_cmd.ready),
                            wr_data_ready=ctx.get(port.wr_data.ready), rd_data_valid=ctx.get(port.rd_data.valid),
                            rd_data=ctx.get(port.rd_data.payload))
                seen_all.append(seen)
                row.append(tuple(seen[f] if seen["rd_data_valid"] or f != "rd_data" else 0 for f in FIELDS))
            trace.append(row)
            await ctx.tick()
            for req, seen in zip(requesters, seen_all):
                req.accept(t, seen)
        seen_violations.append(ctx.get(dut.violations))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace, seen_violations[0]


@pytest.mark.parametrize("rate, latency", [(6.0, 5), (16.0, 1), (40.0, 12)])
def test_ports_match_the_python_memory_cycle_for_cycle(rate, latency):
    size, cycles = 2048, 260
    rng = np.random.default_rng(3)
    image = rng.bytes(size)
    writable = [[(200, 241), (333, 340)], [(600, 650)]]                 # per channel: its C rows (odd, unaligned)
    allowed = np.zeros(size, bool)
    mem = ExternalMemory(size, latency=latency, bytes_per_cycle=rate, charge_writes=True)
    mem.data[:] = image
    for lo, hi in sum(writable, []):
        allowed[lo:hi] = True
        mem.allow_writes(lo, hi)
    scripts = [_script(7, ch, writable[ch]) for ch in range(2)]
    py = [Requester(ch, *scripts[ch]) for ch in range(2)]
    expected = _python_trace(mem, mem.ports(2, rate), py, cycles)
    hdl = [Requester(ch, *scripts[ch]) for ch in range(2)]
    dut = SimDram(channels=2, beat_bytes=W, size_bytes=size, latency=latency, spacing=beat_spacing(W, rate),
                  queue_depth=8, verilog=False)
    got, violations = _hdl_trace(dut, image, allowed, hdl, cycles)
    assert all(not r.reads and not r.beats for r in py), "the script did not finish: more cycles"
    assert got == expected
    assert [r.got for r in hdl] == [r.got for r in py] and all(r.got for r in py)
    assert violations == len(mem.violations) == 4                       # two refused bytes a channel


@pytest.mark.parametrize("argv", [["verify", "--rows", "4", "--cols", "4", "--gemm", "4x4x4", "--dram", "python"],
                                  ["validate", "--dram", "hdl"]])
def test_dram_flag_applies_to_the_chip_only(argv, capsys):
    import json

    from systolab.cli import main

    assert main([*argv, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "dram"


def test_plans_name_a_known_dram_and_long_plans_build_fast():
    from systolab.errors import UserError
    from systolab.sim.chip_plan import ChipPlan
    from systolab.sim.runner import FAST_BUILD_CYCLES, chip_opt

    rng = np.random.default_rng(0)
    blk = chip_campaign(TINY, count=0, seed=0)[0][-1]
    with pytest.raises(UserError, match="dram"):
        ChipPlan.build(TINY, [(random_products(TINY, 1, 1, 1, 1, rng), blk)], dram="verilog")
    short = ChipPlan.build(TINY, [(random_products(TINY, 1, 1, 1, 1, rng), blk)])
    assert chip_opt(TINY, short) == "O0"
    pes = TINY.cores * TINY.core.rows * TINY.core.cols
    k = -(-FAST_BUILD_CYCLES * pes // (64 * 64))
    long = ChipPlan.build(TINY, [(random_products(TINY, 64, 64, k, 1, rng), blk)])
    assert chip_opt(TINY, long) == "fast"
    assert chip_opt(TINY, ChipPlan.build(TINY, [(random_products(TINY, 64, 64, k, 1, rng), blk)], dram="python")) == "O0"


# -- the chip on Verilator: both harnesses ---------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_runs():
    cases = chip_campaign(TINY, count=3, seed=9)[:12]
    rng = np.random.default_rng(4)
    return cases, [(random_products(TINY, M, N, K, p, rng), blk) for M, N, K, p, blk in cases]


def _bit_exact(chip, runs, outs) -> bool:
    return all(o.status == 0 and not o.violations and all(
        np.array_equal(np.array(c, dtype=object), golden_matmul(a, b, chip.core, k_block=blk.kb).astype(object))
        for c, (a, b) in zip(o.c, products)) for (products, blk), o in zip(runs, outs))


@pytest.mark.verilator
def test_both_chip_harnesses_agree_on_verilator(tiny_runs):
    from systolab.sim.runner import run_chip_hdl

    cases, runs = tiny_runs
    fast = run_chip_hdl(TINY, runs, "verilator", dram="hdl")
    slow = run_chip_hdl(TINY, runs, "verilator", dram="python")
    assert _bit_exact(TINY, runs, fast) and _bit_exact(TINY, runs, slow)
    assert [(o.c, o.counters, o.busy) for o in fast] == [(o.c, o.counters, o.busy) for o in slow]
    for (M, N, K, p, blk), o in zip(cases, fast):
        model = chip_gemm_perf(TINY, M, N, K, blk, count=p)
        assert o.counters["cycles"] == model.cycles and o.busy == list(model.busy)
    # under stalls: the same results from both, each run slower than without
    fast_s = run_chip_hdl(TINY, runs, "verilator", dram="hdl", stall_prob=0.3, seed=5)
    slow_s = run_chip_hdl(TINY, runs, "verilator", dram="python", stall_prob=0.3, seed=5)
    assert _bit_exact(TINY, runs, fast_s) and _bit_exact(TINY, runs, slow_s)
    assert [o.c for o in fast_s] == [o.c for o in slow_s]
    assert all(s.counters["cycles"] >= o.counters["cycles"] for s, o in zip(fast_s, fast))
    assert sum(s.counters["cycles"] for s in fast_s) > sum(o.counters["cycles"] for o in fast)
    # the stalls are the seed's: the same again, others with another seed
    again = run_chip_hdl(TINY, runs, "verilator", dram="hdl", stall_prob=0.3, seed=5)
    other = run_chip_hdl(TINY, runs, "verilator", dram="hdl", stall_prob=0.3, seed=6)
    assert [o.counters for o in again] == [o.counters for o in fast_s]
    assert [o.counters for o in other] != [o.counters for o in fast_s]


@pytest.mark.slow
@pytest.mark.verilator
def test_the_clock_inside_the_design_and_from_cocotb_give_the_same_runs(tiny_runs):
    # the design toggling its own clock (sim/sim_top.py) changes when cocotb wakes, never a
    # counter, a C element or the stalls' sequence
    from systolab.sim.chip_plan import ChipPlan
    from systolab.sim.runner import run_chip_plan_hdl

    _, runs = tiny_runs
    plan = ChipPlan.build(TINY, runs, stall_prob=0.3, seed=5)
    inside = run_chip_plan_hdl(TINY, plan, "verilator", clock_inside=True)
    outside = run_chip_plan_hdl(TINY, plan, "verilator", clock_inside=False)
    assert _bit_exact(TINY, runs, inside)
    assert [(o.c, o.counters, o.busy, o.status) for o in inside] == [(o.c, o.counters, o.busy, o.status)
                                                                     for o in outside]


# -- the slow suite: a chip of 4,096 PEs -------------------------------------------------------------------
#: 16 cores of 16x16 (4,096 PEs, sl-small's DMA widened to 4 channels): the issue's chip at scale.
SIXTEEN = get_chip("sl-small").derive(cores=16, rows=16, cols=16, global_sram_mib=0.5, dma_channels=4,
                                      dram_GBps_per_stack=128, name="sl-16c-16x16")


@pytest.mark.slow
@pytest.mark.verilator
def test_a_16_core_chip_of_16x16_cores_on_verilator():
    # one build (the same DRAM size for both runs); benchmarks/README.md records its time
    from systolab.flows.verify import verify_chip
    from systolab.models.chip.mapper import map_gemm
    from systolab.sim.runner import run_chip_hdl

    cases = chip_campaign(SIXTEEN, count=2, seed=3)
    cases.append((256, 256, 256, 1, map_gemm(SIXTEEN, 256, 256, 256).blocking))
    report = verify_chip(SIXTEEN, cases, seed=3, simulator="verilator", stall_prob=0.2)
    assert report.passed and report.gemms == len(cases)
    assert all(c >= m for c, m in zip(report.cycles, report.model_cycles))
    rng = np.random.default_rng(3)
    runs = [(random_products(SIXTEEN, M, N, K, p, rng), blk) for M, N, K, p, blk in cases]
    outs = run_chip_hdl(SIXTEEN, runs, "verilator")
    assert _bit_exact(SIXTEEN, runs, outs)
    off = {}
    for (M, N, K, p, blk), o in zip(cases, outs):
        model = chip_gemm_perf(SIXTEEN, M, N, K, blk, count=p)
        assert o.busy == list(model.busy)
        assert {k: v for k, v in o.counters.items() if k != "cycles"} == \
            {k: v for k, v in model.counters().items() if k not in ("busy", "cycles")}
        if o.counters["cycles"] != model.cycles:
            off[(M, N, K)] = o.counters["cycles"] - model.cycles
    # 0 cycles off on every GEMM. This test once found the model short on two of them
    # (19x18x1 by 15 cycles, 17x19x50 by 1): the cores' sub-GEMMs have rows of two beats,
    # and the core model let a tile's write-back overlap the previous tile's (one writer);
    # tests/test_cycle_gaps.py keeps those cases on small chips
    assert off == {}


def test_messages_pass_plain_fields_through_and_rebuild_nested_ones():
    # a chip plan's operands are a million integers: never copied or visited one by one
    from systolab.sim.chip_plan import ChipPlan, ChipResult, DescriptorResult
    from systolab.sim.messages import Matrices

    c = [[1, -2], [3, 4]]
    result = ChipResult([DescriptorResult([c], {"cycles": 5}, [4, 0], 0, [])], "verilator")
    d = result.to_dict()
    assert d["results"][0]["c"][0] is c and d == {"results": [{"c": [c], "counters": {"cycles": 5}, "busy": [4, 0],
                                                               "status": 0, "violations": []}],
                                                  "simulator": "verilator"}
    blk = chip_campaign(TINY, count=0, seed=0)[0][-1]
    rng = np.random.default_rng(2)
    plan = ChipPlan.build(TINY, [(random_products(TINY, 3, 2, 5, 2, rng), blk)])
    back = ChipPlan.from_json(plan.to_json())
    assert back == plan and isinstance(back.cases[0].products[1], Matrices)
    assert back.cases[0].products[1].a == plan.cases[0].products[1].a


def test_chip_verilog_is_generated_once_per_fingerprint(tmp_path, monkeypatch):
    # another optimisation level or DRAM folder of the same design reads it from the cache
    from systolab.sim.runner import shared_verilog, verilog_cache

    monkeypatch.setenv("SYSTOLAB_CACHE", str(tmp_path))
    calls = []

    def make():
        calls.append(1)
        return f"module m{len(calls)}; endmodule\n"

    assert shared_verilog("f1", make) == shared_verilog("f1", make) == "module m1; endmodule\n"
    assert calls == [1] and (verilog_cache() / "f1.v").read_text() == "module m1; endmodule\n"
    assert shared_verilog("f2", make) == "module m2; endmodule\n" and len(calls) == 2


@pytest.mark.verilator
def test_fast_chip_builds_optimise_verilators_runtime_and_keep_it_apart():
    # the runtime's VPI and timing code runs at every time step: -O2 for long runs, in its
    # own folder of the runtime cache (never copied into an -O0 build), its own fingerprint
    import os

    from systolab.sim.runner import VERILATOR_OPT, _runtime_folder, _tool_environment, build_fingerprint

    assert "OPT_GLOBAL=-O2" in VERILATOR_OPT["fast"][0] and "-O3" in VERILATOR_OPT["fast"][1]
    assert "OPT_GLOBAL=-O0" in VERILATOR_OPT["O0"][0]
    folders = {}
    for opt in ("O0", "fast"):
        with _tool_environment("verilator", opt):
            folders[opt] = (_runtime_folder("verilator", False), os.environ["MAKEFLAGS"])
    assert folders["O0"][0] != folders["fast"][0] and "OPT_GLOBAL=-O2" in folders["fast"][1]
    assert build_fingerprint(b"v", "verilator", opt="fast") != build_fingerprint(b"v", "verilator", opt="O0")
