"""Queueing formulas for SLO-percentile pool sizing (issue 16, item 1).

This module answers "how many requests/s can n replicas carry with the q-th percentile of
latency inside a budget?"; `hetplan.slo_capacity` turns that into each candidate's capacity
curve U(n) (vectorized over n with the same formulas) and the MILP prices it exactly
(`hetplan.milp.pool_sizing`).

Prefill (a multi-server queue; one server = one replica, service = one request's prefill):
- M/M/c exact: Erlang C, P(W > t) = C e^{-(c mu - lam) t}, mean wait C / (c mu - lam).
- M/D/1 exact mean (Pollaczek-Khinchine, rho S / (2 (1 - rho))); its tail uses the
  Cramer-Lundberg asymptote P(W > t) ~ A e^{-theta t} with lam (e^{theta S} - 1) = theta and
  A = (1 - rho) / (lam S e^{theta S} - 1), capped at P(W > 0) = rho. The asymptote is exact
  in the decay rate; measured within 5% of Monte-Carlo at the 90th and 99th percentiles for
  rho 0.8-0.9 (the exact Crommelin series, an alternating sum, is not used: it cancels
  badly at long waits). At light load the percentile is 0 or tiny either way.
- G/G/c (Allen-Cunneen): P(W > 0) ~ Erlang C, the conditional wait exponential with mean
  (ca2 + cs2) / 2 x the M/M/c conditional mean. ca2 = squared coefficient of variation (SCV)
  of inter-arrival times (use `arrival_scv` on the trace at the time scale of the budget),
  cs2 = SCV of the service time. Good (tests: within ~15% of Monte-Carlo on the 90-99th
  percentile wait) at moderate-heavy load, rho 0.7-0.9, ca2 and cs2 in [0, 4]; rough (the
  wait percentile is small and its relative error large, but so is its share of the budget)
  at rho < 0.5, and rough for very bursty traffic (ca2 >> 4) whose bursts are longer than
  the budget: there no utilization target is honest, and the trace must be replayed.
- The c-server model has one central FIFO queue: fed that way (`central_queue` dispatch),
  hetplan's simulator lands within -6..+10% of the wait slack of the budget for n = 1-16
  (tests/test_queueing.py). The router hetplan emits binds each request to a replica on
  arrival (vllm-router's power-of-two choices by in-flight requests,
  `hetplan.simulate.router.DISPATCH`, which the simulator replays), which is worse at the
  capacity found here: +30% of the slack for n = 4 at p90, +96% for n = 8 at p99, +259% for
  n = 16 at rho 0.89 (one prompt per step). Large pools at high rho need a dispatch
  correction.
- Shape of capacity(n) = `max_rate_for_percentile` over n: capacity per server grows with n
  (pooling economies) and so does the marginal capacity, towards 1 / service_s: capacity is
  CONVEX in n (about n mu - k sqrt(n), square-root staffing), not concave as issue 16 says;
  measured on every parameter set in tests/test_queueing.py, n = 1..33. A MILP constraint
  "load <= capacity(n)" is therefore a non-convex set and needs binaries per pool size (one
  per n, or incremental ones), not linear cuts.
- The latency budgeted is the q-th percentile of the wait plus `service_s` (the caller
  passes the service time it must charge: the request's own prefill time, deterministic for
  a fixed prompt length; for variable prompts pass the class's percentile prompt time).

Decode (an infinite-server view: a sequence occupies a batch slot and its KV bytes for its
whole decode): mean concurrency L = lam x decode duration (Little's law, any distribution).
With Poisson arrivals the concurrency is exactly Poisson(L) (M/G/inf). For bursty arrivals
it is inflated by the peakedness z = 1 + (ca2 - 1) beta, beta = 1 / (1 + cs2) of the decode
duration (exact for exponential (1/2) and deterministic (1) durations, an interpolation
between), and modelled as negative binomial with mean L and variance z L (Poisson when z <= 1
is replaced by the Poisson itself, a slight overstatement for smooth arrivals). Sizing takes
the pool's concurrency as one pooled count (a load-balancing router that keeps replicas
evenly filled); a random split across replicas would lose the pooling economy. The
probability that concurrency exceeds the pool's slots is the share of time the engine must
preempt (vLLM recomputes or swaps a sequence when KV memory runs out). Sizing
(`hetplan.slo_capacity`) uses the delay view instead: `slot_wait_prob`, the probability that
a new sequence waits for a batch slot (Erlang C, in Hayward's form for peaked or multi-size
occupancy: c / z servers at load L / z; exact Erlang C for z = 1), because an engine that
caps its batch queues the sequences that do not fit, and that wait lands in their TTFT.

All times are seconds, rates are per second; inputs are checked and a bad one raises
ValueError naming it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import gammaincc, gammaln

# Halvings of a bisection bracket (60 leave it below 1e-17 of its start).
_BISECT_STEPS = 60


def _check(name: str, value: float, *, lo: float = 0.0, lo_open: bool = False,
           hi: float | None = None, hi_open: bool = False) -> float:
    """Return float(value) if finite and inside the range, else raise ValueError naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if v < lo or (lo_open and v == lo):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo:g}, got {v:g}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi:g}, got {v:g}")
    return v


def _check_count(c: int, name: str = "n_servers") -> int:
    """Return int(c) for a non-negative integer, else raise ValueError naming it."""
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {c!r}")
    return int(c)


def _check_q(q: float) -> float:
    return _check("q (percentile as a fraction)", q, lo=0.0, lo_open=True, hi=1.0, hi_open=True)


# ---------------------------------------------------------------- M/M/c -------------------

def erlang_c(n_servers: int, rho: float) -> float:
    """P(an arrival waits) in M/M/c with c = n_servers, per-server utilization rho < 1.

    Computed through the Erlang B recursion (stable for any c)."""
    c = _check_count(n_servers)
    if c == 0:
        raise ValueError("n_servers must be >= 1 for a queue")
    r = _check("rho", rho, hi=1.0, hi_open=True)
    a = c * r
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - r * (1.0 - b))


def mmc_mean_wait_s(n_servers: int, service_s: float, rho: float) -> float:
    """Mean time in queue (before service) of M/M/c: C / (c mu - lam)."""
    s = _check("service_s", service_s, lo_open=True)
    c = _check_count(n_servers)
    return erlang_c(c, rho) * s / (c * (1.0 - rho))


def mmc_wait_tail(n_servers: int, service_s: float, rho: float, t_s: float) -> float:
    """P(W > t) for M/M/c: C e^{-c mu (1 - rho) t}."""
    s = _check("service_s", service_s, lo_open=True)
    t = _check("t_s", t_s)
    c = _check_count(n_servers)
    return erlang_c(c, rho) * math.exp(-c * (1.0 - rho) * t / s)


def _exp_tail_percentile(p_wait: float, cond_mean_s: float, q: float) -> float:
    """q-quantile of W when P(W > 0) = p_wait and W | W > 0 is exponential(cond_mean_s)."""
    if p_wait <= 1.0 - q:
        return 0.0
    return cond_mean_s * math.log(p_wait / (1.0 - q))


def mmc_wait_percentile_s(n_servers: int, service_s: float, rho: float, q: float) -> float:
    """Exact q-quantile of the M/M/c wait (0 when at least a share q of arrivals never wait)."""
    s = _check("service_s", service_s, lo_open=True)
    c = _check_count(n_servers)
    q = _check_q(q)
    return _exp_tail_percentile(erlang_c(c, rho), s / (c * (1.0 - rho)), q)


# ---------------------------------------------------------------- M/D/1 -------------------

def md1_mean_wait_s(service_s: float, rho: float) -> float:
    """Pollaczek-Khinchine mean wait of M/D/1: rho S / (2 (1 - rho))."""
    s = _check("service_s", service_s, lo_open=True)
    r = _check("rho", rho, hi=1.0, hi_open=True)
    return r * s / (2.0 * (1.0 - r))


def _md1_decay(rho: float, service_s: float) -> float:
    """theta > 0 solving lam (e^{theta S} - 1) = theta (x = theta S: rho (e^x - 1) = x)."""
    lo, hi = 0.0, 1.0
    while rho * math.expm1(hi) <= hi:  # the root lies where rho(e^x - 1) overtakes x
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if rho * math.expm1(mid) > mid:
            hi = mid
        else:
            lo = mid
    return hi / service_s


def md1_wait_tail(service_s: float, rho: float, t_s: float) -> float:
    """P(W > t) of M/D/1 by the Cramer-Lundberg asymptote, capped at P(W > 0) = rho."""
    s = _check("service_s", service_s, lo_open=True)
    r = _check("rho", rho, hi=1.0, hi_open=True)
    t = _check("t_s", t_s)
    if r == 0.0:
        return 0.0
    theta = _md1_decay(r, s)
    amp = (1.0 - r) / (r * math.exp(theta * s) - 1.0)
    return min(r, amp * math.exp(-theta * t))


def md1_wait_percentile_s(service_s: float, rho: float, q: float) -> float:
    """q-quantile of the M/D/1 wait from `md1_wait_tail` (0 when P(W > 0) = rho <= 1 - q)."""
    s = _check("service_s", service_s, lo_open=True)
    r = _check("rho", rho, hi=1.0, hi_open=True)
    q = _check_q(q)
    if r <= 1.0 - q:
        return 0.0
    theta = _md1_decay(r, s)
    amp = (1.0 - r) / (r * math.exp(theta * s) - 1.0)
    return max(0.0, math.log(amp / (1.0 - q)) / theta)


# ---------------------------------------------------------------- G/G/c -------------------

def ggc_mean_wait_s(n_servers: int, service_s: float, rho: float, ca2: float,
                    cs2: float) -> float:
    """Allen-Cunneen mean wait: (ca2 + cs2) / 2 x the M/M/c mean wait."""
    a = _check("ca2", ca2)
    b = _check("cs2", cs2)
    return 0.5 * (a + b) * mmc_mean_wait_s(n_servers, service_s, rho)


def ggc_wait_percentile_s(n_servers: int, service_s: float, rho: float, ca2: float,
                          cs2: float, q: float) -> float:
    """q-quantile of the G/G/c wait: P(W > 0) from Erlang C, exponential conditional wait
    with the Allen-Cunneen-scaled mean (regime: see the module docstring)."""
    s = _check("service_s", service_s, lo_open=True)
    a = _check("ca2", ca2)
    b = _check("cs2", cs2)
    c = _check_count(n_servers)
    q = _check_q(q)
    cond_mean = 0.5 * (a + b) * s / (c * (1.0 - rho))
    return _exp_tail_percentile(erlang_c(c, rho), cond_mean, q)


def max_rate_for_percentile(n_servers: int, service_s: float, cs2: float, ca2: float,
                            budget_s: float, q: float) -> float:
    """Largest arrival rate (req/s) a pool of n_servers serves with the q-quantile of
    (wait + service_s) <= budget_s, by bisection on rho in (0, 1) over the G/G/c percentile.

    0 when n_servers is 0 or service_s alone exceeds the budget. The wait percentile grows
    with rho, so the feasible set is an interval (0, rho*)."""
    c = _check_count(n_servers)
    s = _check("service_s", service_s, lo_open=True)
    _check("cs2", cs2)
    _check("ca2", ca2)
    budget = _check("budget_s", budget_s)
    q = _check_q(q)
    if c == 0 or s > budget:
        return 0.0
    slack = budget - s
    lo, hi = 0.0, 1.0
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        if ggc_wait_percentile_s(c, s, mid, ca2, cs2, q) <= slack:
            lo = mid
        else:
            hi = mid
    return lo * c / s


# ---------------------------------------------------------------- decode ------------------

def decode_peakedness(ca2: float, decode_scv: float) -> float:
    """Variance / mean of the concurrency of G/G/inf: 1 + (ca2 - 1) / (1 + decode_scv)."""
    a = _check("ca2", ca2)
    b = _check("decode_scv", decode_scv)
    return 1.0 + (a - 1.0) / (1.0 + b)


def _count_cdf(mean: float, z: float, k: int) -> float:
    """P(N <= k) for N Poisson(mean) (z <= 1) or negative binomial with variance z mean."""
    if mean == 0.0:
        return 1.0
    terms = []
    # the left tail of a Poisson or negative binomial is lighter than a normal one: mass
    # below mean - 12 standard deviations is < 1e-30, so the sum starts there
    first = max(0, int(mean - 12.0 * math.sqrt(max(z, 1.0) * mean)))
    if z <= 1.0:
        for j in range(first, k + 1):
            terms.append(math.exp(j * math.log(mean) - mean - math.lgamma(j + 1)))
    else:
        r = mean / (z - 1.0)
        p = 1.0 / z  # success probability; mean r (1 - p) / p
        for j in range(first, k + 1):
            lg = math.lgamma(j + r) - math.lgamma(r) - math.lgamma(j + 1)
            terms.append(math.exp(lg + r * math.log(p) + j * math.log1p(-p)))
    return min(1.0, math.fsum(terms))


def decode_concurrency(rate_per_s: float, decode_s: float, decode_scv: float, ca2: float,
                       q: float) -> tuple[float, int]:
    """(mean, q-quantile) of concurrent decoding sequences: Little's law for the mean,
    Poisson / negative binomial for the quantile (module docstring)."""
    lam = _check("rate_per_s", rate_per_s)
    d = _check("decode_s", decode_s, lo_open=True)
    z = decode_peakedness(ca2, decode_scv)
    q = _check_q(q)
    mean = lam * d
    if mean == 0.0:
        return 0.0, 0
    hi = max(1, int(mean))
    while _count_cdf(mean, z, hi) < q:
        hi *= 2
    lo = -1  # invariant: cdf(lo) < q (or lo == -1), cdf(hi) >= q
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _count_cdf(mean, z, mid) >= q:
            hi = mid
        else:
            lo = mid
    return mean, hi


def concurrency_overflow_prob(rate_per_s: float, decode_s: float, decode_scv: float,
                              ca2: float, slots: int) -> float:
    """P(concurrency > slots): the share of time the pool must preempt or queue sequences."""
    lam = _check("rate_per_s", rate_per_s)
    d = _check("decode_s", decode_s, lo_open=True)
    n = _check_count(slots, "slots")
    return max(0.0, 1.0 - _count_cdf(lam * d, decode_peakedness(ca2, decode_scv), n))


def decode_slots(n_replicas: int, batch_cap: int, kv_bytes_per_seq: float | None = None,
                 kv_budget_bytes: float | None = None) -> int:
    """Sequences a pool holds at once: n x min(batch cap, KV budget // KV bytes per sequence)."""
    n = _check_count(n_replicas)
    cap = _check_count(batch_cap, "batch_cap")
    if (kv_bytes_per_seq is None) != (kv_budget_bytes is None):
        raise ValueError("kv_bytes_per_seq and kv_budget_bytes go together")
    if kv_bytes_per_seq is not None:
        per = _check("kv_bytes_per_seq", kv_bytes_per_seq, lo_open=True)
        budget = _check("kv_budget_bytes", kv_budget_bytes)
        cap = min(cap, int(budget // per))
    return n * cap


def max_rate_for_concurrency(slots: int, decode_s: float, decode_scv: float, ca2: float,
                             q: float) -> float:
    """Largest arrival rate whose q-quantile concurrency fits `slots` (see `decode_slots`)."""
    n = _check_count(slots, "slots")
    d = _check("decode_s", decode_s, lo_open=True)
    z = decode_peakedness(ca2, decode_scv)
    q = _check_q(q)
    if n == 0:
        return 0.0
    lo, hi = 0.0, float(n)  # the quantile of a count with mean >= n exceeds n for q >= 0.5
    while _count_cdf(hi, z, n) >= q:
        hi *= 2.0
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        if _count_cdf(mid, z, n) >= q:
            lo = mid
        else:
            hi = mid
    return lo / d


def slot_wait_prob(slots: float, mean: float, z: float = 1.0) -> float:
    """P(a new sequence waits for a batch slot) when `slots` sequences fit at once and the
    offered concurrency has this mean and peakedness z (variance / mean): Erlang C of the
    delay system, by Hayward's approximation for peaked or multi-size traffic (Erlang C at
    slots / z servers and load mean / z), with Erlang B extended to real server counts
    through the incomplete gamma function. 1 when mean >= slots (the queue grows)."""
    c = _check("slots", slots, lo_open=True)
    a = _check("mean", mean)
    zz = _check("z (peakedness)", z, lo_open=True)
    if a >= c:
        return 1.0
    if a == 0.0:
        return 0.0
    c, a = c / zz, a / zz
    b = math.exp(c * math.log(a) - a - gammaln(c + 1.0)) / gammaincc(c + 1.0, a)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def max_rate_for_slot_wait(slots: float, decode_s: float, z: float, p_wait: float) -> float:
    """Largest arrival rate whose `slot_wait_prob` stays <= p_wait (bisection on the mean
    concurrency; rate = mean / decode_s by Little's law)."""
    c = _check("slots", slots, lo_open=True)
    d = _check("decode_s", decode_s, lo_open=True)
    p = _check("p_wait", p_wait, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
    lo, hi = 0.0, c
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        if slot_wait_prob(c, mid, z) <= p:
            lo = mid
        else:
            hi = mid
    return lo / d


# ---------------------------------------------------------------- trace SCV ---------------

def arrival_scv(arrival_s: Sequence[float] | np.ndarray, window_s: float) -> float:
    """Index of dispersion of counts in windows of window_s (variance / mean of the counts).

    1 for Poisson at any window; for a renewal process it tends to the inter-arrival SCV as
    the window grows (many arrivals per window); bursts longer than the window raise it.
    Pick the window at the time scale of the budget (for prefill, a few TTFT budgets)."""
    w = _check("window_s", window_s, lo_open=True)
    t = np.asarray(arrival_s, dtype=float)
    if t.ndim != 1 or t.size < 2:
        raise ValueError("arrival_s must be a 1-D sequence of at least 2 times")
    if not np.all(np.isfinite(t)):
        raise ValueError("arrival_s must be finite")
    t = np.sort(t)
    span = t[-1] - t[0]
    n_win = int(span // w)
    if n_win < 2:
        raise ValueError(f"window_s {w:g} leaves fewer than 2 windows in a {span:g} s trace")
    counts = np.bincount(((t - t[0]) // w).astype(np.int64), minlength=n_win)[:n_win]
    mean = counts.mean()
    if mean == 0.0:
        raise ValueError("no arrivals in the windows")
    return float(counts.var() / mean)
