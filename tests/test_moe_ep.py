"""MoE expert parallelism (EP) and data-parallel attention: shape rules and labels, the cost
model's physics against first-principles counts (ring all-gather volume, balls-into-bins
straggler by simulation, weight and KV bytes), the MILP choosing EP shapes exactly when they
are cheaper per the perf model, and plan.json / emitted vLLM flags for them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from hetplan.candidates import build_candidates, shapes_for
from hetplan.catalog import load_catalog
from hetplan.emit import EmitOptions, emit
from hetplan.emit.shell import commands_in, parse_command
from hetplan.milp import Problem, solve_problem
from hetplan.model import load_model
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.perf import moe
from hetplan.perf.links import Link
from hetplan.plan import Plan, load_plan
from hetplan.scenario import SLO
from hetplan.workload import single_class

CAT = load_catalog()
MOE_MODELS = ("deepseek-v3", "qwen3-235b-a22b", "qwen3-30b-a3b", "gpt-oss-120b")


@pytest.fixture(scope="module")
def pms():
    return {m: PerfModel(load_model(m), CAT) for m in MOE_MODELS + ("llama-3.1-8b",
                                                                    "mixtral-8x7b")}


# ---- shapes ------------------------------------------------------------------------------
def test_default_shape_is_unchanged_and_ep_labels_add_a_suffix():
    plain = ReplicaShape("H200", 8, 1, "fp8", "bf16")
    assert plain.label() == "H200-tp8-wfp8-kvbf16" and plain.num_gpus == 8
    assert plain.ep_size == 1 and plain.gpus_per_stage == 8
    ep = ReplicaShape("H200", 8, 1, "fp8", "bf16", ep=True)
    dp = ReplicaShape("H200", 2, 1, "fp8", "bf16", ep=True, dp=4)
    assert ep.label() == "H200-tp8-wfp8-kvbf16-ep8"
    assert dp.label() == "H200-tp2-wfp8-kvbf16-dp4-ep8"
    assert (dp.num_gpus, dp.gpus_per_stage, dp.ep_size) == (8, 8, 8)
    assert len({plain.label(), ep.label(), dp.label()}) == 3


def test_ep_rules(pms):
    dense, mix = pms["llama-3.1-8b"], pms["mixtral-8x7b"]
    assert "mixture-of-experts" in dense.check(ReplicaShape("H200", 2, ep=True))
    assert mix.check(ReplicaShape("H200", 2, ep=True)) is None
    assert "only with expert parallelism" in mix.check(ReplicaShape("H200", 1, dp=2))
    assert "pp > 1" in mix.check(ReplicaShape("H200", 1, 2, ep=True, dp=2))
    # Mixtral has 8 experts: an EP group of 16 (GB200 NVL72 holds 72 GPUs) has too many GPUs
    assert "exceeds 8 experts" in mix.check(ReplicaShape("GB200", 2, ep=True, dp=8))
    qwen = pms["qwen3-30b-a3b"]
    assert "GPUs per H200 node" in qwen.check(ReplicaShape("H200", 4, ep=True, dp=4))


def test_shapes_for_adds_ep_shapes_for_moe_models_only(pms):
    dense_shapes, _ = shapes_for(pms["llama-3.1-8b"], ["H200"], 8, 1, ["fp8"], ["bf16"])
    assert not any(s.ep or s.dp > 1 for s in dense_shapes)
    for m in MOE_MODELS:
        shapes, dropped = shapes_for(pms[m], ["H200"], 8, 1, ["fp8"], ["bf16"])
        ep = [s for s in shapes if s.ep]
        assert ep, (m, dropped)
        assert all(2 <= s.gpus_per_stage <= 8 and s.pp == 1 for s in ep)
        assert any(s.dp > 1 for s in ep) and any(s.dp == 1 for s in ep)
        # the non-EP shapes are the ones a model without EP support would get
        assert [s for s in shapes if not s.ep] == [s for s in shapes if s.label().count("-") == 3]


# ---- physics -----------------------------------------------------------------------------
def _ring_allgather_bytes_received(n: int, total_bytes: float) -> float:
    """Bytes one rank receives in a ring all-gather, counted step by step: in each of the
    n - 1 steps it receives the chunk (total / n) its left neighbour got one step before."""
    chunks = [total_bytes / n] * n
    received = 0.0
    for step in range(n - 1):
        received += chunks[(0 - step - 1) % n]
    return received


@pytest.mark.parametrize("dp", [2, 4, 8])
def test_dispatch_combine_matches_ring_counts(pms, dp):
    pm = pms["deepseek-v3"]
    m = pm.model
    link = Link(name="test", kind="nvlink", bandwidth_gbit_per_s=8 * 400.0, efficiency=1.0,
                latency_us=3.0)
    s = ReplicaShape("H200", 8 // dp, 1, "fp8", "bf16", ep=True, dp=dp)
    tokens = 4096.0
    step_bytes = tokens * m.hidden_size * moe.DISPATCH_BYTES
    per_layer = 2 * (_ring_allgather_bytes_received(dp, step_bytes) / 400e9
                     + (dp - 1) * 3e-6)             # all-gather + reduce-scatter (mirror)
    assert moe.dispatch_combine_s(m, s, tokens, link, 1.0) == pytest.approx(
        per_layer * m.num_moe_layers, rel=1e-9)
    # EP = TP (dp 1): the TP all-reduce combines; nothing is dispatched
    assert moe.dispatch_combine_s(m, ReplicaShape("H200", 8, ep=True), tokens, link, 1.0) == 0


@pytest.mark.parametrize("tokens,dp", [(1, 8), (8, 8), (64, 8), (512, 8), (8, 2), (64, 4)])
def test_load_imbalance_matches_a_routing_simulation(pms, tokens, dp):
    """Uniform routing, k distinct experts per token, experts placed in contiguous blocks
    (vLLM's linear placement): the mean over trials of max/mean pairs per GPU."""
    m = pms["qwen3-235b-a22b"].model
    s = ReplicaShape("H200", 1, 1, "fp8", "bf16", ep=True, dp=dp)
    e, k, ep = m.moe.num_experts, m.moe.experts_per_token, s.ep_size
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(200):
        picks = np.argsort(rng.random((tokens, e)), axis=1)[:, :k]
        per_gpu = np.bincount((picks // (e // ep)).ravel(), minlength=ep)
        ratios.append(per_gpu.max() / per_gpu.mean())
    simulated = float(np.mean(ratios))
    assert moe.load_imbalance(m, s, tokens) == pytest.approx(simulated, rel=0.05)
    assert moe.load_imbalance(m, s, tokens) > 1.0


def test_ep_weights_and_kv_follow_the_layout(pms):
    pm = pms["deepseek-v3"]
    m = pm.model
    tp8 = ReplicaShape("H200", 8, 1, "fp8", "bf16")
    ep8 = ReplicaShape("H200", 8, 1, "fp8", "bf16", ep=True)
    dp8 = ReplicaShape("H200", 1, 1, "fp8", "bf16", ep=True, dp=8)
    # 256 experts over 8 GPUs: whole experts hold the same bytes as 1/8 slices of each
    assert pm.memory(ep8).weights_bytes_per_gpu == pytest.approx(
        pm.memory(tp8).weights_bytes_per_gpu, rel=1e-12)
    # DP attention: the non-expert weights are whole on each GPU, the experts an eighth
    routed = m.expert_params() * m.moe.num_experts * m.num_moe_layers * 1.0   # fp8 bytes
    rest = m.weight_bytes("fp8") - routed
    assert pm.memory(dp8).weights_bytes_per_gpu == pytest.approx(rest + routed / 8, rel=1e-12)
    # MLA's latent KV is replicated on every TP rank, but each DP rank caches only its own
    # sequences: the replica holds 8 x one GPU's room
    per_tok = m.kv_bytes_per_token("bf16")
    assert pm.memory(dp8).kv_capacity_tokens == 8 * int(pm.memory(dp8).kv_bytes_per_gpu
                                                        // per_tok)
    assert pm.memory(tp8).kv_capacity_tokens == int(pm.memory(tp8).kv_bytes_per_gpu // per_tok)


def test_ep_equals_tp_costs_no_less_than_tp_on_the_roofline(pms):
    """EP = TP reads the same expert bytes on average, but its busiest GPU sets the pace: on
    the roofline (no measured tables) EP is never faster."""
    pm = PerfModel(pms["qwen3-30b-a3b"].model, CAT, optables={})
    tp = ReplicaShape("H200", 4, 1, "fp8", "bf16")
    ep = ReplicaShape("H200", 4, 1, "fp8", "bf16", ep=True)
    for batch in (1, 8, 64, 256):
        a, b = pm.decode_breakdown(tp, batch, 2000), pm.decode_breakdown(ep, batch, 2000)
        assert b.comm_s == pytest.approx(a.comm_s)
        assert b.attention_s == pytest.approx(a.attention_s)
        assert b.gemm_s >= a.gemm_s * (1 - 1e-12)


def test_measured_moe_table_favours_whole_experts(pms):
    """With H200's measured MoE-layer table, TP-sliced experts (thin GEMMs, 1/4 of each
    expert) reach a lower share of bandwidth than EP's whole experts, which is why EP = TP
    decodes faster at small batch; the gap is the table's, not a fitted number."""
    pm = pms["qwen3-30b-a3b"]
    tables = pm.optables["H200"]
    whole = float(pm.model.expert_params())
    for tokens in (1, 8, 64):
        sliced = tables.moe_efficiency_at("fp8", tokens, whole / 4).value
        assert tables.moe_efficiency_at("fp8", tokens, whole).value > sliced
    tp = ReplicaShape("H200", 4, 1, "fp8", "bf16")
    ep = ReplicaShape("H200", 4, 1, "fp8", "bf16", ep=True)
    assert pm.decode_breakdown(ep, 8, 2000).gemm_s < pm.decode_breakdown(tp, 8, 2000).gemm_s


def test_one_prompt_prefills_on_one_dp_rank(pms):
    pm = pms["qwen3-30b-a3b"]
    dp = ReplicaShape("H200", 1, 1, "fp8", "bf16", ep=True, dp=4)
    one, four = pm.prefill_breakdown(dp, [4000]), pm.prefill_breakdown(dp, [4000] * 4)
    # four prompts spread one per rank: the busiest rank's attention is that of one prompt
    assert four.attention_s == pytest.approx(one.attention_s, rel=1e-9)
    assert moe.dp_divisor(dp, 1) == 1 and moe.dp_divisor(dp, 4) == 4
    assert moe.dp_divisor(dp, 6) == 3          # ceil(6 / 4) = 2 sequences on the busiest


# ---- the MILP chooses EP when it is cheaper ------------------------------------------------
def _solve(pm, cls, slo, price):
    cands, _ = build_candidates(pm, CAT, {"H200": price}, [cls], slo, roles=("colocated",),
                                weight_dtypes=("fp8",))
    out = solve_problem(Problem(candidates=cands, classes=[cls], utilization=0.8,
                                availability={}))
    useful = [c for c in cands if c.capacity(cls.name) > 0]
    best = min(useful, key=lambda c: c.price_usd_per_hour / c.capacity(cls.name))
    return cands, out, best


def test_milp_chooses_ep_dp_for_deepseek_because_dp_ranks_hold_more_kv(pms):
    pm = pms["deepseek-v3"]
    cls = single_class("chat", 200, 2000, 500)
    slo = SLO(ttft_ms=2000, tpot_ms=60)
    cands, out, best = _solve(pm, cls, slo, 3.5)
    chosen = {ch.candidate.shape for ch in out.chosen}
    assert best.shape in chosen and best.shape.ep and best.shape.dp > 1
    # why: MLA's KV is replicated across TP ranks, while each DP rank caches only its own
    # sequences, so the EP x DP replica of the same 8 GPUs holds more sequences
    tp8 = ReplicaShape("H200", 8, 1, "fp8", "bf16")
    ctx = cls.mean_input_tokens + cls.mean_output_tokens
    assert pm.max_decode_batch(best.shape, ctx) > pm.max_decode_batch(tp8, ctx)
    tp8_cand = next(c for c in cands if c.shape == tp8)
    assert best.capacity("chat") > tp8_cand.capacity("chat")


def test_tp1_is_cheapest_per_request_for_qwen3_30b_because_ep_pays_dispatch(pms):
    # on the roofline (no measured tables), so only dispatch and imbalance tell EP apart;
    # with H200's MoE table, EP x DP's whole experts win (test above)
    pm = PerfModel(pms["qwen3-30b-a3b"].model, CAT, optables={})
    cls = single_class("chat", 200, 2000, 500)
    slo = SLO(ttft_ms=2000, tpot_ms=60)
    cands, out, best = _solve(pm, cls, slo, 3.5)
    assert not best.shape.ep
    # the MILP may mix in EP replicas to round its integer counts (perf model v2 made the
    # EP shapes close), never at a higher cost than the cheapest shape alone
    alone = math.ceil(cls.rate_rps / (0.8 * best.capacity(cls.name))) * best.price_usd_per_hour
    assert sum(ch.replicas * ch.candidate.price_usd_per_hour for ch in out.chosen) \
        <= alone + 1e-9
    # why: per GPU, the EP x DP replica's step at its own batch is slower than one GPU's
    # (dispatch + combine and the busiest GPU's expert share), so a GPU serves less
    ep = min((c for c in cands if c.shape.ep and c.capacity("chat") > 0),
             key=lambda c: c.price_usd_per_hour / c.capacity("chat"))
    assert ep.capacity("chat") / ep.num_gpus < best.capacity("chat") / best.num_gpus
    b = ep.per_class["chat"].batch
    assert pm.decode_breakdown(ep.shape, b, 2250).comm_s > 0


# ---- plan.json and emitted commands --------------------------------------------------------
def _ep_plan() -> Plan:
    plan = load_plan("tests/data/emit_plan.json")
    pre, dec = plan.pools
    pre = pre.model_copy(update={"gpu": "H200", "name": "prefill-H200-tp1-wfp8-kvfp8"})
    dec = dec.model_copy(update={"gpu": "H200", "tp": 2, "dp": 4, "ep": True, "replicas": 2,
                                 "gpus": 16, "name": "decode-H200-tp2-wbf16-kvfp8-dp4-ep8"})
    return plan.model_copy(update={"model": "qwen3-30b-a3b", "model_ref": "qwen3-30b-a3b",
                                   "pools": [pre, dec], "placement": None})


def test_plan_json_writes_ep_fields_only_when_set(tmp_path):
    plan = _ep_plan()
    raw = json.loads(plan.to_json())
    assert "ep" not in raw["pools"][0] and "dp" not in raw["pools"][0]
    assert raw["pools"][1]["ep"] is True and raw["pools"][1]["dp"] == 4
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    back = load_plan(path)
    assert back.pools[1].dp == 4 and back.pools[1].ep and back.to_json() == plan.to_json()
    bad = json.loads(plan.to_json())
    bad["pools"][1]["dp"] = 8                       # 2 x 8 GPUs: more than an H200 node
    bad["pools"][1]["gpus"] = 32
    path.write_text(json.dumps(bad))
    with pytest.raises(Exception, match="exceeds 8"):
        load_plan(path)
    bad["pools"][1].update(dp=4, ep=False, gpus=16)
    path.write_text(json.dumps(bad))
    with pytest.raises(Exception, match="needs ep"):
        load_plan(path)


def _serve_argvs(files):
    out = {}
    for rel, text in sorted(files.items()):
        if rel.startswith("nodes/"):
            for c in commands_in(text, "vllm serve"):
                env, argv = parse_command(c)
                out.setdefault(argv[argv.index("--served-model-name") - 1], []).append(
                    (env, argv))
    return out


def test_emitters_write_ep_flags_and_request_every_gpu():
    plan = _ep_plan()
    files = emit(plan, "vllm", EmitOptions())
    cmds = [c for cs in _serve_argvs(files).values() for c in cs]
    ep = [(env, a) for env, a in cmds if "--enable-expert-parallel" in a]
    plain = [(env, a) for env, a in cmds if "--enable-expert-parallel" not in a]
    assert len(ep) == 2 and len(plain) == 2
    for env, a in ep:
        assert a[a.index("--data-parallel-size") + 1] == "4"
        assert a[a.index("--tensor-parallel-size") + 1] == "2"
        assert len(env["CUDA_VISIBLE_DEVICES"].split(",")) == 8
        batch = max(r.batch for r in plan.pools[1].routes)
        assert a[a.index("--max-num-seqs") + 1] == str(math.ceil(batch / 4))
    assert all("--data-parallel-size" not in a for _, a in plain)
    k8s = emit(plan, "k8s", EmitOptions())
    dep = next(d for d in yaml.safe_load_all(k8s["decode-h200-tp2-wbf16-kvfp8-dp4-ep8.yaml"])
               if d["kind"] == "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] == 8
    graph = yaml.safe_load(emit(plan, "dynamo", EmitOptions())["graph.yaml"])
    limits = {c["name"]: c["podTemplate"]["spec"]["containers"][0]["resources"]["limits"]
              for c in graph["spec"]["components"] if "podTemplate" in c}
    assert limits["decode-h200-tp2-wbf16-kvfp8-dp4-ep8"]["nvidia.com/gpu"] == 8


# The EP commands are checked by vLLM's own parsers in tests/test_emit_vllm.py, in its one
# batch (vLLM imports once).


def test_dp_replicas_sharing_a_node_get_one_nixl_port_per_rank():
    """vLLM's NIXL connector listens on VLLM_NIXL_SIDE_CHANNEL_PORT + its DP rank, so two
    dp-2 replicas on one node need base ports 2 apart."""
    plan = _ep_plan()
    dec = plan.pools[1].model_copy(update={"tp": 1, "dp": 2, "gpus": 4,
                                           "name": "decode-H200-tp1-wbf16-kvfp8-dp2-ep2"})
    plan = plan.model_copy(update={"pools": [plan.pools[0], dec]})
    cmds = _serve_argvs(emit(plan, "vllm", EmitOptions()))
    ports = sorted(int(env["VLLM_NIXL_SIDE_CHANNEL_PORT"]) for cs in cmds.values()
                   for env, a in cs if "--enable-expert-parallel" in a)
    hosts = {env["VLLM_NIXL_SIDE_CHANNEL_HOST"] for cs in cmds.values() for env, a in cs
             if "--enable-expert-parallel" in a}
    assert len(hosts) == 1 and len(ports) == 2 and ports[1] - ports[0] == 2


def test_estimate_cli_takes_ep_and_dp(pms):
    import subprocess
    import sys
    args = [sys.executable, "-m", "hetplan.cli", "estimate", "--model", "qwen3-30b-a3b",
            "--gpu", "H200", "--tp", "2", "--input", "1000", "--output", "200", "--batch", "32",
            "--weight-dtype", "fp8"]
    r = subprocess.run(args + ["--ep", "--dp", "4", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)
    s = ReplicaShape("H200", 2, 1, "fp8", "bf16", ep=True, dp=4)
    assert est["shape"] == s.label()
    assert est["tpot_ms"] == pytest.approx(pms["qwen3-30b-a3b"].decode_step_s(s, 32, 1100) * 1e3)
    r = subprocess.run(args + ["--dp", "4"], capture_output=True, text=True)
    assert r.returncode != 0 and "--dp" in r.stderr and "expert parallelism" in r.stderr
