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

The schedule MILP starts from a decomposition: committed GPUs and the P/D vendor and KV
dtype from its LP relaxation, then every slot solved alone with those fixed (in
parallel), stacked and raised where pools change faster than the limits allow.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from hetplan.candidates import Candidate
from hetplan.catalog import Catalog
from hetplan.enums import Sizing
from hetplan.errors import Infeasible, InputError
from hetplan.milp.formulation import ONE_OF_KEYS, target_rho
from hetplan.milp.prune import dominates
from hetplan.parallel import INLINE, Parallel
from hetplan.plan import Plan
from hetplan.planner import (Context, pool_name, prepare, problem_for, solve_context,
                             solve_simplified)
from hetplan.scenario import ResolvedScenario
from hetplan.milp.backends import solve
from hetplan.schedule.formulation import (ScheduleFormulation, ScheduleOutcome, ScheduleProblem,
                                          solve_schedule)
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
    down_curves: dict | None = None            # U(n) at the SLO's percentile (spot down)

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
    done = parallel.calls(
        [(_nominate, (_with_classes(ctx, profile.slot_classes(ctx.classes, t)), priced, solver,
                      min(time_limit_s, CHOOSE_TIME_LIMIT_S)), {}) for t in slots]
        + [(solve_context, (sctx,), {"solver": solver, "time_limit_s": time_limit_s,
                                     "label": label}) for sctx, label in static],
        label="candidates")
    keys: set[str] = set()
    for t, (picked, status) in zip(slots, done):
        if picked is None:
            raise Infeasible([f"slot {t}: no plan meets its demand "
                              f"({profile.total_rps[t]:.3g} req/s): {status}"])
        keys |= picked
    plans = done[len(slots):]
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


def lower_bound_usd(p: ScheduleProblem, solver: str, time_limit_s: float,
                    parallel: Parallel = INLINE) -> tuple[float, list[ScheduleOutcome]]:
    """Sum over slots of the schedule MILP on that slot alone, without change limits,
    warm-ups or pool cost (slots with the same demand are solved once; the slots solve on
    `parallel`). Each slot counts the solver's proven bound (its optimum when solved to
    optimality), so the sum is a bound even where a slot's solve stops early. Also returns
    each slot's solution (a start for the schedule MILP)."""
    outs = solve_slots(p, solver, time_limit_s, parallel, tie_break=0.0)
    total = 0.0
    for t, out in enumerate(outs):
        if not out.solution.has_solution:
            raise Infeasible([f"slot {t}: the per-slot relaxation has no plan "
                              f"({out.solution.status})"])
        b = out.solution.bound
        cost = min(out.total_cost_usd, b) if b is not None else out.total_cost_usd
        total += cost * float(p.slot_hours[t])
    return total, outs


def solve_slots(p: ScheduleProblem, solver: str, time_limit_s: float, parallel: Parallel,
                **fields) -> list[ScheduleOutcome]:
    """Every slot of `p` solved alone (`_slot_alone` with `fields`), on `parallel`; slots
    with the same demand are solved once and share the outcome."""
    keys = [tuple(np.round(p.rates_rps[t], 9)) for t in range(p.num_slots)]
    first = {k: t for t, k in reversed(list(enumerate(keys)))}
    distinct = sorted(first.values())
    solved = parallel.calls([(solve_schedule, (_slot_alone(p, t, **fields), solver,
                                               time_limit_s), {}) for t in distinct],
                            label="slots")
    by_key = {keys[t]: out for t, out in zip(distinct, solved)}
    return [by_key[k] for k in keys]


def _slot_alone(p: ScheduleProblem, t: int, **fields) -> ScheduleProblem:
    """Slot t as a one-slot problem without change limits, warm-ups or pool cost (what
    the lower bound and the decomposition solve; `fields` override), solved to
    LOWER_BOUND_GAP."""
    return replace(p, **{"rates_rps": p.rates_rps[t:t + 1], "slot_hours": np.ones(1),
                         "max_step_replicas": None, "cyclic": False, "warmup": False,
                         "pool_cost_usd_per_hour": 0.0, "mip_rel_gap": LOWER_BOUND_GAP}
                   | fields)


def relaxed_guess(p: ScheduleProblem, solver: str, time_limit_s: float
                  ) -> tuple[dict[str, int], list[list[Candidate]]]:
    """From the schedule's LP relaxation: committed GPUs per type, rounded up, and candidate
    sets for slots solved alone, narrowest first: those the relaxation uses, then those of
    the one vendor and KV dtype whose P/D pools hold the most GPU-hours there (with every
    colocated one), so that the slots agree on them. ({}, [every candidate]) when the
    relaxation has no solution."""
    f = ScheduleFormulation(p)
    for v in f.lp.vars:
        v.integer = False
    sol = solve(f.lp, solver, time_limit_s)
    if not sol.has_solution:
        return {}, [list(p.candidates)]
    committed = {g: math.ceil(sol.values[v] - 1e-6) for g, v in f.commit.items()}
    held: dict[tuple[str, ...], float] = {}
    used: set[int] = set()
    for (i, _, t), var in f.n.items():
        c = p.candidates[i]
        if sol.values[var] > 1e-6:
            used.add(i)
        if c.role != "colocated":
            key = tuple(ONE_OF_KEYS[k](c) for k in sorted(ONE_OF_KEYS))
            held[key] = held.get(key, 0.0) + sol.values[var] * c.num_gpus * p.slot_hours[t]
    best = max(sorted(held), key=lambda k: held[k]) if held else None
    agree = [c for c in p.candidates if c.role == "colocated"
             or tuple(ONE_OF_KEYS[k](c) for k in sorted(ONE_OF_KEYS)) == best]
    return committed, [[c for i, c in enumerate(p.candidates) if i in used], agree]


def slot_plans(p: ScheduleProblem, solver: str, time_limit_s: float,
               committed: dict[str, int], parallel: Parallel = INLINE
               ) -> list[ScheduleOutcome] | None:
    """Every slot solved alone with the committed GPUs fixed (a decomposition: slots are
    independent once the baseline is fixed, but for change limits and warm-ups, which the
    full MILP then settles starting from these). Each slot pays the pool cost for its
    hour, as a one-rate plan does, so that slots keep to the same few pools. None if a
    slot fails."""
    outs = solve_slots(p, solver, time_limit_s, parallel, fixed_committed_gpus=committed,
                       pool_cost_usd_per_hour=p.pool_cost_usd_per_hour)
    return outs if all(o.solution.has_solution for o in outs) else None


def plan_schedule(rs: ResolvedScenario, catalog: Catalog, spec: ScheduleSpec | None = None,
                  *, solver: str = "highs", time_limit_s: float = 60.0,
                  progress: Callable[[str], None] | None = None,
                  parallel: Parallel = INLINE) -> ScheduleResult:
    """Plan the scenario's capacity over its horizon (see the module docstring). The
    independent solves (candidate nominations, static baselines, slots alone) run on
    `parallel`; the result does not depend on it."""
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
    peak_t = int(np.argmax(profile.total_rps))
    mean_rates = np.average(profile.rates_rps, axis=0, weights=profile.lengths_s)
    mean_classes = [replace(w, rate_rps=float(r)) for w, r in zip(ctx.classes, mean_rates)]
    cands, (peak, mean) = choose_candidates(
        ctx, profile, tiers, probe, spec.representative_slots, solver, time_limit_s, parallel,
        static=[(_with_classes(ctx, profile.slot_classes(ctx.classes, peak_t)),
                 "static: peak slot"), (_with_classes(ctx, mean_classes), "static: mean rate")])
    problem = schedule_problem(ctx, profile, tiers, spec, cands)
    say("lower bound")
    lb, lb_slots = lower_bound_usd(problem, solver, time_limit_s, parallel)
    say("baseline guess")
    guess, subsets = relaxed_guess(problem, solver, time_limit_s)
    stacks = []
    # slots alone paying a pool for their hour (as a one-rate plan does) or for the whole
    # horizon (as the schedule does for a pool used at all): the MILP starts from the
    # cheaper stack
    for charge in (1.0, float(profile.slot_hours.sum()))[
            :2 if problem.pool_cost_usd_per_hour > 0 else 1]:
        for cands_t in subsets:
            got = slot_plans(replace(problem, candidates=cands_t, pool_cost_usd_per_hour=
                                     charge * problem.pool_cost_usd_per_hour),
                             solver, time_limit_s, guess, parallel)
            if got is not None:
                stacks.append(got)
                break
    start = stacks[0] if stacks else lb_slots
    env_rates = problem.rates_rps.max(axis=0)
    env = solve_schedule(replace(problem, rates_rps=env_rates[None, :], slot_hours=np.ones(1),
                                 max_step_replicas=None, cyclic=False, warmup=False,
                                 pool_cost_usd_per_hour=0.0, mip_rel_gap=LOWER_BOUND_GAP),
                         solver, time_limit_s)
    say("schedule")
    out = solve_schedule(problem, solver, time_limit_s, start_slots=start,
                         envelope=(env, env_rates), more_starts=stacks[1:])
    if not out.solution.has_solution:
        raise Infeasible([f"the schedule MILP found no schedule ({out.solution.status}"
                          f"{': ' + out.solution.message if out.solution.message else ''}); "
                          "loosen the change limits (schedule.max_step_replicas)"])
    curves = (schedule_curves(ctx, problem, spec.sizing_percentile)
              if s.constraints.sizing == Sizing.QUEUEING else None)
    down = None if curves is None else spot_down_curves(ctx, problem, curves,
                                                         spec.sizing_percentile)
    out, top_up = with_top_up(out, curves, down)
    reactive = reactive_baseline(
        scaled_pools(ctx, peak, spec), profile.classes, profile.rates_rps, profile.lengths_s,
        profile.rates_rps[peak_t], cyclic=spec.cyclic)
    return ScheduleResult(s.name, ctx.perf.model.name, spec, profile, tiers, cands, out, peak,
                          mean, lb, time.perf_counter() - t0, reactive, curves, top_up, down)


def scaled_pools(ctx: Context, plan: Plan, spec: ScheduleSpec) -> list[ScaledPool]:
    """The plan's pools as the reactive scaler drives them (on-demand, the schedule's
    warm-up per replica shape)."""
    by_name = {pool_name(c): c for c in ctx.candidates}
    return [ScaledPool(p.name, p.replicas, {r.workload_class: r.rate_rps for r in p.routes},
                       p.cost_usd_per_hour / p.replicas,
                       3600.0 * warmup_hours(ctx, by_name[p.name], spec))
            for p in plan.pools if p.replicas > 0]
