"""ModelSpec from HF config.json: parameter counts against published figures, and the
derived byte and FLOP figures against hand-computed cases."""

from __future__ import annotations

import json

import pytest

from hetplan.errors import InputError
from hetplan.model import load_model, model_index

INDEX = model_index()
REQUIRED = ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen3-32b", "deepseek-v3",
            "mixtral-8x7b", "gpt-oss-120b"]


def test_required_models_bundled():
    assert all(m in INDEX for m in REQUIRED)
    assert any(k.startswith("qwen3") and "a" in k.split("-")[-1] for k in INDEX)  # a Qwen3 MoE


@pytest.mark.parametrize("key", sorted(INDEX))
def test_param_count_within_2pct_of_published(key):
    spec = load_model(key)
    published = INDEX[key]["published_params_b"] * 1e9
    assert spec.total_params == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize("key", sorted(k for k, v in INDEX.items()
                                       if v.get("published_active_params_b")))
def test_active_params_within_5pct_of_published(key):
    spec = load_model(key)
    published = INDEX[key]["published_active_params_b"] * 1e9
    active = spec.active_params
    if INDEX[key].get("published_active_excludes_input_embedding"):
        active -= spec.embedding_params   # the publisher's convention (gpt-oss)
    assert active == pytest.approx(published, rel=0.05)


def test_load_by_hf_id_and_path():
    by_key = load_model("llama-3.1-70b")
    by_id = load_model(INDEX["llama-3.1-70b"]["hf_id"])
    assert by_key.total_params == by_id.total_params


def test_llama_70b_hand_computed():
    m = load_model("llama-3.1-70b")
    # KV: 2 (K and V) x 80 layers x 8 KV heads x 128 head_dim x 2 bytes
    assert m.kv_bytes_per_token("bf16") == 2 * 80 * 8 * 128 * 2 == 327_680
    assert m.kv_bytes_per_token("fp8") == 163_840
    # weights: 70.55 B params; embeddings/head stay 16-bit when blocks are fp8
    emb = 2 * 128_256 * 8192
    assert m.weight_bytes("bf16") == pytest.approx(2 * m.total_params)
    assert m.weight_bytes("fp8") == pytest.approx(m.total_params + emb + 8192)


def test_deepseek_mla_kv_is_latent():
    m = load_model("deepseek-v3")
    assert m.mla is not None and m.moe is not None
    # 61 layers x (512 latent + 64 rope) x 2 bytes
    assert m.kv_bytes_per_token("bf16") == 61 * 576 * 2
    assert m.num_dense_layers == 3


def test_gpt_oss_sliding_window_caps_kv():
    m = load_model("gpt-oss-120b")
    assert m.sliding_window == 128 and len(m.sliding_layers) == 18
    short = m.kv_bytes_per_sequence(100, "bf16")
    long = m.kv_bytes_per_sequence(10_000, "bf16")
    per_layer_tok = 2 * 8 * 64 * 2
    assert short == 36 * 100 * per_layer_tok
    assert long == (18 * 10_000 + 18 * 128) * per_layer_tok


def test_prefill_flops_quadratic_term():
    m = load_model("llama-3.1-8b")
    n = 1000
    attn_per_key = 4 * 32 * 128   # per layer: QK^T and AV, 2 FLOPs per MAC
    expect = 2 * m.matmul_params_per_token * n + attn_per_key * 32 * n * (n + 1) / 2
    assert m.prefill_flops(n) == pytest.approx(expect)
    # with a cached prefix the new tokens attend to it as well
    assert m.prefill_flops(10, cached_tokens=5) == pytest.approx(
        2 * m.matmul_params_per_token * 10 + attn_per_key * 32 * sum(5 + i for i in range(1, 11)))


def test_sliding_window_prefill_matches_sum_of_per_token():
    m = load_model("gpt-oss-20b")
    for n, c in [(50, 0), (300, 0), (200, 100), (10, 500)]:
        direct = sum(m.flops_per_token(c + i) for i in range(1, n + 1))
        assert m.prefill_flops(n, cached_tokens=c) == pytest.approx(direct)


def test_moe_active_less_than_total():
    m = load_model("mixtral-8x7b")
    assert m.active_params < 0.35 * m.total_params


def test_missing_field_is_named(write):
    p = write("bad.json", json.dumps({"hidden_size": 64, "num_attention_heads": 4}))
    with pytest.raises(InputError, match=r"bad\.json: num_hidden_layers: required field missing"):
        load_model(p)


def test_negative_size_is_named(write):
    cfg = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": -2,
           "intermediate_size": 128, "vocab_size": 100}
    with pytest.raises(InputError, match=r"neg\.json: num_hidden_layers: must be a whole number in \[1, "):
        load_model(write("neg.json", json.dumps(cfg)))


def test_json_syntax_error(write):
    with pytest.raises(InputError, match="JSON syntax error at line 1"):
        load_model(write("s.json", "{not json"))


def test_unknown_model_suggests():
    with pytest.raises(InputError, match="did you mean llama-3.1-70b"):
        load_model("llama-3.1-7b")


def test_block_params_memo_does_not_survive_an_update():
    m = load_model("llama-3.1-70b")
    full = m.block_params()
    assert m.block_params() == full == sum(m.layer_params(i) for i in range(m.num_layers))
    half = m.model_copy(update={"num_layers": m.num_layers // 2})
    assert half.block_params() * 2 == full and m.block_params() == full


def test_num_moe_layers_counts_what_is_moe_layer_says():
    """num_moe_layers is O(1) (the perf model asks it per step); it must count exactly the
    layers is_moe_layer marks, also with repeated or out-of-range dense-layer indices."""
    base = load_model("deepseek-v3")
    for dense in ((), (0, 1, 2), (2, 2, 0), (-1, 0, 10_000), tuple(range(base.num_layers))):
        m = base.model_copy(update={"moe": base.moe.model_copy(update={"dense_layers": dense})})
        assert m.num_moe_layers == sum(m.is_moe_layer(i) for i in range(m.num_layers))
        assert m.num_dense_layers == m.num_layers - m.num_moe_layers
    dense = load_model("llama-3.1-8b")
    assert dense.num_moe_layers == 0 and dense.num_dense_layers == dense.num_layers
