"""Perf model: arithmetic against hand-computed cases on a tiny GPU and model, properties
(hypothesis), and the fitting routines recovering known efficiencies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetplan.catalog import Catalog, load_catalog, load_gpus
from hetplan.model import load_model, spec_from_hf_config
from hetplan.perf import Calibration, PerfModel, ReplicaShape
from hetplan.perf.calibration import Provenance
from hetplan.perf.collectives import ring_allreduce_s
from hetplan.perf.roofline import expected_experts_touched

TINY_GPU = """
references: {r: test}
gpus:
  T1:
    vendor: nvidia
    architecture: hopper
    memory_gb: 10
    mem_bw_tbps: 1.0
    dense_tflops: {bf16: 100, fp8: 200}
    intra_node_link: nvlink4
    intra_node_bw_gb_per_s: 200
    max_gpus_per_node: 8
    tdp_w: 100
    sources: {memory_gb: r, mem_bw_tbps: r, dense_tflops: r, intra_node_bw_gb_per_s: r,
              max_gpus_per_node: r, tdp_w: r}
  A1:
    vendor: nvidia
    architecture: ampere
    memory_gb: 10
    mem_bw_tbps: 1.0
    dense_tflops: {bf16: 100}
    intra_node_link: pcie4
    intra_node_bw_gb_per_s: 64
    max_gpus_per_node: 8
    tdp_w: 100
    sources: {memory_gb: r, mem_bw_tbps: r, dense_tflops: r, intra_node_bw_gb_per_s: r,
              max_gpus_per_node: r, tdp_w: r}
"""
# 4 layers, hidden 1024, 8 heads of 128, 2 KV heads, FFN 4096, vocab 32000
TINY_CFG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 1024,
            "intermediate_size": 4096, "num_hidden_layers": 4, "num_attention_heads": 8,
            "num_key_value_heads": 2, "vocab_size": 32000, "max_position_embeddings": 8192,
            "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def cal(**kw) -> Calibration:
    base = dict(gpu="T1", compute_efficiency=0.5, attention_efficiency=0.25,
                memory_efficiency=0.8, collective_efficiency=1.0, step_overhead_ms=1.0,
                layer_overhead_us=0.0, provenance=Provenance(method="test"))
    return Calibration(**{**base, **kw})


@pytest.fixture
def tiny(write):
    gpus, refs = load_gpus(write("gpus.yaml", TINY_GPU))
    catalog = Catalog(gpus=gpus, references=refs, price_sheets={})
    model = spec_from_hf_config(TINY_CFG, "tiny")
    return PerfModel(model, catalog, calibrations={"T1": cal(), "A1": cal(gpu="A1")})


def test_decode_step_memory_bound_hand_computed(tiny):
    m = tiny.model
    # one decode token: weights streamed once; KV of 1000 tokens read
    attn = 4 * (1024 * 1024 + 2 * 1024 * 256 + 1024 * 1024)   # q, k, v, o per layer x 4
    mlp = 4 * 3 * 1024 * 4096
    norms = 4 * 2 * 1024
    weights = (attn + mlp) * 2 + (norms + 32000 * 1024) * 2
    kv = 1000 * 4 * 2 * 2 * 128 * 2        # tokens x layers x (K,V) x kv heads x dim x bytes
    # element-wise passes, 1 token x 4 layers: 2 fused add+norms (8 x hidden), RoPE on the
    # 8 + 2 heads of 128 (2 x 1280), SiLU*mul (3 x FFN)
    elem = 1 * 4 * 2 * (8 * 1024 + 2 * 1280 + 3 * 4096)
    expect = weights / 0.8e12 + kv / 0.8e12 + elem / 0.8e12 + 1e-3
    b = tiny.decode_breakdown(ReplicaShape("T1"), 1, 1000)
    assert not b.gemm_compute_bound
    assert b.total_s == pytest.approx(expect, rel=1e-9)
    assert m.kv_bytes_per_token("bf16") == 4 * 2 * 2 * 128 * 2


def test_prefill_compute_bound_hand_computed(tiny):
    m = tiny.model
    n = 4096
    block = (4 * (1024 * 1024 + 2 * 1024 * 256 + 1024 * 1024) + 4 * 3 * 1024 * 4096)
    gemm = 2 * (block * n + 32000 * 1024 * 1)            # LM head for the last token only
    attn = 4 * 8 * 128 * 4 * n * (n + 1) / 2               # 4 layers, causal
    elem = n * 4 * 2 * (8 * 1024 + 2 * 1280 + 3 * 4096)
    expect = gemm / (100e12 * 0.5) + attn / (100e12 * 0.25) + elem / 0.8e12 + 1e-3
    b = tiny.prefill_breakdown(ReplicaShape("T1"), [n])
    assert b.gemm_compute_bound
    assert b.total_s == pytest.approx(expect, rel=1e-9)
    assert m.prefill_attended_keys(n) == 4 * n * (n + 1) / 2


def test_prefill_compute_scale_derates_prefill_only(tiny):
    """The scale divides prefill's 16-bit matmul term, not attention (timed as the engine's
    own kernel); decode is untouched."""
    n = 4096
    base = tiny.prefill_breakdown(ReplicaShape("T1"), [n])
    dec = tiny.decode_breakdown(ReplicaShape("T1"), 64, 1000).total_s
    tiny.calibrations["T1"] = cal(prefill_compute_scale=0.5)
    slow = tiny.prefill_breakdown(ReplicaShape("T1"), [n])
    assert slow.gemm_s == pytest.approx(2 * base.gemm_s, rel=1e-9)      # compute-bound
    assert slow.attention_s == pytest.approx(base.attention_s, rel=1e-12)
    assert tiny.decode_breakdown(ReplicaShape("T1"), 64, 1000).total_s == dec


def test_prefill_compute_scale_spares_quantized_matmuls(tiny):
    """FP8 matmuls were timed with their activation quantization (the unfused pass the
    derate stands for), so the derate spares their matmuls (and attention); bf16 matmuls of
    the same step take it."""
    n = 4096
    f8, bf = ReplicaShape("T1", weight_dtype="fp8"), ReplicaShape("T1")
    base8, base16 = tiny.prefill_breakdown(f8, [n]), tiny.prefill_breakdown(bf, [n])
    tiny.calibrations["T1"] = cal(prefill_compute_scale=0.5)
    slow8, slow16 = tiny.prefill_breakdown(f8, [n]), tiny.prefill_breakdown(bf, [n])
    assert slow8.gemm_s == pytest.approx(base8.gemm_s, rel=1e-12)
    assert slow8.attention_s == pytest.approx(base8.attention_s, rel=1e-12)
    assert slow16.gemm_s == pytest.approx(2 * base16.gemm_s, rel=1e-9)


def test_fp8_weights_use_fp8_peak_and_half_bytes(tiny):
    bf = tiny.prefill_breakdown(ReplicaShape("T1"), [4096])
    f8 = tiny.prefill_breakdown(ReplicaShape("T1", weight_dtype="fp8"), [4096])
    assert f8.gemm_s == pytest.approx(bf.gemm_s / 2, rel=1e-6)


def test_ring_allreduce_formula(tiny):
    link = tiny.links.intra_node(tiny.catalog.gpu("T1"))   # 100 GB/s one way
    t = ring_allreduce_s(1e9, 4, link, 0.5)
    assert t == pytest.approx(2 * 3 / 4 * 1e9 / 50e9 + 6 * link.latency_us * 1e-6)
    assert ring_allreduce_s(1e9, 1, link, 0.5) == 0.0


def test_tp_adds_allreduce_and_splits_weights(tiny):
    one = tiny.decode_breakdown(ReplicaShape("T1", tp=1), 8, 512)
    two = tiny.decode_breakdown(ReplicaShape("T1", tp=2), 8, 512)
    assert one.comm_s == 0 and two.comm_s > 0
    assert two.gemm_s == pytest.approx(one.gemm_s / 2, rel=1e-9)
    assert tiny.memory(ReplicaShape("T1", tp=2)).weights_bytes_per_gpu == pytest.approx(
        tiny.memory(ReplicaShape("T1")).weights_bytes_per_gpu / 2)


def test_memory_fit_hand_computed(tiny):
    fit = tiny.memory(ReplicaShape("T1"))
    m = tiny.model
    act = 1.5e9 + 8192 * 2 * (4 * 1024 + 2 * 4096)
    kv = 10e9 * 0.9 - m.weight_bytes("bf16") - act
    assert fit.kv_bytes_per_gpu == pytest.approx(kv)
    assert fit.kv_capacity_tokens == int(kv // m.kv_bytes_per_token("bf16"))
    assert tiny.max_decode_batch(ReplicaShape("T1"), 2048) == int(
        kv // m.kv_bytes_per_sequence(2048, "bf16"))


def test_unsupported_shapes_explained(tiny):
    assert "does not divide" in tiny.check(ReplicaShape("T1", tp=3))
    assert "FP8" in tiny.check(ReplicaShape("A1", kv_dtype="fp8"))
    assert "fp8" in tiny.check(ReplicaShape("A1", weight_dtype="fp8"))
    assert tiny.check(ReplicaShape("T1", tp=8, weight_dtype="fp8", kv_dtype="fp8")) is None


def test_kv_transfer_pipelining(tiny):
    nbytes = tiny.model.kv_bytes_per_sequence(4096, "bf16")
    link = tiny.links.link("ib-400g")
    full = nbytes / link.achieved_bytes_per_s + link.latency_us * 1e-6
    assert tiny.kv_transfer_s(4096, "bf16", link, pipelined=False) == pytest.approx(full)
    # a long prefill hides all but the last layer's share (exposed_layers = 1)
    hidden = tiny.kv_transfer_s(4096, "bf16", link, prefill_s=10.0)
    wire = nbytes / link.achieved_bytes_per_s
    assert hidden == pytest.approx(wire / tiny.model.num_layers + link.latency_us * 1e-6)
    # a prefill shorter than the wire time leaves the remainder exposed too
    part = tiny.kv_transfer_s(4096, "bf16", link, prefill_s=wire / 2)
    assert part == pytest.approx(min(wire, wire / 2 + wire / tiny.model.num_layers)
                                 + link.latency_us * 1e-6)
    xv = tiny.kv_transfer_s(4096, "bf16", link, prefill_s=10.0, cross_vendor=True)
    assert xv - hidden == pytest.approx(tiny.links.kv.cross_vendor_translation_us * 1e-6)


def test_expected_experts_touched():
    assert expected_experts_touched(64, 8, 1) == pytest.approx(8)
    assert expected_experts_touched(64, 8, 10_000) == pytest.approx(64)
    assert expected_experts_touched(64, 8, 0) == 0


def test_moe_decode_reads_fewer_weights_at_small_batch():
    cat = load_catalog()
    pm = PerfModel(load_model("mixtral-8x7b"), cat)
    s = ReplicaShape("H100-SXM", tp=2)
    small = pm.decode_breakdown(s, 1, 512).gemm_s
    large = pm.decode_breakdown(s, 256, 512).gemm_s
    assert small < 0.5 * large


def test_mla_kv_replicated_across_tp():
    cat = load_catalog()
    pm = PerfModel(load_model("deepseek-v3"), cat)
    s = ReplicaShape("H200", tp=8, weight_dtype="fp8")
    assert pm.kv_bytes_per_token_per_gpu(s) == load_model("deepseek-v3").kv_bytes_per_token("bf16")


@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 512), ctx=st.integers(1, 32_000), extra_b=st.integers(1, 64),
       extra_c=st.integers(1, 4_000), tp=st.sampled_from([1, 2, 4, 8]))
def test_decode_monotone_in_batch_and_context(batch, ctx, extra_b, extra_c, tp):
    pm = _pm70()
    s = ReplicaShape("H100-SXM", tp=tp)
    t = pm.decode_breakdown(s, batch, ctx).total_s
    assert pm.decode_breakdown(s, batch + extra_b, ctx).total_s >= t
    assert pm.decode_breakdown(s, batch, ctx + extra_c).total_s >= t


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 16_000), more=st.integers(1, 4_000), batch=st.integers(1, 8),
       gpu=st.sampled_from(["H100-SXM", "A100-80G-SXM", "L40S", "B200"]))
def test_prefill_monotone_in_tokens_and_batch(n, more, batch, gpu):
    pm = _pm70()
    s = ReplicaShape(gpu, tp=4)
    t = pm.prefill_breakdown(s, [n] * batch).total_s
    assert pm.prefill_breakdown(s, [n + more] * batch).total_s >= t
    assert pm.prefill_breakdown(s, [n] * (batch + 1)).total_s >= t


@settings(max_examples=40, deadline=None)
@given(eff=st.floats(0.1, 0.9), bump=st.floats(0.01, 0.1), batch=st.integers(1, 256),
       ctx=st.integers(1, 8000))
def test_higher_efficiency_never_slower(eff, bump, batch, ctx):
    gpus, refs = tiny_gpus()
    catalog = Catalog(gpus=gpus, references=refs, price_sheets={})
    model = spec_from_hf_config(TINY_CFG, "tiny")
    lo = PerfModel(model, catalog, calibrations={"T1": cal(memory_efficiency=eff,
                                                           compute_efficiency=eff)})
    hi = PerfModel(model, catalog, calibrations={"T1": cal(memory_efficiency=eff + bump,
                                                           compute_efficiency=eff + bump)})
    s = ReplicaShape("T1")
    assert hi.decode_step_s(s, batch, ctx) <= lo.decode_step_s(s, batch, ctx)
    assert hi.prefill_time_s(s, ctx) <= lo.prefill_time_s(s, ctx)


def tiny_gpus():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "gpus.yaml"
        p.write_text(TINY_GPU)
        return load_gpus(p)


_PM70 = {}


def _pm70() -> PerfModel:
    if not _PM70:
        _PM70["pm"] = PerfModel(load_model("llama-3.1-70b"), load_catalog())
    return _PM70["pm"]


def test_estimate_cli_json():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "estimate", "--model",
                        "llama-3.1-70b", "--gpu", "H100-SXM", "--tp", "4", "--batch", "16",
                        "--input", "1024", "--output", "256", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"ttft_ms", "tpot_ms", "throughput_tok_s", "fits"} <= set(d)
    assert d["fits"] is True and 0 < d["tpot_ms"] < d["ttft_ms"]


def test_estimate_cli_reports_no_fit():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "estimate", "--model",
                        "llama-3.1-405b", "--gpu", "L40S", "--tp", "1", "--input", "100",
                        "--output", "10", "--json"], capture_output=True, text=True, timeout=120)
    d = json.loads(r.stdout)
    assert d["fits"] is False and "weights" in d["fit_reason"]
