"""Time the capacity schedule on a week of hourly slots over every priced GPU type.

    python -m scripts.bench_schedule [--time-limit 60] [--budget-s 60] [--workers N] [--json]

The scenario is workloads/schedule/diurnal.yaml with every GPU of its price sheet (19 types)
and a week-long rate shape: the diurnal sinusoid, weekends at 70%, and a seeded +-5% hourly
jitter so no two days repeat (168 distinct slots). Prints the time of each phase (candidate
choice by per-slot plans and the static baselines, the decomposition with the lower bound,
the queueing curves and reactive baseline, the schedule MILP, the queueing top-up), the
MILP's status and gap where its time limit or the budget (`plan_schedule(budget_s=...)`,
the target: the whole run within 60 s) stops it, the costs, and the load average (wall
times on a shared machine stretch with it; the solver time limits are wall-clock).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from hetplan.catalog import load_catalog
from hetplan.io import workloads_dir
from hetplan.parallel import Parallel, default_workers
from hetplan.scenario import load_scenario
from hetplan.schedule.plan import plan_schedule
from hetplan.workload.profile import RateShape

WEEK_S = 7 * 86_400


def week_shape(base_rps: float, seed: int = 0) -> RateShape:
    hours = np.arange(168)
    day = 1.0 + 0.6 * np.sin(2 * np.pi * (hours - 10) / 24)
    weekend = np.where(hours >= 120, 0.7, 1.0)
    jitter = 1.0 + 0.05 * np.random.default_rng(seed).standard_normal(168)
    return RateShape(base_rps=base_rps, period_s=WEEK_S,
                     multipliers=[round(float(x), 4) for x in day * weekend * jitter])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--budget-s", type=float, default=60.0,
                    help="the whole run's wall-clock budget (0: none)")
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cat = load_catalog()
    rs = load_scenario(workloads_dir() / "schedule" / "diurnal.yaml", cat)
    rs = rs.derive(catalog=rs.scenario.catalog.model_copy(update={"gpus": None}))
    spec = rs.scenario.schedule.model_copy(update={
        "horizon_s": float(WEEK_S), "profile": week_shape(rs.scenario.schedule.profile.base_rps)})
    load_start = os.getloadavg()[0]
    marks = [("start", time.perf_counter(), time.process_time())]
    res = plan_schedule(rs, cat, spec, time_limit_s=args.time_limit,
                        progress=lambda m: marks.append((m, time.perf_counter(),
                                                         time.process_time())),
                        parallel=Parallel(args.workers), budget_s=args.budget_s or None)
    marks.append(("done", time.perf_counter(), time.process_time()))
    phases = {a: round(tb - ta, 2) for (a, ta, _), (_, tb, _) in zip(marks[1:], marks[2:])}
    # this process's CPU seconds per phase: all of the work with --workers 1
    cpu = {a: round(cb - ca, 2) for (a, _, ca), (_, _, cb) in zip(marks[1:], marks[2:])}
    s = res.summary()
    row = {"slots": s["slots"], "gpu_types": len(res.tiers), "workers": args.workers,
           "budget_s": args.budget_s or None,
           "wall_s": round(marks[-1][1] - marks[0][1], 1),
           "cpu_s": round(marks[-1][2] - marks[0][2], 1),
           "load_avg_1min": round(os.getloadavg()[0], 1),
           "load_avg_1min_at_start": round(load_start, 1),
           "candidates_used": s["solver"]["candidates"],
           "phase_s": phases, "phase_cpu_s": cpu, "milp_status": s["solver"]["status"],
           "milp_gap": s["solver"]["gap"], "milp_s": round(s["solver"]["time_s"], 2),
           "horizon_cost_usd": round(s["horizon_cost_usd"], 2),
           "static_peak_cost_usd": round(s["static_peak_cost_usd"], 2),
           "lower_bound_cost_usd": round(s["lower_bound_cost_usd"], 2),
           "above_lower_bound_pct": round(s["above_lower_bound_pct"], 1),
           "pool_cost_usd": round(s["pool_cost_usd"], 2),
           "queueing_top_up_usd": round(s["cost_breakdown_usd"].get("queueing_top_up", 0.0), 2),
           "committed_mix": s["committed_mix"]}
    print(json.dumps(row, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
