"""Plan capacity over time: rate profile -> the planner's candidates -> schedule MILP ->
baselines (static peak, static mean, per-slot lower bound).

Candidates and per-replica capacities are the planning stage's (`planner.prepare`: one
source of truth for sizing at the SLO). To keep a week of slots small, the schedule uses
only the candidates that per-slot plans choose: the planning MILP solved at a few
representative slots (spread over the range of demand) at each GPU's cheapest effective
tier price, and the static on-demand plans for the peak slot and the mean rate (the
baselines, solved in the same parallel batch). The lower bound is the schedule MILP
solved slot by slot with no change limits and no warm-ups (each slot may buy its own
commitment): a relaxation of the schedule over the same candidates, so no schedule on them
costs less.

Owned nodes of the scenario's inventory are held in every slot; every baseline pays them
too (`owned.py`).

The schedule MILP starts from a decomposition: committed GPUs and the P/D vendor and KV
dtype from its LP relaxation, then every slot solved alone with those fixed (in
parallel), stacked and raised where pools change faster than the limits allow
(`decompose.py`, which solves the bound's slots and the relaxation as one batch, then
the stacks' slots as another).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from hetplan.candidates import Candidate
from hetplan.catalog import Catalog
from hetplan.enums import Sizing
from hetplan.errors import Infeasible, InputError
from hetplan.milp.formulation import target_rho
from hetplan.milp.prune import dominates
from hetplan.parallel import INLINE, Parallel
from hetplan.plan import Plan
from hetplan.planner import (Context, pool_name, prepare, problem_for, solve_context,
                             solve_simplified)
from hetplan.scenario import ResolvedScenario
from hetplan.schedule.decompose import decompose
from hetplan.schedule.formulation import ScheduleOutcome, ScheduleProblem, solve_schedule
from hetplan.schedule.owned import held_usd_per_hour, owned_notes, static_credit_usd_per_hour
from hetplan.schedule.reactive import ReactiveResult, ScaledPool, reactive_baseline
from hetplan.schedule.sizing import TopUp, schedule_curves, spot_down_curves, with_top_up
from hetplan.schedule.spec import ScheduleSpec
from hetplan.schedule.tiers import GpuTiers, gpu_tiers
from hetplan.workload.profile import RateProfile, profile_from_shape, profile_from_trace

# The schedule MILP may stop within this relative gap of its bound (reported with the
# result): proving the last fraction of a percent costs minutes on a week of slots.
SCHEDULE_MIP_GAP = 0.005
# A representative slot's plan only nominates candidates (the schedule MILP decides), so
# its solve may stop early with a good plan rather than prove the optimum.
CHOOSE_TIME_LIMIT_S = 15.0
# With a budget, the schedule MILP's deadline is this much before its end: what follows the
# HiGHS run (reading its values back, the feasibility check, the queueing top-up) on a week
# of hourly slots, with margin
BUDGET_RESERVE_S = 5.0


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
    down_curves: dict | None = None            # U(n) at the SLO's percentile (spot down)

    @property
    def hours(self) -> float:
        return float(self.profile.slot_hours.sum())

    @property
    def static_peak_committed_cost_usd(self) -> float:
        """The static peak fleet bought at each GPU's committed price where it has one."""
        price = lambda p: (self.tiers[p.gpu].committed_usd_per_hour  # noqa: E731
                           or p.cost_usd_per_hour / p.gpus)
        return self.hours * (sum(p.gpus * price(p) for p in self.static_peak.pools)
                             + static_credit_usd_per_hour(self.tiers, self.static_peak, price))

    def static_cost_usd(self, plan: Plan) -> float:
        """A static plan's horizon cost at its prices, running on the owned GPUs first."""
        return (plan.cost_usd_per_hour + static_credit_usd_per_hour(
            self.tiers, plan, lambda p: p.cost_usd_per_hour / p.gpus)) * self.hours

    @property
    def owned_cost_usd(self) -> float:
        """The inventory's owned GPUs over the horizon (paid every slot)."""
        return self.hours * held_usd_per_hour(self.tiers)

    def committed_mix(self) -> list[dict]:
        """Committed GPUs per type: the inventory's owned ones, then those bought."""
        out = []
        for g, n in sorted(self.outcome.committed_gpus.items()):
            t = self.tiers[g]
            if t.owned_gpus:
                out.append({"gpu": g, "tier": "owned (inventory)", "gpus": t.owned_gpus,
                            "usd_per_gpu_hour": t.owned_usd_per_hour,
                            "capex": "sunk" if t.owned_capex_sunk else "amortized"})
            if n > t.owned_gpus:
                out.append({"gpu": g, "tier": t.committed_tier, "gpus": n - t.owned_gpus,
                            "usd_per_gpu_hour": t.committed_usd_per_hour})
        return out

    def summary(self, timings: bool = True) -> dict:
        """What `hetplan schedule --json` prints; without `timings` (the solver's and the
        whole run's wall seconds), what schedule.json and schedule.md hold, so that the
        same schedule writes the same bytes."""
        tot = self.profile.total_rps
        peak_slots = int(np.sum(tot > float(np.average(tot, weights=self.profile.lengths_s))))
        lb, cost = self.lower_bound_cost_usd, self.outcome.total_cost_usd
        sol = self.outcome.solution
        return {
            "scenario": self.scenario, "slots": self.profile.num_slots,
            "slot_s": self.profile.slot_s, "horizon_hours": self.hours,
            "horizon_cost_usd": cost, "cost_breakdown_usd": self.outcome.cost_usd,
            "pool_cost_usd": self.outcome.pool_cost_usd,
            "static_peak_cost_usd": self.static_cost_usd(self.static_peak),
            "static_peak_committed_cost_usd": self.static_peak_committed_cost_usd,
            "static_mean_cost_usd": self.static_cost_usd(self.static_mean),
            "static_mean_slots_above_its_rate": peak_slots,
            "lower_bound_cost_usd": lb,
            "above_lower_bound_pct": 100.0 * (cost - lb) / lb if lb > 0 else None,
            "reactive_cost_usd": (self.reactive.cost_usd + self.owned_cost_usd
                                  if self.reactive else None),
            "reactive_within_capacity": (self.reactive.within_capacity if self.reactive
                                         else None),
            "committed_mix": self.committed_mix(),
            **({"owned_gpus": {g: t.owned_gpus for g, t in sorted(self.tiers.items())
                               if t.owned_gpus}, "owned_cost_usd": self.owned_cost_usd}
               if any(t.owned_gpus for t in self.tiers.values()) else {}),
            "sizing": "queueing" if self.curves is not None else "utilization",
            "queueing_top_up": self.top_up.to_dict() if self.top_up else None,
            "solver": {"status": str(sol.status), "gap": sol.gap,
                       "candidates": len(self.candidates)}
            | ({"time_s": sol.time_s, "total_s": self.solve_s} if timings else {})}

    def to_dict(self) -> dict:
        pools = []
        by_key = {c.key: c for c in self.candidates}
        for (key, tier), counts in self.outcome.replicas.items():
            c = by_key[key]
            pools.append({"pool": pool_name(c), "role": c.role, "gpu": c.shape.gpu,
                          "gpus_per_replica": c.num_gpus, "tier": tier, "replicas": counts})
        return {"summary": self.summary(timings=False), "model": self.model,
                "profile": self.profile.to_dict(),
                "tiers": {g: t.to_dict() for g, t in sorted(self.tiers.items())},
                "pools": pools, "slot_cost_usd": self.outcome.slot_cost_usd,
                "static_peak_mix": self.static_peak.mix(),
                "static_mean_mix": self.static_mean.mix(),
                "reactive": self.reactive.summary() if self.reactive else None,
                "assumptions": self.spec.assumptions()
                + owned_notes(self.tiers, self.candidates)}


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
    """Cheapest $/GPU-hour per unit of capacity over the tiers (spot derated; a GPU with
    owned nodes at its owned price, so that nominations run on it)."""
    opts = [t.on_demand_usd_per_hour, t.committed_usd_per_hour, t.owned_usd_per_hour]
    if t.spot_usd_per_hour is not None and spot_share > 0:
        opts.append(t.spot_usd_per_hour / spot_share)
    opts = [o for o in opts if o is not None]
    return min(opts) if opts else None


def _with_classes(ctx: Context, classes) -> Context:
    return replace(ctx, resolved=replace(ctx.resolved, classes=tuple(classes)))


def choose_candidates(ctx: Context, profile: RateProfile, tiers: dict[str, GpuTiers],
                      problem: ScheduleProblem, k: int, solver: str, time_limit_s: float,
                      parallel: Parallel = INLINE,
                      static: Sequence[tuple[Context, str]] = ()
                      ) -> tuple[list[Candidate], list[Plan]]:
    """Candidates the planning MILP picks at k representative slots at each GPU's
    effective tier price, and the pools of the static on-demand plans `static` (context,
    label: the peak and mean plans the schedule is compared with, which stand for the
    on-demand choice at high and middle demand). All of these solves run on `parallel`;
    returns the candidates and the static plans."""
    base = [c for c in ctx.candidates if c.shape.gpu in tiers]
    priced = []
    for c in base:
        share = problem.spot_capacity_share(c) if tiers[c.shape.gpu].spot_usd_per_hour else 1.0
        eff = effective_price(tiers[c.shape.gpu], share)
        if eff is not None:
            priced.append(replace(c, price_usd_per_hour=eff * c.num_gpus))
    slots = representative_slots(profile, k) if priced else []
    # the static plans (the longest solves: each sizes, settles and may re-solve) go first,
    # so that the short nominations fill the other workers meanwhile
    done = parallel.calls(
        [(solve_context, (sctx,), {"solver": solver, "time_limit_s": time_limit_s,
                                   "label": label}) for sctx, label in static]
        + [(_nominate, (_with_classes(ctx, profile.slot_classes(ctx.classes, t)), priced,
                        solver, min(time_limit_s, CHOOSE_TIME_LIMIT_S)), {}) for t in slots],
        label="candidates")
    plans, done = done[:len(static)], done[len(static):]
    keys: set[str] = set()
    for t, (picked, status) in zip(slots, done):
        if picked is None:
            raise Infeasible([f"slot {t}: no plan meets its demand "
                              f"({profile.total_rps[t]:.3g} req/s): {status}"])
        keys |= picked
    names = {pool.name for plan in plans for pool in plan.pools}
    keys |= {c.key for c in base if pool_name(c) in names}
    chosen = sorted((c for c in base if c.key in keys), key=lambda c: c.key)
    return drop_dominated(chosen, problem), plans


def _nominate(slot_ctx: Context, cands: list[Candidate], solver: str, time_limit_s: float
              ) -> tuple[set[str] | None, str]:
    """The candidate keys the planning MILP picks for one slot (None: no plan, and why)."""
    # a nominating solve that stops at its short limit is expected: its large-gap warning
    # (which tells the user to raise --time-limit) does not apply here
    with contextlib.redirect_stderr(io.StringIO()):
        out, _ = solve_simplified(slot_ctx, problem_for(slot_ctx, cands), solver, time_limit_s)
    if not out.solution.has_solution:
        return None, str(out.solution.status)
    return {ch.candidate.key for ch in out.chosen}, ""


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


def plan_schedule(rs: ResolvedScenario, catalog: Catalog, spec: ScheduleSpec | None = None,
                  *, solver: str = "highs", time_limit_s: float = 60.0,
                  progress: Callable[[str], None] | None = None,
                  parallel: Parallel = INLINE, budget_s: float | None = None
                  ) -> ScheduleResult:
    """Plan the scenario's capacity over its horizon (see the module docstring). The
    independent solves (candidate nominations, static baselines, slots alone) run on
    `parallel`; the result does not depend on it. With `budget_s`, the schedule MILP stops
    by then (less BUDGET_RESERVE_S for what follows it) if `time_limit_s` does not stop it
    first, at a status and gap the result reports; the earlier solves keep their limits,
    so the whole run passes the budget only when they take it all."""
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
    tiers = gpu_tiers(catalog, s.catalog.prices, sorted(ctx.prices), spec,
                      owned=ctx.inventory.owned_gpus_by_type() if ctx.inventory else None)
    probe = schedule_problem(ctx, profile, tiers, spec, ctx.candidates)
    peak_t = int(np.argmax(profile.total_rps))
    mean_rates = np.average(profile.rates_rps, axis=0, weights=profile.lengths_s)
    mean_classes = [replace(w, rate_rps=float(r)) for w, r in zip(ctx.classes, mean_rates)]
    cands, (peak, mean) = choose_candidates(
        ctx, profile, tiers, probe, spec.representative_slots, solver, time_limit_s, parallel,
        static=[(_with_classes(ctx, profile.slot_classes(ctx.classes, peak_t)),
                 "static: peak slot"), (_with_classes(ctx, mean_classes), "static: mean rate")])
    problem = schedule_problem(ctx, profile, tiers, spec, cands)
    say("curves")
    curves = (schedule_curves(ctx, problem, spec.sizing_percentile)
              if s.constraints.sizing == Sizing.QUEUEING else None)
    down = None if curves is None else spot_down_curves(ctx, problem, curves,
                                                         spec.sizing_percentile)
    problem = replace(problem, curves=curves, down_curves=down)
    say("decomposition")
    dec = decompose(problem, solver, time_limit_s, parallel)
    # what does not depend on the schedule comes before it, so that the MILP can have the
    # rest of a budget
    say("reactive")
    reactive = reactive_baseline(
        scaled_pools(ctx, peak, spec), profile.classes, profile.rates_rps, profile.lengths_s,
        profile.rates_rps[peak_t], cyclic=spec.cyclic)
    say("schedule")
    out = solve_schedule(problem, solver, time_limit_s,
                         start_slots=dec.stacks[0] if dec.stacks else dec.bound_slots,
                         envelope=(dec.envelope, dec.envelope_rates),
                         more_starts=dec.stacks[1:],
                         deadline=None if budget_s is None else t0 + budget_s - BUDGET_RESERVE_S)
    if not out.solution.has_solution:
        raise Infeasible([f"the schedule MILP found no schedule ({out.solution.status}"
                          f"{': ' + out.solution.message if out.solution.message else ''}); "
                          "loosen the change limits (schedule.max_step_replicas)"])
    say("top-up")
    out, top_up = with_top_up(out, curves, down)
    return ScheduleResult(s.name, ctx.perf.model.name, spec, profile, tiers, cands, out, peak,
                          mean, dec.lower_bound_usd, time.perf_counter() - t0, reactive,
                          curves, top_up, down)


def scaled_pools(ctx: Context, plan: Plan, spec: ScheduleSpec) -> list[ScaledPool]:
    """The plan's pools as the reactive scaler drives them (on-demand, the schedule's
    warm-up per replica shape)."""
    by_name = {pool_name(c): c for c in ctx.candidates}
    return [ScaledPool(p.name, p.replicas, {r.workload_class: r.rate_rps for r in p.routes},
                       p.cost_usd_per_hour / p.replicas,
                       3600.0 * warmup_hours(ctx, by_name[p.name], spec))
            for p in plan.pools if p.replicas > 0]
