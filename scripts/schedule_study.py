"""Measure the capacity schedule on the shipped diurnal scenario against static plans and
the per-slot lower bound.

    python -m scripts.schedule_study [SCENARIO] [--time-limit 60] [--json]

Default SCENARIO: workloads/schedule/diurnal.yaml. Prints, over the horizon: the schedule's
GPU cost (committed + on-demand + spot + warm-ups), the static plan sized for the peak slot (at
on-demand prices, and the same fleet at committed prices), the static plan sized for the
mean (which misses the demand of the slots above it), the per-slot lower bound, the
schedule's saving against the static peak and its distance above the bound, the committed
mix and the solve times. Nothing here is simulated yet (issue 17 item 5).
"""

from __future__ import annotations

import argparse
import json
import time

from hetplan.catalog import load_catalog
from hetplan.io import workloads_dir
from hetplan.scenario import load_scenario
from hetplan.schedule.plan import plan_schedule


def study(path, time_limit_s: float) -> dict:
    cat = load_catalog()
    t0 = time.perf_counter()
    rs = load_scenario(path, cat)
    res = plan_schedule(rs, cat, time_limit_s=time_limit_s)
    s = res.summary()
    cost, peak, lb = s["horizon_cost_usd"], s["static_peak_cost_usd"], s["lower_bound_cost_usd"]
    return {"scenario": s["scenario"], "slots": s["slots"], "horizon_hours": s["horizon_hours"],
            "schedule_cost_usd": round(cost, 2),
            "breakdown_usd": {k: round(v, 2) for k, v in s["cost_breakdown_usd"].items()},
            "static_peak_cost_usd": round(peak, 2),
            "static_peak_committed_cost_usd": round(s["static_peak_committed_cost_usd"], 2),
            "static_mean_cost_usd": round(s["static_mean_cost_usd"], 2),
            "static_mean_slots_above_its_rate": s["static_mean_slots_above_its_rate"],
            "lower_bound_cost_usd": round(lb, 2),
            "saving_vs_static_peak_pct": round(100 * (peak - cost) / peak, 1),
            "above_lower_bound_pct": round(s["above_lower_bound_pct"], 1),
            "committed_mix": s["committed_mix"], "static_peak_mix": res.static_peak.mix(),
            "milp": {k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in s["solver"].items()},
            "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", nargs="?",
                    default=str(workloads_dir() / "schedule" / "diurnal.yaml"))
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(json.dumps(study(args.scenario, args.time_limit), indent=None if args.json else 2))


if __name__ == "__main__":
    main()
