"""GPU power by phase (models/gpu/power.py), its fit to public measurements, and the
power and energy it gives serving (GPU and chip)."""
from __future__ import annotations

import numpy as np
import pytest

from systolab.errors import UserError
from systolab.models.chip.config import get_chip, list_chips
from systolab.models.gpu import gpu_idle_W, gpu_power_W, load_measurements, power_params
from systolab.models.gpu.power import MEASUREMENTS_FILE, PHASES, power_fit_data, step_activity
from systolab.models.serving import power_fit_report, serve
from systolab.models.silicon.energy import chip_idle_W, chip_power, chip_step_power_W
from systolab.models.specs import SpecError


@pytest.fixture(scope="module")
def report():
    return power_fit_report()


def test_the_fit_file_loads_and_every_measurement_has_a_cited_source():
    rows = load_measurements()
    sources = power_fit_data()["sources"]
    assert len(rows) >= 10 and len({r.source for r in rows}) >= 3
    assert {r.gpu_id for r in rows} >= {"a100-sxm4-80gb", "h100-sxm", "h200-sxm"}
    for r in rows:
        assert r.source in sources and r.reference.strip() and r.phase in PHASES
        assert 0 < r.measured_W <= r.tdp_W
    p = power_params()
    assert p.idle_range[0] <= p.idle_fraction <= p.idle_range[1] and p.idle_source


def test_held_out_error_is_computed_and_within_a_loose_bound(report):
    # measured when written: in sample median 7.3 %, held out (leave one source out) median 17.1 %, mean 17.5 %
    assert len(report.rows) == len(load_measurements())
    assert set(report.held_out_by_source) == {r.source for r in load_measurements()}
    assert report.in_sample_median_abs_error < 0.15
    assert report.held_out_median_abs_error < 0.25 and report.held_out_mean_abs_error < 0.30
    # held-out predictions differ from in-sample ones: each source really was left out
    assert any(abs(r["held_out_W"] - r["predicted_W"]) > 1 for r in report.rows)
    df = report.to_frame()
    assert {"measured_W", "predicted_W", "held_out_W", "error", "held_out_error"} <= set(df.columns)
    assert report.to_dict()["params"]["compute_coeff"] == report.params.compute_coeff


def test_the_stored_coefficients_are_the_fit(report):
    stored = power_params()
    assert stored.compute_coeff == pytest.approx(report.params.compute_coeff, rel=2e-3)
    assert stored.memory_coeff == pytest.approx(report.params.memory_coeff, rel=2e-3)


def test_power_rises_with_activity_and_stays_between_idle_and_tdp():
    idle = gpu_idle_W("h100-sxm")
    assert idle == pytest.approx(power_params().idle_fraction * 700)
    assert gpu_power_W("h100-sxm", compute_activity=0, memory_activity=0) == pytest.approx(idle)
    grid = np.linspace(0, 1, 5)
    watts = gpu_power_W("h100-sxm", compute_activity=grid, memory_activity=grid)
    assert isinstance(watts, np.ndarray) and np.all(np.diff(watts) >= 0)
    assert watts[0] == pytest.approx(idle) and watts[-1] == pytest.approx(700)


def test_a_power_cap_clips():
    full = gpu_power_W("h100-sxm", compute_activity=0.9, memory_activity=0.3)
    capped = gpu_power_W("h100-sxm", compute_activity=0.9, memory_activity=0.3, power_cap_W=400)
    assert full > 400 and capped == pytest.approx(400)
    low = gpu_power_W("h100-sxm", compute_activity=0.0, memory_activity=0.2, power_cap_W=400)
    assert low < 400 and low == pytest.approx(gpu_power_W("h100-sxm", compute_activity=0.0, memory_activity=0.2))


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"compute_activity": 1.5, "memory_activity": 0.1}, "compute_activity"),
    ({"compute_activity": 0.1, "memory_activity": -0.1}, "memory_activity"),
    ({"compute_activity": 0.1, "memory_activity": "half"}, "memory_activity"),
    ({"compute_activity": 0.1, "memory_activity": 0.1, "power_cap_W": 0}, "power_cap_W"),
    ({"compute_activity": 0.1, "memory_activity": 0.1, "power_cap_W": 10}, "power_cap_W"),
])
def test_bad_input_names_its_parameter(kwargs, parameter):
    with pytest.raises(UserError) as exc:
        gpu_power_W("h100-sxm", **kwargs)
    assert exc.value.parameter == parameter and str(exc.value).startswith(parameter)


def test_an_unknown_gpu_names_the_gpu():
    with pytest.raises(UserError) as exc:
        gpu_idle_W("h900")
    assert exc.value.parameter == "gpu"


def test_step_activity_weights_steps_by_their_time():
    uc, um = step_activity([1.0, 0.0], [0.0, 1.0], [1.0, 1.0], weights=[1, 3])
    assert uc == pytest.approx(0.25) and um == pytest.approx(0.75)
    assert step_activity([0.0], [0.0], [0.0]) == (0.0, 0.0)


def test_h200_decode_draws_well_under_tdp_and_prefill_near_it():
    r = serve("h200-sxm", "llama3-8b", isl=1024, osl=256, batch=1)
    assert r.decode_power_W < 0.6 * 700
    # within the range Ma et al. (arXiv 2605.11999) measured for H200 decode, 137-300 W
    check = power_fit_data()["checks"]["h200_decode_W"]
    assert check["low"] * 0.8 <= r.decode_power_W <= check["high"] * 1.2
    big = serve("h200-sxm", "llama3-8b", isl=2048, osl=64, batch=32)
    assert big.prefill_power_W > 0.9 * 700 and big.prefill_power_W > big.decode_power_W
    for x in (r, big):
        assert x.idle_power_W < x.decode_power_W < x.prefill_power_W <= 700
        assert x.idle_power_W < x.power_W < 700


def test_energy_per_token_is_below_tdp_times_time():
    r = serve("h200-sxm", "llama3-8b", isl=512, osl=256, batch=8)
    tdp_energy = 700 * r.devices * r.osl * r.sequences / r.output_tokens_per_s_group / (r.sequences * r.osl)
    assert r.energy_per_token_J < 0.8 * tdp_energy
    # energy = mean power x time per token, per device
    assert r.energy_per_token_J == pytest.approx(r.power_W / r.output_tokens_per_s, rel=1e-9)
    d = r.to_dict()
    assert {"power_W", "prefill_power_W", "decode_power_W", "idle_power_W"} <= set(d)


def test_chip_power_sits_between_idle_and_design_power():
    name = list_chips()[0]
    r = serve(name, "llama3-8b", isl=256, osl=32, batch=4)
    design = chip_power(get_chip(name)).tdp_W
    assert r.idle_power_W == pytest.approx(chip_idle_W(get_chip(name)))
    assert r.idle_power_W < r.decode_power_W and r.idle_power_W < r.prefill_power_W
    assert r.idle_power_W < r.power_W < design
    # the same kind of energy as the GPU's: below design power x time
    assert r.energy_per_token_J < design / r.output_tokens_per_s


def test_chip_step_power_adds_activity_energy_to_idle_and_names_bad_input():
    chip = get_chip(list_chips()[0])
    idle = chip_step_power_W(chip, seconds=1.0, macs_issued=0, dram_bytes=0)
    busy = chip_step_power_W(chip, seconds=1.0, macs_issued=1e12, dram_bytes=1e11, vector_ops=1e10)
    assert idle == pytest.approx(chip_idle_W(chip)) and busy > idle
    with pytest.raises(UserError) as exc:
        chip_step_power_W(chip, seconds=1.0, macs_issued=-1, dram_bytes=0)
    assert exc.value.parameter == "macs_issued"


def test_continuous_batching_and_a_single_output_token_get_phase_powers():
    one = serve("h100-sxm", "llama3-8b", isl=256, osl=1, batch=4)
    assert one.decode_power_W is None and one.power_W == pytest.approx(one.prefill_power_W)
    cont = serve("h100-sxm", "llama3-8b", isl=256, osl=64, concurrency=16)
    assert cont.idle_power_W < cont.decode_power_W < cont.prefill_power_W
    assert min(cont.decode_power_W, cont.prefill_power_W) <= cont.power_W <= cont.prefill_power_W


def test_a_measurement_without_a_known_source_is_refused(tmp_path):
    text = MEASUREMENTS_FILE.read_text().splitlines()
    header = next(line for line in text if line.startswith("id,"))
    row = next(line for line in text if line.startswith("splitwise-h100-token"))
    bad = tmp_path / "power.csv"
    bad.write_text("\n".join([header, row.replace(",SPLITWISE,", ",NOWHERE,")]) + "\n")
    with pytest.raises(SpecError, match="splitwise-h100-token"):
        load_measurements(str(bad))
    bad.write_text("\n".join([header, row.replace(",h100-sxm,", ",h900,")]) + "\n")
    with pytest.raises(SpecError, match="h900"):
        load_measurements(str(bad))
