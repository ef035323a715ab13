"""Solve the schedule MILP (`program.py` states it) from the best of its starts
(`starts.py`). The problem, formulation and outcome types and the start builders are
re-exported here, where the schedule's callers import them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hetplan.milp.backends import solve
from hetplan.schedule.program import KINDS, ScheduleFormulation, ScheduleOutcome, ScheduleProblem
from hetplan.schedule.starts import (envelope_start, implied_start, repair_steps, stacked_start,
                                     start_cost)

__all__ = ["KINDS", "MIN_DEADLINE_LIMIT_S", "ScheduleFormulation", "ScheduleOutcome",
           "ScheduleProblem", "envelope_start", "implied_start", "repair_steps",
           "solve_schedule", "stacked_start", "start_cost"]

# the least a solve with a deadline gets, however late it starts: its start is handed to
# the solver, which then returns at least that
MIN_DEADLINE_LIMIT_S = 5.0


def solve_schedule(p: ScheduleProblem, solver: str = "highs", time_limit_s: float = 60.0,
                   start_slots: Sequence[ScheduleOutcome] | None = None,
                   envelope: tuple[ScheduleOutcome, np.ndarray] | None = None,
                   more_starts: Sequence[Sequence[ScheduleOutcome]] = (),
                   deadline: float | None = None) -> ScheduleOutcome:
    """Solve `p`, started from the cheapest feasible of: the one-slot solutions stacked
    (`start_slots` and each of `more_starts`, `stacked_start`) and the envelope held
    constant (`envelope`: its one-slot solution and rates, `envelope_start`). With a
    `deadline` (a `time.perf_counter()` instant), the solver's limit is also at most the
    time left to it when it starts (`backends.solve`), and no less than
    MIN_DEADLINE_LIMIT_S."""
    f = ScheduleFormulation(p)
    starts = []
    for stack in ([start_slots] if start_slots is not None else []) + list(more_starts):
        if all(o.solution.has_solution for o in stack):
            starts.append(stacked_start(f, stack))
    if envelope is not None and envelope[0].solution.has_solution:
        starts.append(envelope_start(f, *envelope))
    priced = [(c, i, s) for i, s in enumerate(starts)
              if (c := start_cost(f, s)) is not None]
    if priced:
        f.lp.start = min(priced, key=lambda x: (x[0], x[1]))[2]
    sol = solve(f.lp, solver, time_limit_s, deadline, MIN_DEADLINE_LIMIT_S)
    if not sol.has_solution:
        return ScheduleOutcome(sol, {}, {}, {}, 0.0, [], f)
    v = sol.values
    replicas: dict[tuple[str, str], list[int]] = {}
    for (i, k, t), var in f.n.items():
        replicas.setdefault((p.candidates[i].key, k), [0] * f.T)[t] = int(round(v[var]))
    replicas = {key: r for key, r in sorted(replicas.items()) if any(r)}
    committed = {g: int(round(v[var])) for g, var in f.commit.items() if round(v[var]) > 0}
    hours = float(p.slot_hours.sum())
    com = sum(n * hours * p.tiers[g].committed_usd_per_hour for g, n in committed.items())
    cost = {"committed": com, "on_demand": 0.0, "spot": 0.0, "warmup": 0.0}
    if f.owned:
        cost["owned"] = sum(hours * p.tiers[g].owned_gpus * p.tiers[g].owned_usd_per_hour
                            for g in f.owned)
        committed = {g: committed.get(g, 0) + p.tiers[g].owned_gpus
                     for g in sorted(set(committed) | set(f.owned))}
        com += cost["owned"]
    slot = [com * h / hours for h in p.slot_hours]
    for (i, k, t), var in f.n.items():
        if k != "committed":
            c = p.candidates[i]
            dollars = round(v[var]) * p.slot_hours[t] * p.price(c, k)
            cost[k] += dollars
            slot[t] += dollars
    for (i, k, t), var in f.u.items():
        dollars = v[var] * p.warmup_h[p.candidates[i].key] * p.price(p.candidates[i], k)
        cost["warmup"] += dollars
        slot[t] += dollars
    pools = sum(round(v[y]) for y in f.pool_open.values())
    return ScheduleOutcome(sol, replicas, committed, cost,
                           pools * hours * p.pool_cost_usd_per_hour, [float(s) for s in slot], f)
