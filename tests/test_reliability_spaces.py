"""Issue 33, class 4: a space file is validated with the same shared checks as the
command-line flags (``systolab.checks``): every field, every element of a list, types,
NaN and infinities, enumerations, ratios. A bad space is refused when it is loaded, with
``parameter == "space"`` and the field named, never a ``TypeError`` or ``OverflowError``
and never a space whose every point is silently infeasible or silently feasible.
"""
from __future__ import annotations

import copy
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from systolab import UserError
from systolab.models.explore.space import load_space

VALID = {
    "base": "sl-n4-os32",
    "parameters": {"cores": {"min": 32, "max": 512, "step": 32}, "clock_mhz": {"min": 600, "max": 1400, "step": 100},
                   "dram_stacks": [4, 5, 6]},
    "workloads": [{"name": "llama3-8b-decode", "batch": 1},
                  {"serve": "llama3-70b", "isl": 128, "osl": 32, "concurrency": 8, "tp": 8}],
    "objectives": [{"metric": "throughput", "workload": "llama3-8b-decode", "goal": "max"},
                   {"metric": "die_mm2", "goal": "min"}],
    "constraints": {"export_class": "none", "rule_date": "2026-01-15", "die_mm2_max": 858, "power_W_max": 700,
                    "beat": [{"gpu": "h20", "workload": "llama3-8b-decode", "ratio": 1.0}]},
    "budget_usd": 7e9,
    "gpus": ["h20"],
}


def _with(path: tuple, value) -> dict:
    space = copy.deepcopy(VALID)
    node = space
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return space


def _refused(space: dict, field: str | None = None) -> UserError:
    with pytest.raises(UserError) as exc:
        load_space(space)
    assert exc.value.parameter == "space", exc.value
    if field is not None:
        assert field in str(exc.value), exc.value
    return exc.value


def test_the_valid_space_loads():
    sp = load_space(VALID)
    assert sp.grid_size() == 16 * 9 * 3


# the issue's instances, each with the field its error must name
@pytest.mark.parametrize("path, value, field", [
    (("constraints", "rule_date"), 5, "constraints.rule_date"),
    (("constraints", "rule_date"), "yesterday", "constraints.rule_date"),
    (("constraints", "beat", 0, "ratio"), "lots", "constraints.beat[0].ratio"),
    (("constraints", "beat", 0, "ratio"), -1, "constraints.beat[0].ratio"),
    (("constraints", "beat", 0, "ratio"), 0, "constraints.beat[0].ratio"),
    (("constraints", "beat", 0, "ratio"), math.nan, "constraints.beat[0].ratio"),
    (("constraints", "beat"), {"gpu": "h20"}, "constraints.beat"),
    (("parameters", "cores"), {"min": 32, "max": math.inf, "step": 32}, "parameters.cores.max"),
    (("parameters", "cores"), {"min": -math.inf, "max": 64}, "parameters.cores.min"),
    (("parameters", "clock_mhz"), {"min": 600, "max": 1400, "step": math.nan}, "parameters.clock_mhz.step"),
    (("parameters", "cores"), [64, -5], "parameters.cores[0]"),            # sorted: -5 comes first
    (("parameters", "cores"), [64, 128, 0], "parameters.cores"),
    (("parameters", "dram_stacks"), [4, "six"], "parameters.dram_stacks"),
    (("parameters", "dram_stacks"), [4, {"x": 1}], "parameters.dram_stacks"),
    (("parameters", "cores"), {"min": 32, "max": 1e300, "step": 32}, "parameters.cores.max"),
    (("budget_usd",), math.inf, "budget_usd"),
    (("budget_usd",), math.nan, "budget_usd"),
    (("budget_usd",), "lots", "budget_usd"),
    (("budget_usd",), 0, "budget_usd"),
    (("constraints", "die_mm2_max"), math.nan, "constraints.die_mm2_max"),
    (("constraints", "die_mm2_max"), math.inf, "constraints.die_mm2_max"),
    (("constraints", "power_W_max"), -1, "constraints.power_W_max"),
    (("constraints", "export_class"), "3A999", "constraints.export_class"),
    (("constraints", "export_class"), 3, "constraints.export_class"),
    (("workloads", 1, "tp"), 3, "workloads[1].tp"),
    (("workloads", 1, "tp"), 0, "workloads[1].tp"),
])
def test_a_bad_field_is_refused_naming_it(path, value, field):
    _refused(_with(path, value), field)


@pytest.mark.parametrize("text, field", [
    ("constraints:\n  rule_date: 5\n", "rule_date"),
    ("constraints:\n  die_mm2_max: .nan\n", "die_mm2_max"),
    ("budget_usd: .inf\n", "budget_usd"),
    ("parameters:\n  cores: {min: 32, max: .inf, step: 32}\n", "parameters.cores.max"),
])
def test_yaml_spellings_of_the_issue_are_refused(text, field, tmp_path):
    space = copy.deepcopy(VALID)
    for key, value in yaml.safe_load(text).items():
        space[key] = {**space[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    err = _refused(str(path), field)
    assert str(path) in str(err)


# the class: any value put anywhere in the file is accepted or refused as a space error
ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                      st.lists(st.one_of(st.integers(-5, 600), st.floats(allow_nan=True), st.text(max_size=4)),
                               max_size=4),
                      st.dictionaries(st.sampled_from(["min", "max", "step", "x"]),
                                      st.one_of(st.integers(-5, 600), st.floats(allow_nan=True)), max_size=3))
FIELDS = [("base",), ("parameters", "cores"), ("parameters", "clock_mhz"), ("parameters", "dram_stacks"),
          ("workloads", 0, "batch"), ("workloads", 1, "isl"), ("workloads", 1, "tp"), ("workloads", 1, "concurrency"),
          ("objectives", 0, "goal"), ("objectives", 1, "metric"), ("constraints", "export_class"),
          ("constraints", "rule_date"), ("constraints", "die_mm2_max"), ("constraints", "power_W_max"),
          ("constraints", "beat", 0, "ratio"), ("constraints", "beat", 0, "gpu"), ("constraints", "buildable"),
          ("budget_usd",), ("gpus",), ("workloads", 0, "name"), ("workloads", 0, "seq_len"), ("workloads", 1, "serve"),
          ("workloads", 1, "name"), ("objectives", 0, "workload"), ("constraints", "buyer"),
          ("constraints", "physically_feasible"), ("constraints", "beat"), ("parameters",), ("workloads",),
          ("objectives",), ("constraints",), ("gpus", 0)]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=ANY_VALUE)
def test_any_value_in_any_field_is_a_space_error_or_a_valid_space(field, value):
    try:
        sp = load_space(_with(field, value))
    except UserError as exc:
        assert exc.parameter == "space" and str(exc).startswith("space: ")
        return
    # accepted: every number it kept is finite and every list element a valid value
    assert math.isfinite(sp.budget_usd) and sp.budget_usd > 0
    for p in sp.parameters.values():
        for v in p.get("values", [p.get("min"), p.get("max")]):
            assert not isinstance(v, float) or math.isfinite(v)
    for key in ("die_mm2_max", "power_W_max"):
        if key in sp.constraints:
            assert math.isfinite(sp.constraints[key]) and sp.constraints[key] > 0
    for b in sp.constraints.get("beat") or []:
        assert math.isfinite(b["ratio"]) and b["ratio"] > 0
