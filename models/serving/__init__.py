"""LLM serving on one device kind (prefill, decode, KV cache, parallelism), fleets of it,
goodput under latency targets, and the power model's check against measurements."""
from .attention_kernel import attention_kernel_fraction
from .batching import BatchingOptions, Schedule
from .collectives import AllReduce, Link, all_reduce_seconds, gpu_link, runtime_all_reduce
from .disaggregated import DisaggregatedResult, disaggregated
from .finite_replay import FiniteRun, FiniteThroughput, finite_runs, finite_throughput, runtime_scheduler
from .finite_run import FiniteSchedule, SchedulerConfig, bench_serving_lengths, draw_lengths, simulate
from .fleet import Fleet, FleetRow, fleet
from .formats import check_chip_dtype, default_kv_dtype, format_notes
from .goodput import Goodput, GoodputPoint, Targets, goodput, plot_goodput
from .kv_cache import KvCache
from .mla import MlaStep, kv_elements_per_token, mla_step
from .model import ServingResult, moe_run, serve, serve_auto
from .moe import ROUTINGS, ExpertLoad, MoeRun, distinct_experts, expected_max_load, expert_load, expert_parallel_share
from .power_fit import power_fit_report

__all__ = ["BatchingOptions", "disaggregated", "DisaggregatedResult", "KvCache", "Schedule",
           "check_chip_dtype", "default_kv_dtype", "format_notes", "kv_elements_per_token", "mla_step", "MlaStep",
           "expert_parallel_share", "distinct_experts", "expected_max_load", "expert_load", "ExpertLoad",
           "Fleet", "fleet", "FleetRow", "Goodput", "goodput", "GoodputPoint", "plot_goodput", "power_fit_report",
           "serve", "serve_auto", "ServingResult", "Targets", "MoeRun", "moe_run", "ROUTINGS"]
__all__ += ["AllReduce", "all_reduce_seconds", "gpu_link", "Link", "runtime_all_reduce"]
__all__ += ["bench_serving_lengths", "draw_lengths", "FiniteRun", "finite_runs", "FiniteSchedule", "finite_throughput",
            "FiniteThroughput", "runtime_scheduler", "SchedulerConfig", "simulate"]
__all__ += ["attention_kernel_fraction"]
