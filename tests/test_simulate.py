"""Simulator: fast step times agree with the perf model, the event loop agrees with queueing
theory (M/D/1) and with Lindley's recursion, requests and tokens are conserved (also under
preemption), runs are deterministic, the default plan simulates sanely, the CLI and the
repair loop work."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from hetplan.catalog import load_catalog
from hetplan.cli import app
from hetplan.io import workloads_dir
from hetplan.model import load_model
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.planner import plan_scenario
from hetplan.scenario import load_scenario
from hetplan.simulate import SimOptions, simulate_plan
from hetplan.simulate.engine import LinkModel, PoolSpec, run
from hetplan.simulate.steps import ConstantSteps, StepModel
from hetplan.simulate.workload import scenario_trace
from hetplan.workload import make_trace

DEFAULT = workloads_dir() / "default.yaml"

REPAIR_SCENARIO = """
name: repair
model: llama-3.1-8b
workload:
  synthetic:
    arrival: {process: gamma, rate_rps: 20.0, cv: 3.0}
    input_tokens: {dist: fixed, value: 2000}
    output_tokens: {dist: fixed, value: 100}
    duration_s: 120
    seed: 3
slo: {ttft_ms: 500, tpot_ms: 40, percentile: 90}
catalog: {gpus: [L40S], prices: 2026-04-17-seed}
constraints: {target_utilization: 1.0, sizing: utilization, weight_dtypes: [fp8], kv_dtypes: [fp8], max_tp: 1}
"""


@pytest.fixture(scope="module")
def default_case():
    cat = load_catalog()
    s = load_scenario(DEFAULT, cat)
    plan = plan_scenario(s, cat)
    return s, plan, PerfModel(s.model, cat)


# ---- step times ------------------------------------------------------------------------

@pytest.mark.parametrize("model,shape", [
    ("llama-3.1-8b", ReplicaShape("L40S", 1, 1, "fp8", "fp8")),
    ("gpt-oss-20b", ReplicaShape("H100-SXM", 1, 1, "bf16", "bf16")),    # MoE, windowed
])
def test_step_model_matches_perf_model(model, shape):
    pm = PerfModel(load_model(model), load_catalog())
    sm = StepModel(pm, shape)
    rng = random.Random(0)
    for _ in range(60):
        lens = [rng.randint(1, 3000 if rng.random() < 0.5 else 60)
                for _ in range(rng.randint(1, 12))]
        assert sm.prefill_s(lens) == pytest.approx(pm.prefill_time_s(shape, lens), rel=0.01)
        b, ctx = rng.randint(1, 512), rng.randint(1, 8000)
        assert sm.decode_s(b, b * ctx) == pytest.approx(pm.decode_step_s(shape, b, ctx),
                                                        rel=0.01)
        chunk, done = rng.randint(16, 2048), rng.randint(0, 2000)
        mixed = sm.step_s(b + chunk, b + 1,
                          b * sm.kv_layer_tokens(ctx) + sm.prefill_keys(chunk, done),
                          b * sm.kv_layer_tokens(ctx) + sm.kv_layer_tokens(chunk + done))
        assert mixed == pytest.approx(pm.mixed_step_s(shape, b, ctx, chunk, done), rel=0.01)


def test_link_model_matches_kv_transfer():
    pm = PerfModel(load_model("llama-3.1-70b"), load_catalog())
    link = pm.links.link("ib-400g")
    lm = LinkModel(link.achieved_bytes_per_s, link.latency_us * 1e-6,
                   pm.links.kv.exposed_layers, pm.model.num_layers)
    for n, p in ((256, 0.0), (256, 0.5), (8000, 0.01)):
        nbytes = pm.model.kv_bytes_per_sequence(n, "fp8")
        assert lm.transfer_s(nbytes, p)[1] == pytest.approx(
            pm.kv_transfer_s(n, "fp8", link, prefill_s=p))


# ---- queueing theory -------------------------------------------------------------------

def _md1(rho: float, n: int, service_s: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(service_s / rho, size=n))
    res = run(arrival, np.full(n, 100), np.ones(n, int), np.zeros(n, int), np.full(n, -1),
              [PoolSpec("p", "prefill", 1, ConstantSteps(service_s), max_seqs=1)])
    return arrival, res.start_s - arrival


@pytest.mark.parametrize("rho,n", [(0.5, 40_000), (0.65, 60_000), (0.8, 200_000)])
def test_md1_mean_wait_matches_pollaczek_khinchine(rho, n):
    s = 0.01
    _, wait = _md1(rho, n, s)
    assert wait.mean() == pytest.approx(rho * s / (2 * (1 - rho)), rel=0.05)


def test_single_server_follows_lindley_recursion():
    s = 0.01
    arrival, wait = _md1(0.7, 5_000, s, seed=1)
    w = np.zeros_like(arrival)
    for i in range(1, arrival.size):
        w[i] = max(0.0, w[i - 1] + s - (arrival[i] - arrival[i - 1]))
    assert np.allclose(wait, w, atol=1e-9)


def test_timeline_of_one_request_follows_the_step_times():
    pre, dec, link = 0.02, 0.01, LinkModel(1e9, 1e-3)
    pools = [PoolSpec("p", "prefill", 1, ConstantSteps(pre), links={1: link}),
             PoolSpec("d", "decode", 1, ConstantSteps(pre, dec)),
             PoolSpec("c", "colocated", 1, ConstantSteps(pre, dec), token_budget=512,
                      min_chunk=64)]
    res = run(np.array([0.0, 10.0]), np.array([1000, 1000]), np.array([5, 5]),
              np.array([0, 2]), np.array([1, -1]), pools)
    hand_off = link.transfer_s(0.0, pre)[1]          # ConstantSteps: no KV bytes
    ttft = res.first_token_s - res.arrival_s
    # disaggregated: prefill, hand-off, then the first decode step yields token 1
    assert ttft[0] == pytest.approx(pre + hand_off + dec)
    # colocated: 1000 prompt tokens in chunks of 512 take two steps, then 4 decode steps
    assert ttft[1] == pytest.approx(2 * pre)
    assert res.done_s - res.first_token_s == pytest.approx([4 * dec, 4 * dec])


# ---- conservation, preemption, determinism -----------------------------------------------

def _tiny_kv_run(role: str):
    rng = np.random.default_rng(2)
    n = 400
    arrival = np.cumsum(rng.exponential(0.01, size=n))
    inp = rng.integers(50, 400, size=n)
    out = rng.integers(1, 300, size=n)
    pools = [PoolSpec("p", "prefill", 1, ConstantSteps(0.005), max_seqs=4, links={
        1: LinkModel(1e9, 1e-4)}, nic_bytes_per_s=1e9),
             PoolSpec("d", "decode", 1, ConstantSteps(0.01, 0.01), max_seqs=64,
                      kv_tokens=3000),
             PoolSpec("c", "colocated", 1, ConstantSteps(0.01, 0.01), max_seqs=64,
                      kv_tokens=3000, token_budget=512, min_chunk=64)]
    first = np.zeros(n, int) if role == "decode" else np.full(n, 2)
    dec = np.ones(n, int) if role == "decode" else np.full(n, -1)
    return run(arrival, inp, out, first, dec, pools), inp, out


@pytest.mark.parametrize("role", ["decode", "colocated"])
def test_every_request_finishes_once_and_tokens_are_conserved_under_preemption(role):
    res, inp, out = _tiny_kv_run(role)
    assert res.preemptions.sum() > 0                     # KV memory ran out
    assert res.outstanding == 0 and not res.dropped.any()
    assert (res.done_s >= res.first_token_s).all()
    assert (res.first_token_s >= res.start_s).all() and (res.start_s >= res.arrival_s).all()
    assert np.array_equal(res.generated, out)


def test_default_plan_simulates_sanely_and_deterministically(default_case):
    s, plan, pm = default_case
    trace = scenario_trace(s, requests=3000)
    rep, res = simulate_plan(plan, trace, pm, SimOptions(seed=1))
    assert rep.requests == rep.completed == 3000 and res.outstanding == 0
    assert 0.0 <= rep.slo_attainment <= 1.0
    assert rep.ttft_p50_ms <= rep.ttft_p90_ms <= rep.ttft_p99_ms
    assert rep.tpot_p50_ms <= rep.tpot_p90_ms <= rep.tpot_p99_ms
    # physical floors: one prompt alone, and a decode step at batch 1
    shapes = [ReplicaShape(p.gpu, p.tp, p.pp, p.weight_dtype, p.kv_dtype) for p in plan.pools]
    assert rep.ttft_p50_ms >= 1e3 * min(pm.prefill_time_s(x, 256) for x in shapes)
    assert rep.tpot_p50_ms >= 1e3 * min(pm.decode_step_s(x, 1, 256) for x in shapes)
    assert all(0.0 <= p.utilization <= 1.0 + 1e-9 for p in rep.pools)
    assert int(np.sum(res.generated)) == int(trace.output_tokens.sum())
    again, _ = simulate_plan(plan, trace, pm, SimOptions(seed=1))
    assert again.to_json() == rep.to_json()


def test_requests_outside_the_planned_bins_are_routed(default_case):
    _, plan, pm = default_case
    trace = make_trace([0.0, 0.1, 0.2], [10, 256, 3000], [5, 512, 40])
    rep, res = simulate_plan(plan, trace, pm)
    assert rep.completed == 3 and res.outstanding == 0


# ---- CLI and the repair loop -------------------------------------------------------------

def test_cli_simulate_json_and_outputs(default_case, tmp_path):
    _, plan, _ = default_case
    (tmp_path / "plan.json").write_text(plan.to_json())
    r = CliRunner().invoke(app, ["simulate", str(tmp_path / "plan.json"), "--requests", "1500",
                                 "--json", "--out", str(tmp_path / "sim")])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {"ttft_p90_ms", "tpot_p90_ms", "slo_attainment", "classes", "pools"} <= set(d)
    assert d["requests"] == 1500
    assert json.loads((tmp_path / "sim" / "sim.json").read_text()) == d
    assert (tmp_path / "sim" / "latency_cdf.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_simulate_csv_trace_and_bad_input(default_case, tmp_path):
    _, plan, _ = default_case
    (tmp_path / "plan.json").write_text(plan.to_json())
    (tmp_path / "t.csv").write_text("arrival_s,input_tokens,output_tokens\n0,256,512\n"
                                    "0.5,300,100\n")
    r = CliRunner().invoke(app, ["simulate", str(tmp_path / "plan.json"), "--trace",
                                 str(tmp_path / "t.csv")])
    assert r.exit_code == 0, r.output
    assert "simulated 2 requests" in r.stdout
    r = CliRunner().invoke(app, ["simulate", str(tmp_path / "plan.json"), "--trace",
                                 str(tmp_path / "missing.csv")])
    assert "file not found" in str(r.exception)


def test_solve_validate_repairs_a_plan_that_misses_the_slo(tmp_path):
    (tmp_path / "repair.yaml").write_text(REPAIR_SCENARIO)
    r = CliRunner().invoke(app, ["solve", str(tmp_path / "repair.yaml"), "--validate",
                                 "--max-rounds", "6", "--json", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)["validation"]
    rounds = v["rounds"]
    assert len(rounds) >= 2 and not rounds[0]["slo_met"] and v["slo_met"]
    passing = [x for x in rounds if x["slo_met"]]
    kept = rounds[v["chosen_round"] - 1]
    assert kept["slo_met"] and kept["cost_usd_per_hour"] == min(
        x["cost_usd_per_hour"] for x in passing)
    assert v["first_cost_usd_per_hour"] == rounds[0]["cost_usd_per_hour"]
    assert v["planner_gap_usd_per_hour"] == pytest.approx(
        kept["cost_usd_per_hour"] - rounds[0]["cost_usd_per_hour"])
    plan = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert plan["cost_usd_per_hour"] == pytest.approx(kept["cost_usd_per_hour"])
    md = (tmp_path / "o" / "report.md").read_text()
    assert "Validation (simulated)" in md and "planner gap" in md and "batch observed" in md
    sim = json.loads((tmp_path / "o" / "sim.json").read_text())
    assert sim["slo_met"] and sim["cost_usd_per_hour"] == plan["cost_usd_per_hour"]



def test_decode_join_step_costs_a_decode_step():
    """A sequence that arrives with its KV adds one token to the step it joins, so a step
    with joins costs a decode step of the whole batch (it was once costed as a step of the
    older sequences' tokens only, through the prefill-derated path at large batches)."""
    shape = ReplicaShape("H100-SXM", 2, 1, "fp8", "fp8")
    pm = PerfModel(load_model("llama-3.1-70b"), load_catalog())
    steps = StepModel(pm, shape)
    n, pre = 300, 0.05
    pools = [PoolSpec("p", "prefill", 1, ConstantSteps(pre), max_seqs=n,
                      prefill_max_tokens=n * 256, links={1: LinkModel(1e12, 0.0)}),
             PoolSpec("d", "decode", 1, steps, max_seqs=n,
                      kv_tokens=pm.memory(shape).kv_capacity_tokens)]
    res = run(np.zeros(n), np.full(n, 256), np.full(n, 2), np.zeros(n, dtype=np.int64),
              np.ones(n, dtype=np.int64), pools)
    # Timeline: the first arrival is prefilled alone and decodes alone (2 steps); the other
    # n-1 are prefilled together and handed off at 2 x pre; the first of them to land
    # starts a step alone, the other n-2 join the next step (its second token), then finish
    # one step later. The join step is the one this test is about.
    t_alone = steps.decode_s(1, 256)
    t_join = steps.decode_s(n - 1, 257 + (n - 2) * 256)
    t_last = steps.decode_s(n - 2, (n - 2) * 257)
    assert res.done_s[0] == pytest.approx(pre + t_alone + steps.decode_s(1, 257), rel=1e-9)
    assert res.done_s[1] == pytest.approx(2 * pre + t_alone + t_join, rel=1e-9)
    assert np.allclose(res.done_s[2:], 2 * pre + t_alone + t_join + t_last, rtol=1e-9)
