"""Measured-roofline time of one engine step.

A step processes `new_tokens` tokens from `seqs` sequences (prefill chunks and/or decode
tokens). Per GPU of a TP group, with peak P (TFLOPS), bandwidth B and calibrated
efficiencies e_*:

    t_gemm = max(gemm_flops / (P_w e_c), weight_bytes_read / (B e_m))
    t_attn = max(attn_flops / (P_bf16 e_a), kv_bytes_read / (B e_m))
    t_comm = 2 all-reduces per layer of new_tokens x hidden activations (measured table, or
             the engine's algorithm for that size and link: `collectives.py`)
           + pipeline-stage sends when pp > 1
    t_elem = activation bytes of element-wise ops (norms fused with the residual adds, RoPE,
             SiLU*mul) / (B e_m): ACT_PASSES_HIDDEN reads+writes of a hidden vector,
             ACT_PASSES_QK of the rank's q/k heads and ACT_PASSES_FFN of its FFN-width
             vector per token per layer (counted from vLLM's fused layer, approximate)
    t_gpu  = t_gemm + t_attn + t_elem + t_comm + kernels x kernel_overhead
    t_step = t_gpu + step_overhead                                  (CUDA-graph step)
    t_step = max(t_gpu, layers x layer_launch) + step_overhead      (eager step)

Engine mode: a step of at most the engine's CUDA-graph capture size (`EngineLimits.
graph_capture_max_tokens`; decode steps and short chunks) is replayed from a graph and pays no
per-layer launch cost. A larger step (or any step with enforce_eager) launches its kernels from
the CPU, `layer_overhead_us` per layer; the GPU hides that behind its own work unless the
work is shorter (small batches of deep models), hence the max. `step_overhead_ms` is the
engine's per-step cost outside the GPU's kernels (scheduling, input preparation, sampling,
the graph launch), fitted to end-to-end rows of current engines. `kernel_overhead_us` is the
GPU's own fixed cost per kernel (the gap between kernels, ramp-up and tail of a kernel too
small to fill the GPU), charged for the kernels a layer launches (`kernels_per_layer`, an
estimate of what vLLM's fused kernels amount to): it is what makes small-batch decode of a
deep MoE model slower than its bytes say.

Per-op measured tables (`optables.py`, derived from kernel measurements) replace the
roofline x scalar efficiency where they cover the op: GEMMs of dense models (by tokens and
weight size, per dtype) and the all-reduce (by bytes and TP). Attention and element-wise
work stay roofline x calibration (the simulator needs attention linear in keys and KV
bytes; the decode- and context-attention tables are kept for the calibration fit and a later
step). `StepBreakdown.sources` says, per op, which was used.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hetplan.catalog import GPU
from hetplan.dtypes import bytes_per_element
from hetplan.model import ModelSpec
from hetplan.perf import moe
from hetplan.perf.moe import expected_experts_touched
from hetplan.perf.calibration import Calibration
from hetplan.perf.collectives import allreduce_model
from hetplan.perf.links import Link
from hetplan.perf.shape import ReplicaShape

if TYPE_CHECKING:
    from hetplan.perf.optables import OpTables

ACT_BYTES = 2.0   # activations exchanged in 16-bit
# Element-wise passes per token per layer (reads + writes of a 16-bit vector). Hidden width,
# replicated on every TP rank: the 2 RMSNorms, each fused with the residual add before it
# (vLLM's fused_add_rms_norm, or its torch.compile equivalent: reads x and the residual,
# writes both: 4). The rank's q and k heads: RoPE in place (read + write: 2), split by TP.
# FFN width, split by TP: SiLU and the gate product (reads 2, writes 1: 3).
ACT_PASSES_HIDDEN = 8
ACT_PASSES_QK = 2
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
    cuda_graph: bool = True
    sources: tuple[tuple[str, str], ...] = ()
    gpu_s: float = 0.0          # the GPU's work (what hides an eager step's launches)
    launch_s: float = 0.0       # an eager step's CPU launch time (0 under a CUDA graph)

    @property
    def total_s(self) -> float:
        return (self.gemm_s + self.attention_s + self.elementwise_s + self.comm_s
                + self.overhead_s)

    @property
    def op_sources(self) -> dict[str, str]:
        """Per op, where its time came from: `table:...` (measured per-op table),
        `model:...` (an algorithm model) or `roofline x calibration`."""
        return dict(self.sources)


@dataclass(frozen=True)
class StepHardware:
    """What a step's time needs besides the model and the shape: the GPU, its calibration,
    its intra-node link, the engine's CUDA-graph capture size, per-op tables if any."""

    gpu: GPU
    cal: Calibration
    link: Link
    graph_max_tokens: int
    tables: "OpTables | None" = None


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


def kv_shard_factor(model: ModelSpec, tp: int) -> int:
    """How many ways the KV cache is split across a TP group: KV heads shard up to their
    count (replicated beyond); MLA's single latent is replicated on every rank."""
    if model.mla is not None:
        return 1
    return min(tp, model.num_kv_heads)


ROOFLINE = "roofline x calibration"


def rope_elements_per_token(model: ModelSpec) -> float:
    """Elements of one token's q and k that RoPE rotates in a layer (whole replica): every
    query and KV head (GQA), or MLA's rotary part of each query head and its one shared
    rotary key."""
    if model.mla is not None:
        return float((model.num_attention_heads + 1) * model.mla.qk_rope_head_dim)
    return float((model.num_attention_heads + model.num_kv_heads) * model.head_dim)


KERNELS_ATTENTION_BLOCK = 6   # fused add+norm, QKV GEMM, RoPE+KV write, attention, O GEMM, norm
KERNELS_MLA_EXTRA = 3         # low-rank q/kv up-projections and the latent norm
KERNELS_DENSE_MLP = 3         # gate+up GEMM, SiLU*mul, down GEMM
KERNELS_MOE_MLP = 7           # router GEMM, top-k, token sort, 2 grouped GEMMs, act, combine
KERNELS_SHARED_EXPERT = 3     # a shared expert is a dense MLP beside the routed ones
KERNELS_TP_COLLECTIVES = 2    # one all-reduce after attention, one after the MLP


def kernels_per_layer(model: ModelSpec, tp: int) -> float:
    """Mean kernels one layer launches in a step (approximate: counted from vLLM's fused
    layer structure, not measured; the fitted kernel_overhead_us absorbs the error)."""
    attn = KERNELS_ATTENTION_BLOCK + (KERNELS_MLA_EXTRA if model.mla is not None else 0)
    if tp > 1:
        attn += KERNELS_TP_COLLECTIVES
    moe_mlp = 0.0
    if model.moe is not None:
        moe_mlp = KERNELS_MOE_MLP + (KERNELS_SHARED_EXPERT if model.moe.num_shared_experts else 0)
    mlp = (model.num_dense_layers * KERNELS_DENSE_MLP
           + model.num_moe_layers * moe_mlp) / model.num_layers
    return attn + mlp


def gemm_roofline_parts_s(gpu: GPU, dtype: str, m, n, k, weight_dtype: str | None = None):
    """(compute s, memory s) of an m x k by k x n GEMM at 100% of the catalog's peak and
    bandwidth: its FLOPs at `dtype`'s peak; the bytes it moves: the n x k weights
    (`weight_dtype`, default `dtype`), the m x k activations in `dtype` and the 16-bit m x n
    output. Scalars or numpy arrays."""
    w_bpe = bytes_per_element(weight_dtype or dtype)
    flops_s = 2 * m * n * k / (gpu.tflops(dtype) * 1e12)
    bytes_s = (w_bpe * n * k + bytes_per_element(dtype) * m * k + 2.0 * m * n) \
        / gpu.mem_bw_bytes_per_s
    return flops_s, bytes_s


def gemm_roofline_s(gpu: GPU, dtype: str, m, n, k):
    """The larger of `gemm_roofline_parts_s`: the roofline the GEMM tables' efficiencies are
    defined against (optable_import.derive_gemm: this / the measured time), and so the one
    the step prices each matmul at (this / the table's efficiency), which reproduces a
    table point exactly."""
    return np.maximum(*gemm_roofline_parts_s(gpu, dtype, m, n, k))


def block_gemm_shapes(model: ModelSpec, tp: int) -> tuple[tuple[float, float], ...]:
    """(n, k) of each matmul of one dense layer on one of `tp` GPUs: QKV and gate+up split
    along n (column-parallel), O and down along k (row-parallel) (MLA: its attention
    projections as one k = hidden matmul, approximate). KV heads are divided by TP like the
    rest (replicated KV heads at TP > KV heads are left out, as in the weight bytes). Biases
    and norms left out."""
    h, hd = model.hidden_size, model.head_dim
    if model.mla is not None:
        attn: tuple[tuple[float, float], ...] = (
            (model.attention_params_per_layer() / h / tp, float(h)),)
    else:
        attn = (((model.num_attention_heads + 2 * model.num_kv_heads) * hd / tp, float(h)),
                (float(h), model.num_attention_heads * hd / tp))
    inter = model.intermediate_size
    return attn + ((2.0 * inter / tp, float(h)), (float(h), inter / tp))


def prefill_gemm_scale(compute_dtype: str, compute_scale: float) -> float:
    """The prefill derate (Calibration.prefill_compute_scale) that a step's matmuls take.

    It stands for the unfused work around 16-bit matmuls that isolated GEMM timings leave out.
    Matmuls computed in a quantized format (fp8, int8, fp4) take none: their efficiencies
    (per-op tables and `compute_efficiency_by_dtype`) were timed on the engine's quantized
    linear layer, whose forward already holds the per-call activation quantization, the
    largest such unfused pass, which a whole model's engine can fuse into the norm or
    activation kernel before it. Charging the derate on top priced the FP8 prefills of both
    validation tables on H100 36-53% slow at 500-5000 tokens (2026-11-30; after: +10% to +25%,
    see tests/data/modern_perf.md, "Prefill").

    Attention takes none either: its efficiency is the engine's own attention kernel timed
    whole (aiconfigurator's context-attention tables), with no unfused pass around it left
    out. Derating it priced H100's long-prompt attention 33% slower than H200's on the same
    GH100 compute, while InferenceX measured the two within 3% at 7373-token prompts
    (tests/data/modern_perf.md, "Fourth pass")."""
    return compute_scale if bytes_per_element(compute_dtype) >= 2.0 else 1.0


def _table_grid(hw: StepHardware, op: str, dtype: str):
    """The measured efficiency grid of `op` ("gemm" | "moe") for `dtype` that this GPU's
    calibration uses (None: roofline x calibration)."""
    if hw.tables is None or op not in hw.cal.optable_ops:
        return None
    tables = {"gemm": hw.tables.gemm_efficiency, "moe": hw.tables.moe_efficiency}[op]
    return tables.get(dtype)


def _scalar_time(cal: Calibration, dtype: str, scale: float, t_compute: float,
                 t_memory: float) -> tuple[float, bool]:
    """Roofline x the calibration's scalar efficiencies, and whether compute-bound."""
    t_c = t_compute / (cal.compute_efficiency_for(dtype) * scale)
    t_m = t_memory / cal.memory_efficiency
    return max(t_c, t_m), t_c >= t_m


def _at_efficiency(t_compute: float, t_memory: float, eff: float, scale: float) -> float:
    """Roofline time at a measured efficiency; the prefill derate applies to compute-bound
    work only."""
    return max(t_compute, t_memory) / (eff * (scale if t_compute >= t_memory else 1.0))


def _non_decreasing(time_at: Callable[[float], float], tokens: float, grid,
                    key: tuple | None = None) -> float:
    """time_at(tokens), never less than at a smaller table point m < tokens: a bigger matmul
    cannot be faster, though an efficiency interpolated between two table points can rise
    faster than m does (within a segment the time is convex in log m, so checking the
    table's points suffices). `key`: values that determine time_at besides the grid; given,
    time_at at the table's points is computed once per (grid, key) (`_at_points`)."""
    if key is None:
        return max([time_at(tokens)] + [time_at(m) for m in grid.x if m < tokens])
    at = _at_points(time_at, grid, key)
    return max([time_at(tokens)] + [t for m, t in zip(grid.x, at) if m < tokens])


_POINTS: dict[tuple, tuple[object, list[float]]] = {}
_POINTS_MAX = 4096


def _at_points(time_at: Callable[[float], float], grid, key: tuple) -> list[float]:
    """time_at at every point of the grid's token axis, memoised by the grid's identity and
    `key` (every step time of a shape asks for the same points). The grid is kept with its
    values, so a new grid at a reused id() misses instead of reading another's points."""
    k = (id(grid), *key)
    hit = _POINTS.get(k)
    if hit is None or hit[0] is not grid:
        if len(_POINTS) >= _POINTS_MAX:
            _POINTS.clear()
        hit = _POINTS[k] = (grid, [time_at(m) for m in grid.x])
    return hit[1]


def _gemm_time(model: ModelSpec, hw: StepHardware, shape: ReplicaShape, tokens: float,
               seqs: float, compute_dtype: str, scale: float) -> tuple[float, bool, str]:
    """Seconds of the step's matmuls on one GPU, whether compute-bound, and the source.

    With a measured GEMM table (dense models): each of a layer's matmuls, and the LM head
    (m = sequences), is timed as roofline / efficiency(m, its n x k per GPU), so the large
    MLP matmuls get their own (higher) efficiency, kept non-decreasing in tokens."""
    gpu, cal, tp = hw.gpu, hw.cal, shape.tp
    peak, bw = gpu.tflops(compute_dtype) * 1e12, gpu.mem_bw_bytes_per_s
    t_compute = gemm_flops(model, tokens, seqs) / tp / peak
    t_weights = weight_bytes_read(model, shape.weight_dtype, tokens, seqs) / tp / bw
    if model.moe is not None:
        return _moe_gemm_time(
            model, hw, compute_dtype, scale, tokens, t_compute, t_weights,
            lambda t: (moe.routed_flops(model, t) / tp,
                       moe.routed_bytes_read(model, shape.weight_dtype, t) / tp),
            model.expert_params() / tp)
    grid = _table_grid(hw, "gemm", compute_dtype)
    if grid is None:
        return (*_scalar_time(cal, compute_dtype, scale, t_compute, t_weights), ROOFLINE)
    wdt = shape.weight_dtype

    def matmul_s(m: float, n: float, k: float) -> float:
        """One matmul (per GPU) at the table's efficiency for its (m, n x k)."""
        eff = hw.tables.gemm_efficiency_at(compute_dtype, m, n * k).value
        return _at_efficiency(*gemm_roofline_parts_s(gpu, compute_dtype, m, n, k, wdt),
                              eff, scale)

    shapes = block_gemm_shapes(model, tp)
    t_block = _non_decreasing(
        lambda m: model.num_layers * sum(matmul_s(m, n, k) for n, k in shapes), tokens, grid,
        ("gemm", peak, bw, compute_dtype, wdt, scale, model.num_layers, *shapes))
    t_head = (matmul_s(seqs, model.vocab_size / tp, float(model.hidden_size))
              if seqs > 0 else 0.0)
    return t_block + t_head, t_compute >= t_weights, grid.source.label


def _moe_gemm_time(model: ModelSpec, hw: StepHardware, compute_dtype: str, scale: float,
                   tokens: float, t_compute: float, t_weights: float,
                   routed: Callable[[float], tuple[float, float]],
                   slice_elements: float) -> tuple[float, bool, str]:
    """Matmul seconds of a MoE model on one GPU: the routed experts at the measured MoE-layer
    efficiency for (tokens, `slice_elements` of each expert on the GPU) where the GPU has
    that table (small batches reach a small share of bandwidth: many thin expert slices),
    kept non-decreasing in tokens; the rest (attention projections, shared experts, dense
    layers, LM head) at roofline x calibration.

    t_compute, t_weights: the step's whole matmul roofline on the GPU (s). routed(t): the
    routed experts' (FLOPs, weight bytes) on the GPU for t tokens: TP-sliced experts
    (slice = expert / TP) or, with EP, the busiest GPU's whole experts (slice = one expert;
    approximate: the table measures TP-sliced layers, not EP ranks)."""
    cal, gpu = hw.cal, hw.gpu
    grid = _table_grid(hw, "moe", compute_dtype)
    if grid is None:
        return (*_scalar_time(cal, compute_dtype, scale, t_compute, t_weights), ROOFLINE)
    peak, bw = gpu.tflops(compute_dtype) * 1e12, gpu.mem_bw_bytes_per_s

    def routed_s(t: float) -> float:
        rf, rb = routed(t)
        eff = hw.tables.moe_efficiency_at(compute_dtype, t, slice_elements).value
        return _at_efficiency(rf / peak, rb / bw, eff, scale)

    rf, rb = routed(tokens)
    t_rest, _ = _scalar_time(cal, compute_dtype, scale, t_compute - rf / peak,
                             t_weights - rb / bw)
    return (t_rest + _non_decreasing(routed_s, tokens, grid), t_compute >= t_weights,
            grid.source.label)


def _allreduce_time(hw: StepHardware, nbytes: float, tp: int) -> tuple[float, str]:
    if tp <= 1 or nbytes <= 0:
        return 0.0, "none"
    if (hw.tables is not None and "allreduce" in hw.cal.optable_ops
            and (look := hw.tables.allreduce_s(nbytes, tp)) is not None):
        return look.value, look.source
    t = allreduce_model(nbytes, tp, hw.link, hw.gpu.intra_node_link,
                        hw.cal.collective_efficiency_for(tp))
    return t.seconds, t.source


def step_time(model: ModelSpec, hw: StepHardware, shape: ReplicaShape, *, new_tokens: float,
              seqs: float, attended_keys: float, kv_bytes_read: float,
              pp_link: Link | None = None, compute_scale: float = 1.0) -> StepBreakdown:
    """Time of one step on one replica (see the module docstring for the formula).

    new_tokens: tokens processed this step (prompt tokens + one per decoding sequence).
    seqs: sequences that produce a token this step (LM-head rows).
    attended_keys: sum over new tokens and layers of keys attended (ModelSpec.attended_keys_per_token).
    kv_bytes_read: KV-cache bytes read by attention (whole replica, before the TP split).
    compute_scale: multiplies the efficiency of 16-bit matmuls (a whole pass keeps less of
        peak than isolated kernels; Calibration.prefill_compute_scale; quantized matmuls and
        attention: `prefill_gemm_scale`).
    """
    gpu, cal = hw.gpu, hw.cal
    tp, pp = shape.tp, shape.pp
    ranks = moe.dp_divisor(shape, seqs)  # DP attention: the busiest rank's share is 1/ranks
    compute_dtype = shape.weight_dtype if gpu.supports(shape.weight_dtype) else "bf16"
    peak_attn = gpu.tflops("bf16" if gpu.supports("bf16") else "fp16") * 1e12
    bw = gpu.mem_bw_bytes_per_s
    gemm_scale = prefill_gemm_scale(compute_dtype, compute_scale)

    if shape.ep:                        # whole experts per GPU (moe.py)
        flops, wbytes = moe.ep_gemm_per_gpu(
            model, shape, new_tokens, seqs,
            gemm_flops(model, new_tokens / ranks, seqs / ranks),
            weight_bytes_read(model, shape.weight_dtype, new_tokens / ranks, seqs / ranks))
        peak = gpu.tflops(compute_dtype) * 1e12
        gemm_s, bound, gemm_src = _moe_gemm_time(
            model, hw, compute_dtype, gemm_scale, new_tokens, flops / peak, wbytes / bw,
            lambda t: moe.ep_routed_per_gpu(model, shape, t), float(model.expert_params()))
    else:
        gemm_s, bound, gemm_src = _gemm_time(model, hw, shape, new_tokens, seqs,
                                             compute_dtype, gemm_scale)

    attn_flops = model.attention_flops_per_key() * attended_keys / ranks / tp
    kv_per_gpu = kv_bytes_read / ranks / kv_shard_factor(model, tp)
    attention_s = max(attn_flops / (peak_attn * cal.attention_efficiency),
                      kv_per_gpu / (bw * cal.memory_efficiency))

    ffn = model.moe.expert_intermediate_size * model.moe.experts_per_token if model.moe \
        else model.intermediate_size
    elem_bytes = new_tokens / ranks * model.num_layers * ACT_BYTES * (
        ACT_PASSES_HIDDEN * model.hidden_size
        + (ACT_PASSES_QK * rope_elements_per_token(model) + ACT_PASSES_FFN * ffn) / tp)
    elementwise_s = elem_bytes / (bw * cal.memory_efficiency)

    act = new_tokens / ranks * model.hidden_size * ACT_BYTES
    one_ar_s, ar_src = _allreduce_time(hw, act, tp)
    comm_s = 2 * model.num_layers * one_ar_s
    if shape.ep:                        # expert dispatch + combine across DP ranks (moe.py)
        comm_s += moe.dispatch_combine_s(model, shape, new_tokens, hw.link,
                                         cal.collective_efficiency_for(shape.dp))
    if pp > 1:
        link = pp_link or hw.link
        comm_s += (pp - 1) * (act / link.achieved_bytes_per_s + link.latency_us * 1e-6)

    kernel_s = model.num_layers * kernels_per_layer(model, tp) * cal.kernel_overhead_us * 1e-6
    gpu_s = gemm_s + attention_s + elementwise_s + comm_s + kernel_s
    graph = uses_cuda_graph(hw, new_tokens)
    launch_s = 0.0 if graph else eager_launch_s(model, cal)
    overhead_s = cal.step_overhead_ms * 1e-3 + kernel_s + max(0.0, launch_s - gpu_s)
    sources = (("gemm", gemm_src), ("attention", ROOFLINE), ("elementwise", ROOFLINE),
               ("allreduce", ar_src),
               ("overhead", "calibration step_overhead_ms + kernel_overhead_us" + (
                   " (CUDA graph)" if graph else " + eager launch layer_overhead_us")))
    return StepBreakdown(gemm_s=gemm_s, attention_s=attention_s, elementwise_s=elementwise_s,
                         comm_s=comm_s, overhead_s=overhead_s, gemm_compute_bound=bound,
                         cuda_graph=graph, sources=sources, gpu_s=gpu_s, launch_s=launch_s)


def uses_cuda_graph(hw: StepHardware, new_tokens: float) -> bool:
    """Whether a step of `new_tokens` replays a CUDA graph (at most the capture size)."""
    return new_tokens <= hw.graph_max_tokens


def eager_launch_s(model: ModelSpec, cal: Calibration) -> float:
    """CPU time to launch one step's kernels without a CUDA graph: `layer_overhead_us` per
    layer. The step takes the larger of it and the GPU's work (`step_time`)."""
    return model.num_layers * cal.layer_overhead_us * 1e-6
