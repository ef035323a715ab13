"""Issue 17 items 4-5: the reactive autoscaler baseline, the replay engine with replicas
that come and go, and the horizon simulation of a schedule (spot preemptions, per-slot
attainment). Tiny fixtures; no scenario is solved here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hetplan.candidates import Candidate, ClassCapacity
from hetplan.perf import ReplicaShape
from hetplan.schedule.formulation import ScheduleProblem
from hetplan.schedule.reactive import ReactiveOptions, ScaledPool, reactive_baseline
from hetplan.schedule.replay import run_dynamic
from hetplan.simulate.engine import LinkModel, PoolSpec, run
from hetplan.simulate.steps import ConstantSteps


# ---- the reactive autoscaler ------------------------------------------------------------
def test_reactive_scaler_lags_a_ramp_and_costs_between_bound_and_static_peak():
    from hetplan.schedule.decompose import lower_bound_usd
    from hetplan.schedule.tiers import GpuTiers
    rates = np.array([[1.0], [2.0], [3.0], [4.0]])     # a ramp, 10-minute slots
    lengths = np.full(4, 600.0)
    price, warm_s = 2.0, 180.0
    pool = ScaledPool("p", 4, {"w": 4.0}, price, warm_s)    # peak: 4 replicas for 4 req/s
    opts = ReactiveOptions(tick_s=60.0, observation_window_s=120.0, cooldown_s=300.0)
    r = reactive_baseline([pool], ("w",), rates, lengths, rates[-1], cyclic=False, opts=opts)
    # the first slot starts sized for its rate; each step up is seen one tick later (half
    # of the 2-tick window already shows it) and served after the 3-tick warm-up: 4 of the
    # slot's 10 ticks run one replica short
    assert r.slot_within_capacity == pytest.approx([1.0, 0.6, 0.6, 0.6])
    assert r.slot_mean_ready["p"] == pytest.approx([1.0, 1.6, 2.6, 3.6])
    # one replica per slot-hour is what each slot needs alone (the same capacity: 1 req/s
    # per replica at rho 1, on-demand only)
    c = Candidate(ReplicaShape("G"), "colocated", "nvidia", price, {"w": ClassCapacity(1.0)})
    p = ScheduleProblem(candidates=[c], class_names=("w",), rates_rps=rates,
                        slot_hours=lengths / 3600, rho={c.key: 1.0},
                        tiers={"G": GpuTiers("G", price, None, 0.0, False, None, None)},
                        warmup_h={c.key: warm_s / 3600})
    bound, _ = lower_bound_usd(p, "highs", 10.0)
    static_peak = 4 * price * lengths.sum() / 3600
    tick_usd = price * 60.0 / 3600
    assert bound == pytest.approx(100 * tick_usd)      # 1+2+3+4 replicas x 10 ticks
    # held replica-ticks: what each slot needs, less the tick each step up is not yet seen
    # (a replica is paid from its launch, so its warm-up costs nothing extra here): the
    # lag makes it cheaper than the bound, which serves every slot in full
    assert r.cost_usd == pytest.approx(97 * tick_usd)
    # repeated (cyclic), the ramp's drop from 4 to 1 keeps 4 replicas until the cooldown
    # has seen only lower wants (5 ticks), then 3 for a tick: 17 replica-ticks more
    cyc = reactive_baseline([pool], ("w",), rates, lengths, rates[-1], cyclic=True, opts=opts)
    assert cyc.cost_usd == pytest.approx(114 * tick_usd)
    assert bound < cyc.cost_usd < static_peak
    assert cyc.slot_within_capacity == pytest.approx([1.0, 0.6, 0.6, 0.6])
    # every served interval is a ready replica inside the horizon
    assert all(0 <= lo < hi <= lengths.sum() for lo, hi in r.intervals["p"])


# ---- replicas that come and go ------------------------------------------------------------
def _pools():
    return [PoolSpec("p", "prefill", 0, ConstantSteps(0.005), max_seqs=4,
                     links={1: LinkModel(1e9, 1e-4)}, nic_bytes_per_s=1e9),
            PoolSpec("d", "decode", 0, ConstantSteps(0.01, 0.01), max_seqs=64, kv_tokens=3000),
            PoolSpec("c", "colocated", 0, ConstantSteps(0.01, 0.01), max_seqs=64,
                     kv_tokens=3000, token_budget=512, min_chunk=64)]


def _requests(n=400, seed=2):
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(0.01, size=n))
    first = np.where(np.arange(n) % 2 == 0, 0, 2)
    dec = np.where(first == 0, 1, -1)
    return arrival, rng.integers(50, 400, size=n), rng.integers(1, 300, size=n), first, dec


def test_replicas_always_up_replay_like_the_static_engine():
    arrival, inp, out, first, dec = _requests()
    static = [PoolSpec(**{**p.__dict__, "replicas": 2}) for p in _pools()]
    ref = run(arrival, inp, out, first, dec, static)
    got, requeued = run_dynamic(arrival, inp, out, first, dec, _pools(),
                                [[(0.0, math.inf)] * 2] * 3)
    assert requeued == 0
    assert np.array_equal(got.done_s, ref.done_s)
    assert np.array_equal(got.first_token_s, ref.first_token_s)


def test_replicas_that_leave_hand_their_requests_back_and_late_ones_take_the_backlog():
    arrival, inp, out, first, dec = _requests()
    mid = float(arrival[200])
    # each pool: one replica leaves mid-run, one comes up only after a second
    up = [[(0.0, mid), (1.0, math.inf)]] * 3
    res, requeued = run_dynamic(arrival, inp, out, first, dec, _pools(), up)
    assert requeued > 0
    assert res.outstanding == 0 and not res.dropped.any()
    assert np.array_equal(res.generated, out)            # every token made once in the end
    assert (res.done_s >= res.first_token_s).all() and (res.first_token_s > arrival).all()
    # between the leave and the late replica no replica was up: nothing started then
    gap = (res.start_s > mid + 1e-9) & (res.start_s < 1.0 - 1e-9)
    assert not gap.any()
    assert (res.done_s[arrival > mid] >= 1.0).all()


# ---- the horizon replay of a schedule -----------------------------------------------------
def test_spot_preemptions_follow_their_rate_and_the_seed():
    from hetplan.schedule.simulate import preemptions
    a = preemptions(2.0, 2000 * 3600.0, seed=7, pool=0, replica=1)
    assert a.size == pytest.approx(4000, rel=0.05)         # 2 an hour over 2000 hours
    assert np.array_equal(a, preemptions(2.0, 2000 * 3600.0, seed=7, pool=0, replica=1))
    assert not np.array_equal(a[:10], preemptions(2.0, 2000 * 3600.0, 8, 0, 1)[:10])
    assert preemptions(0.0, 3600.0, 7, 0, 0).size == 0


@pytest.fixture(scope="module")
def replay_case():
    """A 3-slot schedule on the emit test plan's two pools (L40S prefill, H100 decode):
    the second slot adds a spot prefill replica preempted 360 times an hour."""
    from hetplan.catalog import load_catalog
    from hetplan.model import load_model
    from hetplan.perf import PerfModel
    from hetplan.plan import load_plan
    from hetplan.schedule.simulate import SlotTraffic
    from hetplan.workload import make_trace
    plan = load_plan("tests/data/emit_plan.json")
    pre, dec = (p.name for p in plan.pools)
    routes = {pre: {"short": 4.0, "long": 1.0}, dec: {"short": 4.0, "long": 1.0}}
    replay = {"plan": plan.model_dump(mode="json"), "static_peak_plan": None,
              "warmup_s": {pre: 2.0, dec: 2.0}, "spot_reacquire_s": 1.0,
              "spot_preemptions_per_hour": {pre: 360.0, dec: 360.0},
              "slot_start_s": [0.0, 3600.0, 7200.0], "slot_length_s": [3600.0] * 3,
              "slots": [{pre: {"replicas": 1, "spot": 0, "routes_rps": routes[pre]},
                         dec: {"replicas": 1, "spot": 0, "routes_rps": routes[dec]}},
                        {pre: {"replicas": 2, "spot": 1, "routes_rps": routes[pre]},
                         dec: {"replicas": 1, "spot": 0, "routes_rps": routes[dec]}},
                        {pre: {"replicas": 2, "spot": 0, "routes_rps": routes[pre]},
                         dec: {"replicas": 1, "spot": 0, "routes_rps": routes[dec]}}]}
    traffic = []
    for t in range(3):
        rng = np.random.default_rng(t)
        n = 100
        arr = np.sort(rng.uniform(0, 20.0, n))
        long = rng.random(n) < 0.2
        traffic.append(SlotTraffic(3600.0 * t + 1790.0, 20.0, make_trace(
            arr, np.where(long, 3000, 400), np.where(long, 300, 100))))
    return replay, traffic, PerfModel(load_model(plan.model), load_catalog()), pre


def test_horizon_replay_preempts_spot_deterministically_and_reports_each_slot(replay_case):
    from hetplan.schedule.simulate import preemptions, replay_schedule, schedule_intervals
    replay, traffic, pm, pre = replay_case
    ivs = schedule_intervals(replay, seed=3)
    # slot 1's spot replica is down for warm-up + reacquire (3 s) after each preemption
    hits = preemptions(360.0, 3 * 3600.0, seed=3, pool=sorted(ivs).index(pre), replica=0)
    kept = [float(hits[0])]
    for tp in hits[1:]:               # one that falls while the replica is down is void
        if tp >= kept[-1] + 3.0:
            kept.append(float(tp))
    kept = np.array(kept)
    assert hits.size == pytest.approx(3 * 360, rel=0.1) and kept.size < hits.size
    in_slot = kept[(kept >= 3600.0) & (kept < 7200.0)]
    spot = [iv for iv in ivs[pre] if 3600.0 <= iv[0] < 7200.0 and iv != (3600.0, 7200.0)]
    assert len(spot) == in_slot.size + 1
    assert [round(a - b, 9) for (_, b), (a, _) in zip(spot, spot[1:])] == pytest.approx(
        [3.0] * in_slot.size)
    res = replay_schedule(replay, traffic, pm, seed=3, sample_s=20.0)
    again = replay_schedule(replay, traffic, pm, seed=3, sample_s=20.0)
    assert [s.to_dict() for s in res.slots] == [s.to_dict() for s in again.slots]
    assert [s.requests for s in res.slots] == [100, 100, 100]
    window = in_slot[(in_slot >= 3600 + 1790) & (in_slot < 3600 + 1810)]
    assert res.slots[1].preempted == window.size > 0          # ~2 expected in 20 s
    assert res.slots[0].preempted == res.slots[2].preempted == 0
    # the spot replica's downtime inside slot 1's window, in replica-seconds (a preemption
    # just before the window counts for the part of its downtime that reaches into it)
    a, b = 3600.0 + 1790.0, 3600.0 + 1810.0
    lost = sum(max(0.0, min(tp + 3.0, b) - max(tp, a)) for tp in in_slot)
    assert res.slots[1].down_replica_s == pytest.approx(lost, abs=1e-6) and lost > 0
    assert res.slots[0].down_replica_s == res.slots[2].down_replica_s == 0.0
    assert all(0.0 <= s.attainment <= 1.0 for s in res.slots)
    summary = res.summary()
    assert len(summary["slots"]) == 3 and summary["preempted_replicas"] == window.size
    assert summary["slots_with_replicas_down"] == 1
    json.dumps(summary)                          # plain numbers (schedule_study prints it)


# ---- slot by slot: what the plot draws ----------------------------------------------------
def test_slot_pools_hold_each_slots_demand_and_the_plot_is_deterministic():
    from types import SimpleNamespace

    from hetplan.schedule.formulation import solve_schedule
    from hetplan.schedule.plot import schedule_png
    from hetplan.schedule.slots import slot_pools
    from hetplan.schedule.tiers import GpuTiers
    from hetplan.workload import single_class
    from hetplan.workload.profile import RateShape, profile_from_shape
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, 1.2, "reserved"),
             "G2": GpuTiers("G2", 1.5, 0.6, 0.2, False, None, None)}
    c1 = Candidate(ReplicaShape("G1"), "colocated", "nvidia", 1.0, {"w": ClassCapacity(1.25)})
    c2 = Candidate(ReplicaShape("G2"), "colocated", "nvidia", 1.0, {"w": ClassCapacity(1.0)})
    profile = profile_from_shape(RateShape(base_rps=1.0, multipliers=[0.5, 2.5, 1.5]),
                                 [single_class("w", 1.0, 100, 10)], slot_s=28_800)
    p = ScheduleProblem(
        candidates=[c1, c2], class_names=("w",), rates_rps=profile.rates_rps,
        slot_hours=profile.slot_hours, rho={c1.key: 0.8, c2.key: 0.9}, tiers=tiers,
        warmup_h={c1.key: 0.1, c2.key: 0.05}, spot_loss_h=0.1, max_step_replicas=2,
        max_step_share=0.0, max_spot_share=0.5)
    r = SimpleNamespace(outcome=solve_schedule(p, time_limit_s=10), profile=profile, curves=None,
                        scenario="three slots")
    rows = slot_pools(r)
    for t, row in enumerate(rows):
        assert sum(sum(sp.routes_rps.values()) for sp in row) == pytest.approx(
            profile.total_rps[t])
        assert sum(sum(sp.capacity_rps.values()) for sp in row) >= profile.total_rps[t] - 1e-6
        for sp in row:            # spot capacity is derated, the other tiers are not
            for tier, n in sp.replicas.items():
                c = c1 if sp.gpu == "G1" else c2
                share = p.spot_capacity_share(c) if tier == "spot" else 1.0
                assert sp.capacity_rps[tier] == pytest.approx(
                    n * p.rho[c.key] * c.capacity("w") * share)
    png = schedule_png(r)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == schedule_png(r)
