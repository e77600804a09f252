"""Verification runs: products through the RTL, checked against the golden model."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..config import AcceleratorConfig
from .amaranth_bench import run_plan_amaranth
from .checker import Scoreboard
from .plan import Plan
from .protocol import ArrayProtocol
from .runner import resolve_simulator, run_plan_hdl
from .stimulus import Product


@dataclass
class VerifyReport:
    """Outcome of a verification run (the fields of ``systolab verify --json``)."""

    passed: bool
    gemms: int
    mismatches: int
    seed: int
    simulator: str
    cycles: list[int]
    shapes: list[list[int]]
    labels: list[str]
    first_mismatches: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    waveform: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def verify_products(config: AcceleratorConfig, products: list[Product], *, seed: int,
                    simulator: str | None = None, stall_prob: float = 0.2, waves: bool = False,
                    reset_midway: bool = False) -> VerifyReport:
    """Run ``products`` on the generated array and compare every element.

    Parameters
    ----------
    config : AcceleratorConfig
    products : list of Product
        Each must fit one pass of the bare array (see ``stimulus.array_limits``).
    seed : int
        Seeds the stall pattern; reported in every failure message.
    simulator : {"verilator", "icarus", "amaranth"} or None
        None picks the best available.
    stall_prob : float
        Probability of a gap on each input stream and of back-pressure on the output,
        per beat.
    waves : bool
        Dump a waveform (cocotb simulators: VCD/FST in the build folder; Amaranth: VCD).
    reset_midway : bool
        First push half of an extra product, reset the DUT with it in flight, then run.
    """
    if not products:
        raise ValueError("products must not be empty")
    sim_name = resolve_simulator(simulator)
    junk = products[0] if reset_midway else None
    reset_after = max(1, len(ArrayProtocol(config).operand_beats(junk)) // 2) if junk is not None else None
    plan = Plan.build(config, products, seed=seed, stall_prob=stall_prob,
                      reset_after_beats=reset_after, junk=junk)
    t0 = time.perf_counter()
    waveform = None
    if sim_name == "amaranth":
        vcd = f"{config.name}-{config.config_hash}.vcd" if waves else None
        result = run_plan_amaranth(plan, vcd=vcd)
        waveform = vcd
    else:
        result, wpath = run_plan_hdl(plan, sim_name, waves=waves)
        waveform = str(wpath) if wpath else None
    seconds = time.perf_counter() - t0

    proto = ArrayProtocol(config)
    board = Scoreboard(config, products, seed=seed, waveform=waveform)
    for i, p in enumerate(products):
        beats = result.beats[i]
        got = None
        if len(beats) == proto.result_beats(p):
            got = proto.assemble(p, [proto.decode_result(b)[0] for b in beats])
        board.check(i, got)
    first = board.mismatches[:10]
    return VerifyReport(
        passed=board.passed,
        gemms=len(products),
        mismatches=len(board.mismatches),
        seed=seed,
        simulator=sim_name,
        cycles=result.cycles,
        shapes=[list(p.shape) for p in products],
        labels=[p.label for p in products],
        first_mismatches=[mm.to_dict() for mm in first],
        messages=[board.describe(mm) for mm in first],
        waveform=waveform,
        seconds=round(seconds, 3),
    )
