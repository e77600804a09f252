import pytest

from systolab.errors import UserError
from systolab.models import export_control as ec
from systolab.models.gpu_specs import get_gpu, load_gpus

# Classes from ../shared/reference/gpus.csv (class_oct2023_datacenter and class_oct2022).
EXPECTED_2023 = {
    "v100-sxm2": "none", "a100-sxm4-80gb": "3A090.a.1", "a800-sxm4-80gb": "3A090.a.1", "h100-sxm": "3A090.a.1",
    "h100-pcie": "3A090.a.1", "h800-sxm": "3A090.a.1", "h20": "none", "h200-sxm": "3A090.a.1",
    "b200": "3A090.a.1", "l40s": "3A090.a.1", "l20": "none", "l4": "3A090.a.2",
}
EXPECTED_2022 = {"a100-sxm4-80gb": "3A090.a", "a800-sxm4-80gb": "none", "h800-sxm": "none", "h100-sxm": "3A090.a",
                 "l40s": "none", "h20": "none", "v100-sxm2": "none"}
REFERENCE_TPP = {"v100-sxm2": 2000, "a100-sxm4-80gb": 4992, "h100-sxm": 15831, "h100-pcie": 12104, "h20": 2368,
                 "b200": 36000, "l40s": 5864, "l20": 1914, "l4": 1940}


@pytest.mark.parametrize("gpu", list(load_gpus()))
def test_gpu_classes_under_the_current_rule(gpu):
    assert ec.classify_gpu(get_gpu(gpu)).eccn == EXPECTED_2023[gpu]
    assert ec.classify_gpu(get_gpu(gpu), rule_date="2023-11-17").eccn == EXPECTED_2023[gpu]


@pytest.mark.parametrize("gpu, eccn", EXPECTED_2022.items())
def test_gpu_classes_under_the_oct_2022_rule(gpu, eccn):
    assert ec.classify_gpu(get_gpu(gpu), rule_date="2023-06-01").eccn == eccn


@pytest.mark.parametrize("gpu, tpp", REFERENCE_TPP.items())
def test_tpp_reproduces_the_reference(gpu, tpp):
    assert ec.classify_gpu(get_gpu(gpu)).tpp == pytest.approx(tpp, abs=1)


def test_rule_example_and_tpu_v1():
    # The rule's own example: 600 TOPS at 8 bits is TPP 4800, i.e. TPP = dense TOPS x bits.
    assert ec.tpp_from_peaks({"int8": 600})[0] == 4800
    # TPU v1: 256 x 256 int8 MACs at 700 MHz = 91.75 dense TOPS -> TPP 734, class none.
    r = ec.classify_custom(rows=256, cols=256, dtype="int8", clock_mhz=700, die_area_mm2=331)
    assert r.tpp == pytest.approx(2 * 256 * 256 * 700e6 / 1e12 * 8) and r.eccn == "none"
    assert r.performance_density == pytest.approx(r.tpp / 331)


def test_decided_by_names_the_thresholds():
    r = ec.classify_gpu(get_gpu("l4"))
    assert any("pd 6.587 >= 5.92: yes" in d for d in r.decided_by)


def test_before_any_rule_and_non_data_center():
    assert ec.classify(tpp=20000, die_area_mm2=800, rule_date="2021-01-01").eccn == "none"
    assert ec.classify(tpp=2000, die_area_mm2=300, data_center=False).eccn == "none"
    assert ec.classify(tpp=2000, die_area_mm2=300, data_center=True).eccn == "3A090.a.2"
    assert ec.classify(tpp=5000, die_area_mm2=3000, data_center=False).eccn == "3A090.a.1"


@pytest.mark.parametrize("tpp, area, eccn", [
    (4800, 10000, "3A090.a.1"), (4799, 10000, "none"),          # a.1 edge; PD 0.48
    (1600, 1600 / 5.92, "3A090.a.2"), (1599, 100, "none"),
    (3000, 1000, "3A090.b.1"),                                  # PD 3.0 in [1.6, 5.92)
    (2000, 500, "3A090.b.2"),                                   # PD 4.0 in [3.2, 5.92), TPP < 2400
    (2000, 1000, "none"),                                       # PD 2.0: below b.2, TPP below b.1
])
def test_threshold_edges(tpp, area, eccn):
    assert ec.classify(tpp=tpp, die_area_mm2=area, rule_date="2024-01-01").eccn == eccn


def test_licence_policy_of_2026():
    r = ec.classify_gpu(get_gpu("h20"))
    assert r.rule_set == "jan2026" and r.licence_policy.startswith("China case-by-case licence review: applies")
    assert "does not apply" in ec.classify_gpu(get_gpu("b200")).licence_policy


def test_designing_around_the_rule():
    n = ec.largest_square_array(dtype="int8", clock_mhz=700, die_area_mm2=331)
    assert ec.classify_custom(rows=n, cols=n, dtype="int8", clock_mhz=700, die_area_mm2=331).eccn == "none"
    assert ec.classify_custom(rows=n + 1, cols=n + 1, dtype="int8", clock_mhz=700, die_area_mm2=331).eccn != "none"
    f = ec.max_clock_mhz(rows=256, cols=256, dtype="int8", die_area_mm2=331)
    assert ec.custom_chip_tpp(rows=256, cols=256, dtype="int8", clock_mhz=f) < 1600
    assert ec.custom_chip_tpp(rows=256, cols=256, dtype="int8", clock_mhz=f + 1) >= 1600
    # A big die can carry more TPP outside 3A090: PD < 1.6 with TPP < 4800.
    assert ec.max_tpp(die_area_mm2=2000) == pytest.approx(3199, abs=1)
    with pytest.raises(UserError, match="allowed: unknown class"):
        ec.max_tpp(die_area_mm2=100, allowed=("3A090.z",))


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=0, cols=4, dtype="int8", clock_mhz=700, die_area_mm2=100), "rows: must be a positive integer"),
    (dict(rows=4, cols=4, dtype="int8", clock_mhz=-1, die_area_mm2=100), "clock-mhz: must be a positive number"),
    (dict(rows=4, cols=4, dtype="int4", clock_mhz=700, die_area_mm2=100), "dtype: 'int4' has no TPP bit length"),
    (dict(rows=4, cols=4, dtype="int8", clock_mhz=700, die_area_mm2=0), "die-area-mm2: must be a positive number"),
])
def test_bad_custom_chip_inputs(kwargs, message):
    with pytest.raises(UserError, match=message):
        ec.classify_custom(**kwargs)


def test_bad_rule_date():
    with pytest.raises(UserError, match="rule-date: expected YYYY-MM-DD"):
        ec.rule_set_for("17/11/2023")
