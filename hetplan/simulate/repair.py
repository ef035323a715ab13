"""The repair loop behind `hetplan solve --validate`: solve, simulate the scenario's own
workload on the plan, and while some class misses the SLO at its percentile, lower the
target utilization (rho in the MILP's capacity constraints, which buys headroom against
queueing and batch growth; a separate decode rho shrinks by the same factor) and solve
again, for at most `max_rounds` rounds.

Candidates do not depend on rho, so they are built once and only the MILP is re-solved.
The last plan is kept either way; when the rounds run out (or a lower rho becomes
infeasible) the result says the SLO is still not met, with the best attainment seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from hetplan.catalog import Catalog
from hetplan.errors import Infeasible
from hetplan.plan import Plan
from hetplan.planner import prepare, solve_context
from hetplan.scenario import ResolvedScenario
from hetplan.simulate.engine import RunResult
from hetplan.simulate.metrics import SimReport
from hetplan.simulate.sim import SimOptions, simulate_plan
from hetplan.simulate.workload import scenario_trace
from hetplan.tables import markdown_table

SHRINK = 0.85           # rho multiplier per failed round
MIN_UTILIZATION = 0.05


@dataclass(frozen=True)
class Round:
    round: int
    target_utilization: float
    cost_usd_per_hour: float
    slo_attainment: float            # share of requests meeting both targets
    worst_class_ttft: float          # lowest TTFT attainment of the classes that decide
    worst_class_tpot: float
    slo_met: bool

    def line(self) -> str:
        return (f"round {self.round}: rho {self.target_utilization:.3f}, "
                f"${self.cost_usd_per_hour:.2f}/h, attainment {self.slo_attainment:.1%} "
                f"(worst class TTFT {self.worst_class_ttft:.1%}, TPOT "
                f"{self.worst_class_tpot:.1%}): {'SLO met' if self.slo_met else 'SLO missed'}")


@dataclass
class Validation:
    rounds: list[Round] = field(default_factory=list)
    report: SimReport | None = None
    result: RunResult | None = None
    stopped: str = ""                # why the loop ended without meeting the SLO

    @property
    def slo_met(self) -> bool:
        return bool(self.rounds) and self.rounds[-1].slo_met

    def summary(self) -> dict:
        return {"slo_met": self.slo_met, "rounds": [asdict(r) for r in self.rounds],
                "stopped": self.stopped,
                "ttft_p90_ms": self.report.ttft_p90_ms if self.report else None,
                "tpot_p90_ms": self.report.tpot_p90_ms if self.report else None}

    def note(self) -> str:
        last = self.rounds[-1]
        verdict = "met" if self.slo_met else f"NOT met ({self.stopped})"
        return (f"validated by simulation in {len(self.rounds)} round(s): SLO {verdict} at "
                f"rho {last.target_utilization:.3f}, attainment {last.slo_attainment:.1%}")

    def markdown(self) -> str:
        rows = [[r.round, f"{r.target_utilization:.3f}", f"{r.cost_usd_per_hour:.2f}",
                 f"{r.slo_attainment:.1%}", f"{r.worst_class_ttft:.1%}",
                 f"{r.worst_class_tpot:.1%}", "yes" if r.slo_met else "no"]
                for r in self.rounds]
        rep = self.report
        lines = ["", "## Validation (simulated)", "",
                 markdown_table(["round", "target utilization", "$/h", "attainment",
                                 "worst class TTFT", "worst class TPOT", "SLO met"], rows),
                 ""]
        if rep is not None:
            lines += [f"Final plan on {rep.requests:,} requests: p90 TTFT "
                      f"{rep.ttft_p90_ms:.0f} ms, p90 TPOT {rep.tpot_p90_ms or 0:.1f} ms, "
                      f"{rep.preempted_requests:,} preempted; sim.json has the details.", ""]
        if self.stopped:
            lines += [f"Stopped without meeting the SLO: {self.stopped}.", ""]
        return "\n".join(lines)


def solve_validated(rs: ResolvedScenario, catalog: Catalog, *, solver: str = "highs",
                    time_limit_s: float = 60.0, max_rounds: int = 5,
                    opts: SimOptions = SimOptions(),
                    progress: Callable[[str], None] | None = None,
                    on_round: Callable[[Round], None] | None = None
                    ) -> tuple[Plan, Validation]:
    """Solve and repair (see the module docstring). A rho that gives the same pools as the
    last round is skipped without simulating. Round 1 infeasible raises Infeasible. The
    workload simulated is the one the scenario was resolved with (read once)."""
    ctx = prepare(rs, catalog, progress=progress)
    trace = scenario_trace(rs)
    k = rs.scenario.constraints
    rho = k.target_utilization
    val = Validation()

    def solve(rho: float) -> Plan:
        """Solve at rho; a separate decode rho shrinks by the same factor."""
        rho_decode = (None if k.decode_target_utilization is None else
                      min(1.0, k.decode_target_utilization * rho / k.target_utilization))
        return solve_context(ctx.with_utilization(rho, rho_decode), solver=solver,
                             time_limit_s=time_limit_s)

    plan = solve(rho)
    for i in range(1, max(1, max_rounds) + 1):
        rep, res = simulate_plan(plan, trace, ctx.perf, opts)
        judged = [c for c in rep.classes if c.decides] or rep.classes
        r = Round(i, rho, plan.cost_usd_per_hour, rep.slo_attainment,
                  min((c.attainment_ttft for c in judged), default=1.0),
                  min((c.attainment_tpot for c in judged), default=1.0), rep.slo_met)
        val.rounds.append(r)
        val.report, val.result = rep, res
        if on_round:
            on_round(r)
        if rep.slo_met:
            break
        if i == max_rounds:
            val.stopped = f"{max_rounds} round(s) used"
            break
        nxt, rho = _next_plan(solve, plan, rho, val)
        if nxt is None:
            break
        plan = nxt
    return plan.model_copy(update={"notes": plan.notes + [val.note()]}), val


def _pools(plan: Plan) -> tuple:
    return tuple((p.name, p.replicas) for p in plan.pools)


def _next_plan(solve: Callable[[float], Plan], plan: Plan, rho: float,
               val: Validation) -> tuple[Plan | None, float]:
    """Lower rho until the plan's pools change; None (with `val.stopped` set) if they
    cannot."""
    while True:
        rho *= SHRINK
        if rho < MIN_UTILIZATION:
            val.stopped = f"target utilization would fall below {MIN_UTILIZATION}"
            return None, rho
        try:
            nxt = solve(rho)
        except Infeasible as e:
            val.stopped = f"rho {rho:.3f} is infeasible: {'; '.join(e.reasons)[:200]}"
            return None, rho
        if _pools(nxt) != _pools(plan):
            return nxt, rho
