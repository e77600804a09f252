"""The chip's pipelined write-back reduction (issue 32): its stage count derived from the
chip (systolab/blocking.py writeback_stages), the stages in the RTL (hdl/chip_parts.py
WriteBackSum, hdl/dma_parts.py WriteBackEngine) bit-exact and cycle-exact, nothing lost or
repeated under stalls, and the cycle model counting exactly the added latency."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from systolab.blocking import CSA_LEVELS_PER_STAGE, carry_save_levels, writeback_stages
from systolab.hdl.chip import ChipTop
from systolab.hdl.chip_parts import WriteBackSum
from systolab.hdl.dma_parts import WriteBackEngine
from systolab.models.chip.config import get_chip
from systolab.models.chip.perf import chip_gemm_cycles, chip_gemm_perf
from systolab.sim.chip_bench import fit_blocking, random_products, run_chip_gemm
from systolab.sim.golden import tree_sum_fp32

TINY = get_chip("sl-tiny")                                   # 2 int8 cores
INT4 = TINY.with_cores(4)
BF16X4 = TINY.derive(dtype="bf16").with_cores(4).derive(float_split_k=4)


# -- the stage count ----------------------------------------------------------------------------------
def test_carry_save_levels_reduce_to_two_words():
    assert [carry_save_levels(n) for n in (1, 2, 3, 4, 6, 9, 32, 512)] == [0, 0, 1, 2, 3, 4, 8, 15]


@pytest.mark.parametrize("cores, is_float, split_k, want", [
    (1, False, None, 0), (2, False, None, 0),                # the select and one adder: no stage
    (3, False, None, 1), (4, False, None, 1), (512, False, None, 2),
    (32, False, None, 1), (64, False, None, 2),              # 8 carry-save levels, then 10: a second register
    (512, True, 1, 0), (512, True, 2, 2), (512, True, 4, 4), (512, True, 512, 18),
    (3, True, 4, 2),                                         # the tree is cut to the cores' largest power of two
])
def test_the_stage_count_is_derived_from_the_cores_and_format(cores, is_float, split_k, want):
    assert writeback_stages(cores, is_float=is_float, split_k=split_k) == want


def test_every_chip_reports_its_stages_and_the_rtl_builds_that_many():
    assert TINY.writeback_stages == 0 and INT4.writeback_stages == 1 and BF16X4.writeback_stages == 4
    assert get_chip(None).writeback_stages == 2                       # sl-n4-os32: 512 int8 cores, 15 levels
    assert CSA_LEVELS_PER_STAGE == 8
    for chip in (TINY, INT4, BF16X4, BF16X4.derive(float_split_k=1)):
        m = ChipTop(chip).elaborate(None)
        assert m.submodules.router.wb_stages == chip.writeback_stages
        assert m.submodules.dma0._wb_stages == chip.writeback_stages


# -- WriteBackSum: a stream of reads through the stages, with random stalls ---------------------------
def _stream_through(dut, beats: list, en_prob: float, seed: int) -> list:
    """Each beat's (wb_core, words per core) offered on an advance; the sums out S advances later."""
    rng = np.random.default_rng(seed)
    out = []

    async def bench(ctx):
        pending = list(beats) + [None] * dut.stages              # bubbles flush the last ones out
        lag: list = [None] * dut.stages
        while pending:
            en = rng.random() < en_prob
            beat = pending[0]
            if beat is not None:
                core, words = beat
                ctx.set(dut.wb_core, core)
                for c, w in enumerate(words):
                    ctx.set(dut.acc_data[c], w)
            ctx.set(dut.en, en)
            if en:
                lag.append(pending.pop(0))
                done = lag.pop(0)
                if done is not None:
                    out.append(ctx.get(dut.data))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_the_integer_sum_is_exact_through_its_stages_under_stalls():
    cores, lanes = 5, 2
    dut = WriteBackSum(cores=cores, lanes=lanes, acc_bytes=4)
    assert dut.stages == 1 and WriteBackSum(cores=2, lanes=1, acc_bytes=4).stages == 0
    rng = np.random.default_rng(1)
    words = rng.integers(0, 2**32, size=(40, cores, lanes)).tolist()
    beats = [(int(rng.integers(0, 2)) * 4, [w[0] | w[1] << 32 for w in ws]) for ws in words]

    def expect(core, words):                   # gk = 4 (gp = gm = 1): the cores that differ in bits 0, 1
        group = [c for c in range(cores) if (c ^ core) & ~3 == 0]
        return sum(((sum((words[c] >> (32 * i)) & 0xFFFFFFFF for c in group) & 0xFFFFFFFF) << (32 * i))
                   for i in range(lanes))

    got = _stream_with_lg(dut, beats, lg_gk=2, en_prob=0.6, seed=2)
    assert got == [expect(core, words) for core, words in beats]
    assert {len([c for c in range(cores) if (c ^ core) & ~3 == 0]) for core, _ in beats} == {4, 1}


def _stream_with_lg(dut, beats, *, lg_gk: int, en_prob: float, seed: int) -> list:
    orig = dut.elaborate

    def elaborate(platform):                  # hold lg_gk at its value, as the controller does
        m = orig(platform)
        m.d.comb += dut.lg_gk.eq(lg_gk)
        return m

    dut.elaborate = elaborate
    return _stream_through(dut, beats, en_prob, seed)


def _fp32(values) -> list[int]:
    return [int(np.float32(v).view(np.uint32)) for v in values]


def test_the_fp32_tree_is_bit_exact_through_its_stages_under_stalls():
    cores = 4
    dut = WriteBackSum(cores=cores, lanes=1, acc_bytes=4, float_subnormals="keep", split_k=4)
    assert dut.stages == 4                                   # after the select, in each adder, between levels
    rng = np.random.default_rng(3)
    specials = [np.inf, -np.inf, np.nan, -0.0, 0.0, 1e-45, 3.4e38]
    beats = []
    for _ in range(30):
        vals = [float(rng.choice(specials)) if rng.random() < 0.2 else float(rng.normal() * 10.0 ** rng.integers(-6, 6))
                for _ in range(cores)]
        beats.append((0, _fp32(vals)))
    got = _stream_with_lg(dut, beats, lg_gk=2, en_prob=0.5, seed=4)
    want = [int(tree_sum_fp32([np.array(w, np.uint32) for w in words])) for _, words in beats]
    assert got == want
    # gk = 2 through the same stages: the root passes node 0 of the first level on
    dut2 = WriteBackSum(cores=cores, lanes=1, acc_bytes=4, float_subnormals="keep", split_k=4)
    got2 = _stream_with_lg(dut2, beats[:10], lg_gk=1, en_prob=0.7, seed=5)
    assert got2 == [int(tree_sum_fp32([np.array(w, np.uint32) for w in words[:2]])) for _, words in beats[:10]]


# -- the write-back engine: beats S advances after their reads, none lost or repeated --------------------
def _engine_run(stages: int, ready_prob: float, seed: int, segments) -> tuple[list, list, int]:
    """Push ``segments`` (beats, word, nbytes) and take beats with probability ``ready_prob``;
    acc_data is a function of the read address S advances earlier (modelled here as the
    pipeline the chip's WriteBackSum is). Returns (beats taken: (data, strobe)), the
    cycle of each take, and the cycle idle rose again."""
    Wd, W = 16, 8
    dut = WriteBackEngine(cores=2, word_bytes=Wd, core_beat=W, acc_half=64, queue_depth=4, stages=stages)
    rng = np.random.default_rng(seed)
    taken, when = [], []
    idle_at = [None]

    async def bench(ctx):
        pipe = [0] * stages
        ctx.set(dut.gk, 1)
        todo = list(segments)
        cycle = 0
        started = False
        while cycle < 400:
            push = bool(todo) and not ctx.get(dut.segs.full)
            if push:
                beats, word, nbytes = todo[0]
                for name, v in dict(beats=beats, word=word, words=-(-nbytes // W), nbytes=nbytes, core=1).items():
                    ctx.set(getattr(dut.segs.seg, name), v)
                started = True
            ctx.set(dut.segs.push, push)
            ready = rng.random() < ready_prob
            ctx.set(dut.wr_data.ready, ready)
            addr = ctx.get(dut.acc_addr)
            data = pipe[-1] if stages else 1000 + addr
            ctx.set(dut.acc_data, data)
            if ctx.get(dut.wr_data.valid) and ready:
                taken.append((ctx.get(dut.wr_data.payload.data), ctx.get(dut.wr_data.payload.strobe)))
                when.append(cycle)
            if stages and ctx.get(dut.acc_en):
                pipe = [1000 + addr] + pipe[:-1]
            if started and not todo and ctx.get(dut.segs.idle) and idle_at[0] is None and taken:
                idle_at[0] = cycle
            await ctx.tick()
            if push:
                todo.pop(0)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return taken, when, idle_at[0]


SEGMENTS = [(2, 3, 20), (1, 10, 16), (3, 20, 40), (1, 0, 4)]


def _expected_beats():
    out = []
    for beats, word, nbytes in SEGMENTS:
        for k in range(beats):
            left = nbytes - 16 * k
            out.append((1000 + word + 2 * k, (1 << min(16, left)) - 1))
    return out


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_the_engine_delivers_every_beat_once_in_order_under_random_stalls(stages):
    for seed in range(3):
        taken, _, idle = _engine_run(stages, 0.45, seed, SEGMENTS)
        assert taken == _expected_beats() and idle is not None


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_without_stalls_the_beats_come_exactly_stages_cycles_later(stages):
    base, when0, idle0 = _engine_run(0, 1.0, 0, SEGMENTS)
    piped, when, idle = _engine_run(stages, 1.0, 0, SEGMENTS)
    assert base == piped == _expected_beats()
    assert when == [t + stages for t in when0] and idle == idle0 + stages
    assert when == list(range(when[0], when[0] + len(when)))            # one beat a cycle, segment to segment


def test_stages_must_be_a_count():
    with pytest.raises(ValueError, match="stages must be an integer >= 0"):
        WriteBackEngine(cores=2, word_bytes=16, core_beat=8, acc_half=64, queue_depth=4, stages=-1)


# -- the chip: RTL bit-exact and cycle-exact with stages, with and without DRAM stalls ------------------
def _chip_run(chip, M, N, K, gk, stall, seed):
    rng = np.random.default_rng(seed)
    blk = fit_blocking(chip, M, N, K, 1, mb=M, nb=N, kb=16, gk=gk)
    r = run_chip_gemm(chip, random_products(chip, M, N, K, 1, rng), blk, stall_prob=stall, seed=seed)
    return r, chip_gemm_perf(chip, M, N, K, blk), blk


@pytest.mark.parametrize("chip, gk", [(INT4, 4), (INT4, 2), (BF16X4, 4)])
def test_a_chip_with_stages_is_bit_exact_and_cycle_exact(chip, gk):
    assert chip.writeback_stages > 0
    r, model, blk = _chip_run(chip, 6, 9, 48, gk, 0.0, 1)
    assert r.status == 0 and r.passed and not r.violations
    assert dict(r.counters, busy=r.busy) == model.counters()
    # exactly the stages later than the same chip's schedule without them, per write-back job
    assert model.cycles == chip_gemm_cycles(chip, 6, 9, 48, blk)


@pytest.mark.parametrize("chip", [INT4, BF16X4])
def test_a_chip_with_stages_is_bit_exact_under_dram_stalls(chip):
    r, model, _ = _chip_run(chip, 4, 5, 32, 4, 0.3, 3)
    assert r.status == 0 and r.passed and not r.violations
    assert r.counters["cycles"] > model.cycles
    assert r.counters["dram_bytes_written"] == model.dram_bytes_written       # nothing written twice


def test_the_cycle_model_adds_the_stages_to_each_write_back_job():
    """A write-back's first beat is S cycles later in the cycle model, nothing else: a job
    of write-back beats only, and one followed by a load, each take S cycles more."""
    from systolab.models.chip import perf

    for lag in (0, 1, 2, 9):
        assert perf._job_cycles(5, 0, 7, 2, lag) == perf._job_cycles(5, 0, 7, 2) + lag
        assert perf._job_cycles(5, 3, 7, 2, lag) == perf._job_cycles(5, 3, 7, 2) + lag
        assert perf._job_cycles(0, 3, 7, 2, lag) == perf._job_cycles(0, 3, 7, 2)     # a load alone: unchanged
    chip = get_chip("sl-small")                               # 4 int8 cores: one stage
    blk = fit_blocking(chip, 64, 48, 100, 1, mb=32, nb=48, kb=64)
    assert chip_gemm_perf(chip, 64, 48, 100, blk).cycles == chip_gemm_cycles(chip, 64, 48, 100, blk)
