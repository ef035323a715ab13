"""Plan a fleet: each member prepared as a scenario (`planner.prepare`: prices, perf model,
candidates), one MILP for all (`fleet.formulation`), one placement pass (`fleet.place`),
and one plan per member (`planner.build_plan`).

Under min_cost the members are also planned alone, in turn (priority, then file order),
each on what the members before it left of the inventory and budget: the plan an operator
gets planning one model at a time without double-booking. Its union is a feasible fleet
solution, so it starts the fleet solve and bounds it: the fleet plan never costs more. The
sizing costs compared are GPU + pool cost (what both programs minimize), before placement
adds spares.
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
from hetplan.milp.prune import PRUNE_ABOVE, prune_dominated
from hetplan.milp.solve import Outcome, read_outcome, solve_problem, warn_gap
from hetplan.placement import Reliability
from hetplan.placement.place import PlacementInfeasible
from hetplan.plan import Plan
from hetplan.planner import (PLACEMENT_ROUNDS, SPARE_STEP, Context, build_plan, pool_name,
                             prepare, problem_for)


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


def sizing_cost(out: Outcome, p: Problem) -> float:
    """GPU + pool cost of an outcome (the objective less its tie-break)."""
    return sum(ch.replicas * ch.candidate.price_usd_per_hour + p.pool_cost_usd_per_hour
               for ch in out.chosen)


def _member_problem(ctx: Context, cands, availability: dict[str, int]) -> Problem:
    p = replace(problem_for(ctx, cands), availability=dict(availability))
    if len(p.candidates) > PRUNE_ABOVE:       # dominance holds under the shared rows too
        p = replace(p, candidates=prune_dominated(
            p.candidates, [w.name for w in p.classes], p.relaxed_capacity,
            latency_too=p.sizing is not None))
    return p


def plan_alone_in_turn(rf: ResolvedFleet, problems: dict[str, Problem], solver: str,
                       time_limit_s: float) -> tuple[list[Alone], dict[str, Outcome]]:
    """Each member alone, by priority then file order, on the GPUs and budget the members
    before it left."""
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


def floors_of(whole: dict[str, Outcome]) -> dict[str, float]:
    """Member -> a proven lower bound on its cost objective (the solver's dual bound of
    its solve alone; members solved without one are left out)."""
    out = {}
    for name, o in whole.items():
        sol = o.solution
        if sol.has_solution and sol.bound is not None:
            out[name] = min(sol.bound, sol.objective)
    return out


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
    rounds: list[str] = []
    for _ in range(PLACEMENT_ROUNDS):
        problems = {name: _member_problem(ctx, cands[name], availability)
                    for name, ctx in ctxs.items()}
        alone, outs, whole = [], {}, {}
        if f.objective == "min_cost":
            whole = alone_on_whole(problems, solver, time_limit_s)
            alone, outs = plan_alone_in_turn(rf, problems, solver, time_limit_s)
        fp = FleetProblem([MemberProblem(m.name, problems[m.name], m.spec.weight)
                           for m in rf.members], availability,
                          f.constraints.budget_usd_per_hour, f.objective, floors_of(whole))
        t0, c0 = time.perf_counter(), time.process_time()
        start = {n: o.values_by_name() for n, o in outs.items()} if len(outs) == len(ctxs) \
            else None
        ff = FleetFormulation(fp)
        set_start(ff, start)
        sol = solve(ff.lp, solver, time_limit_s)
        solve_s, solve_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        warn_gap(sol, time_limit_s, sum(len(p.candidates) for p in problems.values()))
        if not sol.has_solution:
            raise Infeasible(rounds + _explain(rf, problems, alone, whole, solver,
                                               time_limit_s))
        member_outs = {name: read_outcome(fm, ff.member_solution(name, sol))
                       for name, (fm, _) in ff.parts.items()}
        plans = {name: build_plan(ctxs[name], out, f"fleet {f.name}: planned with "
                                  f"{', '.join(m for m in ctxs if m != name) or 'no other'} "
                                  "member(s) in one MILP")
                 for name, out in member_outs.items()}
        costs = {name: sizing_cost(out, problems[name]) for name, out in member_outs.items()}
        whole_cost = {name: sizing_cost(o, problems[name]) for name, o in whole.items()
                      if o.solution.has_solution}
        shares = {name: out.scale for name, out in member_outs.items()}
        inv = rf.inventory
        if inv is None:
            return FleetResult(rf, plans, costs, shares, solve_s, solve_cpu_s, alone=alone,
                               notes=rounds, whole_cost_usd_per_hour=whole_cost)
        rel = f.constraints.reliability
        first = next(iter(ctxs.values()))
        try:
            plans = place_fleet(f.name, plans, {n: c.perf.model for n, c in ctxs.items()},
                                inv, reliability=Reliability(rel.n_plus_one, rel.spot_headroom),
                                solver=solver, time_limit_s=time_limit_s,
                                translation_us=first.perf.links.kv.cross_vendor_translation_us,
                                label=f.inventory)
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
                           whole_cost_usd_per_hour=whole_cost)
    raise Infeasible(rounds)
