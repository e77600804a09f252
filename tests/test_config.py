import json

import pytest

from systolab import AcceleratorConfig, ConfigError
from systolab.dtypes import DTYPES, get_dtype


def test_defaults_are_valid_and_named():
    c = AcceleratorConfig()
    assert (c.rows, c.cols, c.dataflow, c.dtype, c.acc_bits, c.overflow) == (4, 4, "os", "int8", 32, "wrap")
    assert c.name == "os_4x4_int8_acc32_wrap"
    assert c.macs_per_cycle == 16


@pytest.mark.parametrize("field, value, fragment", [
    ("rows", 0, "rows: must be in 1..64, not 0"),
    ("rows", 65, "rows: must be in 1..64, not 65"),
    ("cols", -3, "cols: must be in 1..64"),
    ("rows", 2.5, "rows: must be an integer"),
    ("rows", True, "rows: must be an integer"),
    ("rows", "4", "rows: must be an integer"),
    ("dataflow", "is", "dataflow: must be one of os, ws, not 'is'"),
    ("dtype", "int4", "dtype: unknown dtype 'int4'"),
    ("dtype", "tf32", "dtype: 'tf32' has no hardware MAC yet"),
    ("subnormals", "ftz", "subnormals: must be one of keep, flush, not 'ftz'"),
    ("acc_bits", 15, "acc_bits: must be in 16..64, not 15"),
    ("acc_bits", 65, "acc_bits: must be in 16..64"),
    ("overflow", "clamp", "overflow: must be one of wrap, saturate, not 'clamp'"),
])
def test_bad_values_name_the_field(field, value, fragment):
    with pytest.raises(ConfigError) as info:
        AcceleratorConfig(**{field: value})
    assert info.value.field == field
    assert fragment in str(info.value)


@pytest.mark.parametrize("changes, field, fragment", [
    ({"dtype": "bf16", "acc_bits": 16}, "acc_bits", "bf16 accumulates in fp32: must be 32, not 16"),
    ({"dtype": "fp8_e4m3", "overflow": "saturate"}, "overflow", "overflows to ±Inf"),
    ({"dtype": "int8", "subnormals": "flush"}, "subnormals", "applies to floating-point formats only"),
])
def test_float_fields_are_checked(changes, field, fragment):
    with pytest.raises(ConfigError) as info:
        AcceleratorConfig(**changes)
    assert info.value.field == field and fragment in str(info.value)


def test_float_configs_are_named_and_keep_integer_ids():
    c = AcceleratorConfig(dtype="fp8_e5m2", subnormals="flush", dataflow="ws")
    assert c.is_float and not c.acc_signed and c.name == "ws_4x4_fp8_e5m2_fp32acc_ftz"
    assert c.config_hash != c.replace(subnormals="keep").config_hash
    # a field added later is left out of the canonical JSON at its default
    assert "subnormals" not in AcceleratorConfig().canonical_json()


def test_int16_needs_32_bit_accumulator():
    with pytest.raises(ConfigError, match="acc_bits: must be in 32..64, not 16"):
        AcceleratorConfig(dtype="int16", acc_bits=16)


def test_frozen():
    c = AcceleratorConfig()
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        c.rows = 8  # type: ignore[misc]


def test_hash_is_content_based_and_stable():
    a = AcceleratorConfig(rows=3, cols=5, dataflow="ws")
    b = AcceleratorConfig.from_dict({"dataflow": "ws", "cols": 5, "rows": 3})
    assert a.config_hash == b.config_hash
    assert a.config_hash != a.replace(rows=4).config_hash
    assert json.loads(a.canonical_json()) == {k: v for k, v in a.to_dict().items() if k != "subnormals"}
    # Pinned: a change here silently invalidates every cache and build folder.
    assert AcceleratorConfig().config_hash == "26208debad8b0d3f"


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigError) as info:
        AcceleratorConfig.from_dict({"rows": 4, "colums": 4})
    assert info.value.field == "colums"


def test_load_toml_and_yaml(tmp_path):
    t = tmp_path / "d.toml"
    t.write_text('[accelerator]\nrows = 8\ncols = 2\ndataflow = "ws"\ndtype = "uint8"\n')
    y = tmp_path / "d.yaml"
    y.write_text("rows: 8\ncols: 2\ndataflow: ws\ndtype: uint8\n")
    assert AcceleratorConfig.from_file(t) == AcceleratorConfig.from_file(y) == AcceleratorConfig(
        rows=8, cols=2, dataflow="ws", dtype="uint8")


def test_file_errors_name_file_and_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("rows = 0\n")
    with pytest.raises(ConfigError, match=r"rows: must be in 1..64, not 0 \(in .*bad.toml\)"):
        AcceleratorConfig.from_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("rows = = 3\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        AcceleratorConfig.from_file(broken)
    with pytest.raises(ConfigError, match="no such file"):
        AcceleratorConfig.from_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="use a .toml"):
        AcceleratorConfig.from_file(bad.with_suffix(".txt").write_text("x") and bad.with_suffix(".txt"))


def test_dtype_table():
    assert get_dtype("int8").min_int == -128 and get_dtype("int8").max_int == 127
    assert get_dtype("uint8").min_int == 0 and get_dtype("uint8").max_int == 255
    assert get_dtype("int16").product_bits == 32
    assert set(DTYPES) >= {"int8", "uint8", "int16", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp32", "tf32"}
    with pytest.raises(ConfigError):
        get_dtype("int3")


def test_element_bytes_come_from_the_dtype_alone():
    """One way to size an element: DType.bytes (TF32 is stored as 4 bytes; int32 is the
    integer formats' output)."""
    from systolab.dtypes import DTYPES, OUTPUT_DTYPE

    # the 4-bit formats occupy a byte unpacked; packed, with their scales, DType.storage_bytes
    assert {n: d.bytes for n, d in DTYPES.items()} == {"int8": 1, "uint8": 1, "int16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1,
                                                         "fp16": 2, "bf16": 2, "tf32": 4, "fp32": 4, "nvfp4": 1,
                                                         "mxfp4": 1, "w4a16": 1, "w8a16": 1, "w8a16_fp8": 1}
    assert {n: d.bytes for n, d in OUTPUT_DTYPE.items()} == {"int8": 4, "uint8": 4, "int16": 4, "fp8_e4m3": 2,
                                                               "fp8_e5m2": 2, "fp16": 2, "bf16": 2, "tf32": 4, "fp32": 4,
                                                               "nvfp4": 2, "mxfp4": 2, "w4a16": 2, "w8a16": 2,
                                                               "w8a16_fp8": 2}
    assert set(OUTPUT_DTYPE) == set(DTYPES)


def test_a_date_is_checked_once_for_every_model():
    """Scenario dates, rule dates and the memory rule's date go through one check."""
    import datetime as dt

    from systolab.checks import check_date
    from systolab.errors import UserError
    from systolab.models.legal.export_control import rule_set_for
    from systolab.models.silicon.memory import memory_class

    assert check_date("date", "2025-01-02") == dt.date(2025, 1, 2) == check_date("date", dt.date(2025, 1, 2))
    for bad in ("2025-13-01", "soon", 20250102, None):
        with pytest.raises(UserError) as e:
            check_date("date", bad)
        assert e.value.parameter == "date"
    with pytest.raises(UserError) as e:
        memory_class("HBM3", "next year")
    assert e.value.parameter == "date"
    with pytest.raises(UserError) as e:
        rule_set_for(20250102)
    assert e.value.parameter == "rule-date"
