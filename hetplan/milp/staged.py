"""Queueing-sized MILPs solved in stages, exactly (issue 16: the planner stays fast).

The full program prices every candidate's U(n) with up to MAX_STEPS binaries; HiGHS then
spends most of its time finding a first good plan and on binaries of candidates no good
plan uses. Its relaxation is weakest at the one-of rows (one vendor, one KV dtype for the
prefill and decode pools, `formulation.add_one_of`): a fractional pick mixes vendors (on
scripts/bench_solve.py's 20 x 64: bound 130.4 over all, 139.6 / 141.5 / 153.0 per vendor,
optimum 143.9). So:

1. parts: the program splits into one part per combination of one-of values the prefill
   and decode candidates have (each part: those candidates plus every colocated one); a
   plan's prefill and decode pools share one combination, so it is a plan of a part;
2. per part, the LP relaxation without the flow rows gives a bound LB (the parts in
   PART_WORKERS threads); parts are taken in order of LB and a part whose LB reaches the
   best plan's cost UB is done;
3. for the first part, the MILP over the candidates its relaxation uses: a first plan, UB
   (searched only to within PLAN_REL_GAP of that MILP's optimum: step 6 of the same part
   starts from this plan and proves or improves it);
4. reduced-cost fixing: a plan with candidate c in it has n[c] >= 1 and its first step
   z[c,1] = 1, so by LP duality it costs at least LB + d (d: the sum of the two columns'
   reduced costs, each >= 0 at its lower bound 0); every c with LB + d >= UB is left out;
5. the relaxation again with the flow rows (`pool_sizing`, a tighter LB) over what is
   left (started from the first relaxation's basis: 3x faster on the bench), fixing
   again, and replica caps by the same argument: m replicas of c take n[c] = m and steps
   1..m, so LB + m d_n + sum_{k <= m} d_k < UB bounds m (this shortens the
   step chains, and with them the relaxation's big-M, of the candidates kept);
6. the MILP over what is left, started from the part's plan or cut off at UB (HiGHS's
   objective_bound), solved to optimality without HiGHS's RINS, RENS and root
   reduced-cost sub-MIPs (it has a plan or a cut-off already; on the bench they took
   over a third of the time; HiGHS's other heuristics stay on).

Once the first plan is found, steps 4-6 of every part left run against its UB in
PART_WORKERS threads (HiGHS releases the GIL while it solves); each part's work depends
on that UB only and the results are merged in part order, so the plan is the same
whatever the threads' timing.

Exactness: a plan cheaper than UB in a part uses no left-out candidate and respects the
caps, so each part's last MILP (or its LB) proves no plan of the part beats UB, and the
best plan found is the full program's optimum. When the time limit stops a part, the
bound reported is the least over the parts of what they proved (LB, or the stopped MILP's
dual bound, never above a cut-off the search pruned at) and UB, so the gap is honest.
FIX_TOL keeps candidates within LP tolerances of the cut-off. A part whose relaxation has
no optimum is solved whole.

Measured (bench 20 x 64, queueing, HiGHS, CPU s, load 1.5-4): 10-11 in all, of which
pool curves 1.2 (two threads), the parts' first relaxations 0.6 (two threads), the first
plan 0.35 (2.1 when proven optimal: it has its plan at 0.4 s and spent the rest proving
what step 6 proves again), the amd part's relaxation with flow rows 0.5 (1.4 from a
cold start) and its last MILP (~450 binaries, LB 139.6 vs 143.87: HiGHS's root cuts
reach 142.3, then ~70 nodes) 4.5, the intel part's ~2 beside them in a thread, building
the programs the rest; the nvidia part ends at its first relaxation. The warm basis
(another dual vertex: other reduced costs, fixing and caps) and the root reduced-cost
sub-MIP off each change which of mooncake's equal-cost plans (its routing) step 6 ends at.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from hetplan.enums import SolveStatus
from hetplan.milp.backends import relax_from, solve
from hetplan.milp.formulation import ONE_OF_KEYS, Formulation, Problem
from hetplan.milp.lp import LinearProgram, Solution
from hetplan.slo_capacity import PoolCurve

STAGE_ABOVE = 100      # by default, stage programs with more candidates (bench: 5 x 8,
                       # 60 candidates, 3.5 CPU s in one solve, 4.2 staged; 10 x 16, 120:
                       # 8.3 vs 3.0)
SUPPORT_EPS = 1e-6     # replicas in the relaxation that count a candidate as used
AT_ZERO = 1e-9         # a relaxation column at or below this sits at its lower bound 0
FIX_TOL = 1e-6         # relative slack on LB + d >= UB (LP tolerances)
PLAN_SHARE = 0.15      # most of the time limit each plan search may take
PLAN_REL_GAP = 0.01    # the first plan's search stops within this of its optimum: it is
                       # only a cut-off and a start; its part's last MILP proves (bench
                       # 20 x 64: 0.4 CPU s instead of 2.1, the same plan)
PART_WORKERS = 2       # parts finished at once (threads: HiGHS releases the GIL)
# the last MILP is small and starts from a good plan: HiGHS's presolve (probing), its
# restarts and its RINS / RENS sub-MIPs cost more there than they save (measured on
# scripts/bench_solve.py's 20 x 32 and 20 x 64)
FINAL_HIGHS_OPTIONS = {"presolve": "off", "mip_allow_restart": False,
                       "mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False,
                       "mip_heuristic_run_root_reduced_cost": False}


def staged_applies(p: Problem, curves: dict[str, PoolCurve] | None, auto: bool = False
                   ) -> bool:
    """Stages are written for min-cost programs with queueing curves (`curves`: p's, from
    `pool_curves`); `auto`: and help there (more than STAGE_ABOVE candidates)."""
    return bool(curves) and p.objective != "max_goodput" and \
        (not auto or len(p.candidates) > STAGE_ABOVE)


def parts(p: Problem) -> list[list]:
    """p's candidates split by the one-of values of its prefill and decode candidates
    (module docstring, 1): one list per combination, colocated candidates in each."""
    fams = [key_of for fam, key_of in ONE_OF_KEYS.items()
            if fam != "vendor_compat" or not p.allow_cross_vendor]

    def combo(c):
        return tuple(key_of(c) for key_of in fams)
    combos = sorted({combo(c) for c in p.candidates if c.role != "colocated"})
    if len(combos) <= 1:
        return [list(p.candidates)]
    return [[c for c in p.candidates if c.role == "colocated" or combo(c) == k]
            for k in combos]


@dataclass
class _Best:
    cost: float
    f: Formulation
    sol: Solution


def solve_staged(p: Problem, curves: dict[str, PoolCurve], solver: str, time_limit_s: float
                 ) -> tuple[Formulation, Solution]:
    """Solve p's program (`curves`: its candidates' U(n)) by the module's stages: the
    formulation of the best plan (over the candidates its stage kept) and its solution,
    with the status, bound and gap of the whole program (the full program is only built
    when no part has a plan)."""
    t0 = time.perf_counter()

    def relax_part(k: int, cands: list) -> tuple:
        cur = Formulation(replace(p, candidates=cands), curves)
        relax, basis = relax_from(cur.lp)
        return -math.inf if relax is None else relax[0], k, cur, (relax, basis)
    with ThreadPoolExecutor(max_workers=PART_WORKERS) as pool:   # each part on its own
        relaxed = list(pool.map(lambda kc: relax_part(*kc), enumerate(parts(p))))
    relaxed.sort(key=lambda r: (r[0], r[1]))
    best: _Best | None = None
    bounds: list[float] = []          # proven lower bounds of the parts not beaten by UB
    jobs: list[tuple] = []            # parts left to finish against the first plan's UB
    for lb, _, cur, (relax, basis) in relaxed:
        if best is not None and lb >= _cut(best):
            continue
        if _left(t0, time_limit_s) <= 1.0 and best is not None:
            bounds.append(lb)
            continue
        start: dict[str, float] = {}
        if best is None and relax is not None:   # a first plan, from the relaxation's support
            limit = max(1.0, min(_left(t0, time_limit_s), PLAN_SHARE * time_limit_s))
            used = [c for i, c in enumerate(cur.p.candidates)
                    if relax[1][cur.n[i]] > SUPPORT_EPS]
            plan_f = Formulation(replace(p, candidates=used), curves)
            plan_f.lp.mip_rel_gap = PLAN_REL_GAP
            plan = solve(plan_f.lp, solver, limit)
            best = _better(best, plan_f, plan)
            start = _values(plan_f, plan)
        job = (cur, lb, relax, basis, best, start, solver, t0, time_limit_s)
        if best is None:              # no plan yet: this part is finished before the next
            best = _merge(best, bounds, _finish(*job))
        else:
            jobs.append(job)
    with ThreadPoolExecutor(max_workers=max(1, min(PART_WORKERS, len(jobs)))) as pool:
        for result in pool.map(lambda job: _finish(*job), jobs):
            best = _merge(best, bounds, result)     # in part order: deterministic
    if best is None:                  # no part has a plan: the full program says why
        f = Formulation(p, curves)
        return f, solve(f.lp, solver, _left(t0, time_limit_s))
    return best.f, _overall(best, bounds, LinearProgram.mip_rel_gap)


def _finish(cur: Formulation, lb: float, relax, basis, best: _Best | None,
            start: dict[str, float], solver: str, t0: float, time_limit_s: float
            ) -> tuple[Formulation, Solution, float] | None:
    """One part's stages 4-6 against `best` (module docstring): the last MILP's
    formulation, its solution and the bound it proved for the part; None when the part
    cannot beat `best` (its relaxation's bound reaches the cut-off, or nothing is left).
    The relaxation with flow rows starts from `basis`, the first relaxation's."""
    p, curves = cur.p, cur.curves
    if relax is None:                 # no optimum of the relaxation: the part whole
        whole = Formulation(p, curves)
        sol = solve(whole.lp, solver, _left(t0, time_limit_s))
        return whole, sol, _part_bound(sol, lb)
    _, values, reduced = relax
    keep = _kept(cur, lb, reduced, best, start)
    caps: dict[str, int] = {}
    if keep:                          # again with the flow rows: a tighter bound
        cur = Formulation(replace(p, candidates=keep), curves, True)
        tight = relax_from(cur.lp, basis)[0]
        if tight is not None:
            lb, values, reduced = tight
            if best is not None and lb >= _cut(best):
                return None
            keep = _kept(cur, lb, reduced, best, start)
            caps = _replica_caps(cur, values, reduced, lb,
                                 math.inf if best is None else _cut(best), start)
    if not keep:
        return None
    last = Formulation(replace(p, candidates=keep), curves, ub_caps=caps)
    if start:
        last.start_from(start)
    last.lp.highs_options = dict(FINAL_HIGHS_OPTIONS)
    cutoff = math.inf if best is None else _cut(best)
    if best is not None and not start:         # HiGHS prunes by the best plan's cost
        last.lp.highs_options["objective_bound"] = cutoff
    sol = solve(last.lp, solver, _left(t0, time_limit_s))
    return last, sol, min(_part_bound(sol, lb), cutoff)


def _merge(best: _Best | None, bounds: list[float],
           result: tuple[Formulation, Solution, float] | None) -> _Best | None:
    """`best` after a finished part (`_finish`), whose proven bound joins `bounds`."""
    if result is None:
        return best
    last, sol, bound = result
    bounds.append(bound)
    return _better(best, last, sol)


def _cut(best: _Best) -> float:
    """A part (or candidate) whose lower bound reaches this cannot beat the best plan."""
    return best.cost + FIX_TOL * max(1.0, abs(best.cost))


def _kept(f: Formulation, lb: float, reduced: list[float], best: _Best | None,
          start: dict[str, float]) -> list:
    """f's candidates a plan cheaper than the best can use (module docstring, 4), and the
    ones `start` uses."""
    cut = math.inf if best is None else _cut(best)
    return [c for i, c in enumerate(f.p.candidates)
            if lb + _opening_cost(f, i, reduced) < cut or start.get(f"n[{c.key}]", 0.0) > 0.5]


def _values(f: Formulation, sol: Solution) -> dict[str, float]:
    if not sol.has_solution:
        return {}
    return {v.name: x for v, x in zip(f.lp.vars, sol.values)}


def _better(best: _Best | None, f: Formulation, sol: Solution) -> _Best | None:
    if sol.has_solution and (best is None or sol.objective < best.cost):
        return _Best(sol.objective, f, sol)
    return best


def _part_bound(sol: Solution, lb: float) -> float:
    """What a part's last MILP proved: no plan of the part costs less than this (with an
    objective cut-off c, less than min(this, c): the search prunes at c, and a plan it
    reports above c need not be the part's best)."""
    if sol.status == SolveStatus.OPTIMAL:
        return sol.objective
    if sol.status == SolveStatus.INFEASIBLE:
        return math.inf
    return lb if sol.bound is None else max(lb, sol.bound)


def _overall(best: _Best, bounds: list[float], rel_gap: float) -> Solution:
    """The best plan's solution with the whole program's status, bound and gap (optimal
    within `rel_gap`, the program's)."""
    bound = min([best.cost, *bounds])
    cost = best.cost
    gap = max(0.0, (cost - bound) / abs(cost)) if cost and math.isfinite(bound) else None
    exact = gap is not None and gap <= rel_gap
    return replace(best.sol, status=SolveStatus.OPTIMAL if exact else SolveStatus.FEASIBLE,
                   bound=bound, gap=0.0 if exact else gap,
                   message="" if exact else "time limit reached; best plan found")


def _opening_cost(f: Formulation, i: int, reduced: list[float]) -> float:
    """The least a plan with candidate i in it costs over the relaxation's optimum: the
    reduced costs of n[i] and of its first step binary added (both rise from 0 to >= 1 in
    such a plan, and each column's reduced cost x its move is a separate term of the
    cost's excess over LB; a negative one belongs to a column at its upper bound, which
    can only move down, so it counts as 0)."""
    cost = max(0.0, reduced[f.n[i]])
    try:
        cost += max(0.0, reduced[f.lp.var(f"step[{f.p.candidates[i].key},1]")])
    except KeyError:              # a straight-line curve (or none): no step binaries
        pass
    return cost


def _replica_caps(f: Formulation, values: list[float], reduced: list[float], lb: float,
                  cut: float, start: dict[str, float]) -> dict[str, int]:
    """Candidate key -> the most replicas a plan of f's program cheaper than `cut` can give
    it, where that is below its upper bound (module docstring, 5): m replicas take steps
    1..m (and m - K tail replicas), each column at 0 in the relaxation adding its reduced
    cost; never below the replicas `start` gives it."""
    room = cut - lb
    caps: dict[str, int] = {}
    for i, c in enumerate(f.p.candidates):
        def cost(var: int) -> float:
            return max(0.0, reduced[var]) if values[var] <= AT_ZERO else 0.0
        per_n, spent, m = cost(f.n[i]), 0.0, 0
        for k in range(1, f.ub[i] + 1):
            try:
                step = cost(f.lp.var(f"step[{c.key},{k}]"))
            except KeyError:
                break
            if lb + spent + step + per_n * k >= cut:
                break
            spent, m = spent + step, k
        else:
            k = f.ub[i] + 1
        if m == k - 1 and m < f.ub[i]:        # past the steps: the tail's replicas
            try:
                per_n += cost(f.lp.var(f"tail[{c.key}]"))
            except KeyError:
                pass
            left = room - spent - per_n * m
            m = f.ub[i] if per_n <= 0 else min(f.ub[i], m + max(0, math.ceil(left / per_n) - 1))
        m = max(m, int(round(start.get(f"n[{c.key}]", 0.0))))
        if m < f.ub[i]:
            caps[c.key] = m
    return caps


def _left(t0: float, limit_s: float) -> float:
    return max(1.0, limit_s - (time.perf_counter() - t0))

