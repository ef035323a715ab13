"""Solve a Problem and read the solution back as pools of replicas."""

from __future__ import annotations

from dataclasses import dataclass

from hetplan.candidates import Candidate
from hetplan.milp.backends import solve
from hetplan.milp.formulation import Formulation, Problem
from hetplan.milp.lp import Solution

EPS = 1e-7


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


def solve_problem(p: Problem, solver: str = "highs", time_limit_s: float = 60.0) -> Outcome:
    f = Formulation(p)
    sol = solve(f.lp, solver, time_limit_s)
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
