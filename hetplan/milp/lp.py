"""A small solver-neutral mixed-integer linear program: variables, named constraints, an
objective. The planner builds one of these; `backends.py` hands it to PuLP (HiGHS, CBC) or
OR-Tools (SCIP). Constraint names (`demand_prefill[c0]`, `availability[H100-SXM]`) carry
their family so infeasibility reports can say what binds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hetplan.enums import SolveStatus

INF = float("inf")


@dataclass
class Var:
    name: str
    lb: float = 0.0
    ub: float = INF
    integer: bool = False


@dataclass
class Constraint:
    name: str                    # "family[key]"
    terms: dict[int, float]      # variable index -> coefficient
    sense: str                   # "<=", ">=", "=="
    rhs: float

    @property
    def family(self) -> str:
        return self.name.split("[", 1)[0]


@dataclass
class LinearProgram:
    vars: list[Var] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    objective: dict[int, float] = field(default_factory=dict)
    maximize: bool = False
    # a known solution (variable index -> value) the HiGHS backend hands the solver as its
    # first incumbent (others ignore it); incomplete or infeasible starts are just dropped
    start: dict[int, float] | None = None
    # HiGHS options for this program (option name -> value; other back ends ignore them)
    highs_options: dict[str, object] = field(default_factory=dict)
    mip_rel_gap: float = 1e-6        # relative gap at which the solver may stop (HiGHS, CBC)
    _index: dict[str, int] = field(default_factory=dict)

    def add_var(self, name: str, lb: float = 0.0, ub: float = INF, integer: bool = False) -> int:
        if name in self._index:
            raise ValueError(f"duplicate variable {name}")
        self._index[name] = len(self.vars)
        self.vars.append(Var(name, lb, ub, integer))
        return self._index[name]

    def var(self, name: str) -> int:
        return self._index[name]

    def add_constraint(self, name: str, terms: dict[int, float], sense: str, rhs: float) -> None:
        if sense not in ("<=", ">=", "=="):
            raise ValueError(f"bad sense {sense}")
        self.constraints.append(Constraint(name, {k: v for k, v in terms.items() if v != 0.0},
                                           sense, float(rhs)))

    def to_dict(self) -> dict:
        """JSON-safe form (infinite bounds as None) for the OR-Tools worker process."""
        def b(x):
            return None if x in (INF, -INF) else x
        return {"maximize": self.maximize,
                "vars": [[v.name, b(v.lb), b(v.ub), v.integer] for v in self.vars],
                "constraints": [[c.name, [[k, v] for k, v in sorted(c.terms.items())], c.sense,
                                 c.rhs] for c in self.constraints],
                "objective": [[k, v] for k, v in sorted(self.objective.items())]}


@dataclass
class Solution:
    """status: optimal | feasible (stopped at the time limit with a plan) | infeasible |
    unbounded | no_solution (stopped with none) | error."""

    status: SolveStatus
    objective: float | None
    values: list[float]
    solver: str
    gap: float | None = None          # relative optimality gap; 0 when proven optimal
    bound: float | None = None
    time_s: float = 0.0
    message: str = ""

    @property
    def has_solution(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
