"""Solve a Problem and read the solution back as pools of replicas.

Large candidate sets are pruned of dominated candidates first (`prune.py`: the optimum is
unchanged); a solve that stops at its time limit with a gap of `LARGE_GAP` or more (or an
unknown gap) says so on stderr, in one line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

from hetplan.candidates import Candidate
from hetplan.milp.backends import solve
from hetplan.milp.formulation import Formulation, Problem
from hetplan.milp.lp import Solution
from hetplan.milp.prune import PRUNE_ABOVE, prune_dominated
from hetplan.milp.staged import solve_staged, staged_applies
from hetplan.slo_capacity import pool_curves

EPS = 1e-7
LARGE_GAP = 0.01      # relative MIP gap worth a warning


@dataclass(frozen=True)
class Chosen:
    """One candidate the solution uses: its replica count and the class rates it serves."""

    candidate: Candidate
    replicas: int
    rates: dict[str, float]
    # scope workload: class rates served at the relaxed targets, with those capacities
    relaxed_rates: dict[str, float] = field(default_factory=dict)
    relaxed_capacity: dict[str, float] = field(default_factory=dict)

    @property
    def utilization(self) -> float:
        load = sum(r / self.candidate.capacity(w) for w, r in self.rates.items() if r > 0)
        load += sum(r / self.relaxed_capacity[w] for w, r in self.relaxed_rates.items() if r > 0)
        return load / self.replicas if self.replicas else 0.0


@dataclass(frozen=True)
class Outcome:
    solution: Solution
    chosen: list[Chosen]
    scale: float                      # goodput scale (1 for min_cost)
    formulation: Formulation

    def values_by_name(self) -> dict[str, float]:
        """The solution's variable values by name (to start another solve from)."""
        if not self.solution.has_solution:
            return {}
        return {v.name: x for v, x in zip(self.formulation.lp.vars, self.solution.values)}

    @property
    def missing(self) -> list[str]:
        """Classes the solution lets miss the SLO (scope workload), in class order."""
        v = self.solution.values
        return [w for w, m in self.formulation.miss.items() if v[m] > 0.5] \
            if self.solution.has_solution else []


def pruned(p: Problem, prune: bool | None = None) -> Problem:
    """`p` without its dominated candidates (`prune.py`: the optimum is unchanged; it holds
    under extra shared rows too) when `prune`, or (None) when it has more than PRUNE_ABOVE."""
    if not (prune if prune is not None else len(p.candidates) > PRUNE_ABOVE):
        return p
    return replace(p, candidates=prune_dominated(p.candidates, [w.name for w in p.classes],
                                                 p.relaxed_capacity,
                                                 latency_too=p.sizing is not None))


def sizing_cost(out: Outcome, p: Problem) -> float:
    """GPU + pool cost of an outcome of `p` (its objective less any tie-break)."""
    return sum(ch.replicas * ch.candidate.price_usd_per_hour + p.pool_cost_usd_per_hour
               for ch in out.chosen)


def solve_problem(p: Problem, solver: str = "highs", time_limit_s: float = 60.0,
                  prune: bool | None = None, warn: bool = True,
                  start: Outcome | None = None, staged: bool | None = None) -> Outcome:
    """Solve `p`. `prune`: drop dominated candidates first (None: when there are more than
    PRUNE_ABOVE). `warn`: print the large-gap warning (off for diagnostic solves). `start`:
    the outcome of the same problem without the operational terms, handed to HiGHS as its
    first incumbent (with them the MILP otherwise struggles to find a good plan at all on
    large candidate sets). `staged`: solve in exact stages (`staged.py`; None: for
    min-cost programs with queueing curves over more than STAGE_ABOVE candidates; staged
    solves ignore `start`); the outcome's
    formulation then covers the candidates the last stage kept."""
    p = pruned(p, prune)
    curves = None if p.sizing is None else pool_curves(p.candidates, p.classes, p.sizing)
    searched = len(p.candidates)      # the warning's count (a staged f holds fewer)
    if staged is not False and staged_applies(p, curves, auto=staged is None):
        f, sol = solve_staged(p, curves, solver, time_limit_s)
        p = f.p
    else:
        f = Formulation(p, curves)
        if start is not None and start.solution.has_solution:
            f.start_from(start.values_by_name())
        sol = solve(f.lp, solver, time_limit_s)
    if warn:
        warn_gap(sol, time_limit_s, searched)
    return read_outcome(f, sol)


def read_outcome(f: Formulation, sol: Solution) -> Outcome:
    """The pools (candidates with replicas and routed rates) of a solution of `f`'s program
    (`sol.values` indexed as `f.lp.vars`)."""
    p = f.p
    chosen: list[Chosen] = []
    scale = 1.0
    if sol.has_solution:
        v = sol.values
        if f.scale is not None:
            scale = max(0.0, v[f.scale])
        for i, c in enumerate(p.candidates):
            n = int(round(v[f.n[i]]))
            if n <= 0:
                continue
            rates = {w.name: v[f.x[i, w.name]] for w in p.classes
                     if (i, w.name) in f.x and v[f.x[i, w.name]] > EPS}
            relaxed = {w.name: v[f.z[i, w.name]] for w in p.classes
                       if (i, w.name) in f.z and v[f.z[i, w.name]] > EPS}
            chosen.append(Chosen(c, n, rates, relaxed,
                                 {w: f.relaxed_capacity(c, w) for w in relaxed}))
    return Outcome(sol, chosen, scale, f)


def gap_warning(sol: Solution, time_limit_s: float, n_candidates: int) -> str | None:
    """The one-line warning for a time-limited solve with a large or unknown gap."""
    if sol.status != "feasible" or (sol.gap is not None and sol.gap < LARGE_GAP):
        return None
    gap = "an unknown gap" if sol.gap is None else f"a {sol.gap:.1%} gap"
    return (f"warning: the {sol.solver} solve stopped at its {time_limit_s:g} s time limit with "
            f"{gap} over {n_candidates} candidates: the plan may cost more than the optimum; "
            "raise --time-limit or narrow the search (max_tp, max_pp, dtypes, classes)")


def warn_gap(sol: Solution, time_limit_s: float, n_candidates: int) -> None:
    msg = gap_warning(sol, time_limit_s, n_candidates)
    if msg:
        print(msg, file=sys.stderr)
