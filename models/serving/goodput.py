"""Goodput: the most output tokens/s a device delivers while it still meets latency targets.

A service target is a time to first token (``ttft_s``) and a time per output token
(``tpot_s``) that requests must get. In this model both grow with the number of requests
in flight (a larger decode batch takes longer per step; a larger static batch prefills
longer; a new request waits on a longer decode step), while tokens/s per device grows
with it. So a device's capacity under targets is its output at the largest concurrency
(or static batch) that still meets them. Per tensor-parallel size it is found by
evaluating the powers of two up to the memory limit (``max_batch``: the curve one plots)
and bisecting between the last that meets the targets and the first that does not; the
best of the points that meet, over the tensor-parallel sizes, is the goodput. A device
that meets the targets at no concurrency and no size has no capacity (zero tokens/s),
and :attr:`Goodput.reason` says which target its fastest point misses, and by how much.

Monotone, nearly: scanning every concurrency (``tests/test_goodput.py``) the latencies
never fall by more than a few per cent from one concurrency to the next. The small dips
come from the GPU GEMM model changing its tile where M crosses a tile size (64, 128)
and from pipeline micro-batches rounding up; where such a dip straddles a target the
bisection may stop a few requests short, never above the target. Tokens/s per device
dips the same way (an H20 on Llama-3-70B at 2048 + 256 tokens peaks near concurrency 48
and is 1 % lower at 64), so the best evaluated point is taken, not the largest concurrency.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...checks import check_choice, check_int, check_positive
from ...errors import UserError
from ..frames import data_frame
from ..plotting import new_axes
from ..workloads.catalog import DecoderShape
from .batching import BatchingOptions
from .model import ChipServing, GpuServing, ServingResult, auto_tp_sizes, check_request, get_device, serve

BATCHING = ("continuous", "static")
#: UserError parameters meaning "this tensor-parallel size cannot hold the scenario".
NO_FIT = ("tp", "batch", "concurrency", "isl")


@dataclass(frozen=True)
class Targets:
    """Service targets in seconds: time to first token and time per output token (None:
    unconstrained)."""

    ttft_s: float | None = None
    tpot_s: float | None = None

    @classmethod
    def checked(cls, ttft_s: Any = None, tpot_s: Any = None) -> Targets:
        """The targets, each positive and finite (else :class:`UserError` naming it)."""
        return cls(None if ttft_s is None else check_positive("ttft_s", ttft_s),
                   None if tpot_s is None else check_positive("tpot_s", tpot_s))

    @property
    def given(self) -> bool:
        return self.ttft_s is not None or self.tpot_s is not None

    def missed(self, ttft_s: float, tpot_s: float) -> tuple[str, ...]:
        """The targets that a point of these latencies misses (``ttft_s`` first)."""
        return tuple(name for name, value, target in (("ttft_s", ttft_s, self.ttft_s), ("tpot_s", tpot_s, self.tpot_s))
                     if target is not None and value > target)

    def met_by(self, r: ServingResult) -> bool:
        return not self.missed(r.ttft_s, r.tpot_s)

    def reason(self, r: ServingResult, *, of: str = "") -> str | None:
        """Why ``r`` misses the targets, one line per missed target joined by '; ' (None
        when it meets them): e.g. 'tpot_s: 0.453 s at concurrency 64 on 1 × h20, above
        the 0.1 s target'; ``of`` is appended (what the point is the nearest of)."""
        label = "concurrency" if r.batching == "continuous" else "batch"
        parts = [f"{name}: {getattr(r, name):.3g} s at {label} {r.sequences:,} on {r.devices} × {r.device}, above "
                 f"the {getattr(self, name):g} s target" for name in self.missed(r.ttft_s, r.tpot_s)]
        return "; ".join(parts) + of if parts else None

    def to_dict(self) -> dict[str, float | None]:
        return {"ttft_s": self.ttft_s, "tpot_s": self.tpot_s}


@dataclass(frozen=True)
class GoodputPoint:
    """One evaluated point of the search: ``concurrency`` requests in flight (the batch,
    for static batching) on a ``tp``-way group; latencies in s, output tokens/s per device."""

    concurrency: int
    tp: int
    ttft_s: float
    tpot_s: float
    output_tokens_per_s: float
    meets: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Goodput:
    """A device's goodput for one scenario under ``targets``.

    ``best`` is the serving point of most output tokens/s per device that meets the
    targets (None when none does); ``output_tokens_per_s`` its rate per device (0.0 when
    none meets); ``reason`` why none meets (None when one does): the target its fastest
    point misses; ``fastest`` that point (concurrency 1 at the tensor-parallel size of
    lowest latency; None when a point meets); ``missed`` the targets it misses; ``curve``
    every evaluated point, by tp then concurrency."""

    device: str
    model: str
    isl: int
    osl: int
    batching: str
    targets: Targets
    best: ServingResult | None
    output_tokens_per_s: float
    reason: str | None
    curve: tuple[GoodputPoint, ...]
    fastest: ServingResult | None = None
    missed: tuple[str, ...] = ()

    @property
    def meets(self) -> bool:
        """Whether some point meets the targets (the device has capacity)."""
        return self.best is not None

    @property
    def chosen(self) -> ServingResult:
        """The point a fleet serves at: ``best``, or the fastest when none meets."""
        r = self.best or self.fastest
        assert r is not None
        return r

    def summary(self) -> dict[str, Any]:
        """What ``systolab serve`` adds under ``goodput``: the targets, the chosen point's
        concurrency and tp, the rate, the reason and the curve (not the full result)."""
        r = self.chosen
        return {"device": self.device, "model": self.model, "isl": self.isl, "osl": self.osl,
                "batching": self.batching, "targets": self.targets.to_dict(), "meets_targets": self.meets,
                "output_tokens_per_s": self.output_tokens_per_s, "concurrency": r.sequences, "tp": r.tp,
                "ttft_s": r.ttft_s, "tpot_s": r.tpot_s, "reason": self.reason, "missed": list(self.missed),
                "curve": [p.to_dict() for p in self.curve]}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "best": self.best.to_dict() if self.best else None,
                "fastest": self.fastest.to_dict() if self.fastest else None}

    def to_frame(self) -> Any:
        """The curve as a DataFrame (one row per evaluated point, the keys of :class:`GoodputPoint`)."""
        return data_frame(p.to_dict() for p in self.curve)


def goodput(device: Any, model: str | DecoderShape, *, isl: int, osl: int, ttft_s: float | None = None,
            tpot_s: float | None = None, tp: int | None = None, pp: int = 1, dtype: str | None = None,
            kv_dtype: str | None = None, batching: str = "continuous", ep: int = 1, chunk_tokens: int | None = None,
            kv_block: int | None = None, options: BatchingOptions | None = None) -> Goodput:
    """The largest output tokens/s per device of ``model`` on ``device`` (a GPU id, chip
    name or file, or :class:`ChipConfig`) with ``isl`` prompt and ``osl`` output tokens per
    request, over the tensor-parallel sizes (``tp``, or every size of :data:`AUTO_TP`
    that holds the model) and the concurrency (``batching="static"``: the batch) up to
    the memory limit, at which TTFT <= ``ttft_s`` and TPOT <= ``tpot_s`` (seconds; None:
    unconstrained, so no targets gives the best point at the memory limit). ``ep``,
    ``chunk_tokens``, ``kv_block`` and ``options`` are :func:`serve`'s; with ``ep`` > 1 the
    automatic sizes are those ``ep`` divides.

    A scenario that fits no tensor-parallel size raises the :class:`UserError` of the
    last size tried, as :func:`serve_auto` does; bad targets raise one naming them."""
    targets = Targets.checked(ttft_s, tpot_s)
    check_choice("batching", batching, BATCHING)
    key = "batch" if batching == "static" else "concurrency"
    shape = check_request(model, isl=isl, osl=osl, batch=1, concurrency=None)[0]
    sizes = auto_tp_sizes(ep) if tp is None else (check_int("tp", tp),)
    dev = device if isinstance(device, (GpuServing, ChipServing)) else get_device(device, dtype)
    curve: list[GoodputPoint] = []
    meeting: list[ServingResult] = []
    fastest: list[ServingResult] = []          # concurrency 1 at each size that fits
    error: UserError | None = None
    for t in sizes:
        def at(n: int, t: int = t) -> ServingResult:
            return serve(dev, shape, isl=isl, osl=osl, tp=t, pp=pp, dtype=dtype, kv_dtype=kv_dtype,
                         batch=n if key == "batch" else None, concurrency=n if key == "concurrency" else None,
                         ep=ep, chunk_tokens=chunk_tokens, kv_block=kv_block, options=options)
        try:
            first = at(1)
        except UserError as exc:
            if exc.parameter not in NO_FIT:
                raise
            error = exc
            continue
        fastest.append(first)
        points = search_concurrency(at, first, targets)
        curve += [GoodputPoint(r.sequences, t, r.ttft_s, r.tpot_s, r.output_tokens_per_s, targets.met_by(r))
                  for r in points]
        meeting += [r for r in points if targets.met_by(r)]
    if not fastest:
        assert error is not None
        raise error
    best = max(meeting, key=lambda r: (r.output_tokens_per_s, -r.tp), default=None)
    if best is not None:
        return Goodput(dev.id, shape.name, isl, osl, batching, targets, best, best.output_tokens_per_s, None,
                       tuple(curve))
    closest = min(fastest, key=lambda r: excess(targets, r))
    sizes_tried = ", ".join(str(r.tp) for r in fastest)
    of = f" (the nearest point over tp {sizes_tried})" if len(fastest) > 1 else ""
    return Goodput(dev.id, shape.name, isl, osl, batching, targets, None, 0.0, targets.reason(closest, of=of),
                   tuple(curve), fastest=closest, missed=targets.missed(closest.ttft_s, closest.tpot_s))


def excess(targets: Targets, r: ServingResult) -> float:
    """How far ``r`` is from the targets: its worst latency over its target (<= 1: meets)."""
    ratios = [value / target for value, target in ((r.ttft_s, targets.ttft_s), (r.tpot_s, targets.tpot_s))
              if target is not None]
    return max(ratios, default=0.0)


def search_concurrency(at, first: ServingResult, targets: Targets) -> list[ServingResult]:
    """The points of one tensor-parallel size, by concurrency: ``first`` (concurrency 1),
    the powers of two up to the memory limit and the limit itself (the curve), and the
    bisection between the last of them that meets ``targets`` and the first that does
    not (latencies are non-decreasing in concurrency, so the points that meet are a
    prefix). ``at(n)`` is the serving result at concurrency ``n``."""
    top = first.max_batch
    done = {1: first}
    for n in sorted({*(2**k for k in range(1, top.bit_length())), top}):
        done[n] = at(n)
    grid = sorted(done)
    fails = [n for n in grid if not targets.met_by(done[n])]
    if fails and fails[0] > 1:
        lo, hi = max(n for n in grid if n < fails[0]), fails[0]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            done[mid] = at(mid)
            lo, hi = (mid, hi) if targets.met_by(done[mid]) else (lo, mid)
    return [done[n] for n in sorted(done)]


def plot_goodput(results: list[Goodput], ax=None):
    """Output tokens/s per device against TPOT (s) of each result's curve (its best
    tensor-parallel size's, or the fastest's), the TPOT target drawn as a vertical line
    and the chosen point marked; returns the matplotlib ``Figure``."""
    if not results or not all(isinstance(g, Goodput) for g in results):
        raise UserError("results: give a list of at least one Goodput", parameter="results")
    fig, ax = new_axes(ax, (6.4, 4.2))
    several = len({g.targets for g in results}) > 1          # then each label says its targets
    for g in results:
        r = g.chosen
        pts = sorted((p for p in g.curve if p.tp == r.tp), key=lambda p: p.concurrency)
        wanted = "".join(f", {k.split('_')[0].upper()} ≤ {v:g} s" for k, v in g.targets.to_dict().items()
                         if several and v is not None)
        line, = ax.plot([p.tpot_s for p in pts], [p.output_tokens_per_s for p in pts], marker=".",
                        label=f"{g.device} (tp {r.tp}{wanted})")
        if g.best is not None:
            ax.plot([r.tpot_s], [r.output_tokens_per_s], marker="*", markersize=14, color=line.get_color(),
                    linestyle="none")
        else:
            ax.plot([r.tpot_s], [r.output_tokens_per_s], marker="x", markersize=10, color=line.get_color(),
                    linestyle="none")
    targets = {g.targets.tpot_s for g in results if g.targets.tpot_s is not None}
    for t in sorted(targets):
        ax.axvline(t, color="0.3", linestyle="--", linewidth=1)
        ax.annotate(f"TPOT target {t:g} s", (t, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                    va="top", ha="right", fontsize=8)
    if all(p.tpot_s > 0 for g in results for p in g.curve):
        ax.set_xscale("log")
    ax.set_xlabel("time per output token (s)")
    ax.set_ylabel("output tokens/s per device")
    g0 = results[0]
    ax.set_title(f"{g0.model}, {g0.isl} + {g0.osl} tokens: goodput (★ chosen, × none meets)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["BATCHING", "Goodput", "GoodputPoint", "Targets", "excess", "goodput", "plot_goodput",
           "search_concurrency"]
