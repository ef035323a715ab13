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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BISECTION_STEPS = 40


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
