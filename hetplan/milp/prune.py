"""Dominated candidates, removed before the MILP when the candidate set is large.

Rule: candidate a is dominated by b when
- both have the same role and the same GPU type (so the same vendor, availability pool,
  spot share and N+1 node set),
- b costs no more per hour and has at least a's capacity for every class (and, with
  scope workload, at least a's capacity at the relaxed targets too),
- b fits wherever a fits: b's GPUs per stage (TP x DP) and PP are no larger than a's (so b
  needs no more GPUs, and each of its stages no more GPUs of one node),
- for prefill and decode, b has a's GPU count and KV dtype (the KV-bandwidth rows count one
  NIC per GPU and the KV bytes by dtype; the one-KV-dtype rule ties P and D together).

Why the optimum cannot change: in any solution, move a's replicas and routed rates onto b.
Every class's load on b is no more than it was on a (capacity >= a's), the replica count is
the same, cost and budget use no more (price <= a's, same tie-break per replica), the GPU
type's availability is charged no more GPUs, and the vendor, KV-dtype and KV-bandwidth rows
see the same or fewer terms; a pool's fixed cost and the per-role pool cap count no more
pools (a's replicas join b's pool or take a's place); N+1 spares carry over (b's TP fits on at least a's nodes, its
PP is no larger). So a solution without a exists at no higher cost (or the same goodput),
and dropping a keeps the optimal objective. Ties (each dominates the other) keep the first
in candidate order, so the result is deterministic.

Under queueing sizing (`latency_too`) a pool's capacity also depends on its latency and
batch (`hetplan.slo_capacity`): b must also have no more service latency (TTFT part) and
at least a's batch for every class, so its capacity curve is no lower than a's at any size.
"""

from __future__ import annotations

from collections.abc import Sequence

from hetplan.candidates import Candidate

PRUNE_ABOVE = 200      # prune only candidate sets larger than this (small MILPs are fast)


def dominates(b: Candidate, a: Candidate, classes: Sequence[str],
              relaxed: dict[str, dict[str, float]] | None = None,
              latency_too: bool = False) -> bool:
    """True when b can replace a in any solution at no extra cost (the module's rule);
    `relaxed`: candidate key -> class -> capacity at the relaxed targets (scope workload);
    `latency_too` (queueing sizing): b must also be no slower and batch no less per class."""
    sa, sb = a.shape, b.shape
    if b.role != a.role or sb.gpu != sa.gpu or b.price_usd_per_hour > a.price_usd_per_hour:
        return False
    if sb.gpus_per_stage > sa.gpus_per_stage or sb.pp > sa.pp:
        return False
    if a.role != "colocated" and (sb.num_gpus != sa.num_gpus or sb.kv_dtype != sa.kv_dtype):
        return False
    if relaxed is not None:
        ra, rb = relaxed.get(a.key, {}), relaxed.get(b.key, {})
        if any(rb.get(w, 0.0) < ra.get(w, 0.0) for w in classes):
            return False
    if latency_too and not all(_no_slower(b, a, w) for w in classes if a.capacity(w) > 0):
        return False
    return all(b.capacity(w) >= a.capacity(w) for w in classes)


def _no_slower(b: Candidate, a: Candidate, w: str) -> bool:
    pa, pb = a.per_class[w], b.per_class.get(w)
    if pb is None:
        return False
    ta = pa.ttft_ms if pa.ttft_ms == pa.ttft_ms else 0.0     # NaN (decode): no latency part
    tb = pb.ttft_ms if pb.ttft_ms == pb.ttft_ms else 0.0
    return tb <= ta and pb.batch >= pa.batch


def prune_dominated(candidates: Sequence[Candidate], classes: Sequence[str],
                    relaxed: dict[str, dict[str, float]] | None = None,
                    latency_too: bool = False) -> list[Candidate]:
    """`candidates` less the dominated ones, in their original order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(candidates):
        groups.setdefault((c.role, c.shape.gpu), []).append(i)
    drop: set[int] = set()
    for idx in groups.values():
        for i in idx:
            a = candidates[i]
            for j in idx:
                if j == i:
                    continue
                b = candidates[j]
                if dominates(b, a, classes, relaxed, latency_too) and \
                        (j < i or not dominates(a, b, classes, relaxed, latency_too)):
                    drop.add(i)
                    break
    return [c for i, c in enumerate(candidates) if i not in drop]
