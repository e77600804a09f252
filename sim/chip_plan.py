"""The chip bench's plan and result (see :mod:`systolab.sim.messages`).

The benches read a few attributes of the chip, named by :class:`Chip`; the plan carries
them as plain data (:class:`ChipParams`), so the cocotb process needs no chip model.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from ..blocking import Blocking
from ..config import AcceleratorConfig
from ..errors import UserError
from .messages import Matrices, Message

#: The cocotb chip bench's DRAM models (:attr:`ChipPlan.dram`).
DRAM_HARNESSES = ("hdl", "python")


class Chip(Protocol):
    """What the chip benches read of a chip (``systolab.models.chip.ChipConfig`` has it)."""

    @property
    def core(self) -> AcceleratorConfig: ...
    @property
    def cores(self) -> int: ...
    @property
    def dma_channels(self) -> int: ...
    @property
    def dma_beat_bytes(self) -> int: ...
    @property
    def dram_latency_cycles(self) -> int: ...
    @property
    def channel_bytes_per_cycle(self) -> float: ...


@dataclass(frozen=True)
class ChipParams(Message):
    """A :class:`Chip` as plain data: ``core_config`` is the core's configuration as a dict;
    beats and bandwidth in bytes, latency in cycles."""

    core_config: dict
    cores: int
    dma_channels: int
    dma_beat_bytes: int
    dram_latency_cycles: int
    channel_bytes_per_cycle: float

    @classmethod
    def of(cls, chip: Chip) -> ChipParams:
        return cls(chip.core.to_dict(), chip.cores, chip.dma_channels, chip.dma_beat_bytes,
                   chip.dram_latency_cycles, chip.channel_bytes_per_cycle)

    @cached_property
    def core(self) -> AcceleratorConfig:
        return AcceleratorConfig.from_dict(self.core_config)


@dataclass(frozen=True)
class ChipCase(Message):
    """One descriptor: ``count`` products of one shape with a blocking (its fields)."""

    products: list[Matrices]
    blocking: dict[str, int]

    def product_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [p.arrays() for p in self.products]


@dataclass(frozen=True)
class ChipPlan(Message):
    """Descriptors run one after another on one chip, DRAM stalls seeded by ``seed``.

    ``dram`` is the cocotb harness's DRAM: ``"hdl"``, the simulation-only DRAM inside the
    design (:mod:`systolab.sim.hdl_dram`, fast), or ``"python"``, the Python memory model
    driving the chip's ports every cycle (:class:`~systolab.sim.memory.ExternalMemory`,
    slow: the independent check). Both give the same cycles without stalls; Amaranth's
    simulator always runs the Python model."""

    chip: ChipParams
    cases: list[ChipCase]
    stall_prob: float = 0.0
    seed: int = 0
    max_cycles: int = 5_000_000
    dram: str = "hdl"

    @classmethod
    def build(cls, chip: Chip, cases: list[tuple[list[tuple[np.ndarray, np.ndarray]], Blocking]], *,
              stall_prob: float = 0.0, seed: int = 0, max_cycles: int = 5_000_000, dram: str = "hdl") -> ChipPlan:
        """The plan of ``cases`` — (products, blocking) pairs — on ``chip``."""
        if dram not in DRAM_HARNESSES:
            raise UserError(f"dram: {dram!r} is not one of {', '.join(DRAM_HARNESSES)}", parameter="dram")
        return cls(ChipParams.of(chip), [ChipCase([Matrices.of(a, b) for a, b in products], blocking.to_dict())
                                         for products, blocking in cases], stall_prob, seed, max_cycles, dram)


@dataclass(frozen=True)
class DescriptorResult(Message):
    """One descriptor's outcome: C of every product (row-major lists), the chip's counters,
    busy cycles per core, the controller's status (0: ran) and DRAM write violations."""

    c: list[list[list[int]]]
    counters: dict[str, int]
    busy: list[int]
    status: int
    violations: list[str]

    def c_arrays(self) -> list[np.ndarray]:
        """C of every product as an object array."""
        return [np.array(c, dtype=object) for c in self.c]


@dataclass(frozen=True)
class ChipResult(Message):
    """Every descriptor's outcome, in plan order, and the simulator."""

    results: list[DescriptorResult]
    simulator: str = ""
