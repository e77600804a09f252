"""The accelerator core bench's plan and result (see :mod:`systolab.sim.messages`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import AcceleratorConfig
from .messages import Matrices, Message


@dataclass(frozen=True)
class MemoryParams(Message):
    """The external memory: ``latency`` in cycles, ``bytes_per_cycle`` of read bandwidth,
    ``stall_prob`` of a stall per channel and cycle, seeded by ``seed``."""

    latency: int = 10
    bytes_per_cycle: float = 16.0
    stall_prob: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class CorePlan(Message):
    """GEMMs submitted back to back to one core, each within ``max_cycles``."""

    config: dict
    memory: MemoryParams
    products: list[Matrices]
    max_cycles: int = 2_000_000

    @classmethod
    def build(cls, config: AcceleratorConfig, products: list[tuple[np.ndarray, np.ndarray]], *,
              memory: MemoryParams, max_cycles: int = 2_000_000) -> CorePlan:
        return cls(config.to_dict(), memory, [Matrices.of(a, b) for a, b in products], max_cycles)

    @property
    def accelerator(self) -> AcceleratorConfig:
        return AcceleratorConfig.from_dict(self.config)

    def product_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(A, B) of every GEMM as int64 arrays."""
        return [p.arrays() for p in self.products]


@dataclass(frozen=True)
class CoreResult(Message):
    """What a core run left: C of every GEMM (row-major lists), the core's counters after
    each GEMM, the memory's write violations, the simulator and the waveform's path."""

    c: list[list[list[int]]]
    counters: list[dict[str, int]]
    violations: list[str]
    simulator: str = ""
    waveform: str | None = None

    def c_arrays(self) -> list[np.ndarray]:
        """C of every GEMM as an object array (accumulators may exceed 64 bits)."""
        return [np.array(c, dtype=object) for c in self.c]
