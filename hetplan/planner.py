"""Plan a resolved scenario end to end: its classes -> candidates -> MILP -> Plan (placed on
its inventory when it has one).

This is the library entry point behind `hetplan solve`, `compare` and `frontier`; notebooks
call `plan_scenario` directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from hetplan import __version__
from hetplan.candidates import Candidate, build_candidates, with_prefix_cache
from hetplan.catalog import Catalog
from hetplan.enums import ROLES, Sizing, SolveStatus
from hetplan.errors import Infeasible, InputError
from hetplan.milp import Outcome, Problem, solve_problem
from hetplan.milp.solve import sizing_cost
from hetplan.milp.explain import explain_infeasible, precheck
from hetplan.perf import PerfModel
from hetplan.placement import Reliability, kv_bytes_table, place_plan
from hetplan.placement.inventory import Inventory
from hetplan.placement.place import PlacementInfeasible
from hetplan.plan import ClassRoute, ClassSummary, Plan, Pool, Simplification
from hetplan.prefix_cache import PrefixCharge, prefix_charge, prefix_plan, settle_pool_sizes
from hetplan.scenario import (ResolvedScenario, Scenario, check_catalog_selection,
                              miss_budget_share, missing_class_slo, scenario_gpus)
from hetplan.bursts import plan_bursts
from hetplan.slo_capacity import sizing_inputs
from hetplan.workload import WorkloadClass

__all__ = ["Context", "Infeasible", "offer_terms", "plan_scenario", "prepare", "problem_for",
           "solve_context", "build_plan"]


@dataclass(frozen=True)
class Context:
    """A resolved scenario priced and modelled for solving: offer prices and availability,
    the perf model and the candidates at the scenario's SLO (reused by compare / frontier
    / the repair loop)."""

    resolved: ResolvedScenario
    catalog: Catalog
    perf: PerfModel
    prices: dict[str, float]
    availability: dict[str, int]
    candidates: list[Candidate] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    inventory: Inventory | None = None     # the scenario's inventory less failed nodes
    prefix: PrefixCharge | None = None     # prefix-cache charge of prefill candidates
    # slo scope workload: candidate key -> the same candidate sized at the relaxed targets
    # a class allowed to miss is served at (`missing_class_slo`); empty for scope class
    relaxed: dict[str, Candidate] = field(default_factory=dict)
    capacity_scale: dict[str, float] | None = None   # Problem.capacity_scale (the tuner's)

    @property
    def scenario(self) -> Scenario:
        return self.resolved.scenario

    @property
    def classes(self) -> tuple[WorkloadClass, ...]:
        return self.resolved.classes

    def with_utilization(self, rho: float, rho_decode: float | None) -> Context:
        """The context sized at another target utilization, by the utilization model (a
        rho means nothing to queueing sizing; candidates do not depend on it, so they are
        kept)."""
        return replace(self, resolved=self.resolved.with_constraints(
            target_utilization=rho, decode_target_utilization=rho_decode,
            sizing=Sizing.UTILIZATION))


def offer_terms(s: Scenario, catalog: Catalog) -> tuple[dict[str, float], dict[str, int]]:
    """Cheapest $/GPU-hour per scenario GPU (spot if asked and offered) and availability
    (the scenario's override, else the sum of the sheet's counts; absent = unlimited)."""
    prices: dict[str, float] = {}
    avail: dict[str, int] = {}
    for g in scenario_gpus(s, catalog):
        offers = catalog.offers(s.catalog.prices, [g])
        cand = [(o.spot_price_usd_per_hour if s.catalog.use_spot and o.spot_price_usd_per_hour
                 else o.price_usd_per_hour) for o in offers]
        prices[g] = min(cand)
        counts = [o.available_count for o in offers]
        if counts and all(c is not None for c in counts):
            avail[g] = sum(counts)
        if g in s.catalog.availability:
            avail[g] = s.catalog.availability[g]
    return prices, avail


def prepare(rs: ResolvedScenario, catalog: Catalog,
            progress: Callable[[str], None] | None = None, failed: Sequence[str] = (),
            calibrations: dict | None = None) -> Context:
    """Price and model a resolved scenario: prices, perf model (`calibrations`: GPU ->
    Calibration, default the bundled files) and candidates at its SLO. With an inventory,
    GPU availability is its healthy nodes' GPUs (less the `failed` ones) and TP is capped
    at GPUs per node."""
    s = rs.scenario
    check_catalog_selection(s.catalog, catalog)
    prices, availability = offer_terms(s, catalog)
    inv, max_tp_by_gpu = None, None
    if rs.inventory is not None:
        inv = rs.inventory.without(failed)
        have = inv.gpus_by_type()
        prices = {g: p for g, p in prices.items() if g in have}
        availability = {g: have[g] for g in prices}
        max_tp_by_gpu = inv.max_gpus_per_node()
    if not prices:
        raise InputError(f"no GPU of the scenario{' inventory' if s.inventory else ''} has a "
                         f"price in sheet {s.catalog.prices!r}", file=rs.source,
                         field="catalog.gpus")
    perf = PerfModel(rs.model, catalog, calibrations, limits=s.constraints.engine)
    k = s.constraints
    prefix = prefix_charge(s, rs.trace, rs.classes)
    candidates, dropped = build_candidates(
        perf, catalog, prices, rs.classes, rs.slo, roles=k.roles,
        max_tp=k.max_tp, max_pp=k.max_pp, weight_dtypes=k.weight_dtypes, kv_dtypes=k.kv_dtypes,
        kv_link=k.kv_link, allow_cross_vendor=k.allow_cross_vendor, progress=progress,
        max_tp_by_gpu=max_tp_by_gpu, gpus_available=availability, prefix=prefix)
    relaxed: dict[str, Candidate] = {}
    if miss_budget_share(rs.slo) is not None:
        if s.objective != "min_cost":
            raise InputError("slo scope workload is planned for objective min_cost only",
                             file=rs.source, field="slo.scope")
        loose, _ = build_candidates(
            perf, catalog, prices, rs.classes, missing_class_slo(rs.slo), roles=k.roles,
            max_tp=k.max_tp, max_pp=k.max_pp, weight_dtypes=k.weight_dtypes,
            kv_dtypes=k.kv_dtypes, kv_link=k.kv_link, allow_cross_vendor=k.allow_cross_vendor,
            max_tp_by_gpu=max_tp_by_gpu, gpus_available=availability)
        relaxed = {c.key: c for c in loose}
    return Context(rs, catalog, perf, prices, availability, candidates, dropped, inv, prefix,
                   relaxed)


def problem_for(ctx: Context, candidates: Sequence[Candidate] | None = None) -> Problem:
    s, m = ctx.scenario, ctx.perf.model
    relaxed = {k: {w: c.capacity(w) for w in c.per_class} for k, c in ctx.relaxed.items()}
    kvb = {(d, w.name): m.kv_bytes_per_sequence(max(1, int(w.mean_input_tokens)), d)
           for d in s.constraints.kv_dtypes for w in ctx.classes}
    return Problem(
        candidates=[c for c in (ctx.candidates if candidates is None else candidates)
                    if c.useful or (c.key in ctx.relaxed and ctx.relaxed[c.key].useful)],
        classes=ctx.classes, utilization=s.constraints.target_utilization,
        decode_utilization=s.constraints.decode_target_utilization,
        availability=ctx.availability, budget_usd_per_hour=s.constraints.budget_usd_per_hour,
        allow_cross_vendor=s.constraints.allow_cross_vendor, kv_bytes_per_request=kvb,
        kv_link_bytes_per_s=ctx.perf.links.link(s.constraints.kv_link).achieved_bytes_per_s,
        objective=s.objective, n_plus_one_nodes=_nodes_per_tp(ctx),
        usable_share=_usable_share(ctx),
        pool_cost_usd_per_hour=s.constraints.pool_cost_usd_per_hour,
        max_pools_per_role=s.constraints.max_pools_per_role,
        relaxed_capacity=relaxed or None, miss_budget_share=miss_budget_share(s.slo),
        sizing=(sizing_inputs(ctx.resolved.slo, ctx.classes, ctx.resolved.trace, m)
                if s.constraints.sizing == Sizing.QUEUEING else None),
        capacity_scale=ctx.capacity_scale)


def _usable_share(ctx: Context) -> dict[str, float] | None:
    """GPU -> 1 - spot_headroom x the share of its inventory GPUs on spot nodes."""
    h = ctx.scenario.constraints.reliability.spot_headroom
    if ctx.inventory is None or h <= 0:
        return None
    spot: dict[str, list[int]] = {}
    for n in ctx.inventory.nodes:
        tot = spot.setdefault(n.gpu, [0, 0])
        tot[0] += n.gpus * n.spot
        tot[1] += n.gpus
    return {g: 1.0 - h * a / b for g, (a, b) in sorted(spot.items())}


def _nodes_per_tp(ctx: Context) -> dict[str, dict[int, int]] | None:
    """GPU -> {TP (GPUs per stage, tp x dp): inventory nodes with at least that many GPUs},
    when N+1 is asked for."""
    if ctx.inventory is None or not ctx.scenario.constraints.reliability.n_plus_one:
        return None
    out: dict[str, dict[int, int]] = {}
    for n in ctx.inventory.nodes:
        for tp in {c.shape.gpus_per_stage for c in ctx.candidates if c.shape.gpu == n.gpu}:
            per = out.setdefault(n.gpu, {})
            per[tp] = per.get(tp, 0) + (n.gpus >= tp)
    return out


def plan_scenario(rs: ResolvedScenario, catalog: Catalog, *, solver: str = "highs",
                  time_limit_s: float = 60.0,
                  progress: Callable[[str], None] | None = None) -> Plan:
    """Solve a resolved scenario; infeasible ones raise `Infeasible` with an explanation.
    Pools whose trace bursts no size of this plan serves in the TTFT budget are named in
    the plan's notes (`bursts.plan_bursts`)."""
    ctx = prepare(rs, catalog, progress=progress)
    return with_burst_notes(ctx, solve_context(ctx, solver=solver, time_limit_s=time_limit_s))


def with_burst_notes(ctx: Context, plan: Plan) -> Plan:
    """`plan` with a note per pool the fluid burst estimate says misses the TTFT percentile."""
    tr = ctx.resolved.trace
    if tr is None or tr.num_requests < 2 or not plan.pools:
        return plan
    found = [b.line(plan.slo["ttft_ms"]) for b in plan_bursts(
        plan, tr.input_tokens, tr.output_tokens, tr.arrival_s, ctx.perf) if b.misses]
    return plan.model_copy(update={"notes": plan.notes + found}) if found else plan


PLACEMENT_ROUNDS = 6      # sizing -> placement rounds when placement pushes back
SPARE_STEP = 0.02         # least share of a GPU type held back per round for spares


def check_objective(rs: ResolvedScenario) -> None:
    """The objective's own needs (max_goodput: a budget); a sweep checks them up front."""
    if rs.scenario.objective == "max_goodput" and \
            rs.scenario.constraints.budget_usd_per_hour is None:
        raise InputError("objective max_goodput needs constraints.budget_usd_per_hour",
                         file=rs.source, field="constraints.budget_usd_per_hour")


def solve_context(ctx: Context, candidates: Sequence[Candidate] | None = None, *,
                  solver: str = "highs", time_limit_s: float = 60.0,
                  label: str | None = None) -> Plan:
    """Size `ctx` (optionally over a subset of its candidates) and place it on its
    inventory; when placement pushes back, re-size without what it could not hold."""
    check_objective(ctx.resolved)
    cands = list(ctx.candidates if candidates is None else candidates)
    availability, rounds = dict(ctx.availability), []
    for _ in range(PLACEMENT_ROUNDS):
        problem = replace(problem_for(ctx, cands), availability=availability)
        reasons = precheck(problem, cands, ctx.dropped, ctx.scenario, ctx.perf.model.name)
        if reasons:
            raise Infeasible(rounds + reasons)
        out, simpler = solve_simplified(ctx, problem, solver, time_limit_s)
        if out.solution.has_solution:
            out, cands = settle_pool_sizes(ctx, cands, out, lambda cs: solve_problem(
                replace(problem_for(ctx, cs), availability=availability), solver,
                time_limit_s), lambda c, n: with_prefix_cache(
                ctx.perf, c, list(ctx.classes), ctx.resolved.slo, ctx.scenario.constraints.kv_link,
                ctx.scenario.constraints.allow_cross_vendor, ctx.prefix, n))
        if not out.solution.has_solution:
            if out.solution.status in (SolveStatus.ERROR, SolveStatus.NO_SOLUTION):
                raise Infeasible(rounds + [f"solver {out.solution.solver}: {out.solution.status} "
                                           f"{out.solution.message}".strip()])
            raise Infeasible(rounds + explain_infeasible(problem, solver, time_limit_s))
        plan = build_plan(ctx, out, label, simpler)
        if ctx.inventory is None:
            return plan
        try:
            placed = _place(ctx, plan, solver=solver, time_limit_s=time_limit_s)
        except PlacementInfeasible as e:
            if not e.blocked and not e.spare_gpus:
                raise Infeasible(rounds + e.reasons) from None
            # Two-stage sizing then placement: feed what placement could not hold back into
            # sizing (drop pools that cannot be placed at all, keep GPUs free for spares).
            rounds.append(f"placement round {len(rounds) + 1}: {'; '.join(e.reasons[:2])}")
            cands = [c for c in cands if pool_name(c) not in e.blocked]
            for g, n in e.spare_gpus.items():     # at least SPARE_STEP of the type per round
                step = math.ceil(SPARE_STEP * ctx.availability.get(g, 0))
                availability[g] = max(0, availability.get(g, 0) - max(n, step))
            continue
        if rounds:
            pl = placed.placement
            placed = placed.model_copy(update={"placement": pl.model_copy(update={
                "notes": [f"re-sized after {r}" for r in rounds] + pl.notes})})
        return placed
    raise Infeasible(rounds)


def place(ctx: Context, plan: Plan, *, solver: str = "highs",
          time_limit_s: float = 60.0) -> Plan:
    """Place a plan sized from `ctx` (a tuned one) on `ctx.inventory`; raises
    PlacementInfeasible when it does not fit."""
    return _place(ctx, plan, solver=solver, time_limit_s=time_limit_s)


def _place(ctx: Context, plan: Plan, *, solver: str, time_limit_s: float) -> Plan:
    """Place a plan solved from `ctx` on `ctx.inventory`, noting inventory GPUs left out."""
    s = ctx.scenario
    rel = s.constraints.reliability
    placed = place_plan(plan, ctx.inventory, kv_bytes_table(ctx.perf.model, plan),
                        reliability=Reliability(rel.n_plus_one, rel.spot_headroom),
                        solver=solver, time_limit_s=time_limit_s,
                        translation_us=ctx.perf.links.kv.cross_vendor_translation_us,
                        label=s.inventory)
    unused = sorted(set(ctx.inventory.gpus_by_type()) - set(ctx.prices))
    if unused:
        pl = placed.placement
        placed = placed.model_copy(update={"placement": pl.model_copy(update={
            "notes": pl.notes + [f"inventory GPUs not used (no price in sheet "
                                 f"{s.catalog.prices!r} or not in catalog.gpus): "
                                 f"{', '.join(unused)}"]})})
    return placed


def solve_simplified(ctx: Context, problem: Problem, solver: str, time_limit_s: float
                     ) -> tuple[Outcome, Simplification | None]:
    """Solve `problem`. When its pool cost or cap is on, first solve it without them (the
    unconstrained plan), then with them, started from that plan, and say what the simpler
    plan costs against it. When the unconstrained plan is as good under the terms (within
    the cap, GPU + pool cost no higher: the terms changed nothing), it is the one kept, so
    such plans are exactly what a solve without the terms gives, and nothing is recorded;
    likewise when the unconstrained solve finds no plan in time."""
    if not problem.simplifies:
        return solve_problem(problem, solver, time_limit_s), None
    free = solve_problem(replace(problem, pool_cost_usd_per_hour=0.0, max_pools_per_role=None),
                         solver, time_limit_s, warn=False)
    out = solve_problem(problem, solver, time_limit_s, start=free)
    if not out.solution.has_solution or not free.solution.has_solution:
        return out, None
    if out.missing == free.missing and _with_pool_cost(problem, free) <= \
            _with_pool_cost(problem, out) + 1e-6:
        return free, None
    k = ctx.scenario.constraints
    free_plan = build_plan(ctx, free)
    return out, Simplification(pool_cost_usd_per_hour=k.pool_cost_usd_per_hour,
                               max_pools_per_role=k.max_pools_per_role, pools=len(out.chosen),
                               unconstrained_cost_usd_per_hour=free_plan.cost_usd_per_hour,
                               unconstrained_pools=len(free.chosen),
                               unconstrained_mix=free_plan.mix())


def _with_pool_cost(p: Problem, out: Outcome) -> float:
    """GPU cost plus the pool cost of an outcome; infinite where it breaks the pool cap."""
    per_role: dict[str, int] = {}
    for ch in out.chosen:
        per_role[ch.candidate.role] = per_role.get(ch.candidate.role, 0) + 1
    if p.max_pools_per_role is not None and max(per_role.values(), default=0) > \
            p.max_pools_per_role:
        return math.inf
    return sizing_cost(out, p)


def build_plan(ctx: Context, out: Outcome, label: str | None = None,
               simplified: Simplification | None = None) -> Plan:
    s = ctx.scenario
    missing = set(out.missing)
    pools = []
    for ch in sorted(out.chosen, key=lambda c: (ROLES.index(c.candidate.role),
                                                c.candidate.key)):
        c = ch.candidate
        routes = [ClassRoute(workload_class=w, rate_rps=r,
                             predicted_ttft_ms=_num(c.per_class[w].ttft_ms),
                             predicted_tpot_ms=_num(c.per_class[w].tpot_ms),
                             batch=c.per_class[w].batch) for w, r in sorted(ch.rates.items())]
        loose = ctx.relaxed.get(c.key)
        routes += [ClassRoute(workload_class=w, rate_rps=r,
                              predicted_ttft_ms=_num(loose.per_class[w].ttft_ms),
                              predicted_tpot_ms=_num(loose.per_class[w].tpot_ms),
                              batch=loose.per_class[w].batch)
                   for w, r in sorted(ch.relaxed_rates.items())]
        routes.sort(key=lambda r: r.workload_class)
        pools.append(Pool(name=pool_name(c), role=c.role, gpu=c.shape.gpu,
                          vendor=c.vendor, tp=c.shape.tp, pp=c.shape.pp,
                          weight_dtype=c.shape.weight_dtype, kv_dtype=c.shape.kv_dtype,
                          ep=c.shape.ep, dp=c.shape.dp,
                          replicas=ch.replicas, gpus=ch.replicas * c.num_gpus,
                          cost_usd_per_hour=ch.replicas * c.price_usd_per_hour,
                          utilization=ch.utilization, routes=routes,
                          target_utilization=_sized_rho(out, ch)))
    demand = sum(w.rate_rps for w in ctx.classes)
    tok_s = out.scale * sum(w.rate_rps * (w.mean_input_tokens + w.mean_output_tokens)
                            for w in ctx.classes)
    out_tok_s = out.scale * sum(w.rate_rps * w.mean_output_tokens for w in ctx.classes)
    gpus_used = sorted({p.gpu for p in pools})
    cal_notes = [(f"{g}: default efficiencies (no measurement)"
                  if ctx.perf.uses_default_calibration(g)
                  else f"{g}: {ctx.perf.calibration(g).provenance.method}")
                 + f"; {ctx.perf.op_table_note(g)}" for g in gpus_used]
    sol = out.solution
    queueing = s.constraints.sizing == Sizing.QUEUEING
    notes = ["latencies are the perf model's service times (prefill + KV hand-off, decode "
             "step); queueing is bounded by " + (
                 "each pool's percentile capacity at its size (queueing sizing)" if queueing
                 else "the target utilization") + ", not simulated here"]
    if sol.status == SolveStatus.FEASIBLE:
        notes.append(f"solver stopped at its time limit: best plan found, gap {sol.gap}")
    if label:
        notes.append(label)
    return Plan(
        scenario=s.name, model=ctx.perf.model.name, status=sol.status,
        gap=sol.gap, solver=sol.solver, objective=s.objective, slo=s.slo.plan_dict(),
        pools=pools,
        classes=[ClassSummary(name=w.name, rate_rps=w.rate_rps,
                              mean_input_tokens=w.mean_input_tokens,
                              mean_output_tokens=w.mean_output_tokens,
                              p90_input_tokens=w.p90_input_tokens,
                              p90_output_tokens=w.p90_output_tokens,
                              misses_slo=w.name in missing, **_bins(w)) for w in ctx.classes],
        demand_rps=demand, served_rps=demand * out.scale, tokens_per_second=tok_s,
        output_tokens_per_second=out_tok_s,
        calibration_notes=cal_notes, notes=notes, hetplan_version=__version__,
        kv_link=s.constraints.kv_link,
        target_utilization=None if queueing else s.constraints.target_utilization,
        decode_target_utilization=None if queueing else s.constraints.decode_target_utilization,
        sizing=s.constraints.sizing,
        model_ref=s.model, engine=ctx.perf.limits,
        prefix_cache=prefix_plan(ctx.prefix, out, s.constraints.target_utilization,
                                 {w.name: w for w in ctx.classes}),
        simplification=simplified)


def _sized_rho(out: Outcome, ch) -> float | None:
    """U(n) / n of a pool sized by queueing (None under utilization sizing)."""
    curve = out.formulation.curves.get(ch.candidate.key)
    return None if curve is None else curve.at(ch.replicas) / ch.replicas


def pool_name(c: Candidate) -> str:
    """The plan's name for the pool of candidate `c` (role and shape)."""
    return f"{c.role}-{c.shape.label()}"


def _bins(w: WorkloadClass) -> dict:
    """A class's token bins, where it has them (ad-hoc classes may not)."""
    keys = ("input_lo", "input_hi", "output_lo", "output_hi")
    vals = {k: getattr(w, k, None) for k in keys}
    return {k: int(v) for k, v in vals.items() if v is not None}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x
