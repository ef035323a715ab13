"""Human- and machine-readable summaries of a ModelSpec (for `hetplan model show`)."""

from __future__ import annotations

from hetplan.dtypes import DTYPES
from hetplan.model import ModelSpec
from hetplan.tables import fmt_num


def model_summary(spec: ModelSpec) -> dict:
    """Architecture and derived figures; byte figures in bytes, FLOPs per token at context 0
    and at 4096 tokens."""
    return {
        "name": spec.name,
        "architecture": spec.architecture,
        "num_layers": spec.num_layers,
        "hidden_size": spec.hidden_size,
        "num_attention_heads": spec.num_attention_heads,
        "num_kv_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "attention": "mla" if spec.mla else "gqa",
        "moe": spec.moe.model_dump() if spec.moe else None,
        "sliding_window": spec.sliding_window,
        "native_dtype": spec.native_dtype,
        "max_position_embeddings": spec.max_position_embeddings,
        "total_params": spec.total_params,
        "active_params": spec.active_params,
        "weight_bytes": {d: spec.weight_bytes(d) for d in DTYPES},
        "kv_bytes_per_token": {d: spec.kv_bytes_per_token(d) for d in DTYPES},
        "flops_per_token_ctx0": spec.flops_per_token(0),
        "flops_per_token_ctx4096": spec.flops_per_token(4096),
    }


def model_summary_text(spec: ModelSpec) -> str:
    s = model_summary(spec)
    lines = [
        f"{spec.name}  ({spec.architecture})",
        f"  layers {spec.num_layers}, hidden {spec.hidden_size}, heads {spec.num_attention_heads}"
        f" (kv {spec.num_kv_heads}, head_dim {spec.head_dim}), attention {s['attention']}",
    ]
    if spec.moe:
        m = spec.moe
        lines.append(f"  MoE: {m.num_experts} experts, {m.experts_per_token} active, "
                     f"{m.num_shared_experts} shared, expert FFN {m.expert_intermediate_size}, "
                     f"{spec.num_dense_layers} dense layers")
    if spec.sliding_window:
        lines.append(f"  sliding window {spec.sliding_window} on {len(spec.sliding_layers)} layers")
    lines += [
        f"  params: total {spec.total_params / 1e9:.2f} B, active {spec.active_params / 1e9:.2f} B"
        f" (native {spec.native_dtype})",
        "  weights GB:  " + ", ".join(f"{d} {fmt_num(spec.weight_bytes(d) / 1e9)}"
                                      for d in DTYPES),
        "  KV bytes/token: " + ", ".join(f"{d} {fmt_num(spec.kv_bytes_per_token(d))}"
                                         for d in DTYPES),
        f"  GFLOPs/token: {spec.flops_per_token(0) / 1e9:.1f} at context 0, "
        f"{spec.flops_per_token(4096) / 1e9:.1f} at 4096",
    ]
    return "\n".join(lines)
