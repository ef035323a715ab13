"""Plan a fleet: each member prepared as a scenario (`planner.prepare`: prices, perf model,
candidates), one MILP for all (`fleet.formulation`), one placement pass (`fleet.place`),
and one plan per member (`planner.build_plan`).

Under min_cost the members are also planned alone, in turn (priority, then file order),
each on what the members before it left of the inventory and budget: the plan an operator
gets planning one model at a time without double-booking. Its union is a feasible fleet
solution, so it starts the fleet solve and bounds it: the fleet plan never costs more. The
sizing costs compared are GPU + pool cost (what both programs minimize), before placement
adds spares. Each member is also planned alone on the whole inventory (a lower bound); the
fleet MILP then covers only the members whose plans alone do not fit together
(`solve_joint`), and none when they all fit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hetplan.catalog import Catalog
from hetplan.errors import Infeasible
from hetplan.fleet.formulation import FleetFormulation, FleetProblem, MemberProblem
from hetplan.fleet.place import SEP, place_fleet
from hetplan.fleet.spec import ResolvedFleet
from hetplan.milp.backends import solve
from hetplan.milp.explain import explain_infeasible, precheck
from hetplan.milp.formulation import Problem
from hetplan.milp.solve import (Outcome, pruned, read_outcome, sizing_cost, solve_problem,
                                warn_gap)
from hetplan.placement import Reliability
from hetplan.placement.place import PlacementInfeasible
from hetplan.plan import Plan
from hetplan.planner import (PLACEMENT_ROUNDS, SPARE_STEP, Context, build_plan, pool_name,
                             prepare, problem_for)


BUDGET_TOL = 1e-9      # relative: GPU $/h sums equal to the budget within round-off


@dataclass(frozen=True)
class Alone:
    """A member planned alone in turn: its sizing cost, or why it did not fit."""

    member: str
    cost_usd_per_hour: float | None     # GPU + pool cost; None: no plan on what was left
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FleetResult:
    fleet: ResolvedFleet
    plans: dict[str, Plan]                  # member -> its plan (placed, with an inventory)
    sizing_cost_usd_per_hour: dict[str, float]    # member -> GPU + pool cost at sizing
    served_share: dict[str, float]          # member -> goodput scale (1 under min_cost)
    solve_s: float              # the fleet MILP's wall time: build and solve (last round)
    solve_cpu_s: float          # ... and this process's CPU time in it (HiGHS runs in-process)
    alone: list[Alone] = field(default_factory=list)   # min_cost only
    # member -> its sizing cost alone on the whole inventory (double-booking it: a lower
    # bound on its part of the fleet plan); min_cost only
    whole_cost_usd_per_hour: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # the members the fleet MILP covered (the others' plans alone on the whole inventory
    # fit beside theirs: `solve_joint`), in file order
    joint: tuple[str, ...] = ()
    # the fleet's shared GPUs per type (catalog availability, or the inventory's healthy
    # GPUs) before any placement round trimmed them: what the plans together may use
    availability: dict[str, int] = field(default_factory=dict)


def _member_problem(ctx: Context, cands, availability: dict[str, int]) -> Problem:
    return pruned(replace(problem_for(ctx, cands), availability=dict(availability)))


def plan_alone_in_turn(rf: ResolvedFleet, problems: dict[str, Problem], solver: str,
                       time_limit_s: float, whole: dict[str, Outcome] | None = None
                       ) -> tuple[list[Alone], dict[str, Outcome]]:
    """Each member alone, by priority then file order, on the GPUs and budget the members
    before it left. A member whose plan alone on the whole inventory (`whole`) fits in
    what is left keeps it unsolved: it is optimal on the whole, so on any part holding it."""
    avail = dict(next(iter(problems.values())).availability)
    budget = rf.fleet.constraints.budget_usd_per_hour
    rows, outs = [], {}
    order = sorted(rf.members, key=lambda m: -m.spec.priority)
    for m in order:
        p = problems[m.name]
        own = p.budget_usd_per_hour
        left = None if budget is None else max(0.0, budget)
        p = replace(p, availability={g: min(n, avail.get(g, n)) for g, n in
                                     p.availability.items()},
                    budget_usd_per_hour=left if own is None else
                    (own if left is None else min(own, left)))
        out = (whole or {}).get(m.name)
        if out is None or not out.solution.has_solution or _over(
                {m.name: out}, p.availability, p.budget_usd_per_hour) != (set(), False):
            out = solve_problem(p, solver, time_limit_s, warn=False)
        if not out.solution.has_solution:
            rows.append(Alone(m.name, None, explain_infeasible(p, solver, time_limit_s)))
            continue
        outs[m.name] = out
        rows.append(Alone(m.name, sizing_cost(out, p)))
        for ch in out.chosen:
            g = ch.candidate.shape.gpu
            if g in avail:
                avail[g] -= ch.replicas * ch.candidate.num_gpus
        if budget is not None:
            budget -= sum(ch.replicas * ch.candidate.price_usd_per_hour for ch in out.chosen)
    return rows, outs


def set_start(ff: FleetFormulation, start: dict[str, dict[str, float]] | None) -> None:
    """Start the solver from `start` (member -> its variables' values by name; missing: 0),
    when it covers every member: the in-turn plans, a feasible fleet plan."""
    if start is None or set(start) != set(ff.parts):
        return
    ff.lp.start = {k + off: start[name].get(v.name, 0.0)
                   for name, (f, off) in ff.parts.items() for k, v in enumerate(f.lp.vars)}


def alone_on_whole(problems: dict[str, Problem], solver: str, time_limit_s: float
                   ) -> dict[str, Outcome]:
    """Each member alone on the whole inventory and budget (double-booking them): a lower
    bound on its part of any fleet plan."""
    return {name: solve_problem(p, solver, time_limit_s, warn=False)
            for name, p in problems.items()}


def _usage(outs: dict[str, Outcome]) -> tuple[dict[str, int], float]:
    """GPUs per type and GPU $/h of the outcomes together (what the shared rows count)."""
    gpus: dict[str, int] = {}
    cost = 0.0
    for out in outs.values():
        for ch in out.chosen:
            g = ch.candidate.shape.gpu
            gpus[g] = gpus.get(g, 0) + ch.replicas * ch.candidate.num_gpus
            cost += ch.replicas * ch.candidate.price_usd_per_hour
    return gpus, cost


def _over(outs: dict[str, Outcome], availability: dict[str, int], budget: float | None
          ) -> tuple[set[str], bool]:
    """The GPU types the outcomes together over-use, and whether they overrun the budget."""
    gpus, cost = _usage(outs)
    return ({g for g, n in gpus.items() if g in availability and n > availability[g]},
            budget is not None and cost > budget * (1 + BUDGET_TOL))


def solve_joint(rf: ResolvedFleet, problems: dict[str, Problem], availability: dict[str, int],
                whole: dict[str, Outcome], outs: dict[str, Outcome], solver: str,
                time_limit_s: float) -> tuple[dict[str, Outcome] | None, tuple[str, ...]]:
    """Every member's outcome (None: no fleet plan) and the members the fleet MILP covered.

    Under min_cost, with every member solved alone on the whole inventory (`whole`), the
    MILP covers only the members it must. J starts empty; while the MILP's plan for J on
    the whole inventory and budget, beside the other members' plans alone, over-uses a GPU
    type (or the budget), the members outside J that use it (any GPU) join J. Exact: any
    fleet plan's part for J is a plan of J's MILP (same rows, the whole inventory) and each
    other member's part costs at least its optimum alone, so once they fit together their
    union is a fleet optimum (within the solves' own gaps). When the alone plans fit, no
    fleet MILP runs at all. Otherwise (max_goodput, a member with no plan alone) the MILP
    covers every member."""
    f = rf.fleet
    names = [m.name for m in rf.members]
    budget = f.constraints.budget_usd_per_hour
    joint: list[str] = names
    if f.objective == "min_cost" and all(whole[n].solution.has_solution for n in names):
        joint = []
    while True:
        rest = {n: whole[n] for n in names if n not in joint}
        if joint:
            got = _solve_milp(rf, problems, availability, joint, outs, solver, time_limit_s)
            if got is None:
                return None, tuple(joint)
        else:
            got = {}
        over, broke = _over(got | rest, availability, budget)
        grow = [n for n, o in rest.items() if o.chosen and (broke or any(
            ch.candidate.shape.gpu in over for ch in o.chosen))]
        if not grow:
            return {n: (got | rest)[n] for n in names}, tuple(joint)
        joint = [n for n in names if n in joint or n in grow]


def _solve_milp(rf: ResolvedFleet, problems: dict[str, Problem], availability: dict[str, int],
                joint: list[str], outs: dict[str, Outcome], solver: str, time_limit_s: float
                ) -> dict[str, Outcome] | None:
    """The fleet MILP over the members `joint` (the whole availability and budget), started
    from their plans in turn (`outs`) when every one has one."""
    f = rf.fleet
    fp = FleetProblem([MemberProblem(m.name, problems[m.name], m.spec.weight)
                       for m in rf.members if m.name in joint], availability,
                      f.constraints.budget_usd_per_hour, f.objective)
    ff = FleetFormulation(fp)
    set_start(ff, {n: o.values_by_name() for n, o in outs.items() if n in joint})
    sol = solve(ff.lp, solver, time_limit_s)
    warn_gap(sol, time_limit_s, sum(len(problems[n].candidates) for n in joint))
    if not sol.has_solution:
        return None
    return {name: read_outcome(fm, ff.member_solution(name, sol))
            for name, (fm, _) in ff.parts.items()}


def place_members(rf: ResolvedFleet, plans: dict[str, Plan], perfs: dict, *, solver: str,
                  time_limit_s: float) -> dict[str, Plan]:
    """Every member's plan placed on the fleet's inventory in one pass (`perfs`: member ->
    PerfModel, for its model and the KV links); raises PlacementInfeasible."""
    f = rf.fleet
    rel = f.constraints.reliability
    first = next(iter(perfs.values()))
    return place_fleet(f.name, plans, {n: p.model for n, p in perfs.items()}, rf.inventory,
                       reliability=Reliability(rel.n_plus_one, rel.spot_headroom),
                       solver=solver, time_limit_s=time_limit_s,
                       translation_us=first.links.kv.cross_vendor_translation_us,
                       label=f.inventory)


def _plan_label(fleet: str, name: str, joint: tuple[str, ...]) -> str:
    if name not in joint:
        return (f"fleet {fleet}: its plan alone on the whole inventory (its own optimum) "
                "fits beside the other members'")
    others = [m for m in joint if m != name]
    return (f"fleet {fleet}: planned with {', '.join(others) or 'no other'} member(s) in one "
            "MILP")


def _explain(rf: ResolvedFleet, problems: dict[str, Problem], alone: list[Alone],
             whole: dict[str, Outcome], solver: str, time_limit_s: float) -> list[str]:
    """Why the fleet has no plan, naming members: those with no plan even alone on the
    whole inventory, else the first one planning in turn leaves no room for."""
    reasons = []
    for m in rf.members:
        out = whole.get(m.name) or solve_problem(problems[m.name], solver, time_limit_s,
                                                 warn=False)
        if not out.solution.has_solution:
            reasons += [f"member {m.name}: {r}" for r in
                        explain_infeasible(problems[m.name], solver, time_limit_s)]
    if reasons:
        return reasons
    short = [a for a in alone if a.cost_usd_per_hour is None]
    if short:
        return [f"member {a.member} does not fit beside the others (each fits alone; planned "
                f"in turn by priority it has no room): {'; '.join(a.reasons)}" for a in short]
    return ["members fit alone but not together: the shared availability and budget rows "
            "jointly bind"]


def plan_fleet(rf: ResolvedFleet, catalog: Catalog, *, solver: str = "highs",
               time_limit_s: float = 60.0, progress: Callable[[str], None] | None = None
               ) -> FleetResult:
    """Plan every member of a fleet in one MILP and one placement; infeasible fleets raise
    `Infeasible` naming the members and what binds."""
    f = rf.fleet
    ctxs = {m.name: prepare(m.resolved, catalog, progress=progress) for m in rf.members}
    reasons = []
    for m in rf.members:
        ctx = ctxs[m.name]
        reasons += [f"member {m.name}: {r}" for r in precheck(
            problem_for(ctx), ctx.candidates, ctx.dropped, ctx.scenario, ctx.perf.model.name)]
    if reasons:
        raise Infeasible(reasons)
    availability: dict[str, int] = {}
    for ctx in ctxs.values():
        availability |= ctx.availability
    cands = {name: list(ctx.candidates) for name, ctx in ctxs.items()}
    shared = dict(availability)
    rounds: list[str] = []
    for _ in range(PLACEMENT_ROUNDS):
        problems = {name: _member_problem(ctx, cands[name], availability)
                    for name, ctx in ctxs.items()}
        alone, outs, whole = [], {}, {}
        if f.objective == "min_cost":
            whole = alone_on_whole(problems, solver, time_limit_s)
            alone, outs = plan_alone_in_turn(rf, problems, solver, time_limit_s, whole)
        t0, c0 = time.perf_counter(), time.process_time()
        member_outs, joint = solve_joint(rf, problems, availability, whole, outs, solver,
                                         time_limit_s)
        solve_s, solve_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        if member_outs is None:
            raise Infeasible(rounds + _explain(rf, problems, alone, whole, solver,
                                               time_limit_s))
        plans = {name: build_plan(ctxs[name], out, _plan_label(f.name, name, joint))
                 for name, out in member_outs.items()}
        costs = {name: sizing_cost(out, problems[name]) for name, out in member_outs.items()}
        whole_cost = {name: sizing_cost(o, problems[name]) for name, o in whole.items()
                      if o.solution.has_solution}
        shares = {name: out.scale for name, out in member_outs.items()}
        inv = rf.inventory
        if inv is None:
            return FleetResult(rf, plans, costs, shares, solve_s, solve_cpu_s, alone=alone,
                               notes=rounds, whole_cost_usd_per_hour=whole_cost, joint=joint,
                               availability=shared)
        try:
            plans = place_members(rf, plans, {n: c.perf for n, c in ctxs.items()},
                                  solver=solver, time_limit_s=time_limit_s)
        except PlacementInfeasible as e:
            if not e.blocked and not e.spare_gpus:
                raise Infeasible(rounds + e.reasons) from None
            rounds.append(f"placement round {len(rounds) + 1}: {'; '.join(e.reasons[:2])}")
            for name in cands:
                cands[name] = [c for c in cands[name]
                               if f"{name}{SEP}{pool_name(c)}" not in e.blocked]
            for g, n in e.spare_gpus.items():
                step = math.ceil(SPARE_STEP * availability.get(g, 0))
                availability[g] = max(0, availability.get(g, 0) - max(n, step))
            continue
        return FleetResult(rf, plans, costs, shares, solve_s, solve_cpu_s, alone=alone,
                           notes=[f"re-sized after {r}" for r in rounds],
                           whole_cost_usd_per_hour=whole_cost, joint=joint,
                           availability=shared)
    raise Infeasible(rounds)
