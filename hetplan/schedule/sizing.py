"""Queueing sizing of a solved schedule: each slot's pools checked against the planner's
percentile capacity U(n) and topped up with on-demand replicas where short.

Under queueing sizing (`constraints.sizing: queueing`, the planner's default) n replicas of a
candidate carry U(n) replica-equivalents of load with the SLO percentile met
(`hetplan.slo_capacity.pool_curves`, the curves `hetplan solve` prices; the sizing inputs are
the planner's own, `planner.problem_for(ctx).sizing`). U(n) is convex in n: one replica with
long service times carries far less than rho (prompts queue behind long prefills), a large
pool more. The schedule MILP sizes its pools on these curves when its problem carries them
(`ScheduleProblem.curves`, `curve_rows.py`, within the capacity below), so on its own
routes this check adds nothing; it stays as a safety net (for a schedule sized with the rho
row, or a solver's round-off past the tolerance) and reports what it added. After the MILP,
for every slot t and candidate c with replicas or routed load:

  load[c,t] = sum_w x[c,w,t] / mu[c,w]                     (the MILP's routes, kept)
  held[c,t] = U(N) x (N - (1 - s_c) N_spot) / N            (N: replicas over the tiers;
                                                           spot derated by s_c as in the MILP)

and, where the pool holds spot replicas, also

  held[c,t] <= U_slo(N - 1)                                (one spot replica down)

with U_slo at the SLO's own percentile: while a preempted spot replica is down (its warm-up
plus the reacquire time, 1-2% of the time per spot replica at the default rate) the pool
still meets the SLO. The derating alone is the expected loss, and a pool sized to it
carries ~1/N more than its N - 1 replicas can: on diurnal a 5-replica H100 prefill pool
sized that way met TTFT for 61-98% of the requests of a window with one of its spot
replicas down (seeds 0-4, 60 s windows), and the day's attainment fell below the static
peak plan's. Where load > held, the fewest replicas a with held(N + a) >= load are added:
first on committed GPUs of its type that the slot leaves idle (paid every slot, so free),
then on-demand (spot where the GPU has no on-demand price).
Their cost (replica-hours at the tier's price, plus the warm-ups of the starts they add,
re-counted over the pool's whole series) is reported apart as `queueing_top_up`. Committed
GPUs still idle after that run extra replicas of the slot's pools on their GPU type, the
most loaded under U first (`TopUp.idle_fill`): they cost nothing more and give the
percentile headroom (a slot sized exactly to U(n) meets its percentile only on average).

Assumptions: where it adds anything it is a post-solve repair, not an optimum under U (a
slot may be cheaper served by another shape than by topping this one up), and a top-up may
step past the change limits (counted in `TopUp.step_breaks`). Slots the MILP
sized above U(n) keep their replicas (no trim): the queueing formulas are least reliable for
large, busy pools (README, Queueing). A candidate with neither an on-demand nor a spot price
cannot be topped up; its shortfall is listed as unmet.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hetplan.planner import Context, pool_name, problem_for
from hetplan.schedule.formulation import ScheduleOutcome, ScheduleProblem
from hetplan.slo_capacity import Q_MAX, PoolCurve, pool_curves

TOP_UP_TIERS = ("committed", "on_demand", "spot")   # a top-up's tiers, in order of preference
LOAD_EPS = 1e-6     # load within this share of capacity counts as met (the MILP's rows
#                     hold to the solver's feasibility tolerance, 1e-7)


@dataclass(frozen=True)
class TopUpLine:
    """Replicas added to one pool in one slot."""

    slot: int
    pool: str
    tier: str                 # committed / on_demand / spot; "" when none could (unmet)
    added: int
    load: float               # replica-equivalents routed to the pool
    held_before: float        # what its replicas carried under U(n) before the top-up
    held_after: float


@dataclass(frozen=True)
class TopUp:
    lines: tuple[TopUpLine, ...]
    idle_fill: tuple[TopUpLine, ...]   # idle committed GPUs run as extra replicas (free)
    cost_usd: float           # replica-hours + warm-up change, the tiers' prices
    step_breaks: int          # (pool, slot) steps past the change limits after the top-up

    @property
    def replicas_added(self) -> int:
        return sum(x.added for x in self.lines)

    @property
    def unmet(self) -> list[TopUpLine]:
        return [x for x in self.lines if not x.tier]

    def to_dict(self) -> dict:
        return {"replicas_added": self.replicas_added, "cost_usd": self.cost_usd,
                "step_breaks": self.step_breaks, "unmet": len(self.unmet),
                "idle_committed_replicas": sum(x.added for x in self.idle_fill),
                "lines": [x.__dict__ for x in self.lines],
                "idle_fill": [x.__dict__ for x in self.idle_fill]}


def schedule_curves(ctx: Context, problem: ScheduleProblem,
                    percentile: float | None = None) -> dict[str, PoolCurve]:
    """Candidate key -> U(n) under the planner's queueing sizing inputs for this context
    (every profile slot has demand in every class, so the classes the curves see are the
    context's), at `percentile` instead of the SLO's when given (`ScheduleSpec`)."""
    sizing = problem_for(ctx, problem.candidates).sizing
    if sizing is None:
        raise ValueError("schedule_curves needs constraints.sizing: queueing")
    if percentile is not None:
        sizing = replace(sizing, q=min(percentile / 100.0, Q_MAX))
    return pool_curves(problem.candidates, ctx.classes, sizing)


def held(curve: PoolCurve, replicas: int, spot: int, spot_share: float,
         down: PoolCurve | None = None) -> float:
    """Load `replicas` (of which `spot` are spot, each worth `spot_share`) carry under U;
    with spot replicas and `down` (U at the SLO's percentile), no more than `down` carries
    on the replicas left while one spot replica is down (module docstring)."""
    if replicas <= 0:
        return 0.0
    load = curve.at(replicas) * (replicas - (1.0 - spot_share) * spot) / replicas
    return min(load, down.at(replicas - 1)) if spot > 0 and down is not None else load


def spot_down_curves(ctx: Context, problem: ScheduleProblem, curves: dict[str, PoolCurve],
                     percentile: float | None) -> dict[str, PoolCurve]:
    """U(n) at the SLO's own percentile for the one-spot-replica-down check: `curves`
    themselves when they are at it (`percentile` None)."""
    return curves if percentile is None else schedule_curves(ctx, problem)


def _starts(series: list[int], prev) -> list[int]:
    """Replicas started per slot (`prev(t)`: the slot before t, None when there is none)."""
    return [max(0, n - (series[p] if (p := prev(t)) is not None else 0))
            for t, n in enumerate(series)]


def queueing_top_up(out: ScheduleOutcome, curves: dict[str, PoolCurve],
                    down: dict[str, PoolCurve] | None = None
                    ) -> tuple[ScheduleOutcome, TopUp]:
    """`out` with every slot's pools sized up to U(n) at their routed load, and to
    `down` (U at the SLO's percentile) with one spot replica down (module docstring), and
    what was added. `down` None: no check with a spot replica down."""
    f = out.formulation
    p = f.p
    vals = out.solution.values
    replicas = {key: list(r) for key, r in out.replicas.items()}
    lines: list[TopUpLine] = []
    fill: list[TopUpLine] = []
    by_key = {c.key: c for c in p.candidates}

    def now_held(c, t: int) -> float:
        return _held_now(p, f, curves[c.key], replicas, c, t,
                         None if down is None else down[c.key])

    for t in range(p.num_slots):
        idle = dict(out.committed_gpus)
        for (key, k), r in replicas.items():
            if k == "committed":
                c = by_key[key]
                idle[c.shape.gpu] -= c.num_gpus * r[t]
        pools = []                     # (candidate, load) of the slot's loaded pools
        for i, c in enumerate(p.candidates):
            load = sum(vals[f.x[i, w, t]] / c.capacity(w) for w in p.class_names
                       if (i, w, t) in f.x)
            if c.key in curves and load > LOAD_EPS:
                pools.append((c, load))
        for c, load in pools:
            before = now_held(c, t)
            after = before
            for tier in TOP_UP_TIERS:
                if tier not in f.kinds(c):
                    continue
                add, start = 0, after
                while after < load - LOAD_EPS * max(1.0, load) and (
                        tier != "committed" or idle.get(c.shape.gpu, 0) >= c.num_gpus):
                    replicas.setdefault((c.key, tier), [0] * p.num_slots)[t] += 1
                    idle[c.shape.gpu] = idle.get(c.shape.gpu, 0) - c.num_gpus * (
                        tier == "committed")
                    add += 1
                    after = now_held(c, t)
                if add:
                    lines.append(TopUpLine(t, pool_name(c), tier, add, load, start, after))
            if after < load - LOAD_EPS * max(1.0, load):
                lines.append(TopUpLine(t, pool_name(c), "", 0, load, before, after))
        while True:                    # idle committed GPUs: the most loaded pool first
            fits = [(load / max(now_held(c, t), 1e-12),
                     c.key, c, load) for c, load in pools
                    if "committed" in f.kinds(c) and idle.get(c.shape.gpu, 0) >= c.num_gpus]
            if not fits:
                break
            _, _, c, load = max(fits)
            before = now_held(c, t)
            replicas.setdefault((c.key, "committed"), [0] * p.num_slots)[t] += 1
            idle[c.shape.gpu] -= c.num_gpus
            fill.append(TopUpLine(t, pool_name(c), "committed", 1, load, before,
                                  now_held(c, t)))
    cost, slot_cost = _top_up_cost(out, replicas)
    new = replace(out, replicas=dict(sorted(replicas.items())),
                  cost_usd={**out.cost_usd, "queueing_top_up": cost}, slot_cost_usd=slot_cost)
    return new, TopUp(tuple(lines), _merge(fill), cost, _step_breaks(p, f, replicas))


def _held_now(p: ScheduleProblem, f, curve: PoolCurve, replicas, c, t: int,
              down: PoolCurve | None) -> float:
    """What c's replicas in slot t carry under U (spot derated, and with one down)."""
    n = {k: replicas.get((c.key, k), [0] * p.num_slots)[t] for k in f.kinds(c)}
    return held(curve, sum(n.values()), n.get("spot", 0), p.spot_capacity_share(c), down)


def _merge(fill: list[TopUpLine]) -> tuple[TopUpLine, ...]:
    """One line per (slot, pool) of the idle fill: its first capacity, its last."""
    out: dict[tuple[int, str], TopUpLine] = {}
    for x in fill:
        y = out.get((x.slot, x.pool))
        out[x.slot, x.pool] = x if y is None else replace(y, added=y.added + 1,
                                                           held_after=x.held_after)
    return tuple(out.values())


def _top_up_cost(out: ScheduleOutcome, replicas: dict[tuple[str, str], list[int]]
                 ) -> tuple[float, list[float]]:
    """The added rented replica-hours and the change in their warm-ups, in total and per
    slot (committed replicas cost nothing more: their GPUs are paid every slot)."""
    f = out.formulation
    p = f.p
    slot = list(out.slot_cost_usd)
    by_key = {c.key: c for c in p.candidates}
    total = 0.0
    for (key, tier), now in replicas.items():
        was = out.replicas.get((key, tier), [0] * p.num_slots)
        if now == was or tier == "committed":
            continue
        c = by_key[key]
        price = p.price(c, tier)
        warm_h = p.warmup_h[key] if p.warmup else 0.0
        started_now, started_was = _starts(now, f._prev), _starts(was, f._prev)
        for t in range(p.num_slots):
            usd = price * ((now[t] - was[t]) * float(p.slot_hours[t])
                           + (started_now[t] - started_was[t]) * warm_h)
            slot[t] += usd
            total += usd
    return total, slot


def _step_breaks(p: ScheduleProblem, f, replicas: dict[tuple[str, str], list[int]]) -> int:
    """(candidate, slot) pairs whose change from the slot before passes the limit."""
    if p.max_step_replicas is None:
        return 0
    breaks = 0
    for c in p.candidates:
        tot = [sum(replicas.get((c.key, k), [0] * p.num_slots)[t] for k in f.kinds(c))
               for t in range(p.num_slots)]
        for t in range(p.num_slots):
            prev = f._prev(t)
            if prev is not None and abs(tot[t] - tot[prev]) > (
                    p.max_step_replicas + p.max_step_share * tot[prev] + 1e-9):
                breaks += 1
    return breaks


def with_top_up(out: ScheduleOutcome, curves: dict[str, PoolCurve] | None,
                down: dict[str, PoolCurve] | None = None
                ) -> tuple[ScheduleOutcome, TopUp | None]:
    """`queueing_top_up` where the schedule is sized by queueing (`curves` given)."""
    return (out, None) if curves is None else queueing_top_up(out, curves, down)
