"""The simulator-in-the-loop tuner behind `hetplan solve --validate` (issue 16, item 2).

Each round simulates one plan on the scenario's workload. A class that misses its percentile
blames the pools that served it and missed on its requests: TPOT misses blame its decode and
colocated pools, TTFT misses its colocated pools and, per disaggregated request, the prefill
pool when the prompt's KV reached the decode pool later than the decode pool then took to
start it, else the decode pool (its batch was full). A pool is blamed when its own
attainment on that class is below the percentile (below 1 - (1 - q) / 2 on its side of a
split TTFT), so a class split over pools blames the ones dragging it down. Per pool the tuner keeps `lo` (most replicas seen blamed) and `hi`
(fewest seen not blamed) and moves every pool at once:
- blamed: grow (x GROW_FAR when its attainment is under half the target, else x GROW, at
  least +1) until a count passes, then bisect between lo and hi;
- not blamed (slack): shrink to SHRINK x replicas (at least -1, never below 1) until a count
  is blamed, then bisect; pools thus converge to hi = lo + 1.
Routing (each class's rate per pool) stays the MILP's, so a pool's load is fixed while its
replica count moves. When the counts converge (or the phase's rounds run out) the tuner
learns a capacity scale per pool, (planned load / replicas it needed) / rho, and re-solves the
MILP with it (candidates not in the plan take their role's load-weighted geometric mean, a
role absent from the plan the smallest of those), so the mix may change; a new mix is
searched the same way. Under queueing sizing the re-solve sizes by utilization with those
scales (`learnt_context`): the queueing curves take no scale, so the re-solve would
otherwise return the first plan. Deterministic (seeded simulation, fixed order). With an inventory, replicas the placement added as spares (N+1, spot headroom) are
left out of the search and added back when the chosen plan is placed. The result is the
cheapest plan the simulator passed (with an inventory: the cheapest once placed, spares
included; `repair.cheapest_placed`); when none passed, the one with
the best worst-class attainment, with the reason (a blamed pool whose attainment stopped
rising while it doubled, or the rounds ran out).
Rounds left at the end polish the cheapest passing plan one replica at a time (`polish`).
Assumption: pools interact weakly (a decode pool's queue delays first tokens too); a count
that contradicts the bounds resets them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from hetplan.enums import Role, Sizing
from hetplan.errors import Infeasible
from hetplan.plan import Plan
from hetplan.planner import Context, solve_context
from hetplan.simulate.engine import RunResult
from hetplan.simulate.metrics import SimReport, latencies_ms
from hetplan.simulate.router import class_routes
from hetplan.simulate.sim import SimOptions, simulate_plan
from hetplan.workload import Trace

GROW = 1.5            # blamed pool, attainment >= half the target
GROW_FAR = 2.0        # blamed pool, attainment < half the target
SHRINK = 0.75         # pool with slack, no failing count known yet
SATURATED = 0.02      # attainment gain (absolute) below which doubling "does not help"
MAX_GROWTH = 64       # a pool never grows past this multiple of its first count
MAX_RESOLVES = 2      # MILP re-solves with learnt scales
MIN_SCALE = 0.05


@dataclass
class Trial:
    """One simulated plan."""

    round: int
    phase: str
    plan: Plan
    report: SimReport
    result: RunResult
    blamed: dict[str, tuple[str, float]]      # pool -> (metric, its worst attainment)
    change: str

    @property
    def passed(self) -> bool:
        return self.report.slo_met

    @property
    def cost(self) -> float:
        return self.plan.cost_usd_per_hour

    def worst(self, metric: str) -> float:
        judged = [c for c in self.report.classes if c.decides] or self.report.classes
        return min((getattr(c, f"attainment_{metric}") for c in judged), default=1.0)


@dataclass
class PoolBounds:
    lo: int = 0                    # most replicas seen blamed (0: none)
    hi: int | None = None          # fewest seen not blamed
    first: int = 1
    history: list[tuple[int, float]] = field(default_factory=list)   # (replicas, attainment)
    saturated: str = ""


def counts(plan: Plan) -> dict[str, int]:
    return {p.name: p.replicas for p in plan.pools}


def trim_growth(out: dict[str, int], base: dict[str, int], names: list[str],
                over: Callable[[], bool]) -> bool:
    """While over(), take back one replica of growth (`out` above `base`) from the pool of
    `names` grown most (ties: the last name); in place. True if any was taken back."""
    cut = False
    while over():
        growing = [n for n in names if out[n] > base[n]]
        if not growing:
            break
        out[max(growing, key=lambda n: (out[n] - base[n], n))] -= 1
        cut = True
    return cut


def with_replicas(plan: Plan, new: dict[str, int]) -> Plan:
    """The plan with pool replica counts changed; routes (hence loads) kept, utilization,
    GPUs and cost rescaled; an inventory placement is dropped (it no longer matches)."""
    pools = []
    for p in plan.pools:
        n = new.get(p.name, p.replicas)
        pools.append(p.model_copy(update={
            "replicas": n, "gpus": p.gpus // p.replicas * n,
            "cost_usd_per_hour": p.cost_usd_per_hour / p.replicas * n,
            "utilization": p.utilization * p.replicas / n}))
    return plan.model_copy(update={"pools": pools, "placement": None})


def base_plan(plan: Plan) -> Plan:
    """The plan without the spare replicas its placement added for N+1 / spot headroom (the
    counts the MILP sized to carry the load; placement adds the spares back)."""
    spares = plan.placement.spare_replicas if plan.placement else {}
    if not spares:
        return plan
    return with_replicas(plan, {p.name: p.replicas - spares.get(p.name, 0) for p in plan.pools})


def blame(plan: Plan, rep: SimReport, res: RunResult) -> dict[str, tuple[str, float]]:
    """Pool -> (metric, attainment) for the pools the failing classes blame (docstring)."""
    if rep.slo_met:
        return {}
    q = float(plan.slo.get("percentile", 90.0)) / 100
    ttft, tpot, _, ok = latencies_ms(res)
    meets = {"ttft": ok & (ttft <= plan.slo["ttft_ms"]),
             "tpot": ok & (np.isnan(tpot) | (tpot <= plan.slo["tpot_ms"]))}
    routes = class_routes(plan)        # res.workload_class indexes these, as simulate_plan
    names = [c.name for c in plan.classes if c.name in routes]
    judged = [c for c in rep.classes if c.decides]
    if judged:
        failing = [(c.name, m) for c in judged for m in ("ttft", "tpot")
                   if getattr(c, f"attainment_{m}") < q]
    else:           # the verdict is on all requests together
        failing = [(None, m) for m in ("ttft", "tpot")
                   if getattr(rep, f"slo_attainment_{m}") < q]
    # a disaggregated TTFT miss is the prefill side's when the KV took longer to reach the
    # decode pool than the decode pool then took to start it, else the decode side's
    kv = res.kv_ready_s
    decode_side = (kv >= 0) & ((res.first_token_s < 0) |
                               (res.first_token_s - kv >= kv - res.arrival_s))
    missed = ~meets["ttft"]
    side_q = 1 - (1 - q) / 2
    out: dict[str, tuple[str, float]] = {}
    for name, metric in failing:
        of_class = (np.ones(res.arrival_s.size, dtype=bool) if name is None else
                    res.workload_class == names.index(name))
        for i, p in enumerate(plan.pools):
            if metric == "tpot" and p.role == Role.PREFILL:
                continue
            stage = res.decode_pool if p.role == Role.DECODE else res.first_pool
            on = of_class & (stage == i)
            if not on.any():
                continue
            if metric == "tpot":
                a, need = float(meets["tpot"][on].mean()), q
            elif p.role == Role.DECODE:
                a, need = 1 - float((missed & decode_side)[on].mean()), side_q
            else:
                split = (kv[on] >= 0).any()
                a = 1 - float((missed & ~decode_side)[on].mean())
                need = side_q if split else q
            if a < need and a < out.get(p.name, (metric, 2.0))[1]:
                out[p.name] = (metric, a)
    return out


def next_counts(plan: Plan, blamed: dict[str, tuple[str, float]], bounds: dict[str, PoolBounds],
                q: float, room: Callable[[dict[str, int]], dict[str, int]]) -> dict[str, int]:
    """Update the bounds from one trial and propose the next counts (module docstring)."""
    cur, out = counts(plan), {}
    for name, n in cur.items():
        b = bounds.setdefault(name, PoolBounds(first=n))
        if name in blamed:
            att = blamed[name][1]
            _note_saturation(b, n, att)
            b.lo = max(b.lo, n)
            if b.hi is not None and b.hi <= b.lo:
                b.hi = None
            if b.saturated:
                out[name] = n
            elif b.hi is not None:
                out[name] = math.ceil((b.lo + b.hi) / 2)
            else:
                grow = GROW_FAR if att < q / 2 else GROW
                out[name] = min(max(n + 1, math.ceil(n * grow)), b.first * MAX_GROWTH)
        else:
            b.hi = n if b.hi is None else min(b.hi, n)
            if b.lo >= b.hi:
                b.lo = 0
            target = (b.lo + b.hi) // 2 if b.lo else min(b.hi - 1, math.floor(b.hi * SHRINK))
            out[name] = max(b.lo + 1, target, 1)
    return room(out)


def _note_saturation(b: PoolBounds, n: int, att: float) -> None:
    """Blamed at n with attainment att: saturated when at least half as many replicas did as
    well within SATURATED."""
    for m, a in b.history:
        if 2 * m <= n and att - a < SATURATED:
            moved = "raised its attainment only" if att > a else "did not raise its attainment:"
            b.saturated = f"{m} -> {n} replicas {moved} from {a:.1%} to {att:.1%}"
    b.history.append((n, att))


def learnt_scales(ctx: Context, first: Plan, bounds: dict[str, PoolBounds]) -> dict[str, float]:
    """Candidate key -> capacity scale (module docstring) for the pools of `first` and, per
    role, the load-weighted geometric mean for the role's other candidates."""
    k = ctx.scenario.constraints
    by_name = {f"{c.role}-{c.shape.label()}": c for c in ctx.candidates}
    scales: dict[str, float] = {}
    per_role: dict[str, list[tuple[float, float]]] = {}
    for p in first.pools:
        b, c = bounds.get(p.name), by_name.get(p.name)
        if b is None or c is None:
            continue
        rho = (k.decode_target_utilization if p.role == Role.DECODE and
               k.decode_target_utilization is not None else k.target_utilization)
        load = p.utilization * p.replicas
        need = b.hi if b.hi is not None else b.lo + 1
        s = load / need / rho
        if b.lo == 0:              # never failed: it may do with less than we tried, so at
            s = max(s, first.pool_target_utilization(p) / rho)   # least the rho it was sized at
        s = min(max(s, MIN_SCALE), 1.0 / rho)
        scales[c.key] = s
        per_role.setdefault(p.role, []).append((load, s))
    role_scale = {}
    for role, w in per_role.items():
        tot = sum(x for x, _ in w)
        role_scale[role] = (math.exp(sum(x * math.log(s) for x, s in w) / tot) if tot > 0
                            else 1.0)
    unknown = min(role_scale.values(), default=1.0)   # a role not in the plan: the tightest
    for c in ctx.candidates:
        if c.key not in scales:
            scales[c.key] = role_scale.get(c.role, unknown)
    return scales


def learnt_context(ctx: Context, plan: Plan, bounds: dict[str, PoolBounds]) -> Context:
    """The context to re-solve with the capacities learnt on `plan`. Queueing sizing's
    curves ignore a capacity scale (they size from the SLO percentile, not one rho), so the
    re-solve then uses the utilization model at the scenario's rho: the learnt scale makes
    a simulated pool's rho x scale the utilization its needed replicas carried."""
    k = ctx.scenario.constraints
    if k.sizing == Sizing.QUEUEING:
        ctx = ctx.with_utilization(k.target_utilization, k.decode_target_utilization)
    return replace(ctx, capacity_scale=learnt_scales(ctx, plan, bounds))


class Tuner:
    """Runs the rounds; `trials` lists every simulated plan in order."""

    def __init__(self, ctx: Context, trace: Trace, *, solver: str, time_limit_s: float,
                 max_rounds: int, opts: SimOptions,
                 on_trial: Callable[[Trial], None] | None = None):
        self.ctx, self.trace, self.opts = ctx, trace, opts
        self.solver, self.time_limit_s = solver, time_limit_s
        self.max_rounds, self.on_trial = max_rounds, on_trial
        self.trials: list[Trial] = []
        self.seen: set[tuple] = set()
        self.first: Plan | None = None
        self.stopped_resolve = ""
        self.phase_bounds: list[dict[str, PoolBounds]] = []   # per searched plan

    def simulate(self, plan: Plan, phase: str, change: str) -> Trial:
        rep, res = simulate_plan(plan, self.trace, self.ctx.perf, self.opts)
        t = Trial(len(self.trials) + 1, phase, plan, rep, res, blame(plan, rep, res), change)
        self.trials.append(t)
        self.seen.add(_key(plan))
        if self.on_trial:
            self.on_trial(t)
        return t

    def rounds_left(self) -> int:
        return self.max_rounds - len(self.trials)

    def room(self, plan: Plan) -> Callable[[dict[str, int]], dict[str, int]]:
        """Clamp proposed counts to the GPUs available per type (growth trimmed by
        `trim_growth` until it fits)."""
        avail, base = self.ctx.availability, counts(plan)

        def clamp(new: dict[str, int]) -> dict[str, int]:
            out = dict(new)
            for g, cap in sorted(avail.items()):
                per = {p.name: p.gpus // p.replicas for p in plan.pools if p.gpu == g}
                trim_growth(out, base, list(per),
                            lambda: sum(out[n] * k for n, k in per.items()) > cap)
            return out
        return clamp

    def search(self, start: Plan, phase: str, rounds: int, change: str) -> dict[str, PoolBounds]:
        """Per-pool bisection from `start` for at most `rounds` simulations."""
        q = float(start.slo.get("percentile", 90.0)) / 100
        bounds: dict[str, PoolBounds] = {}
        plan, used = start, 0
        while used < rounds and self.rounds_left() > 0:
            t = self.simulate(plan, phase, change)
            used += 1
            new = next_counts(plan, t.blamed, bounds, q, self.room(plan))
            if new == counts(plan):
                break
            nxt = with_replicas(plan, new)
            if _key(nxt) in self.seen:     # revisiting: the bounds are settled enough
                break
            change = ", ".join(f"{n} {plan_n}->{new[n]}" for n, plan_n in counts(plan).items()
                               if new[n] != plan_n)
            plan = nxt
        self.phase_bounds.append(bounds)
        return bounds

    def run(self) -> Plan:
        """All phases; returns the first (MILP) plan. Read the outcome from `trials`."""
        ctx = self.ctx
        first = solve_context(ctx, solver=self.solver, time_limit_s=self.time_limit_s)
        self.first = first
        plan, phase = base_plan(first), "plan"
        reserve = self.max_rounds // 4                  # kept for the polish
        for resolve in range(MAX_RESOLVES + 1):
            share = max(1, (self.rounds_left() - reserve) * 3 // 4)
            label = "MILP" + (" with learnt scales" if resolve else "") + (
                " (without placement spares)" if plan.placement is None and
                first.placement is not None else "")
            bounds = self.search(plan, phase, share, label)
            if self.rounds_left() <= reserve:
                break
            scaled = learnt_context(ctx, plan, bounds)
            try:
                plan = solve_context(scaled, solver=self.solver, time_limit_s=self.time_limit_s)
            except Infeasible as e:        # an infeasible re-solve ends the search
                self.stopped_resolve = f"re-solve with learnt scales failed: {e}"
                break
            plan = base_plan(plan)
            if _key(plan) in self.seen:
                break
            phase = f"re-solve {resolve + 1}"
        self.polish()
        return first

    def polish(self) -> None:
        """With the rounds left, per mix (the plans sharing one routing), cheapest mix first:
        from its cheapest passing plan take one replica off one pool (dearest replica first)
        and keep it when the simulator still passes; a mix is done after a pass over its
        pools that removes nothing. Undoes what joint moves over-attributed (a pool blamed
        in a round where several pools were short)."""
        mixes: dict[tuple, Plan] = {}
        for t in sorted((t for t in self.trials if t.passed), key=lambda t: (t.cost, t.round)):
            mixes.setdefault(_mix(t.plan), t.plan)
        for best in mixes.values():
            while self.rounds_left() > 0:
                nxt = self._polish_step(best)
                if nxt is None:
                    break
                best = nxt

    def _polish_step(self, best: Plan) -> Plan | None:
        """The first single-replica removal from `best` that passes, or None."""
        for p in sorted(best.pools, key=lambda p: (-p.cost_usd_per_hour / p.replicas, p.name)):
            if p.replicas <= 1 or self.rounds_left() <= 0:
                continue
            nxt = with_replicas(best, {p.name: p.replicas - 1})
            if _key(nxt) in self.seen:
                continue
            if self.simulate(nxt, "polish", f"{p.name} {p.replicas}->{p.replicas - 1}").passed:
                return nxt
        return None


def _mix(plan: Plan) -> tuple:
    return tuple(sorted((p.name, tuple((r.workload_class, round(r.rate_rps, 9))
                                       for r in p.routes)) for p in plan.pools))


def _key(plan: Plan) -> tuple:
    return tuple(sorted((p.name, p.replicas, tuple((r.workload_class, round(r.rate_rps, 9))
                                                   for r in p.routes)) for p in plan.pools))
