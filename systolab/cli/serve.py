"""``systolab serve``: an LLM served on tensor- and pipeline-parallel devices of one kind."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..models.gpu.runtime import default_runtime, runtime_names
from ..models.legal.purchase import purchasability
from ..models.serving.batching import BatchingOptions
from ..models.serving.goodput import Targets, goodput
from ..models.serving.model import get_device, serve
from .common import emit, legal_parent, nonnegative_real, positive_int, positive_real, scenario_from_args

DTYPES = ("int8", "uint8", "int16", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp32", "tf32",
          # FP4 on Blackwell (fp4 = nvfp4) and the weight-only formats (docs/serving.md: formats)
          "fp4", "nvfp4", "mxfp4", "w4a16", "w8a16", "w8a16_fp8")


def scenario_parent() -> argparse.ArgumentParser:
    """The flags ``serve`` and ``fleet`` share: model, lengths, batching, parallelism, dtypes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--model", required=True, metavar="NAME|config.json",
                   help="built-in LLM (llama2-7b, llama2-13b, llama2-70b, llama3-8b, llama3-70b, mixtral-8x7b, "
                        "deepseek-v3) or a Hugging Face config.json path")
    p.add_argument("--isl", type=positive_int, required=True, metavar="N", help="prompt (input) tokens per request")
    p.add_argument("--osl", type=positive_int, required=True, metavar="N", help="output tokens per request")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--batch", type=positive_int, metavar="B", help="static batch: B requests start together")
    group.add_argument("--concurrency", type=positive_int, metavar="C",
                       help="continuous batching: C requests in flight, each finished one replaced (one of --batch "
                            "and --concurrency is required unless a latency target is given)")
    p.add_argument("--ttft-s", dest="ttft_s", type=positive_real, metavar="S",
                   help="time-to-first-token target in seconds: without --batch/--concurrency the device serves at "
                        "its goodput point (the most tokens/s that meets the targets); with them, it is checked")
    p.add_argument("--tpot-s", dest="tpot_s", type=positive_real, metavar="S",
                   help="time-per-output-token target in seconds (as --ttft-s)")
    p.add_argument("--pp", type=positive_int, default=1, metavar="P", help="pipeline-parallel stages (default 1)")
    p.add_argument("--dtype", choices=DTYPES, metavar="D",
                   help="weights and GEMMs (default: a chip's dtype; a GPU's fp8_e4m3 where it has it, else bf16): "
                        "fp4/nvfp4 and mxfp4 run weights and activations in FP4 on Blackwell; w4a16 (int4, group "
                        "128), w8a16 (int8), w8a16_fp8 store only the weights narrow, math in bf16")
    p.add_argument("--kv-dtype", dest="kv_dtype", choices=DTYPES, metavar="D",
                   help="KV cache (default --dtype; fp8_e4m3 under FP4, bf16 under a weight-only format)")
    return p


def serving_options_parent() -> argparse.ArgumentParser:
    """The flags of how a device serves, that ``serve`` and ``fleet`` pass on: expert
    parallelism, the GPU runtime and power cap, the engine step, the KV block and the
    batching options."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--ep", type=positive_int, default=1, metavar="N",
                   help="expert parallelism: a mixture-of-experts model's experts split over N of the --tp devices "
                        "(N divides the experts and --tp; dispatch and combine as all-to-alls; default 1)")
    p.add_argument("--runtime", metavar="NAME",
                   help=f"GPU serving runtime (models/data/runtimes.yaml: {', '.join(runtime_names())}; default "
                        f"{default_runtime()})")
    p.add_argument("--power-cap-w", dest="power_cap_w", type=positive_real, metavar="W",
                   help="GPU board power cap in W: the clock, and the tensor rate with it, drop to hold it")
    p.add_argument("--chunk-tokens", dest="chunk_tokens", type=positive_int, metavar="N",
                   help="tokens one engine step may carry (decode tokens plus prefill chunks; vLLM's "
                        "max_num_batched_tokens, TensorRT-LLM's max_num_tokens); activation memory is reserved for "
                        "it (default 8192)")
    p.add_argument("--kv-block", dest="kv_block", type=positive_int, metavar="N",
                   help="KV-cache block size in tokens (default the runtime's: vLLM 16, TensorRT-LLM and LMDeploy 64)")
    p.add_argument("--prefix-hit", dest="prefix_hit", type=nonnegative_real, metavar="F",
                   help="with --concurrency: fraction (0 to <1) of every prompt found in the prefix cache (whole "
                        "blocks): not recomputed, its blocks held once")
    p.add_argument("--spec-tokens", dest="spec_tokens", type=positive_int, metavar="K",
                   help="with --concurrency: speculative decoding, K draft tokens checked per target step")
    p.add_argument("--spec-acceptance", dest="spec_acceptance", type=nonnegative_real, metavar="A",
                   help="probability (0 to 1) that each draft token is accepted (default 0.7 with --spec-tokens)")
    p.add_argument("--spec-draft-cost", dest="spec_draft_cost", type=nonnegative_real, metavar="R",
                   help="a draft step's time over the target's decode step (default 0.05 with --spec-tokens)")
    return p


def add_parser(sub, parents) -> None:
    p = sub.add_parser("serve", parents=[scenario_parent(), serving_options_parent(), legal_parent(), parents.json],
                       help="LLM serving: TTFT, TPOT, tokens/s, KV-cache limit, J/token, $/M tokens")
    p.add_argument("--device", required=True, metavar="ID|CHIP", help="GPU id, chip name or chips YAML file")
    p.add_argument("--tp", type=positive_int, metavar="T",
                   help="tensor-parallel devices (default 1; at the goodput point, the best of 1, 2, 4 ... 64)")
    p.set_defaults(func=run)


def targets_from_args(args: argparse.Namespace) -> Targets:
    """The latency targets of ``--ttft-s`` and ``--tpot-s``, refusing a scenario that has
    neither a load (``--batch`` or ``--concurrency``) nor a target to find one by."""
    targets = Targets(args.ttft_s, args.tpot_s)
    if args.batch is None and args.concurrency is None and not targets.given:
        raise UserError("batch: give --batch or --concurrency, or a latency target (--ttft-s, --tpot-s) to serve at "
                        "the goodput point", parameter="batch")
    return targets


#: Speculative decoding's defaults when only --spec-tokens is given: an acceptance rate and a
#: draft cost of the order the speculative-decoding literature reports for a small draft model
#: (stated with every result as an assumption, not a measurement).
SPEC_DEFAULTS = {"acceptance": 0.7, "draft_cost": 0.05}


def options_from_args(args: argparse.Namespace) -> BatchingOptions | None:
    """The batching options of ``--prefix-hit`` and ``--spec-*`` (None when none is given)."""
    spec = (args.spec_acceptance, args.spec_draft_cost)
    if args.spec_tokens is None and any(v is not None for v in spec):
        raise UserError("spec-tokens: give --spec-tokens with --spec-acceptance or --spec-draft-cost",
                        parameter="spec-tokens")
    if args.prefix_hit is None and args.spec_tokens is None:
        return None
    acceptance = SPEC_DEFAULTS["acceptance"] if args.spec_acceptance is None else args.spec_acceptance
    cost = SPEC_DEFAULTS["draft_cost"] if args.spec_draft_cost is None else args.spec_draft_cost
    return BatchingOptions(args.prefix_hit or 0.0, args.spec_tokens or 0, acceptance if args.spec_tokens else 0.0,
                           cost if args.spec_tokens else 0.0).checked()


def serving_options(args: argparse.Namespace, options: BatchingOptions | None) -> dict:
    """The keyword arguments of :func:`serve` that ``serve`` and ``fleet`` pass on as given."""
    return {"ep": args.ep, "chunk_tokens": args.chunk_tokens, "kv_block": args.kv_block, "options": options}


def kv_lines(p: dict) -> list[str]:
    """The paged KV cache and, under continuous batching, the steady-state step mix (text output)."""
    kv = p.get("kv_cache")
    if not kv:
        return []
    out = [f"  KV cache {kv['blocks']:,} blocks of {kv['block_tokens']} tokens; holds {kv['max_batch_static']:,} "
           f"requests at full length (static), {kv['max_concurrency']:,} at steady state (continuous)"]
    s = p.get("schedule")
    if s:
        out.append(f"  each step: {s['decode_tokens']:,.0f} decode + {s['prefill_tokens']:,.0f} prefill tokens in "
                   f"{s['mixed_steps']:,.1f} of {s['steps']:,.1f} steps per cycle (budget {s['budget']:,} tokens)")
    return out


def run(args: argparse.Namespace) -> int:
    targets = targets_from_args(args)
    extra: dict = {}
    options = options_from_args(args)
    device = args.device
    if args.runtime is not None or args.power_cap_w is not None:
        device = get_device(args.device, args.dtype, runtime=args.runtime, power_cap_W=args.power_cap_w)
    if args.batch is None and args.concurrency is None:       # the goodput point of the targets
        g = goodput(device, args.model, isl=args.isl, osl=args.osl, ttft_s=args.ttft_s, tpot_s=args.tpot_s,
                    tp=args.tp, pp=args.pp, dtype=args.dtype, kv_dtype=args.kv_dtype, **serving_options(args, options))
        r, reason = g.chosen, g.reason
        extra["goodput"] = g.summary()
    else:
        r = serve(device, args.model, isl=args.isl, osl=args.osl, batch=args.batch, concurrency=args.concurrency,
                  tp=args.tp or 1, pp=args.pp, dtype=args.dtype, kv_dtype=args.kv_dtype, **serving_options(args, options))
        reason = targets.reason(r)
    payload = r.to_dict()
    if args.spec_tokens and (args.spec_acceptance is None or args.spec_draft_cost is None) and options:
        payload["notes"].append(f"speculative decoding: acceptance {options.acceptance:g} and draft cost "
                                f"{options.draft_cost:g} are assumed defaults, not measurements")
    if device is not args.device:                     # a runtime or a power cap was named
        payload.update(runtime=device.runtime, power_cap_W=device.power_cap_W)
    if targets.given:
        payload.update(targets=targets.to_dict(), meets_targets=reason is None, reason=reason, **extra)
    legal = scenario_from_args(args)
    if legal is not None:
        payload["purchasability"] = purchasability(r.device, legal).to_dict() if r.kind == "gpu" else None

    def human(p: dict) -> str:
        m = p["memory"]
        cost = p["usd_per_million_tokens"]
        lines = [f"{p['model']} on {p['devices']} x {p['device']} (tp {p['tp']}, pp {p['pp']}"
                 f"{', ep ' + str(p['ep']) if p.get('ep', 1) > 1 else ''}), {p['dtype']} weights, "
                 f"{p['kv_dtype']} KV; {p['batching']} batching of {p['sequences']}, {p['isl']} + {p['osl']} tokens",
                 f"  TTFT {p['ttft_s'] * 1e3:,.1f} ms   TPOT {p['tpot_s'] * 1e3:,.2f} ms   "
                 f"{p['output_tokens_per_s']:,.0f} output tokens/s per device ({p['output_tokens_per_s_group']:,.0f} "
                 f"per group)",
                 f"  max batch {p['max_batch']:,} (KV cache {m['kv_per_sequence'] / 1e9:,.3f} GB per request; weights "
                 f"{m['weights'] / 1e9:,.1f} GB, of {m['capacity'] / 1e9:,.1f} GB usable per device)",
                 *kv_lines(p),
                 f"  {p['energy_per_token_J']:.3g} J/token   "
                 + (f"${cost:.3g} per million tokens" if cost is not None else "no public price: no $/token")]
        if p.get("power_W") is not None:
            decode = f"{p['decode_power_W']:,.0f}" if p.get("decode_power_W") is not None else "-"
            lines.append(f"  power per device: {p['power_W']:,.0f} W mean (prefill {p['prefill_power_W']:,.0f} W, "
                         f"decode {decode} W, idle {p['idle_power_W']:,.0f} W)")
        lines += [f"  note: {n}" for n in p["notes"]]
        if "meets_targets" in p:
            t = p["targets"]
            wanted = ", ".join(f"{k.split('_')[0].upper()} <= {v * 1e3:,.1f} ms" for k, v in t.items() if v is not None)
            g = p.get("goodput")
            lines.append(f"  targets {wanted}: " + (
                (f"met; goodput {g['output_tokens_per_s']:,.0f} output tokens/s per device" if g else "met")
                if p["meets_targets"] else f"missed, no capacity ({p['reason']})"))
        if p.get("purchasability"):
            q = p["purchasability"]
            lines.append(f"  a buyer in {q['buyer']} on {q['date']}: {q['status'].replace('_', ' ')}"
                         + (f" ({q['policy']}: {q['citation']})" if q["policy"] else ""))
        return "\n".join(lines)

    emit(args, payload, human)
    return 0
