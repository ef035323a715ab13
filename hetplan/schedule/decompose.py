"""The schedule's slots solved alone: the per-slot lower bound, the envelope, and the
decomposition the schedule MILP starts from.

- Lower bound: every slot alone with no change limits, warm-ups or pool cost (each may buy
  its own commitment), counted at the solver's proven bound: no schedule on the same
  candidates costs less.
- Envelope: one slot at every class's highest rate over the horizon (a start held in every
  slot, always feasible).
- Decomposition: committed GPUs and the P/D vendor and KV dtype from the schedule's LP
  relaxation (`relaxed_guess`), then every slot solved alone with those fixed, paying a
  pool for its hour (as a one-rate plan does) and for the whole horizon (as the schedule
  does), sized by rho even under queueing sizing (they are starts only);
  `formulation.stacked_start` stacks them and raises them where pools change faster than
  the limits allow or carry less than U(n) (`starts.repair_capacity`).

Slots with the same demand (to 1e-9 req/s) are solved once and share the outcome. The
relaxation (one LP), the bound's slots and the envelope run as one batch on `parallel`, then
both decompositions' slots as another (each a pool of workers kept busy to its end, not one
per stage); the outcomes do not depend on the worker count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hetplan.candidates import Candidate
from hetplan.errors import Infeasible
from hetplan.milp.backends import lp_relaxation
from hetplan.milp.formulation import ONE_OF_KEYS
from hetplan.parallel import INLINE, Parallel
from hetplan.schedule.formulation import ScheduleFormulation, ScheduleOutcome, ScheduleProblem, \
    solve_schedule

LOWER_BOUND_GAP = 1e-3      # per-slot relaxations: their proven bound is what counts
LOWER_BOUND_FIELDS = {"tie_break": 0.0}   # the bound's slots: no tie-break in their cost


def slot_alone(p: ScheduleProblem, t: int, **fields) -> ScheduleProblem:
    """Slot t as a one-slot problem without change limits, warm-ups or pool cost (what
    the lower bound and the decomposition solve; `fields` override), solved to
    LOWER_BOUND_GAP."""
    return replace(p, **{"rates_rps": p.rates_rps[t:t + 1], "slot_hours": np.ones(1),
                         "max_step_replicas": None, "cyclic": False, "warmup": False,
                         "pool_cost_usd_per_hour": 0.0, "mip_rel_gap": LOWER_BOUND_GAP}
                   | fields)


def _slot_jobs(batches: Sequence[tuple[ScheduleProblem, dict]], solver: str,
               time_limit_s: float) -> tuple[list, list]:
    """The distinct one-slot solves of `batches` as `Parallel.calls` jobs, and how to
    hand their outcomes back (`_assemble`)."""
    jobs, plans = [], []
    for p, fields in batches:
        keys = [tuple(np.round(p.rates_rps[t], 9)) for t in range(p.num_slots)]
        first = {k: t for t, k in reversed(list(enumerate(keys)))}
        distinct = sorted(first.values())
        plans.append((keys, distinct, len(jobs)))
        jobs += [(solve_schedule, (slot_alone(p, t, **fields), solver, time_limit_s), {})
                 for t in distinct]
    return jobs, plans


def _assemble(plans: list, solved: list) -> list[list[ScheduleOutcome]]:
    out = []
    for keys, distinct, at in plans:
        by_key = {keys[t]: o for t, o in zip(distinct, solved[at:at + len(distinct)])}
        out.append([by_key[k] for k in keys])
    return out


def solve_slot_batches(batches: Sequence[tuple[ScheduleProblem, dict]], solver: str,
                       time_limit_s: float, parallel: Parallel = INLINE
                       ) -> list[list[ScheduleOutcome]]:
    """For each (problem, fields) of `batches`, every slot of the problem solved alone
    (`slot_alone` with `fields`), all of them in one map on `parallel`; slots of a problem
    with the same demand are solved once and share the outcome."""
    jobs, plans = _slot_jobs(batches, solver, time_limit_s)
    return _assemble(plans, parallel.calls(jobs, label="slots"))


def solve_slots(p: ScheduleProblem, solver: str, time_limit_s: float, parallel: Parallel,
                **fields) -> list[ScheduleOutcome]:
    """Every slot of `p` solved alone (`slot_alone` with `fields`), on `parallel`."""
    return solve_slot_batches([(p, fields)], solver, time_limit_s, parallel)[0]


def bound_usd(p: ScheduleProblem, outs: Sequence[ScheduleOutcome]) -> float:
    """The lower bound from `p`'s slots solved alone (`LOWER_BOUND_FIELDS`):
    each slot's proven bound (its optimum when solved to optimality) times its hours."""
    total = 0.0
    for t, out in enumerate(outs):
        if not out.solution.has_solution:
            raise Infeasible([f"slot {t}: the per-slot relaxation has no plan "
                              f"({out.solution.status})"])
        b = out.solution.bound
        cost = min(out.total_cost_usd, b) if b is not None else out.total_cost_usd
        total += cost * float(p.slot_hours[t])
    return total


def lower_bound_usd(p: ScheduleProblem, solver: str, time_limit_s: float,
                    parallel: Parallel = INLINE) -> tuple[float, list[ScheduleOutcome]]:
    """Sum over slots of the schedule MILP on that slot alone, without change limits,
    warm-ups or pool cost (`bound_usd`), and each slot's solution."""
    outs = solve_slots(p, solver, time_limit_s, parallel, **LOWER_BOUND_FIELDS)
    return bound_usd(p, outs), outs


def relaxed_guess(p: ScheduleProblem) -> tuple[dict[str, int], list[list[Candidate]]]:
    """From the schedule's LP relaxation (HiGHS, whatever the MILP's solver, sized by rho
    even under queueing sizing: it only guesses): committed GPUs per type, rounded up, and candidate sets for slots solved
    alone, narrowest first: those the relaxation uses, then those of the one vendor and KV
    dtype whose P/D pools hold the most GPU-hours there (with every colocated one), so
    that the slots agree on them. ({}, [every candidate]) when the relaxation has no
    optimum."""
    # on the rho row: U(n)'s step columns make the week's LP ~4x slower for a guess
    f = ScheduleFormulation(replace(p, curves=None, down_curves=None))
    relaxed = lp_relaxation(f.lp)
    if relaxed is None:
        return {}, [list(p.candidates)]
    values = relaxed[1]
    committed = {g: math.ceil(values[v] - 1e-6) for g, v in f.commit.items()}
    held: dict[tuple[str, ...], float] = {}
    used: set[int] = set()
    for (i, _, t), var in f.n.items():
        c = p.candidates[i]
        if values[var] > 1e-6:
            used.add(i)
        if c.role != "colocated":
            key = tuple(ONE_OF_KEYS[k](c) for k in sorted(ONE_OF_KEYS))
            held[key] = held.get(key, 0.0) + values[var] * c.num_gpus * p.slot_hours[t]
    best = max(sorted(held), key=lambda k: held[k]) if held else None
    agree = [c for c in p.candidates if c.role == "colocated"
             or tuple(ONE_OF_KEYS[k](c) for k in sorted(ONE_OF_KEYS)) == best]
    return committed, [[c for i, c in enumerate(p.candidates) if i in used], agree]


def _stack_batch(p: ScheduleProblem, cands: list[Candidate], charge: float,
                 committed: dict[str, int]) -> tuple[ScheduleProblem, dict]:
    """The decomposition's slots over `cands`, the committed GPUs fixed, each paying the
    pool cost `charge` x its $/h (slot_plans)."""
    q = replace(p, candidates=cands, pool_cost_usd_per_hour=charge * p.pool_cost_usd_per_hour)
    # sized by rho (U(n)'s binaries make each one-slot MILP several times slower): a start
    # only, which `starts.stacked_start` raises to the curves' rows
    return q, {"fixed_committed_gpus": committed, "curves": None, "down_curves": None,
               "pool_cost_usd_per_hour": q.pool_cost_usd_per_hour}


def slot_plans(p: ScheduleProblem, solver: str, time_limit_s: float,
               committed: dict[str, int], parallel: Parallel = INLINE
               ) -> list[ScheduleOutcome] | None:
    """Every slot solved alone with the committed GPUs fixed (a decomposition: slots are
    independent once the baseline is fixed, but for change limits and warm-ups, which the
    full MILP then settles starting from these). Each slot pays the pool cost for its
    hour, as a one-rate plan does, so that slots keep to the same few pools. None if a
    slot fails."""
    q, fields = _stack_batch(p, list(p.candidates), 1.0, committed)
    outs = solve_slots(q, solver, time_limit_s, parallel, **fields)
    return outs if all(o.solution.has_solution for o in outs) else None


@dataclass(frozen=True)
class Decomposition:
    lower_bound_usd: float
    bound_slots: list[ScheduleOutcome]      # the lower bound's slots
    stacks: list[list[ScheduleOutcome]]     # decompositions that solved, cheaper pool first
    envelope: ScheduleOutcome
    envelope_rates: np.ndarray


def decompose(p: ScheduleProblem, solver: str, time_limit_s: float,
              parallel: Parallel = INLINE) -> Decomposition:
    """The lower bound, the envelope and the decomposition stacks (module docstring): one
    stack per pool charge (the slot's hour; the horizon, where pools cost anything), each
    over the relaxation's narrowest candidate set whose slots all solve."""
    env_rates = p.rates_rps.max(axis=0)
    # the relaxation (one LP, the longest job) goes first, beside the bound's slots
    jobs, plans = _slot_jobs([(p, LOWER_BOUND_FIELDS),
                              (replace(p, rates_rps=env_rates[None, :]), {})],
                             solver, time_limit_s)
    done = parallel.calls([(relaxed_guess, (p,), {})] + jobs, label="slots")
    (guess, subsets), (bound, env) = done[0], _assemble(plans, done[1:])
    charges = (1.0, float(p.slot_hours.sum()))[:2 if p.pool_cost_usd_per_hour > 0 else 1]
    stacks = solve_slot_batches([_stack_batch(p, subsets[0], c, guess) for c in charges],
                                solver, time_limit_s, parallel)
    kept = []
    for charge, got in zip(charges, stacks):
        for cands in subsets[1:]:       # a wider set only where the narrowest fails
            if all(o.solution.has_solution for o in got):
                break
            q, fields = _stack_batch(p, cands, charge, guess)
            got = solve_slots(q, solver, time_limit_s, parallel, **fields)
        if all(o.solution.has_solution for o in got):
            kept.append(got)
    return Decomposition(bound_usd(p, bound), bound, kept, env[0], env_rates)
