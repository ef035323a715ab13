"""Prefix reuse in the plan: the cached prompt tokens each class can count on in a prefill
pool, and what that saves (hit-rate model: `hetplan.workload.prefix`).

Assumptions (the planner's; the simulator replays the real cache, `simulate.prefix`):
- only prefill pools of a disaggregated plan reuse prefixes (colocated pools are charged in
  full: a conservative simplification);
- a prefill replica's cache is its KV memory less one full batch of prompt tokens
  (`max_num_batched_tokens` per engine) in flight: `capacity_blocks`;
- a candidate's pool size, which the cache depends on, is taken as the replicas it would
  buy carrying every class alone at the target utilization with the cache: the fixed point
  n = ceil(sum_w rate_w / (capacity_w(hit(n)) x rho)), iterated from the uncached size
  (`pool_replicas`; when it does not settle, the smaller of the last two);
- after the MILP, a chosen prefill pool whose replicas differ from the size its hit rates
  assumed is re-sized for the replicas it got and the MILP re-solved, until the two agree
  (`settle_pool_sizes`, at most SETTLE_ROUNDS rounds);
- cache-aware routing (the default; the emitted router's prefill policy is then
  `cache_aware`) makes n replicas of C blocks one cache of n x C; random routing is replayed
  with a seeded random spread;
- a class's mean cached tokens shorten its mean prompt; its p90 prompt (the TTFT check) is
  shortened in the same proportion; a class a candidate cannot prefill within the TTFT
  budget without the cache stays infeasible on it (its p90 prompt may miss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict

from hetplan.workload.classes import in_bins
from hetplan.workload.prefix import BlockChains, HitCurve, block_chains, pool_cached_tokens


class ClassPrefix(BaseModel):
    """What the cache saves one class in one prefill pool."""

    model_config = ConfigDict(extra="forbid")

    workload_class: str
    pool: str
    rate_rps: float
    mean_input_tokens: float
    cached_tokens: float                 # mean per request
    hit_rate: float                      # cached / input tokens
    saved_tokens_per_s: float            # prefill tokens not computed
    saved_usd_per_hour: float            # prefill replicas not bought (pro rata)
    prefill_usd_per_hour: float = 0.0    # its prefill replicas with the cache (pro rata)


class PrefixCachePlan(BaseModel):
    """The prefix-cache assumption a plan was sized with (absent: none)."""

    model_config = ConfigDict(extra="forbid")

    routing: str                         # cache_aware | random (inside a prefill pool)
    block_tokens: int
    assumed_replicas: dict[str, int]     # prefill pool -> replicas its hit rate assumed
    capacity_blocks: dict[str, int]      # prefill pool -> cache blocks per replica
    hit_rate: float                      # over the prefill pools' prompt tokens
    classes: list[ClassPrefix]

    @property
    def saved_usd_per_hour(self) -> float:
        return sum(c.saved_usd_per_hour for c in self.classes)

    @property
    def work_share(self) -> float:
        """Share of the prefill replica-time (pro rata) the cache removes."""
        total = sum(c.saved_usd_per_hour + c.prefill_usd_per_hour for c in self.classes)
        return self.saved_usd_per_hour / total if total else 0.0


def cache_capacity_blocks(kv_capacity_tokens: int, max_batched_tokens: int, dp: int,
                          block_tokens: int) -> int:
    """Prefix-cache blocks of a prefill replica: its KV capacity less one batch of prompt
    tokens in flight per engine (planner and simulator both use this rule)."""
    free = int(kv_capacity_tokens) - int(max_batched_tokens) * max(1, dp)
    return max(0, free // max(1, block_tokens))


@dataclass
class PrefixCharge:
    """Cached tokens per class for a pool of a given size and cache (memoised)."""

    chains: BlockChains
    routing: str
    members: dict[str, np.ndarray]       # class -> its requests' indices
    utilization: float = 1.0             # the target utilization prefill pools are sized at
    curve: HitCurve | None = None
    _memo: dict = field(default_factory=dict)

    @property
    def block_tokens(self) -> int:
        return self.chains.block_tokens

    def capacity_blocks(self, pm, shape) -> int:
        return cache_capacity_blocks(pm.memory(shape).kv_capacity_tokens,
                                     pm.limits.max_num_batched_tokens, shape.dp,
                                     self.block_tokens)

    def per_request(self, replicas: int, capacity_blocks: int) -> np.ndarray:
        key = (int(replicas), int(capacity_blocks))
        v = self._memo.get(key)
        if v is None:
            if self.routing == "cache_aware" and self.curve is None:
                self.curve = HitCurve(self.chains)
            v = self._memo[key] = pool_cached_tokens(self.chains, self.curve, capacity_blocks,
                                                     max(1, replicas), self.routing)
        return v

    def class_cached_tokens(self, name: str, replicas: int, capacity_blocks: int) -> float:
        idx = self.members.get(name)
        if idx is None or idx.size == 0 or capacity_blocks <= 0:
            return 0.0
        return float(self.per_request(replicas, capacity_blocks)[idx].mean())


def prefix_charge(scenario, trace, classes) -> PrefixCharge | None:
    """The charge a scenario asks for (see `Constraints.prefix_cache`), or None."""
    k = scenario.constraints
    if k.prefix_cache is False or trace is None:
        return None
    if k.prefix_cache is None and trace.block_hashes is None:
        return None
    bc = block_chains(trace)
    if bc is None:
        return None
    return PrefixCharge(bc, k.prefix_routing, class_members(trace, classes),
                        k.target_utilization)


def class_members(trace, classes) -> dict[str, np.ndarray]:
    """Requests in each class's (input, output) bins (the bins `workload.bucket` made)."""
    return {c.name: np.flatnonzero(in_bins(trace.input_tokens, trace.output_tokens, c))
            for c in classes}


POOL_SIZE_ROUNDS = 6


def solo_replicas(rates: dict[str, float], capacities: dict[str, float], rho: float) -> int:
    """Replicas a candidate buys carrying every class alone at utilization rho (>= 1)."""
    need = sum(r / capacities[w] for w, r in rates.items() if capacities.get(w, 0) > 0)
    return max(1, math.ceil(need / rho - 1e-9))


def pool_replicas(size_with, n0: int) -> int:
    """The fixed point n = size_with(n) from n0 (the uncached size); `size_with(n)` is the
    replicas needed when the hit rates assume n. Unsettled: the smaller of the last two."""
    n = n0
    for _ in range(POOL_SIZE_ROUNDS):
        m = size_with(n)
        if m == n:
            return n
        prev, n = n, m
    return min(prev, n)


def prefix_plan(charge: PrefixCharge | None, out, rho: float,
                classes: dict) -> PrefixCachePlan | None:
    """The plan's record of what its prefill pools count on the cache for (`out`: the
    MILP's outcome; a pool is named as `planner.pool_name` names it)."""
    if charge is None:
        return None
    rows, replicas, blocks = [], {}, {}
    cached_sum = input_sum = 0.0
    for ch in out.chosen:
        c = ch.candidate
        if c.role != "prefill":
            continue
        name = f"{c.role}-{c.shape.label()}"
        replicas[name], blocks[name] = c.prefix_replicas, c.prefix_blocks
        for w, r in sorted(ch.rates.items()):
            cc, cl = c.per_class[w], classes[w]
            unc = cc.uncached_capacity_rps
            saved_usd = (r * c.price_usd_per_hour / rho * (1 / unc - 1 / cc.capacity_rps)
                         if unc == unc and unc > 0 and cc.capacity_rps > 0 else 0.0)
            cached_sum += r * cc.cached_tokens
            input_sum += r * cl.mean_input_tokens
            rows.append(ClassPrefix(
                workload_class=w, pool=name, rate_rps=r, mean_input_tokens=cl.mean_input_tokens,
                cached_tokens=cc.cached_tokens,
                hit_rate=cc.cached_tokens / max(cl.mean_input_tokens, 1.0),
                saved_tokens_per_s=r * cc.cached_tokens, saved_usd_per_hour=saved_usd,
                prefill_usd_per_hour=(r * c.price_usd_per_hour / rho / cc.capacity_rps
                                      if cc.capacity_rps > 0 else 0.0)))
    return PrefixCachePlan(routing=charge.routing, block_tokens=charge.block_tokens,
                           assumed_replicas=replicas, capacity_blocks=blocks,
                           hit_rate=cached_sum / input_sum if input_sum else 0.0, classes=rows)


def prefix_section(plan) -> list[str]:
    """report.md: what the plan counts on the prefix cache for, per class and pool."""
    pc = plan.prefix_cache
    if pc is None:
        return []
    from hetplan.tables import fmt_num, markdown_table
    router = ("cache-aware (the emitted router's prefill policy is `cache_aware`)"
              if pc.routing == "cache_aware" else "random (no prefix affinity)")
    rows = [[c.pool, c.workload_class, fmt_num(c.rate_rps), fmt_num(c.mean_input_tokens),
             fmt_num(c.cached_tokens), f"{c.hit_rate:.1%}", fmt_num(c.saved_tokens_per_s),
             f"{c.saved_usd_per_hour:.2f}"] for c in pc.classes]
    pools = ", ".join(f"{p}: {pc.capacity_blocks[p]:,} blocks x {pc.assumed_replicas[p]} "
                      "replica(s) assumed" for p in sorted(pc.capacity_blocks))
    return ["## Prefix cache", "",
            f"Prefill is charged for prefix-cache misses only: {pc.hit_rate:.1%} of the prefill "
            f"pools' prompt tokens are expected from the cache ({pc.block_tokens}-token blocks, "
            f"LRU over each replica's spare KV memory; routing {router}). Cache per pool: "
            f"{pools}. The cache saves about ${pc.saved_usd_per_hour:.2f}/h of prefill "
            f"replicas, {pc.work_share:.1%} of the prefill replica-time (pro rata; the plan "
            "buys whole replicas). `constraints.prefix_cache: false` plans without it.", "",
            markdown_table(["pool", "class", "req/s", "mean in", "cached tokens", "hit rate",
                            "prefill tok/s saved", "$/h saved"], rows), ""]


SETTLE_ROUNDS = 6


def _caching(out) -> list:
    return [ch for ch in out.chosen
            if ch.candidate.role == "prefill" and ch.candidate.prefix_blocks > 0]


def _cost(out) -> float:
    return sum(ch.replicas * ch.candidate.price_usd_per_hour for ch in out.chosen)


def settle_pool_sizes(ctx, cands: list, out, resolve, resize):
    """(outcome, candidates) whose chosen prefill pools each got at least the replicas
    their hit rates assumed (never counting on cache a pool does not have), as close to
    the replicas they got as SETTLE_ROUNDS re-solves find: a pool that got more than it
    assumed is re-sized for what it got; one that got fewer is re-sized halfway back
    towards its largest assumption that held. The cheapest such outcome wins (the first
    outcome holds by construction when every candidate assumed its solo size; otherwise
    the last one is returned). `resolve(candidates)` solves again; `resize(candidate, n)`
    re-sizes a prefill candidate for n replicas (`candidates.with_prefix_cache`)."""
    if ctx.prefix is None or not _caching(out):
        return out, cands
    held: dict[str, int] = {}                # largest assumption a pool got, per candidate
    best = None
    for round_ in range(SETTLE_ROUNDS + 1):
        fix = {}
        for ch in _caching(out):
            key, a, b = ch.candidate.key, ch.candidate.prefix_replicas, ch.replicas
            if b >= a:
                held[key] = max(held.get(key, 0), a)
                if b > a:
                    fix[key] = b
            else:
                lo = held.get(key, 1)
                fix[key] = max(lo, b, (lo + a) // 2)
        if all(ch.replicas >= ch.candidate.prefix_replicas for ch in _caching(out)) and (
                best is None or _cost(out) <= _cost(best[0]) + 1e-9):
            best = (out, cands)
        if not fix or round_ == SETTLE_ROUNDS:
            break
        cands = [resize(c, fix[c.key]) if c.key in fix else c for c in cands]
        new = resolve(cands)
        if not new.solution.has_solution:
            break
        out = new
    return best if best is not None else (out, cands)
