"""Plan a variant of a scenario and summarise it: the one "try a plan" path behind
`compare`, `frontier` and the what-if studies.

A variant is a prepared context (another SLO, budget, prices or classes are derived on the
resolved scenario before `prepare`) and optionally a subset of its candidates. The result
is a typed `PlanRow`: the plan, or the reasons there is none, and the figures tables show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hetplan.candidates import Candidate
from hetplan.enums import Role
from hetplan.errors import Infeasible
from hetplan.plan import Plan
from hetplan.planner import Context, solve_context

NO_CANDIDATE = "no candidate in this variant serves the workload"


@dataclass(frozen=True)
class PlanRow:
    """A plan, or why there is none (`reasons`), with its summary figures (None / empty
    when infeasible)."""

    plan: Plan | None
    reasons: tuple[str, ...] = ()

    @property
    def feasible(self) -> bool:
        return self.plan is not None

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)

    @property
    def status(self) -> str | None:
        return None if self.plan is None else self.plan.status

    @property
    def cost_usd_per_hour(self) -> float | None:
        return None if self.plan is None else self.plan.cost_usd_per_hour

    @property
    def usd_per_million_tokens(self) -> float | None:
        return None if self.plan is None else self.plan.usd_per_million_tokens

    @property
    def served_rps(self) -> float | None:
        return None if self.plan is None else self.plan.served_rps

    @property
    def golden_ratio(self) -> str:
        return "" if self.plan is None else self.plan.golden_ratio

    @property
    def mix(self) -> str:
        return "" if self.plan is None else self.plan.mix()

    def gpus(self, role: Role) -> int:
        return 0 if self.plan is None else self.plan.gpus_by_role()[role]

    def by_type(self) -> tuple[dict[str, int], dict[str, float]]:
        """(GPUs, $/h) per GPU type, sorted by type."""
        gpus: dict[str, int] = {}
        cost: dict[str, float] = {}
        for p in self.plan.pools if self.plan is not None else []:
            gpus[p.gpu] = gpus.get(p.gpu, 0) + p.gpus
            cost[p.gpu] = cost.get(p.gpu, 0.0) + p.cost_usd_per_hour
        return dict(sorted(gpus.items())), dict(sorted(cost.items()))


def plan_variant(ctx: Context, candidates: Sequence[Candidate] | None = None, *,
                 solver: str = "highs", time_limit_s: float = 60.0,
                 label: str | None = None) -> PlanRow:
    """Solve `ctx` over `candidates` (default all of them; an empty subset has no plan)."""
    if candidates is not None and not candidates:
        return PlanRow(None, (NO_CANDIDATE,))
    try:
        return PlanRow(solve_context(ctx, candidates, solver=solver, time_limit_s=time_limit_s,
                                     label=label))
    except Infeasible as e:
        return PlanRow(None, tuple(e.reasons))
