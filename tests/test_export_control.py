import pytest

from systolab.errors import UserError
from systolab.models.gpu.specs import get_gpu, load_gpus
from systolab.models.legal import export_control as ec

# Classes as published for each GPU (docs/reference.md): Oct-2023 data-center classes and Oct-2022.
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
    # A big die can carry more TPP outside 3A090: PD < 1.6 with TPP < 4800 (limit 1.6 x 2000).
    assert ec.max_tpp(die_area_mm2=2000) == pytest.approx(3200)
    with pytest.raises(UserError, match="allowed: unknown class"):
        ec.max_tpp(die_area_mm2=100, allowed=("3A090.z",))


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=0, cols=4, dtype="int8", clock_mhz=700, die_area_mm2=100), "rows: must be in 1.."),
    (dict(rows=4, cols=4, dtype="int8", clock_mhz=-1, die_area_mm2=100), "clock-mhz: must be > 0"),
    (dict(rows=4, cols=4, dtype="int8", clock_mhz=float("inf"), die_area_mm2=100), "clock-mhz: must be a finite"),
    (dict(rows=4, cols=4, dtype="int4", clock_mhz=700, die_area_mm2=100), "dtype: 'int4' has no TPP bit length"),
    (dict(rows=4, cols=4, dtype="int8", clock_mhz=700, die_area_mm2=0), "die-area-mm2: must be > 0"),
    (dict(rows=4, cols=4, dtype="int8", clock_mhz=700, die_area_mm2=100, io_bidir_GBps=-1), "io-bidir-gbps: must be >= 0"),
])
def test_bad_custom_chip_inputs(kwargs, message):
    with pytest.raises(UserError, match=message):
        ec.classify_custom(**kwargs)


def test_bad_rule_date():
    with pytest.raises(UserError, match="rule-date: expected YYYY-MM-DD"):
        ec.rule_set_for("17/11/2023")


def test_non_finite_tpp_is_refused():
    with pytest.raises(UserError, match="tpp: must be a finite number"):
        ec.classify(tpp=float("nan"), die_area_mm2=100)


def test_numpy_integers_are_accepted():
    import numpy as np

    r = ec.classify_custom(rows=np.int64(64), cols=np.int32(64), dtype="int8", clock_mhz=np.float64(700),
                           die_area_mm2=100, cores=np.int64(2))
    assert r.tpp == pytest.approx(2 * 2 * 64 * 64 * 700e6 / 1e12 * 8)


def test_unknown_inputs_leave_the_class_undetermined():
    # Oct-2022: TPP >= 4800 is controlled only with I/O >= 600 GB/s, so without the I/O
    # figure the class cannot be decided (it used to read "none").
    r = ec.classify(tpp=2_684_355, die_area_mm2=100, rule_date="2023-01-01")
    assert r.eccn == "undetermined" and r.missing == ("io-bidir-gbps",) and not r.determined
    assert ec.classify(tpp=2_684_355, die_area_mm2=100, io_bidir_GBps=100, rule_date="2023-01-01").eccn == "none"
    assert ec.classify(tpp=2_684_355, die_area_mm2=100, io_bidir_GBps=900, rule_date="2023-01-01").eccn == "3A090.a"
    # Oct-2023: a TPP of 3000 without a die area may be a.2, b.1 or none
    assert ec.classify(tpp=3000, die_area_mm2=None).missing == ("die-area-mm2",)
    # ... while a TPP of 5000 is a.1 whatever the area
    assert ec.classify(tpp=5000, die_area_mm2=None).eccn == "3A090.a.1"


def test_headroom_follows_every_input():
    # not designed for data centers: outside 3A090 up to TPP 4800 whatever the density
    assert ec.max_tpp(die_area_mm2=100, data_center=False) == pytest.approx(4800)
    assert ec.max_tpp(die_area_mm2=100) == pytest.approx(1600)         # a.2: TPP >= 1600 at PD 16
    # Oct-2022 with I/O under 600 GB/s: never controlled, so no limit (not a search bound)
    assert ec.max_tpp(die_area_mm2=100, io_bidir_GBps=400, rule_date="2023-01-01") is None
    assert ec.max_clock_mhz(rows=64, cols=64, dtype="int8", die_area_mm2=100, io_bidir_GBps=400,
                            rule_date="2023-01-01") is None
    with pytest.raises(UserError, match="io-bidir-gbps: needed"):
        ec.max_tpp(die_area_mm2=100, rule_date="2023-01-01")
    n = ec.largest_square_array(dtype="int8", clock_mhz=1000, die_area_mm2=100, data_center=False)
    assert ec.custom_chip_tpp(rows=n, cols=n, dtype="int8", clock_mhz=1000) < 4800
    assert ec.custom_chip_tpp(rows=n + 1, cols=n + 1, dtype="int8", clock_mhz=1000) >= 4800
