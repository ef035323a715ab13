"""Measured-roofline time of one engine step.

A step processes `new_tokens` tokens from `seqs` sequences (prefill chunks and/or decode
tokens). Per GPU of a TP group, with peak P (TFLOPS), bandwidth B and calibrated
efficiencies e_*:

    t_gemm = max(gemm_flops / (P_w e_c), weight_bytes_read / (B e_m))
    t_attn = max(attn_flops / (P_bf16 e_a), kv_bytes_read / (B e_m))
    t_comm = 2 all-reduces per layer of new_tokens x hidden activations (ring over the link)
           + pipeline-stage sends when pp > 1
    t_elem = activation bytes of element-wise ops (norms, residual adds, RoPE, SiLU*mul)
             / (B e_m): about ACT_PASSES_HIDDEN reads+writes of a hidden vector and
             ACT_PASSES_FFN of an FFN-width vector per token per layer (approximate)
    t_step = t_gemm + t_attn + t_elem + t_comm + step_overhead + layers x layer_overhead

Assumptions: GEMM and attention kernels do not overlap each other; all-reduces are not
overlapped with compute; with PP the step latency covers all stages in sequence (throughput
gains from interleaving micro-batches are credited by the callers, not here); MoE experts
are sharded with TP (vLLM's default), and a step reads only the experts its tokens touch,
expected E(1 - (1 - k/E)^n) of E per MoE layer for n tokens with k routed each. Shapes with
expert parallelism and data-parallel attention (ReplicaShape.ep / dp) take their expert
work, dispatch and combine from `moe.py`; attention, element-wise work and the TP
all-reduces then see the busiest DP rank's share of the step (`moe.dp_divisor`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplan.catalog import GPU
from hetplan.dtypes import bytes_per_element
from hetplan.model import ModelSpec
from hetplan.perf import moe
from hetplan.perf.moe import expected_experts_touched
from hetplan.perf.calibration import Calibration
from hetplan.perf.links import Link
from hetplan.perf.shape import ReplicaShape

ACT_BYTES = 2.0   # activations exchanged in 16-bit
# Element-wise passes per token per layer (reads + writes): 2 RMSNorms (2 each), 2 residual
# adds (3 each), RoPE on q/k (~2) over hidden-width vectors; SiLU and the gate product over
# FFN-width vectors (3). Hidden-width work is replicated on every TP rank; FFN-width is split.
ACT_PASSES_HIDDEN = 12
ACT_PASSES_FFN = 3


@dataclass(frozen=True)
class StepBreakdown:
    """Seconds spent per component of one step (for reports and tests)."""

    gemm_s: float
    attention_s: float
    elementwise_s: float
    comm_s: float
    overhead_s: float
    gemm_compute_bound: bool

    @property
    def total_s(self) -> float:
        return (self.gemm_s + self.attention_s + self.elementwise_s + self.comm_s
                + self.overhead_s)


def weight_bytes_read(model: ModelSpec, weight_dtype: str, tokens: float, seqs: float) -> float:
    """Bytes of weights one step streams from memory (whole replica, before TP split):
    attention and dense-MLP weights, the experts the step's tokens touch, the LM head."""
    b = bytes_per_element(weight_dtype)
    dense = (model.attention_params_per_layer() * model.num_layers
             + model.dense_mlp_params() * model.num_dense_layers)
    if model.moe is not None:
        m = model.moe
        touched = expected_experts_touched(m.num_experts, m.experts_per_token, tokens)
        per_layer = (touched * model.expert_params() + model.router_params()
                     + m.num_shared_experts * 3 * model.hidden_size * m.expert_intermediate_size)
        dense += per_layer * model.num_moe_layers
    norms = 2 * model.hidden_size * model.num_layers
    lm_head = model.vocab_size * model.hidden_size if seqs > 0 else 0.0
    return dense * b + (norms + lm_head) * 2.0


def gemm_flops(model: ModelSpec, tokens: float, seqs: float) -> float:
    """Matmul FLOPs of a step: block weights for every new token, LM head only for the
    last token of each sequence (vLLM computes logits for sampled positions only)."""
    block = model.block_params(active=True) - 2 * model.hidden_size * model.num_layers
    return 2.0 * (block * tokens + model.vocab_size * model.hidden_size * seqs)


def ring_allreduce_s(nbytes: float, n: int, link: Link, efficiency: float) -> float:
    """Ring all-reduce of `nbytes` over n GPUs: 2(n-1)/n of the data crosses each link,
    in 2(n-1) latency-bound steps."""
    if n <= 1 or nbytes <= 0:
        return 0.0
    bw = link.bandwidth_gbit_per_s * 1e9 / 8.0 * efficiency
    return 2.0 * (n - 1) / n * nbytes / bw + 2.0 * (n - 1) * link.latency_us * 1e-6


def kv_shard_factor(model: ModelSpec, tp: int) -> int:
    """How many ways the KV cache is split across a TP group: KV heads shard up to their
    count (replicated beyond); MLA's single latent is replicated on every rank."""
    if model.mla is not None:
        return 1
    return min(tp, model.num_kv_heads)


def step_time(model: ModelSpec, gpu: GPU, shape: ReplicaShape, cal: Calibration,
              intra_link: Link, *, new_tokens: float, seqs: float, attended_keys: float,
              kv_bytes_read: float, pp_link: Link | None = None,
              compute_scale: float = 1.0) -> StepBreakdown:
    """Time of one step on one replica (see the module docstring for the formula).

    new_tokens: tokens processed this step (prompt tokens + one per decoding sequence).
    seqs: sequences that produce a token this step (LM-head rows).
    attended_keys: sum over new tokens and layers of keys attended (ModelSpec.attended_keys_per_token).
    kv_bytes_read: KV-cache bytes read by attention (whole replica, before the TP split).
    compute_scale: multiplies the compute and attention efficiencies (a whole pass keeps
        less of peak than isolated kernels; Calibration.prefill_compute_scale).
    """
    tp, pp = shape.tp, shape.pp
    ranks = moe.dp_divisor(shape, seqs)  # DP attention: the busiest rank's share is 1/ranks
    compute_dtype = shape.weight_dtype if gpu.supports(shape.weight_dtype) else "bf16"
    peak_w = gpu.tflops(compute_dtype) * 1e12
    peak_attn = gpu.tflops("bf16" if gpu.supports("bf16") else "fp16") * 1e12
    bw = gpu.mem_bw_bytes_per_s

    flops = gemm_flops(model, new_tokens, seqs) / tp
    wbytes = weight_bytes_read(model, shape.weight_dtype, new_tokens, seqs) / tp
    if shape.ep:                        # whole experts per GPU (moe.py)
        flops, wbytes = moe.ep_gemm_per_gpu(
            model, shape, new_tokens, seqs,
            gemm_flops(model, new_tokens / ranks, seqs / ranks),
            weight_bytes_read(model, shape.weight_dtype, new_tokens / ranks, seqs / ranks))
    scale = compute_scale
    t_compute = flops / (peak_w * cal.compute_efficiency_for(compute_dtype) * scale)
    t_weights = wbytes / (bw * cal.memory_efficiency)
    gemm_s = max(t_compute, t_weights)

    attn_flops = model.attention_flops_per_key() * attended_keys / ranks / tp
    kv_per_gpu = kv_bytes_read / ranks / kv_shard_factor(model, tp)
    attention_s = max(attn_flops / (peak_attn * cal.attention_efficiency * scale),
                      kv_per_gpu / (bw * cal.memory_efficiency))

    ffn = model.moe.expert_intermediate_size * model.moe.experts_per_token if model.moe \
        else model.intermediate_size
    elem_bytes = new_tokens / ranks * model.num_layers * ACT_BYTES * (
        ACT_PASSES_HIDDEN * model.hidden_size + ACT_PASSES_FFN * ffn / tp)
    elementwise_s = elem_bytes / (bw * cal.memory_efficiency)

    act = new_tokens / ranks * model.hidden_size * ACT_BYTES
    comm_s = 2 * model.num_layers * ring_allreduce_s(act, tp, intra_link,
                                                     cal.collective_efficiency_for(tp))
    if shape.ep:                        # expert dispatch + combine across DP ranks (moe.py)
        comm_s += moe.dispatch_combine_s(model, shape, new_tokens, intra_link,
                                         cal.collective_efficiency_for(shape.dp))
    if pp > 1:
        link = pp_link or intra_link
        comm_s += (pp - 1) * (act / link.achieved_bytes_per_s + link.latency_us * 1e-6)

    overhead_s = cal.step_overhead_ms * 1e-3 + model.num_layers * cal.layer_overhead_us * 1e-6
    return StepBreakdown(gemm_s=gemm_s, attention_s=attention_s, elementwise_s=elementwise_s,
                         comm_s=comm_s, overhead_s=overhead_s,
                         gemm_compute_bound=t_compute >= t_weights)
