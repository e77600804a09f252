"""The blocked-GEMM descriptor that software gives the chip's controller: how a GEMM is
blocked and split over the cores (:class:`Blocking`), and the controller's verdict on it
(:func:`blocking_status`, computed as the RTL in ``hdl/chip.py`` computes it).

It sits below both the HDL and the models: the chip RTL takes its fields, the cycle
model and the mapper reason about them, and neither imports the other for it. So does
the DRAM channel's beat spacing (:func:`beat_spacing`), which the cycle model and the
simulation-only DRAM both take, and the write-back reduction's register stages
(:func:`writeback_stages`), which the RTL builds and the cycle model counts."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .config import hash_once, state_without_hash

#: Why the controller rejected a descriptor (``status`` with ``done``); 0 = ran.
REJECT = {1: "a zero dimension, block, group size or grid size", 2: "grid larger than the chip's cores",
          3: "the row, column and K-groups do not cover the block, or a K-group gets no part of it",
          4: "the operands of a block do not fit a slice",
          5: "the accumulators of a block do not fit a slice",
          6: "saturating accumulation needs the whole K in one block and one K-group; floating point at most "
             "the chip's float_split_k K-groups",
          7: "the product, row and K-group counts (gp, gm, gk) must be powers of two"}


@lru_cache(maxsize=64)
def beat_spacing(word: int, bytes_per_cycle: float) -> int:
    """Cycles between back-to-back beats of ``word`` bytes on a DRAM channel of
    ``bytes_per_cycle``: the credit of :class:`~systolab.sim.memory.ExternalMemory` (grows by
    ``bytes_per_cycle`` a cycle, capped at one beat, a beat needs a whole one), stepped from
    empty in its own float arithmetic."""
    if bytes_per_cycle >= word:
        return 1
    credit, cycles = 0.0, 0
    while credit < word:
        credit = min(credit + bytes_per_cycle, max(word, bytes_per_cycle))
        cycles += 1
    return cycles


#: Carry-save (3:2) levels the integer write-back adds between two of its registers: about
#: 2.5 generic gates a level, so a stage of 16 levels and the core select stays below the
#: int8 PE's 67 gates (docs/timing.md, "Chips").
CSA_LEVELS_PER_STAGE = 8


def carry_save_levels(words: int) -> int:
    """3:2 compressor levels that reduce ``words`` addends to two (0 for two or fewer):
    each level turns every three words into two and passes the rest on."""
    levels = 0
    while words > 2:
        words = 2 * (words // 3) + words % 3
        levels += 1
    return levels


def writeback_stages(cores: int, *, is_float: bool = False, split_k: int | None = None) -> int:
    """Register stages of a chip's write-back reduction (``hdl/chip_parts.py``
    ``WriteBackSum``): a DMA write-back beat leaves the reduction this many advances
    after its accumulator read, and the cycle model counts them.

    Integers (``cores`` masked accumulator words): none for one or two cores (the select
    and one adder, no deeper than the PE); else the words are compressed to two in a
    carry-save tree with a register after every :data:`CSA_LEVELS_PER_STAGE` levels and
    after the last, and the final carry-propagate add follows the last register.
    Floating point (``split_k`` leaves, cut to the largest power of two <= ``cores``, as
    the tree is): 2 log2(leaves) stages, a register after the core select, one inside
    every fp32 adder (``hdl/float_add.py`` ``ADDER_CUT``: each stage at most half an adder)
    and one after every adder level but the last; none for one leaf."""
    top = 1 << (cores.bit_length() - 1) if cores > 0 else 1
    if is_float:
        leaves = top if split_k is None else min(top, split_k)
        return 2 * (leaves.bit_length() - 1)
    levels = carry_save_levels(cores)
    return -(-levels // CSA_LEVELS_PER_STAGE)


@dataclass(frozen=True)
class Blocking:
    """How a GEMM is blocked and split over the chip's cores (the descriptor's fields
    chosen by software): blocks of ``mb`` x ``nb`` x ``kb``; a grid of ``gp`` products x
    ``gm`` row groups of ``mc`` rows x ``gn`` column groups of ``nc`` columns x ``gk``
    K-groups of ``kc`` (split-K; ``kc`` 0 means ``kb``); the steps in loop ``order`` 0
    (product groups, M-blocks, N-blocks, K-blocks; K innermost) or 1 (N-blocks outside
    the M-blocks). A step whose A (or B) block is the previous step's keeps it on chip
    instead of loading it again: with one K-block, A along the N-blocks of order 0, B
    along the M-blocks of order 1."""

    mb: int
    nb: int
    kb: int
    mc: int
    nc: int
    gp: int = 1
    gm: int = 1
    gn: int = 1
    gk: int = 1
    kc: int = 0
    order: int = 0

    __hash__ = hash_once               # blockings key the cycle model's caches
    __getstate__ = state_without_hash

    def __post_init__(self) -> None:
        if self.kc == 0:
            object.__setattr__(self, "kc", self.kb)

    @property
    def cores(self) -> int:
        """Cores the grid uses."""
        return self.gp * self.gm * self.gn * self.gk

    def to_dict(self) -> dict[str, int]:
        return state_without_hash(self)

    def __str__(self) -> str:
        split = f"x{self.gk}" if self.gk > 1 else ""
        return (f"{self.mb}x{self.nb}x{self.kb}/{self.gp}x{self.gm}x{self.gn}{split}"
                f"({self.mc}x{self.nc}{f'x{self.kc}' if split else ''}){'/n-outer' if self.order else ''}")


def slice_words(chip, nbytes: int) -> int:
    """Words of a slice (a core beat each) that ``nbytes`` occupy."""
    return -(-nbytes // chip.core.beat_bytes)


def dram_beats(chip, nbytes: int) -> int:
    """DRAM beats (``dma_beat_bytes`` each, on any channel) that move a segment of ``nbytes``."""
    return -(-nbytes // chip.dma_beat_bytes)


def blocking_status(chip, M: int, N: int, K: int, count: int, b: Blocking) -> int:
    """The controller's verdict on a descriptor (0: runs; else the code of :data:`REJECT`),
    computed as the RTL computes it, in the same order. ``chip`` gives ``core``, ``cores``,
    ``operand_words``, ``acc_words``, ``float_split_k`` and (for :func:`slice_words`) the core's beat."""
    cfg = chip.core
    fields_ = (M, N, K, count, b.mb, b.nb, b.kb, b.mc, b.nc, b.gp, b.gm, b.gn, b.gk, b.kc)
    if 0 in fields_:
        return 1
    if b.cores > chip.cores:
        return 2
    if b.mc * b.gm < b.mb or b.nc * b.gn < b.nb or b.kc * b.gk < b.kb or b.kc * (b.gk - 1) >= min(b.kb, K):
        return 3
    if (b.mc + b.nc) * slice_words(chip, b.kc * cfg.input_bytes) > chip.operand_words // 2:
        return 4
    if b.mc * slice_words(chip, b.nc * cfg.acc_bytes) > chip.acc_words // 2:
        return 5
    if cfg.overflow == "saturate" and (b.kb < K or b.gk > 1) or cfg.is_float and b.gk > chip.float_split_k:
        return 6
    if b.gp & (b.gp - 1) or b.gm & (b.gm - 1) or b.gk & (b.gk - 1):
        return 7
    return 0
