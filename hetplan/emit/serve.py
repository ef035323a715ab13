"""Per-pool vLLM engine settings and the `vllm serve` arguments of one instance.

Settings come from the plan (assumptions, each stated where it is set):
- --max-model-len: the longest request of the classes the pool serves (input_hi +
  output_hi) plus CHAT_TEMPLATE_HEADROOM_TOKENS (the class bins count prompt tokens as the
  workload recorded them; a chat endpoint wraps them in the model's template: role headers,
  a default system preamble), rounded up to 256 tokens, capped at the model's
  max_position_embeddings (vLLM refuses a longer length than the model's context).
- --max-num-seqs: the largest per-class batch the pool's capacity was sized at.
- --max-num-batched-tokens: prefill >= the longest prompt (no chunking of one prompt) and at
  least the plan's `engine.max_num_batched_tokens`; decode the sequences of one step,
  rounded up to 256; colocated the decode batch plus a prompt chunk by the planner's and
  simulator's rule (`EngineLimits.colocated_chunk_tokens`).
- --gpu-memory-utilization: the plan's `engine.gpu_memory_utilization`, the fraction the
  perf model reserved VRAM with.
- --enforce-eager / --max-cudagraph-capture-size: only when the plan's engine sets them
  (`engine.enforce_eager`, `engine.cuda_graph_max_tokens`), the mode its step times assumed.
- --enable-prefix-caching: on prefill pools of a plan sized for prefix reuse
  (`plan.prefix_cache`), explicit although vLLM 0.33 enables it by default, so a changed
  default cannot silently undo the plan; other pools keep vLLM's default (a plan that does
  not count on the cache is then conservative, never short).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from hetplan.catalog import GPU
from hetplan.emit.instances import Instance
from hetplan.errors import InputError
from hetplan.model import ModelSpec
from hetplan.plan import Plan, Pool
from hetplan.simulate.router import DISPATCH

ROUND_TOKENS = 256
# Tokens a chat template adds around a prompt (Llama 3: ~30 for the default system header
# and the role markers of one turn); 128 also covers a short system prompt.
CHAT_TEMPLATE_HEADROOM_TOKENS = 128
# connector key -> (vLLM connector class, kv_role for prefill, kv_role for decode, router's
# --kv-connector value or None)
KV_CONNECTORS = {
    "nixl": ("NixlConnector", "kv_both", "kv_both", "nixl"),
    "mooncake": ("MooncakeConnector", "kv_producer", "kv_consumer", "mooncake"),
    "lmcache": ("LMCacheConnectorV1", "kv_producer", "kv_consumer", None),
}
REMOVED_CONNECTORS = {"p2pnccl": "P2pNcclConnector is not in vLLM 0.33.0 (its config "
                                 "validation refuses it); use nixl, mooncake or lmcache"}
DTYPE_FLAG = {"bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class EmitOptions:
    """What the user may set beyond the plan."""

    model_path: str | None = None          # weights to serve (default: the catalog's HF id)
    served_model_name: str | None = None   # name clients ask for (default: the plan's model)
    kv_connector: str = "nixl"
    router_port: int = 30000
    router_policy: str = DISPATCH          # vllm-router's; the simulator replays the same rule


@dataclass(frozen=True)
class ServeSettings:
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    dtype: str
    quantization: str | None
    kv_cache_dtype: str
    enforce_eager: bool = False
    max_cudagraph_capture_size: int | None = None
    enable_prefix_caching: bool = False     # explicit flag: the plan counts on the cache


def _round_up(n: float, step: int = ROUND_TOKENS) -> int:
    return int(math.ceil(max(n, 1) / step) * step)


def pool_settings(plan: Plan, pool: Pool, spec: ModelSpec, gpu: GPU,
                  opts: EmitOptions) -> ServeSettings:
    """Engine settings of every replica of `pool`; refuses dtypes the GPU lacks."""
    classes = {c.name: c for c in plan.classes}
    routed = [(r, classes[r.workload_class]) for r in pool.routes
              if r.workload_class in classes]
    if not routed:
        raise InputError(f"pool {pool.name} routes no known class", field="pools")

    def longest(c, hi_attr: str, mean_attr: str, p90_attr: str) -> float:
        hi = getattr(c, hi_attr)          # the bin's upper edge; p90 for plans without bins
        return hi if hi is not None else max(getattr(c, mean_attr), getattr(c, p90_attr))

    prompt = max(longest(c, "input_hi", "mean_input_tokens", "p90_input_tokens")
                 for _, c in routed)
    total = max(longest(c, "input_hi", "mean_input_tokens", "p90_input_tokens")
                + longest(c, "output_hi", "mean_output_tokens", "p90_output_tokens")
                for _, c in routed)
    max_len = min(_round_up(total + CHAT_TEMPLATE_HEADROOM_TOKENS),
                  spec.max_position_embeddings)
    # vLLM's limits are per engine: a DP-attention replica runs dp engines, each with its
    # share of the replica's batch
    seqs = max(1, math.ceil(max(r.batch for r, _ in routed) / pool.dp))
    lim = plan.engine
    if pool.role == "prefill":
        budget = _round_up(max(min(prompt, max_len), lim.max_num_batched_tokens))
    elif pool.role == "decode":
        budget = _round_up(seqs)
    else:   # colocated: decode batch + a prompt chunk (as hetplan.simulate.sim sizes it)
        chunk = max(lim.colocated_chunk_tokens(r.batch, c.mean_input_tokens,
                                               c.mean_output_tokens) for r, c in routed)
        budget = _round_up(seqs + chunk)
    return ServeSettings(max_model_len=max_len, max_num_seqs=seqs,
                         max_num_batched_tokens=budget,
                         gpu_memory_utilization=lim.gpu_memory_utilization,
                         dtype=_compute_dtype(gpu), quantization=_quantization(pool, spec, gpu,
                                                                                opts),
                         kv_cache_dtype=_kv_dtype(pool, gpu),
                         enforce_eager=lim.enforce_eager,
                         max_cudagraph_capture_size=lim.cuda_graph_max_tokens,
                         enable_prefix_caching=counts_on_prefix_cache(plan, pool))


def counts_on_prefix_cache(plan: Plan, pool: Pool) -> bool:
    """Whether the plan sized `pool` for prefix-cache hits (its prefill pools, when the
    plan records a prefix-cache assumption)."""
    pc = plan.prefix_cache
    return pc is not None and pool.role == "prefill" and pool.name in pc.capacity_blocks


def _compute_dtype(gpu: GPU) -> str:
    return "bfloat16" if gpu.supports("bf16") else "float16"


def _quantization(pool: Pool, spec: ModelSpec, gpu: GPU, opts: EmitOptions) -> str | None:
    w = pool.weight_dtype
    if w == spec.native_dtype or w in DTYPE_FLAG:
        return None                       # served as stored (or cast by --dtype)
    if not gpu.supports(w):
        raise InputError(f"pool {pool.name}: {gpu.name} ({gpu.architecture}) has no {w} "
                         f"support, so vLLM cannot serve {w} weights on it", field="pools")
    if w == "fp8":
        return "fp8"                      # vLLM quantizes a 16-bit checkpoint on load
    if opts.model_path is None:
        raise InputError(f"pool {pool.name}: {w} weights need a checkpoint quantized to {w}; "
                         "pass --model-path to one (vLLM reads its quantization config)",
                         field="pools")
    return None


def _kv_dtype(pool: Pool, gpu: GPU) -> str:
    if pool.kv_dtype in DTYPE_FLAG:
        return "auto"                     # the model's dtype
    if pool.kv_dtype == "fp8":
        if not gpu.supports("fp8"):
            raise InputError(f"pool {pool.name}: an FP8 KV cache needs FP8 hardware "
                             f"(Hopper, Ada, Blackwell, MI300, Gaudi 3); {gpu.name} is "
                             f"{gpu.architecture}", field="pools")
        return "fp8"
    raise InputError(f"pool {pool.name}: KV-cache dtype {pool.kv_dtype} is not one vLLM "
                     "stores (auto, fp8)", field="pools")


def kv_transfer_config(role: str, connector: str) -> str | None:
    """The --kv-transfer-config JSON of a P/D instance (None for colocated)."""
    if role == "colocated":
        return None
    key = connector.lower()
    if key in REMOVED_CONNECTORS:
        raise InputError(REMOVED_CONNECTORS[key], field="--kv-connector")
    if key not in KV_CONNECTORS:
        raise InputError(f"unknown KV connector {connector!r}; expected one of "
                         f"{', '.join(KV_CONNECTORS)}", field="--kv-connector")
    cls, prefill_role, decode_role, _ = KV_CONNECTORS[key]
    role_value = prefill_role if role == "prefill" else decode_role
    return json.dumps({"kv_connector": cls, "kv_role": role_value}, sort_keys=True,
                      separators=(",", ":"))


def engine_flags(pool: Pool, s: ServeSettings, opts: EmitOptions) -> list[str]:
    """vLLM engine arguments of a pool's replicas (shared by `vllm serve` and Dynamo)."""
    argv = ["--tensor-parallel-size", str(pool.tp), "--pipeline-parallel-size", str(pool.pp),
            "--dtype", s.dtype, "--kv-cache-dtype", s.kv_cache_dtype,
            "--max-model-len", str(s.max_model_len), "--max-num-seqs", str(s.max_num_seqs),
            "--max-num-batched-tokens", str(s.max_num_batched_tokens),
            "--gpu-memory-utilization", f"{s.gpu_memory_utilization:g}"]
    if s.quantization:
        argv += ["--quantization", s.quantization]
    if s.enforce_eager:
        argv.append("--enforce-eager")
    elif s.max_cudagraph_capture_size is not None:
        argv += ["--max-cudagraph-capture-size", str(s.max_cudagraph_capture_size)]
    if s.enable_prefix_caching:
        argv.append("--enable-prefix-caching")
    if pool.dp > 1:       # one node: vLLM's local DP size defaults to the DP size
        argv += ["--data-parallel-size", str(pool.dp)]
    if pool.ep:
        argv.append("--enable-expert-parallel")
    kv = kv_transfer_config(pool.role, opts.kv_connector)
    if kv:
        argv += ["--kv-transfer-config", kv]
    return argv


def serve_argv(inst: Instance, s: ServeSettings, model_arg: str, served_name: str,
               opts: EmitOptions, rank: int = 0) -> list[str]:
    """Arguments after `vllm serve` for node `rank` of `inst` (rank > 0: headless)."""
    argv = [model_arg, "--served-model-name", served_name,
            "--host", "0.0.0.0", "--port", str(inst.port)] + engine_flags(inst.pool, s, opts)
    if len(inst.parts) > 1:
        argv += ["--nnodes", str(len(inst.parts)), "--node-rank", str(rank),
                 "--master-addr", inst.host.address, "--master-port", str(inst.master_port)]
        if rank > 0:
            argv.append("--headless")
    return argv


def instance_env(inst: Instance, rank: int, opts: EmitOptions) -> dict[str, str]:
    """Environment of node `rank` of `inst`: visible devices and the KV connector's."""
    part = inst.parts[rank]
    vendor = inst.pool.vendor
    visible = {"nvidia": "CUDA_VISIBLE_DEVICES", "amd": "HIP_VISIBLE_DEVICES",
               "intel": "HABANA_VISIBLE_MODULES"}.get(vendor, "CUDA_VISIBLE_DEVICES")
    env = {visible: ",".join(str(g) for g in part.gpu_indices)}
    connector = opts.kv_connector.lower()
    if inst.pool.role != "colocated" and connector == "nixl":
        env["VLLM_NIXL_SIDE_CHANNEL_HOST"] = part.host.address
        env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(part.side_channel_port)
    if inst.pool.role == "prefill" and connector == "mooncake" and rank == 0:
        # each prefill engine runs a bootstrap server; the router is told its port
        env["VLLM_MOONCAKE_BOOTSTRAP_PORT"] = str(part.side_channel_port)
    return env


def connector_note(connector: str) -> str | None:
    """What a KV connector needs that the commands cannot carry."""
    return {"lmcache": "LMCache: install lmcache and point LMCACHE_CONFIG_FILE at your "
                       "LMCache P/D config on every instance before launching.",
            "mooncake": "Mooncake: install the mooncake-transfer-engine package; prefill "
                        "instances serve their bootstrap on VLLM_MOONCAKE_BOOTSTRAP_PORT, "
                        "which the router is given."}.get(connector.lower())


def vendor_note(vendor: str) -> str | None:
    """What a non-NVIDIA pool needs beyond these commands."""
    return {"amd": "AMD pool: run vLLM's ROCm build (image rocm/vllm); GPUs are selected "
                   "with HIP_VISIBLE_DEVICES; NIXL needs its UCX/ROCm build (or MoRIIO).",
            "intel": "Intel Gaudi pool: install the vllm-gaudi plugin (Habana image); "
                     "devices are selected with HABANA_VISIBLE_MODULES."}.get(vendor)
