"""The serving engine's limits, defined once: candidates size replicas with them, the perf
model reserves VRAM with them, the simulator runs its engines with them and the emitters
write them as `vllm serve` flags. A scenario sets them under `constraints.engine`; a plan
records the ones it was sized with, so `simulate` and `emit` of that plan use the same.

Defaults follow vLLM 0.33's `vllm serve` (the OpenAI server usage context) where hetplan's
model agrees with it; each field says where hetplan deliberately differs. The engine mode
(CUDA graphs up to a capture size, eager above it or everywhere) is here too: the perf model
charges per-layer launch gaps only to steps that run eagerly.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hetplan.bounds import MAX_SEQS_PER_ENGINE, MAX_TOKENS_PER_STEP


class EngineLimits(BaseModel):
    """Per-engine (per-replica) scheduler and memory limits."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_num_batched_tokens: int = Field(default=8192, ge=16, le=MAX_TOKENS_PER_STEP)
    """Tokens one engine step may schedule (vLLM `--max-num-batched-tokens`). It bounds a
    prefill batch (prompts x mean input), caps a colocated step's prompt chunk and sizes the
    activation peak the perf model reserves. 8192 is vLLM 0.33's `vllm serve` default on
    >= 70 GiB GPUs other than A100 (H100/H200 class); vLLM picks 16384 on >= 160 GiB GPUs
    and 2048 on smaller ones. hetplan uses one value for every GPU and always emits the flag,
    so the engine runs with what the plan was sized at."""

    max_num_seqs: int = Field(default=1024, ge=1, le=MAX_SEQS_PER_ENGINE)
    """Most sequences one engine runs at once (vLLM `--max-num-seqs`): the cap on a decode or
    colocated batch, and the simulator's batch for pools whose plan recorded none. 1024 is
    vLLM 0.33's `vllm serve` default on >= 70 GiB GPUs (256 on smaller ones); emitted flags
    carry each pool's own batch, which never exceeds this."""

    gpu_memory_utilization: float = Field(default=0.90, ge=0.05, le=1.0)
    """Share of each GPU's memory the engine may use (vLLM `--gpu-memory-utilization`);
    weights, activations and the runtime reserve come out of it and the rest is KV cache.
    vLLM 0.33's default is 0.92; hetplan keeps 0.90 (the value its plans have always been
    sized at, leaving room for allocator fragmentation its memory model does not count) and
    emits it explicitly, so the engine's KV cache is the one the plan assumed."""

    min_chunk_tokens: int = Field(default=16, ge=1, le=MAX_TOKENS_PER_STEP)
    """Least prompt tokens a colocated (chunked-prefill) step carries when any prompt is
    waiting, so prompts progress even beside a full decode batch (a hetplan policy, not a
    vLLM flag: it is folded into the emitted `--max-num-batched-tokens`)."""

    enforce_eager: bool = False
    """Run every step eagerly, without CUDA graphs (vLLM `--enforce-eager`; emitted only when
    set). Eager steps expose the CPU's kernel-launch time wherever it exceeds the GPU's
    work (small decode batches of deep models)."""

    cuda_graph_max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_PER_STEP)
    """Largest step (tokens) replayed from a captured CUDA graph (vLLM
    `--max-cudagraph-capture-size`; emitted only when set). None: vLLM 0.33's rule,
    min(2 x max_num_seqs, 512), or 1024 on data-centre Blackwell (compute capability 10.x:
    B200, GB200), see `graph_capture_max_tokens`."""

    @model_validator(mode="after")
    def _chunk_within_budget(self) -> "EngineLimits":
        if self.min_chunk_tokens > self.max_num_batched_tokens:
            raise ValueError(f"min_chunk_tokens ({self.min_chunk_tokens}) exceeds "
                             f"max_num_batched_tokens ({self.max_num_batched_tokens})")
        return self

    def colocated_chunk_tokens(self, batch: int, mean_input_tokens: float,
                               mean_output_tokens: float) -> int:
        """The chunk rule: prompt tokens per colocated step for a decode batch of `batch`.

        A chunk of batch x mean input / mean output tokens keeps prompt work and decode work
        balanced (each finished sequence is replaced by one prefilled prompt); at least
        `min_chunk_tokens`, at most `max_num_batched_tokens`. Means below one count as one.
        A pool serving several classes runs the largest of its classes' chunks."""
        want = math.ceil(max(0, batch) * max(1.0, mean_input_tokens)
                         / max(1.0, mean_output_tokens))
        return int(min(self.max_num_batched_tokens, max(self.min_chunk_tokens, want)))

    def graph_capture_max_tokens(self, datacenter_blackwell: bool) -> int:
        """Largest step that runs as a CUDA graph on this engine (0: none, eager mode)."""
        if self.enforce_eager:
            return 0
        if self.cuda_graph_max_tokens is not None:
            return self.cuda_graph_max_tokens
        return min(2 * self.max_num_seqs, 1024 if datacenter_blackwell else 512)

    def is_default(self) -> bool:
        return self == DEFAULT_ENGINE_LIMITS


DEFAULT_ENGINE_LIMITS = EngineLimits()
ENGINE_MODE_FIELDS = ("enforce_eager", "cuda_graph_max_tokens")
"""Fields added with the engine mode (issue 15): plan.json writes them only when set."""

