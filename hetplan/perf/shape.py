"""A replica's shape: which GPU, how it is split, which number formats."""

from __future__ import annotations

from dataclasses import dataclass

from hetplan.catalog import GPU
from hetplan.model import ModelSpec


@dataclass(frozen=True, order=True)
class ReplicaShape:
    """One model replica on `tp` x `pp` GPUs of type `gpu`.

    weight_dtype: storage (and, where the GPU supports it, compute) format of block weights.
    kv_dtype: KV-cache storage format.
    """

    gpu: str
    tp: int = 1
    pp: int = 1
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp

    def label(self) -> str:
        pp = f"pp{self.pp}" if self.pp > 1 else ""
        return f"{self.gpu}-tp{self.tp}{pp}-w{self.weight_dtype}-kv{self.kv_dtype}"


def unsupported_reason(shape: ReplicaShape, gpu: GPU, model: ModelSpec) -> str | None:
    """Why `shape` cannot run `model` on `gpu` (None when it can). Rules follow vLLM:
    TP must divide the attention heads; PP must not exceed the layers; a TP group must fit in
    one node; KV dtype and 8/4-bit compute must be supported by the GPU's tensor cores.
    Weight-only fallbacks (FP8 weights on Ampere via Marlin-style kernels) are not modelled."""
    if shape.tp < 1 or shape.pp < 1:
        return "tp and pp must be >= 1"
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
