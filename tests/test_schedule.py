"""Capacity schedule (issue 17): rate profiles, tiers, the schedule MILP against brute force,
and `hetplan schedule --json`. Kept small: the whole file runs in seconds."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import yaml

from hetplan.candidates import Candidate, ClassCapacity
from hetplan.errors import InputError
from hetplan.perf import ReplicaShape
from hetplan.schedule.curve_rows import planned_held
from hetplan.schedule.formulation import KINDS, ScheduleProblem, solve_schedule
from hetplan.schedule.sizing import held, with_top_up
from hetplan.schedule.spec import ScheduleSpec
from hetplan.schedule.tiers import GpuTiers, owned_usd_per_hour
from hetplan.slo_capacity import PoolCurve
from hetplan.workload import make_trace, single_class
from hetplan.workload.profile import RateShape, profile_from_shape, profile_from_trace
from schedule_fixture import TINY_SCHEDULE_BODY


# ---- profiles ---------------------------------------------------------------------------
def _trace(rates_per_hour):
    """Arrivals evenly spread inside each hour at the given requests per hour; short and
    long requests alternate."""
    arr = []
    for h, n in enumerate(rates_per_hour):
        arr += list(h * 3600 + (np.arange(n) + 0.5) * 3600 / n)
    n = len(arr)
    inp = np.where(np.arange(n) % 2 == 0, 100, 2000)
    return make_trace(np.array(arr), inp, np.full(n, 50))


def test_profile_from_trace_counts_rate_per_slot_and_class():
    t = _trace([360, 720, 1080])
    from hetplan.workload import bucket
    classes = bucket(t, 2, 1)
    p = profile_from_trace(t, classes, slot_s=3600)
    assert p.num_slots == 3
    # 360, 720, 1080 requests an hour: 0.1, 0.2, 0.3 req/s, half in each class
    assert np.allclose(p.total_rps, [0.1, 0.2, 0.3], rtol=0.01)
    assert np.allclose(p.rates_rps[:, 0], p.rates_rps[:, 1], rtol=0.02)


def test_profile_percentile_inside_slot_is_at_least_the_mean():
    t = _trace([360, 720, 1080])
    classes = [single_class("all", 0.2, 1000, 50, 2000, 50)]
    classes = [c.__class__(**{**c.__dict__, "input_lo": 1, "input_hi": 10_000,
                              "output_lo": 1, "output_hi": 10_000}) for c in classes]
    mean = profile_from_trace(t, classes, 3600, planning_rate="mean")
    p99 = profile_from_trace(t, classes, 3600, planning_rate="p99", window_s=60)
    assert np.all(p99.total_rps >= mean.total_rps * 0.99)


def test_profile_errors_are_one_line():
    t = make_trace(np.array([10.0, 20.0, 7300.0, 7400.0]), np.full(4, 100), np.full(4, 10))
    classes = [single_class("all", 1.0, 100, 10)]
    with pytest.raises(InputError, match="slot 1 .* has no requests") as e:
        profile_from_trace(t, classes, slot_s=3600)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="longer than a week"):
        profile_from_shape(RateShape(base_rps=1.0), classes, slot_s=60, horizon_s=8 * 86400)
    with pytest.raises(InputError, match="shorter than 60 s"):
        profile_from_shape(RateShape(base_rps=1.0), classes, slot_s=30)
    with pytest.raises(ValueError, match="negative rates"):
        RateShape(base_rps=1.0, multipliers=[1.0, -0.5])
    with pytest.raises(InputError, match="zero rate"):
        profile_from_shape(RateShape(base_rps=1.0, multipliers=[1.0, 0.0]), classes,
                           slot_s=43200)


def test_shape_profile_follows_the_sinusoid():
    classes = [single_class("a", 1.0, 100, 10)]
    p = profile_from_shape(RateShape(base_rps=10.0, amplitude=0.5, phase_s=0.0), classes,
                           slot_s=3600)
    assert p.num_slots == 24
    assert p.total_rps.max() == pytest.approx(15.0, rel=0.01)   # peak near hour 6
    assert int(np.argmax(p.total_rps)) in (5, 6)
    assert np.average(p.total_rps) == pytest.approx(10.0, rel=0.01)


def test_owned_cost_is_amortized_capex_plus_power():
    spec = ScheduleSpec(amortization_years=4, power_usd_per_kwh=0.1, pue=1.0)
    assert owned_usd_per_hour(35_040.0, 1000.0, spec) == pytest.approx(1.0 + 0.1)


# ---- the schedule MILP against brute force (3 slots, 2 GPUs) ----------------------------
def _cand(gpu: str, cap: float) -> Candidate:
    return Candidate(ReplicaShape(gpu), "colocated", "nvidia", 1.0,
                     {"w": ClassCapacity(cap)})


def _brute(p: ScheduleProblem, most: int = 4) -> float:
    """Cheapest cyclic 3-slot schedule by enumerating every state (committed and on-demand
    replicas of c1, on-demand and spot replicas of c2, 0..most-1 each) in every slot and
    every committed count: an exhaustive min-plus product over the cycle, in numpy. Under
    queueing sizing (`p.curves`) a state carries mu x `planned_held` per pool (U(n), spot
    derated, with one spot replica down), else rho x mu per replica."""
    c1, c2 = p.candidates
    hours = p.slot_hours
    od1, com1 = p.price(c1, "on_demand"), p.tiers["G1"].committed_usd_per_hour
    od2, sp2 = p.price(c2, "on_demand"), p.price(c2, "spot")
    st = np.array(list(itertools.product(range(most), repeat=4)), dtype=float)   # a1 o1 o2 s2
    if p.curves:
        def pool(c, n, spot):
            return c.capacity("w") * np.array([planned_held(
                p.curves[c.key], int(a), int(b), p.spot_capacity_share(c),
                p.down_curves[c.key]) for a, b in zip(n, spot)])
        cap = (pool(c1, st[:, 0] + st[:, 1], 0 * st[:, 0])
               + pool(c2, st[:, 2] + st[:, 3], st[:, 3]))
    else:
        cap = (p.rho[c1.key] * c1.capacity("w") * (st[:, 0] + st[:, 1]) + p.rho[c2.key]
               * c2.capacity("w") * (st[:, 2] + p.spot_capacity_share(c2) * st[:, 3]))
    spot_ok = st[:, 3] <= p.max_spot_share * st.sum(axis=1) + 1e-9
    n1, n2 = st[:, 0] + st[:, 1], st[:, 2] + st[:, 3]

    def step_ok(before, now):
        return np.abs(now[None, :] - before[:, None]) <= (
            p.max_step_replicas + p.max_step_share * before[:, None] + 1e-9)

    move_ok = step_ok(n1, n1) & step_ok(n2, n2)
    warm = (np.maximum(0, st[None, :, 1] - st[:, None, 1]) * p.warmup_h[c1.key] * od1
            + np.maximum(0, st[None, :, 2] - st[:, None, 2]) * p.warmup_h[c2.key] * od2
            + np.maximum(0, st[None, :, 3] - st[:, None, 3]) * p.warmup_h[c2.key] * sp2)
    best = np.inf
    for k in range(most):
        ok_k = spot_ok & (st[:, 0] <= k)
        slot = [np.where(ok_k & (cap + 1e-9 >= p.rates_rps[t, 0]),
                         hours[t] * (st[:, 1] * od1 + st[:, 2] * od2 + st[:, 3] * sp2), np.inf)
                for t in range(3)]
        # edge[t][i, j]: from state i in slot t-1 to state j in slot t
        edge = [np.where(move_ok, warm + slot[t][None, :], np.inf) for t in range(3)]
        ab = np.min(edge[1][:, :, None] + edge[2][None, :, :], axis=1)     # s0 -> s2
        cycle = np.min(ab + edge[0].T, axis=1)                              # s2 -> s0
        best = min(best, k * com1 * hours.sum() + float(np.min(cycle)))
    return best


# U(n) of the two candidates (convex: pooling) and, for the spot one, U at the SLO's
# percentile with one replica down: the brute force and the MILP size pools on these
CURVES = {"G1": PoolCurve((0.0, 0.5, 1.3, 2.2), 0.95), "G2": PoolCurve((0.0, 0.6, 1.4), 0.9)}
DOWN = {"G1": CURVES["G1"], "G2": PoolCurve((0.0, 0.7, 1.6, 2.6), 1.0)}


@pytest.mark.parametrize("rates,step,spot_usd,queueing", [
    ([1.0, 2.5, 2.0], 1, 0.6, False), ([0.5, 2.5, 2.5], 0, 0.6, False),
    ([2.0, 2.0, 0.4], 2, 0.6, False), ([1.0, 2.5, 2.0], 1, 0.1, True),
    ([0.5, 2.5, 2.5], 0, 0.6, True), ([2.0, 2.0, 0.4], 2, 0.6, True)])
def test_schedule_milp_matches_brute_force(rates, step, spot_usd, queueing):
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, 1.2, "reserved"),
             "G2": GpuTiers("G2", 1.5, spot_usd, 0.2, False, None, None)}
    c1, c2 = _cand("G1", 1.25), _cand("G2", 1.0)
    p = ScheduleProblem(
        candidates=[c1, c2], class_names=("w",), rates_rps=np.array(rates)[:, None],
        slot_hours=np.array([1.0, 2.0, 1.0]), rho={c1.key: 0.8, c2.key: 0.9}, tiers=tiers,
        warmup_h={c1.key: 0.1, c2.key: 0.05}, spot_loss_h=0.1, max_step_replicas=step,
        max_step_share=0.0, max_spot_share=0.5, cyclic=True, tie_break=0.0,
        curves={c.key: CURVES[c.shape.gpu] for c in (c1, c2)} if queueing else None,
        down_curves={c.key: DOWN[c.shape.gpu] for c in (c1, c2)} if queueing else None)
    out = solve_schedule(p, time_limit_s=30)
    assert out.solution.status == "optimal"
    assert out.total_cost_usd == pytest.approx(_brute(p), rel=1e-6, abs=1e-6)
    # every slot's demand is served by what the schedule holds
    for t, r in enumerate(rates):
        n = {(c, k): out.replicas.get((c.key, k), [0] * 3)[t]
             for c in (c1, c2) for k in ("committed", "on_demand", "spot")}
        if queueing:
            cap = sum(c.capacity("w") * held(
                CURVES[c.shape.gpu], sum(n[c, k] for k in KINDS), n[c, "spot"],
                p.spot_capacity_share(c), DOWN[c.shape.gpu]) for c in (c1, c2))
        else:
            cap = sum(p.rho[c.key] * c.capacity("w") * n[c, k]
                      * (p.spot_capacity_share(c) if k == "spot" else 1.0) for c, k in n)
        assert cap >= r - 1e-6
    if queueing:     # the MILP's routes fit U(n) in every slot: the top-up adds nothing
        _, top = with_top_up(out, p.curves, p.down_curves)
        assert top.replicas_added == 0 and top.cost_usd == 0.0 and not top.unmet
    if spot_usd < 0.2:   # cheap spot: held, so the rule with a spot replica down binds
        assert any(out.replicas.get((c2.key, "spot"), [0]))


# ---- CLI ------------------------------------------------------------------------------
SCENARIO = "\nname: tiny-diurnal\n" + TINY_SCHEDULE_BODY + """\
constraints: {max_tp: 1, weight_dtypes: [fp8], kv_dtypes: [fp8], sizing: utilization}
schedule:
  slot_s: 21600
  representative_slots: 2
  profile: {base_rps: 40, amplitude: 0.6}
"""


def test_cli_schedule_json_keys_and_files(tmp_path):
    from cli_harness import run_main
    sc = tmp_path / "tiny.yaml"
    sc.write_text(SCENARIO)
    res = run_main("schedule", str(sc), "--out", str(tmp_path / "out"), "--json",
                   "--emit", "k8s", "--workers", "2", budget_s=60)
    assert res.code == 0, res.err + res.tb
    out = json.loads(res.out)
    for key in ("horizon_cost_usd", "static_peak_cost_usd", "lower_bound_cost_usd",
                "reactive_cost_usd", "committed_mix"):
        assert key in out
    assert out["lower_bound_cost_usd"] <= out["horizon_cost_usd"] + 1e-6
    assert (out["lower_bound_cost_usd"] - 1e-6 <= out["reactive_cost_usd"]
            <= out["static_peak_cost_usd"] + 1e-6)
    assert out["horizon_cost_usd"] < out["static_peak_cost_usd"]
    # utilization sizing (the scenario's): sized by rho, nothing topped up
    assert out["sizing"] == "utilization" and out["queueing_top_up"] is None
    assert "queueing_top_up" not in out["cost_breakdown_usd"]
    saved = json.loads((tmp_path / "out" / "schedule.json").read_text())
    assert saved["summary"]["horizon_cost_usd"] == out["horizon_cost_usd"]
    assert len(saved["profile"]["total_rps"]) == 4
    assert "# Capacity schedule" in (tmp_path / "out" / "schedule.md").read_text()
    # --emit k8s: the committed baseline as a plan and configs, and scaling objects whose
    # targets are the workloads beside them (tests/test_emit_scaling.py checks the rest)
    from hetplan.plan import load_plan
    em = tmp_path / "out" / "emit"
    base = load_plan(em / "baseline-plan.json")
    assert sum(p.gpus for p in base.pools) <= sum(m["gpus"] for m in out["committed_mix"])
    keda = list(yaml.safe_load_all((em / "scaling" / "keda.yaml").read_text()))
    fleet = load_plan(em / "fleet-plan.json")
    assert len(keda) == len(fleet.pools) >= len(base.pools)
    for so in keda:
        name = so["spec"]["scaleTargetRef"]["name"]
        assert yaml.safe_load((em / "scaling" / f"{name}.yaml").read_text().split("---")[0]
                              )["metadata"]["name"] == name
    assert (tmp_path / "out" / "schedule.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved["replay"]["slots"] and saved["replay"]["plan"]["pools"]
    # `hetplan simulate` on the schedule.json: attainment per slot, schedule and baselines
    res = run_main("simulate", str(tmp_path / "out" / "schedule.json"), "--scenario", str(sc),
                   "--sample-s", "4", "--json", budget_s=30)
    assert res.code == 0, res.err + res.tb
    sim = json.loads(res.out)
    assert set(sim) == {"schedule", "static_peak", "reactive"}
    assert len(sim["schedule"]["slots"]) == 4 and sim["schedule"]["requests"] > 0
    assert [s["requests"] for s in sim["schedule"]["slots"]] == [
        s["requests"] for s in sim["static_peak"]["slots"]]       # the same traffic
    # the same files, byte for byte, from the slots solved one after another in-process,
    # under a whole-run budget that leaves the MILP its time
    again = run_main("schedule", str(sc), "--out", str(tmp_path / "one"), "--workers", "1",
                     "--budget", "600", budget_s=60)
    assert again.code == 0, again.err + again.tb
    for name in ("schedule.json", "schedule.md"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "out" / name).read_bytes()


@pytest.mark.parametrize("old,new,says", [
    ("slot_s: 21600", "slot_s: 60\n  horizon_s: 700000", "horizon_s"),      # > a week
    ("amplitude: 0.6", "multipliers: [1.0, -0.5]", "negative rates"),
    ("amplitude: 0.6", "multipliers: [1.0, 0.0]", "zero rate"),
    ("slot_s: 21600", "slot_s: 30", "slot_s")])
def test_cli_schedule_bad_profile_is_one_line(tmp_path, old, new, says):
    from cli_harness import run_main
    sc = tmp_path / "bad.yaml"
    sc.write_text(SCENARIO.replace(old, new))
    res = run_main("schedule", str(sc))
    assert res.code == 2, res.err + res.tb
    assert says in res.err and len(res.err.strip().splitlines()) == 1


def test_cli_schedule_trace_with_an_empty_slot_is_one_line(tmp_path):
    from cli_harness import run_main
    (tmp_path / "gap.csv").write_text("arrival_s,input_tokens,output_tokens\n"
                                      "10,500,100\n20,500,100\n7300,500,100\n7400,500,100\n")
    body = SCENARIO.replace("""  synthetic:
    arrival: {rate_rps: 4}
    input_tokens: {dist: fixed, value: 500}
    output_tokens: {dist: fixed, value: 100}
    duration_s: 120
""", "  trace: gap.csv\n").replace("  profile: {base_rps: 40, amplitude: 0.6}\n", "")
    sc = tmp_path / "gap.yaml"
    sc.write_text(body.replace("slot_s: 21600", "slot_s: 3600"))
    res = run_main("schedule", str(sc))
    assert res.code == 2, res.err + res.tb
    assert "has no requests" in res.err and len(res.err.strip().splitlines()) == 1


def test_workload_stats_shows_the_profile_or_why_not():
    from hetplan.workload.stats import trace_stats
    st = trace_stats(_trace([360, 720, 1080]), 1, slot_s=3600)
    assert st["profile"]["slots"] == 3
    assert st["profile"]["peak_rps"] == pytest.approx(0.3, rel=0.01)
    gap = make_trace(np.array([10.0, 20.0, 7300.0, 7400.0]), np.full(4, 100), np.full(4, 10))
    st = trace_stats(gap, 1, slot_s=3600)
    assert "profile" not in st and "has no requests" in st["profile_error"]


def test_tier_figures_need_a_source(tmp_path):
    from hetplan.catalog import load_catalog, load_price_sheet
    gpus = load_catalog().gpus
    sheet = tmp_path / "s.yaml"
    body = ("as_of: '2026-11-30'\nreferences: {r: 'a quote'}\noffers:\n"
            "  - {gpu: H100-SXM, provider: p, price_usd_per_hour: 2.0, source: r,\n"
            "     reserved_price_usd_per_hour: 1.5%s}\n")
    sheet.write_text(body % "")
    with pytest.raises(InputError, match="reserved_price_usd_per_hour.*no source"):
        load_price_sheet(sheet, gpus)
    sheet.write_text(body % ", sources: {reserved_price_usd_per_hour: r}")
    assert load_price_sheet(sheet, gpus).offers[0].reserved_price_usd_per_hour == 1.5
    sheet.write_text(body % ", sources: {reserved_price_usd_per_hour: r}"
                     + "owned:\n  - {gpu: H100-SXM, capex_usd_per_gpu: 30000, source: nope}\n")
    with pytest.raises(InputError, match="owned.0.source"):
        load_price_sheet(sheet, gpus)


def test_envelope_start_is_feasible_and_never_beaten_by_the_result():
    from dataclasses import replace

    from hetplan.schedule.formulation import ScheduleFormulation, envelope_start, start_cost
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, 1.2, "reserved"),
             "G2": GpuTiers("G2", 1.5, 0.6, 0.2, False, None, None)}
    c1, c2 = _cand("G1", 1.25), _cand("G2", 1.0)
    p = ScheduleProblem(
        candidates=[c1, c2], class_names=("w",), rates_rps=np.array([[0.5], [2.5], [1.0]]),
        slot_hours=np.ones(3), rho={c1.key: 0.8, c2.key: 0.9}, tiers=tiers,
        warmup_h={c1.key: 0.1, c2.key: 0.05}, max_step_replicas=0, max_step_share=0.0,
        max_spot_share=0.5)
    env_rates = p.rates_rps.max(axis=0)
    env = solve_schedule(replace(p, rates_rps=env_rates[None, :], slot_hours=np.ones(1),
                                 max_step_replicas=None, cyclic=False, warmup=False))
    f = ScheduleFormulation(p)
    cost = start_cost(f, envelope_start(f, env, env_rates))
    assert cost is not None
    out = solve_schedule(p, envelope=(env, env_rates))
    assert out.solution.objective <= cost + 1e-6


def test_repaired_stack_of_slots_is_a_feasible_start():
    """Slots solved alone jump more than the change limit allows (0 replicas per slot);
    repair_steps raises the pools next to each jump, so the stack is a feasible start whose
    cost the MILP never exceeds."""
    from hetplan.schedule.formulation import (ScheduleFormulation, repair_steps, stacked_start,
                                              start_cost)
    from hetplan.schedule.decompose import solve_slots
    from hetplan.parallel import INLINE
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, None, None),
             "G2": GpuTiers("G2", 1.5, None, 0.0, False, None, None)}
    c1, c2 = _cand("G1", 1.25), _cand("G2", 1.0)
    p = ScheduleProblem(
        candidates=[c1, c2], class_names=("w",), rates_rps=np.array([[0.5], [4.0], [1.0]]),
        slot_hours=np.ones(3), rho={c1.key: 0.8, c2.key: 0.9}, tiers=tiers,
        warmup_h={c1.key: 0.1, c2.key: 0.05}, max_step_replicas=1, max_step_share=0.0)
    slots = solve_slots(p, "highs", 30, INLINE)
    f = ScheduleFormulation(p)
    raw = {var: float(slots[t].replicas.get((p.candidates[i].key, k), [0])[0])
           for (i, k, t), var in f.n.items()}
    sizes = [sum(raw[v] for (_, _, tt), v in f.n.items() if tt == t) for t in range(3)]
    assert max(sizes) - min(sizes) > 1                     # the raw stack breaks the limit
    start = stacked_start(f, slots)
    cost = start_cost(f, start)
    assert cost is not None
    for (i, k, t), var in f.n.items():                     # only ever raised
        assert start[var] >= raw[var]
    again = dict(start)
    repair_steps(f, again)
    assert again == start                                  # a fixpoint
    assert solve_schedule(p, start_slots=slots).solution.objective <= cost + 1e-6
