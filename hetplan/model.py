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

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from hetplan.bounds import (MAX_CONTEXT_TOKENS, MAX_EXPERTS, MAX_HEADS, MAX_LAYERS,
                            MAX_MODEL_DIM, MAX_VOCAB, Text)
from hetplan.dtypes import bytes_per_element
from hetplan.errors import InputError, from_validation_error
from hetplan.io import catalogs_dir, load_json, load_yaml


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
        return sum(self.is_moe_layer(i) for i in range(self.num_layers))

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


# ---- loading ---------------------------------------------------------------------------

_DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}

# config.json key -> (least, most) accepted value; checked before any figure is used (a
# layer count of 1e12 would otherwise loop over a trillion layers)
_DIM = (1, MAX_MODEL_DIM)
CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "num_hidden_layers": (1, MAX_LAYERS), "hidden_size": _DIM, "intermediate_size": _DIM,
    "moe_intermediate_size": _DIM, "head_dim": _DIM, "kv_lora_rank": (0, MAX_MODEL_DIM),
    "q_lora_rank": (0, MAX_MODEL_DIM), "qk_nope_head_dim": _DIM, "qk_rope_head_dim": _DIM,
    "v_head_dim": _DIM, "num_attention_heads": (1, MAX_HEADS),
    "num_key_value_heads": (1, MAX_HEADS), "vocab_size": (1, MAX_VOCAB),
    "n_routed_experts": (0, MAX_EXPERTS), "num_local_experts": (0, MAX_EXPERTS),
    "num_experts": (0, MAX_EXPERTS), "num_experts_per_tok": (1, MAX_EXPERTS),
    "experts_per_token": (1, MAX_EXPERTS), "n_shared_experts": (0, MAX_EXPERTS),
    "first_k_dense_replace": (0, MAX_LAYERS), "decoder_sparse_step": (0, MAX_LAYERS),
    "moe_layer_freq": (0, MAX_LAYERS), "max_position_embeddings": (1, MAX_CONTEXT_TOKENS),
    "sliding_window": (0, MAX_CONTEXT_TOKENS),
}


# config.json key -> the JSON type its value must have when present
CONFIG_TYPES: dict[str, tuple[type, str]] = {
    "quantization_config": (dict, "an object"), "architectures": (list, "a list of names"),
    "torch_dtype": (str, "a dtype name"), "dtype": (str, "a dtype name"),
    "model_type": (str, "a name")}


def check_config_numbers(cfg: dict[str, Any]) -> None:
    """Every size in a config.json is a whole number within CONFIG_BOUNDS; layer lists are
    layer indices; heads and experts fit together (GQA: KV heads divide the attention
    heads; a token picks at most the experts there are); CONFIG_TYPES hold. InputError
    naming the key otherwise."""
    for key, (typ, what) in CONFIG_TYPES.items():
        v = cfg.get(key)
        if v is not None and (not isinstance(v, typ) or key == "architectures" and not all(
                isinstance(a, str) for a in v)):
            raise InputError(f"must be {what}, not {v!r}"[:200], field=key)
    for key, (lo, hi) in CONFIG_BOUNDS.items():
        v = cfg.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) \
                or not lo <= v <= hi:
            raise InputError(f"must be a whole number in [{lo:,}, {hi:,}], not {v!r}",
                             field=key)
    for key in ("mlp_only_layers", "layer_types"):
        v = cfg.get(key)
        if v is not None and (not isinstance(v, list) or len(v) > MAX_LAYERS):
            raise InputError(f"must be a list of at most {MAX_LAYERS:,} entries", field=key)
    for i in cfg.get("mlp_only_layers") or []:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < MAX_LAYERS:
            raise InputError(f"must hold layer indices in [0, {MAX_LAYERS:,}), not {i!r}",
                             field="mlp_only_layers")
    heads, kv_heads = cfg.get("num_attention_heads"), cfg.get("num_key_value_heads")
    if heads and kv_heads and heads % kv_heads:
        raise InputError(f"{kv_heads} does not divide num_attention_heads ({heads})",
                         field="num_key_value_heads")
    experts = _first(cfg, "n_routed_experts", "num_local_experts", "num_experts")
    per_token = _first(cfg, "num_experts_per_tok", "experts_per_token")
    if experts and per_token and per_token > experts:
        raise InputError(f"{per_token} experts per token, more than the {experts} experts",
                         field="num_experts_per_tok")


def _first(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def spec_from_hf_config(cfg: dict[str, Any], name: str) -> ModelSpec:
    """Map a Hugging Face config dict to a ModelSpec. Raises pydantic/KeyError on gaps."""
    if "text_config" in cfg and "num_hidden_layers" not in cfg:   # multimodal wrappers
        if not isinstance(cfg["text_config"], dict):
            raise InputError("must be an object (the language model's config)",
                             field="text_config")
        cfg = {**cfg["text_config"], "architectures": cfg.get("architectures")}
    check_config_numbers(cfg)
    arch = (cfg.get("architectures") or [cfg.get("model_type", "unknown")])[0]
    model_type = cfg.get("model_type", "")
    heads = cfg["num_attention_heads"]
    hidden = cfg["hidden_size"]
    layers = cfg["num_hidden_layers"]
    head_dim = _first(cfg, "head_dim", default=hidden // heads)

    mla = None
    if cfg.get("kv_lora_rank"):
        mla = MLASpec(kv_lora_rank=cfg["kv_lora_rank"], q_lora_rank=cfg.get("q_lora_rank"),
                      qk_nope_head_dim=cfg["qk_nope_head_dim"],
                      qk_rope_head_dim=cfg["qk_rope_head_dim"], v_head_dim=cfg["v_head_dim"])

    n_experts = _first(cfg, "n_routed_experts", "num_local_experts", "num_experts")
    moe = None
    if n_experts:
        dense_layers: set[int] = set(cfg.get("mlp_only_layers") or [])
        k_dense = cfg.get("first_k_dense_replace") or 0
        dense_layers |= set(range(k_dense))
        step = cfg.get("decoder_sparse_step") or cfg.get("moe_layer_freq") or 1
        if step > 1:   # Qwen-MoE convention: layer i is sparse iff (i + 1) % step == 0
            dense_layers |= {i for i in range(layers) if (i + 1) % step != 0}
        is_gpt_oss = model_type == "gpt_oss"
        moe = MoESpec(
            num_experts=n_experts,
            experts_per_token=_first(cfg, "num_experts_per_tok", "experts_per_token"),
            expert_intermediate_size=_first(cfg, "moe_intermediate_size", "intermediate_size"),
            num_shared_experts=cfg.get("n_shared_experts") or 0,
            dense_layers=tuple(sorted(dense_layers)),
            expert_bias=is_gpt_oss,
            router_bias=is_gpt_oss or cfg.get("topk_method") == "noaux_tc",
        )

    sliding_layers: tuple[int, ...] = ()
    window = cfg.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if window and layer_types:
        sliding_layers = tuple(i for i, t in enumerate(layer_types) if t == "sliding_attention")
    elif window and cfg.get("use_sliding_window", model_type in ("mistral",)):
        sliding_layers = tuple(range(layers))
    if not sliding_layers:
        window = None

    quant = (cfg.get("quantization_config") or {}).get("quant_method", "")
    native = {"fp8": "fp8", "mxfp4": "fp4"}.get(quant) or _DTYPE_NAMES.get(
        cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16", "bf16")
    if native == "fp32":
        native = "bf16"

    return ModelSpec(
        name=name,
        architecture=arch,
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=_first(cfg, "num_key_value_heads", default=heads),
        head_dim=head_dim,
        intermediate_size=cfg["intermediate_size"],
        vocab_size=cfg["vocab_size"],
        max_position_embeddings=cfg.get("max_position_embeddings", 4096),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        attention_bias=bool(cfg.get("attention_bias", False)) or model_type == "qwen2",
        attention_out_bias=bool(cfg.get("attention_bias", False)) and model_type == "gpt_oss",
        qk_norm=model_type in ("qwen3", "qwen3_moe"),
        attention_sinks=model_type == "gpt_oss",
        sliding_window=window,
        sliding_layers=sliding_layers,
        native_dtype=native,
        moe=moe,
        mla=mla,
    )


def model_index(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """The bundled models (`catalogs/models/index.yaml`): key -> metadata."""
    root = root or catalogs_dir() / "models"
    raw = load_yaml(root / "index.yaml")
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise InputError("expected a 'models' mapping", file=root / "index.yaml", field="models")
    return raw["models"]


def _resolve(ref: str | Path, field: str | None = None) -> tuple[Path, str]:
    ref_str = str(ref)
    path = Path(ref_str)
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" or path.exists():
        return path, (path.parent.name if path.name == "config.json" else path.stem)
    root = catalogs_dir() / "models"
    index = model_index(root)
    for key, meta in index.items():
        if ref_str in (key, meta.get("hf_id")):
            return root / meta["config"], key
    from hetplan.catalog import unknown_name_message
    raise InputError(unknown_name_message("model", ref_str, index) +
                     " (or give a path to a config.json)", field=field)


def resolve_model_path(ref: str | Path) -> Path:
    """The config.json a model reference names (see load_model)."""
    return _resolve(ref)[0]


def load_model(ref: str | Path, field: str | None = None) -> ModelSpec:
    """Load a model by bundled key (`llama-3.1-70b`), by HF id in the index, or from a
    path to a `config.json` (or a folder holding one). `field`: what an unknown name is
    reported as (e.g. the flag it came from)."""
    return _load_config_file(*_resolve(ref, field))


# ModelSpec field -> the config.json key it came from (so errors name the user's field)
_HF_NAMES = {"num_layers": "num_hidden_layers", "num_kv_heads": "num_key_value_heads"}


def _load_config_file(path: Path, name: str) -> ModelSpec:
    cfg = load_json(path)
    if not isinstance(cfg, dict):
        raise InputError("expected a JSON object (a Hugging Face config.json)", file=path)
    try:
        return spec_from_hf_config(cfg, name)
    except InputError as e:
        raise InputError(e.message, file=path, field=e.field) from None
    except KeyError as e:
        raise InputError("required field missing", file=path, field=str(e.args[0])) from None
    except ValidationError as e:
        err = from_validation_error(e, file=path)
        hf_field = _HF_NAMES.get((err.field or "").split(".")[0], err.field)
        raise InputError(err.message, file=path, field=hf_field) from None
    except (TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
        raise InputError(f"malformed config ({e})", file=path) from None
