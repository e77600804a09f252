"""The chip's exact cycle model, vectorised over the blockings of one GEMM.

:func:`chip_gemm_cycles_batch` returns, for many blockings at once, the cycles
:func:`~systolab.models.chip.perf.chip_gemm_cycles` returns for each: the same numbers
(``tests/test_chip_batch.py`` compares them on every blocking of the mapper's spaces, on
every built-in chip), from a compiled loop over the blockings
(:func:`~systolab.models.chip.kernel.block_cycles`) instead of a Python walk through each
one's schedule. It follows that model (each output block's K-steps; a step lasts until
its slowest core sub-GEMM and its DMA job are done) and reduces its three costly parts to
closed forms:

* **The blocks and their neighbours.** Blocks run in the controller's order (product
  groups, then M and N in the blocking's loop order), and a block's steps depend on its
  own sizes and its neighbours' (the previous block's write-back, the next block's first
  load, which leaves out an operand block the two share when there is one K-block). In
  each dimension every block but the last is full-sized, so of a dimension of n blocks
  the indices 0, 1 (standing for 1 ... n-3), n-2 and n-1 are all the cases there are:
  their product over the three dimensions, weighted by how many positions each stands
  for, is every (previous, block, next) triple of the schedule, and whether the next
  block shares the outer operand (not the inner dimension's last block) or the inner one
  (the inner dimension is one block) follows from the same indices.
* **The DMA channels.** A job lasts as long as its busiest channel's beats take. A load
  sends A row ``i`` of product ``q``'s K-part ``kk`` to channel ``((kk gp + q) gm + i) mod
  C``, B column ``j`` to ``((j gk + kk) gp + q) mod C``, a write-back's row group to
  ``(j gk gp + q) mod C`` (``hdl/dma.py``). The group counts ``gp``, ``gm``, ``gk`` and
  the channels ``C`` are powers of two (the controller and the chip configuration insist),
  so a group index is a mixed-radix number whose residue mod C keeps its low digits: a
  channel is a tuple of digits, and its beats are a product over the digits of the
  weights (rows or columns, beats per K-part) of the groups with that digit. Every group
  weighs the same but the last of a dimension, which weighs no more, so digit 0 weighs
  the most in every dimension: **channel 0 is the busiest**, in every load and write-back
  (``tests/test_chip_batch.py`` checks it on the scalar model), and each job's length is
  computed in closed form from channel 0's beats.
* **The cores.** A step's slowest core sub-GEMM is the largest of at most eight exact core
  model results (full and edge rows, columns and K-parts), looked up in a table filled once
  per distinct shape (:class:`CoreTable`, kept between processes in the build cache) by
  the compiled core model (``models/core/kernel.py``, about a microsecond a new shape;
  most mappings bring one).

The exact model applies while a channel's DRAM credit cannot delay a job's first beat
(:func:`~systolab.models.chip.perf.block_model_applies`); otherwise
:func:`chip_gemm_cycles_batch` times each blocking with the scalar model, and
:func:`block_model_cycles_batch` is a lower bound the mapper prunes by.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import zipfile
from functools import lru_cache
from operator import attrgetter
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...files import atomic_write_bytes, cache_root
from ..core.perf import MemorySystem, core_cycles_many
from .perf import beat_spacing, block_model_applies, chip_gemm_cycles, dma_shape

_BITS = 21                                  # per dimension in a packed core-shape key
#: A kept core table is written every this many new shapes (and at exit).
SAVE_EVERY = 20_000
#: What a core sub-GEMM's cycles depend on besides the core and the port.
_CORE_MODEL_SOURCES = tuple(Path(__file__).parent.parent / f for f in ("core/perf.py", "core/kernel.py", "chip/perf.py"))
_FIELDS = ("mb", "nb", "kb", "mc", "nc", "kc", "gp", "gm", "gn", "gk", "order")


class CoreTable:
    """Exact core sub-GEMM cycles (``models/core/perf.py: core_cycles``, the cycles of
    ``chip/perf.py: _core_step``) by shape, for vectorised lookups:
    packed (rows, cols, K) keys kept sorted with their cycles, extended by the shapes a
    lookup misses. A shape with a zero dimension costs 0.

    With ``path`` the table is kept between processes (:func:`core_table` puts it in the
    build cache): read when the table is made, written (merged with what another process
    wrote, atomically) every :data:`SAVE_EVERY` new shapes and at exit. A file that cannot
    be read or written is ignored: the table is then this process's alone."""

    def __init__(self, cfg, port: MemorySystem, path: Path | None = None):
        self.cfg, self.port, self.path = cfg, port, path
        self.keys = np.zeros(0, dtype=np.int64)
        self.cycles = np.zeros(0, dtype=np.int64)
        self.unsaved = 0
        if path is not None:
            self._merge(*self._read())
            atexit.register(self.save)

    def __call__(self, rows, cols, ks) -> np.ndarray:
        """Cycles of each rows x cols x ks shape (arrays that broadcast together)."""
        rows, cols, ks = (np.asarray(v, dtype=np.int64) for v in (rows, cols, ks))
        present = (rows > 0) & (cols > 0) & (ks > 0)
        if max(rows.max(initial=0), cols.max(initial=0), ks.max(initial=0)) >= 1 << _BITS:
            rows, cols, ks, present = np.broadcast_arrays(rows, cols, ks, present)
            out = np.zeros(rows.shape, dtype=np.int64)
            out[present] = core_cycles_many(self.cfg, rows[present], cols[present], ks[present], self.port)
            return out
        key = (rows << 2 * _BITS) | (cols << _BITS) | ks
        present = np.broadcast_to(present, key.shape)
        out = np.zeros(key.shape, dtype=np.int64)
        key = key[present]
        idx = self._find(key)
        miss = self.keys[idx] != key if len(self.keys) else np.ones(len(key), bool)
        if miss.any():
            new = np.unique(key[miss])
            mask = (1 << _BITS) - 1
            self._merge(new, core_cycles_many(self.cfg, new >> 2 * _BITS, (new >> _BITS) & mask, new & mask, self.port))
            self.unsaved += len(new)
            if self.path is not None and self.unsaved >= SAVE_EVERY:
                self.save()
            idx = self._find(key)
        out[present] = self.cycles[idx]
        return out

    def _find(self, key: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))

    def _merge(self, keys: np.ndarray, cycles: np.ndarray) -> None:
        keys, first = np.unique(np.concatenate([self.keys, keys]), return_index=True)
        self.keys, self.cycles = keys, np.concatenate([self.cycles, cycles])[first]

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        if self.path is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        try:
            with np.load(self.path, allow_pickle=False) as f:
                keys, cycles = f["keys"].astype(np.int64), f["cycles"].astype(np.int64)
            if keys.shape == cycles.shape and keys.ndim == 1:
                return keys, cycles
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    def save(self) -> None:
        """Write the table to ``path``, merged with what is there (atomically: a killed
        process leaves the old file or the new one)."""
        if self.path is None or not self.unsaved:
            return
        self._merge(*self._read())
        data = io.BytesIO()
        np.savez(data, keys=self.keys, cycles=self.cycles)
        try:
            atomic_write_bytes(self.path, data.getvalue())
        except OSError:
            return
        self.unsaved = 0


@lru_cache(maxsize=64)
def core_table(cfg, port: MemorySystem) -> CoreTable:
    """The :class:`CoreTable` of a core configuration behind a slice port (shared by every
    chip with that core and port), kept in the build cache (``$SYSTOLAB_CACHE``) under a
    hash of the core, the port and the core model's source, so that a change of the model
    starts a new table."""
    try:
        root = cache_root()
    except UserError:
        return CoreTable(cfg, port)
    h = hashlib.sha256(json.dumps([cfg.canonical_json(), port.latency_cycles, port.bytes_per_cycle]).encode())
    for source in _CORE_MODEL_SOURCES:
        h.update(source.read_bytes())
    return CoreTable(cfg, port, root / "core-cycles" / f"{cfg.name}-{h.hexdigest()[:16]}.npz")


def blocking_fields(blockings) -> np.ndarray:
    """The blockings' fields as an (n, 11) int64 array, columns in :data:`_FIELDS` order."""
    get = attrgetter(*_FIELDS)
    return np.array([get(b) for b in blockings], dtype=np.int64).reshape(-1, len(_FIELDS))


def chip_gemm_cycles_batch(chip, M: int, N: int, K: int, blockings, count: int = 1) -> np.ndarray:
    """:func:`~systolab.models.chip.perf.chip_gemm_cycles` of every blocking (an int64
    array of chip clock cycles, in the blockings' order) for ``count`` M x N x K products
    as one descriptor. No parameter checks: the caller (the mapper) passes the controller's
    valid blockings."""
    blockings = list(blockings)
    if not block_model_applies(chip):
        return np.array([chip_gemm_cycles(chip, M, N, K, b, count) for b in blockings], dtype=np.int64)
    return block_model_cycles_batch(chip, M, N, K, blockings, count)


def block_model_cycles_batch(chip, M: int, N: int, K: int, blockings, count: int = 1) -> np.ndarray:
    """The block model's cycles of every blocking, whether or not it applies to the chip:
    exact where :func:`~systolab.models.chip.perf.block_model_applies`, elsewhere a lower
    bound on the exact cycles (it leaves out the DRAM credit's delays), by which the
    mapper prunes."""
    blockings = list(blockings)
    if not blockings:
        return np.zeros(0, dtype=np.int64)
    port = MemorySystem(chip.sram_latency_cycles, float(chip.core.beat_bytes))
    sp = beat_spacing(chip.dma_beat_bytes, chip.channel_bytes_per_cycle)
    return _cycles(core_table(chip.core, port), dma_shape(chip), chip.dram_latency_cycles, sp,
                   M, N, K, count, blocking_fields(blockings), chip.writeback_stages)


def block_model_cycles_many(chip, problems) -> list[np.ndarray]:
    """:func:`block_model_cycles_batch` of several GEMMs in one vectorised pass: for each
    (M, N, K, count, blockings) of ``problems``, an int64 array of cycles. One pass costs
    numpy's per-call overhead once instead of once a GEMM (a workload's GEMMs)."""
    problems = [(M, N, K, count, list(bs)) for M, N, K, count, bs in problems]
    sizes = [len(bs) for *_, bs in problems]
    if not sum(sizes):
        return [np.zeros(0, dtype=np.int64) for _ in problems]
    per_row = [np.repeat(np.array([p[i] for p in problems], dtype=np.int64), sizes) for i in range(4)]
    port = MemorySystem(chip.sram_latency_cycles, float(chip.core.beat_bytes))
    sp = beat_spacing(chip.dma_beat_bytes, chip.channel_bytes_per_cycle)
    M, N, K, count = per_row
    out = _cycles(core_table(chip.core, port), dma_shape(chip), chip.dram_latency_cycles, sp, M, N, K, count,
                  blocking_fields([b for *_, bs in problems for b in bs]), chip.writeback_stages)
    return np.split(out, np.cumsum(sizes)[:-1])


def _cycles(table: CoreTable, shape: tuple, L: int, sp: int, M, N, K, count, f: np.ndarray, lag: int = 0
            ) -> np.ndarray:
    """The block model's cycles of the blockings ``f`` (rows of :func:`blocking_fields`);
    ``M``, ``N``, ``K`` and ``count`` are numbers or arrays, one value per row; ``lag``: the
    write-back sum's register stages (``ChipConfig.writeback_stages``). The core
    sub-GEMMs' cycles are looked up here (the table fills what it misses); the rest is
    the compiled loop of :func:`~systolab.models.chip.kernel.block_cycles`."""
    from .kernel import block_cycles  # noqa: PLC0415  lazy: numba loads the compiled kernel (about 1 s; 15 s to compile on a new machine)

    C, beat, eb, ab = shape
    mb, nb, kb, mc, nc, kc = f.T[:6]
    n = len(f)
    M, N, K, count = (np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v in (M, N, K, count))
    # the sub-GEMM sizes by dimension: the full part, a full block's rest, the last block's rest
    sizes = []
    for length, block, part in ((M, mb, mc), (N, nb, nc), (K, kb, kc)):
        full, last = np.minimum(block, length), length - (_ceil(length, block) - 1) * block
        sizes.append(np.stack([part, full % part, last % part], axis=1))
    cyc = table(sizes[0][:, :, None, None], sizes[1][:, None, :, None], sizes[2][:, None, None, :])
    M, N, K, count = (np.ascontiguousarray(v) for v in (M, N, K, count))
    return block_cycles(cyc, np.ascontiguousarray(f), M, N, K, count, C, beat, eb, ab, L, sp, lag)


def _ceil(a, b):
    return -(-a // b)


__all__ = ["CoreTable", "block_model_cycles_batch", "block_model_cycles_many", "blocking_fields", "chip_gemm_cycles_batch", "core_table"]
