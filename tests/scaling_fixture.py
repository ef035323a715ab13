"""A replica schedule for the golden emit plan's pools (tests/data/emit_plan.json), shared
by the scaling tests and the schema batch: a day of hourly slots in which the prefill pool
runs 1, 2, 4, 2 and 1 replicas and the decode (or colocated) pool 1, 2 and 1, one replica
of each on committed GPUs."""

from __future__ import annotations

from pathlib import Path

from hetplan.emit.scaling import PoolSchedule, ReplicaSchedule
from hetplan.plan import Plan, load_plan

PLAN = Path(__file__).resolve().parent / "data" / "emit_plan.json"
PREFILL = (1,) * 6 + (2,) * 4 + (4,) * 8 + (2,) * 4 + (1,) * 2
DECODE = (1,) * 8 + (2,) * 12 + (1,) * 4
WARMUP_S = 150.0


def golden_schedule(plan: Plan | None = None) -> tuple[Plan, ReplicaSchedule]:
    plan = plan or load_plan(PLAN)
    counts = {"prefill": PREFILL, "decode": DECODE, "colocated": DECODE}
    pools = tuple(PoolSchedule(p.name, counts[p.role], (1,) * 24, WARMUP_S)
                  for p in plan.pools)
    return plan, ReplicaSchedule(3600.0, pools)
