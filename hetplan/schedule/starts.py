"""First incumbents for the schedule MILP (`program.ScheduleFormulation`): one-slot
solutions stacked and raised to the change limits, or the envelope held in every slot, with
what they imply (committed GPUs, starts, pools, one-of picks), and the cost of a start."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hetplan.candidates import Candidate
from hetplan.milp.formulation import ONE_OF_KEYS
from hetplan.schedule.curve_rows import planned_held
from hetplan.schedule.program import ScheduleFormulation, ScheduleOutcome


def stacked_start(f: ScheduleFormulation, slots: Sequence[ScheduleOutcome]) -> dict[int, float]:
    """A first incumbent for the schedule MILP `f` from one-slot solutions of the same
    candidates (`slots[t]`: slot t solved alone): their replicas and routes slot by slot,
    raised where a pool changes faster than the change limits allow (`repair_steps`) or
    carries less than U(n) under queueing sizing (`repair_capacity`), the committed GPUs
    their most in any slot, the starts and pools they imply. It is feasible
    when the slots share one vendor and KV dtype for P/D and the raised pools fit the
    GPUs available; otherwise HiGHS drops it."""
    start: dict[int, float] = {}
    for (i, k, t), var in f.n.items():
        start[var] = float(slots[t].replicas.get((f.p.candidates[i].key, k), [0])[0])
    for (i, w, t), var in f.x.items():      # (the slots may hold a subset of f's candidates)
        one = slots[t].formulation
        j = one.index.get(f.p.candidates[i].key)
        start[var] = slots[t].solution.values[one.x[j, w, 0]] if (j, w, 0) in one.x else 0.0
    for _ in range(100):             # both only raise: a fixpoint within a few rounds
        repair_steps(f, start)
        if not repair_capacity(f, start):
            break
    return implied_start(f, start)


def repair_capacity(f: ScheduleFormulation, start: dict[int, float]) -> bool:
    """Raise replica counts in `start` (in place) where a pool under queueing sizing
    carries less than its routed load under the MILP's rows (`curve_rows.planned_held`):
    one replica at a time, on-demand where the GPU has that tier (else spot, else
    committed). Whether anything was raised."""
    p = f.p
    raised = False
    loads: dict[tuple[int, int], float] = {}
    for (i, w, t), v in f.x.items():
        loads[i, t] = loads.get((i, t), 0.0) + start[v] / p.candidates[i].capacity(w)
    for i, t in f.steps:
        c = p.candidates[i]
        load = loads.get((i, t), 0.0)
        tier = next(k for k in ("on_demand", "spot", "committed") if (i, k, t) in f.n)
        spot = f.n.get((i, "spot", t))
        for _ in range(f.ub[i]):
            n = sum(start[v] for v in f.total(i, t))
            if planned_held(p.curves[c.key], int(round(n)),
                            int(round(start[spot])) if spot is not None else 0,
                            p.spot_capacity_share(c), (p.down_curves or {}).get(c.key)
                            ) >= load * (1 - 1e-9) or n >= f.ub[i]:
                break
            start[f.n[i, tier, t]] += 1
            raised = True
    return raised


def repair_steps(f: ScheduleFormulation, start: dict[int, float], rounds: int = 1000) -> None:
    """Raise replica counts in `start` (in place) until every pool keeps within the change
    limits between consecutive slots: a pool that grows too fast is raised in the slot
    before, one that shrinks too fast in the slot after. Raising only adds capacity, so the
    routes stay feasible; the replicas added are on-demand where the GPU has that tier."""
    p = f.p
    if p.max_step_replicas is None:
        return
    step, share = p.max_step_replicas, p.max_step_share

    def size(i: int, t: int) -> float:
        return sum(start[v] for v in f.total(i, t))

    def raise_to(i: int, t: int, want: float) -> bool:
        add = math.ceil(want - size(i, t) - 1e-9)
        if add <= 0:
            return False
        tier = next(k for k in ("on_demand", "spot", "committed") if (i, k, t) in f.n)
        start[f.n[i, tier, t]] += add
        return True

    for _ in range(rounds):
        changed = False
        for t in range(f.T):
            prev = f._prev(t)
            if prev is None:
                continue
            for i in range(len(p.candidates)):
                # step_up: now <= (1 + share) before + step;  step_down: the mirror
                changed |= raise_to(i, prev, (size(i, t) - step) / (1.0 + share))
                changed |= raise_to(i, t, (1.0 - share) * size(i, prev) - step)
        if not changed:
            return


def implied_start(f: ScheduleFormulation, start: dict[int, float]) -> dict[int, float]:
    """`start` (replicas and routes) completed with what they imply: committed GPUs (the
    most any slot uses beyond the owned ones), replicas started, the queueing rows' steps,
    pools open and the one-of picks."""
    for g, var in f.owned.items():
        start[var] = f.lp.vars[var].lb
    for g, var in f.commit.items():        # (at least its fixed value, when fixed)
        start[var] = max(f.lp.vars[var].lb, max(
            sum(c.num_gpus * start[f.n[i, "committed", t]]
                for i, c in enumerate(f.p.candidates) if (i, "committed", t) in f.n)
            for t in range(f.T)) - f.p.tiers[g].owned_gpus)
    for (i, k, t), var in f.u.items():
        prev = f._prev(t)
        before = start[f.n[i, k, prev]] if prev is not None else 0.0
        start[var] = max(0.0, start[f.n[i, k, t]] - before)
    for (i, t), (total, z, tail, y) in f.steps.items():     # queueing rows' steps
        n = sum(start[v] for v in f.total(i, t))
        start[total] = n
        start |= {v: float(min(n, len(z)) == k) for k, v in enumerate(z, start=1)}
        if tail is not None:
            start[tail] = max(0.0, n - len(z))
        if y is not None:
            start[y] = float(start[f.n[i, "spot", t]] > 0)
    for i, var in f.pool_open.items():
        start[var] = float(any(start[v] > 0 for (j, _, _), v in f.n.items() if j == i))
    for v in range(len(f.lp.vars)):          # one-of picks: those any slot uses
        name = f.lp.vars[v].name
        if v not in start and name.endswith("]") and "_pick[" in name:
            family, key = name[:-1].split("_pick[")
            start[v] = float(any(
                start[var] > 0 for (i, _, _), var in f.n.items()
                if f.p.candidates[i].role != "colocated"
                and _one_of_key(family, f.p.candidates[i]) == key))
    return start


def envelope_start(f: ScheduleFormulation, env: ScheduleOutcome,
                   env_rates: np.ndarray) -> dict[int, float]:
    """A start that is always feasible: the solution `env` of one slot at every class's
    highest rate over the horizon (`env_rates`), held in every slot (no change, so no
    change limit binds and nothing restarts), each class's routes scaled to the slot's
    rate."""
    one = env.solution.values
    slots = [env] * f.T
    start = stacked_start(f, slots)
    for (i, w, t), var in f.x.items():
        j = f.p.class_names.index(w)
        scale = f.p.rates_rps[t, j] / env_rates[j] if env_rates[j] > 0 else 0.0
        start[var] = one[env.formulation.x[i, w, 0]] * scale
    return start


def start_cost(f: ScheduleFormulation, start: dict[int, float], tol: float = 1e-6
               ) -> float | None:
    """The objective of `start` in `f`, or None when it breaks a constraint."""
    for c in f.lp.constraints:
        lhs = sum(k * start.get(i, 0.0) for i, k in c.terms.items())
        slack = tol * max(1.0, abs(c.rhs))
        if (c.sense == "<=" and lhs > c.rhs + slack) or (c.sense == ">=" and lhs < c.rhs - slack) \
                or (c.sense == "==" and abs(lhs - c.rhs) > slack):
            return None
    return sum(k * start.get(i, 0.0) for i, k in f.lp.objective.items())


def _one_of_key(family: str, c: Candidate) -> str:
    return ONE_OF_KEYS[family](c)
