"""Mixture-of-experts step costs with expert parallelism (EP) and data-parallel attention.

Shapes with `ep` (ReplicaShape) serve a MoE model the way vLLM's `--enable-expert-parallel`
does; `dp` > 1 adds data-parallel attention ranks (`--data-parallel-size`). With EP the
E routed experts of a stage are spread whole over its ep = tp x dp GPUs, ceil(E / ep) on the
busiest one (vLLM 0.33's determine_expert_map, fused_moe/expert_map_manager.py, gives a
remainder to the first ranks, so ep need not divide E); without EP every GPU holds a 1/tp
slice of every expert (roofline.py). For a step of T new tokens and S sequences, each routed
to k of the E experts:

- Non-expert work (attention, dense MLPs, shared experts, router, LM head, norms) runs per
  DP rank on its share of the T tokens and S sequences (see dp_divisor), TP-split inside
  the rank; every rank reads its own copy of those weights (replicated dp times in memory).
- Routed experts: the busiest GPU computes g x T k / ep token-expert products and reads
  min(ceil(E/ep), g x ceil(E/ep) x p) experts, with p = 1 - (1 - k/E)^T the chance that a
  given expert is hit (the expectation roofline.py uses for TP-sliced experts).
- g, the expert load imbalance (max / mean token-expert pairs per GPU), is
  EXPERT_ROUTING_SKEW x the chance straggler of uniform routing. A token's k distinct
  experts put a hypergeometric count on each GPU's block of E/ep experts; over T tokens a
  GPU's count has mean T k / ep and, with the bins' negative correlation (sum fixed), the
  busiest exceeds the mean by about z_ep x sqrt(T k / ep x (E - k)/(E - 1)) (normal
  approximation), where z_n is the expected maximum of n standard normals by Blom's formula
  Phi^-1((n - 3/8)/(n + 1/4)) (G. Blom, Statistical Estimates and Transformed Beta
  Variables, 1958). So g = 1 + z_ep sqrt(ep (E - k) / (T k (E - 1))), capped where every
  pair lands on one GPU; tests/test_moe_ep.py checks it against a routing simulation.
  Assumption: routing is otherwise uniform (EXPERT_ROUTING_SKEW = 1.0), i.e. the model's
  trained load balancing plus an expert load balancer (DeepSeek's EPLB, vLLM's
  `--enable-eplb`) remove the popularity skew; raise it for skewed traffic. TP-sliced
  experts have no such straggler (every GPU does 1/tp of every expert).
- Dispatch and combine (dp > 1): vLLM's default all2all backend, allgather_reducescatter
  (vLLM 0.33 ParallelConfig.all2all_backend; the emitters pick no other), all-gathers every
  rank's tokens over the dp ranks before the experts and reduce-scatters the outputs after
  them; each is a ring over dp GPUs that moves (dp - 1)/dp x T x hidden x DISPATCH_BYTES per
  GPU in dp - 1 latency-bound steps, per MoE layer. The TP all-reduces inside a rank stay
  (2 per layer, of T/dp tokens; roofline.py). Dispatch in bf16 (no FP8 dispatch assumed).
  A sparse all-to-all (DeepEP) would move k (ep - 1)/ep^2 x T x hidden per GPU instead:
  the same volume at k = ep = 8, less for ep > k. With dp = 1 (EP = TP) there is no
  dispatch: the rank's tokens are already on every GPU and the TP all-reduce combines.
- The link is the stage's intra-node fabric (NVLink / xGMI / PCIe, links.intra_node): a
  stage's GPUs share a node (ReplicaShape rules), so the scale-out NIC is never crossed.
- DP ranks step in lockstep and a sequence lives on one rank, so the busiest rank, with
  ceil(S/dp) of the S sequences (vLLM's DP load balancer spreads them evenly), sets the
  pace: non-expert work is scaled by dp_divisor = S / ceil(S/dp) (1 for one prompt: a
  single prefill runs on one rank while the others idle).
- KV cache: per rank, for its own sequences, so a replica holds dp x one rank's tokens.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from hetplan.dtypes import bytes_per_element
from hetplan.model import ModelSpec
from hetplan.perf.links import Link
from hetplan.perf.shape import ReplicaShape

EXPERT_ROUTING_SKEW = 1.0   # max/mean expert popularity beyond chance (assumption: balanced)
DISPATCH_BYTES = 2.0        # bytes per hidden element in dispatch and combine (bf16)


def dp_divisor(shape: ReplicaShape, seqs: float) -> float:
    """S / ceil(S / dp): the busiest DP rank does 1/dp_divisor of a step's per-sequence work."""
    if shape.dp <= 1 or seqs <= 0:
        return 1
    return seqs / math.ceil(seqs / shape.dp - 1e-9)


def experts_per_gpu(model: ModelSpec, shape: ReplicaShape) -> int:
    """Routed experts on the busiest GPU of a stage."""
    assert model.moe is not None
    return math.ceil(model.moe.num_experts / shape.ep_size)


def load_imbalance(model: ModelSpec, shape: ReplicaShape, tokens: float) -> float:
    """Max / mean token-expert pairs per GPU of the EP group (see the module docstring)."""
    assert model.moe is not None
    ep, k, e = shape.ep_size, model.moe.experts_per_token, model.moe.num_experts
    pairs = tokens * k
    if ep <= 1 or pairs <= 0:
        return EXPERT_ROUTING_SKEW
    z = NormalDist().inv_cdf((ep - 0.375) / (ep + 0.25))     # Blom: E[max of ep normals]
    straggler = 1.0 + z * math.sqrt(ep * (e - k) / (pairs * max(e - 1, 1)))
    # a token's k experts are distinct, so one GPU gets at most min(k, its experts) of them
    cap = ep * min(k, experts_per_gpu(model, shape)) / k
    return min(EXPERT_ROUTING_SKEW * straggler, cap)


def routed_flops(model: ModelSpec, tokens: float) -> float:
    """Matmul FLOPs of the routed experts for `tokens` tokens (all MoE layers)."""
    assert model.moe is not None
    return 2.0 * model.expert_params() * model.moe.experts_per_token * tokens \
        * model.num_moe_layers


def expected_experts_touched(num_experts: int, k: int, tokens: float) -> float:
    """Expected distinct experts hit by `tokens` tokens each routed to k of E uniformly."""
    if tokens <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - k / num_experts) ** tokens)


def routed_bytes_read(model: ModelSpec, weight_dtype: str, tokens: float) -> float:
    """Routed-expert bytes a TP-sliced replica streams for `tokens` (roofline.py's term)."""
    assert model.moe is not None
    m = model.moe
    touched = expected_experts_touched(m.num_experts, m.experts_per_token, tokens)
    return touched * model.expert_params() * bytes_per_element(weight_dtype) \
        * model.num_moe_layers


def ep_gemm_per_gpu(model: ModelSpec, shape: ReplicaShape, tokens: float, seqs: float,
                    rank_flops: float, rank_bytes: float) -> tuple[float, float]:
    """(matmul FLOPs, weight bytes read) of the busiest GPU of an EP stage in one step.
    rank_flops / rank_bytes: roofline.py's gemm_flops / weight_bytes_read of the busiest DP
    rank's share of the step (tokens and seqs over dp_divisor), TP-sliced experts included;
    their routed-expert part is swapped for whole experts here."""
    rank_tokens = tokens / dp_divisor(shape, seqs)
    r_flops, r_bytes = ep_routed_per_gpu(model, shape, tokens)
    flops = (rank_flops - routed_flops(model, rank_tokens)) / shape.tp + r_flops
    wbytes = ((rank_bytes - routed_bytes_read(model, shape.weight_dtype, rank_tokens)) / shape.tp
              + r_bytes)
    return flops, wbytes


def ep_routed_per_gpu(model: ModelSpec, shape: ReplicaShape,
                      tokens: float) -> tuple[float, float]:
    """(FLOPs, weight bytes) of the routed experts on the busiest GPU of an EP stage: its
    share of the routed work times the load imbalance, and the local experts it touches."""
    assert model.moe is not None
    m = model.moe
    g = load_imbalance(model, shape, tokens)
    local = experts_per_gpu(model, shape)
    p_hit = expected_experts_touched(m.num_experts, m.experts_per_token, tokens) / m.num_experts
    b = bytes_per_element(shape.weight_dtype)
    return (g * routed_flops(model, tokens) / shape.ep_size,
            min(local, g * local * p_hit) * model.expert_params() * b * model.num_moe_layers)


def dispatch_combine_s(model: ModelSpec, shape: ReplicaShape, tokens: float, link: Link,
                       efficiency: float) -> float:
    """Seconds of dispatch + combine over all MoE layers of a step (0 unless dp > 1)."""
    n = shape.dp
    if not shape.ep or n <= 1 or tokens <= 0:
        return 0.0
    nbytes = tokens * model.hidden_size * DISPATCH_BYTES
    bw = link.bytes_per_s_at(efficiency)
    one = (n - 1) / n * nbytes / bw + (n - 1) * link.latency_us * 1e-6
    return 2.0 * one * model.num_moe_layers


def weight_bytes_per_gpu(model: ModelSpec, shape: ReplicaShape) -> float:
    """Weights one GPU holds: non-expert weights split over tp (replicated per DP rank),
    routed experts ceil(E / ep) whole on the busiest GPU, all split over pp stages."""
    assert model.moe is not None
    b = bytes_per_element(shape.weight_dtype)
    routed = model.expert_params() * model.moe.num_experts * model.num_moe_layers * b
    rest = model.weight_bytes(shape.weight_dtype) - routed
    local = experts_per_gpu(model, shape) * model.expert_params() * model.num_moe_layers * b
    return (rest / shape.tp + local) / shape.pp
