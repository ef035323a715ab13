"""The fleet summary (fleet.json, fleet.md) and the per-member output folders of
`hetplan solve FLEET.yaml`.

fleet.json is deterministic (no timings): per member its cost, GPUs per type, pools and
served share; the fleet's totals, shared nodes, and, under min_cost, the comparison with
the members planned alone in turn (`fleet.solve`).
"""

from __future__ import annotations

import json
from pathlib import Path

from hetplan.fleet.place import shared_nodes
from hetplan.fleet.solve import FleetResult

COST_TOL = 1e-6        # $/h: sizing costs equal within solver round-off


def _gpus(plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in plan.pools:
        out[p.gpu] = out.get(p.gpu, 0) + p.gpus
    return dict(sorted(out.items()))


def fleet_summary(r: FleetResult, simulated: list[dict] | None = None,
                  tuned: list[dict] | None = None) -> dict:
    """`simulated`: `fleet.validate.simulated_rows` of the members' plans, when simulated;
    `tuned`: `MemberTuning.row()` per member, when topped up (`fleet.validate`)."""
    f = r.fleet.fleet
    members = []
    for m in r.fleet.members:
        plan = r.plans[m.name]
        members.append({
            "name": m.name, "model": plan.model, "weight": m.spec.weight,
            "priority": m.spec.priority, "cost_usd_per_hour": round(plan.cost_usd_per_hour, 4),
            "sizing_cost_usd_per_hour": round(r.sizing_cost_usd_per_hour[m.name], 4),
            "served_share": round(r.served_share[m.name], 6),
            "demand_rps": round(plan.demand_rps, 4), "gpus": _gpus(plan),
            "pools": [p.name for p in plan.pools]})
    total: dict[str, int] = {}
    for row in members:
        for g, n in row["gpus"].items():
            total[g] = total.get(g, 0) + n
    out = {"fleet": f.name, "objective": f.objective,
           "budget_usd_per_hour": f.constraints.budget_usd_per_hour,
           "cost_usd_per_hour": round(sum(p.cost_usd_per_hour for p in r.plans.values()), 4),
           "sizing_cost_usd_per_hour": round(sum(r.sizing_cost_usd_per_hour.values()), 4),
           "gpus": dict(sorted(total.items())), "members": members, "notes": r.notes,
           "fleet_milp_members": list(r.joint)}
    if r.fleet.inventory is not None:
        out["shared_nodes"] = shared_nodes(r.plans)
    if r.alone:
        fits = all(a.cost_usd_per_hour is not None for a in r.alone)
        alone_total = sum(a.cost_usd_per_hour for a in r.alone) if fits else None
        out["alone_in_turn"] = {
            "members": [{"name": a.member, "sizing_cost_usd_per_hour":
                         None if a.cost_usd_per_hour is None else round(a.cost_usd_per_hour, 4),
                         "reasons": a.reasons} for a in r.alone],
            "sizing_cost_usd_per_hour": None if alone_total is None else round(alone_total, 4),
            "fleet_saves_usd_per_hour": None if alone_total is None else
            round(alone_total - out["sizing_cost_usd_per_hour"], 4)}
    if r.whole_cost_usd_per_hour and len(r.whole_cost_usd_per_hour) == len(r.plans):
        out["alone_on_whole_inventory_usd_per_hour"] = round(
            sum(r.whole_cost_usd_per_hour.values()), 4)
    if simulated is not None:
        out["simulated"] = simulated
    if tuned is not None:
        out["tuned"] = tuned
    return out


def fleet_markdown(s: dict) -> str:
    lines = [f"# Fleet {s['fleet']}", "",
             f"Objective {s['objective']}"
             + (f", budget ${s['budget_usd_per_hour']:g}/h" if s["budget_usd_per_hour"] else "")
             + f"; GPU cost ${s['cost_usd_per_hour']:.2f}/h"
             + (" (placed, with any spares)" if "shared_nodes" in s else "")
             + f", sizing cost (GPU + pool) ${s['sizing_cost_usd_per_hour']:.2f}/h.", "",
             "| member | model | weight | served | GPU $/h | GPUs | pools |",
             "|---|---|---:|---:|---:|---|---:|"]
    for m in s["members"]:
        gpus = ", ".join(f"{n}x {g}" for g, n in m["gpus"].items()) or "-"
        lines.append(f"| {m['name']} | {m['model']} | {m['weight']:g} | "
                     f"{m['served_share']:.0%} | {m['cost_usd_per_hour']:.2f} | {gpus} | "
                     f"{len(m['pools'])} |")
    lines += ["", "GPUs per type: " + (", ".join(f"{g} {n}" for g, n in s["gpus"].items())
                                       or "none")]
    joint = s["fleet_milp_members"]
    alone = [m["name"] for m in s["members"] if m["name"] not in joint]
    lines += ["", f"Fleet MILP over: {', '.join(joint) or 'no member'}" + (
        f"; {', '.join(alone)}: each member's plan alone on the whole inventory (its own "
        "optimum) fits beside the others', so it is its part of the fleet optimum"
        if alone else "") + "."]
    if "shared_nodes" in s:
        shared = s["shared_nodes"]
        lines += ["", f"Nodes shared by members: {len(shared)}"
                  + "".join(f"\n- {n}: {', '.join(ms)}" for n, ms in shared.items())]
    if "alone_in_turn" in s:
        lines += ["", "## Fleet vs members planned alone", "", alone_table(s)]
    if "simulated" in s:
        from hetplan.fleet.validate import simulated_table
        lines += ["", "## Simulated, member by member", "", simulated_table(s["simulated"])]
    if "tuned" in s:
        from hetplan.fleet.validate import tuned_table
        lines += ["", "## Topped up by the simulator (replicas added, routing as planned)", "",
                  tuned_table(s["tuned"])]
    if s["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in s["notes"]]
    return "\n".join(lines) + "\n"


def alone_table(s: dict) -> str:
    """The fleet's sizing cost per member beside each member planned alone in turn (on what
    the members before it, by priority, left of the inventory and budget)."""
    a = s["alone_in_turn"]
    fleet = {m["name"]: m["sizing_cost_usd_per_hour"] for m in s["members"]}
    rows = ["| member | fleet $/h | alone in turn $/h |", "|---|---:|---:|"]
    for m in a["members"]:
        alone = m["sizing_cost_usd_per_hour"]
        rows.append(f"| {m['name']} | {fleet[m['name']]:.2f} | "
                    + ("does not fit: " + "; ".join(m["reasons"]) if alone is None
                       else f"{alone:.2f}") + " |")
    total = a["sizing_cost_usd_per_hour"]
    rows.append(f"| total | {s['sizing_cost_usd_per_hour']:.2f} | "
                + ("-" if total is None else f"{total:.2f}") + " |")
    if "alone_on_whole_inventory_usd_per_hour" in s:
        rows.append(f"| (each alone on the whole inventory, double-booking it: a lower "
                    f"bound) | | {s['alone_on_whole_inventory_usd_per_hour']:.2f} |")
    if total is not None:
        rows.append("")
        rows.append(f"The fleet plan saves ${a['fleet_saves_usd_per_hour']:.2f}/h "
                    f"({a['fleet_saves_usd_per_hour'] / total:.1%}) against planning the members "
                    "one at a time." if a["fleet_saves_usd_per_hour"] > COST_TOL else
                    "The fleet plan costs what planning the members one at a time costs.")
    return "\n".join(rows)


FLEET_FILES = ("fleet.json", "fleet.md")
GATEWAY_DIR = "llm-d-gateway"      # --emit llm-d: the route by model name to every member


def write_fleet(out: Path, r: FleetResult, emit: str | None = None, options=None,
                sims: dict | None = None, tuned: list[dict] | None = None) -> dict:
    """fleet.json, fleet.md and one folder per member (plan.json, report.md, sim.json when
    simulated (`sims`: member -> SimReport; `tuned`: the top-up rows), and the emitted
    `<target>/` when asked, with EmitOptions `options`), swapped into `out` as a whole; with llm-d also GATEWAY_DIR/,
    the shared gateway's route to every member (`emit/llmd_gateway.py`). Returns the
    summary."""
    from hetplan.io import output_folder, write_atomic
    from hetplan.report import plan_report

    simulated = None
    if sims is not None:
        from hetplan.fleet.validate import simulated_rows
        simulated = simulated_rows(sims)
    s = fleet_summary(r, simulated, tuned)
    names = {m.name for m in r.fleet.members}
    gateway = None
    if emit == "llm-d":
        from hetplan.emit.llmd_gateway import fleet_gateway_files
        from hetplan.errors import InputError
        if GATEWAY_DIR in names:
            raise InputError(f"a member named {GATEWAY_DIR} would share the folder of the "
                             "fleet's llm-d gateway", field="members")
        gateway = fleet_gateway_files(r.fleet.fleet.name, r.plans)
    owned = set(FLEET_FILES) | names | {GATEWAY_DIR}
    with output_folder(out, owns=lambda p: p.name in owned) as tmp:
        for name, plan in r.plans.items():
            write_atomic(tmp / name / "plan.json", plan.to_json())
            write_atomic(tmp / name / "report.md", plan_report(plan))
            if sims is not None:
                write_atomic(tmp / name / "sim.json", sims[name].to_json())
            if emit:
                from hetplan.emit import emit as emit_files
                from hetplan.emit import write_into
                write_into(tmp / name / emit, emit_files(plan, emit, options))
        if gateway is not None:
            from hetplan.emit import write_into
            write_into(tmp / GATEWAY_DIR, gateway)
        write_atomic(tmp / "fleet.json", json.dumps(s, indent=2, sort_keys=True) + "\n")
        write_atomic(tmp / "fleet.md", fleet_markdown(s))
    return s
