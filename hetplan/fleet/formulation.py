"""One MILP for a fleet: each member's single-model program (`milp.formulation`), side by
side in one LinearProgram, joined by the rows members share.

Member block m: the single-model program of member m as `Formulation` builds it (demand,
capacity, its own availability cap and budget if it has one, vendor / KV-dtype picks, KV
bandwidth, N+1, pool cost), its variables and rows renamed `<family>[<member>:<key>]`.

Shared rows:
  fleet_availability[g]:  sum_m sum_{c of m on g} gpus_c n[m,c] <= available_g
  fleet_budget:           sum_m sum_c price_c n[m,c] <= budget        (GPU cost, as single)

KV traffic: the single-model program charges each prefill (decode) GPU's KV bytes to that
GPU's own NIC (one NIC per GPU). Members never share a GPU, so they never share a NIC and
the member rows stay exact; the links between racks and fabrics that members do share are
the placement MILP's (`placement/formulation.py`), which places all members in one pass
and so sees every member's KV flows on them.

Rows of each member's cost >= its optimum alone on the whole inventory (valid, and they
lift the root bound) were tried and dropped: on the 5-model bench (`scripts/bench_fleet.py`)
HiGHS took 15.6-18.0 CPU s with them and 9.4-14.5 without, to the same optimum.

Objective: min sum_m (member m's cost objective: GPU cost, tie-break, pool cost); or, under
max_goodput, every member's goodput scale s_m is capped at 1 (its whole demand) and the
program maximizes sum_m weight_m s_m (less the members' tiny cost terms), so a budget too
small for every member sheds the goodput that buys the least weight per dollar first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from hetplan.milp.formulation import Formulation, Problem
from hetplan.milp.lp import LinearProgram, Solution


@dataclass(frozen=True)
class MemberProblem:
    name: str
    problem: Problem           # the member's single-model program (its own budget, if any)
    weight: float = 1.0


@dataclass(frozen=True)
class FleetProblem:
    members: Sequence[MemberProblem]
    availability: dict[str, int]          # GPU -> GPUs the whole fleet may use
    budget_usd_per_hour: float | None = None
    objective: str = "min_cost"


def _renamed(name: str, member: str) -> str:
    """`family[key]` -> `family[member:key]` (the family stays first, for explain)."""
    family, sep, key = name.partition("[")
    return f"{family}[{member}:{key}" if sep else f"{name}[{member}]"


class FleetFormulation:
    """Builds the fleet program; `parts[name]` is (member formulation, variable offset)."""

    def __init__(self, fp: FleetProblem):
        self.fp = fp
        self.lp = LinearProgram()
        self.parts: dict[str, tuple[Formulation, int]] = {}
        for m in fp.members:
            p = replace(m.problem, objective=fp.objective)
            self._add_member(m, Formulation(p, flow_rows=fp.objective == "min_cost"))
        self.availability()
        self.budget()

    def _add_member(self, m: MemberProblem, f: Formulation) -> None:
        off = len(self.lp.vars)
        for v in f.lp.vars:
            self.lp.add_var(f"{m.name}:{v.name}", v.lb, v.ub, v.integer)
        for con in f.lp.constraints:
            self.lp.add_constraint(_renamed(con.name, m.name),
                                   {k + off: c for k, c in con.terms.items()}, con.sense,
                                   con.rhs)
        if f.scale is None:
            terms = {k + off: c for k, c in f.lp.objective.items()}
        else:                                   # goodput: this member's weighted share
            self.lp.vars[f.scale + off].ub = 1.0
            self.lp.maximize = True
            terms = {k + off: (m.weight if k == f.scale else c)
                     for k, c in f.lp.objective.items()}
        for k, c in terms.items():
            self.lp.objective[k] = self.lp.objective.get(k, 0.0) + c
        self.parts[m.name] = (f, off)

    def _gpu_terms(self, coef) -> dict[str, dict[int, float]]:
        """GPU type -> {fleet variable: coef(candidate)} over every member's n[c]."""
        out: dict[str, dict[int, float]] = {}
        for f, off in self.parts.values():
            for i, c in enumerate(f.p.candidates):
                out.setdefault(c.shape.gpu, {})[f.n[i] + off] = coef(c)
        return out

    def availability(self) -> None:
        for g, terms in sorted(self._gpu_terms(lambda c: float(c.num_gpus)).items()):
            if g in self.fp.availability:
                self.lp.add_constraint(f"fleet_availability[{g}]", terms, "<=",
                                       self.fp.availability[g])

    def budget(self) -> None:
        if self.fp.budget_usd_per_hour is None:
            return
        terms = {k: v for per in self._gpu_terms(lambda c: c.price_usd_per_hour).values()
                 for k, v in per.items()}
        self.lp.add_constraint("fleet_budget", terms, "<=", self.fp.budget_usd_per_hour)

    def member_solution(self, name: str, sol: Solution) -> Solution:
        """The fleet solution's values of one member's variables, indexed as that member's
        own program (to read with `milp.solve.read_outcome`)."""
        f, off = self.parts[name]
        values = sol.values[off:off + len(f.lp.vars)] if sol.has_solution else []
        return replace(sol, values=list(values))
