"""The vectorised exact cycle model equals the scalar one on every blocking of the mapper's
spaces, on every built-in chip and on DMA shapes the built-ins lack."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from systolab.blocking import Blocking, blocking_status
from systolab.models.chip.batch import CoreTable, block_model_cycles_batch, chip_gemm_cycles_batch, core_table
from systolab.models.chip.blocking import candidates
from systolab.models.chip.config import get_chip, list_chips
from systolab.models.chip.perf import LOAD_A, LOAD_AB, LOAD_B, _channel_beats, _core_step, block_model_applies, chip_gemm_cycles, dma_shape
from systolab.models.core.perf import MemorySystem

CHIPS = [get_chip(name) for name in list_chips()] + [
    get_chip("sl-small").derive(dma_channels=1), get_chip("sl-small").derive(dma_channels=4, dma_beat_bytes=64),
    get_chip("sl-n7-os32-edge").derive(dma_channels=16, sram_latency_cycles=5),
    get_chip("sl-n4-os32").derive(dram_stacks=3)]     # beats 2 cycles apart


def _scalar(chip, M, N, K, count, cands):
    return np.array([chip_gemm_cycles(chip, M, N, K, b, count) for b in cands])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(chip=st.sampled_from(CHIPS), M=st.integers(1, 3000), N=st.integers(1, 3000), K=st.integers(1, 5000),
       count=st.sampled_from([1, 1, 2, 3, 8, 33]))
def test_batch_equals_the_scalar_model_on_every_mapping(chip, M, N, K, count):
    assert block_model_applies(chip)
    cands = candidates(chip, M, N, K, count)
    got = chip_gemm_cycles_batch(chip, M, N, K, cands, count)
    assert got.dtype == np.int64 and got.shape == (len(cands),)
    assert np.array_equal(got, _scalar(chip, M, N, K, count, cands))


@pytest.mark.parametrize("shape", [(2048, 4096, 4096, 1), (1, 4096, 14336, 1), (16, 128, 4096, 256), (16, 4096, 128, 256)])
def test_batch_equals_the_scalar_model_on_workload_shapes(shape):
    M, N, K, count = shape
    chip = get_chip("sl-n4-os32")
    cands = candidates(chip, M, N, K, count)
    assert np.array_equal(chip_gemm_cycles_batch(chip, M, N, K, cands, count), _scalar(chip, M, N, K, count, cands))


def test_where_the_credit_binds_the_batch_steps_and_the_block_model_screens():
    chip = get_chip("sl-small").derive(clock_mhz=8000)          # 4 bytes a cycle per channel, 32-byte beats
    assert not block_model_applies(chip)
    M, N, K = 40, 24, 100
    cands = candidates(chip, M, N, K)
    exact = _scalar(chip, M, N, K, 1, cands)
    assert np.array_equal(chip_gemm_cycles_batch(chip, M, N, K, cands), exact)
    screen = block_model_cycles_batch(chip, M, N, K, cands)
    assert np.all(screen <= exact) and not np.array_equal(screen, exact)     # the credit only delays


@settings(max_examples=30, deadline=None, derandomize=True)
@given(M=st.integers(1, 300), N=st.integers(1, 300), K=st.integers(1, 600), count=st.integers(1, 4),
       clock=st.sampled_from([3000, 8000, 20000]), wide=st.booleans())
def test_where_the_credit_binds_the_block_model_is_a_lower_bound(M, N, K, count, clock, wide):
    """What the fast search's pruning rests on: leaving out the credit's delays never
    adds cycles."""
    chip = get_chip("sl-small").derive(clock_mhz=clock, **({"dma_beat_bytes": 64} if wide else {}))
    cands = candidates(chip, M, N, K, count)
    assert np.all(block_model_cycles_batch(chip, M, N, K, cands, count) <= _scalar(chip, M, N, K, count, cands))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(chip=st.sampled_from(CHIPS), M=st.integers(1, 2000), N=st.integers(1, 2000), K=st.integers(1, 4000),
       count=st.integers(1, 9), pick=st.integers(0, 1 << 20),
       kind=st.sampled_from(["load", "load A", "load B", "write-back"]))
def test_channel_zero_is_the_busiest(chip, M, N, K, count, pick, kind):
    """What the batch model rests on: with power-of-two channels and core groups, channel 0
    moves the most beats in every load (of both operands or of one, the other kept on
    chip) and write-back."""
    cands = candidates(chip, M, N, K, count)
    b = cands[pick % len(cands)]
    klen = min(b.kb, K) if kind.startswith("load") else None
    ops = {"load A": LOAD_A, "load B": LOAD_B}.get(kind, LOAD_AB)
    beats = _channel_beats(dma_shape(chip), b, min(b.gp, count), min(b.mb, M), min(b.nb, N), klen, ops)
    assert beats[0] == max(beats) > 0


def test_core_table_matches_the_core_model_and_costs_nothing_for_empty_shapes():
    chip = get_chip("sl-small")
    port = MemorySystem(chip.sram_latency_cycles, float(chip.core.beat_bytes))
    table = core_table(chip.core, port)
    rows, cols, ks = np.array([[3], [8], [0]]), np.array([5, 16]), np.array([[[40]], [[7]]])
    got = table(rows, cols, ks)
    assert got.shape == (2, 3, 2)
    for x, r in enumerate(rows[:, 0]):
        for y, c in enumerate(cols):
            for z, k in enumerate(ks[:, 0, 0]):
                assert got[z, x, y] == (_core_step(chip.core, port, int(r), int(c), int(k))[0] if r else 0)
    assert np.array_equal(table(rows, cols, ks), got)               # the second time from the table


@settings(max_examples=150, deadline=None, derandomize=True)
@given(chip=st.sampled_from(CHIPS[:3] + CHIPS[6:8]), M=st.integers(1, 200), N=st.integers(1, 200), K=st.integers(1, 300),
       count=st.integers(1, 5), sizes=st.tuples(*[st.integers(1, 64)] * 6), logs=st.tuples(*[st.integers(0, 2)] * 3),
       gn=st.integers(1, 3))
def test_batch_equals_the_scalar_model_on_any_valid_blocking(chip, M, N, K, count, sizes, logs, gn):
    """Blockings outside the mapper's space too (a part larger than its block, K-groups
    past the block's K): whatever the controller runs."""
    mb, nb, kb, mc, nc, kc = sizes
    gp, gm, gk = (1 << v for v in logs)
    b = Blocking(mb, nb, kb, mc, nc, gp, gm, gn, gk, kc)
    assume(blocking_status(chip, M, N, K, count, b) == 0)
    assert chip_gemm_cycles_batch(chip, M, N, K, [b], count)[0] == chip_gemm_cycles(chip, M, N, K, b, count)


def test_a_core_table_is_kept_between_processes_and_a_bad_file_is_ignored(tmp_path):
    chip = get_chip("sl-small")
    port = MemorySystem(chip.sram_latency_cycles, float(chip.core.beat_bytes))
    path = tmp_path / "table.npz"
    first = CoreTable(chip.core, port, path)
    cycles = first(np.array([3, 8])[:, None], np.array([5, 16]), 40)
    first.save()
    again = CoreTable(chip.core, port, path)            # as a new process finds it
    assert len(again.keys) == 4 and np.array_equal(again(np.array([3, 8])[:, None], np.array([5, 16]), 40), cycles)
    assert again.unsaved == 0                           # nothing recomputed
    path.write_bytes(b"not a table")
    broken = CoreTable(chip.core, port, path)
    assert len(broken.keys) == 0 and np.array_equal(broken(np.array([3, 8])[:, None], np.array([5, 16]), 40), cycles)
    broken.save()
    assert len(CoreTable(chip.core, port, path).keys) == 4     # the bad file replaced whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporary left
