"""The time-varying part of a capacity schedule as scaling objects: per pool a KEDA
ScaledObject with cron triggers (the replica schedule), an autoscaling/v2
HorizontalPodAutoscaler bounded by the schedule's least and most replicas (the
alternative for clusters without KEDA; apply one of the two, never both: KEDA drives the
workload through an HPA of its own), and Dynamo planner bounds.

Time: slot 0 starts at 00:00 in `timezone` (an IANA name, default Etc/UTC), on a Monday
for a weekly horizon; the horizon must be one day or one week (cron repeats daily or
weekly) and slots whole minutes (cron's resolution).

Cron triggers: a pool runs `floor` replicas (its least over the horizon; KEDA's
minReplicaCount) outside every window; each maximal run of consecutive slots at one count
above the floor is one trigger with `desiredReplicas` = that count. A run that grows the
pool starts its window the pool's warm-up earlier (rounded up to a minute), as the schedule
MILP pays a replica's warm-up before it serves; where windows overlap KEDA follows the
highest. Scale-down waits SCALE_DOWN_STABILIZATION_S (the HPA default of 300 s would keep
each step's replicas paid five more minutes; a cron signal does not flap).

HPA: the metric is vLLM's queue of waiting requests per pod (`vllm:num_requests_waiting`,
which a Prometheus adapter serves as HPA_METRIC), target HPA_WAITING_PER_REPLICA; an HPA
needs minReplicas >= 1, so a pool whose floor is 0 keeps one replica under it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hetplan.emit.k8s import _labels
from hetplan.errors import InputError
from hetplan.plan import Plan

DEFAULT_TIMEZONE = "Etc/UTC"
DAY_S = 86_400
WEEK_S = 7 * DAY_S
SCALE_DOWN_STABILIZATION_S = 60      # HPA scale-down window under the cron triggers
COOLDOWN_S = 60                      # KEDA: wait before scaling a pool to zero
POLLING_S = 30                       # KEDA's default trigger polling interval
HPA_METRIC = "vllm_num_requests_waiting"
HPA_WAITING_PER_REPLICA = "2"        # assumed: queue two requests per pod before growing
KEDA_API = "keda.sh/v1alpha1"
HPA_API = "autoscaling/v2"


@dataclass(frozen=True)
class PoolSchedule:
    """One pool's replicas per slot over all tiers (`committed`: those on committed GPUs)."""

    pool: str                          # the plan's pool name; its workload is slug(pool)
    replicas: tuple[int, ...]
    committed: tuple[int, ...]
    warmup_s: float                    # weights load + engine start before it serves

    @property
    def floor(self) -> int:
        return min(self.replicas)

    @property
    def peak(self) -> int:
        return max(self.replicas)


@dataclass(frozen=True)
class ReplicaSchedule:
    slot_s: float
    pools: tuple[PoolSchedule, ...]

    @property
    def num_slots(self) -> int:
        return len(self.pools[0].replicas) if self.pools else 0

    @property
    def horizon_s(self) -> float:
        return self.slot_s * self.num_slots


@dataclass(frozen=True)
class Window:
    """Slots [start, end) at `replicas`; `lead_s` earlier when the run grows the pool."""

    start: int
    end: int
    replicas: int
    lead_s: int


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone this machine knows; a one-line error otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InputError(f"unknown time zone {name!r}; give an IANA name such as "
                         f"{DEFAULT_TIMEZONE} or Europe/Berlin", field="--timezone") from None
    return name


def check_cron_horizon(s: ReplicaSchedule) -> None:
    """Cron triggers repeat daily or weekly and resolve whole minutes."""
    if s.slot_s % 60:
        raise InputError(f"slots of {s.slot_s:g} s are not whole minutes; cron triggers "
                         "resolve minutes", field="schedule.slot_s")
    if s.horizon_s not in (DAY_S, WEEK_S):
        raise InputError(f"the schedule spans {s.horizon_s / 3600:g} h; cron triggers repeat "
                         "daily or weekly, so it must span 24 h or 168 h",
                         field="schedule.horizon_s")


def cron_at(offset_s: float, horizon_s: float) -> str:
    """The cron expression of `offset_s` into the horizon (slot 0 at 00:00, Monday for a
    week), wrapped around the horizon."""
    minutes = int(offset_s // 60) % int(horizon_s // 60)
    minute, hour = minutes % 60, (minutes // 60) % 24
    if horizon_s == WEEK_S:
        return f"{minute} {hour} * * {(minutes // 1440 + 1) % 7}"    # cron: 0 = Sunday
    return f"{minute} {hour} * * *"


def windows(p: PoolSchedule) -> list[Window]:
    """Maximal runs of consecutive slots at one count above the pool's floor (a run is
    not continued across the end of the horizon)."""
    r, out, t = p.replicas, [], 0
    lead = int(math.ceil(p.warmup_s / 60.0)) * 60
    while t < len(r):
        end = t
        while end < len(r) and r[end] == r[t]:
            end += 1
        if r[t] > p.floor:
            grows = r[t] > r[t - 1]           # r[-1]: the last slot, before a cyclic slot 0
            out.append(Window(t, end, r[t], lead if grows else 0))
        t = end
    return out


def cron_triggers(p: PoolSchedule, slot_s: float, horizon_s: float, timezone: str
                  ) -> list[dict]:
    return [{"type": "cron", "name": f"slots-{w.start}-{w.end - 1}",
             "metadata": {"timezone": timezone,
                          "start": cron_at(w.start * slot_s - w.lead_s, horizon_s),
                          "end": cron_at(w.end * slot_s, horizon_s),
                          "desiredReplicas": str(w.replicas)}}
            for w in windows(p)]


def _target_ref(workload: dict) -> dict:
    return {"apiVersion": workload["apiVersion"], "kind": workload["kind"],
            "name": workload["metadata"]["name"]}


def _scale_down() -> dict:
    return {"scaleDown": {"stabilizationWindowSeconds": SCALE_DOWN_STABILIZATION_S}}


def scaled_object(p: PoolSchedule, workload: dict, s: ReplicaSchedule, timezone: str) -> dict:
    """KEDA ScaledObject driving `workload` (the pool's Deployment or LeaderWorkerSet)."""
    name = workload["metadata"]["name"]
    triggers = cron_triggers(p, s.slot_s, s.horizon_s, timezone)
    if not triggers:
        # a pool at one count all day: KEDA needs a trigger; min = max holds the count
        triggers = [{"type": "cron", "name": "all-day", "metadata": {
            "timezone": timezone, "start": cron_at(0, s.horizon_s),
            "end": cron_at(s.horizon_s - 60, s.horizon_s), "desiredReplicas": str(p.peak)}}]
    return {"apiVersion": KEDA_API, "kind": "ScaledObject",
            "metadata": {"name": name, "labels": _labels(name, {"hetplan/pool-of": name})},
            "spec": {"scaleTargetRef": _target_ref(workload),
                     "minReplicaCount": p.floor, "maxReplicaCount": p.peak,
                     "pollingInterval": POLLING_S, "cooldownPeriod": COOLDOWN_S,
                     "advanced": {"horizontalPodAutoscalerConfig": {
                         "behavior": _scale_down()}},
                     "triggers": triggers}}


def hpa(p: PoolSchedule, workload: dict) -> dict:
    """autoscaling/v2 HPA: reactive on the waiting queue, inside [max(1, floor), peak]."""
    name = workload["metadata"]["name"]
    return {"apiVersion": HPA_API, "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "labels": _labels(name, {"hetplan/pool-of": name})},
            "spec": {"scaleTargetRef": _target_ref(workload),
                     "minReplicas": max(1, p.floor), "maxReplicas": max(1, p.peak),
                     "behavior": _scale_down(),
                     "metrics": [{"type": "Pods", "pods": {
                         "metric": {"name": HPA_METRIC},
                         "target": {"type": "AverageValue",
                                    "averageValue": HPA_WAITING_PER_REPLICA}}}]}}


def planner_bounds(plan: Plan, s: ReplicaSchedule) -> dict | None:
    """Dynamo planner (PlannerConfig, Dynamo 1.6.1) bounds: the least replicas of the
    prefill and decode components and the most GPUs in any slot. None when a role has
    several pools: Dynamo's planner scales one prefill and one decode component."""
    by_role: dict[str, list] = {}
    for pool in plan.pools:
        by_role.setdefault(pool.role, []).append(pool)
    if any(len(v) > 1 for v in by_role.values()) or (
            "colocated" in by_role and len(by_role) > 1):
        return None
    sched = {p.pool: p for p in s.pools}
    gpus = max(sum(sched[p.name].replicas[t] * p.gpus_per_replica for p in plan.pools)
               for t in range(s.num_slots))
    out: dict = {"environment": "kubernetes", "backend": "vllm", "max_gpu_budget": gpus}
    if "colocated" in by_role:
        pool = by_role["colocated"][0]
        out |= {"mode": "agg", "min_endpoint": sched[pool.name].floor}
        return out
    out["mode"] = "disagg"
    # role-specific minimums must be >= 1 (Dynamo's ge=1); a floor of 0 goes to
    # min_endpoint, which allows scale-to-zero for both roles
    floors = {r: sched[by_role[r][0].name].floor for r in ("prefill", "decode")}
    out["min_endpoint"] = min(floors.values())
    for r in ("prefill", "decode"):
        out[f"{r}_engine_num_gpu"] = by_role[r][0].gpus_per_replica
        if floors[r] >= 1:
            out[f"{r}_min_endpoint"] = floors[r]
    return out


def check_pools(plan: Plan, s: ReplicaSchedule) -> None:
    """The plan and the schedule name the same pools (one source for workload names)."""
    a, b = {p.name for p in plan.pools}, {p.pool for p in s.pools}
    if a != b:
        raise InputError(f"the schedule's pools {sorted(b)} are not the plan's {sorted(a)}",
                         field="pools")
    if any(len(p.replicas) != s.num_slots for p in s.pools):
        raise InputError("every pool needs one replica count per slot", field="pools")

