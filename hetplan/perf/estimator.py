"""PerfModel: prefill, decode and mixed-step latencies, VRAM fit and KV transfer for one
model on any catalog GPU, from the roofline in `roofline.py` and per-GPU calibrations.

Units: seconds in `*_s`, bytes in `*_bytes`, tokens in `*_tokens`. The engine limits
(`hetplan.engine_limits`) set the VRAM share, the activation peak and the batch cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hetplan.catalog import Catalog
from hetplan.engine_limits import DEFAULT_ENGINE_LIMITS, EngineLimits
from hetplan.model import ModelSpec
from hetplan.perf import moe
from hetplan.perf.calibration import Calibration, default_calibration, load_calibrations
from hetplan.perf.links import Link, LinkCatalog, load_links
from hetplan.perf.optables import OpTables, load_optables
from hetplan.perf.roofline import StepBreakdown, StepHardware, kv_shard_factor, step_time
from hetplan.perf.shape import ReplicaShape, unsupported_reason

RUNTIME_RESERVE_BYTES = 1.5e9     # CUDA context, NCCL buffers, CUDA graphs (approximate)
MIN_KV_TOKENS = 1024              # a shape fits when its KV cache holds this many tokens


@dataclass(frozen=True)
class MemoryFit:
    """VRAM budget of one GPU of a replica; the KV capacity is for the whole replica."""

    weights_bytes_per_gpu: float
    activation_bytes_per_gpu: float
    kv_bytes_per_gpu: float            # left for the KV cache (<= 0: does not fit)
    kv_capacity_tokens: int            # tokens the replica's KV cache holds (full attention;
    #                                    all DP ranks together)
    fits: bool
    reason: str = ""


class PerfModel:
    """Latency and memory model of `model` on catalog GPUs.

    `calibrations` maps GPU name to measured efficiencies; GPUs without one use the
    documented default (see `uses_default_calibration`). `optables` maps GPU name to its
    per-op measured tables (default: catalogs/calibration/optables; {} for none). `limits`: the engine limits
    memory and batch caps assume (default: `hetplan.engine_limits` defaults).
    """

    def __init__(self, model: ModelSpec, catalog: Catalog,
                 calibrations: dict[str, Calibration] | None = None,
                 links: LinkCatalog | None = None,
                 limits: EngineLimits = DEFAULT_ENGINE_LIMITS,
                 optables: dict[str, OpTables] | None = None):
        self.model = model
        self.catalog = catalog
        self.calibrations = load_calibrations() if calibrations is None else calibrations
        self.links = links or load_links()
        self.limits = limits
        self.optables = load_optables() if optables is None else optables
        self._cache: dict[tuple, float] = {}

    def with_limits(self, limits: EngineLimits) -> "PerfModel":
        """This model under other engine limits (itself when they are the same)."""
        if limits == self.limits:
            return self
        return PerfModel(self.model, self.catalog, self.calibrations, self.links, limits,
                         self.optables)

    # ---- inputs ----------------------------------------------------------------------
    def calibration(self, gpu: str) -> Calibration:
        return self.calibrations.get(gpu) or default_calibration(gpu)

    def uses_default_calibration(self, gpu: str) -> bool:
        return gpu not in self.calibrations

    def hardware(self, gpu_name: str) -> StepHardware:
        """The per-GPU inputs of a step time under this model's engine limits."""
        gpu = self.catalog.gpu(gpu_name)
        return StepHardware(gpu=gpu, cal=self.calibration(gpu_name),
                            link=self.links.intra_node(gpu),
                            graph_max_tokens=self.limits.graph_capture_max_tokens(
                                gpu.datacenter_blackwell),
                            tables=self.optables.get(gpu_name))

    def op_table_note(self, gpu_name: str) -> str:
        """Which ops of this GPU's steps come from measured per-op tables (the rest:
        roofline x calibration; the all-reduce without a table: the engine's algorithm)."""
        hw = self.hardware(gpu_name)
        used = []
        if hw.tables is not None:
            moe_model = self.model.moe is not None
            for op, table, label in (("gemm", hw.tables.gemm_efficiency, "dense GEMMs"),
                                     ("moe", hw.tables.moe_efficiency, "MoE layers"),
                                     ("allreduce", hw.tables.allreduce_us, "all-reduce")):
                if op in hw.cal.optable_ops and table and (op == "allreduce"
                                                           or (op == "moe") == moe_model):
                    src = next(iter(sorted(table.items())))[1].source.label
                    used.append(f"{label} ({src})")
        if not used:
            return "per-op tables: none (roofline x calibration; all-reduce by the engine's " \
                   "algorithm)"
        return "per-op tables: " + ", ".join(used)

    def check(self, shape: ReplicaShape) -> str | None:
        """Why the shape cannot serve the model (None if it can, memory aside)."""
        return unsupported_reason(shape, self.catalog.gpu(shape.gpu), self.model)

    # ---- memory ----------------------------------------------------------------------
    def kv_bytes_per_token_per_gpu(self, shape: ReplicaShape) -> float:
        return (self.model.kv_bytes_per_token(shape.kv_dtype)
                / kv_shard_factor(self.model, shape.tp) / shape.pp)

    def kv_bytes_per_sequence_per_gpu(self, shape: ReplicaShape, context_tokens: int) -> float:
        """One GPU's share of a sequence's KV cache (windowed layers capped)."""
        return (self.model.kv_bytes_per_sequence(max(1, int(context_tokens)), shape.kv_dtype)
                / kv_shard_factor(self.model, shape.tp) / shape.pp)

    def memory(self, shape: ReplicaShape) -> MemoryFit:
        gpu = self.catalog.gpu(shape.gpu)
        m = self.model
        weights = m.weight_bytes(shape.weight_dtype) / shape.num_gpus
        if shape.ep:                      # whole experts per GPU, attention per DP rank
            weights = moe.weight_bytes_per_gpu(m, shape)
        util = self.limits.gpu_memory_utilization
        # activation peak: one step of max_num_batched_tokens tokens
        act = RUNTIME_RESERVE_BYTES + self.limits.max_num_batched_tokens * 2.0 * (
            4 * m.hidden_size + 2 * m.intermediate_size / shape.tp)
        kv = gpu.memory_bytes * util - weights - act
        per_tok = self.kv_bytes_per_token_per_gpu(shape)
        tokens = int(kv // per_tok) if kv > 0 else 0
        fits = tokens >= MIN_KV_TOKENS   # room for at least one modest sequence
        tokens *= shape.dp               # each DP rank caches its own sequences
        reason = "" if fits else (
            f"weights {weights / 1e9:.1f} GB + runtime {act / 1e9:.1f} GB leave "
            f"{max(kv, 0) / 1e9:.1f} GB of {gpu.memory_gb:g} GB x {util} for KV cache")
        return MemoryFit(weights, act, kv, tokens, fits, reason)

    def max_decode_batch(self, shape: ReplicaShape, context_tokens: float,
                         max_num_seqs: int | None = None) -> int:
        """Largest number of sequences of `context_tokens` whose KV cache fits, at most
        `max_num_seqs` (default: the engine limit), per DP rank (each is its own engine)."""
        fit = self.memory(shape)
        if not fit.fits:
            return 0
        cap = self.limits.max_num_seqs if max_num_seqs is None else max_num_seqs
        per_seq_gpu = self.kv_bytes_per_sequence_per_gpu(shape, int(context_tokens))
        return int(min(cap, fit.kv_bytes_per_gpu // per_seq_gpu)) * shape.dp

    # ---- time ------------------------------------------------------------------------
    def _step(self, shape: ReplicaShape, new_tokens: float, seqs: float, attended: float,
              kv_read: float, prefill: bool) -> StepBreakdown:
        """prefill: the step holds prompt tokens (compute efficiencies derated by the
        calibration's prefill_compute_scale)."""
        hw = self.hardware(shape.gpu)
        return step_time(self.model, hw, shape, new_tokens=new_tokens, seqs=seqs,
                         attended_keys=attended, kv_bytes_read=kv_read,
                         compute_scale=hw.cal.prefill_compute_scale if prefill else 1.0)

    def prefill_breakdown(self, shape: ReplicaShape, prompt_tokens: Sequence[int],
                          cached_tokens: int = 0) -> StepBreakdown:
        """One step that prefills every prompt in `prompt_tokens` (a batch) in full."""
        m = self.model
        new = float(sum(prompt_tokens))
        attended = sum(m.prefill_attended_keys(n, cached_tokens) for n in prompt_tokens)
        kv_written = sum(m.kv_bytes_per_sequence(n + cached_tokens, shape.kv_dtype)
                         for n in prompt_tokens)
        return self._step(shape, new, len(prompt_tokens), attended, kv_written, prefill=True)

    def prefill_time_s(self, shape: ReplicaShape, prompt_tokens: Sequence[int] | int,
                       batch: int = 1, cached_tokens: int = 0) -> float:
        """Seconds to prefill `batch` prompts of `prompt_tokens` each (or a list of lengths)."""
        lens = [prompt_tokens] * batch if isinstance(prompt_tokens, int) else list(prompt_tokens)
        key = ("p", shape, tuple(lens), cached_tokens)
        if key not in self._cache:
            self._cache[key] = self.prefill_breakdown(shape, lens, cached_tokens).total_s
        return self._cache[key]

    def decode_breakdown(self, shape: ReplicaShape, batch: int,
                         context_tokens: float) -> StepBreakdown:
        """One decode step of `batch` sequences, each with `context_tokens` in its KV cache."""
        m = self.model
        ctx = max(1.0, float(context_tokens))
        attended = batch * m.attended_keys_per_token(ctx)
        kv_read = batch * m.kv_bytes_per_sequence(int(round(ctx)), shape.kv_dtype)
        return self._step(shape, float(batch), float(batch), attended, kv_read, prefill=False)

    def decode_step_s(self, shape: ReplicaShape, batch: int, context_tokens: float) -> float:
        key = ("d", shape, int(batch), int(round(context_tokens)))
        if key not in self._cache:
            self._cache[key] = self.decode_breakdown(shape, batch, context_tokens).total_s
        return self._cache[key]

    def mixed_step_s(self, shape: ReplicaShape, decode_batch: int, context_tokens: float,
                     prefill_chunk_tokens: int, prefill_context_tokens: int = 0) -> float:
        """A chunked-prefill (colocated) step: `decode_batch` decode tokens plus one prefill
        chunk of `prefill_chunk_tokens` that follows `prefill_context_tokens` of its prompt."""
        return self.mixed_step_breakdown(shape, decode_batch, context_tokens,
                                         prefill_chunk_tokens, prefill_context_tokens).total_s

    def mixed_step_breakdown(self, shape: ReplicaShape, decode_batch: int,
                             context_tokens: float, prefill_chunk_tokens: int,
                             prefill_context_tokens: int = 0) -> StepBreakdown:
        """`mixed_step_s` by component."""
        m = self.model
        ctx = max(1.0, float(context_tokens))
        attended = decode_batch * m.attended_keys_per_token(ctx) + m.prefill_attended_keys(
            prefill_chunk_tokens, prefill_context_tokens)
        kv_read = decode_batch * m.kv_bytes_per_sequence(int(round(ctx)), shape.kv_dtype) \
            + m.kv_bytes_per_sequence(prefill_chunk_tokens + prefill_context_tokens,
                                      shape.kv_dtype)
        seqs = decode_batch + (1 if prefill_chunk_tokens else 0)
        return self._step(shape, float(decode_batch + prefill_chunk_tokens), float(seqs),
                          attended, kv_read, prefill=prefill_chunk_tokens > 0)

    # ---- KV transfer -----------------------------------------------------------------
    def kv_transfer_s(self, prompt_tokens: int, kv_dtype: str, link: Link | str,
                      prefill_s: float = 0.0, cross_vendor: bool = False,
                      pipelined: bool = True) -> float:
        """Seconds of KV hand-off that add to TTFT after a prefill of `prefill_s`.

        Layer-pipelined: layer i's KV leaves while layer i+1 computes, so only the part that
        outlasts the prefill, plus the last `exposed_layers` layers, shows. A cross-vendor
        hand-off pays a fixed layout/dtype translation."""
        if isinstance(link, str):
            link = self.links.link(link)
        total = (self.model.kv_bytes_per_sequence(prompt_tokens, kv_dtype)
                 / link.achieved_bytes_per_s)
        if pipelined:
            per_layer = total / self.model.num_layers
            exposed = max(total - prefill_s, 0.0) + self.links.kv.exposed_layers * per_layer
            exposed = min(exposed, total)
        else:
            exposed = total
        t = exposed + link.latency_us * 1e-6
        if cross_vendor:
            t += self.links.kv.cross_vendor_translation_us * 1e-6
        return t


__all__ = ["PerfModel", "MemoryFit", "ReplicaShape"]
