"""`hetplan estimate`: TTFT, TPOT, throughput and memory of one replica shape for a static
batch of identical requests (no queueing; the simulator covers that)."""

from __future__ import annotations

import math

from pydantic import BaseModel

from hetplan.perf.estimator import PerfModel
from hetplan.perf.shape import ReplicaShape


class Estimate(BaseModel):
    """Predicted figures for `batch` requests of `input_tokens` in, `output_tokens` out.

    ttft_ms: one prefill step of the whole batch. tpot_ms: decode step at the batch's average
    context (input + output/2). throughput_tok_s: generated tokens per second of the static
    batch over its whole life (prefill + all decode steps)."""

    model: str
    shape: str
    batch: int
    input_tokens: int
    output_tokens: int
    ttft_ms: float
    tpot_ms: float
    throughput_tok_s: float
    decode_tok_s: float
    weights_gb_per_gpu: float
    kv_gb_needed_per_gpu: float
    kv_gb_available_per_gpu: float
    max_batch_at_full_context: int
    fits: bool
    fit_reason: str
    calibration: str
    prefill_op_sources: dict[str, str]
    decode_op_sources: dict[str, str]
    decode_cuda_graph: bool
    approximate_note: str = ("measured per-op tables where they exist, roofline x fitted "
                             "efficiencies elsewhere (see *_op_sources); engine effects not "
                             "modelled (scheduling jitter, prefix caching, speculative decoding)")


def estimate(pm: PerfModel, shape: ReplicaShape, batch: int, input_tokens: int,
             output_tokens: int) -> Estimate:
    if batch < 1 or input_tokens < 1 or output_tokens < 1:
        raise ValueError("batch, input and output tokens must be >= 1")
    why = pm.check(shape)
    mem = pm.memory(shape)
    prefill = pm.prefill_breakdown(shape, [input_tokens] * batch)
    decode = pm.decode_breakdown(shape, batch, input_tokens + output_tokens / 2)
    ttft_s, tpot_s = prefill.total_s, decode.total_s
    full_ctx = input_tokens + output_tokens
    max_batch = pm.max_decode_batch(shape, full_ctx, max_num_seqs=1 << 30)
    m = pm.model
    per_seq_gpu = pm.kv_bytes_per_sequence_per_gpu(shape, full_ctx)
    fits = why is None and mem.fits and batch <= max_batch
    reason = why or mem.reason or ("" if batch <= max_batch else
                                   f"batch {batch} > {max_batch} sequences of {full_ctx} tokens "
                                   "fit in the KV cache")
    cal = pm.calibration(shape.gpu)
    cal_note = ("default efficiencies (no measurement for this GPU)" if cal.is_default
                else f"{cal.provenance.method} ({cal.provenance.measured_on})")
    total_s = ttft_s + output_tokens * tpot_s
    return Estimate(
        model=m.name, shape=shape.label(), batch=batch, input_tokens=input_tokens,
        output_tokens=output_tokens, ttft_ms=ttft_s * 1e3, tpot_ms=tpot_s * 1e3,
        throughput_tok_s=batch * output_tokens / total_s, decode_tok_s=batch / tpot_s,
        weights_gb_per_gpu=mem.weights_bytes_per_gpu / 1e9,
        kv_gb_needed_per_gpu=math.ceil(batch / shape.dp) * per_seq_gpu / 1e9,   # busiest rank
        kv_gb_available_per_gpu=max(mem.kv_bytes_per_gpu, 0.0) / 1e9,
        max_batch_at_full_context=max_batch, fits=fits, fit_reason=reason, calibration=cal_note,
        prefill_op_sources=prefill.op_sources, decode_op_sources=decode.op_sources,
        decode_cuda_graph=decode.cuda_graph)
