"""Why a prefill (or colocated) pool misses its TTFT percentile: a fluid estimate of the prompt
throughput the trace's bursts need (issue 16, item 3).

Model: the pool's requests, in arrival order, are served first-in first-out by one fluid
server of X prompt tokens/s (the whole pool's throughput pooled), except that a request's own
prompt runs on one replica: TTFT_i ~ V_i / X + s_i, where V_i is the fluid backlog of prompt
tokens ahead of request i (Lindley's recursion on the token work) and s_i its own prefill
time on an idle replica. The attainment a(X) = share of requests with TTFT_i <= budget rises
with X towards a(inf) = share with s_i <= budget:
- a(inf) < q: the percentile cannot be met at any utilization (prompts too long for the
  budget on this shape);
- otherwise the least X with a(X) >= q (bisection) divided by one replica's saturated
  prompt throughput gives the replicas the bursts need.
Assumptions (optimistic, so the replica count is a floor, not a plan): perfect pooling (no
per-replica imbalance), no batching limit beyond the throughput, no decode-side delay. It
states the cause; the tuner's simulations price the cure.

`plan_bursts` runs the estimate on a plan's prefill and colocated pools with the requests
the plan routes to them (plain `hetplan solve` reports it; `solve --validate` on the pools the
simulator blames): when even the fluid, perfectly pooled server misses the percentile at the
planned size, the plan cannot meet it, and the estimate says at what size it could, or that
none can (issue 16, item 3). Where a pool's requests are split by the plan's rates, the
split is a seeded draw like the simulator's router.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hetplan.workload.classes import in_bins

BISECTION_STEPS = 40
NOTE_PREFIX = "bursts:"       # plan notes that report item 3 start with this
_LENGTH_GRID = 1.01          # prompt lengths timed on a 1% geometric grid (own prefill time)


@dataclass(frozen=True)
class BurstBound:
    requests: int
    attainment_unlimited: float        # a(inf): no queueing at all
    tokens_per_s_needed: float | None  # least X with a(X) >= q; None when a(inf) < q
    replica_tokens_per_s: float
    largest_burst_requests: int        # most arrivals within one TTFT budget
    largest_burst_tokens: int

    @property
    def replicas_needed(self) -> int | None:
        if self.tokens_per_s_needed is None:
            return None
        return max(1, math.ceil(self.tokens_per_s_needed / self.replica_tokens_per_s))


def fluid_ttft_s(arrival_s: np.ndarray, tokens: np.ndarray, own_s: np.ndarray,
                 tokens_per_s: float) -> np.ndarray:
    """TTFT_i = V_i / X + s_i (module docstring), vectorized: with U_j = C_j - X a_j (C_j the
    tokens that arrived before j), V_i = U_i - min_{j<=i} U_j."""
    order = np.argsort(arrival_s, kind="stable")
    a, w = arrival_s[order], tokens[order].astype(float)
    before = np.concatenate(([0.0], np.cumsum(w)[:-1]))
    u = before - tokens_per_s * a
    backlog = u - np.minimum.accumulate(u)
    out = np.empty_like(a)
    out[order] = backlog / tokens_per_s + own_s[order]
    return out


def largest_burst(arrival_s: np.ndarray, tokens: np.ndarray, window_s: float) -> tuple[int, int]:
    """Most requests (and their prompt tokens) arriving within any window of `window_s`."""
    order = np.argsort(arrival_s, kind="stable")
    a, w = arrival_s[order], np.concatenate(([0], np.cumsum(tokens[order])))
    end = np.searchsorted(a, a + window_s, side="right")
    counts = end - np.arange(a.size)
    i = int(np.argmax(counts))
    return int(counts[i]), int(w[end[i]] - w[i])


def burst_bound(arrival_s: np.ndarray, tokens: np.ndarray, own_s: np.ndarray,
                replica_tokens_per_s: float, budget_s: float, q: float) -> BurstBound:
    """The fluid estimate for one pool's requests (`own_s`: each prompt's prefill time on an
    idle replica; `q`: the percentile as a share, e.g. 0.9)."""
    n = int(arrival_s.size)
    big_n, big_tok = largest_burst(arrival_s, tokens, budget_s) if n else (0, 0)
    a_inf = float((own_s <= budget_s).mean()) if n else 1.0
    need = None
    if n and a_inf >= q:
        def attained(x: float) -> float:
            return float((fluid_ttft_s(arrival_s, tokens, own_s, x) <= budget_s).mean())

        lo, hi = 1.0, max(replica_tokens_per_s, 1.0)
        for _ in range(BISECTION_STEPS):          # X doubles up to 2^40 x one replica
            if attained(hi) >= q:
                break
            lo, hi = hi, hi * 2
        else:
            return BurstBound(n, a_inf, None, replica_tokens_per_s, big_n, big_tok)
        for _ in range(BISECTION_STEPS):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if attained(mid) < q else (lo, mid)
            if hi / lo < 1.001:
                break
        need = hi
    return BurstBound(n, a_inf, need, replica_tokens_per_s, big_n, big_tok)


@dataclass(frozen=True)
class PoolBursts:
    """The fluid estimate for one pool of a plan, and what it means for the plan."""

    pool: str
    replicas: int
    usd_per_replica_hour: float
    attainment_planned: float          # fluid attainment at the planned size (an upper bound)
    bound: BurstBound
    q: float = 0.9

    @property
    def misses(self) -> bool:
        return self.attainment_planned < self.q

    def line(self, budget_ms: float) -> str:
        b = self.bound
        head = (f"{NOTE_PREFIX} `{self.pool}` ({self.replicas} replica(s)) reaches at most "
                f"{self.attainment_planned:.1%} TTFT <= {budget_ms:g} ms even as one perfectly "
                f"pooled server (up to {b.largest_burst_requests} requests, "
                f"{b.largest_burst_tokens:,} prompt tokens, arrive within one budget)")
        if b.replicas_needed is None:
            return (f"{head}; only {b.attainment_unlimited:.1%} of its prompts prefill within "
                    f"the budget on an idle replica: p{self.q * 100:g} TTFT cannot be met at "
                    "any utilization on this shape")
        extra = (b.replicas_needed - self.replicas) * self.usd_per_replica_hour
        return (f"{head}; p{self.q * 100:g} needs at least {b.replicas_needed} replica(s) "
                f"(>= +${extra:.2f}/h for this pool; a floor, the simulator prices the rest)")


def plan_bursts(plan, input_tokens: np.ndarray, output_tokens: np.ndarray,
                arrival_s: np.ndarray, pm, seed: int = 0) -> list[PoolBursts]:
    """Per prefill / colocated pool of `plan` (a `Plan`), the fluid estimate on the requests
    it serves (`pm`: the PerfModel; classes by the plan's token bins, split between pools
    by their rates)."""
    from hetplan.perf import ReplicaShape

    q = float(plan.slo.get("percentile", 90.0)) / 100.0
    budget_s = plan.slo["ttft_ms"] / 1e3
    pm = pm.with_limits(plan.engine)
    inp = np.asarray(input_tokens, dtype=np.int64)
    outp = np.asarray(output_tokens, dtype=np.int64)
    arr = np.asarray(arrival_s, dtype=float)
    first = {}                                  # class -> [(pool index, rate)]
    for i, p in enumerate(plan.pools):
        if p.role != "decode":
            for r in p.routes:
                if r.rate_rps > 0:
                    first.setdefault(r.workload_class, []).append((i, r.rate_rps))
    owner = np.full(inp.size, -1)
    rng = np.random.Generator(np.random.PCG64(seed))
    for c in plan.classes:
        routes = first.get(c.name)
        held = in_bins(inp, outp, c)
        if not routes or held is None:
            continue
        m = np.flatnonzero(held & (owner < 0))
        rates = np.array([r for _, r in routes])
        owner[m] = np.array([i for i, _ in routes])[rng.choice(len(routes), m.size,
                                                               p=rates / rates.sum())]
    out = []
    for i, p in enumerate(plan.pools):
        on = owner == i
        if p.role == "decode" or not on.any():
            continue
        shape = ReplicaShape(p.gpu, p.tp, p.pp, p.weight_dtype, p.kv_dtype, p.ep, p.dp)
        tokens = inp[on]
        grid = np.unique(np.round(_LENGTH_GRID ** np.round(
            np.log(np.maximum(tokens, 1)) / math.log(_LENGTH_GRID))).astype(np.int64))
        times = np.array([pm.prefill_time_s(shape, int(n), 1) for n in grid])
        own = np.interp(tokens, grid, times)
        mean = max(1, int(tokens.mean()))
        k = max(1, pm.limits.max_num_batched_tokens // mean)
        rep_tok_s = k * mean / pm.prefill_time_s(shape, mean, k)
        b = burst_bound(arr[on], tokens, own, rep_tok_s, budget_s, q)
        planned = float((fluid_ttft_s(arr[on], tokens, own, rep_tok_s * p.replicas)
                         <= budget_s).mean())
        out.append(PoolBursts(p.name, p.replicas, p.cost_usd_per_hour / p.replicas, planned,
                              b, q))
    return out
