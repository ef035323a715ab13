"""Queueing sizing in the MILP: a candidate's load <= U(n), priced exactly with incremental
binaries (curves: `hetplan.slo_capacity`).

For a candidate with an exact part of K steps (K = min(curve steps, the candidate's upper
bound)), with z[k] = 1 when the pool has a k-th replica and t the replicas beyond K:

  size[c]:        n[c] = sum_k z[c,k] + t[c]
  order[c,k]:     z[c,k] >= z[c,k+1]          (a k+1-th replica only after a k-th)
  tail[c]:        t[c] <= (ub - K) z[c,K]     (replicas past K only once all K are there)
  capacity[c]:    load[c] <= share x (sum_k dU_k z[c,k] + slope t[c] - dU_max spare[c])

dU_k = U(k) - U(k - 1) grows with k (pooling), so without `order` the relaxation would fill
the cheap late steps first; with it the constraint is exact for n <= K and the tail is the
curve's linear lower bound. Straight-line curves (`PoolCurve.linear`) take one row, as the
utilization model does: load <= share x slope x (n - spare). N+1 spares: the pool must
carry its load on n - spare replicas; U(n) - U(n - s) <= s x dU_max, so subtracting
dU_max per spare is a safe (slightly conservative) linear stand-in.

Optional flow rows (valid inequalities, used by `staged.py`'s relaxations): class w's rate
on the pool is at most min(rate_w, mu_w x share x U(n)), written over the same binaries
as sum_k a_k z[c,k] (+ mu_w share slope t): a fraction of a large pool can no longer carry
a whole class, which charges the relaxation for opening a pool (its first, least loaded
replicas). They tighten the LP bound (63.4 -> 69.7 on the 20 x 32 bench instance, optimum
72.7) but slow HiGHS's own search, so the last MILP goes without them.
"""

from __future__ import annotations

from hetplan.milp.lp import LinearProgram
from hetplan.slo_capacity import PoolCurve


def replicas_bound(curve: PoolCurve | None, load: float, fallback: float) -> float:
    """Replicas that carry `load` on `curve` (the utilization model's `fallback` without
    one): the upper bound of the candidate's replica count."""
    return fallback if curve is None else float(curve.replicas_for(load))


def add_curve_capacity(lp: LinearProgram, key: str, n_var: int, load: dict[int, float],
                       curve: PoolCurve, share: float, ub: int,
                       spare_var: int | None = None,
                       rates: dict[int, float] | None = None
                       ) -> tuple[list[int], int | None]:
    """The rows of the module docstring for one candidate (`load`: x var -> 1 / mu, and
    any other terms of the capacity row's left-hand side; `rates`: x var -> its class's
    rate, the most it can carry, for the `flow` rows). Returns the step binaries z and the
    tail variable (None without one), for callers that add rows on them."""
    terms = dict(load)
    if spare_var is not None:
        terms[spare_var] = share * curve.max_increment()
    k_max = min(curve.steps, ub)
    if k_max == 0:
        terms[n_var] = -share * curve.tail_slope
        lp.add_constraint(f"capacity[{key}]", terms, "<=", 0.0)
        return [], None
    z = [lp.add_var(f"step[{key},{k}]", 0, 1, integer=True) for k in range(1, k_max + 1)]
    size = {n_var: 1.0, **{v: -1.0 for v in z}}
    inc = curve.increments()
    for k, v in enumerate(z):
        terms[v] = -share * inc[k]
        if k + 1 < len(z):
            lp.add_constraint(f"order[{key},{k + 1}]", {v: 1.0, z[k + 1]: -1.0}, ">=", 0.0)
    t = None
    if ub > k_max:
        t = lp.add_var(f"tail[{key}]", 0, ub - k_max)
        size[t] = -1.0
        terms[t] = -share * curve.tail_slope
        lp.add_constraint(f"tail[{key}]", {t: 1.0, z[-1]: -float(ub - k_max)}, "<=", 0.0)
    lp.add_constraint(f"size[{key}]", size, "==", 0.0)
    lp.add_constraint(f"capacity[{key}]", terms, "<=", 0.0)
    if rates:
        _flow_rows(lp, key, load, rates, z, inc, share, curve.tail_slope, t)
    return z, t


def _flow_rows(lp, key, load, rates, z, inc, share, tail_slope, t) -> None:
    """flow[c,w]: x[c,w] <= min(rate_w, mu U(n)) as sum_k a_k z[c,k] (+ mu slope t)."""
    for x, inv_mu in load.items():
        mu, rate = 1.0 / inv_mu, rates[x]
        row, carried = {x: 1.0}, 0.0
        for k, v in enumerate(z):
            a = min(rate, carried + mu * share * inc[k]) - carried
            if a <= 1e-9 * rate:        # the class fits by now (round-off left)
                break
            row[v] = -a
            carried += a
        if t is not None and carried < rate:
            row[t] = -mu * share * tail_slope
        lp.add_constraint(f"flow[{key},{x}]", row, "<=", 0.0)
