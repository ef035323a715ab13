"""`hetplan solve --validate`: solve, then tune the plan with the simulator in the loop
(`tuner.py`: add replicas to the pools the missing classes blame, remove them where there is
slack, re-solve the MILP with the capacity it learnt) for at most `max_rounds` simulations.

The result is the cheapest plan the simulator passed; the report lists every round, the
first plan's cost against the tuned cost (the planner gap) and, when the first plan missed
TTFT, why (`bursts.py`: a pool's bursts or prompt lengths against the TTFT budget) and
what meeting it costs. When no plan passed, the best one is kept and the report says so.
With an inventory the chosen plan is placed again (placement may add spare replicas); if it
cannot be placed the next cheapest passing plan is tried, then the first plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from hetplan.bounds import VALIDATE_ROUNDS
from hetplan.catalog import Catalog
from hetplan.enums import Role
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.placement.place import PlacementInfeasible
from hetplan.plan import Plan
from hetplan.planner import place, prepare
from hetplan.scenario import ResolvedScenario
from hetplan.bursts import burst_bound
from hetplan.simulate.engine import RunResult
from hetplan.simulate.metrics import (RECONCILE_NOTE, SimReport, reconcile_header,
                                      reconcile_rows)
from hetplan.simulate.sim import SimOptions
from hetplan.simulate.steps import step_model
from hetplan.simulate.tuner import Trial, Tuner
from hetplan.simulate.workload import scenario_trace
from hetplan.tables import markdown_table

@dataclass(frozen=True)
class Round:
    round: int
    phase: str                       # plan | re-solve k
    change: str                      # what moved since the previous round of the phase
    cost_usd_per_hour: float
    slo_attainment: float            # share of requests meeting both targets
    worst_class_ttft: float          # lowest TTFT attainment of the classes that decide
    worst_class_tpot: float
    slo_met: bool
    blamed: str                      # pools the missing classes blame

    @classmethod
    def of(cls, t: Trial) -> Round:
        blamed = ", ".join(f"{p} ({m.upper()} {a:.1%})" for p, (m, a) in sorted(t.blamed.items()))
        return cls(t.round, t.phase, t.change, t.cost, t.report.slo_attainment,
                   t.worst("ttft"), t.worst("tpot"), t.passed, blamed)

    def line(self) -> str:
        return (f"round {self.round} [{self.phase}] {self.change}: "
                f"${self.cost_usd_per_hour:.2f}/h, attainment {self.slo_attainment:.1%} "
                f"(worst class TTFT {self.worst_class_ttft:.1%}, TPOT "
                f"{self.worst_class_tpot:.1%}): {'SLO met' if self.slo_met else 'SLO missed'}"
                + (f"; blamed: {self.blamed}" if self.blamed else ""))


@dataclass
class Validation:
    rounds: list[Round] = field(default_factory=list)
    report: SimReport | None = None      # the chosen plan's simulation
    result: RunResult | None = None
    chosen_round: int = 0
    first_cost_usd_per_hour: float = 0.0
    tuned_cost_usd_per_hour: float = 0.0  # the returned plan's (placement spares included)
    stopped: str = ""                    # why no plan met the SLO
    causes: list[str] = field(default_factory=list)   # item 3: why the first plan missed
    spares_note: str = ""

    @property
    def slo_met(self) -> bool:
        return self.report is not None and self.report.slo_met

    @property
    def planner_gap_usd_per_hour(self) -> float:
        return self.tuned_cost_usd_per_hour - self.first_cost_usd_per_hour

    def summary(self) -> dict:
        return {"slo_met": self.slo_met, "rounds": [asdict(r) for r in self.rounds],
                "chosen_round": self.chosen_round,
                "first_cost_usd_per_hour": self.first_cost_usd_per_hour,
                "tuned_cost_usd_per_hour": self.tuned_cost_usd_per_hour,
                "planner_gap_usd_per_hour": self.planner_gap_usd_per_hour,
                "stopped": self.stopped, "causes": self.causes,
                "ttft_p90_ms": self.report.ttft_p90_ms if self.report else None,
                "tpot_p90_ms": self.report.tpot_p90_ms if self.report else None}

    def gap_line(self) -> str:
        first, gap = self.first_cost_usd_per_hour, self.planner_gap_usd_per_hour
        return (f"first plan ${first:.2f}/h, tuned ${self.tuned_cost_usd_per_hour:.2f}/h: "
                f"planner gap {'+' if gap >= 0 else '-'}${abs(gap):.2f}/h "
                f"({gap / first:+.1%})" if first else "")

    def note(self) -> str:
        verdict = "met" if self.slo_met else f"NOT met ({self.stopped})"
        return (f"validated by simulation in {len(self.rounds)} round(s): SLO {verdict} with "
                f"round {self.chosen_round}'s plan, attainment "
                f"{self.report.slo_attainment:.1%}; {self.gap_line()}")

    def markdown(self) -> str:
        rows = [[r.round, r.phase, r.change, f"{r.cost_usd_per_hour:.2f}",
                 f"{r.slo_attainment:.1%}", f"{r.worst_class_ttft:.1%}",
                 f"{r.worst_class_tpot:.1%}", "yes" if r.slo_met else "no", r.blamed or "-"]
                for r in self.rounds]
        rep = self.report
        q = rep.slo.get("percentile", 90.0) if rep else 90.0
        lines = ["", "## Validation (simulated)", "",
                 f"Tuner: {self.gap_line()}; round {self.chosen_round}'s plan is kept "
                 f"({'the cheapest the simulator passed' if self.slo_met else 'no plan passed: the best attainment'}).",
                 "", markdown_table(["round", "phase", "change", "$/h", "attainment",
                                     "worst class TTFT", "worst class TPOT", "SLO met",
                                     "blamed pools"], rows), ""]
        if rep is not None:
            lines += [f"Kept plan on {rep.requests:,} requests: p90 TTFT "
                      f"{rep.ttft_p90_ms:.0f} ms, p90 TPOT {rep.tpot_p90_ms or 0:.1f} ms, "
                      f"{rep.preempted_requests:,} preempted; sim.json has the details.", "",
                      "### Plan vs simulation per pool", "", RECONCILE_NOTE + ".", "",
                      markdown_table(reconcile_header(q), reconcile_rows(rep)), ""]
        if self.spares_note:
            lines += [f"With an inventory: {self.spares_note}.", ""]
        if self.stopped:
            lines += [f"Stopped without meeting the SLO: {self.stopped}.", ""]
        if self.causes:
            lines += ["### Why the first plan missed TTFT", "", *[f"- {c}" for c in self.causes],
                      ""]
        return "\n".join(lines)


def solve_validated(rs: ResolvedScenario, catalog: Catalog, *, solver: str = "highs",
                    time_limit_s: float = 60.0, max_rounds: int = VALIDATE_ROUNDS,
                    opts: SimOptions = SimOptions(),
                    progress: Callable[[str], None] | None = None,
                    on_round: Callable[[Round], None] | None = None
                    ) -> tuple[Plan, Validation]:
    """Solve and tune (module docstring). Round 1 infeasible raises Infeasible. The workload
    simulated is the one the scenario was resolved with (read once)."""
    ctx = prepare(rs, catalog, progress=progress)
    tuner = Tuner(ctx, scenario_trace(rs), solver=solver, time_limit_s=time_limit_s,
                  max_rounds=max(1, max_rounds), opts=opts,
                  on_trial=(lambda t: on_round(Round.of(t))) if on_round else None)
    first = tuner.run()
    trials = tuner.trials
    val = Validation(rounds=[Round.of(t) for t in trials],
                     first_cost_usd_per_hour=first.cost_usd_per_hour)
    passing = sorted((t for t in trials if t.passed), key=lambda t: (t.cost, t.round))
    chosen, plan = cheapest_placed(passing, lambda t: _placed(ctx, t.plan, first, solver,
                                                               time_limit_s))
    if chosen is None:                 # none passed (or, with an inventory, none placed)
        chosen = max(trials, key=lambda t: (min(t.worst("ttft"), t.worst("tpot")), -t.cost,
                                            -t.round))
        plan = _placed(ctx, chosen.plan, first, solver, time_limit_s)
        if plan is None:
            chosen, plan = trials[0], first
        val.stopped = (_stopped(tuner, max_rounds) if not passing else
                       "no passing plan could be placed on the inventory")
    val.report, val.result, val.chosen_round = chosen.report, chosen.result, chosen.round
    val.tuned_cost_usd_per_hour = plan.cost_usd_per_hour
    spares = plan.cost_usd_per_hour - chosen.cost
    if plan is not first and spares > 1e-9:
        val.spares_note = (f"placement added ${spares:.2f}/h of spare replicas to the "
                           f"simulated ${chosen.cost:.2f}/h")
    if not trials[0].passed:
        val.causes = _causes(trials, tuner.trace.input_tokens, ctx.perf,
                             first.cost_usd_per_hour, passing)
    return plan.model_copy(update={"notes": plan.notes + [val.note()]}), val


def cheapest_placed(passing: list[Trial], placed: Callable[[Trial], Plan | None]
                    ) -> tuple[Trial | None, Plan | None]:
    """The passing trial whose placed plan costs least, and that plan (None, None if none
    places). `passing` is sorted by simulated cost (ties: the earlier round, which wins).
    Placement only adds spare replicas, so a trial simulated at or above the best placed cost
    so far cannot beat it and the scan stops there; without an inventory `placed` returns
    the plan as is and the first trial wins. Ranking by simulated cost alone kept a plan
    $11.32/h dearer once placed on default-inventory (2026-11-30)."""
    chosen, best = None, None
    for t in passing:
        if best is not None and t.cost >= best.cost_usd_per_hour - 1e-9:
            break
        plan = placed(t)
        if plan is not None and (best is None
                                 or plan.cost_usd_per_hour < best.cost_usd_per_hour - 1e-9):
            chosen, best = t, plan
    return chosen, best


def _placed(ctx, plan: Plan, first: Plan, solver: str, time_limit_s: float) -> Plan | None:
    """`plan` placed on the scenario's inventory (as is without one); None if it cannot be."""
    if ctx.inventory is None or plan is first:
        return plan
    try:
        return place(ctx, plan, solver=solver, time_limit_s=time_limit_s)
    except PlacementInfeasible:
        return None


def _stopped(tuner: Tuner, max_rounds: int) -> str:
    sat = [f"{name}: {b.saturated}" for bounds in tuner.phase_bounds
           for name, b in sorted(bounds.items()) if b.saturated]
    why = [f"adding replicas stopped helping ({'; '.join(sat)})"] if sat else []
    if tuner.rounds_left() <= 0:
        why.append(f"{max_rounds} round(s) used")
    if tuner.stopped_resolve:
        why.append(tuner.stopped_resolve)
    return "; ".join(why) or "the search converged without a passing plan"


def _causes(trials: list[Trial], input_tokens: np.ndarray, pm: PerfModel, first_cost: float,
            passing: list[Trial]) -> list[str]:
    """Item 3: per TTFT-blamed pool of the first plan, the burst estimate; what meeting the
    SLO costs (the cheapest passing plan, if any) and the attainment reachable at the first
    plan's cost (the best simulated plan costing no more)."""
    t0 = trials[0]
    plan, res = t0.plan, t0.result
    q = float(plan.slo.get("percentile", 90.0))
    budget_s = plan.slo["ttft_ms"] / 1e3
    pm = pm.with_limits(plan.engine)
    out = []
    for i, p in enumerate(plan.pools):
        if t0.blamed.get(p.name, ("", 0))[0] != "ttft" or p.role == Role.DECODE:
            continue
        shape = ReplicaShape(p.gpu, p.tp, p.pp, p.weight_dtype, p.kv_dtype, p.ep, p.dp)
        steps = step_model(pm, shape)
        on = res.first_pool == i
        tokens = np.asarray(input_tokens[on], dtype=np.int64)
        lens, inv = np.unique(tokens, return_inverse=True)
        own = np.array([steps.prefill_s([int(n)]) for n in lens])[inv]
        chunk = plan.engine.max_num_batched_tokens
        mean = max(1, int(tokens.mean())) if tokens.size else chunk
        k = max(1, chunk // mean)
        rep_tok_s = k * mean / steps.prefill_s([mean] * k)
        b = burst_bound(res.arrival_s[on], tokens, own, rep_tok_s, budget_s, q / 100)
        price = p.cost_usd_per_hour / p.replicas
        head = (f"`{p.name}` ({p.replicas} replica(s), TTFT attainment "
                f"{t0.blamed[p.name][1]:.1%}): up to {b.largest_burst_requests} requests "
                f"({b.largest_burst_tokens:,} prompt tokens) arrive within one "
                f"{plan.slo['ttft_ms']:g} ms TTFT budget")
        if b.replicas_needed is None:
            out.append(f"{head}; only {b.attainment_unlimited:.1%} of its prompts prefill "
                       f"within the budget even on an idle replica: p{q:g} TTFT cannot be met "
                       "at any utilization on this shape")
        else:
            out.append(f"{head}; a fluid FIFO estimate needs {b.tokens_per_s_needed:,.0f} "
                       f"prompt tokens/s for p{q:g}, at least {b.replicas_needed} replica(s) "
                       f"of {rep_tok_s:,.0f} tokens/s (>= ${b.replicas_needed * price:.2f}/h "
                       f"for this pool, against ${p.cost_usd_per_hour:.2f}/h planned)")
    cheap = [t for t in trials if t.cost <= first_cost + 1e-9]
    best = max(cheap, key=lambda t: (t.report.slo_attainment, -t.round))
    out.append(f"at the first plan's cost (${first_cost:.2f}/h) the best simulated attainment "
               f"is {best.report.slo_attainment:.1%} (round {best.round}); "
               + (f"meeting the SLO costs ${passing[0].cost:.2f}/h (round {passing[0].round}, "
                  f"{passing[0].cost / first_cost:.2f}x)" if passing else
                  "no simulated plan met the SLO, so its cost is not known"))
    return out
