"""Solve a Problem and read the solution back as pools of replicas.

Large candidate sets are pruned of dominated candidates first (`prune.py`: the optimum is
unchanged); a solve that stops at its time limit with a gap of `LARGE_GAP` or more (or an
unknown gap) says so on stderr, in one line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from hetplan.candidates import Candidate
from hetplan.milp.backends import solve
from hetplan.milp.formulation import Formulation, Problem
from hetplan.milp.lp import Solution
from hetplan.milp.prune import PRUNE_ABOVE, prune_dominated

EPS = 1e-7
LARGE_GAP = 0.01      # relative MIP gap worth a warning


@dataclass(frozen=True)
class Chosen:
    """One candidate the solution uses: its replica count and the class rates it serves."""

    candidate: Candidate
    replicas: int
    rates: dict[str, float]

    @property
    def utilization(self) -> float:
        load = sum(r / self.candidate.capacity(w) for w, r in self.rates.items() if r > 0)
        return load / self.replicas if self.replicas else 0.0


@dataclass(frozen=True)
class Outcome:
    solution: Solution
    chosen: list[Chosen]
    scale: float                      # goodput scale (1 for min_cost)
    formulation: Formulation


def solve_problem(p: Problem, solver: str = "highs", time_limit_s: float = 60.0,
                  prune: bool | None = None, warn: bool = True) -> Outcome:
    """Solve `p`. `prune`: drop dominated candidates first (None: when there are more than
    PRUNE_ABOVE). `warn`: print the large-gap warning (off for diagnostic solves)."""
    if prune if prune is not None else len(p.candidates) > PRUNE_ABOVE:
        p = replace(p, candidates=prune_dominated(p.candidates, [w.name for w in p.classes],
                                                  latency_too=p.sizing is not None))
    f = Formulation(p)
    sol = solve(f.lp, solver, time_limit_s)
    if warn:
        warn_gap(sol, time_limit_s, len(p.candidates))
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
            chosen.append(Chosen(c, n, rates))
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
