"""Measure the capacity schedule on the shipped diurnal scenario against static plans and
the per-slot lower bound.

    python -m scripts.schedule_study [SCENARIO] [--time-limit 60] [--sample-s 60]
        [--seed 0] [--json]

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
from hetplan.perf import PerfModel
from hetplan.scenario import load_scenario
from hetplan.schedule.plan import plan_schedule
from hetplan.schedule.simulate import horizon_traffic, validate_replay
from hetplan.schedule.slots import replay_inputs

STUDY_SAMPLE_S = 60.0     # simulated seconds per slot: ~60k requests per fleet on diurnal


def simulated(res, rs, cat, sample_s: float, seed: int) -> dict:
    """Attainment of the schedule and its baselines replayed on the same horizon traffic."""
    replay = json.loads(json.dumps(replay_inputs(res)))     # as schedule.json holds it
    t0 = time.perf_counter()
    traffic = horizon_traffic(rs, res.spec, replay["slot_start_s"], replay["slot_length_s"],
                              sample_s, seed)
    runs = validate_replay(replay, traffic, PerfModel(rs.model, cat), seed, sample_s)
    out = {}
    for k, r in runs.items():
        s = r.summary()
        out[k] = {"attainment_pct": round(100 * float(s["attainment"]), 2),
                  "worst_slot_attainment_pct": round(100 * float(s["worst_slot_attainment"]), 1),
                  "slots_meeting_slo": int(s["slots_meeting_slo"]), "requests": s["requests"],
                  "slot_attainment_pct": [round(100 * float(x["attainment"]), 1)
                                          for x in s["slots"]],
                  "preempted_replicas": s["preempted_replicas"],
                  "requeued_requests": s["requeued_requests"]}
    out["sample_s_per_slot"], out["seed"] = sample_s, seed
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def study(path, time_limit_s: float, sample_s: float = STUDY_SAMPLE_S, seed: int = 0) -> dict:
    cat = load_catalog()
    t0 = time.perf_counter()
    rs = load_scenario(path, cat)
    res = plan_schedule(rs, cat, time_limit_s=time_limit_s)
    s = res.summary()
    cost, peak, lb = s["horizon_cost_usd"], s["static_peak_cost_usd"], s["lower_bound_cost_usd"]
    sim = simulated(res, rs, cat, sample_s, seed)
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
            "reactive_cost_usd": round(s["reactive_cost_usd"], 2),
            "reactive_within_capacity_pct": round(100 * s["reactive_within_capacity"], 1),
            "simulated": sim,
            "done_when": {
                "cheaper_than_static_peak": bool(cost < peak),
                "attainment_at_or_above_static_peak": bool(
                    sim["schedule"]["attainment_pct"] >= sim["static_peak"]["attainment_pct"]),
                "above_lower_bound_pct": round(s["above_lower_bound_pct"], 1)},
            "committed_mix": s["committed_mix"], "static_peak_mix": res.static_peak.mix(),
            "milp": {k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in s["solver"].items()},
            "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", nargs="?",
                    default=str(workloads_dir() / "schedule" / "diurnal.yaml"))
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--sample-s", type=float, default=STUDY_SAMPLE_S)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(json.dumps(study(args.scenario, args.time_limit, args.sample_s, args.seed),
                     indent=None if args.json else 2))


if __name__ == "__main__":
    main()
