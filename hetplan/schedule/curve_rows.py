"""Queueing sizing inside the schedule MILP: each slot's pool carries its load within the
capacity the top-up checks (`sizing.held`), written on binaries that pick the slot's
replica count.

For candidate c with curve U (at the schedule's sizing percentile), the SLO-percentile curve
U_d (the one-spot-replica-down check; U itself when no other percentile is asked), spot
capacity share s and slot t, with N[c,t] = sum_k n[c,k,t] (the replicas over the tiers) and
w[c,t,n] = 1 when the pool has exactly n <= K_t replicas (n = K_t: at least K_t):

  one_size[c,t]:  sum_n w[c,t,n] <= 1
  size[c,t]:      N[c,t] = sum_n n w[c,t,n] + r[c,t],   tail[c,t]: r <= (ub - K_t) w[c,t,K_t]
  capacity[c,t]:  load[c,t] + (1 - s) dU_max n[c,spot,t] <= sum_n U(n) w[c,t,n] + m r[c,t]
  spot_down[c,t]: load[c,t] <= sum_n U_d(n - 1) w[c,t,n] + m_d r[c,t] + M_c (1 - y[c,t]),
                  n[c,spot,t] <= ub y[c,t]

(m, m_d: linear lower bounds of U and U_d past K_t, `lower_tail`), so load <= U(N) exactly
for N <= K_t. These are the integer points of `milp.pool_sizing`'s incremental binaries
(z_k = 1 with a k-th replica, z_k >= z_(k+1)) with the same LP relaxation: U is convex
(increments grow with pooling), so both relax to the chord, U(K_t) / K_t per replica. But in
that relaxation the incremental chain leaves all K_t steps of a pool fractional (equal),
the choice of N one: 542 fractional binaries against 2,530 on the week bench, each of
which HiGHS probes in its root cut round (implied-bound separation), which took 33 s there
against ~6 s with this form, too long between two checks of its time limit.

`planned_held` states the capacity these rows give a pool; it never exceeds `sizing.held`
(U(N)/N <= dU_max, the increment of U at most; the row is exact for U_d), so the post-solve
top-up finds nothing to add where the MILP's routes are kept. K_t, the exact steps of slot
t, is the fewest replicas that carry all of the slot's demand the candidate can serve under
`planned_held` with every replica spot (beyond it the rows use a linear lower bound of the
curve, `lower_tail`), so low slots take few binaries and the truncation never binds.
"""
from __future__ import annotations

from hetplan.milp.lp import LinearProgram
from hetplan.slo_capacity import PoolCurve


def planned_held(curve: PoolCurve, replicas: int, spot: int, spot_share: float,
                 down: PoolCurve | None = None) -> float:
    """Load `replicas` (of which `spot` are spot) carry under the MILP's rows (module
    docstring): U(N) less (1 - s) dU_max per spot replica and, with spot replicas and
    `down`, at most U_d(N - 1)."""
    if replicas <= 0:
        return 0.0
    load = curve.at(replicas) - (1.0 - spot_share) * spot * curve.max_increment()
    return min(load, down.at(replicas - 1)) if spot > 0 and down is not None else load


def exact_steps(curve: PoolCurve, load: float, spot_share: float,
                down: PoolCurve | None) -> int:
    """K_t: the fewest replicas, all spot, that carry `load` under `planned_held` (at most
    the curve's exact steps)."""
    for n in range(1, curve.steps + 1):
        if planned_held(curve, n, n, spot_share, down) >= load:
            return n
    return curve.steps


def lower_tail(curve: PoolCurve, k: int) -> float:
    """The steepest slope m with U(k) + m (n - k) <= U(n) for every n > k (the linear
    stand-in for U past k exact steps)."""
    if k >= curve.steps:
        return curve.tail_slope
    return min(curve.tail_slope, *((curve.at(j) - curve.at(k)) / (j - k)
                                   for j in range(k + 1, curve.steps + 1)))


def truncated(curve: PoolCurve, k: int) -> PoolCurve:
    """`curve` exact for n <= k, `lower_tail` beyond: never above it."""
    return PoolCurve(tuple(curve.at(n) for n in range(k + 1)), lower_tail(curve, k))


def add_slot_rows(f, i: int, t: int, load: dict[int, float], curve: PoolCurve,
                  down: PoolCurve | None, max_load: float) -> tuple:
    """The rows of the module docstring for candidate i in slot t of the schedule
    formulation `f` (`load`: x var -> 1 / mu). Returns (N var, w vars (w[n - 1]: exactly
    n replicas), tail var or None, y var or None), what `starts.implied_start` fills."""
    p, lp = f.p, f.lp
    c = p.candidates[i]
    key = f"{c.key},{t}"
    ub = f.ub[i]
    share = p.spot_capacity_share(c) if (i, "spot", t) in f.n else 1.0
    k = min(exact_steps(curve, max_load, share, down), ub)
    total = lp.add_var(f"replicas[{key}]", 0, ub)
    lp.add_constraint(f"replicas[{key}]", {total: 1.0, **{v: -1.0 for v in f.total(i, t)}},
                      "==", 0.0)
    terms = dict(load)
    if (i, "spot", t) in f.n:
        terms[f.n[i, "spot", t]] = (1.0 - share) * curve.max_increment()
    z, tail = _size_rows(lp, key, total, terms, truncated(curve, k), ub)
    y = None
    if (i, "spot", t) in f.n and down is not None:
        y = lp.add_var(f"spot_used[{key}]", 0, 1, integer=True)
        lp.add_constraint(f"spot_used[{key}]", {f.n[i, "spot", t]: 1.0, y: -float(ub)},
                          "<=", 0.0)
        _spot_down_row(lp, key, load, total, z, tail, y, truncated(curve, k),
                       truncated(down, k), k, ub)
    return total, z, tail, y


def _size_rows(lp: LinearProgram, key: str, total: int, terms: dict[int, float],
               cap: PoolCurve, ub: int) -> tuple[list[int], int | None]:
    """one_size, size, tail and capacity (module docstring) for the pool `key` with N var
    `total` and capacity-row terms `terms`, on `cap` (U exact for its steps, linear past
    them); a curve without exact steps is one row, terms <= slope x N. Returns (w, r)."""
    if cap.steps == 0 or ub == 0:
        lp.add_constraint(f"capacity[{key}]", terms | {total: -cap.tail_slope}, "<=", 0.0)
        return [], None
    k = min(cap.steps, ub)
    w = [lp.add_var(f"size_is[{key},{n}]", 0, 1, integer=True) for n in range(1, k + 1)]
    lp.add_constraint(f"one_size[{key}]", {v: 1.0 for v in w}, "<=", 1.0)
    size = {total: 1.0, **{v: -float(n) for n, v in enumerate(w, start=1)}}
    row = terms | {v: cap.at(0) - cap.at(n) for n, v in enumerate(w, start=1)}
    tail = None
    if ub > k:
        tail = lp.add_var(f"tail[{key}]", 0, ub - k)
        size[tail] = -1.0
        row[tail] = -cap.tail_slope
        lp.add_constraint(f"tail[{key}]", {tail: 1.0, w[-1]: -float(ub - k)}, "<=", 0.0)
    lp.add_constraint(f"size[{key}]", size, "==", 0.0)
    lp.add_constraint(f"capacity[{key}]", row, "<=", 0.0)
    return w, tail


def _spot_down_row(lp, key, load, total, z, tail, y, cap: PoolCurve, short: PoolCurve,
                   k: int, ub: int) -> None:
    """spot_down[c,t] on the steps of the capacity row (`cap`: U as that row has it,
    `short`: U_d cut at the same k steps): load <= U_d(N - 1) + big (1 - y)."""
    row, const = dict(load), 0.0
    if z:
        inc = short.increments()
        slope = min(short.tail_slope, inc[-1])      # past k: below U_d(N - 1) (convex)
        row |= {v: short.at(0) - short.at(n - 1) for n, v in enumerate(z, start=1)}
        if tail is not None:
            row[tail] = -slope
        shifted = lambda n: (short.at(n - 1) if n <= k  # noqa: E731
                             else short.at(k - 1) + slope * (n - k))
    else:                                           # a straight line: U_d(N - 1) = m (N - 1)
        slope = short.tail_slope
        row[total], const = -slope, -slope
        shifted = lambda n: slope * (n - 1)     # noqa: E731
    # the slack where no spot replica is held: the most the capacity row allows beyond the
    # rule (both are linear past k, so n <= k + 1 and n = ub cover it)
    big = max([0.0, *(cap.at(n) - shifted(n) for n in {*range(1, k + 2), ub} if 1 <= n <= ub)])
    row[y] = big
    lp.add_constraint(f"spot_down[{key}]", row, "<=", big + const)
