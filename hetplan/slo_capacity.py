"""Percentile-aware pool capacity: the load n replicas of a candidate carry with the SLO
percentile met, as a function of n (issue 16, item 1). The MILP prices it exactly with
incremental binaries (`hetplan.milp.pool_sizing`).

Units: a pool's load is sum over classes of rate / mu (mu: one replica's capacity for the
class at the SLO, `Candidate.capacity`), in replica-equivalents; `U(n)` is the most load n
replicas carry. The old model is U(n) = rho x n; here U(n) = n x rho(n) with rho(n) from
queueing (`hetplan.queueing`, one source for the formulas):

- prefill (and a colocated replica's prompt side): a G/G/n queue, one server per replica,
  whose service time is the replica's time per request at its SLO batch, 1 / mu (the
  replica runs batches of k prompts in t(k), so it drains queued work at mu = k / t(k));
  Allen-Cunneen wait with the trace's measured inter-arrival SCV ca2 (`Burstiness`) and the
  SCV cs2 of the class's prefill work (`ClassShape`): the FLOPs of each of the class's
  prompts in the trace (matmuls + causal attention, `prefill_work`), so a heavy length tail
  weighs as its quadratic attention does; the load is inflated by E[work] / work(mean
  prompt), since mu is measured at the mean prompt. (Fitting a lognormal to the prompt
  lengths' mean and p90 understated both on mooncake's 12k-128k class: cs2 0.27 against
  1.15 measured, mean service +11%; the plan ran at 71% busy with p90 wait 2.5x its slack.)
  A request's TTFT = its wait + its own batch's latency (`ClassCapacity.ttft_ms`: prefill of
  the class's p90 prompt at batch k plus the KV hand-off), so the wait's quantile must fit
  the slack TTFT - ttft_ms. Regime: the work-drain view is exact for k = 1 (long prompts,
  where pooling matters most) and optimistic by up to one batch time for large k, which the
  candidate's batch choice (its latency <= half the TTFT target) leaves room for. The
  model is a central queue; the emitted router's dispatch on arrival (power-of-two choices,
  `hetplan.simulate.router.DISPATCH`) costs 3 points of attainment at n = 2 and 13 at n = 6
  with one prompt per step (tests/test_slo_capacity.py), 0.1-1.9 on the shipped plans.
- decode (and a colocated replica's decode side): a delay system with n x B batch slots
  (B: the candidate's SLO batch, its KV and TPOT limit). A sequence that finds them full
  waits for one to free (vLLM's max_num_seqs / KV admission), and that wait is part of its
  TTFT: decode durations (hundreds of steps) are far longer than a TTFT budget, so any wait
  is a miss, and the condition is P(wait) <= the decode side's miss share. P(wait) is
  Erlang C in Hayward's form (`queueing.slot_wait_prob`) with the occupancy's peakedness:
  the count's (arrival SCV over a decode duration, duration SCV) plus the SCV of a
  sequence's KV (compound sum), since a KV-bound batch holds fewer long sequences.
  (Counting sequences as a Poisson quantile against the slots let mooncake's decode pool
  fill its KV cache, preempt and recompute 30k-token prompts, and queue first tokens for
  minutes.) Regime: measured in the simulator at the planned load, P(wait) is 0.042-0.045
  for a target 0.05 with count-bound batches; KV-bound with heavy-tailed prompts 0.061
  (n = 1) and 0.095 (n = 2): each replica's KV is its own, which the pooled form does not
  see.
- TTFT passes both queues: each gets TTFT_MISS_SHARE of the (1 - q) miss budget (the prompt
  queue's wait percentile is 1 - (1 - q) / 2, a decode slot's wait probability (1 - q) / 2).
- A candidate serving several classes shares one queue: each class needs its percentile,
  so U(n) = min over the classes it may serve with demand (the least slack binds).
- No pool is sized above RHO_CEILING busy: there the formulas' tails are least reliable and
  the router's dispatch on arrival (no central queue) falls behind the c-server model
  (README, Queueing).

Shape: each class's U(n) is convex in n (README, Queueing), so a pool's marginal replica
carries more than its first; U is kept exactly for n <= `PoolCurve.steps` and extended
linearly beyond with the smallest per-class increment there (a lower bound: convexity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincc, gammaln

from hetplan.candidates import Candidate, ClassLike
from hetplan.class_shape import ClassShape, class_shapes, fitted_shape, lognormal_scv
from hetplan.queueing import arrival_scv, decode_peakedness

__all__ = ["ClassShape", "lognormal_scv"]      # re-exported: sizing's inputs live there

RHO_CEILING = 0.95        # most a pool is planned busy under queueing sizing
MAX_STEPS = 24            # exact (binary) steps per candidate at most
LINEAR_LOSS = 0.02        # beyond the exact steps, a linear extension within 2% of U(n)
PREFILL_WINDOW_TTFTS = 4  # ca2 of prefill arrivals is measured over windows of 4 TTFT targets
Q_MAX = 0.999             # a p100 SLO is sized at p99.9 (no queue meets a 100th percentile)
_BISECT = 50              # bisection halvings (1e-15 of the bracket)
# TTFT passes two queues in series (the prompt queue, then a decode batch slot: decode or
# colocated); each may use this share of the (1 - q) miss budget (the tuner judges each side
# of a split TTFT the same way)
TTFT_MISS_SHARE = 0.5


@dataclass(frozen=True)
class Burstiness:
    """Arrival SCVs the capacities use (1.0: Poisson)."""

    prefill_ca2: float = 1.0
    decode_ca2: float = 1.0


@dataclass(frozen=True)
class SizingInputs:
    """What queueing sizing needs beyond the candidates: the SLO as numbers, burstiness and
    the classes' shapes (class name -> ClassShape; classes not listed use `fitted_shape`)."""

    ttft_s: float
    q: float                  # SLO percentile as a fraction
    burstiness: Burstiness = Burstiness()
    shapes: tuple[tuple[str, ClassShape], ...] = ()

    def shape(self, w: ClassLike) -> ClassShape:
        for name, sh in self.shapes:
            if name == w.name:
                return sh
        return fitted_shape(w)

    @property
    def prefill_q(self) -> float:
        """The prompt queue's wait percentile (its share of the miss budget)."""
        return 1.0 - TTFT_MISS_SHARE * (1.0 - self.q)

    @property
    def slot_wait(self) -> float:
        """Largest P(a sequence waits for a decode batch slot)."""
        return TTFT_MISS_SHARE * (1.0 - self.q)


@dataclass(frozen=True)
class PoolCurve:
    """U(n) for n = 0..steps exactly, then U(steps) + tail_slope x (n - steps).
    `linear` curves are priced as tail_slope x n (tail_slope <= U(n) / n for every n)."""

    load: tuple[float, ...]
    tail_slope: float
    linear: bool = False

    @property
    def steps(self) -> int:
        return 0 if self.linear else len(self.load) - 1

    def at(self, n: int) -> float:
        if self.linear:
            return self.tail_slope * n
        k = self.steps
        return self.load[n] if n <= k else self.load[k] + self.tail_slope * (n - k)

    def increments(self) -> list[float]:
        return [b - a for a, b in zip(self.load, self.load[1:])]

    def max_increment(self) -> float:
        return max([self.tail_slope, *([] if self.linear else self.increments())])

    def replicas_for(self, load: float) -> int:
        """Fewest replicas whose U(n) >= load."""
        if load <= 0:
            return 0
        for n in range(1, self.steps + 1):
            if self.at(n) >= load:
                return n
        if self.tail_slope <= 0:
            return 10**6
        k = self.steps
        return k + max(1, math.ceil((load - self.at(k)) / self.tail_slope - 1e-9))


def measured_burstiness(arrival_s: np.ndarray | None, ttft_s: float,
                        decode_s: float) -> Burstiness:
    """ca2 from the trace's index of dispersion at the time scale of each phase: prefill
    over PREFILL_WINDOW_TTFTS TTFT targets, decode over one mean decode duration. Poisson
    (1.0) when there is no trace or it is too short for two windows."""
    def scv(window_s: float) -> float:
        if arrival_s is None or len(arrival_s) < 2 or window_s <= 0:
            return 1.0
        try:
            return arrival_scv(arrival_s, window_s)
        except ValueError:
            return 1.0
    return Burstiness(scv(PREFILL_WINDOW_TTFTS * ttft_s), scv(decode_s))


# ---------------------------------------------------------------- per-class curves --------

def _erlang_c(n: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Erlang C, elementwise (the Erlang B recursion of `queueing.erlang_c`) over flat
    arrays with n sorted high to low: step k of the recursion runs on the prefix of the
    elements with n >= k only (each element sees exactly its own n steps)."""
    a = n * rho
    b = np.ones_like(a)
    ab, den = np.empty_like(a), np.empty_like(a)    # reused: no temporaries per step
    tops = np.searchsorted(-n, -np.arange(1, int(n[0]) + 1 if len(n) else 1),
                           side="right")            # step k: the elements with n >= k
    for k, top in enumerate(tops.tolist(), start=1):
        np.multiply(a[:top], b[:top], out=ab[:top])
        np.add(ab[:top], k, out=den[:top])
        np.divide(ab[:top], den[:top], out=b[:top])
    return b / (1.0 - rho * (1.0 - b))


def prefill_rho(n: np.ndarray, tau: np.ndarray, q: float,
                ceiling: float | None = None) -> np.ndarray:
    """Largest rho per element with the G/G/n wait's q-quantile within the slack, where
    tau = slack x mu / ((ca2 + cs2) / 2): the condition of `queueing.ggc_wait_percentile_s`,
    C(n, rho) <= 1 - q or ln(C / (1 - q)) <= tau n (1 - rho). Bisection, like
    `queueing.max_rate_for_percentile`; with a `ceiling`, elements that meet the condition
    there are `ceiling` (the caller's cap) and skip the bisection."""
    shape = np.broadcast(np.asarray(n), np.asarray(tau)).shape
    nn = np.broadcast_to(np.asarray(n, dtype=float), shape).ravel()
    tt = np.broadcast_to(np.asarray(tau, dtype=float), shape).ravel()
    order = np.argsort(-nn, kind="stable")
    nn, tt = nn[order], tt[order]

    def ok(idx, mid):
        c = _erlang_c(nn[idx], mid)
        with np.errstate(divide="ignore"):
            return (c <= 1.0 - q) | (np.log(c / (1.0 - q)) <= tt[idx] * nn[idx] * (1.0 - mid))
    out = np.zeros(nn.shape)
    live = np.arange(len(nn))
    if ceiling is not None and len(nn):
        capped = ok(live, np.full(len(nn), ceiling))
        out[capped] = ceiling
        live = live[~capped]
    lo, hi = np.zeros(len(live)), np.ones(len(live))
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        good = ok(live, mid)
        lo, hi = np.where(good, mid, lo), np.where(good, hi, mid)
    out[live] = lo
    res = np.empty_like(out)
    res[order] = out
    return res.reshape(shape)


def _prefill_table(tau: np.ndarray, n_max: int, q: float,
                   inflation: np.ndarray | float = 1.0) -> np.ndarray:
    """U(n) for n = 0..n_max of prefill rows with these tau values, shape (rows, n_max+1),
    divided by each row's service-time inflation (load is counted at the mean prompt)."""
    n = np.arange(1, n_max + 1, dtype=float)
    rho = np.minimum(prefill_rho(n[None, :], np.asarray(tau, dtype=float)[:, None], q,
                                 RHO_CEILING), RHO_CEILING)
    f = np.broadcast_to(np.asarray(inflation, dtype=float), (len(tau),))[:, None]
    return np.concatenate([np.zeros((len(tau), 1)), n * rho / f], axis=1)


def _prefill_tau(mu_rps: float, latency_s: float, ttft_s: float, cs2: float,
                 ca2: float, inflation: float = 1.0) -> float:
    """tau of `prefill_rho` (-1 when the slack is gone: no load can be carried); the mean
    service time is inflation / mu."""
    slack = ttft_s - latency_s
    if slack <= 0:
        return -1.0
    a = 0.5 * (ca2 + cs2)
    return math.inf if a == 0 else slack * mu_rps / inflation / a


def prefill_curve(n_max: int, mu_rps: float, latency_s: float, ttft_s: float, cs2: float,
                  ca2: float, q: float, inflation: float = 1.0) -> np.ndarray:
    """U(n) for n = 0..n_max of one class on a prefill replica (module docstring)."""
    tau = _prefill_tau(mu_rps, latency_s, ttft_s, cs2, ca2, inflation)
    if tau < 0:
        return np.zeros(n_max + 1)
    return _prefill_table(np.array([tau]), n_max, q, inflation)[0]


def _slot_wait(slots: np.ndarray, mean: np.ndarray, z: np.ndarray,
               lg: np.ndarray | None = None) -> np.ndarray:
    """`queueing.slot_wait_prob`, elementwise (mean < slots); `lg`: gammaln(slots / z + 1)
    when the caller has it."""
    c, a = slots / z, mean / z
    if lg is None:
        lg = gammaln(c + 1.0)
    with np.errstate(divide="ignore", under="ignore"):
        b = np.exp(c * np.log(a) - a - lg - np.log(gammaincc(c + 1.0, a)))
    return b / (1.0 - a / c * (1.0 - b))


def _decode_table(batch: np.ndarray, z: np.ndarray, n_max: int, p_wait: float) -> np.ndarray:
    """U(n) for n = 0..n_max of decode rows (batch slots per replica, peakedness z): the
    largest mean concurrency a new sequence finds n x batch slots full at with probability
    <= p_wait, over the slots. It depends on (slots, z) only: each distinct pair is solved
    once, and pairs that meet it at RHO_CEILING busy are capped there without bisection."""
    n = np.arange(1, n_max + 1, dtype=float)
    slots = np.asarray(batch, dtype=float)[:, None] * n[None, :]
    shape = slots.shape
    s_all = slots.ravel()
    z_all = np.broadcast_to(np.asarray(z, dtype=float)[:, None], shape).ravel()
    order = np.lexsort((z_all, s_all))                 # equal pairs side by side
    s_all, z_all = s_all[order], z_all[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (s_all[1:] != s_all[:-1]) | (z_all[1:] != z_all[:-1])
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    s, zz = s_all[first], z_all[first]
    lg = gammaln(s / zz + 1.0)
    rho = np.empty(s.shape)
    capped = _slot_wait(s, np.maximum(RHO_CEILING * s, 1e-300), zz, lg) <= p_wait
    rho[capped] = RHO_CEILING
    live = np.flatnonzero(~capped)
    sl, zl, gl = s[live], zz[live], lg[live]
    lo, hi = np.zeros_like(sl), sl.copy()
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        ok = _slot_wait(sl, np.maximum(mid, 1e-300), zl, gl) <= p_wait
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    rho[live] = np.minimum(lo / sl, RHO_CEILING)
    return np.concatenate([np.zeros((shape[0], 1)), rho[inverse].reshape(shape) * n],
                          axis=1)


def decode_peak(ca2: float, decode_scv: float, kv_scv: float = 0.0) -> float:
    """Peakedness of a decode pool's occupancy in mean-sequence units: the count's
    (`queueing.decode_peakedness`) plus the KV size spread (compound sum: variance
    L (z_count + kv_scv) for mean L)."""
    return decode_peakedness(ca2, decode_scv) + kv_scv


def decode_curve(n_max: int, batch: int, decode_scv: float, ca2: float,
                 p_wait: float, kv_scv: float = 0.0) -> np.ndarray:
    """U(n) for n = 0..n_max of one class on a decode replica with `batch` slots."""
    return _decode_table(np.array([batch]), np.array([decode_peak(ca2, decode_scv, kv_scv)]),
                         n_max, p_wait)[0]


# ---------------------------------------------------------------- pool curves ------------

def _rows(c: Candidate, w: ClassLike, s: SizingInputs) -> list[tuple]:
    """The curve rows class w needs on candidate c: ("p", tau) and / or ("d", batch, z)."""
    cap = c.per_class[w.name]
    b = s.burstiness
    sh = s.shape(w)
    rows: list[tuple] = []
    if c.role in ("prefill", "colocated"):
        rows.append(("p", _prefill_tau(cap.capacity_rps, cap.ttft_ms / 1e3, s.ttft_s,
                                       sh.prefill_scv, b.prefill_ca2, sh.prefill_inflation),
                      sh.prefill_inflation))
    if c.role in ("decode", "colocated"):
        rows.append(("d", max(1, cap.batch), decode_peak(b.decode_ca2, sh.decode_scv,
                                                         sh.kv_scv)))
    return rows


def _tables(rows: set[tuple], s: SizingInputs, n_max: int) -> dict[tuple, np.ndarray]:
    """Every distinct row's U(0..n_max), computed in two vectorized passes (the decode
    pass in a thread while the prefill pass runs: numpy and scipy release the GIL)."""
    out: dict[tuple, np.ndarray] = {}
    dec = sorted(r for r in rows if r[0] == "d")
    with ThreadPoolExecutor(max_workers=1) as pool:
        tab = pool.submit(_decode_table, np.array([r[1] for r in dec]),
                          np.array([r[2] for r in dec]), n_max, s.slot_wait) if dec else None
        _prefill_rows(rows, s, n_max, out)
        if tab is not None:
            out.update(zip(dec, tab.result()))
    return out


def _prefill_rows(rows: set[tuple], s: SizingInputs, n_max: int,
                  out: dict[tuple, np.ndarray]) -> None:
    """`_tables`'s prefill pass, into `out`."""
    pre = sorted(r for r in rows if r[0] == "p")
    live = [r for r in pre if r[1] >= 0]
    for r in pre:
        if r[1] < 0:
            out[r] = np.zeros(n_max + 1)
    if live:
        for r, u in zip(live, _prefill_table(np.array([r[1] for r in live]), n_max,
                                             s.prefill_q, np.array([r[2] for r in live]))):
            out[r] = u


def _fit(per: np.ndarray) -> PoolCurve:
    """A PoolCurve from its classes' U rows: U = the min over the rows, kept exactly up to
    the fewest steps K whose linear extension (slope: the smallest class increment from K,
    a lower bound by convexity, at most RHO_CEILING) stays within LINEAR_LOSS of U out to
    the rows' end; K = 0 is a straight line through 0 below U everywhere (one row)."""
    n_max = per.shape[1] - 1
    u = per.min(axis=0)
    n = np.arange(n_max + 1)
    inc = np.diff(per, axis=1)                                   # (rows, n_max)
    slope = min(float((u[1:] / n[1:]).min()), float(inc[:, -1].min()), RHO_CEILING)
    if np.all(u - slope * n <= LINEAR_LOSS * u):
        return PoolCurve((0.0,), slope, linear=True)
    for k in range(1, n_max + 1):
        tail = min(float(inc[:, min(k, n_max - 1)].min()), RHO_CEILING)
        ext = u[k] + tail * (n[k:] - k)
        if k == n_max or np.all(u[k:] - ext <= LINEAR_LOSS * u[k:]):
            return PoolCurve(tuple(float(x) for x in u[:k + 1]), tail)
    raise AssertionError("unreachable: k = n_max returns")


def pool_curves(candidates: Sequence[Candidate], classes: Sequence[ClassLike],
                s: SizingInputs, n_max: int = MAX_STEPS) -> dict[str, PoolCurve]:
    """Candidate key -> its U(n): the min over the classes it may serve with demand (module
    docstring), exact up to n_max replicas at most. Candidates serving no class with demand
    are left out (they keep the utilization row)."""
    need: dict[str, list[tuple]] = {}
    for c in candidates:
        served = [w for w in classes if c.capacity(w.name) > 0 and w.rate_rps > 0]
        if served:
            need[c.key] = [r for w in served for r in _rows(c, w, s)]
    tables = _tables({r for rows in need.values() for r in rows}, s, max(1, n_max))
    return {key: _fit(np.array([tables[r] for r in rows])) for key, rows in need.items()}


def sizing_inputs(slo, classes: Sequence[ClassLike], trace, model=None) -> SizingInputs:
    """SizingInputs for an SLO (`scenario.SLO`), its classes, their trace (None: Poisson,
    fitted shapes) and the model (`ModelSpec`, for the prefill work; None: fitted shapes):
    the decode window is the demand-weighted mean decode duration at the TPOT target."""
    ttft_s = slo.ttft_ms / 1e3
    rate = sum(w.rate_rps for w in classes)
    out_tokens = (sum(w.rate_rps * w.mean_output_tokens for w in classes) / rate
                  if rate > 0 else 1.0)
    arrivals = None if trace is None else trace.arrival_s
    return SizingInputs(ttft_s, min(slo.percentile / 100.0, Q_MAX),
                        measured_burstiness(arrivals, ttft_s, out_tokens * slo.tpot_ms / 1e3),
                        class_shapes(classes, trace, model))
