"""Prefix reuse: LRU hit rates by hand, cache-aware vs random routing, prefill charged for
misses only, the simulator's cache agreeing with the planner's estimate, the switch off
reproducing the plan without a cache, Mooncake block ids kept by the loader, and the
emitted flags."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from hetplan.candidates import prefill_capacity
from hetplan.catalog import load_catalog
from hetplan.emit import EmitOptions, build_context
from hetplan.emit.router import router_argvs
from hetplan.emit.serve import engine_flags
from hetplan.model import load_model
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.planner import plan_scenario
from hetplan.scenario import SLO, load_scenario
from hetplan.simulate import simulate_plan
from hetplan.simulate.engine import PoolSpec, run
from hetplan.simulate.steps import ConstantSteps
from hetplan.workload import load_trace, single_class
from hetplan.workload.prefix import (BlockChains, HitCurve, block_chains, pool_cached_tokens,
                                     random_assignment, simulate_lru)


def _chains(chains, block_tokens, inputs) -> BlockChains:
    arr = np.empty(len(chains), dtype=object)
    for i, c in enumerate(chains):
        arr[i] = np.asarray(c, dtype=np.int64)
    return BlockChains(arr, block_tokens, np.asarray(inputs, dtype=np.int64))


# ---- the LRU model ---------------------------------------------------------------------

TINY = _chains([[0, 1, 2], [0, 1, 3], [4, 5], [0, 1, 2]], 10, [30, 30, 20, 30])


@pytest.mark.parametrize("capacity,expected", [
    # 3 blocks: r1 reuses 0,1 (20 tokens); r2 evicts 0,1 (cache 3,4,5); r3 misses
    (3, [0, 20, 0, 0]),
    # 5 blocks: r2's insert evicts only 2; r3 reuses 0,1 and stops at 2
    (5, [0, 20, 0, 20]),
    # everything fits: r3 reuses its 3 blocks, capped at input - 1 = 29 tokens
    (6, [0, 20, 0, 29]),
    (0, [0, 0, 0, 0]),
])
def test_lru_cached_tokens_by_hand(capacity, expected):
    curve = HitCurve(TINY)
    assert curve.cached_tokens(capacity).tolist() == expected
    assert simulate_lru(TINY, capacity, np.zeros(4, dtype=np.int64), 1).tolist() == expected
    assert curve.hit_rate(capacity) == pytest.approx(sum(expected) / 110)


def _conversations(sessions=60, turns=4, new_blocks=3, block_tokens=64, seed=1):
    """Interleaved conversations: every prompt starts with a shared system block (id 0),
    then its session's history, growing `new_blocks` blocks a turn (chained ids)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(sessions):
        t0 = rng.uniform(0, 100.0)
        for t in range(turns):
            n = 1 + new_blocks * (t + 1)
            ids = [0] + [1 + s * 1000 + j for j in range(n - 1)]
            rows.append((t0 + 30.0 * t + rng.uniform(0, 5), ids,
                         n * block_tokens - int(rng.integers(0, block_tokens)),
                         int(rng.integers(20, 80))))
    rows.sort(key=lambda r: r[0])
    return rows


def test_cache_aware_routing_beats_random_spread_and_more_replicas_help():
    rows = _conversations()
    bc = _chains([r[1] for r in rows], 64, [r[2] for r in rows])
    curve = HitCurve(bc)
    cap = 40
    aware = [pool_cached_tokens(bc, curve, cap, n, "cache_aware").sum() for n in (1, 2, 4)]
    rand = [pool_cached_tokens(bc, curve, cap, n, "random").sum() for n in (1, 2, 4)]
    assert aware[0] == rand[0]                       # one replica: the same cache
    assert aware[0] < aware[1] < aware[2]            # n x C blocks
    assert rand[1] < aware[1] and rand[2] < aware[2]
    # a random spread is an exact replay: its per-replica caches see 1/n of the requests
    a = random_assignment(len(rows), 4, seed=0)
    assert rand[2] == simulate_lru(bc, cap, a, 4).sum()


# ---- the planner charges misses only ---------------------------------------------------

def test_prefill_capacity_charges_only_cache_misses():
    cat = load_catalog()
    pm = PerfModel(load_model("llama-3.1-8b"), cat)
    s = ReplicaShape("L40S", 1, 1, "fp8", "fp8")
    c = single_class("c", 1.0, 4000, 100, p90_input_tokens=6000)
    slo = SLO(ttft_ms=2000, tpot_ms=50, percentile=90)
    full = prefill_capacity(pm, s, c, slo, "ib-400g", False)
    assert prefill_capacity(pm, s, c, slo, "ib-400g", False, 0.0) == full
    half = prefill_capacity(pm, s, c, slo, "ib-400g", False, 2000.0)
    assert half.cached_tokens == 2000
    # k prompts of 2,000 new tokens after 2,000 cached ones, per prefill step
    k = half.batch
    assert half.capacity_rps == pytest.approx(
        k / pm.prefill_time_s(s, 2000, k, cached_tokens=2000))
    assert 1.3 * full.capacity_rps < half.capacity_rps < 2.0 * full.capacity_rps * \
        max(1, k / full.batch)


# ---- planner vs simulator on a small trace with repeated prefixes ----------------------

SCENARIO = """
name: prefix-test
model: llama-3.1-8b
workload:
  trace: {trace}
  format: mooncake
  classes: {{n_input: 2, n_output: 1}}
slo: {{ttft_ms: 2000, tpot_ms: 60, percentile: 90}}
catalog: {{gpus: [L40S], prices: 2026-04-17-seed}}
constraints: {{weight_dtypes: [fp8], kv_dtypes: [fp8], max_tp: 1, roles: [prefill, decode]{extra}}}
"""


def _write_mooncake(path, rows, block_tokens=512, time_scale=1.0):
    with open(path, "w") as f:
        for t, ids, n_in, n_out in rows:
            f.write(json.dumps({"timestamp": int(t * 1000 * time_scale), "input_length": n_in,
                                "output_length": n_out, "hash_ids": ids}) + "\n")


@pytest.fixture(scope="module")
def conv_case(tmp_path_factory):
    """Conversations whose histories outgrow one L40S replica's cache (512-token blocks)."""
    d = tmp_path_factory.mktemp("prefix")
    cat = load_catalog()
    return conv_plans(d, cat), PerfModel(load_model("llama-3.1-8b"), cat), d


CONV_VARIANTS = {"on": "", "off": ", prefix_cache: false",
                 "random": ", prefix_routing: random"}


def conv_plans(d: Path, cat, keys=tuple(CONV_VARIANTS)) -> dict:
    """key -> (resolved scenario, plan) of the conversation trace written into `d`
    (test_emit_vllm.py checks the "on" plan's emitted flags with vLLM's parsers)."""
    rows = _conversations(sessions=400, turns=4, new_blocks=4, block_tokens=512, seed=2)
    _write_mooncake(d / "conv.jsonl", rows)
    out = {}
    for key in keys:
        (d / f"{key}.yaml").write_text(SCENARIO.format(trace=d / "conv.jsonl",
                                                       extra=CONV_VARIANTS[key]))
        rs = load_scenario(d / f"{key}.yaml", cat)
        out[key] = (rs, plan_scenario(rs, cat))
    return out


def test_loader_keeps_mooncake_block_ids(conv_case):
    _, _, d = conv_case
    t = load_trace(d / "conv.jsonl")
    assert t.block_tokens == 512 and t.block_hashes is not None
    assert t.block_hashes.size == t.num_requests
    assert all(c[0] == 0 for c in t.block_hashes)            # the shared system block


def test_simulated_hit_rate_matches_the_plan(conv_case):
    plans, pm, _ = conv_case
    for key in ("on", "random"):
        rs, plan = plans[key]
        pc = plan.prefix_cache
        assert pc is not None and pc.routing == ("random" if key == "random" else "cache_aware")
        assert 0.05 < pc.hit_rate < 0.9
        rep, res = simulate_plan(plan, rs.trace, pm)
        sp = rep.prefix_cache
        assert sp is not None and sp.cached_tokens == int(res.cached_tokens.sum()) > 0
        assert abs(sp.hit_rate - sp.planned_hit_rate) < 0.05, (key, sp)
        assert abs(sp.planned_hit_rate - pc.hit_rate) < 0.02
    # deterministic
    rs, plan = plans["on"]
    a, _ = simulate_plan(plan, rs.trace, pm)
    b, _ = simulate_plan(plan, rs.trace, pm)
    assert a.to_json() == b.to_json()


def test_the_cache_makes_the_plan_no_dearer_and_the_switch_turns_it_off(conv_case, tmp_path):
    plans, pm, d = conv_case
    on, off = plans["on"][1], plans["off"][1]
    assert off.prefix_cache is None and "prefix_cache" not in json.loads(off.to_json())
    assert on.cost_usd_per_hour <= off.cost_usd_per_hour
    assert sum(c.saved_tokens_per_s for c in on.prefix_cache.classes) > 0
    # switch off = the plan of the same trace without block ids (today's planner)
    rows = _conversations(sessions=400, turns=4, new_blocks=4, block_tokens=512, seed=2)
    with open(tmp_path / "plain.jsonl", "w") as f:
        for t, _, n_in, n_out in rows:
            f.write(json.dumps({"timestamp": int(t * 1000), "input_length": n_in,
                                "output_length": n_out}) + "\n")
    (tmp_path / "plain.yaml").write_text(SCENARIO.format(trace=tmp_path / "plain.jsonl",
                                                          extra=""))
    cat = load_catalog()
    plain = plan_scenario(load_scenario(tmp_path / "plain.yaml", cat), cat)
    assert plain.prefix_cache is None
    assert [p.model_dump() for p in plain.pools] == [p.model_dump() for p in off.pools]
    # off: no cache in the simulator either
    rep, res = simulate_plan(off, plans["off"][0].trace, pm)
    assert rep.prefix_cache is None and int(res.cached_tokens.sum()) == 0


def test_emitted_flags_follow_the_plan(conv_case):
    plans, _, _ = conv_case
    for key, policy in (("on", "cache_aware"), ("random", "power_of_two")):
        plan = plans[key][1]
        ctx = build_context(plan, EmitOptions())
        for p in plan.pools:
            flags = engine_flags(p, ctx.settings[p.name], ctx.opts)
            assert ("--enable-prefix-caching" in flags) == (p.role == "prefill")
        argv = router_argvs(ctx)[0][1]
        assert argv[argv.index("--prefill-policy") + 1] == policy
    off = plans["off"][1]
    ctx = build_context(off, EmitOptions())
    assert not any("--enable-prefix-caching" in engine_flags(p, ctx.settings[p.name], ctx.opts)
                   for p in off.pools)


# ---- the simulator's cache-aware router --------------------------------------------------

def test_simulator_cache_aware_routing_hits_more_than_least_loaded():
    rows = _conversations(sessions=40, turns=4, new_blocks=3, block_tokens=64, seed=3)
    bc = _chains([r[1] for r in rows], 64, [r[2] for r in rows])
    arr = np.array([r[0] for r in rows])
    n = len(rows)
    hits = {}
    for aware in (False, True):
        spec = PoolSpec("p", "prefill", 4, ConstantSteps(0.05), max_seqs=4,
                        prefix_blocks=30, prefix_block_tokens=64, cache_aware=aware)
        res = run(arr, bc.input_tokens, np.full(n, 10), np.zeros(n, dtype=np.int64),
                  np.full(n, -1), [spec], chains=bc.chains)
        assert (res.done_s >= 0).all()
        hits[aware] = int(res.cached_tokens.sum())
    assert hits[True] > hits[False] > 0
    assert math.isfinite(hits[True])


# ---- the real Mooncake trace, when a copy is present -----------------------------------

TRACES = Path(os.environ.get("HETPLAN_TRACES_DIR",
                             Path(__file__).resolve().parent.parent.parent / "shared" / "traces"))
MOONCAKE = TRACES / "mooncake_conversation_trace.jsonl"


@pytest.mark.skipif(not MOONCAKE.exists(), reason=f"no Mooncake trace under {TRACES}")
def test_unbounded_cache_matches_the_loaders_shared_prefix_on_mooncake():
    """Two independent computations: Mattson's distances at infinite capacity and the
    loader's first-seen prefix (ingest), per request (capped at input - 1)."""
    t = load_trace(MOONCAKE)
    curve = HitCurve(block_chains(t))
    inf = curve.cached_tokens(1 << 40)
    assert (inf == np.minimum(t.prefix_tokens, t.input_tokens - 1)).all()
    assert 0.3 < curve.hit_rate(1 << 40) < 0.45          # the 37% of input tokens
    rates = [curve.hit_rate(c) for c in (100, 1000, 10000, 100000)]
    assert rates == sorted(rates) and rates[0] < rates[-1]


# The emitted prefix flags (prefill `vllm serve`, cache-aware `vllm-router`) are checked by
# vLLM's own parsers in tests/test_emit_vllm.py, in its one batch (vLLM imports once).
