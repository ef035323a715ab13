"""The solved schedule slot by slot: each pool's replicas per tier, the rates it serves and
the capacity it holds (what the plot draws and `hetplan simulate` replays), and the replay
inputs written to schedule.json.

A pool's capacity in req/s is taken at the class mix it serves in that slot: its replicas x
target utilization (queueing sizing: U(n) / n of its n replicas, `schedule/sizing.py`) x
(for spot, the share left after expected preemption downtime) x its requests per
replica-second at that mix (sum of routed rates / sum of rate / capacity);
a pool serving nothing in a slot counts its capacity at the slot's class mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hetplan.planner import pool_name
from hetplan.schedule.formulation import KINDS

if TYPE_CHECKING:
    from hetplan.schedule.plan import ScheduleResult

ROUTE_EPS_RPS = 1e-9      # routed rates below this are solver noise


@dataclass(frozen=True)
class SlotPool:
    """One pool (a candidate) in one slot."""

    pool: str
    role: str
    gpu: str
    replicas: dict[str, int]            # tier -> replicas
    routes_rps: dict[str, float]        # class -> req/s routed to it
    capacity_rps: dict[str, float]      # tier -> req/s its replicas serve at target load


def slot_pools(r: ScheduleResult) -> list[list[SlotPool]]:
    """Per slot, the pools that hold replicas or serve traffic in it."""
    f = r.outcome.formulation
    p = f.p
    vals = r.outcome.solution.values
    out: list[list[SlotPool]] = []
    for t in range(p.num_slots):
        mix = p.rates_rps[t]
        row = []
        for i, c in enumerate(p.candidates):
            reps = {k: r.outcome.replicas.get((c.key, k), [0] * p.num_slots)[t] for k in KINDS}
            reps = {k: n for k, n in reps.items() if n > 0}
            routes = {w: float(vals[f.x[i, w, t]]) for w in p.class_names
                      if (i, w, t) in f.x and vals[f.x[i, w, t]] > ROUTE_EPS_RPS}
            if not reps and not routes:
                continue
            served = routes or {w: float(mix[j]) for j, w in enumerate(p.class_names)
                                if c.capacity(w) > 0}
            load = sum(x / c.capacity(w) for w, x in served.items())
            per_replica = sum(served.values()) / load if load > 0 else 0.0
            cap = {k: n * _busy(r, c, sum(reps.values())) * per_replica
                   * (p.spot_capacity_share(c) if k == "spot" else 1.0) for k, n in reps.items()}
            row.append(SlotPool(pool_name(c), c.role, c.shape.gpu, reps, routes, cap))
        out.append(row)
    return out


def _busy(r: ScheduleResult, c, replicas: int) -> float:
    """Load per replica a pool of `replicas` of c is sized to carry: U(n) / n under
    queueing sizing (`r.curves`), else its target utilization."""
    curve = (r.curves or {}).get(c.key)
    if curve is None or replicas == 0:
        return r.outcome.formulation.p.rho[c.key]
    return curve.at(replicas) / replicas


def schedule_json(r: ScheduleResult) -> dict:
    """schedule.json: the result (`ScheduleResult.to_dict`) and its replay inputs."""
    return {**r.to_dict(), "replay": replay_inputs(r)}


def replay_inputs(r: ScheduleResult) -> dict:
    """What `hetplan simulate` needs to replay the schedule (written into schedule.json):
    a plan template holding every pool of the schedule (the static peak plan's settings:
    classes, SLO, engine limits, KV link), and per slot each pool's replicas, spot replicas
    and routes; warm-up and spot preemption figures per pool; the static peak plan and the
    reactive scaler's replica intervals, to replay them on the same traffic."""
    f = r.outcome.formulation
    p = f.p
    slots = slot_pools(r)
    used = {sp.pool for row in slots for sp in row}
    pools = []
    for c in p.candidates:
        name = pool_name(c)
        if name not in used:
            continue
        most = max(sum(sp.replicas.values()) for row in slots for sp in row if sp.pool == name)
        pools.append({"name": name, "role": c.role, "gpu": c.shape.gpu, "vendor": c.vendor,
                      "tp": c.shape.tp, "pp": c.shape.pp, "weight_dtype": c.shape.weight_dtype,
                      "kv_dtype": c.shape.kv_dtype, "ep": c.shape.ep, "dp": c.shape.dp,
                      "replicas": max(most, 1), "gpus": max(most, 1) * c.num_gpus,
                      "cost_usd_per_hour": 0.0, "utilization": 0.0,   # costs: the schedule's
                      "routes": [{"workload_class": w, "rate_rps": 0.0,
                                  "predicted_ttft_ms": _num(c.per_class[w].ttft_ms),
                                  "predicted_tpot_ms": _num(c.per_class[w].tpot_ms),
                                  "batch": c.per_class[w].batch}
                                 for w in p.class_names if c.capacity(w) > 0]})
    template = r.static_peak.model_dump(mode="json")
    template.update(pools=pools, placement=None, prefix_cache=None, simplification=None,
                    notes=["a template of the schedule's pools for `hetplan simulate`"])
    warm = {pool_name(c): 3600.0 * p.warmup_h[c.key] for c in p.candidates
            if pool_name(c) in used}
    spot = {pool_name(c): p.tiers[c.shape.gpu].spot_preemptions_per_hour
            for c in p.candidates if pool_name(c) in used}
    reactive = r.reactive.intervals if r.reactive is not None else None
    return {"plan": template, "static_peak_plan": r.static_peak.model_dump(mode="json"),
            "reactive_intervals": reactive, "warmup_s": warm, "spot_preemptions_per_hour": spot,
            "spot_reacquire_s": r.spec.spot_reacquire_s,
            "slot_start_s": [float(x) for x in r.profile.starts_s],
            "slot_length_s": [float(x) for x in r.profile.lengths_s],
            "slots": [{sp.pool: {"replicas": sum(sp.replicas.values()),
                                 "spot": sp.replicas.get("spot", 0),
                                 "routes_rps": sp.routes_rps} for sp in row} for row in slots]}


def _num(x: float | None) -> float | None:
    return None if x is None or x != x else float(x)
