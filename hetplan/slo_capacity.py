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
  prompt-length SCV of the class as cs2 (lognormal fitted to its mean and p90). A request's
  TTFT = its wait + its own batch's latency (`ClassCapacity.ttft_ms`: prefill of the
  class's p90 prompt at batch k plus the KV hand-off), so the wait's q-quantile must fit
  the slack TTFT - ttft_ms. Regime: the work-drain view is exact for k = 1 (long prompts,
  where pooling matters most) and optimistic by up to one batch time for large k, which the
  candidate's batch choice (its latency <= half the TTFT target) leaves room for.
- decode (and a colocated replica's decode side): concurrency of an infinite-server queue
  (Little's law mean; Poisson, or negative binomial inflated by the arrivals' peakedness)
  whose q-quantile must fit the pool's n x B batch slots (B: the candidate's SLO batch, its
  KV and TPOT limit), so P(overflow into preemption or a slower step) <= 1 - q. Regime:
  assumes the router keeps replicas evenly filled (pooled slots).
- A candidate serving several classes shares one queue: each class needs its percentile,
  so U(n) = min over the classes it may serve with demand (the least slack binds).
- No pool is sized above RHO_CEILING busy: there the formulas' tails are least reliable and
  the simulator's dispatch on arrival (no central queue) falls behind the c-server model
  (README, Queueing).

Shape: each class's U(n) is convex in n (README, Queueing), so a pool's marginal replica
carries more than its first; U is kept exactly for n <= `PoolCurve.steps` and extended
linearly beyond with the smallest per-class increment there (a lower bound: convexity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincc, gammaln

from hetplan.candidates import Candidate, ClassLike
from hetplan.queueing import arrival_scv, decode_peakedness

RHO_CEILING = 0.95        # most a pool is planned busy under queueing sizing
MAX_STEPS = 24            # exact (binary) steps per candidate at most
LINEAR_LOSS = 0.02        # beyond the exact steps, a linear extension within 2% of U(n)
PREFILL_WINDOW_TTFTS = 4  # ca2 of prefill arrivals is measured over windows of 4 TTFT targets
Q_MAX = 0.999             # a p100 SLO is sized at p99.9 (no queue meets a 100th percentile)
_BISECT = 50              # bisection halvings (1e-15 of the bracket)
_Z90 = 1.2815515655446004  # standard normal 90th percentile
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
class ClassShape:
    """What a class's length spread does to its queues (`measured_shape` from the trace's
    requests in the class's bins, else `fitted_shape` from its mean and p90):
    prefill_scv: SCV of one prompt's prefill work (the service time; attention makes it
    superlinear in the prompt, so a heavy length tail weighs more than the lengths' SCV);
    prefill_inflation: E[work] / work(mean prompt), >= 1 (the candidate's capacity is
    measured at the mean prompt); decode_scv: SCV of the output length (decode duration);
    kv_scv: SCV of a decoding sequence's KV (prompt + half its output), time-weighted."""

    prefill_scv: float
    prefill_inflation: float = 1.0
    decode_scv: float = 0.0
    kv_scv: float = 0.0


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


def lognormal_scv(mean: float, p90: float) -> float:
    """SCV of the lognormal with this mean and 90th percentile (0 when p90 <= mean:
    treated as fixed lengths). p90 / mean = exp(z90 s - s^2 / 2) has a root s <= z90."""
    if mean <= 0 or p90 <= mean:
        return 0.0
    r = math.log(p90 / mean)
    if r >= _Z90 ** 2 / 2:          # beyond the lognormal's reach: the heaviest it can be
        s = _Z90
    else:
        s = _Z90 - math.sqrt(_Z90 ** 2 - 2 * r)
    return math.expm1(s * s)


def _scv(x: np.ndarray, weight: np.ndarray | None = None) -> float:
    m = float(np.average(x, weights=weight))
    return float(np.average((x - m) ** 2, weights=weight)) / m ** 2 if m > 0 else 0.0


def fitted_shape(w: ClassLike) -> ClassShape:
    """A class's shape from its mean and p90 lengths alone (lognormal fits; the prompt's
    prefill work taken as proportional to its length, so heavy tails are understated)."""
    mi, mo = max(w.mean_input_tokens, 1.0), max(w.mean_output_tokens, 1.0)
    s_in = lognormal_scv(w.mean_input_tokens, w.p90_input_tokens)
    return ClassShape(s_in, 1.0, lognormal_scv(w.mean_output_tokens, w.p90_output_tokens),
                      s_in * (mi / (mi + mo / 2)) ** 2)


def measured_shape(input_tokens: np.ndarray, output_tokens: np.ndarray,
                   work: Callable[[np.ndarray], np.ndarray]) -> ClassShape:
    """A class's shape from its requests; `work(prompt lengths)`: prefill work per prompt in
    any unit (`prefill_work` of the model)."""
    x = np.asarray(input_tokens, dtype=float)
    o = np.maximum(np.asarray(output_tokens, dtype=float), 1.0)
    lens, inv = np.unique(np.maximum(x, 1.0), return_inverse=True)
    w = work(lens)[inv]
    at_mean = float(work(np.array([max(float(x.mean()), 1.0)]))[0])
    return ClassShape(_scv(w), max(1.0, float(w.mean()) / at_mean), _scv(o),
                      _scv(x + o / 2, weight=o))


def prefill_work(model) -> Callable[[np.ndarray], np.ndarray]:
    """FLOPs to prefill each prompt length (`ModelSpec`: matmuls + causal attention)."""
    per_key = model.attention_flops_per_key()
    lin = 2.0 * model.matmul_params_per_token

    def work(lens: np.ndarray) -> np.ndarray:
        return np.array([lin * n + per_key * model.prefill_attended_keys(int(n))
                         for n in np.asarray(lens)], dtype=float)
    return work


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
    """Erlang C, elementwise (the Erlang B recursion of `queueing.erlang_c`)."""
    a = n * rho
    b = np.ones_like(a)
    for k in range(1, int(n.max()) + 1):
        b = np.where(k <= n, a * b / (k + a * b), b)
    return b / (1.0 - rho * (1.0 - b))


def prefill_rho(n: np.ndarray, tau: np.ndarray, q: float) -> np.ndarray:
    """Largest rho per element with the G/G/n wait's q-quantile within the slack, where
    tau = slack x mu / ((ca2 + cs2) / 2): the condition of `queueing.ggc_wait_percentile_s`,
    C(n, rho) <= 1 - q or ln(C / (1 - q)) <= tau n (1 - rho). Bisection, like
    `queueing.max_rate_for_percentile`."""
    n = np.asarray(n, dtype=float)
    tau = np.asarray(tau, dtype=float)
    lo, hi = np.zeros(np.broadcast(n, tau).shape), np.ones(np.broadcast(n, tau).shape)
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        c = _erlang_c(n, mid)
        with np.errstate(divide="ignore"):
            ok = (c <= 1.0 - q) | (np.log(c / (1.0 - q)) <= tau * n * (1.0 - mid))
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return lo


def _prefill_table(tau: np.ndarray, n_max: int, q: float,
                   inflation: np.ndarray | float = 1.0) -> np.ndarray:
    """U(n) for n = 0..n_max of prefill rows with these tau values, shape (rows, n_max+1),
    divided by each row's service-time inflation (load is counted at the mean prompt)."""
    n = np.arange(1, n_max + 1, dtype=float)
    rho = np.minimum(prefill_rho(n[None, :], np.asarray(tau, dtype=float)[:, None], q),
                     RHO_CEILING)
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


def _slot_wait(slots: np.ndarray, mean: np.ndarray, z: np.ndarray) -> np.ndarray:
    """`queueing.slot_wait_prob`, elementwise (mean < slots)."""
    c, a = slots / z, mean / z
    with np.errstate(divide="ignore", under="ignore"):
        b = np.exp(c * np.log(a) - a - gammaln(c + 1.0) - np.log(gammaincc(c + 1.0, a)))
    return b / (1.0 - a / c * (1.0 - b))


def _decode_table(batch: np.ndarray, z: np.ndarray, n_max: int, p_wait: float) -> np.ndarray:
    """U(n) for n = 0..n_max of decode rows (batch slots per replica, peakedness z): the
    largest mean concurrency a new sequence finds n x batch slots full at with probability
    <= p_wait, over the slots."""
    n = np.arange(1, n_max + 1, dtype=float)
    slots = np.asarray(batch, dtype=float)[:, None] * n[None, :]
    zz = np.broadcast_to(np.asarray(z, dtype=float)[:, None], slots.shape)
    lo, hi = np.zeros_like(slots), slots.copy()
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        ok = _slot_wait(slots, np.maximum(mid, 1e-300), zz) <= p_wait
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    rho = np.minimum(lo / slots, RHO_CEILING)
    return np.concatenate([np.zeros((len(slots), 1)), rho * n], axis=1)


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
    """Every distinct row's U(0..n_max), computed in two vectorized passes."""
    out: dict[tuple, np.ndarray] = {}
    pre = sorted(r for r in rows if r[0] == "p")
    live = [r for r in pre if r[1] >= 0]
    for r in pre:
        if r[1] < 0:
            out[r] = np.zeros(n_max + 1)
    if live:
        for r, u in zip(live, _prefill_table(np.array([r[1] for r in live]), n_max,
                                             s.prefill_q, np.array([r[2] for r in live]))):
            out[r] = u
    dec = sorted(r for r in rows if r[0] == "d")
    if dec:
        tab = _decode_table(np.array([r[1] for r in dec]), np.array([r[2] for r in dec]),
                            n_max, s.slot_wait)
        out.update(zip(dec, tab))
    return out


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


def class_shapes(classes: Sequence[ClassLike], trace, model) -> tuple[tuple[str, ClassShape], ...]:
    """`measured_shape` of every class with token bins and requests in the trace (others are
    left to `fitted_shape`)."""
    if trace is None or model is None or trace.num_requests == 0:
        return ()
    work = prefill_work(model)
    inp, out = trace.input_tokens, trace.output_tokens
    shapes = []
    for w in classes:
        bins = [getattr(w, k, None) for k in ("input_lo", "input_hi", "output_lo", "output_hi")]
        if None in bins:
            continue
        m = (inp >= bins[0]) & (inp <= bins[1]) & (out >= bins[2]) & (out <= bins[3])
        if m.sum() >= 2:
            shapes.append((w.name, measured_shape(inp[m], out[m], work)))
    return tuple(shapes)


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
