"""A simulation plan: the beats to drive and results to expect, independent of simulator.

Both testbenches (Amaranth's simulator and cocotb) execute the same plan with the same
seeded stall pattern and return a :class:`RunResult`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import AcceleratorConfig
from .messages import Message
from .protocol import ArrayProtocol
from .stimulus import Product


def int_array(x: list | None) -> np.ndarray | None:
    """``x`` as an int64 array; None stays None."""
    return None if x is None else np.array(x, dtype=np.int64)


@dataclass(frozen=True)
class StreamPlan(Message):
    """Beats of one product."""

    weights: list[int]
    operands: list[int]
    results: int


@dataclass(frozen=True)
class Plan(Message):
    """Everything a testbench needs; serialisable to JSON for the cocotb process."""

    config: dict
    products: list[StreamPlan]
    seed: int
    stall_prob: float
    reset_after_beats: int | None = None  # reset the DUT after this many beats of a junk product
    junk: StreamPlan | None = None
    matrices: list[dict] = field(default_factory=list)  # the products, for in-bench checking

    @classmethod
    def build(cls, config: AcceleratorConfig, products: list[Product], *, seed: int,
              stall_prob: float = 0.0, reset_after_beats: int | None = None,
              junk: Product | None = None) -> Plan:
        if not 0.0 <= stall_prob < 1.0:
            raise ValueError(f"stall_prob must be in [0, 1), not {stall_prob}")
        proto = ArrayProtocol(config)

        def one(p: Product) -> StreamPlan:
            return StreamPlan(proto.weight_beats(p), proto.operand_beats(p), proto.result_beats(p))

        matrices = [{"label": p.label, "a": p.a.tolist(), "b": p.b.tolist(),
                     "init": None if p.init is None else p.init.tolist()} for p in products]
        return cls(config.to_dict(), [one(p) for p in products], seed, stall_prob,
                   reset_after_beats, one(junk) if junk is not None else None, matrices)

    def product_list(self) -> list[Product]:
        """The products this plan drives (rebuilt from :attr:`matrices`)."""
        return [Product(d["label"], np.array(d["a"], dtype=np.int64), np.array(d["b"], dtype=np.int64),
                        int_array(d["init"])) for d in self.matrices]

    def stall_rngs(self) -> dict[str, np.random.Generator]:
        """One independent generator per stream, derived from the seed."""
        seqs = np.random.SeedSequence(self.seed).spawn(3)
        return {name: np.random.default_rng(s) for name, s in zip(("weights", "operands", "results"), seqs)}


@dataclass(frozen=True)
class RunResult(Message):
    """Raw results of a run: packed result beats per product and cycle stamps."""

    beats: list[list[int]] = field(default_factory=list)
    first_cycle: list[int] = field(default_factory=list)   # first input beat accepted
    last_cycle: list[int] = field(default_factory=list)    # last result beat accepted
    simulator: str = ""

    @property
    def cycles(self) -> list[int]:
        """Cycles per product, first input beat to last result beat inclusive."""
        return [last - first + 1 for first, last in zip(self.first_cycle, self.last_cycle)]


class Recorder:
    """Bookkeeping shared by both testbenches: which product a beat belongs to, and when."""

    def __init__(self, plan: Plan):
        self.plan = plan
        n = len(plan.products)
        self.beats: list[list[int]] = [[] for _ in range(n)]
        self.first_cycle, self.last_cycle = [-1] * n, [-1] * n
        self._result_index = 0

    def result(self, simulator: str) -> RunResult:
        """What was recorded, from ``simulator``."""
        return RunResult(self.beats, self.first_cycle, self.last_cycle, simulator)

    def input_accepted(self, product: int, cycle: int) -> None:
        fc = self.first_cycle
        if fc[product] < 0 or cycle < fc[product]:
            fc[product] = cycle

    def result_accepted(self, bits: int, cycle: int) -> None:
        plans = self.plan.products
        while self._result_index < len(plans) and len(self.beats[self._result_index]) >= plans[self._result_index].results:
            self._result_index += 1
        if self._result_index >= len(plans):
            raise RuntimeError(f"unexpected extra result beat in cycle {cycle}")
        self.beats[self._result_index].append(bits)
        self.last_cycle[self._result_index] = cycle

    @property
    def done(self) -> bool:
        return all(len(b) >= p.results for b, p in zip(self.beats, self.plan.products))

    @property
    def expected_results(self) -> int:
        return sum(p.results for p in self.plan.products)
