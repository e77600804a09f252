import pytest

from systolab.errors import UserError
from systolab.models.gpu.specs import get_gpu, load_gpus
from systolab.models.specs import SpecError

DESIGN_IDS = ["v100-sxm2", "a100-sxm4-80gb", "a800-sxm4-80gb", "h100-sxm", "h100-pcie", "h800-sxm",
              "h20", "h200-sxm", "b200", "l40s", "l20", "l4"]


def test_every_design_id_is_present_with_sources():
    gpus = load_gpus()
    assert list(gpus) == DESIGN_IDS
    for g in gpus.values():
        assert g.source and g.confidence in ("high", "medium", "low")
        assert g.peak_dense_tflops and g.mem_bw_GBps > 0 and g.sm_count > 0


def test_figures_match_the_reference():
    h100 = get_gpu("h100-sxm")
    assert h100.peak("bf16") == pytest.approx(989.4) and h100.peak("int8") == pytest.approx(1978.9)
    assert h100.mem_bw_GBps == pytest.approx(3350) and h100.die_area_mm2 == 814
    assert get_gpu("a800-sxm4-80gb").io_bidir_GBps == 464  # 400 NVLink + 64 PCIe Gen4


def test_uncertain_figures_are_flagged():
    assert any("die_area_mm2" in f for f in get_gpu("b200").flags("die_area_mm2"))
    assert get_gpu("h20").flags("sm_count")
    assert get_gpu("h100-sxm").flags() == []
    assert get_gpu("a100-sxm4-80gb").price.confidence == "estimate"


def test_unknown_gpu_names_the_parameter():
    with pytest.raises(UserError, match="gpu: unknown GPU id 'x100'"):
        get_gpu("x100")


@pytest.mark.parametrize("mutation, field", [
    (lambda d: d["gpus"]["h100-sxm"].pop("mem_bw_GBps"), "gpus.h100-sxm.mem_bw_GBps: missing"),
    (lambda d: d["gpus"]["h100-sxm"].__setitem__("sm_count", "many"), "gpus.h100-sxm.sm_count: must be an integer"),
    (lambda d: d["gpus"]["l4"]["peak_dense_tflops"].__setitem__("int4", 1), "gpus.l4.peak_dense_tflops.int4: unknown dtype"),
    (lambda d: d["gpus"]["l4"].__setitem__("family", "turing"), "gpus.l4.family: must be one of"),
    (lambda d: d["gpus"]["l4"]["peak_dense_tflops"].__setitem__("fp16", -1), "peak_dense_tflops.fp16: must be > 0"),
])
def test_bad_spec_file_names_file_and_field(tmp_path, mutation, field):
    import yaml

    from systolab.models.gpu.specs import GPU_FILE

    data = yaml.safe_load(GPU_FILE.read_text())
    mutation(data)
    bad = tmp_path / "gpus.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as info:
        load_gpus(bad)
    assert str(bad) in str(info.value) and field in str(info.value)


def test_a_resolved_spec_passes_through_and_serves_as_the_id():
    """Objects are resolved once at the boundary and handed on: get_gpu and get_node return
    a spec given a spec, and a serving device made from the spec equals one made from the id."""
    from systolab.models.serving.model import get_device
    from systolab.models.silicon.nodes import get_node

    spec = get_gpu("h20")
    assert get_gpu(spec) is spec
    node = get_node("n4")
    assert get_node(node) is node
    by_spec, by_id = get_device(spec), get_device("h20")
    assert (by_spec.id, by_spec.dtype, by_spec.spec) == (by_id.id, by_id.dtype, by_id.spec)
