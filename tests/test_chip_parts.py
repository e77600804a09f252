"""The chip controller's parts and the DMA channel's parts in Amaranth's simulator, each
against the timing contract in its docstring."""
import pytest
from amaranth.sim import Simulator

from systolab.blocking import Blocking, blocking_status
from systolab.hdl.chip_parts import ChipController, CoreDispatch, DescriptorChecker, GridPlacement, OperandRouter, StepSequencer
from systolab.hdl.dma import SegmentGenerator
from systolab.hdl.dma_parts import LoadEngine, WriteBackEngine
from systolab.models.chip.config import get_chip

TINY = get_chip("sl-tiny")
OP_HALF, ACC_HALF = TINY.operand_words // 2, TINY.acc_words // 2


def run(dut, bench, *, clock=True):
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def drive(ctx, *pairs):
    for signal, value in pairs:
        ctx.set(signal, value)


def set_fields(ctx, view, **values):
    for name, v in values.items():
        ctx.set(getattr(view, name), v)


def fields(const):
    return {name: getattr(const, name) for name, _ in const.shape()}


def gemm(M, N, K, blk, count=1):
    return dict(m=M, n=N, k=K, count=count, **blk.to_dict())


@pytest.mark.parametrize("chip, M, N, K, blk", [
    (TINY, 4, 1024, 4, Blocking(0, 4, 4, 1, 4)),
    (TINY, 4, 1024, 4, Blocking(4, 4, 4, 4, 4, gn=4)),
    (TINY, 8, 1024, 4, Blocking(8, 4, 4, 2, 4, gm=2)),
    (TINY, 4, 1024, 4, Blocking(4, 4, 8, 4, 4, gk=2, kc=4)),
    (TINY, 4, 1024, 4096, Blocking(4, 4, 4096, 4, 4)),
    (TINY, 4, 1024, 4, Blocking(4, 128, 4, 4, 128)),
    (TINY.derive(overflow="saturate"), 4, 4, 8, Blocking(4, 4, 4, 4, 4)),
    (TINY.derive(cores=3), 4, 4, 8, Blocking(4, 4, 8, 2, 4, gm=3)),
    (TINY, 9, 13, 8, Blocking(8, 4, 8, 4, 4, gm=2)),
])
def test_descriptor_checker_is_combinational_and_agrees_with_the_model(chip, M, N, K, blk):
    dut = DescriptorChecker(config=chip.core, cores=chip.cores, op_half=chip.operand_words // 2,
                            acc_half=chip.acc_words // 2)
    got = []

    async def bench(ctx):
        set_fields(ctx, dut.desc, **gemm(M, N, K, blk))
        got.append((ctx.get(dut.status), ctx.get(dut.lg_gp), ctx.get(dut.lg_gm), ctx.get(dut.lg_gk)))

    run(dut, bench, clock=False)
    lg = [(v.bit_length() - 1) if v else 0 for v in (blk.gp, blk.gm, blk.gk)]
    assert got == [(blocking_status(chip, M, N, K, 1, blk), *lg)]


def test_grid_placement_is_set_the_cycle_after_load_and_held():
    cores, channels = 8, 2
    dut = GridPlacement(cores=cores, channels=channels)
    gp, gm, gk, gn, mc, nc, kc = 1, 2, 2, 2, 3, 5, 7
    got = {}

    async def bench(ctx):
        set_fields(ctx, dut.desc, mc=mc, nc=nc, kc=kc, gn=gn, gp=gp, gm=gm, gk=gk)
        drive(ctx, (dut.lg_gp, 0), (dut.lg_gm, 1), (dut.lg_gk, 1), (dut.load, 1))
        got["before"] = [ctx.get(dut.place[c].row0) for c in range(cores)]
        await ctx.tick()
        drive(ctx, (dut.load, 0), (dut.desc.mc, 100))
        got["after"] = [fields(ctx.get(dut.place[c])) for c in range(cores)]
        await ctx.tick()
        got["held"] = [fields(ctx.get(dut.place[c])) for c in range(cores)]

    run(dut, bench)
    assert got["before"] == [0] * cores
    expected = []
    for c in range(cores):                      # c = ((j*gk + kk)*gp + q)*gm + i
        i, q, kk, j = c % gm, (c // gm) % gp, (c // (gm * gp)) % gk, c // (gm * gp * gk)
        b = c // gm
        expected.append(dict(q=q, row0=i * mc, col0=j * nc, k0=kk * kc, on=int(j < gn), a_grp=c % (gm * gp * gk),
                             b_grp=b, acc_ch=(b & ~((gk - 1) << 0)) % channels))
    assert got["after"] == expected
    assert got["held"] == got["after"]


def test_step_sequencer_walks_the_steps_one_per_advance():
    M, N, K = 9, 13, 8
    blk = Blocking(4, 4, 4, 4, 4)
    dut = StepSequencer()
    seen = []

    async def bench(ctx):
        set_fields(ctx, dut.desc, **gemm(M, N, K, blk))
        ctx.set(dut.init, 1)
        await ctx.tick()
        ctx.set(dut.init, 0)
        first = ctx.get(dut.first_job)
        seen.append(("first", first.ld, first.ld_m0, first.ld_n0, first.ld_k0, first.ld_mlen, first.ld_a, first.ld_b))
        while True:
            s, job = ctx.get(dut.step), ctx.get(dut.step_job)
            seen.append((s.mlen, s.nlen, s.klen, s.later_k, s.first, s.last, s.a_buf, s.b_buf, s.c_buf,
                         job.wb, job.wb_m0, job.wb_n0, job.wb_buf, job.ld, job.ld_m0, job.ld_n0, job.ld_k0,
                         job.ld_abuf, job.ld_bbuf))
            ctx.set(dut.advance, 1)
            await ctx.tick()                    # the next step is current the cycle after `advance`
            ctx.set(dut.advance, 0)
            if s.last:
                break
        last = ctx.get(dut.last_job)
        seen.append(("last", last.wb, last.wb_m0, last.wb_n0, last.wb_mlen, last.wb_nlen, last.wb_buf))

    run(dut, bench)
    # the model: M-blocks outside N-blocks, K innermost (order 0)
    steps = [(m0, n0, k0) for m0 in range(0, M, 4) for n0 in range(0, N, 4) for k0 in range(0, K, 4)]
    assert seen[0] == ("first", 1, 0, 0, 0, 4, 1, 1)
    body = seen[1:-1]
    assert len(body) == len(steps) == 24
    a_buf = b_buf = c_buf = 0
    wb = None
    for n, ((m0, n0, k0), got) in enumerate(zip(steps, body)):
        nxt = steps[n + 1] if n + 1 < len(steps) else None
        load = (1, *nxt, 1 - a_buf, 1 - b_buf) if nxt else (0, 0, 0, 0, 0, 0)
        wb_job = (1, wb[0], wb[1], wb[2]) if (n and k0 == 0) else (0, 0, 0, 0)
        assert got == (min(4, M - m0), min(4, N - n0), 4, int(k0 != 0), int(n == 0), int(nxt is None),
                       a_buf, b_buf, c_buf, *wb_job, *load), n
        if nxt:
            if k0 + 4 >= K:
                wb, c_buf = (m0, n0, c_buf), 1 - c_buf
            a_buf, b_buf = 1 - a_buf, 1 - b_buf         # one K-block of two: nothing is shared
    assert seen[-1] == ("last", 1, 8, 12, 1, 1, c_buf)


def test_core_dispatch_offers_the_descriptor_with_issue_and_tracks_the_core():
    cfg = TINY.core
    W = cfg.beat_bytes
    dut = CoreDispatch(config=cfg, op_half=OP_HALF, acc_half=ACC_HALF, acc_base=2 * OP_HALF * W)
    trace = []

    async def bench(ctx):
        set_fields(ctx, dut.desc, **gemm(9, 13, 6, Blocking(8, 8, 6, 4, 4, gm=2, gn=2)))
        set_fields(ctx, dut.step, p0=0, mlen=8, nlen=5, klen=6, a_buf=1, b_buf=0, c_buf=1)
        set_fields(ctx, dut.place, q=0, row0=4, col0=4, k0=0, on=1)
        ctx.set(dut.busy_cycles, 7)
        for cycle in range(6):
            ctx.set(dut.issue, cycle == 1)
            ctx.set(dut.done, cycle == 3)
            ctx.set(dut.clear, cycle == 5)
            trace.append((ctx.get(dut.cmd.valid), ctx.get(dut.pending), ctx.get(dut.busy)))
            if cycle == 1:
                cmd = ctx.get(dut.cmd.payload)
            await ctx.tick()
        trace.append((ctx.get(dut.cmd.valid), ctx.get(dut.pending), ctx.get(dut.busy)))
        set_fields(ctx, dut.place, on=0)              # a core outside the grid gets nothing
        ctx.set(dut.issue, 1)
        trace.append((ctx.get(dut.cmd.valid),))
        await ctx.tick()
        trace.append((ctx.get(dut.pending),))
        trace.append(cmd)

    run(dut, bench)
    assert trace[:7] == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 1, 0), (0, 0, 7), (0, 0, 7), (0, 0, 0)]
    assert trace[7:9] == [(0,), (0,)]
    cmd = trace[9]
    pitch_k, pitch_c = -(-6 * cfg.input_bytes // W), -(-4 * cfg.acc_bytes // W)
    assert (cmd.m, cmd.n, cmd.k) == (4, 1, 6)                      # rows 4..7, column 4 of 5, all of K
    assert (cmd.a_addr, cmd.lda, cmd.ldb, cmd.ldc) == (OP_HALF * W, pitch_k * W, pitch_k * W, pitch_c * W)
    assert cmd.b_addr == 4 * pitch_k * W and cmd.c_addr == (2 * OP_HALF + ACC_HALF) * W


def test_operand_router_routes_and_sums_in_the_same_cycle():
    Wd = W = TINY.dma_beat_bytes
    ab = TINY.core.acc_bytes
    dut = OperandRouter(cores=2, channels=2, word_bytes=Wd, core_beat=W, acc_bytes=ab, op_half=OP_HALF,
                        acc_half=ACC_HALF)
    got = {}

    async def bench(ctx):
        # gm = 2: slice c's A rows from channel c, both slices' B columns from channel 0
        ctx.set(dut.lg_gm, 1)
        for c in range(2):
            set_fields(ctx, dut.place[c], on=1, a_grp=c, b_grp=0, acc_ch=0)
        for ch, (b, group, addr) in enumerate([(1, 0, 7), (0, 1, 5)]):
            drive(ctx, (dut.op_b[ch], b), (dut.op_group[ch], group), (dut.op_addr[ch], addr))
            drive(ctx, (dut.op_words[ch], 1), (dut.op_data[ch], 0xAB + ch), (dut.op_en[ch], 1))
        got["a"] = [(ctx.get(dut.a_en[c]), ctx.get(dut.a_addr[c]), ctx.get(dut.a_data[c])) for c in range(2)]
        got["b"] = [(ctx.get(dut.b_en[c]), ctx.get(dut.b_addr[c]), ctx.get(dut.b_data[c])) for c in range(2)]
        got["written"] = ctx.get(dut.written)
        # gk = 2 (gm = 1): channel 0 writes back core 0's block, adding core 1's partial sums
        drive(ctx, (dut.lg_gm, 0), (dut.lg_gk, 1))
        drive(ctx, (dut.wb_core[0], 0), (dut.wb_addr[0], 9))
        lanes = Wd // ab
        ctx.set(dut.acc_data[0], sum((10 + e) << (8 * ab * e) for e in range(lanes)))
        ctx.set(dut.acc_data[1], sum((2 ** 32 - 1) << (8 * ab * e) for e in range(lanes)))   # -1 in each lane
        got["acc_addr"] = [ctx.get(dut.acc_addr[c]) for c in range(2)]
        got["sum"] = ctx.get(dut.wb_data[0])

    run(dut, bench, clock=False)
    assert got["a"] == [(0, 7, 0xAB), (1, 5, 0xAC)]            # channel 0's beat is a B beat
    assert got["b"] == [(1, 7, 0xAB), (1, 7, 0xAB)]             # multicast to both slices of B group 0
    assert got["written"] == 3 * W
    assert got["acc_addr"] == [9, 9]
    assert got["sum"] == sum((9 + e) << (8 * ab * e) for e in range(Wd // ab))


def test_chip_controller_runs_a_descriptor_on_its_schedule():
    dut = ChipController(config=TINY.core, cores=TINY.cores, op_half=OP_HALF, acc_half=ACC_HALF)
    trace = []
    good = gemm(4, 4, 4, Blocking(4, 4, 4, 4, 4))

    def sample(ctx):
        return (ctx.get(dut.accept), ctx.get(dut.setup), ctx.get(dut.start), ctx.get(dut.job.ld_m0),
                ctx.get(dut.issue), ctx.get(dut.advance), ctx.get(dut.done), ctx.get(dut.status))

    async def bench(ctx):
        set_fields(ctx, dut.cmd.payload, **good)
        drive(ctx, (dut.first_job.ld_m0, 1), (dut.step_job.ld_m0, 2), (dut.last_job.ld_m0, 3))
        drive(ctx, (dut.step.last, 1), (dut.step.later_k, 1))
        ctx.set(dut.cmd.valid, 1)
        for cycle in range(12):
            ctx.set(dut.dma_busy, cycle == 4)        # the prologue's load takes a cycle longer
            ctx.set(dut.pending, cycle == 7)         # a core finishes its step a cycle late
            trace.append(sample(ctx))
            await ctx.tick()
            ctx.set(dut.cmd.valid, 0)
        trace.append((ctx.get(dut.cycles), ctx.get(dut.steps), ctx.get(dut.accumulate)))

    run(dut, bench)
    #            accept setup start job issue advance done status
    assert trace == [(1, 0, 0, 0, 0, 0, 0, 0),     # IDLE: taken
                          (0, 0, 0, 0, 0, 0, 0, 0),     # CHECK
                          (0, 1, 0, 0, 0, 0, 0, 0),     # SETUP
                          (0, 0, 1, 1, 0, 0, 0, 0),     # PROLOGUE: the first job
                          (0, 0, 0, 0, 0, 0, 0, 0),     # WAIT_LOAD, DMA busy
                          (0, 0, 0, 0, 0, 0, 0, 0),     # WAIT_LOAD, DMA idle
                          (0, 0, 1, 2, 1, 0, 0, 0),     # ISSUE: the step's job, the cores
                          (0, 0, 0, 0, 0, 0, 0, 0),     # RUN, a core pending
                          (0, 0, 0, 0, 0, 1, 0, 0),     # RUN: the barrier
                          (0, 0, 1, 3, 0, 0, 0, 0),     # EPILOGUE: the last job
                          (0, 0, 0, 0, 0, 0, 0, 0),     # WAIT_WB
                          (0, 0, 0, 0, 0, 0, 1, 0),     # FINISH
                          (11, 1, 1)]                   # cycles not idle, steps, accumulate


def test_chip_controller_reports_a_reject_two_cycles_after_accept():
    dut = ChipController(config=TINY.core, cores=TINY.cores, op_half=OP_HALF, acc_half=ACC_HALF)
    trace = []

    async def bench(ctx):
        set_fields(ctx, dut.cmd.payload, **gemm(4, 4, 4, Blocking(4, 4, 4, 4, 4, gn=4)))   # 4 cores of 2
        ctx.set(dut.cmd.valid, 1)
        for _ in range(4):
            trace.append((ctx.get(dut.accept), ctx.get(dut.setup), ctx.get(dut.done), ctx.get(dut.status)))
            await ctx.tick()
            ctx.set(dut.cmd.valid, 0)

    run(dut, bench)
    assert trace == [(1, 0, 0, 0), (0, 0, 0, 0), (0, 0, 1, 2), (0, 0, 0, 2)]


def test_segment_generator_issues_write_back_then_loads_one_per_cycle():
    eb, ab, Wd = 1, 4, 16
    dut = SegmentGenerator(channel=0, channels=1, cores=1, word_bytes=Wd, core_beat=Wd, input_bytes=eb,
                           acc_bytes=ab, op_half=OP_HALF, acc_half=ACC_HALF)
    desc = dict(m=3, n=4, k=8, count=1, a_addr=1000, lda=11, a_step=0, b_addr=2000, ldb=13, b_step=0,
                c_addr=3000, ldc=17, c_step=0, **Blocking(3, 4, 8, 3, 4).to_dict())
    trace = []

    async def bench(ctx):
        set_fields(ctx, dut.desc, **desc)
        set_fields(ctx, dut.job, wb=1, wb_mlen=3, wb_nlen=4, ld=1, ld_mlen=3, ld_nlen=4, ld_klen=8, ld_a=1, ld_b=1)
        drive(ctx, (dut.wr_cmd.ready, 1), (dut.rd_cmd.ready, 1))
        drive(ctx, (dut.wb.idle, 1), (dut.ld.idle, 1))
        ctx.set(dut.start, 1)
        for cycle in range(16):
            ctx.set(dut.wb.idle, cycle != 4)            # the write-back engine still busy in cycle 4
            ctx.set(dut.rd_cmd.ready, cycle != 7)       # the memory refuses a command in cycle 7
            wr, rd = dut.wr_cmd, dut.rd_cmd
            trace.append((ctx.get(dut.busy), ctx.get(wr.valid) and ctx.get(wr.payload.addr),
                          ctx.get(rd.valid) and ctx.get(rd.payload.addr),
                          ctx.get(dut.wb.push), ctx.get(dut.ld.push)))
            await ctx.tick()
            ctx.set(dut.start, 0)

    run(dut, bench)
    rows = [3000 + r * 17 for r in range(3)]
    loads = [1000 + r * 11 for r in range(3)] + [2000 + c * 13 for c in range(4)]
    assert [t[1] for t in trace] == [0, *rows] + [0] * 12
    assert [t[2] for t in trace] == [0] * 6 + [loads[0], loads[1], loads[1], *loads[2:], 0, 0]
    assert [t[0] for t in trace] == [0] + [1] * 14 + [0]        # busy: start+1 .. the load engine idle
    assert [t[3] for t in trace] == [0, 1, 1, 1] + [0] * 12
    assert [t[4] for t in trace] == [0] * 6 + [1, 0] + [1] * 6 + [0, 0]


def test_write_back_engine_sends_a_segment_from_the_cycle_after_the_queue_head():
    Wd, W = 16, 8
    dut = WriteBackEngine(cores=2, word_bytes=Wd, core_beat=W, acc_half=ACC_HALF, queue_depth=4)
    trace = []

    async def bench(ctx):
        drive(ctx, (dut.gk, 2), (dut.wr_data.ready, 1), (dut.acc_data, 0x55))
        set_fields(ctx, dut.segs.seg, beats=2, word=3, words=3, nbytes=20, core=1)
        ctx.set(dut.segs.push, 1)
        for _ in range(6):
            wd = dut.wr_data
            valid = ctx.get(wd.valid)
            trace.append((valid, valid and ctx.get(wd.payload.strobe), valid and ctx.get(wd.payload.data),
                          ctx.get(dut.acc_core), ctx.get(dut.acc_addr), ctx.get(dut.segs.idle),
                          ctx.get(dut.bytes_written), ctx.get(dut.sram_read)))
            await ctx.tick()
            ctx.set(dut.segs.push, 0)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        trace.append((ctx.get(dut.bytes_written), ctx.get(dut.sram_read)))

    run(dut, bench)
    assert trace == [(0, 0, 0, 0, 0, 1, 0, 0),          # pushed
                     (0, 0, 0, 0, 0, 0, 0, 0),          # at the head: taken
                     (1, 0xFFFF, 0x55, 1, 3, 0, 0, 0),  # first beat: words 3, 4
                     (1, 0x000F, 0x55, 1, 5, 0, 16, 2 * 2 * W),   # last beat: 4 bytes, word 5
                     (0, 0, 0, 1, 7, 1, 20, 3 * 2 * W),
                     (0, 0, 0, 1, 7, 1, 20, 3 * 2 * W),
                     (0, 0)]


def test_load_engine_writes_each_beat_into_the_slices_the_cycle_it_arrives():
    Wd, W = 16, 8
    dut = LoadEngine(cores=2, word_bytes=Wd, core_beat=W, op_half=OP_HALF, queue_depth=4)
    trace = []

    async def bench(ctx):
        set_fields(ctx, dut.segs.seg, beats=2, word=4, words=3, group=5, b=1)
        ctx.set(dut.segs.push, 1)
        for cycle in range(7):
            ctx.set(dut.rd_data.valid, cycle in (1, 2, 4))     # a beat before the engine is ready waits
            ctx.set(dut.rd_data.payload, 100 + cycle)
            trace.append((ctx.get(dut.rd_data.ready), ctx.get(dut.op_en),
                          ctx.get(dut.op_en) and (ctx.get(dut.op_b), ctx.get(dut.op_group), ctx.get(dut.op_addr),
                                                  ctx.get(dut.op_words), ctx.get(dut.op_data)),
                          ctx.get(dut.segs.idle), ctx.get(dut.bytes_read)))
            await ctx.tick()
            ctx.set(dut.segs.push, 0)

    run(dut, bench)
    assert trace == [(0, 0, 0, 1, 0),
                     (0, 0, 0, 0, 0),
                     (1, 1, (1, 5, 4, 2, 102), 0, 0),
                     (1, 0, 0, 0, Wd),
                     (1, 1, (1, 5, 6, 1, 104), 0, Wd),
                     (0, 0, 0, 1, 2 * Wd),
                     (0, 0, 0, 1, 2 * Wd)]


@pytest.mark.parametrize("make, message", [
    (lambda: GridPlacement(cores=4, channels=3), "channels must be a power of two"),
    (lambda: GridPlacement(cores=0, channels=2), "cores must be a positive integer"),
    (lambda: DescriptorChecker(config="sl-tiny", cores=2, op_half=4, acc_half=4), "must be an AcceleratorConfig"),
    (lambda: WriteBackEngine(cores=2, word_bytes=12, core_beat=8, acc_half=4, queue_depth=4), "multiple of"),
    (lambda: LoadEngine(cores=2, word_bytes=16, core_beat=8, op_half=4, queue_depth=0), "queue_depth"),
    (lambda: SegmentGenerator(channel=2, channels=2, cores=2, word_bytes=16, core_beat=16, input_bytes=1,
                              acc_bytes=4, op_half=4, acc_half=4), "channel 2 of 2"),
])
def test_parts_reject_bad_parameters(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()
