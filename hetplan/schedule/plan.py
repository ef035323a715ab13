"""Plan capacity over time: rate profile -> the planner's candidates -> schedule MILP ->
baselines (static peak, static mean, per-slot lower bound).

Candidates and per-replica capacities are the planning stage's (`planner.prepare`: one
source of truth for sizing at the SLO). To keep a week of slots small, the schedule uses
only the candidates that per-slot plans choose: the planning MILP solved at a few
representative slots (spread over the range of demand), once at on-demand prices and
once at each GPU's cheapest effective tier price. The lower bound is the schedule MILP
solved slot by slot with no change limits and no warm-ups (each slot may buy its own
commitment): a relaxation of the schedule over the same candidates, so no schedule on them
costs less.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from hetplan.candidates import Candidate
from hetplan.catalog import Catalog
from hetplan.enums import Sizing
from hetplan.errors import Infeasible, InputError
from hetplan.milp.formulation import target_rho
from hetplan.milp.prune import dominates
from hetplan.plan import Plan
from hetplan.planner import (Context, pool_name, prepare, problem_for, solve_context,
                             solve_simplified)
from hetplan.scenario import ResolvedScenario
from hetplan.milp.backends import solve
from hetplan.schedule.formulation import (ScheduleFormulation, ScheduleOutcome, ScheduleProblem,
                                          solve_schedule)
from hetplan.schedule.reactive import ReactiveResult, ScaledPool, reactive_baseline
from hetplan.schedule.sizing import TopUp, schedule_curves, with_top_up
from hetplan.schedule.spec import ScheduleSpec
from hetplan.schedule.tiers import GpuTiers, gpu_tiers
from hetplan.workload.profile import RateProfile, profile_from_shape, profile_from_trace

# The schedule MILP may stop within this relative gap of its bound (reported with the
# result): proving the last fraction of a percent costs minutes on a week of slots.
SCHEDULE_MIP_GAP = 0.005
# A representative slot's plan only nominates candidates (the schedule MILP decides), so
# its solve may stop early with a good plan rather than prove the optimum.
CHOOSE_TIME_LIMIT_S = 15.0
LOWER_BOUND_GAP = 1e-3      # per-slot relaxations: their proven bound is what counts


@dataclass(frozen=True)
class ScheduleResult:
    scenario: str
    model: str
    spec: ScheduleSpec
    profile: RateProfile
    tiers: dict[str, GpuTiers]
    candidates: list[Candidate]
    outcome: ScheduleOutcome
    static_peak: Plan
    static_mean: Plan
    lower_bound_cost_usd: float
    solve_s: float
    reactive: ReactiveResult | None = None     # the reactive autoscaler baseline
    # queueing sizing: the candidates' U(n) and what the top-up added (`sizing.py`)
    curves: dict | None = None
    top_up: TopUp | None = None

    @property
    def hours(self) -> float:
        return float(self.profile.slot_hours.sum())

    @property
    def static_peak_committed_cost_usd(self) -> float:
        """The static peak fleet bought at each GPU's committed price where it has one."""
        return self.hours * sum(
            p.gpus * (self.tiers[p.gpu].committed_usd_per_hour
                      or p.cost_usd_per_hour / p.gpus) for p in self.static_peak.pools)

    def committed_mix(self) -> list[dict]:
        return [{"gpu": g, "tier": self.tiers[g].committed_tier, "gpus": n,
                 "usd_per_gpu_hour": self.tiers[g].committed_usd_per_hour}
                for g, n in sorted(self.outcome.committed_gpus.items())]

    def summary(self) -> dict:
        """What `hetplan schedule --json` prints."""
        tot = self.profile.total_rps
        peak_slots = int(np.sum(tot > float(np.average(tot, weights=self.profile.lengths_s))))
        lb, cost = self.lower_bound_cost_usd, self.outcome.total_cost_usd
        sol = self.outcome.solution
        return {
            "scenario": self.scenario, "slots": self.profile.num_slots,
            "slot_s": self.profile.slot_s, "horizon_hours": self.hours,
            "horizon_cost_usd": cost, "cost_breakdown_usd": self.outcome.cost_usd,
            "pool_cost_usd": self.outcome.pool_cost_usd,
            "static_peak_cost_usd": self.static_peak.cost_usd_per_hour * self.hours,
            "static_peak_committed_cost_usd": self.static_peak_committed_cost_usd,
            "static_mean_cost_usd": self.static_mean.cost_usd_per_hour * self.hours,
            "static_mean_slots_above_its_rate": peak_slots,
            "lower_bound_cost_usd": lb,
            "above_lower_bound_pct": 100.0 * (cost - lb) / lb if lb > 0 else None,
            "reactive_cost_usd": self.reactive.cost_usd if self.reactive else None,
            "reactive_within_capacity": (self.reactive.within_capacity if self.reactive
                                         else None),
            "committed_mix": self.committed_mix(),
            "sizing": "queueing" if self.curves is not None else "utilization",
            "queueing_top_up": self.top_up.to_dict() if self.top_up else None,
            "solver": {"status": str(sol.status), "gap": sol.gap, "time_s": sol.time_s,
                       "total_s": self.solve_s, "candidates": len(self.candidates)}}

    def to_dict(self) -> dict:
        pools = []
        by_key = {c.key: c for c in self.candidates}
        for (key, tier), counts in self.outcome.replicas.items():
            c = by_key[key]
            pools.append({"pool": pool_name(c), "role": c.role, "gpu": c.shape.gpu,
                          "gpus_per_replica": c.num_gpus, "tier": tier, "replicas": counts})
        return {"summary": self.summary(), "model": self.model,
                "profile": self.profile.to_dict(),
                "tiers": {g: t.to_dict() for g, t in sorted(self.tiers.items())},
                "pools": pools, "slot_cost_usd": self.outcome.slot_cost_usd,
                "static_peak_mix": self.static_peak.mix(),
                "static_mean_mix": self.static_mean.mix(),
                "reactive": self.reactive.summary() if self.reactive else None,
                "assumptions": self.spec.assumptions()}


def rate_profile(rs: ResolvedScenario, spec: ScheduleSpec) -> RateProfile:
    """The scenario's rate profile: its schedule's rate shape, or its trace per slot."""
    w = rs.scenario.workload
    rate = spec.planning_rate or w.planning_rate
    if spec.profile is not None:
        return profile_from_shape(spec.profile, rs.classes, spec.slot_s, spec.horizon_s,
                                  rate, w.planning_window_s)
    if rs.trace is None:
        raise InputError("the scenario has no trace to profile; give schedule.profile",
                         file=rs.source, field="schedule.profile")
    return profile_from_trace(rs.trace, rs.classes, spec.slot_s, spec.horizon_s, rate,
                              w.planning_window_s)


def representative_slots(profile: RateProfile, k: int) -> list[int]:
    """k slots spread evenly over the ranks of total demand (the least and the peak in)."""
    order = np.argsort(profile.total_rps, kind="stable")
    picks = np.unique(np.round(np.linspace(0, order.size - 1, min(k, order.size))))
    return sorted(int(order[int(i)]) for i in picks)


def effective_price(t: GpuTiers, spot_share: float) -> float | None:
    """Cheapest $/GPU-hour per unit of capacity over the tiers (spot derated)."""
    opts = [t.on_demand_usd_per_hour, t.committed_usd_per_hour]
    if t.spot_usd_per_hour is not None and spot_share > 0:
        opts.append(t.spot_usd_per_hour / spot_share)
    opts = [o for o in opts if o is not None]
    return min(opts) if opts else None


def _with_classes(ctx: Context, classes) -> Context:
    return replace(ctx, resolved=replace(ctx.resolved, classes=tuple(classes)))


def choose_candidates(ctx: Context, profile: RateProfile, tiers: dict[str, GpuTiers],
                      problem: ScheduleProblem, k: int, solver: str, time_limit_s: float
                      ) -> list[Candidate]:
    """Candidates the planning MILP picks at k representative slots, at on-demand and at
    effective tier prices."""
    base = [c for c in ctx.candidates if c.shape.gpu in tiers]
    priced = []
    for c in base:
        share = problem.spot_capacity_share(c) if tiers[c.shape.gpu].spot_usd_per_hour else 1.0
        eff = effective_price(tiers[c.shape.gpu], share)
        if eff is not None:
            priced.append(replace(c, price_usd_per_hour=eff * c.num_gpus))
    on_demand = [c for c in base if tiers[c.shape.gpu].on_demand_usd_per_hour is not None]
    keys: set[str] = set()
    for t in representative_slots(profile, k):
        slot_ctx = _with_classes(ctx, profile.slot_classes(ctx.classes, t))
        for cands in (on_demand, priced):
            if not cands:
                continue
            # a nominating solve that stops at its short limit is expected: its large-gap
            # warning (which tells the user to raise --time-limit) does not apply here
            with contextlib.redirect_stderr(io.StringIO()):
                out, _ = solve_simplified(slot_ctx, problem_for(slot_ctx, cands), solver,
                                          min(time_limit_s, CHOOSE_TIME_LIMIT_S))
            if not out.solution.has_solution:
                raise Infeasible([f"slot {t}: no plan meets its demand "
                                  f"({profile.total_rps[t]:.3g} req/s): "
                                  f"{out.solution.status}"])
            keys |= {ch.candidate.key for ch in out.chosen}
    chosen = sorted((c for c in base if c.key in keys), key=lambda c: c.key)
    return drop_dominated(chosen, problem)


def drop_dominated(cands: list[Candidate], problem: ScheduleProblem) -> list[Candidate]:
    """Candidates less those another one dominates (`milp.prune.dominates`: same role and
    GPU, no dearer, at least its capacity for every class) with no longer a warm-up: moving
    replicas onto the dominating one never costs more in any tier, so the schedule's
    optimum is unchanged, and near-twins no longer make the MILP branch over ties."""
    names = list(problem.class_names)
    warm = problem.warmup_h
    keep = []
    for i, a in enumerate(cands):
        beaten = any(dominates(b, a, names) and warm[b.key] <= warm[a.key]
                     and (j < i or not (dominates(a, b, names) and warm[a.key] <= warm[b.key]))
                     for j, b in enumerate(cands) if j != i)
        if not beaten:
            keep.append(a)
    return keep


def warmup_hours(ctx: Context, c: Candidate, spec: ScheduleSpec) -> float:
    """Weights (each GPU reads its shard) at the load bandwidth, plus the engine start."""
    weights = ctx.perf.model.weight_bytes(c.shape.weight_dtype)
    return (weights / (c.num_gpus * spec.load_gb_per_s * 1e9) + spec.engine_start_s) / 3600.0


def schedule_problem(ctx: Context, profile: RateProfile, tiers: dict[str, GpuTiers],
                     spec: ScheduleSpec, candidates: list[Candidate]) -> ScheduleProblem:
    base = problem_for(ctx, candidates)
    return ScheduleProblem(
        candidates=candidates, class_names=profile.classes, rates_rps=profile.rates_rps,
        slot_hours=profile.slot_hours, rho={c.key: target_rho(base, c) for c in candidates},
        tiers=tiers, warmup_h={c.key: warmup_hours(ctx, c, spec) for c in candidates},
        spot_loss_h=spec.spot_reacquire_s / 3600.0, availability=dict(ctx.availability),
        allow_cross_vendor=base.allow_cross_vendor,
        kv_bytes_per_request=base.kv_bytes_per_request,
        kv_link_bytes_per_s=base.kv_link_bytes_per_s, max_step_replicas=spec.max_step_replicas,
        max_step_share=spec.max_step_share, max_spot_share=spec.max_spot_share,
        cyclic=spec.cyclic, pool_cost_usd_per_hour=ctx.scenario.constraints.pool_cost_usd_per_hour,
        mip_rel_gap=SCHEDULE_MIP_GAP)


def lower_bound_usd(p: ScheduleProblem, solver: str, time_limit_s: float
                    ) -> tuple[float, list[ScheduleOutcome]]:
    """Sum over slots of the schedule MILP on that slot alone, without change limits,
    warm-ups or pool cost (slots with the same demand are solved once). Each slot counts
    the solver's proven bound (its optimum when solved to optimality), so the sum is a
    bound even where a slot's solve stops early. Also returns each slot's solution (a
    start for the schedule MILP)."""
    total, seen, outs = 0.0, {}, []
    for t in range(p.num_slots):
        key = tuple(np.round(p.rates_rps[t], 9))
        if key not in seen:
            one = _slot_alone(p, t, tie_break=0.0)
            out = solve_schedule(one, solver, time_limit_s)
            if not out.solution.has_solution:
                raise Infeasible([f"slot {t}: the per-slot relaxation has no plan "
                                  f"({out.solution.status})"])
            b = out.solution.bound
            seen[key] = (min(out.total_cost_usd, b) if b is not None else out.total_cost_usd,
                         out)
        total += seen[key][0] * float(p.slot_hours[t])
        outs.append(seen[key][1])
    return total, outs


def _slot_alone(p: ScheduleProblem, t: int, **fields) -> ScheduleProblem:
    """Slot t as a one-slot problem without change limits, warm-ups or pool cost (what
    the lower bound and the decomposition solve), solved to LOWER_BOUND_GAP."""
    return replace(p, rates_rps=p.rates_rps[t:t + 1], slot_hours=np.ones(1),
                   max_step_replicas=None, cyclic=False, warmup=False,
                   pool_cost_usd_per_hour=0.0, mip_rel_gap=LOWER_BOUND_GAP, **fields)


def committed_guess(p: ScheduleProblem, solver: str, time_limit_s: float) -> dict[str, int]:
    """Committed GPUs per type from the schedule's LP relaxation, rounded up."""
    f = ScheduleFormulation(p)
    for v in f.lp.vars:
        v.integer = False
    sol = solve(f.lp, solver, time_limit_s)
    if not sol.has_solution:
        return {}
    return {g: math.ceil(sol.values[v] - 1e-6) for g, v in f.commit.items()}


def slot_plans(p: ScheduleProblem, solver: str, time_limit_s: float,
               committed: dict[str, int]) -> list[ScheduleOutcome] | None:
    """Every slot solved alone with the committed GPUs fixed (a decomposition: slots are
    independent once the baseline is fixed, but for change limits, warm-ups and pool
    cost, which the full MILP then settles starting from these). None if a slot fails."""
    seen: dict[tuple, ScheduleOutcome] = {}
    outs = []
    for t in range(p.num_slots):
        key = tuple(np.round(p.rates_rps[t], 9))
        if key not in seen:
            one = _slot_alone(p, t, fixed_committed_gpus=committed)
            seen[key] = solve_schedule(one, solver, time_limit_s)
            if not seen[key].solution.has_solution:
                return None
        outs.append(seen[key])
    return outs


def plan_schedule(rs: ResolvedScenario, catalog: Catalog, spec: ScheduleSpec | None = None,
                  *, solver: str = "highs", time_limit_s: float = 60.0,
                  progress: Callable[[str], None] | None = None) -> ScheduleResult:
    """Plan the scenario's capacity over its horizon (see the module docstring)."""
    t0 = time.perf_counter()
    s = rs.scenario
    spec = spec or s.schedule or ScheduleSpec()
    if s.objective != "min_cost":
        raise InputError("hetplan schedule minimizes cost; set objective: min_cost",
                         file=rs.source, field="objective")
    profile = rate_profile(rs, spec)
    say = progress or (lambda m: None)
    say("candidates")
    ctx = prepare(rs, catalog)
    tiers = gpu_tiers(catalog, s.catalog.prices, sorted(ctx.prices), spec)
    probe = schedule_problem(ctx, profile, tiers, spec, ctx.candidates)
    cands = choose_candidates(ctx, profile, tiers, probe, spec.representative_slots, solver,
                              time_limit_s)
    problem = schedule_problem(ctx, profile, tiers, spec, cands)
    say("lower bound")
    lb, lb_slots = lower_bound_usd(problem, solver, time_limit_s)
    say("baseline guess")
    guess = committed_guess(problem, solver, time_limit_s)
    start = (slot_plans(problem, solver, time_limit_s, guess) if guess else None) or lb_slots
    env_rates = problem.rates_rps.max(axis=0)
    env = solve_schedule(replace(problem, rates_rps=env_rates[None, :], slot_hours=np.ones(1),
                                 max_step_replicas=None, cyclic=False, warmup=False,
                                 pool_cost_usd_per_hour=0.0, mip_rel_gap=LOWER_BOUND_GAP),
                         solver, time_limit_s)
    say("schedule")
    out = solve_schedule(problem, solver, time_limit_s, start_slots=start,
                         envelope=(env, env_rates))
    if not out.solution.has_solution:
        raise Infeasible([f"the schedule MILP found no schedule ({out.solution.status}"
                          f"{': ' + out.solution.message if out.solution.message else ''}); "
                          "loosen the change limits (schedule.max_step_replicas)"])
    curves = (schedule_curves(ctx, problem, spec.sizing_percentile)
              if s.constraints.sizing == Sizing.QUEUEING else None)
    out, top_up = with_top_up(out, curves)
    say("baselines")
    peak_t = int(np.argmax(profile.total_rps))
    peak = solve_context(_with_classes(ctx, profile.slot_classes(ctx.classes, peak_t)),
                         solver=solver, time_limit_s=time_limit_s, label="static: peak slot")
    mean_rates = np.average(profile.rates_rps, axis=0, weights=profile.lengths_s)
    mean_classes = [replace(w, rate_rps=float(r)) for w, r in zip(ctx.classes, mean_rates)]
    mean = solve_context(_with_classes(ctx, mean_classes), solver=solver,
                         time_limit_s=time_limit_s, label="static: mean rate")
    reactive = reactive_baseline(
        scaled_pools(ctx, peak, spec), profile.classes, profile.rates_rps, profile.lengths_s,
        profile.rates_rps[peak_t], cyclic=spec.cyclic)
    return ScheduleResult(s.name, ctx.perf.model.name, spec, profile, tiers, cands, out, peak,
                          mean, lb, time.perf_counter() - t0, reactive, curves, top_up)


def scaled_pools(ctx: Context, plan: Plan, spec: ScheduleSpec) -> list[ScaledPool]:
    """The plan's pools as the reactive scaler drives them (on-demand, the schedule's
    warm-up per replica shape)."""
    by_name = {pool_name(c): c for c in ctx.candidates}
    return [ScaledPool(p.name, p.replicas, {r.workload_class: r.rate_rps for r in p.routes},
                       p.cost_usd_per_hour / p.replicas,
                       3600.0 * warmup_hours(ctx, by_name[p.name], spec))
            for p in plan.pools if p.replicas > 0]
