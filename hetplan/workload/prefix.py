"""Prefix-cache hit rates from a trace's prompt blocks (vLLM automatic prefix caching).

Model. A prompt is a chain of blocks of `block_tokens` tokens; a block's id stands for the
whole prefix up to and including it (Mooncake's `hash_ids` are such chained hashes, 512
tokens a block). A replica keeps the blocks of the prompts it prefilled in an LRU cache of
C blocks (its spare KV memory, see `capacity_blocks`); a new prompt reuses its longest
leading run of cached blocks, and every block of the prompt is then (re)inserted as the
most recent. The cached tokens of a request are k x block_tokens for k leading hits, capped
at input - 1 (the engine always computes the last prompt token).

- One cache seeing the whole stream: Mattson's stack distance gives every capacity at once.
  A block's distance is the number of distinct blocks touched since its last use (inf on
  first use); it hits in an LRU of C blocks iff the distance is < C, and a prompt's k-th
  block is reused iff the first k blocks all hit (the running maximum of the distances).
- Cache-aware routing over n replicas (requests go to the replica holding their prefix,
  like llm-d's and vllm-router's `cache_aware` policies): the stream splits by prefix, each
  part fits its replica's cache, so the pool behaves like one cache of n x C blocks. The
  planner uses n = 1 (hit(C)), which is a lower bound for n >= 1: capacities never count
  on replicas the solver may not buy.
- Random (or round-robin) routing over n replicas: each replica sees a random 1/n of the
  requests, and a prefix hits only where its earlier use landed on the same replica;
  `simulate_lru` replays that exactly (seeded), since no closed form holds for the popular
  shared blocks (a system prompt hits on every replica, a conversation's history on 1/n).

Traces without block ids but with sessions and `prefix_tokens` (the agentic generator) get
chains derived from them: a request's first prefix_tokens // DERIVED_BLOCK_TOKENS blocks are
its session's previous request's, the rest new (16 tokens: vLLM's default block size).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from hetplan.workload.trace import Trace

DERIVED_BLOCK_TOKENS = 16       # vLLM's default --block-size, for chains derived from sessions


@dataclass(frozen=True)
class BlockChains:
    """Per request, its prompt's block ids (object array of int64 arrays)."""

    chains: np.ndarray
    block_tokens: int
    input_tokens: np.ndarray


def block_chains(trace: Trace) -> BlockChains | None:
    """The trace's prompt blocks: its block ids, else chains derived from sessions and
    prefix tokens (see the module docstring); None when it has neither."""
    if trace.block_hashes is not None and trace.block_tokens > 0:
        return BlockChains(trace.block_hashes, trace.block_tokens, trace.input_tokens)
    if trace.session_id is None or trace.prefix_tokens is None:
        return None
    b = DERIVED_BLOCK_TOKENS
    last: dict[int, np.ndarray] = {}
    chains = np.empty(trace.num_requests, dtype=object)
    next_id = 0
    for i in range(trace.num_requests):
        n = -(-int(trace.input_tokens[i]) // b)
        s = int(trace.session_id[i])
        prev = last.get(s, np.zeros(0, dtype=np.int64)) if s >= 0 else np.zeros(0, np.int64)
        keep = min(int(trace.prefix_tokens[i]) // b, prev.size, n)
        fresh = np.arange(next_id, next_id + n - keep, dtype=np.int64)
        next_id += n - keep
        chains[i] = np.concatenate([prev[:keep], fresh])
        if s >= 0:
            last[s] = chains[i]
    return BlockChains(chains, b, trace.input_tokens)


def _cached_tokens(k_hits: np.ndarray, bc: BlockChains) -> np.ndarray:
    return np.minimum(k_hits * bc.block_tokens, np.maximum(bc.input_tokens - 1, 0))


class HitCurve:
    """One LRU cache over the whole stream, every capacity at once (Mattson)."""

    def __init__(self, bc: BlockChains):
        self.bc = bc
        sizes = np.fromiter((c.size for c in bc.chains), dtype=np.int64, count=bc.chains.size)
        self.request = np.repeat(np.arange(sizes.size), sizes)
        self.run_max = _running_max_distances(bc.chains, sizes)
        self.num_requests = sizes.size
        self._memo: dict[int, np.ndarray] = {}

    def cached_tokens(self, capacity_blocks: int) -> np.ndarray:
        """Per request, tokens served from an LRU cache of `capacity_blocks` blocks."""
        c = int(max(capacity_blocks, 0))
        v = self._memo.get(c)
        if v is None:
            hit = self.run_max < c
            k = np.bincount(self.request[hit], minlength=self.num_requests)
            v = self._memo[c] = _cached_tokens(k, self.bc)
        return v

    def hit_rate(self, capacity_blocks: int) -> float:
        """Share of all prompt tokens served from the cache."""
        return float(self.cached_tokens(capacity_blocks).sum()) / max(
            1, int(self.bc.input_tokens.sum()))


def _running_max_distances(chains: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per block use, in stream order: the running maximum over the prompt's blocks so far
    of the LRU stack distance (inf -> a large int). Fenwick tree over use positions: a block
    counts at the position of its latest use, so the distinct blocks used since position p
    are the marks after p."""
    total = int(sizes.sum())
    tree = [0] * (total + 1)
    last: dict[int, int] = {}
    out = np.empty(total, dtype=np.int64)
    big = np.iinfo(np.int64).max
    pos = 0
    marks = 0
    for chain in chains:
        run = 0
        for h in chain.tolist():
            p = last.get(h)
            if p is None:
                d = big
            else:
                # marks at positions <= p (p itself is h's own mark)
                i, s = p, 0
                while i > 0:
                    s += tree[i]
                    i -= i & -i
                d = marks - s
                i = p                       # remove h's old mark
                while i <= total:
                    tree[i] -= 1
                    i += i & -i
                marks -= 1
            pos += 1
            i = pos
            while i <= total:
                tree[i] += 1
                i += i & -i
            marks += 1
            last[h] = pos
            run = d if d > run else run
            out[pos - 1] = run
    return out


def simulate_lru(bc: BlockChains, capacity_blocks: int, replica: np.ndarray,
                 num_replicas: int) -> np.ndarray:
    """Per request, cached tokens when request i is prefilled on replica `replica[i]`, each
    replica an LRU of `capacity_blocks` blocks (exact replay, in stream order)."""
    caches = [OrderedDict() for _ in range(num_replicas)]
    k = np.zeros(bc.chains.size, dtype=np.int64)
    cap = int(capacity_blocks)
    for i, chain in enumerate(bc.chains):
        cache = caches[int(replica[i])]
        ids = chain.tolist()
        j = 0
        while j < len(ids) and ids[j] in cache:
            j += 1
        k[i] = j
        for h in ids:
            cache[h] = None
            cache.move_to_end(h)
        while len(cache) > cap:
            cache.popitem(last=False)
    return _cached_tokens(k, bc)


def random_assignment(n_requests: int, num_replicas: int, seed: int = 0) -> np.ndarray:
    """Replica of every request under random routing (seeded)."""
    return np.random.Generator(np.random.PCG64(seed)).integers(0, num_replicas, n_requests)


def pool_cached_tokens(bc: BlockChains, curve: HitCurve | None, capacity_blocks: int,
                       replicas: int, routing: str, seed: int = 0) -> np.ndarray:
    """Per request, cached tokens in a pool of `replicas` replicas of `capacity_blocks`
    blocks each: cache-aware routing = one cache of replicas x capacity (the curve); random
    routing = an exact replay of a seeded random spread."""
    if routing == "cache_aware":
        curve = curve or HitCurve(bc)
        return curve.cached_tokens(replicas * capacity_blocks)
    if routing != "random":
        raise ValueError(f"routing must be 'cache_aware' or 'random', not {routing!r}")
    return simulate_lru(bc, capacity_blocks, random_assignment(bc.chains.size, replicas, seed),
                        replicas)
