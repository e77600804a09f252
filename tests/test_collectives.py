"""Collectives of tensor parallelism (models/serving/collectives.py): the link's bus
bandwidth, NCCL's protocols, a runtime's own one-shot all-reduce, and their data."""
import shutil

import pytest

from systolab.errors import UserError
from systolab.models.gpu.runtime import RUNTIMES_FILE
from systolab.models.gpu.specs import get_gpu
from systolab.models.serving.collectives import (
    AllReduce,
    Link,
    all_reduce_seconds,
    collective_data,
    gpu_link,
    link_collective_seconds,
    nccl_all_reduce_seconds,
    runtime_all_reduce,
)
from systolab.models.serving.model import GpuServing, Precision, step_ops
from systolab.models.specs import SpecError
from systolab.models.workloads.catalog import get_llm

NVLINK, PCIE = gpu_link(get_gpu("a100-sxm4-80gb")), gpu_link(get_gpu("l40s"))
CUSTOM = runtime_all_reduce("gpt-fast")


def test_links_of_the_gpus_carry_their_bus_bandwidth():
    # PCIe Gen4 x16: 32 GB/s per direction, about half of it as an all-reduce's bus bandwidth
    assert (PCIE.kind, PCIE.GBps, PCIE.bus_GBps) == ("pcie", 32, pytest.approx(16))
    assert (NVLINK.kind, NVLINK.GBps, NVLINK.bus_GBps) == ("nvlink", 300, pytest.approx(240))
    hopper = gpu_link(get_gpu("h100-sxm"))           # NVLink SHARP: the switch reduces
    assert hopper.bus_efficiency > 1 and hopper.bus_GBps == pytest.approx(450 * 1.07)
    assert gpu_link(get_gpu("h100-pcie")).bus_efficiency == NVLINK.bus_efficiency    # a bridge, no switch
    assert PCIE.to_dict()["bus_GBps"] == pytest.approx(16)


@pytest.mark.parametrize("nbytes", [8, 16e3, 2e6, 64e6])
def test_pcie_all_reduce_is_slower_than_nvlink(nbytes):
    for n in (2, 4, 8):
        assert all_reduce_seconds(nbytes, n, PCIE) > all_reduce_seconds(nbytes, n, NVLINK)


@pytest.mark.parametrize("link", [NVLINK, PCIE], ids=["nvlink", "pcie"])
def test_all_reduce_grows_with_the_group_and_the_message(link):
    for nbytes in (8, 16e3, 2e6, 64e6):
        times = [all_reduce_seconds(nbytes, n, link) for n in (1, 2, 4, 8)]
        assert times[0] == 0 and times == sorted(times) and len(set(times)) == 4
    sizes = [all_reduce_seconds(b, 8, link) for b in (8, 1e3, 1e5, 1e7, 1e9)]
    assert sizes == sorted(sizes)


def test_small_messages_are_latency_bound_large_ones_bandwidth_bound():
    data = collective_data()
    tiny, small = all_reduce_seconds(8, 8, PCIE), all_reduce_seconds(4e3, 8, PCIE)
    # NCCL's LL ring: base latency and 14 hops of 1 us on PCIe; 4 KB adds under 10 %
    assert tiny == pytest.approx(data.base_latency_s["ll"] + 14 * data.hop_latency_s["pcie"]["ll"], rel=1e-3)
    assert small < 1.1 * tiny
    assert nccl_all_reduce_seconds(8, 8, NVLINK)[1] == "ll"
    t, proto = nccl_all_reduce_seconds(1e9, 8, PCIE)
    assert proto == "simple" and t == pytest.approx(2 * 7 / 8 * 1e9 / 16e9, rel=0.01)   # the bus bandwidth
    assert nccl_all_reduce_seconds(4e6, 8, NVLINK)[1] == "ll128"
    assert "ll128" not in {nccl_all_reduce_seconds(b, 8, PCIE)[1] for b in (1e4, 1e5, 1e6, 4e6, 1e7)}


def test_one_shot_all_reduce_serves_small_messages_on_nvlink_only():
    assert CUSTOM.algorithm == "custom" and CUSTOM.one_shot_max_bytes == 256 * 1024
    lat = collective_data().one_shot_latency_s
    one = all_reduce_seconds(16e3, 8, NVLINK, CUSTOM)
    assert one == pytest.approx(lat + 7 * 16e3 / 240e9)
    assert one < all_reduce_seconds(16e3, 8, NVLINK)                 # faster than NCCL's ring
    two = all_reduce_seconds(1e6, 8, NVLINK, CUSTOM)                  # two-shot between the limits
    assert two == pytest.approx(2 * lat + 2 * 7 / 8 * 1e6 / 240e9)
    assert all_reduce_seconds(64e6, 8, NVLINK, CUSTOM) == all_reduce_seconds(64e6, 8, NVLINK)   # NCCL above
    assert all_reduce_seconds(16e3, 8, PCIE, CUSTOM) == all_reduce_seconds(16e3, 8, PCIE)       # no P2P kernel
    for n in (2, 4, 8):
        assert all_reduce_seconds(16e3, n, NVLINK, CUSTOM) < all_reduce_seconds(16e3, n + 1, NVLINK, CUSTOM)
    assert CUSTOM.max_devices == 8                                      # one node: NCCL beyond it
    assert all_reduce_seconds(16e3, 16, NVLINK, CUSTOM) == all_reduce_seconds(16e3, 16, NVLINK)


def test_runtimes_declare_their_all_reduce():
    assert runtime_all_reduce("trtllm-0.9") == AllReduce()            # none declared: NCCL
    assert runtime_all_reduce("vllm").algorithm == "custom"
    assert runtime_all_reduce(None) == runtime_all_reduce("vllm")     # the default runtime
    with pytest.raises(UserError, match="^runtime: unknown runtime 'nope'") as e:
        runtime_all_reduce("nope")
    assert e.value.parameter == "runtime"
    assert GpuServing("a100-sxm4-80gb", "bf16", runtime="gpt-fast").all_reduce == CUSTOM


def test_a_malformed_all_reduce_names_its_field(tmp_path):
    path = tmp_path / "runtimes.yaml"
    shutil.copy(RUNTIMES_FILE, path)
    path.write_text(path.read_text().replace("algorithm: custom", "algorithm: magic", 1))
    with pytest.raises(SpecError, match=r"runtimes\.vllm\.all_reduce\.algorithm"):
        runtime_all_reduce("vllm", str(path))


def test_arguments_are_checked():
    with pytest.raises(UserError, match="^devices:"):
        all_reduce_seconds(1e3, 0, NVLINK)
    with pytest.raises(UserError, match="^message_bytes:"):
        all_reduce_seconds(-1, 2, NVLINK)


def test_other_collectives_run_at_the_bus_bandwidth():
    link = Link("pcie", 32, 0.5, 5e-6)
    assert link_collective_seconds("all_gather", 1e6, 4, link) == pytest.approx(3 * 1e6 / 16e9 + 3 * 5e-6)
    assert link_collective_seconds("all_reduce", 1e6, 4, link) == all_reduce_seconds(1e6, 4, link)


def test_l40s_prefill_at_tp8_pays_the_pcie_all_reduce():
    """Llama-2-70B, 2,048 tokens over 8 L40S: 160 all-reduces of 32 MiB at 16 GB/s bus bandwidth
    take 0.60 s, most of TensorRT-LLM 0.8's measured 0.71 s first token."""
    dev = GpuServing("l40s", "fp8_e4m3", runtime="trtllm-0.8")
    ops = step_ops(get_llm("llama2-70b"), seqs=1, q_len=2048, ctx=2048, tp=8, prec=Precision("fp8_e4m3", "fp8_e4m3"))
    terms = dev.terms(ops, 8)
    coll = sum(t[4] for t, op in zip(terms, ops) if op.collective == "all_reduce")
    simple = 8.4e-6 + 14 * 5.7e-6                   # NCCL's Simple protocol on PCIe: base + 14 hops
    assert coll == pytest.approx(160 * (simple + 2 * 7 / 8 * 2048 * 8192 * 2 / 16e9), rel=1e-6)
    assert coll > 0.55


def test_gpt_fast_power_cap_does_not_bind_at_batch_1():
    """The gpt-fast rows ran A100s capped at 330 W; batch-1 decode draws less (memory-bound),
    so the replay, which does not apply the cap, loses nothing."""
    for tp, model in ((1, "llama2-7b"), (8, "llama2-7b"), (2, "llama2-70b")):
        ops = step_ops(get_llm(model), seqs=1, q_len=1, ctx=105, tp=tp, prec=Precision("bf16", "bf16"))
        free = GpuServing("a100-sxm4-80gb", "bf16", runtime="gpt-fast")
        capped = GpuServing("a100-sxm4-80gb", "bf16", runtime="gpt-fast", power_cap_W=330)
        assert free.step_power_W(ops, tp) < 330
        assert capped.seconds(ops, tp).sum() == free.seconds(ops, tp).sum()
