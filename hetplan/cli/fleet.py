"""CLI for fleet files (`members:`): `hetplan solve`, `compare` and `scenario check` hand a
fleet file here (`hetplan.fleet`)."""

from __future__ import annotations

from pathlib import Path

import typer

from hetplan.errors import InputError


def solve_fleet(path: Path, out: Path | None, solver: str, time_limit: float, emit: str | None,
                as_json: bool, echo_json, progress, refused: dict[str, bool],
                validate: bool = False, max_rounds: int | None = None) -> None:
    """`hetplan solve FLEET.yaml`: one plan per member under --out/<member>/ plus fleet.json
    and fleet.md. `refused`: single-scenario options given (none apply to a fleet).
    `validate`: simulate each member's plan on its own workload and top up the replica
    counts of members that miss (`fleet.validate`), adding the attainment per member and
    the top-ups, at most `max_rounds` simulations per member (default
    `bounds.VALIDATE_ROUNDS`)."""
    for flag, given in refused.items():
        if given:
            raise InputError("is for single-model scenarios, not fleet files", field=flag)
    from hetplan.catalog import load_catalog
    from hetplan.fleet.report import fleet_markdown, fleet_summary, write_fleet
    from hetplan.fleet.solve import plan_fleet
    from hetplan.fleet.spec import load_fleet

    cat = load_catalog()
    r = plan_fleet(load_fleet(path, cat), cat, solver=solver, time_limit_s=time_limit,
                   progress=progress)
    progress("")
    sims = tuned = None
    if validate:
        from hetplan.fleet.validate import simulated_rows, tune_members
        from hetplan.bounds import VALIDATE_ROUNDS
        r, sims, rows = tune_members(r, cat, solver=solver, time_limit_s=time_limit,
                                     max_rounds=max_rounds or VALIDATE_ROUNDS)
        tuned = [row.row() for row in rows]
    options = None
    if emit:
        from hetplan.cli.emit import emit_options
        options = emit_options(None, None, "nixl")
    s = write_fleet(out, r, emit, options, sims, tuned) if out else \
        fleet_summary(r, None if sims is None else simulated_rows(sims), tuned)
    typer.echo(f"fleet MILP over {len(r.joint)} of {len(r.plans)} members solved in "
               f"{r.solve_s:.2f} s ({r.solve_cpu_s:.2f} CPU s)" if r.joint else
               "no fleet MILP: every member's plan alone on the whole inventory fits beside "
               "the others'", err=True)
    if as_json:
        echo_json(s)
    elif out:
        met = "" if sims is None else "; simulated: SLO " + (
            "met by every member" if all(x["slo_met"] for x in s["simulated"]) else
            "NOT met by " + ", ".join(x["name"] for x in s["simulated"] if not x["slo_met"]))
        typer.echo(f"fleet {s['fleet']}: ${s['cost_usd_per_hour']:.2f}/h over "
                   f"{len(s['members'])} members{met}; wrote {out / 'fleet.json'}, "
                   f"{out / 'fleet.md'} and one folder per member")
    else:
        typer.echo(fleet_markdown(s))


def compare_fleet(path: Path, solver: str, time_limit: float, as_json: bool, echo_json,
                  progress) -> None:
    """`hetplan compare FLEET.yaml`: the fleet plan against the members planned alone in
    turn (objective min_cost)."""
    from hetplan.catalog import load_catalog
    from hetplan.fleet.report import alone_table, fleet_summary
    from hetplan.fleet.solve import plan_fleet
    from hetplan.fleet.spec import load_fleet

    cat = load_catalog()
    rf = load_fleet(path, cat)
    if rf.fleet.objective != "min_cost":
        raise InputError("compare for fleets compares costs: objective min_cost only",
                         file=path, field="objective")
    s = fleet_summary(plan_fleet(rf, cat, solver=solver, time_limit_s=time_limit,
                                 progress=progress))
    progress("")
    if as_json:
        echo_json({"fleet": s["fleet"], "members": s["members"],
                   "sizing_cost_usd_per_hour": s["sizing_cost_usd_per_hour"],
                   "alone_in_turn": s["alone_in_turn"]})
    else:
        typer.echo(alone_table(s))


def check_fleet_file(path: str, as_json: bool, echo_json) -> None:
    """`hetplan scenario check FLEET.yaml`."""
    from hetplan.catalog import load_catalog
    from hetplan.fleet.spec import load_fleet
    from hetplan.scenario import scenario_gpus

    cat = load_catalog()
    rf = load_fleet(path, cat)
    f = rf.fleet
    first = rf.members[0].resolved.scenario
    summary = {"name": f.name, "objective": f.objective, "gpus": scenario_gpus(first, cat),
               "prices": f.catalog.prices, "inventory": f.inventory,
               "budget_usd_per_hour": f.constraints.budget_usd_per_hour,
               "members": [{"name": m.name, "model": m.resolved.model.name,
                            "weight": m.spec.weight, "priority": m.spec.priority,
                            "slo": m.spec.slo.model_dump()} for m in rf.members]}
    if as_json:
        echo_json(summary)
        return
    typer.echo(f"fleet {f.name}: OK ({len(rf.members)} members)")
    for m in summary["members"]:
        typer.echo(f"  {m['name']:<16} {m['model']} (weight {m['weight']:g}, priority "
                   f"{m['priority']}), p{m['slo']['percentile']:g} TTFT <= "
                   f"{m['slo']['ttft_ms']:g} ms, TPOT <= {m['slo']['tpot_ms']:g} ms")
    typer.echo(f"  gpus      {', '.join(summary['gpus'])} (prices: {f.catalog.prices})")
    typer.echo(f"  objective {f.objective}")
