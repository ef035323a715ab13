"""schedule.md: the schedule as an operator reads it (costs against the baselines, the
committed mix, replicas per pool and slot, the assumptions it rests on)."""

from __future__ import annotations

from hetplan.bounds import escape_control
from hetplan.schedule.owned import owned_notes
from hetplan.schedule.plan import ScheduleResult
from hetplan.tables import fmt_num


def _md_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(escape_control(str(c)) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def schedule_report(r: ScheduleResult) -> str:
    s = r.summary(timings=False)
    usd = lambda x: "not computed" if x is None else f"${x:,.2f}"  # noqa: E731
    lb_pct = s["above_lower_bound_pct"]
    owned = " + owned" if "owned_gpus" in s else ""
    first = "; owned GPUs first" if owned else ""
    out = [f"# Capacity schedule: {escape_control(r.scenario)}", "",
           f"Model {escape_control(r.model)}; {s['slots']} slots of {fmt_num(s['slot_s'])} s "
           f"({fmt_num(s['horizon_hours'])} h); demand {r.profile.planning_rate} per slot "
           f"from the {r.profile.source}, peak {fmt_num(r.profile.total_rps.max())} req/s, "
           f"least {fmt_num(r.profile.total_rps.min())} req/s.", "",
           "## Cost over the horizon", "",
           _md_table(["plan", "GPU cost", "note"], [
               ["schedule", usd(s["horizon_cost_usd"]),
                f"committed{owned} + on-demand + spot + warm-ups"
                + (" + queueing top-up" if r.top_up is not None else "")
                + (f"; {fmt_num(lb_pct)}% above the lower bound" if lb_pct is not None
                   else "")],
               ["static, sized for the peak", usd(s["static_peak_cost_usd"]),
                f"on-demand ({r.static_peak.mix()}){first}"],
               ["static peak fleet, committed", usd(s["static_peak_committed_cost_usd"]),
                f"the same GPUs at their committed price where they have one{first}"],
               ["static, sized for the mean", usd(s["static_mean_cost_usd"]),
                f"sized below the demand of {s['static_mean_slots_above_its_rate']} slots"
                f"{first}"],
               ["per-slot plans (lower bound)", usd(s["lower_bound_cost_usd"]),
                "each slot alone, no change limits, warm-ups or pool cost"],
               ["reactive autoscaler", usd(s["reactive_cost_usd"]), _reactive_note(s)]]),
           "", f"Pool cost (operational, not in the GPU cost): {usd(s['pool_cost_usd'])}. "
           f"Solver: {s['solver']['status']}, gap {fmt_num(s['solver']['gap'])}, "
           f"over {s['solver']['candidates']} candidates.",
           "", "## Committed mix", ""]
    mix = s["committed_mix"]
    out.append(_md_table(["GPU", "tier", "GPUs", "$/GPU-hour"],
                         [[m["gpu"], m["tier"], m["gpus"], fmt_num(m["usd_per_gpu_hour"])]
                          for m in mix]) if mix else "None: every slot rents its capacity.")
    if "owned_gpus" in s:
        out += ["", f"Owned (the inventory's owned nodes, held every slot): "
                + ", ".join(f"{n} {g}" for g, n in s["owned_gpus"].items())
                + f" GPUs, {usd(s['owned_cost_usd'])} over the horizon (in the schedule's "
                "cost above, as 'owned')."]
    pools = r.to_dict()["pools"]
    out += ["", "## Replicas per pool and slot", ""]
    heads = ["slot", "start_h", "demand_rps"] + [f"{p['pool']} ({p['tier']})" for p in pools]
    rows = [[t, fmt_num(r.profile.starts_s[t] / 3600), fmt_num(r.profile.total_rps[t])]
            + [p["replicas"][t] for p in pools] for t in range(r.profile.num_slots)]
    out += [_md_table(heads, rows), ""]
    out += _top_up_section(r)
    out += ["## Assumptions", ""]
    out += [f"- {a}" for a in s_assumptions(r)]
    if r.reactive is not None:
        out.append(f"- {r.reactive.options.describe()}")
    return "\n".join(out) + "\n"


def _top_up_section(r: ScheduleResult) -> list[str]:
    """The queueing top-up (`schedule/sizing.py`): replicas added where a slot's pool was
    short of its percentile capacity U(n) at the load the MILP routed to it."""
    top = r.top_up
    if top is None:
        return ["Pools sized by target utilization (constraints.sizing: utilization).", ""]
    out = ["## Queueing top-up", "",
           f"Each slot's pools checked against their percentile capacity U(n) (queueing "
           f"sizing, as `hetplan solve`) at the load routed to them: "
           f"{top.replicas_added} replicas added for {fmt_num(top.cost_usd)} USD (in the "
           f"schedule's cost above, as 'queueing_top_up')"
           + (f"; {top.step_breaks} pool steps now pass the change limits"
              if top.step_breaks else "")
           + f". Committed GPUs left idle ran {sum(x.added for x in top.idle_fill)} more "
           "replicas of their slot's busiest pools (paid every slot: no extra cost).", ""]
    if top.lines:
        out += [_md_table(["slot", "pool", "tier", "added", "load", "U before", "U after"],
                          [[x.slot, x.pool, x.tier or "none (unmet)", x.added,
                            fmt_num(x.load), fmt_num(x.held_before), fmt_num(x.held_after)]
                           for x in top.lines]), ""]
    return out


def _reactive_note(s: dict) -> str:
    if s["reactive_within_capacity"] is None:
        return "not computed"
    return ("the static peak plan's pools scaled on load, on-demand, with a delay"
            + (" (+ the owned GPUs, idle)" if "owned_gpus" in s else "") + "; "
            f"{100 * s['reactive_within_capacity']:.1f}% of requests arrive while it has "
            "the capacity they need (`hetplan simulate` measures latency)")


def s_assumptions(r: ScheduleResult) -> list[str]:
    tiers = [f"{g}: spot {t.spot_preemptions_per_hour:g}/h "
             f"({'published' if t.spot_rate_published else 'assumed'})"
             for g, t in sorted(r.tiers.items()) if t.spot_usd_per_hour is not None]
    return r.spec.assumptions() + ([("spot interruptions " + "; ".join(tiers))]
                                   if tiers else []) + owned_notes(r.tiers, r.candidates)
