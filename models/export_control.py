"""US export control of advanced computing ICs (ECCN 3A090), from dated rule sets.

TPP = 2 x MacTOPS x bit length, i.e. dense TOPS (two operations per multiply-accumulate)
x the operation's bit length, taking the highest over supported precisions. Performance
density = TPP / applicable die area (mm2; HBM stacks excluded). The rule sets, their
thresholds and dates live in ``data/export_rules.yaml``; nothing here hard-codes them.
"""
from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import UserError
from .gpu_specs import GpuSpec
from .specs import DATA_DIR, SpecError, load_yaml, need

RULES_FILE = DATA_DIR / "export_rules.yaml"
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

    eccn: str                      # "3A090.a.1", ..., "3A090.a" (Oct 2022 rule) or "none"
    tpp: float
    performance_density: float | None
    rule_set: str
    citation: str
    decided_by: tuple[str, ...]    # the conditions that decided the class
    licence_policy: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"eccn": self.eccn, "tpp": round(self.tpp, 1),
                "performance_density": None if self.performance_density is None else round(self.performance_density, 3),
                "rule_set": self.rule_set, "citation": self.citation, "decided_by": list(self.decided_by),
                "licence_policy": self.licence_policy, "notes": list(self.notes)}


def _conditions(path: Path, where: str, raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError(path, where, "must be a non-empty list of [metric, op, value]")
    out = []
    for i, c in enumerate(raw):
        if not (isinstance(c, list) and len(c) == 3 and c[0] in METRICS and c[1] in _OPS
                and isinstance(c[2], (int, float))):
            raise SpecError(path, f"{where}[{i}]", f"must be [metric, op, number] with metric in {METRICS}, not {c!r}")
        out.append(Condition(c[0], c[1], float(c[2])))
    return tuple(out)


@lru_cache(maxsize=None)
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
                             _conditions(p, f"{w}.classes[{j}].when", c.get("when")))
                            for j, c in enumerate(need(p, w, r, "classes", list)))
            ndc = float(need(p, w, r, "non_data_center_min_tpp", (int, float)))
        lp = r.get("licence_policy")
        policy = (need(p, f"{w}.licence_policy", lp, "name", str),
                  _conditions(p, f"{w}.licence_policy.when", lp.get("when"))) if lp else None
        by_id[rid] = RuleSet(rid, eff, need(p, w, r, "citation", str), classes, ndc, policy,
                             str(r.get("notes", "")).strip())
    sets = tuple(sorted(by_id.values(), key=lambda s: s.effective))
    return bits, sets


def rule_set_for(date: str | dt.date | None = None) -> RuleSet | None:
    """The rule set in force on ``date`` (default: the latest); None before the first."""
    _, sets = load_rules()
    if date is None:
        return sets[-1]
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError:
            raise UserError(f"rule-date: expected YYYY-MM-DD, not {date!r}") from None
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
    for name, v in (("rows", rows), ("cols", cols), ("cores", cores)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"{name}: must be a positive integer, not {v!r}")
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) or not clock_mhz > 0:
        raise UserError(f"clock-mhz: must be a positive number, not {clock_mhz!r}")
    if dtype not in bits:
        raise UserError(f"dtype: {dtype!r} has no TPP bit length; choose one of {', '.join(bits)}")
    tops = 2 * rows * cols * cores * clock_mhz * 1e6 / 1e12
    return tops * bits[dtype]


def classify(*, tpp: float, die_area_mm2: float | None, data_center: bool = True,
             io_bidir_GBps: float | None = None, dram_bw_GBps: float | None = None,
             rule_date: str | dt.date | None = None) -> ExportClass:
    """ECCN of a device with this TPP, die area and I/O under the rule set of ``rule_date``."""
    if isinstance(tpp, bool) or not isinstance(tpp, (int, float)) or tpp < 0:
        raise UserError(f"tpp: must be a non-negative number, not {tpp!r}")
    if die_area_mm2 is not None and (isinstance(die_area_mm2, bool) or not isinstance(die_area_mm2, (int, float))
                                     or not die_area_mm2 > 0):
        raise UserError(f"die-area-mm2: must be a positive number, not {die_area_mm2!r}")
    rules = rule_set_for(rule_date)
    pd = tpp / die_area_mm2 if die_area_mm2 else None
    metrics = {"tpp": tpp, "pd": pd, "io_bidir_GBps": io_bidir_GBps, "dram_bw_GBps": dram_bw_GBps}
    notes = []
    if rules is None:
        return ExportClass("none", tpp, pd, "none", "no 3A090 rule in force on that date",
                           ("no rule in force",), None, ())
    if pd is None:
        notes.append("die area unknown: performance-density tests cannot be evaluated")
    if not data_center and tpp < rules.non_data_center_min_tpp:
        return ExportClass("none", tpp, pd, rules.id, rules.citation,
                           (f"not designed or marketed for data centers and tpp {tpp:.4g} < {rules.non_data_center_min_tpp:g}",),
                           None, tuple(notes))
    eccn, decided = "none", []
    for name, conds in rules.classes:
        results = [c.holds(metrics) for c in conds]
        if all(r is True for r in results):
            eccn, decided = name, [c.describe(metrics) for c in conds]
            break
        if any(r is None for r in results) and not any(r is False for r in results):
            notes.append(f"{name} could not be ruled out: " + "; ".join(c.describe(metrics) for c in conds))
    if eccn == "none":
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
    return ExportClass(eccn, tpp, pd, rules.id, rules.citation, tuple(decided), policy, tuple(notes))


def classify_gpu(gpu: GpuSpec, *, rule_date: str | dt.date | None = None) -> ExportClass:
    tpp, _ = tpp_from_peaks(gpu.peak_dense_tflops)
    out = classify(tpp=tpp, die_area_mm2=gpu.die_area_mm2, data_center=gpu.data_center,
                   io_bidir_GBps=gpu.io_bidir_GBps, dram_bw_GBps=gpu.mem_bw_GBps, rule_date=rule_date)
    flags = tuple(gpu.flags("die_area_mm2", "peak_dense_tflops", "nvlink_bidir_GBps"))
    return ExportClass(out.eccn, out.tpp, out.performance_density, out.rule_set, out.citation, out.decided_by,
                       out.licence_policy, out.notes + flags)


def classify_custom(*, rows: int, cols: int, dtype: str, clock_mhz: float, die_area_mm2: float, cores: int = 1,
                    data_center: bool = True, io_bidir_GBps: float | None = None,
                    dram_bw_GBps: float | None = None, rule_date: str | dt.date | None = None) -> ExportClass:
    tpp = custom_chip_tpp(rows=rows, cols=cols, dtype=dtype, clock_mhz=clock_mhz, cores=cores)
    return classify(tpp=tpp, die_area_mm2=die_area_mm2, data_center=data_center, io_bidir_GBps=io_bidir_GBps,
                    dram_bw_GBps=dram_bw_GBps, rule_date=rule_date)


# -- designing around the rule ---------------------------------------------------------------
ALLOWED_DEFAULT = ("none",)


def _check_allowed(allowed: tuple[str, ...]) -> None:
    _, sets = load_rules()
    known = {"none"} | {name for s in sets for name, _ in s.classes}
    bad = [a for a in allowed if a not in known]
    if bad:
        raise UserError(f"allowed: unknown class {bad[0]!r}; known: {', '.join(sorted(known))}")


def _last_allowed(candidates, classify_one, allowed: tuple[str, ...]):
    """The last candidate before the first whose class is not in ``allowed`` (0 if the first is not)."""
    _check_allowed(allowed)
    best = 0
    for value in candidates:
        if classify_one(value).eccn not in allowed:
            break
        best = value
    return best


def largest_square_array(*, dtype: str, clock_mhz: float, die_area_mm2: float, cores: int = 1,
                         allowed: tuple[str, ...] = ALLOWED_DEFAULT, rule_date: str | None = None,
                         limit: int = 4096) -> int:
    """Largest N such that every N' x N' array (N' <= N) stays in ``allowed`` classes; 0 if none."""
    return _last_allowed(range(1, limit + 1), lambda n: classify_custom(
        rows=n, cols=n, dtype=dtype, clock_mhz=clock_mhz, die_area_mm2=die_area_mm2, cores=cores,
        rule_date=rule_date), allowed)


def max_clock_mhz(*, rows: int, cols: int, dtype: str, die_area_mm2: float, cores: int = 1,
                  allowed: tuple[str, ...] = ALLOWED_DEFAULT, rule_date: str | None = None,
                  limit_mhz: int = 10000) -> int:
    """Highest whole-MHz clock below which the design stays in ``allowed`` classes; 0 if none."""
    return _last_allowed(range(1, limit_mhz + 1), lambda f: classify_custom(
        rows=rows, cols=cols, dtype=dtype, clock_mhz=f, die_area_mm2=die_area_mm2, cores=cores,
        rule_date=rule_date), allowed)


def max_tpp(*, die_area_mm2: float, allowed: tuple[str, ...] = ALLOWED_DEFAULT, rule_date: str | None = None,
            step: float = 1.0, limit: float = 100000.0) -> float:
    """Largest TPP (to ``step``) a die of this area can have and stay in ``allowed`` classes."""
    steps = (step * i for i in range(1, int(limit / step) + 1))
    return float(_last_allowed(steps, lambda t: classify(tpp=t, die_area_mm2=die_area_mm2, rule_date=rule_date),
                               allowed))
