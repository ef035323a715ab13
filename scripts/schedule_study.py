"""Measure the capacity schedule on the shipped diurnal scenario against static plans and
the per-slot lower bound.

    python -m scripts.schedule_study [SCENARIO] [--time-limit 60] [--sample-s 60]
        [--seeds 0-4] [--json]

Default SCENARIO: workloads/schedule/diurnal.yaml. Prints, over the horizon: the schedule's
GPU cost (committed + on-demand + spot + warm-ups), the static plan sized for the peak slot (at
on-demand prices, and the same fleet at committed prices), the static plan sized for the
mean (which misses the demand of the slots above it), the per-slot lower bound, the
schedule's saving against the static peak and its distance above the bound, the committed
mix and the solve times; then the schedule, the static peak plan and the reactive scaler
replayed on the same sampled horizon traffic for every seed of `--seeds` (`a-b` or a comma
list; one plan, each seed draws its own arrivals, routing and spot preemptions), with each
fleet's least and mean attainment over the seeds. The done-when check asks the schedule to
reach the static peak plan's mean attainment over the seeds (one seed's window of ~60k
requests moves either by a few hundredths of a point); how many seeds it reached it on is
reported beside.
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
                  "slots_with_replicas_down": s["slots_with_replicas_down"],
                  "requeued_requests": s["requeued_requests"]}
    out["sample_s_per_slot"], out["seed"] = sample_s, seed
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def parse_seeds(text: str) -> list[int]:
    """`3`, `0-4` or `0,2,7` -> the seeds."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        a = int(lo)
        b = int(hi) if hi else a
        if b < a:
            raise argparse.ArgumentTypeError(f"empty seed range {part!r}")
        out += range(a, b + 1)
    if not out or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"seeds {text!r}: none, or one twice")
    return out


def over_seeds(runs: list[dict]) -> dict:
    """Per fleet, the least and mean attainment over the seeds' replays, its worst slot and
    the fewest slots meeting the SLO; and on how many seeds the schedule reached the static
    peak plan's attainment."""
    out: dict = {"seeds": [r["seed"] for r in runs]}
    for k in ("schedule", "static_peak", "reactive"):
        if k not in runs[0]:
            continue
        att = [r[k]["attainment_pct"] for r in runs]
        out[k] = {"attainment_pct": att, "min_attainment_pct": min(att),
                  "mean_attainment_pct": round(sum(att) / len(att), 2),
                  "worst_slot_attainment_pct": min(r[k]["worst_slot_attainment_pct"]
                                                   for r in runs),
                  "min_slots_meeting_slo": min(r[k]["slots_meeting_slo"] for r in runs)}
    out["seeds_schedule_at_or_above_static_peak"] = sum(
        r["schedule"]["attainment_pct"] >= r["static_peak"]["attainment_pct"] for r in runs)
    return out


def study(path, time_limit_s: float, sample_s: float = STUDY_SAMPLE_S,
          seeds: tuple[int, ...] = (0,)) -> dict:
    cat = load_catalog()
    t0 = time.perf_counter()
    rs = load_scenario(path, cat)
    res = plan_schedule(rs, cat, time_limit_s=time_limit_s)
    s = res.summary()
    cost, peak, lb = s["horizon_cost_usd"], s["static_peak_cost_usd"], s["lower_bound_cost_usd"]
    runs = [simulated(res, rs, cat, sample_s, seed) for seed in seeds]
    seeds_sum = over_seeds(runs)
    n_ok = seeds_sum["seeds_schedule_at_or_above_static_peak"]
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
            "simulated": runs, "over_seeds": seeds_sum,
            "done_when": {
                "cheaper_than_static_peak": bool(cost < peak),
                "mean_attainment_at_or_above_static_peak": bool(
                    seeds_sum["schedule"]["mean_attainment_pct"]
                    >= seeds_sum["static_peak"]["mean_attainment_pct"]),
                "seeds_at_or_above_static_peak": f"{n_ok} of {len(runs)}",
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
    ap.add_argument("--seeds", type=parse_seeds, default=[0],
                    help="replay seeds: N, A-B or a comma list (default 0)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(json.dumps(study(args.scenario, args.time_limit, args.sample_s, tuple(args.seeds)),
                     indent=None if args.json else 2))


if __name__ == "__main__":
    main()
