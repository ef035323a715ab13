"""Prefix caching in the simulator: prefill replicas that keep an LRU cache of prompt blocks.

A caching prefill replica holds up to `capacity_blocks` blocks (its KV memory less one batch
of prompt tokens in flight: `hetplan.prefix_cache.cache_capacity_blocks`, the rule the
planner sized with). When a batch starts, each prompt reuses the leading blocks of its chain
that the replica holds (capped at input - 1 tokens), is charged its remaining tokens against
the batch's token budget and in the step time, and then all its blocks become the most
recently used (evicting the least recently used past capacity). Blocks of prompts in the
same batch are matched before any of them is inserted (a step cannot read what it is
writing). The KV hand-off still ships the whole prompt.

Cache-aware routing (`cache_aware_pick`) follows vllm-router 0.1.17's `cache_aware` policy
with its default thresholds (router_args.py): when the pool is imbalanced (max load - min
load > 64 requests and max > 1.5 x min) the least loaded replica; otherwise the replica
holding the longest prefix of the prompt if that covers more than 30% of its blocks, else
the replica with the fewest cached blocks (vllm-router: the smallest prefix tree). Ties go
to the least loaded, then the lowest index. The router's own tree is approximated by the
engines' caches. Deterministic: no random draws.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from pydantic import BaseModel, ConfigDict

from hetplan.simulate.replicas import PrefillReplica


class CachingPrefillReplica(PrefillReplica):
    __slots__ = ("cache", "capacity_blocks", "block_tokens")

    def __init__(self, sim, pool, steps, max_tokens: int, max_seqs: int,
                 nic_bytes_per_s: float, capacity_blocks: int, block_tokens: int):
        super().__init__(sim, pool, steps, max_tokens, max_seqs, nic_bytes_per_s)
        self.cache: OrderedDict[int, None] = OrderedDict()
        self.capacity_blocks, self.block_tokens = capacity_blocks, block_tokens

    def match(self, rid: int) -> int:
        """Leading blocks of request `rid`'s prompt this replica holds."""
        chain, cache = self.sim.chains[rid], self.cache
        k = 0
        for h in chain:
            if h not in cache:
                break
            k += 1
        return k

    def start(self, now: float) -> None:
        sim, q, inp = self.sim, self.queue, self.sim.inp
        batch, new, hits = [], [], []
        tokens = 0
        while q and len(batch) < self.max_seqs:
            rid = q[0]
            c = min(self.match(rid) * self.block_tokens, max(inp[rid] - 1, 0))
            n = inp[rid] - c
            if batch and tokens + n > self.max_tokens:
                break
            q.popleft()
            batch.append(rid)
            new.append(n)
            hits.append(c)
            tokens += n
        cache, cached = self.cache, sim.cached
        for rid, c in zip(batch, hits):
            cached[rid] = c
            for h in sim.chains[rid]:
                cache[h] = None
                cache.move_to_end(h)
        while len(cache) > self.capacity_blocks:
            cache.popitem(last=False)
        t_start = sim.t_start
        for rid in batch:
            t_start[rid] = now
        self.batch, self.busy, self.t0 = batch, True, now
        sim.push(now + self.steps.prefill_s(new, hits), self, -1)


BALANCE_ABS_THRESHOLD = 64      # vllm-router 0.1.17 defaults (router_args.py)
BALANCE_REL_THRESHOLD = 1.5
CACHE_THRESHOLD = 0.3


def cache_aware_pick(replicas: list, rid: int):
    """The replica a cache-aware router sends request `rid` to (module docstring)."""
    loads = [r.load for r in replicas]
    lo, hi = min(loads), max(loads)
    if hi - lo > BALANCE_ABS_THRESHOLD and hi > BALANCE_REL_THRESHOLD * lo:
        return min(replicas, key=_load)
    blocks = max(1, len(replicas[0].sim.chains[rid]))
    best = max(replicas, key=lambda r: (r.match(rid), -r.load))
    if best.match(rid) / blocks > CACHE_THRESHOLD:
        return best
    return min(replicas, key=lambda r: (len(r.cache), r.load))


def _load(r) -> int:
    return r.load


class PoolHits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str
    requests: int
    hit_rate: float                    # cached / prompt tokens of the pool's requests
    planned_hit_rate: float | None     # what the plan assumed for the same requests' classes


class PrefixSimResult(BaseModel):
    """Prefix-cache figures of a simulation (prefill pools that cache)."""

    model_config = ConfigDict(extra="forbid")

    routing: str
    block_tokens: int
    hit_rate: float                    # over the caching pools' prompt tokens
    planned_hit_rate: float            # the plan's assumption, weighted like `hit_rate`
    cached_tokens: int
    prompt_tokens: int
    pools: list[PoolHits]


def prefix_result(plan, input_tokens: np.ndarray, cached: np.ndarray, first_pool: np.ndarray,
                  cls: np.ndarray, class_names: list[str], caching: list[int]
                  ) -> PrefixSimResult | None:
    """Simulated vs planned hit rates of the caching pools (indices `caching`)."""
    pc = plan.prefix_cache
    if pc is None or not caching:
        return None
    planned = {(c.pool, c.workload_class): c.cached_tokens for c in pc.classes}
    rows, tot_c, tot_in, tot_plan = [], 0, 0, 0.0
    for i in caching:
        name = plan.pools[i].name
        m = first_pool == i
        inp = input_tokens[m]
        c = int(cached[m].sum())
        # the plan's cached tokens per request of each class, capped at its prompt
        exp = np.array([planned.get((name, class_names[j]), 0.0) for j in cls[m]])
        plan_c = float(np.minimum(exp, np.maximum(inp - 1, 0)).sum())
        n_in = int(inp.sum())
        rows.append(PoolHits(pool=name, requests=int(m.sum()), hit_rate=c / n_in if n_in else 0,
                             planned_hit_rate=plan_c / n_in if n_in else None))
        tot_c, tot_in, tot_plan = tot_c + c, tot_in + n_in, tot_plan + plan_c
    return PrefixSimResult(routing=pc.routing, block_tokens=pc.block_tokens,
                           hit_rate=tot_c / tot_in if tot_in else 0.0,
                           planned_hit_rate=tot_plan / tot_in if tot_in else 0.0,
                           cached_tokens=tot_c, prompt_tokens=tot_in, pools=rows)


def prefix_text(r: PrefixSimResult) -> str:
    """The prefix-cache lines of `hetplan simulate`'s summary."""
    per = "; ".join(f"{p.pool} {p.hit_rate:.1%}"
                    + (f" (planned {p.planned_hit_rate:.1%})" if p.planned_hit_rate is not None
                       else "") for p in r.pools)
    return (f"prefix cache ({r.routing} routing, {r.block_tokens}-token blocks): "
            f"{r.hit_rate:.1%} of prefill prompt tokens hit, planned {r.planned_hit_rate:.1%}; "
            f"{per}")
