"""Model architecture from a Hugging Face `config.json`, and the figures derived from it.

Supported families: dense decoder-only transformers with grouped-query attention (Llama,
Qwen2/3, Mistral), mixture-of-experts (Mixtral, Qwen3-MoE, gpt-oss, DeepSeek-V2/V3) and
multi-head latent attention (DeepSeek-V2/V3). Assumptions, stated once:
- MLPs are gated (SwiGLU-style: gate, up, down projections).
- Quantized weight dtypes apply to the linear layers of the transformer blocks; embeddings,
  the LM head and norms stay in 16-bit (as vLLM's FP8/FP4 checkpoints do).
- DeepSeek's multi-token-prediction module is not counted (not used for plain serving).
- FLOPs count multiply-adds as 2 FLOPs; element-wise ops are ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from hetplan.bounds import (MAX_CONTEXT_TOKENS, MAX_HEADS, MAX_LAYERS, MAX_MODEL_DIM,
                            MAX_VOCAB, Text)
from hetplan.dtypes import bytes_per_element


class MoESpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    num_experts: PositiveInt
    experts_per_token: PositiveInt
    expert_intermediate_size: PositiveInt
    num_shared_experts: int = Field(default=0, ge=0)
    # 0-based indices of layers with a dense MLP instead of experts (DeepSeek's first k).
    dense_layers: tuple[int, ...] = ()
    expert_bias: bool = False   # gpt-oss experts carry biases
    router_bias: bool = False


class MLASpec(BaseModel):
    """Multi-head latent attention (DeepSeek-V2/V3): the KV cache stores one latent per token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kv_lora_rank: PositiveInt
    q_lora_rank: int | None = None   # None: full-rank query projection
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class ModelSpec(BaseModel):
    """Architecture figures of a decoder-only LLM. All sizes are element counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text
    architecture: Text
    num_layers: int = Field(ge=1, le=MAX_LAYERS)
    hidden_size: int = Field(ge=1, le=MAX_MODEL_DIM)
    num_attention_heads: int = Field(ge=1, le=MAX_HEADS)
    num_kv_heads: int = Field(ge=1, le=MAX_HEADS)
    head_dim: int = Field(ge=1, le=MAX_MODEL_DIM)
    intermediate_size: int = Field(ge=1, le=MAX_MODEL_DIM)   # dense-MLP width (dense layers)
    vocab_size: int = Field(ge=1, le=MAX_VOCAB)
    max_position_embeddings: int = Field(ge=1, le=MAX_CONTEXT_TOKENS)
    tie_word_embeddings: bool = False
    attention_bias: bool = False            # q, k, v biases
    attention_out_bias: bool = False        # o-projection bias
    qk_norm: bool = False                   # per-head RMSNorm on q and k (Qwen3)
    attention_sinks: bool = False           # one learned logit per head (gpt-oss)
    sliding_window: int | None = None
    sliding_layers: tuple[int, ...] = ()    # layers whose attention is windowed
    native_dtype: str = "bf16"              # checkpoint's stored dtype of linear weights
    moe: MoESpec | None = None
    mla: MLASpec | None = None

    # ---- structure -------------------------------------------------------------------
    def is_moe_layer(self, layer: int) -> bool:
        return self.moe is not None and layer not in self.moe.dense_layers

    @property
    def num_moe_layers(self) -> int:
        """The layers `is_moe_layer` counts, in O(1): the perf model asks this per step."""
        if self.moe is None:
            return 0
        return self.num_layers - len({i for i in self.moe.dense_layers
                                      if 0 <= i < self.num_layers})

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    # ---- parameters ------------------------------------------------------------------
    def attention_params_per_layer(self) -> int:
        h, nh, kvh, hd = self.hidden_size, self.num_attention_heads, self.num_kv_heads, self.head_dim
        if self.mla is not None:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            if m.q_lora_rank:
                q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * nh * qk
            else:
                q = h * nh * qk
            kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank \
                + m.kv_lora_rank * nh * (m.qk_nope_head_dim + m.v_head_dim)
            o = nh * m.v_head_dim * h
            return q + kv + o
        p = h * nh * hd + 2 * h * kvh * hd + nh * hd * h
        if self.attention_bias:
            p += nh * hd + 2 * kvh * hd
        if self.attention_out_bias:
            p += h
        if self.qk_norm:
            p += 2 * hd
        if self.attention_sinks:
            p += nh
        return p

    def dense_mlp_params(self) -> int:
        return 3 * self.hidden_size * self.intermediate_size

    def expert_params(self) -> int:
        """Parameters of one routed expert (gated MLP, plus biases for gpt-oss)."""
        assert self.moe is not None
        h, f = self.hidden_size, self.moe.expert_intermediate_size
        return 3 * h * f + ((2 * f + h) if self.moe.expert_bias else 0)

    def router_params(self) -> int:
        assert self.moe is not None
        e = self.moe.num_experts
        return self.hidden_size * e + (e if self.moe.router_bias else 0)

    def mlp_params_per_layer(self, layer: int, active: bool = False) -> int:
        if not self.is_moe_layer(layer):
            return self.dense_mlp_params()
        m = self.moe
        assert m is not None
        routed = m.experts_per_token if active else m.num_experts
        shared = m.num_shared_experts * 3 * self.hidden_size * m.expert_intermediate_size
        return routed * self.expert_params() + shared + self.router_params()

    def layer_params(self, layer: int, active: bool = False) -> int:
        return (self.attention_params_per_layer() + self.mlp_params_per_layer(layer, active)
                + 2 * self.hidden_size)  # two RMSNorms

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    _block_params: dict[bool, int] = {}      # block_params memo (private: one per instance)

    def model_copy(self, *, update=None, deep: bool = False) -> "ModelSpec":
        """A copy without the block_params memo (an update may change the blocks)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._block_params = {}
        return copy

    def block_params(self, active: bool = False) -> int:
        """Parameters of all transformer blocks (no embeddings, LM head or final norm).
        Memoized (the spec is frozen): every perf-model step time asks for it."""
        if active not in self._block_params:
            self._block_params[active] = sum(self.layer_params(i, active)
                                             for i in range(self.num_layers))
        return self._block_params[active]

    @property
    def total_params(self) -> int:
        return self.block_params() + self.embedding_params + self.lm_head_params + self.hidden_size

    @property
    def active_params(self) -> int:
        """Parameters touched per token (routed experts counted at experts_per_token)."""
        return (self.block_params(active=True) + self.embedding_params + self.lm_head_params
                + self.hidden_size)

    # ---- bytes -----------------------------------------------------------------------
    def weight_bytes(self, weight_dtype: str) -> float:
        """Bytes of all weights: blocks in `weight_dtype`, embeddings/head/norms in 16-bit."""
        b = bytes_per_element(weight_dtype)
        return (self.block_params() * b
                + (self.embedding_params + self.lm_head_params + self.hidden_size) * 2.0)

    def kv_elements_per_token_per_layer(self) -> int:
        if self.mla is not None:   # compressed latent + decoupled RoPE key
            return self.mla.kv_lora_rank + self.mla.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_dtype: str) -> float:
        """KV-cache bytes per token summed over all layers, as if every layer kept it
        (the upper bound; windowed layers hold at most `sliding_window` tokens)."""
        return self.num_layers * self.kv_elements_per_token_per_layer() * bytes_per_element(kv_dtype)

    def kv_bytes_per_sequence(self, context_tokens: int, kv_dtype: str) -> float:
        """KV-cache bytes of one sequence of `context_tokens`, windowed layers capped."""
        per_layer = self.kv_elements_per_token_per_layer() * bytes_per_element(kv_dtype)
        n_window = len(self.sliding_layers)
        full = (self.num_layers - n_window) * context_tokens
        windowed = n_window * min(context_tokens, self.sliding_window or context_tokens)
        return per_layer * (full + windowed)

    # ---- FLOPs -----------------------------------------------------------------------
    @property
    def matmul_params_per_token(self) -> int:
        """Weights that take part in a matmul per token: active block weights + LM head
        (the input embedding is a lookup, not a matmul)."""
        return self.block_params(active=True) + self.vocab_size * self.hidden_size

    def attention_flops_per_key(self) -> float:
        """Score + value FLOPs for one query attending to one key, in one layer."""
        nh = self.num_attention_heads
        if self.mla is not None:   # prefill form: per-head qk dim (nope + rope) and v dim
            return 2.0 * nh * (self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim
                               + self.mla.v_head_dim)
        return 4.0 * nh * self.head_dim

    def attended_keys_per_token(self, context_tokens: float) -> float:
        """Keys one query attends to, summed over layers (windowed layers capped)."""
        n_win = len(self.sliding_layers)
        window = self.sliding_window or context_tokens
        return (self.num_layers - n_win) * context_tokens + n_win * min(context_tokens, window)

    def attention_flops_per_token(self, context_tokens: float) -> float:
        """Score and value FLOPs of one token attending to `context_tokens` (all layers)."""
        return self.attention_flops_per_key() * self.attended_keys_per_token(context_tokens)

    def flops_per_token(self, context_tokens: float = 0.0) -> float:
        """Forward FLOPs of one token at a given context length: 2 x matmul weights +
        attention over the context."""
        return 2.0 * self.matmul_params_per_token + self.attention_flops_per_token(context_tokens)

    def prefill_attended_keys(self, prompt_tokens: int, cached_tokens: int = 0) -> float:
        """Keys attended while prefilling `prompt_tokens` new tokens after `cached_tokens`,
        summed over positions and layers. Causal: the i-th new token attends to cached + i
        keys (capped at the window on windowed layers), so this is quadratic in the prompt."""
        n, c = prompt_tokens, cached_tokens
        n_win = len(self.sliding_layers)
        full = n * c + n * (n + 1) / 2.0            # sum_{i=1..n} (c + i)
        if n_win:
            w = self.sliding_window or (n + c)
            below = max(0, min(n, w - c))           # positions still inside the window
            win = below * c + below * (below + 1) / 2.0 + (n - below) * w
        else:
            win = 0.0
        return (self.num_layers - n_win) * full + n_win * win

    def prefill_flops(self, prompt_tokens: int, cached_tokens: int = 0) -> float:
        """FLOPs to prefill one prompt (every position's LM-head row included)."""
        return (2.0 * self.matmul_params_per_token * prompt_tokens
                + self.attention_flops_per_key() * self.prefill_attended_keys(prompt_tokens,
                                                                              cached_tokens))
