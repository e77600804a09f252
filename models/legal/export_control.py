"""US export control of advanced computing ICs (ECCN 3A090), from dated rule sets.

TPP = 2 x MacTOPS x bit length, i.e. dense TOPS (two operations per multiply-accumulate)
x the operation's bit length, taking the highest over supported precisions. Performance
density = TPP / applicable die area (mm2; HBM stacks excluded). The rule sets, their
thresholds and dates live in ``data/export_rules.yaml``; nothing here hard-codes them.
"""
from __future__ import annotations

import datetime as dt
import math
import operator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ...checks import check_chip, check_date, check_gpu_spec, check_int, check_iterable, check_nonnegative, check_positive
from ...errors import UserError
from ..chip.config import ChipConfig
from ..gpu.specs import GpuSpec
from ..silicon.area import chip_area
from ..specs import DATA_DIR, SpecError, load_yaml, need

RULES_FILE = DATA_DIR / "export_rules.yaml"
UNDETERMINED = "undetermined"
#: The parameter a user gives for each metric a rule may test.
METRIC_PARAMETER = {"tpp": "tpp", "pd": "die-area-mm2", "io_bidir_GBps": "io-bidir-gbps",
                    "dram_bw_GBps": "dram-bw-gbps"}
_OPS = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le}
METRICS = ("tpp", "pd", "io_bidir_GBps", "dram_bw_GBps")


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: float

    def holds(self, m: dict[str, float | None]) -> bool | None:
        v = m.get(self.metric)
        return None if v is None else _OPS[self.op](v, self.value)

    def describe(self, m: dict[str, float | None]) -> str:
        v = m.get(self.metric)
        shown = "unknown" if v is None else f"{v:.4g}"
        ok = self.holds(m)
        return f"{self.metric} {shown} {self.op} {self.value:g}: {'yes' if ok else ('unknown' if ok is None else 'no')}"


@dataclass(frozen=True)
class RuleSet:
    id: str
    effective: dt.date
    citation: str
    classes: tuple[tuple[str, tuple[Condition, ...]], ...]
    non_data_center_min_tpp: float
    licence_policy: tuple[str, tuple[Condition, ...]] | None
    notes: str


@dataclass(frozen=True)
class ExportClass:
    """Outcome of classifying one device under one rule set."""

    eccn: str                      # "3A090.a.1", ..., "3A090.a" (Oct 2022 rule), "none" or "undetermined"
    tpp: float
    performance_density: float | None
    rule_set: str
    citation: str
    decided_by: tuple[str, ...]    # the conditions that decided the class
    licence_policy: str | None = None
    notes: tuple[str, ...] = field(default=())
    missing: tuple[str, ...] = field(default=())   # inputs the rule needed but were not given

    @property
    def determined(self) -> bool:
        return self.eccn != UNDETERMINED

    def to_dict(self) -> dict:
        return {"eccn": self.eccn, "tpp": round(self.tpp, 1),
                "performance_density": None if self.performance_density is None else round(self.performance_density, 3),
                "rule_set": self.rule_set, "citation": self.citation, "decided_by": list(self.decided_by),
                "licence_policy": self.licence_policy, "notes": list(self.notes), "missing": list(self.missing)}

    def _repr_html_(self) -> str:
        pd = "unknown" if self.performance_density is None else f"{self.performance_density:.2f}"
        rows = "".join(f"<li>{d}</li>" for d in self.decided_by + self.notes)
        return (f"<b>ECCN {self.eccn}</b> under {self.rule_set} ({self.citation}): TPP {self.tpp:,.0f}, "
                f"performance density {pd}<ul>{rows}</ul>")


def parse_conditions(path: Path, where: str, raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError(path, where, "must be a non-empty list of [metric, op, value]")
    out = []
    for i, c in enumerate(raw):
        if not (isinstance(c, list) and len(c) == 3 and c[0] in METRICS and c[1] in _OPS
                and isinstance(c[2], (int, float))):
            raise SpecError(path, f"{where}[{i}]", f"must be [metric, op, number] with metric in {METRICS}, not {c!r}")
        out.append(Condition(c[0], c[1], float(c[2])))
    return tuple(out)


@cache
def load_rules(path: str = str(RULES_FILE)) -> tuple[dict[str, int], tuple[RuleSet, ...]]:
    """(bits per dtype, rule sets in date order) from the rules file."""
    p = Path(path)
    d = load_yaml(p)
    bits = dict(need(p, "", d, "tpp_bits", dict))
    raw_sets = need(p, "", d, "rule_sets", list)
    by_id: dict[str, RuleSet] = {}
    for i, r in enumerate(raw_sets):
        w = f"rule_sets[{i}]"
        rid = need(p, w, r, "id", str)
        eff = need(p, w, r, "effective", dt.date)
        base = by_id.get(r["inherits"]) if "inherits" in r else None
        if "inherits" in r and base is None:
            raise SpecError(p, f"{w}.inherits", f"unknown or later rule set {r['inherits']!r}")
        if base is not None:
            classes, ndc = base.classes, base.non_data_center_min_tpp
        else:
            classes = tuple((need(p, f"{w}.classes[{j}]", c, "eccn", str),
                             parse_conditions(p, f"{w}.classes[{j}].when", c.get("when")))
                            for j, c in enumerate(need(p, w, r, "classes", list)))
            ndc = float(need(p, w, r, "non_data_center_min_tpp", (int, float)))
        lp = r.get("licence_policy")
        policy = (need(p, f"{w}.licence_policy", lp, "name", str),
                  parse_conditions(p, f"{w}.licence_policy.when", lp.get("when"))) if lp else None
        by_id[rid] = RuleSet(rid, eff, need(p, w, r, "citation", str), classes, ndc, policy,
                             str(r.get("notes", "")).strip())
    sets = tuple(sorted(by_id.values(), key=lambda s: s.effective))
    return bits, sets


def rule_set_for(date: str | dt.date | None = None) -> RuleSet | None:
    """The rule set in force on ``date`` (default: the latest); None before the first."""
    _, sets = load_rules()
    if date is None:
        return sets[-1]
    date = check_date("rule-date", date)
    in_force = [s for s in sets if s.effective <= date]
    return in_force[-1] if in_force else None


def tpp_from_peaks(peaks_tflops: dict[str, float]) -> tuple[float, str]:
    """(TPP, dtype that sets it) from dense peaks in TFLOPS/TOPS per dtype."""
    bits, _ = load_rules()
    best = max(((v * bits[d], d) for d, v in peaks_tflops.items() if d in bits), default=(0.0, ""))
    return best


def custom_chip_tpp(*, rows: int, cols: int, dtype: str, clock_mhz: float, cores: int = 1) -> float:
    """TPP of ``cores`` arrays of rows x cols MACs of ``dtype`` at ``clock_mhz``."""
    bits, _ = load_rules()
    rows, cols, cores = check_int("rows", rows), check_int("cols", cols), check_int("cores", cores)
    clock_mhz = check_positive("clock-mhz", clock_mhz)
    if dtype not in bits:
        raise UserError(f"dtype: {dtype!r} has no TPP bit length; choose one of {', '.join(bits)}")
    tops = 2 * rows * cols * cores * clock_mhz * 1e6 / 1e12
    return tops * bits[dtype]


def _optional_nonnegative(name: str, v: float | None) -> float | None:
    return None if v is None else check_nonnegative(name, v)


def classify(*, tpp: float, die_area_mm2: float | None, data_center: bool = True,
             io_bidir_GBps: float | None = None, dram_bw_GBps: float | None = None,
             rule_date: str | dt.date | None = None) -> ExportClass:
    """ECCN of a device with this TPP, die area and I/O under the rule set of ``rule_date``.

    Classes are tried in the rule's order. When an input the rule tests is unknown (None)
    and it could decide the class, the class is ``"undetermined"`` and
    :attr:`ExportClass.missing` names the inputs to give; the result never defaults to
    ``"none"`` for want of data."""
    tpp = check_nonnegative("tpp", tpp)
    if die_area_mm2 is not None:
        die_area_mm2 = check_positive("die-area-mm2", die_area_mm2)
    io_bidir_GBps = _optional_nonnegative("io-bidir-gbps", io_bidir_GBps)
    dram_bw_GBps = _optional_nonnegative("dram-bw-gbps", dram_bw_GBps)
    if not isinstance(data_center, bool):
        raise UserError(f"data_center: must be True or False, not {data_center!r}")
    rules = rule_set_for(rule_date)
    pd = tpp / die_area_mm2 if die_area_mm2 else None
    metrics = {"tpp": tpp, "pd": pd, "io_bidir_GBps": io_bidir_GBps, "dram_bw_GBps": dram_bw_GBps}
    notes: list[str] = []
    if rules is None:
        return ExportClass("none", tpp, pd, "none", "no 3A090 rule in force on that date",
                           ("no rule in force",), None, ())
    if pd is None:
        notes.append("die area unknown: performance-density tests cannot be evaluated")
    if not data_center and tpp < rules.non_data_center_min_tpp:
        return ExportClass("none", tpp, pd, rules.id, rules.citation,
                           (f"not designed or marketed for data centers and tpp {tpp:.4g} < {rules.non_data_center_min_tpp:g}",),
                           None, tuple(notes))
    eccn = "none"
    decided: list[str] = []
    missing: list[str] = []
    for name, conds in rules.classes:
        results = [c.holds(metrics) for c in conds]
        if any(r is False for r in results):
            continue
        if all(r is True for r in results) and not missing:
            eccn, decided = name, [c.describe(metrics) for c in conds]
            break
        # this class (or an earlier one) cannot be ruled out without the unknown inputs
        unknown = [c.metric for c, r in zip(conds, results) if r is None]
        missing += [m for m in unknown if m not in missing]
        notes.append(f"{name} could not be ruled out: " + "; ".join(c.describe(metrics) for c in conds))
    if missing:
        eccn = UNDETERMINED
        decided = [f"needs {', '.join(METRIC_PARAMETER[m] for m in missing)} to decide"]
    elif eccn == "none":
        decided = [f"{name}: " + "; ".join(c.describe(metrics) for c in conds if c.holds(metrics) is not True)
                   for name, conds in rules.classes]
    policy = None
    if rules.licence_policy is not None:
        pname, pconds = rules.licence_policy
        res = [c.holds(metrics) for c in pconds]
        if all(r is True for r in res):
            policy = f"{pname}: applies (" + "; ".join(c.describe(metrics) for c in pconds) + ")"
        elif any(r is False for r in res):
            policy = f"{pname}: does not apply (" + "; ".join(c.describe(metrics) for c in pconds) + ")"
        else:
            policy = f"{pname}: unknown (" + "; ".join(c.describe(metrics) for c in pconds) + ")"
    return ExportClass(eccn, tpp, pd, rules.id, rules.citation, tuple(decided), policy, tuple(notes),
                       tuple(METRIC_PARAMETER[m] for m in missing))


def classify_gpu(gpu: GpuSpec, *, rule_date: str | dt.date | None = None) -> ExportClass:
    """ECCN of the GPU ``gpu`` (a :class:`~systolab.models.gpu.specs.GpuSpec`) under the rule
    set of ``rule_date`` (default: the latest): its TPP from its dense peaks, its die area
    (mm²), I/O and DRAM bandwidth (GB/s) from the GPU file; weak figures the class rests on
    are added to its notes."""
    check_gpu_spec("gpu", gpu)
    tpp, _ = tpp_from_peaks(gpu.peak_dense_tflops)
    out = classify(tpp=tpp, die_area_mm2=gpu.die_area_mm2, data_center=gpu.data_center,
                   io_bidir_GBps=gpu.io_bidir_GBps, dram_bw_GBps=gpu.mem_bw_GBps, rule_date=rule_date)
    flags = tuple(gpu.flags("die_area_mm2", "peak_dense_tflops", "nvlink_bidir_GBps"))
    return ExportClass(out.eccn, out.tpp, out.performance_density, out.rule_set, out.citation, out.decided_by,
                       out.licence_policy, out.notes + flags)


def classify_custom(*, rows: int, cols: int, dtype: str, clock_mhz: float, die_area_mm2: float, cores: int = 1,
                    data_center: bool = True, io_bidir_GBps: float | None = None,
                    dram_bw_GBps: float | None = None, rule_date: str | dt.date | None = None) -> ExportClass:
    """ECCN of a custom chip given by its parts rather than a chip file: ``cores`` arrays of
    ``rows`` × ``cols`` MACs in ``dtype`` at ``clock_mhz`` MHz (their TPP), a die of
    ``die_area_mm2`` mm², and I/O and DRAM bandwidth in GB/s (None: unknown, so a rule that
    tests it leaves the class undetermined), under the rule set of ``rule_date``."""
    tpp = custom_chip_tpp(rows=rows, cols=cols, dtype=dtype, clock_mhz=clock_mhz, cores=cores)
    return classify(tpp=tpp, die_area_mm2=die_area_mm2, data_center=data_center, io_bidir_GBps=io_bidir_GBps,
                    dram_bw_GBps=dram_bw_GBps, rule_date=rule_date)


def classify_chip(chip: ChipConfig, *, rule_date: str | dt.date | None = None) -> ExportClass:
    """ECCN of the custom ``chip`` under the rule set of ``rule_date`` (default: the latest):
    its cores' TPP, its die area (:func:`~systolab.models.silicon.area.chip_area`), I/O and
    DRAM bandwidth."""
    check_chip("chip", chip)
    return classify_custom(rows=chip.core.rows, cols=chip.core.cols, dtype=chip.core.dtype, clock_mhz=chip.clock_mhz,
                           die_area_mm2=chip_area(chip).die_mm2, cores=chip.cores, io_bidir_GBps=chip.io_bidir_GBps,
                           dram_bw_GBps=chip.dram.GBps, rule_date=rule_date)


# -- designing around the rule ---------------------------------------------------------------
ALLOWED_DEFAULT = ("none",)


def check_allowed(allowed: tuple[str, ...]) -> None:
    """Raise :class:`UserError` unless ``allowed`` names classes of the rule sets (or ``none``)."""
    check_iterable("allowed", allowed, "a tuple of ECCN classes")
    _, sets = load_rules()
    known = {"none"} | {name for s in sets for name, _ in s.classes}
    if isinstance(allowed, str) or not allowed:
        raise UserError("allowed: name at least one class, e.g. ('none',)")
    bad = [a for a in allowed if a not in known]
    if bad:
        raise UserError(f"allowed: unknown class {bad[0]!r}; known: {', '.join(sorted(known))}")


def max_tpp(*, die_area_mm2: float, data_center: bool = True, io_bidir_GBps: float | None = None,
              dram_bw_GBps: float | None = None, allowed: tuple[str, ...] = ALLOWED_DEFAULT,
              rule_date: str | dt.date | None = None) -> float | None:
    """The TPP a device with these other figures must stay *below* for its class to be
    in ``allowed`` at every TPP from 0 up; None when no TPP leaves ``allowed`` (no limit
    under this rule set, e.g. the Oct-2022 rule with I/O under 600 GB/s), 0.0 when even
    TPP 0 is outside.

    The class is piecewise constant in TPP, changing only where a condition's threshold
    is crossed (a TPP threshold, or a density threshold times the die area), so the
    thresholds are the only candidates: exact, with no search limit. Inputs the rule
    needs but that are missing raise :class:`UserError` naming them."""
    check_allowed(allowed)
    die_area_mm2 = check_positive("die-area-mm2", die_area_mm2)
    rules = rule_set_for(rule_date)
    if rules is None:
        return None
    points = {0.0, rules.non_data_center_min_tpp}
    for _, conds in rules.classes:
        for c in conds:
            if c.metric == "tpp":
                points.add(c.value)
            elif c.metric == "pd":
                points.add(c.value * die_area_mm2)
    ordered = sorted(points)

    def cls(t: float) -> ExportClass:
        out = classify(tpp=t, die_area_mm2=die_area_mm2, data_center=data_center, io_bidir_GBps=io_bidir_GBps,
                       dram_bw_GBps=dram_bw_GBps, rule_date=rule_date)
        if not out.determined:
            raise UserError(f"{out.missing[0]}: needed to find the TPP limit under {out.rule_set}",
                            parameter=out.missing[0])
        return out

    for i, t in enumerate(ordered):
        after = (t + ordered[i + 1]) / 2 if i + 1 < len(ordered) else 2 * t + 1
        if cls(t).eccn not in allowed or cls(after).eccn not in allowed:
            return t
    return None


def _largest_integer(per_unit_tpp: float, limit: float | None, classify_at) -> int | None:
    """Largest integer x >= 0 with x * per_unit_tpp below ``limit`` (None: no limit),
    checked with ``classify_at`` at the answer."""
    if limit is None:
        return None
    x = max(0, math.floor(limit / per_unit_tpp))
    while x > 0 and not classify_at(x):
        x -= 1
    return x


def largest_square_array(*, dtype: str, clock_mhz: float, die_area_mm2: float, cores: int = 1,
                         data_center: bool = True, io_bidir_GBps: float | None = None,
                         dram_bw_GBps: float | None = None, allowed: tuple[str, ...] = ALLOWED_DEFAULT,
                         rule_date: str | None = None) -> int | None:
    """Largest N such that ``cores`` N x N arrays at ``clock_mhz`` (die area fixed) stay in
    ``allowed``; None when no size leaves it, 0 when none stays in it."""
    per_pe = custom_chip_tpp(rows=1, cols=1, dtype=dtype, clock_mhz=clock_mhz, cores=cores)
    kw: dict[str, Any] = dict(die_area_mm2=die_area_mm2, data_center=data_center, io_bidir_GBps=io_bidir_GBps,
              dram_bw_GBps=dram_bw_GBps, rule_date=rule_date)
    limit = max_tpp(allowed=allowed, **kw)
    if limit is None:
        return None
    n = max(0, math.isqrt(max(0, math.floor(limit / per_pe))))
    while n > 0 and classify(tpp=per_pe * n * n, **kw).eccn not in allowed:
        n -= 1
    return n


def max_clock_mhz(*, rows: int, cols: int, dtype: str, die_area_mm2: float, cores: int = 1,
                  data_center: bool = True, io_bidir_GBps: float | None = None, dram_bw_GBps: float | None = None,
                  allowed: tuple[str, ...] = ALLOWED_DEFAULT, rule_date: str | None = None) -> int | None:
    """Highest whole-MHz clock at which the design stays in ``allowed``; None when no clock
    leaves it, 0 when none stays in it."""
    per_mhz = custom_chip_tpp(rows=rows, cols=cols, dtype=dtype, clock_mhz=1, cores=cores)
    kw: dict[str, Any] = dict(die_area_mm2=die_area_mm2, data_center=data_center, io_bidir_GBps=io_bidir_GBps,
              dram_bw_GBps=dram_bw_GBps, rule_date=rule_date)
    return _largest_integer(per_mhz, max_tpp(allowed=allowed, **kw),
                            lambda f: classify(tpp=per_mhz * f, **kw).eccn in allowed)
