"""A replica's shape: which GPU, how it is split, which number formats."""

from __future__ import annotations

from dataclasses import dataclass

from hetplan.catalog import GPU
from hetplan.model import ModelSpec


@dataclass(frozen=True, order=True)
class ReplicaShape:
    """One model replica on `tp` x `pp` x `dp` GPUs of type `gpu`.

    weight_dtype: storage (and, where the GPU supports it, compute) format of block weights.
    kv_dtype: KV-cache storage format.
    ep: MoE expert parallelism (vLLM's `--enable-expert-parallel`): each GPU of a stage holds
        whole experts, E / ep_size of them, instead of a 1/tp slice of every expert.
    dp: data-parallel attention ranks inside the replica (vLLM's `--data-parallel-size` on a
        MoE model): each rank runs attention on its own sequences with a TP-`tp` copy of the
        non-expert weights and its own KV cache; the expert layers span all tp x dp GPUs and
        all ranks step together. dp > 1 needs ep (see `unsupported_reason`).
    Defaults (ep off, dp 1) are today's shapes, with the same labels.
    """

    gpu: str
    tp: int = 1
    pp: int = 1
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    ep: bool = False
    dp: int = 1

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def gpus_per_stage(self) -> int:
        """GPUs of one pipeline stage (they share one node): tp x dp."""
        return self.tp * self.dp

    @property
    def ep_size(self) -> int:
        """GPUs the experts of a stage are spread over (1 without expert parallelism)."""
        return self.tp * self.dp if self.ep else 1

    def label(self) -> str:
        pp = f"pp{self.pp}" if self.pp > 1 else ""
        par = (f"-dp{self.dp}" if self.dp > 1 else "") + (f"-ep{self.ep_size}" if self.ep else "")
        return f"{self.gpu}-tp{self.tp}{pp}-w{self.weight_dtype}-kv{self.kv_dtype}{par}"


def unsupported_reason(shape: ReplicaShape, gpu: GPU, model: ModelSpec) -> str | None:
    """Why `shape` cannot run `model` on `gpu` (None when it can). Rules follow vLLM:
    TP must divide the attention heads; PP must not exceed the layers; a TP group must fit in
    one node; KV dtype and 8/4-bit compute must be supported by the GPU's tensor cores.
    Weight-only fallbacks (FP8 weights on Ampere via Marlin-style kernels) are not modelled.
    Expert parallelism: MoE models only, at least one expert per GPU of the EP group (vLLM
    spreads a remainder over the first ranks, so the EP size need not divide the experts);
    dp > 1 only with ep (a dense model's DP ranks are plain replicas, which the planner
    counts as replicas) and with pp 1 (not modelled); a stage's tp x dp GPUs in one node
    (the all-to-all over the scale-out NIC is not enumerated)."""
    if shape.tp < 1 or shape.pp < 1 or shape.dp < 1:
        return "tp, pp and dp must be >= 1"
    if shape.ep and model.moe is None:
        return "expert parallelism needs a mixture-of-experts model"
    if shape.dp > 1 and not shape.ep:
        return "dp > 1 is modelled only with expert parallelism (ep)"
    if shape.dp > 1 and shape.pp > 1:
        return "dp > 1 with pp > 1 is not modelled"
    if shape.ep and model.moe is not None and shape.ep_size > model.moe.num_experts:
        return f"EP size {shape.ep_size} exceeds {model.moe.num_experts} experts"
    if shape.gpus_per_stage > gpu.max_gpus_per_node and shape.tp <= gpu.max_gpus_per_node:
        return (f"tp x dp {shape.gpus_per_stage} exceeds {gpu.max_gpus_per_node} GPUs per "
                f"{gpu.name} node")
    if model.num_attention_heads % shape.tp:
        return f"tp {shape.tp} does not divide {model.num_attention_heads} attention heads"
    if shape.pp > model.num_layers:
        return f"pp {shape.pp} exceeds {model.num_layers} layers"
    if shape.tp > gpu.max_gpus_per_node:
        return f"tp {shape.tp} exceeds {gpu.max_gpus_per_node} GPUs per {gpu.name} node"
    if shape.kv_dtype in ("fp8", "fp4", "int8") and not gpu.supports("fp8"):
        return f"{gpu.name} has no FP8 support for a {shape.kv_dtype} KV cache"
    if shape.kv_dtype == "fp4":
        return "fp4 KV cache is not supported"
    if not gpu.supports(shape.weight_dtype):
        return f"{gpu.name} has no {shape.weight_dtype} tensor-core support"
    return None
