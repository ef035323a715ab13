"""Queueing-sized MILPs solved in stages, exactly (issue 16: the planner stays fast).

The full program prices every candidate's U(n) with up to MAX_STEPS binaries; HiGHS then
spends most of its time finding a first good plan and on binaries of candidates no good
plan uses. Stages, each on the candidates the one before kept:

1. the LP relaxation without the flow rows (`pool_sizing`), and the MILP over the
   candidates it uses (few): a plan of cost UB;
2. reduced-cost fixing: a plan with candidate c in it has n[c] >= 1 and its first step
   z[c,1] = 1, so by LP duality it costs at least LB + d (d >= 0: the larger reduced cost
   of the two columns, at their lower bound 0); every c with LB + d >= UB is left out;
3. the same with the flow rows in (a tighter LB), the plan searched over the candidates it
   uses plus the NEAR_EXTRA next cheapest to open (time-boxed), and fixing again;
4. the MILP over what is left, started from the best plan, solved to optimality.

Exactness: a plan cheaper than UB uses no left-out candidate, and the best plan (cost UB)
is a plan of the last program, so the last optimum is the full program's. The last dual
bound is one of the full program's too (a plan outside it costs >= UB >= the last
optimum), so a time-limited last stage reports an honest gap. FIX_TOL keeps candidates
within LP tolerances of the cut-off. A stage with no answer (relaxation not optimal, no
plan found) falls back to the full program.
"""

from __future__ import annotations

import time
from dataclasses import replace

from hetplan.milp.backends import lp_relaxation, solve
from hetplan.milp.formulation import Formulation, Problem
from hetplan.milp.lp import Solution

STAGE_ABOVE = 100      # by default, stage programs with more candidates (bench: 5 x 8,
                       # 60 candidates, 3.5 CPU s in one solve, 4.2 staged; 10 x 16, 120:
                       # 8.3 vs 3.0)
SUPPORT_EPS = 1e-6     # replicas in the relaxation that count a candidate as used
FIX_TOL = 1e-6         # relative slack on LB + d >= UB (LP tolerances)
NEAR_EXTRA = 12        # candidates beyond the relaxation's own in the stage-3 plan search
PLAN_SHARE = 0.15      # most of the time limit each plan search may take
# the last MILP is small and starts from a good plan: HiGHS's presolve (probing) and its
# restarts cost more there than they save (measured on scripts/bench_solve.py's 20 x 32)
FINAL_HIGHS_OPTIONS = {"presolve": "off", "mip_allow_restart": False}


def staged_applies(f: Formulation, auto: bool = False) -> bool:
    """Stages are written for min-cost programs with queueing curves; `auto`: and help
    there (more than STAGE_ABOVE candidates)."""
    return bool(f.curves) and f.scale is None and \
        (not auto or len(f.p.candidates) > STAGE_ABOVE)


def solve_staged(f: Formulation, solver: str, time_limit_s: float
                 ) -> tuple[Formulation, Solution]:
    """Solve f's program by the module's stages: the formulation solved last (over the
    candidates kept) and its solution."""
    t0 = time.perf_counter()
    p, curves = f.p, f.curves
    best: tuple[float, dict[str, float]] | None = None
    keep = list(p.candidates)
    for flow in (False, True):
        cur = Formulation(replace(p, candidates=keep), curves, True) if flow else f
        relax = lp_relaxation(cur.lp, drop=None if flow else "flow")
        if relax is None:
            if best is None:
                return f, solve(f.lp, solver, time_limit_s)
            break
        lb, values, reduced = relax
        used = _near(cur, values, reduced, NEAR_EXTRA if flow else 0)
        limit = max(1.0, min(_left(t0, time_limit_s), PLAN_SHARE * time_limit_s))
        best = _better(best, _plan(p, used, curves, solver, limit))
        if best is None:
            return f, solve(f.lp, solver, _left(t0, time_limit_s))
        ub, plan = best
        keep = [c for i, c in enumerate(cur.p.candidates)
                if lb + _opening_cost(cur, i, reduced) < ub + FIX_TOL * max(1.0, abs(ub))
                or plan.get(f"n[{c.key}]", 0.0) > 0.5]
    last = Formulation(replace(p, candidates=keep), curves)
    last.start_from(best[1])
    last.lp.highs_options = dict(FINAL_HIGHS_OPTIONS)
    return last, solve(last.lp, solver, _left(t0, time_limit_s))


def _near(f: Formulation, values: list[float], reduced: list[float], extra: int) -> list:
    """The candidates the relaxation uses, then the `extra` next cheapest to open."""
    used = [i for i in range(len(f.p.candidates)) if values[f.n[i]] > SUPPORT_EPS]
    in_use = set(used)
    rest = sorted((_opening_cost(f, i, reduced), i) for i in range(len(f.p.candidates))
                  if i not in in_use)
    pick = sorted(used + [i for _, i in rest[:extra]])
    return [f.p.candidates[i] for i in pick]


def _plan(p: Problem, used: list, curves, solver: str, limit_s: float
          ) -> tuple[float, dict[str, float]] | None:
    """The MILP over `used` only: its cost and values by name (None: no plan)."""
    sub = Formulation(replace(p, candidates=used), curves)
    sol = solve(sub.lp, solver, limit_s)
    if not sol.has_solution:
        return None
    return sol.objective, {v.name: x for v, x in zip(sub.lp.vars, sol.values)}


def _better(a, b):
    return b if a is None or (b is not None and b[0] < a[0]) else a


def _opening_cost(f: Formulation, i: int, reduced: list[float]) -> float:
    """The least a plan with candidate i in it costs over the relaxation's optimum: the
    larger reduced cost of n[i] and of its first step binary (both >= 1 in such a plan)."""
    cost = reduced[f.n[i]]
    try:
        cost = max(cost, reduced[f.lp.var(f"step[{f.p.candidates[i].key},1]")])
    except KeyError:              # a straight-line curve (or none): no step binaries
        pass
    return max(0.0, cost)


def _left(t0: float, limit_s: float) -> float:
    return max(1.0, limit_s - (time.perf_counter() - t0))
