"""The reactive autoscaler baseline: the static peak plan's pools, on-demand only, scaled
with the load they observe, with a delay (what an HPA or KEDA scaler on a request-rate
metric does, with no knowledge of the schedule ahead).

Simulated in ticks of REACTIVE_TICK_S (per-minute billing) over the horizon:
- demand: each slot's planning rate per class, held for the whole slot (the demand the
  schedule plans for, so both are judged on the same load);
- metric: a pool's request rate, the plan's routing shares applied to the classes' rates;
  the scaler wants ceil(peak replicas x observed rate / peak rate) replicas (the peak plan's
  request rate per replica is its target), at least one while the pool has traffic;
- observation window: the metric is the mean over the last DEFAULT_OBSERVATION_WINDOW_S;
- scale-up delay: a launched replica is paid from its launch and serves after its warm-up
  (the schedule's warm-up: weights at the load bandwidth + engine start);
- cooldown: the scaler drops replicas only down to the most it wanted over the last
  DEFAULT_COOLDOWN_S (the HPA's default scale-down stabilization window is 300 s); the
  newest replicas (warming ones first) go first.
A cyclic horizon is run twice and the second pass counted (the first only settles the
state); otherwise the fleet starts sized for slot 0, ready. `within_capacity` is the share
of requests arriving while every pool had, ready, the replicas its current rate needs at
the plan's target utilization: a capacity measure; `hetplan simulate` measures latency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

REACTIVE_TICK_S = 60.0                 # the scaler's decision step and the billing unit
DEFAULT_OBSERVATION_WINDOW_S = 120.0   # metric averaged over this window
DEFAULT_COOLDOWN_S = 300.0             # scale-down stabilization window
_EPS = 1e-9


@dataclass(frozen=True)
class ScaledPool:
    """A pool the scaler drives: its size and routes in the peak plan, price, warm-up."""

    name: str
    peak_replicas: int
    peak_routes_rps: dict[str, float]      # class -> req/s routed to it at the peak rates
    usd_per_replica_hour: float
    warmup_s: float


@dataclass(frozen=True)
class ReactiveOptions:
    tick_s: float = REACTIVE_TICK_S
    observation_window_s: float = DEFAULT_OBSERVATION_WINDOW_S
    cooldown_s: float = DEFAULT_COOLDOWN_S

    def describe(self) -> str:
        return (f"reactive autoscaler: the static peak plan's pools, on-demand, metric = "
                f"request rate averaged over {self.observation_window_s:g} s, scale-up "
                f"delay = warm-up, scale-down after a {self.cooldown_s:g} s cooldown, "
                f"{self.tick_s:g} s ticks")


@dataclass
class ReactiveResult:
    cost_usd: float
    within_capacity: float                 # share of requests (see the module docstring)
    slot_cost_usd: list[float]
    slot_within_capacity: list[float]
    slot_mean_ready: dict[str, list[float]]    # pool -> time-mean ready replicas per slot
    # pool -> (ready_s, stop_s) of every replica that served, on the horizon's clock
    intervals: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    options: ReactiveOptions = ReactiveOptions()

    def summary(self) -> dict:
        return {"cost_usd": self.cost_usd, "within_capacity": self.within_capacity,
                "slot_cost_usd": self.slot_cost_usd,
                "slot_within_capacity": self.slot_within_capacity,
                "slot_mean_ready_replicas": self.slot_mean_ready,
                "assumption": self.options.describe()}


def pool_fraction(pool: ScaledPool, classes: Sequence[str], rates_rps: np.ndarray,
                  peak_rates_rps: np.ndarray) -> np.ndarray:
    """Per slot, the pool's request rate over its rate in the peak plan (routing shares
    fixed: each class's routed rate scales with that class's rate)."""
    num = np.zeros(rates_rps.shape[0])
    total = 0.0
    for j, w in enumerate(classes):
        r = pool.peak_routes_rps.get(w, 0.0)
        if r > 0 and peak_rates_rps[j] > 0:
            num += r * rates_rps[:, j] / peak_rates_rps[j]
            total += r
    return num / total if total > 0 else num


def _need(peak: int, frac: float) -> int:
    return max(1, math.ceil(peak * frac - _EPS)) if frac > _EPS else 0


def reactive_baseline(pools: Sequence[ScaledPool], classes: Sequence[str],
                      rates_rps: np.ndarray, lengths_s: np.ndarray, peak_rates_rps: np.ndarray,
                      cyclic: bool = True, opts: ReactiveOptions = ReactiveOptions()
                      ) -> ReactiveResult:
    """Simulate the scaler over the slots (`rates_rps[t, class]`, `lengths_s[t]`)."""
    tick = opts.tick_s
    horizon = float(np.sum(lengths_s))
    n_ticks = max(1, math.ceil(horizon / tick - 1e-9))
    starts = np.arange(n_ticks) * tick
    tick_len = np.minimum(tick, horizon - starts)
    slot_ends = np.cumsum(lengths_s)
    slot_of = np.minimum(np.searchsorted(slot_ends, starts, side="right"), len(lengths_s) - 1)
    demand = rates_rps.sum(axis=1)[slot_of] * tick_len          # requests per tick
    win = max(1, round(opts.observation_window_s / tick))
    cool = max(1, round(opts.cooldown_s / tick))
    passes = 2 if cyclic else 1
    n_slots = len(lengths_s)
    slot_cost = np.zeros(n_slots)
    ok_req = np.zeros(n_slots)
    ready_sum = {p.name: np.zeros(n_slots) for p in pools}
    intervals: dict[str, list[tuple[float, float]]] = {p.name: [] for p in pools}
    short = np.zeros(n_ticks, dtype=bool)
    for p in pools:
        frac = pool_fraction(p, classes, rates_rps, peak_rates_rps)[slot_of]
        need = np.array([_need(p.peak_replicas, f) for f in frac])
        # replicas: [launch_s, ready_s, stop_s] on a clock that starts at pass 0
        first = need[-1] if cyclic else need[0]
        live: list[list[float]] = [[-math.inf, -math.inf, math.inf] for _ in range(first)]
        done: list[list[float]] = []
        wanted: list[int] = []
        for k in range(passes * n_ticks):
            i = k % n_ticks
            now = (k // n_ticks) * horizon + starts[i]
            seen = [frac[(k - d) % n_ticks] for d in range(1, win + 1)
                    if cyclic or k - d >= 0] or [frac[0]]
            desired = _need(p.peak_replicas, float(np.mean(seen)))
            wanted.append(desired)
            hold = max(wanted[-cool:])
            if desired > len(live):
                live += [[now, now + p.warmup_s, math.inf]
                         for _ in range(desired - len(live))]
            elif hold < len(live):
                live.sort(key=lambda r: r[0])
                for r in live[hold:]:
                    r[2] = now
                done += live[hold:]
                live = live[:hold]
            ready = sum(1 for r in live if r[1] <= now)
            if k // n_ticks == passes - 1:
                t = slot_of[i]
                slot_cost[t] += len(live) * p.usd_per_replica_hour * tick_len[i] / 3600.0
                ready_sum[p.name][t] += ready * tick_len[i]
                short[i] |= ready < need[i]
        first_clock = (passes - 1) * horizon
        for r in done + live:
            lo, hi = max(r[1], first_clock), min(r[2], first_clock + horizon)
            if hi > lo:
                intervals[p.name].append((lo - first_clock, hi - first_clock))
        intervals[p.name].sort()
    for i in range(n_ticks):
        if not short[i]:
            ok_req[slot_of[i]] += demand[i]
    slot_req = np.bincount(slot_of, weights=demand, minlength=n_slots)
    return ReactiveResult(
        cost_usd=float(slot_cost.sum()),
        within_capacity=float(ok_req.sum() / demand.sum()) if demand.sum() > 0 else 1.0,
        slot_cost_usd=[float(c) for c in slot_cost],
        slot_within_capacity=[float(a / b) if b > 0 else 1.0 for a, b in zip(ok_req, slot_req)],
        slot_mean_ready={k: [float(x) for x in v / np.asarray(lengths_s)]
                         for k, v in ready_sum.items()},
        intervals=intervals, options=opts)
