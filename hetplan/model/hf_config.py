"""Reading a Hugging Face `config.json` (or a bundled model key) into a `ModelSpec`: every
number checked against hetplan.bounds before use, family-specific keys mapped, errors one
line naming the file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hetplan.bounds import (MAX_CONTEXT_TOKENS, MAX_EXPERTS, MAX_HEADS, MAX_LAYERS,
                            MAX_MODEL_DIM, MAX_VOCAB)
from hetplan.errors import InputError, from_validation_error
from hetplan.io import catalogs_dir, load_json, load_yaml
from hetplan.model.spec import MLASpec, ModelSpec, MoESpec


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
