"""The discrete-event core: pools of replicas, KV links between them, and one run.

`run` takes plain arrays (arrivals, token counts, the first-stage and decode pool of every
request) and pool specifications, so tests can drive it with fixed step times; `run_plan`
in `hetplan.simulate.sim` builds those from a Plan and the perf model.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hetplan.engine_limits import DEFAULT_ENGINE_LIMITS as _LIM
from hetplan.simulate.colocated import ColocatedReplica
from hetplan.simulate.prefix import CachingPrefillReplica, cache_aware_pick
from hetplan.simulate.replicas import DecodeReplica, PrefillReplica, run_heap
from hetplan.simulate.router import DISPATCH, check_dispatch, pick_replica


@dataclass(frozen=True)
class LinkModel:
    """A KV hand-off path, timed like `PerfModel.kv_transfer_s`: the transfer is pipelined
    with the prefill layer by layer, so what shows is the part that outlasts the prefill
    plus the last `exposed_layers` layers, plus a fixed latency (and a cross-vendor
    translation where the two pools' vendors differ)."""

    bytes_per_s: float
    latency_s: float
    exposed_layers: int = 0
    num_layers: int = 1

    def transfer_s(self, nbytes: float, prefill_s: float) -> tuple[float, float]:
        """(seconds of bytes on one link, seconds added after the prefill)."""
        total = nbytes / self.bytes_per_s
        exposed = total - prefill_s
        exposed = (exposed if exposed > 0 else 0.0) + self.exposed_layers * total / self.num_layers
        return total, (exposed if exposed < total else total) + self.latency_s


@dataclass
class PoolSpec:
    """One pool: `replicas` replicas of a role with a step model (`StepModel` or a
    stand-in). `links[d]` is the KV path to decode pool d (prefill pools only). Defaults
    are the default engine limits (`hetplan.engine_limits`); `sim.pool_specs` sets every
    one from the plan's limits."""

    name: str
    role: str                        # prefill | decode | colocated
    replicas: int
    steps: object
    max_seqs: int = _LIM.max_num_seqs
    kv_tokens: int = 1 << 62         # KV-cache capacity per replica, tokens
    prefill_max_tokens: int = _LIM.max_num_batched_tokens   # prompt tokens per prefill step
    token_budget: int = _LIM.max_num_batched_tokens         # colocated: tokens per mixed step
    min_chunk: int = _LIM.min_chunk_tokens   # colocated: prompt tokens per step at least
    nic_bytes_per_s: float = 1.0     # prefill: the replica's NICs together
    links: dict[int, LinkModel] = field(default_factory=dict)
    prefix_blocks: int = 0           # prefill: prefix-cache blocks per replica (0: no cache)
    prefix_block_tokens: int = 0
    cache_aware: bool = False        # prefill: route to the replica holding the prefix
    dispatch: str = DISPATCH         # first stage: the router's rule (`router.DISPATCH_RULES`)


class _Pool:
    __slots__ = ("spec", "replicas", "links", "is_prefill")

    def __init__(self, spec: PoolSpec, sim: Sim):
        self.spec, self.links = spec, spec.links
        self.is_prefill = spec.role == "prefill"
        if spec.role == "prefill" and spec.prefix_blocks > 0:
            self.replicas = [CachingPrefillReplica(sim, self, spec.steps, spec.prefill_max_tokens,
                                                   spec.max_seqs, spec.nic_bytes_per_s,
                                                   spec.prefix_blocks, spec.prefix_block_tokens)
                             for _ in range(spec.replicas)]
        elif spec.role == "prefill":
            self.replicas = [PrefillReplica(sim, self, spec.steps, spec.prefill_max_tokens,
                                            spec.max_seqs, spec.nic_bytes_per_s)
                             for _ in range(spec.replicas)]
        elif spec.role == "decode":
            self.replicas = [DecodeReplica(sim, self, spec.steps, spec.max_seqs, spec.kv_tokens)
                             for _ in range(spec.replicas)]
        elif spec.role == "colocated":
            self.replicas = [ColocatedReplica(sim, self, spec.steps, spec.max_seqs,
                                              spec.kv_tokens, spec.token_budget, spec.min_chunk)
                             for _ in range(spec.replicas)]
        else:
            raise ValueError(f"unknown pool role {spec.role!r}")
        if check_dispatch(spec.dispatch) == "central_queue" and self.is_prefill:
            shared: deque[int] = deque()     # late binding: one queue the replicas pull from
            for r in self.replicas:
                r.queue = shared


class Sim:
    """Per-request state (Python lists: the hot loop indexes them) and the event heap."""

    def __init__(self, input_tokens, output_tokens, kv_layer_tokens, decode_pool):
        n = len(input_tokens)
        self.inp = [int(x) for x in input_tokens]
        self.out = [int(x) for x in output_tokens]
        self.kvl = [float(x) for x in kv_layer_tokens]
        self.dpool = [int(x) for x in decode_pool]
        self.gen = [0] * n
        self.fin = [0] * n
        self.preempt = [0] * n
        self.dropped = [0] * n
        self.t_start = [-1.0] * n
        self.t_kv = [-1.0] * n          # disaggregated: the prompt's KV reached its decode pool
        self.t_first = [-1.0] * n
        self.t_done = [-1.0] * n
        self.cached = [0] * n                  # prompt tokens served by a prefix cache
        self.chains: list | None = None        # per request, its prompt's block ids
        self.heap: list = []
        self._seq = 0
        self.pools: list[_Pool] = []

    def push(self, t: float, obj, rid: int) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, self._seq, obj, rid))


@dataclass
class RunResult:
    """Per-request times (s; -1 where never reached) and per-pool activity."""

    arrival_s: np.ndarray
    start_s: np.ndarray              # prefill (or first chunk) began
    first_token_s: np.ndarray
    done_s: np.ndarray
    generated: np.ndarray
    preemptions: np.ndarray
    dropped: np.ndarray
    pool_busy_s: list[list[float]]   # per pool, per replica
    pool_batch_s: list[float]        # per pool: integral of decode batch over time
    pool_steps: list[int]
    pool_preemptions: list[int]
    outstanding: int = 0             # requests still held by a replica at the end (0)
    cached_tokens: np.ndarray | None = None   # per request, prompt tokens a prefix cache served
    kv_ready_s: np.ndarray | None = None    # disaggregated: KV at the decode pool (else -1)
    first_pool: np.ndarray | None = None    # per request: prefill / colocated pool index
    decode_pool: np.ndarray | None = None   # per request: decode pool index (-1: none)
    workload_class: np.ndarray | None = None  # per request: class index (set by the caller)


def run(arrival_s: np.ndarray, input_tokens: np.ndarray, output_tokens: np.ndarray,
        first_pool: np.ndarray, decode_pool: np.ndarray, pools: list[PoolSpec],
        progress: Callable[[float], None] | None = None, chains=None,
        seed: int = 0) -> RunResult:
    """Replay requests through the pools. A request whose first pool is a prefill pool and
    whose decode pool is -1 ends when its prompt is prefilled (prefill-only). `chains`: per
    request, its prompt's block ids (needed by pools with a prefix cache). `seed`: the
    dispatch rule's draws (`power_of_two`)."""
    if len(pools) == 0:
        raise ValueError("no pools")
    lens, inv = np.unique(np.asarray(input_tokens, dtype=np.int64), return_inverse=True)
    steps0 = pools[0].steps
    kvl = np.array([steps0.kv_layer_tokens(int(n)) for n in lens], dtype=float)[inv]
    sim = Sim(input_tokens, output_tokens, kvl, decode_pool)
    if any(p.prefix_blocks > 0 for p in pools):
        if chains is None:
            raise ValueError("a pool caches prefixes but the requests have no block chains")
        sim.chains = [c.tolist() for c in chains]
    sim.pools = [_Pool(p, sim) for p in pools]
    first = [sim.pools[int(i)] for i in first_pool]
    rnd = random.Random(seed)

    def route(now: float, rid: int) -> None:
        pool = first[rid]
        if pool.spec.cache_aware and pool.spec.prefix_blocks > 0:
            cache_aware_pick(pool.replicas, rid).enqueue(now, rid)
        else:
            pick_replica(pool.replicas, pool.spec.dispatch, rnd).enqueue(now, rid)

    run_heap(sim, np.asarray(arrival_s, dtype=float).tolist(), route, progress)
    return RunResult(
        arrival_s=np.asarray(arrival_s, dtype=float), start_s=np.array(sim.t_start),
        first_token_s=np.array(sim.t_first), done_s=np.array(sim.t_done),
        generated=np.array(sim.gen), preemptions=np.array(sim.preempt),
        dropped=np.array(sim.dropped, dtype=bool),
        pool_busy_s=[[r.busy_s for r in p.replicas] for p in sim.pools],
        pool_batch_s=[sum(getattr(r, "batch_s", 0.0) for r in p.replicas) for p in sim.pools],
        pool_steps=[sum(r.steps_run for r in p.replicas) for p in sim.pools],
        pool_preemptions=[sum(getattr(r, "preemptions", 0) for r in p.replicas)
                          for p in sim.pools],
        outstanding=sum(r.load for p in sim.pools for r in p.replicas),
        cached_tokens=np.array(sim.cached, dtype=np.int64),
        kv_ready_s=np.array(sim.t_kv), first_pool=np.asarray(first_pool, dtype=np.int64),
        decode_pool=np.asarray(decode_pool, dtype=np.int64))
