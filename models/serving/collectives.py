"""Collectives of tensor parallelism as runtimes run them: the link's bus bandwidth, NCCL's
protocols and a runtime's own one-shot all-reduce.

* **link** (:class:`Link`): the line rate per direction (half the device's bidirectional
  NVLink figure, or PCIe's where it has none; a chip's own links), the bus bandwidth a large
  all-reduce reaches on it (``bus_efficiency`` of the line rate, ``data/serving.yaml:
  collectives``: NCCL over PCIe through switches or the CPU reaches about half of it, a ring
  on NVLink 0.8, NVLink SHARP on HGX Hopper and Blackwell boards a little above 1), and
  the step latency of the simple collectives (``link_latency_s``).
* **all-reduce** (:func:`all_reduce_seconds`): NCCL's ring as NCCL's own cost model prices
  it, the fastest of its protocols: LL (low latency, half the bandwidth), LL128 (NVLink
  only) and Simple; or, where the runtime declares one (``data/runtimes.yaml: all_reduce``),
  a one-shot all-reduce for small messages (every device reads the others' message over
  NVLink and sums it, one barrier) and a two-shot one (reduce-scatter then all-gather, each
  one step) for larger ones, NCCL above.
* the other collectives (:func:`collective_seconds`): all-gather, send and all-to-all, ring
  or direct, at the link's bus bandwidth and step latency.

Seconds are per call, on every device of the group at once (they all wait for the slowest).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from ...checks import check_int, check_positive, check_real
from ...errors import UserError
from ..gpu.runtime import RUNTIMES_FILE, default_runtime
from ..gpu.specs import GpuSpec, get_gpu
from ..specs import DATA_DIR, SpecError, load_yaml, need, uncertain_figure

SERVING_FILE = DATA_DIR / "serving.yaml"
#: NCCL's protocols, in the order its cost model lists them.
PROTOCOLS = ("ll", "ll128", "simple")
#: All-reduce algorithms a runtime may declare: ``nccl`` (the default) or ``custom``
#: (one-shot, then two-shot, then NCCL, by message size; NVLink only).
ALGORITHMS = ("nccl", "custom")
KINDS = ("all_reduce", "all_gather", "send", "all_to_all")


@dataclass(frozen=True)
class Link:
    """A device's link to its tensor-parallel peers: ``kind`` (``nvlink``, ``pcie`` or
    ``chip``), line rate per direction ``GBps`` (GB/s), ``bus_efficiency`` (the bus bandwidth
    of a large all-reduce over the line rate, 0-1] and ``latency_s`` (s per step of a simple
    collective)."""

    kind: str
    GBps: float
    bus_efficiency: float
    latency_s: float

    @property
    def bus_GBps(self) -> float:
        """Bus bandwidth of a large collective, GB/s per direction."""
        return self.GBps * self.bus_efficiency

    def to_dict(self) -> dict:
        return {"kind": self.kind, "GBps": self.GBps, "bus_efficiency": self.bus_efficiency,
                "bus_GBps": self.bus_GBps, "latency_s": self.latency_s}


@dataclass(frozen=True)
class CollectiveData:
    """The collective model's figures (``data/serving.yaml: collectives`` and ``link_latency_s``)."""

    bus_efficiency: dict[str, float]               # by link kind
    base_latency_s: dict[str, float]               # NCCL ring, by protocol
    hop_latency_s: dict[str, dict[str, float]]     # NCCL ring, by link kind then protocol
    bandwidth_share: dict[str, float]              # of the bus bandwidth, by protocol
    one_shot_latency_s: float
    link_latency_s: dict[str, float]               # a simple collective's step, by link kind
    nvlink_sharp_gpus: frozenset[str]              # GPU ids whose NVSwitch reduces (NVLS)


def _by_protocol(path: str, where: str, d: dict, scale: float = 1.0) -> dict[str, float]:
    return {p: float(need(path, where, d, p, (int, float), positive=True)) * scale for p in PROTOCOLS}


@cache
def collective_data(path: str = str(SERVING_FILE)) -> CollectiveData:
    """The collective model's figures, every field checked (errors name the file and field)."""
    d = load_yaml(path)
    c = need(path, "", d, "collectives", dict)
    eff = need(path, "collectives", c, "bus_efficiency", dict)
    nccl = need(path, "collectives", c, "nccl", dict)
    hops = need(path, "collectives.nccl", nccl, "hop_latency_us", dict)
    lat = need(path, "", d, "link_latency_s", dict)
    efficiency = {k: uncertain_figure(path, f"collectives.bus_efficiency.{k}", v, positive=True).value
                  for k, v in eff.items()}
    for k, v in efficiency.items():
        if v > 1.2:     # NVLink SHARP reaches a little above the line rate; more is a typo
            raise SpecError(path, f"collectives.bus_efficiency.{k}.value", f"must be at most 1.2, not {v}")
    one_shot = need(path, "collectives", c, "one_shot", dict)
    return CollectiveData(
        bus_efficiency=efficiency,
        base_latency_s=_by_protocol(path, "collectives.nccl.base_latency_us",
                                    need(path, "collectives.nccl", nccl, "base_latency_us", dict), 1e-6),
        hop_latency_s={k: _by_protocol(path, f"collectives.nccl.hop_latency_us.{k}", v, 1e-6) for k, v in hops.items()},
        bandwidth_share=_by_protocol(path, "collectives.nccl.bandwidth_share",
                                     need(path, "collectives.nccl", nccl, "bandwidth_share", dict)),
        one_shot_latency_s=uncertain_figure(path, "collectives.one_shot.latency_us",
                                            need(path, "collectives.one_shot", one_shot, "latency_us", dict),
                                            positive=True).value * 1e-6,
        link_latency_s={k: float(need(path, "link_latency_s", lat, k, (int, float), positive=True))
                        for k in lat if k != "basis"},
        nvlink_sharp_gpus=frozenset(need(path, "collectives", c, "nvlink_sharp_gpus", list)))


def gpu_link(gpu: GpuSpec | str) -> Link:
    """``gpu``'s link (a :class:`GpuSpec` or a GPU id) to its tensor-parallel peers: NVLink
    where it has it, else PCIe."""
    if not isinstance(gpu, GpuSpec):
        gpu = get_gpu(gpu)
    data = collective_data()
    kind = "nvlink" if gpu.nvlink_bidir_GBps else "pcie"
    fabric = "nvlink_sharp" if kind == "nvlink" and gpu.id in data.nvlink_sharp_gpus else kind
    return Link(kind, (gpu.nvlink_bidir_GBps or gpu.pcie_bidir_GBps) / 2, data.bus_efficiency[fabric],
                data.link_latency_s[kind])


def chip_link(io_bidir_GBps: float) -> Link:
    """A systolab chip's link of ``io_bidir_GBps`` (GB/s, both directions), at its line rate
    (an assumption: ``data/serving.yaml: link_latency_s``)."""
    return Link("chip", check_positive("io_bidir_GBps", io_bidir_GBps) / 2, 1.0,
                collective_data().link_latency_s["chip"])


@dataclass(frozen=True)
class AllReduce:
    """How a runtime all-reduces: ``algorithm`` (:data:`ALGORITHMS`); for ``custom``, the
    largest messages (bytes) its one-shot and two-shot kernels take and the largest group
    (devices in one NVLink node) they serve."""

    algorithm: str = "nccl"
    one_shot_max_bytes: float = 0.0
    two_shot_max_bytes: float = 0.0
    max_devices: int = 0

    def to_dict(self) -> dict:
        return {"algorithm": self.algorithm, "one_shot_max_bytes": self.one_shot_max_bytes,
                "two_shot_max_bytes": self.two_shot_max_bytes, "max_devices": self.max_devices}


@cache
def runtime_all_reduce(runtime: str | None = None, path: str = str(RUNTIMES_FILE)) -> AllReduce:
    """The all-reduce ``runtime`` declares in ``runtimes.yaml`` (None: the default runtime;
    a runtime that declares none runs NCCL's)."""
    doc = load_yaml(path)
    runtimes = need(path, "", doc, "runtimes", dict)
    name = default_runtime(path) if runtime is None else runtime
    if name not in runtimes:
        raise UserError(f"runtime: unknown runtime {name!r}; choose one of {', '.join(sorted(runtimes))}",
                        parameter="runtime")
    where = f"runtimes.{name}"
    d = need(path, where, runtimes[name], "all_reduce", dict, optional=True)
    if d is None:
        return AllReduce()
    algorithm = need(path, f"{where}.all_reduce", d, "algorithm", str)
    if algorithm not in ALGORITHMS:
        raise SpecError(path, f"{where}.all_reduce.algorithm", f"must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    need(path, f"{where}.all_reduce", d, "source", str)
    if algorithm == "nccl":
        return AllReduce()
    one = need(path, f"{where}.all_reduce", d, "one_shot_max_bytes", int, positive=True)
    two = need(path, f"{where}.all_reduce", d, "two_shot_max_bytes", int, positive=True)
    devices = need(path, f"{where}.all_reduce", d, "max_devices", int, positive=True)
    return AllReduce(algorithm, float(one), float(two), devices)


def nccl_all_reduce_seconds(message_bytes: float, devices: int, link: Link) -> tuple[float, str]:
    """NCCL's ring all-reduce of ``message_bytes`` over ``devices`` on ``link``: seconds and
    the protocol NCCL's cost model picks (the fastest; LL128 only on NVLink)."""
    data = collective_data()
    n = devices
    hops = data.hop_latency_s.get(link.kind, data.hop_latency_s["nvlink"])
    best = (math.inf, "")
    for p in PROTOCOLS:
        if p == "ll128" and link.kind == "pcie":
            continue
        t = (data.base_latency_s[p] + 2 * (n - 1) * hops[p]
             + 2 * (n - 1) / n * message_bytes / (link.bus_GBps * 1e9 * data.bandwidth_share[p]))
        best = min(best, (t, p))
    return best


def all_reduce_seconds(message_bytes: float, devices: int, link: Link, how: AllReduce | None = None) -> float:
    """An all-reduce of ``message_bytes`` (the whole tensor) over ``devices`` on ``link``,
    seconds: under ``how`` (:func:`runtime_all_reduce`; None: NCCL's). A ``custom`` runtime's
    one-shot (latency + (n-1) x message / bus bandwidth) or two-shot (twice the latency +
    2(n-1)/n x message / bus bandwidth) serves messages up to its limits on NVLink, in groups
    of up to its ``max_devices``; NCCL the rest."""
    n = check_int("devices", devices, lo=1)
    message_bytes = check_real("message_bytes", message_bytes, lo=0.0)
    if n == 1:
        return 0.0
    how = how or AllReduce()
    if (how.algorithm == "custom" and link.kind == "nvlink" and n <= how.max_devices
            and message_bytes <= how.two_shot_max_bytes):
        lat, bw = collective_data().one_shot_latency_s, link.bus_GBps * 1e9
        if message_bytes <= how.one_shot_max_bytes:
            return lat + (n - 1) * message_bytes / bw
        return 2 * lat + 2 * (n - 1) / n * message_bytes / bw
    return nccl_all_reduce_seconds(message_bytes, n, link)[0]


def collective_seconds(kind: str, message_bytes: float, devices: int, link_GBps: float, latency_s: float) -> float:
    """An all-reduce or all-gather of ``message_bytes`` (each device's share for an
    all-gather, the whole tensor for an all-reduce) over ``devices`` on links of
    ``link_GBps`` per direction and ``latency_s`` per step: the cheaper of a ring
    (2(n-1) steps) and a tree (2 log2 n steps moving the whole message); a send; an
    all-to-all (each device sends ``message_bytes``, all at once). The simple model, with
    no protocols: :func:`link_collective_seconds` uses it for all but a GPU's all-reduce."""
    n = devices
    if n <= 1:
        return 0.0
    bw = link_GBps * 1e9
    if kind == "all_reduce":
        ring = 2 * (n - 1) / n * message_bytes / bw + 2 * (n - 1) * latency_s
        tree = 2 * message_bytes / bw + 2 * math.ceil(math.log2(n)) * latency_s
        return min(ring, tree)
    if kind == "all_gather":
        return (n - 1) * message_bytes / bw + (n - 1) * latency_s
    if kind == "send":
        return message_bytes / bw + latency_s
    if kind == "all_to_all":        # every device sends message_bytes, (n-1)/n of it to the others, all at once
        return (n - 1) / n * message_bytes / bw + latency_s
    raise ValueError(f"collective kind {kind!r}")


def link_collective_seconds(kind: str, message_bytes: float, devices: int, link: Link,
                            how: AllReduce | None = None) -> float:
    """A collective of ``kind`` (:data:`KINDS`) on a GPU's ``link``: an all-reduce by
    :func:`all_reduce_seconds` (NCCL's protocols, or the runtime's own ``how``), the others
    by :func:`collective_seconds` at the link's bus bandwidth."""
    if kind == "all_reduce":
        return all_reduce_seconds(message_bytes, devices, link, how)
    return collective_seconds(kind, message_bytes, devices, link.bus_GBps, link.latency_s)
