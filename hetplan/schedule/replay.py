"""Replay requests on pools whose replicas come and go: the per-plan simulator's replicas
(`hetplan.simulate`: engine steps from the perf model, the router's dispatch rule
`router.DISPATCH` among the replicas up, KV hand-offs) with each replica up over a given
interval of the run (the `central_queue` what-if is not replayed here).

- A replica joins its pool at its `up_s` (a warm-up ends, or the run starts) and takes
  requests from then; requests that found no replica up in their pool wait in the pool's
  backlog and go to the first replica that comes up.
- At its `down_s` (a spot preemption, or the scaler drops it) a replica leaves: the prompts
  it queued or was prefilling go back to its pool; the sequences it was decoding move to
  another replica of the pool, which recomputes their prompt and the tokens generated so far
  (vLLM's recompute on preemption); KV hand-offs still on their way to it are re-routed.
  Replicas that scale down are drained the same way (no graceful drain is assumed).
Prefix caching is not modelled here (every prompt is prefilled in full).
"""

from __future__ import annotations

from collections.abc import Sequence

import random

import numpy as np

from hetplan.simulate.colocated import ColocatedReplica
from hetplan.simulate.engine import PoolSpec, RunResult, Sim
from hetplan.simulate.replicas import DecodeReplica, PrefillReplica, run_heap
from hetplan.simulate.router import check_dispatch, pick_replica

_PARKED = 1 << 60     # a backlog's load: the least-loaded pick takes it only when alone


class _Backlog:
    """Requests of a pool with no replica up (kept in its replica list, never chosen
    while a replica is up)."""

    __slots__ = ("load", "rids", "kv")

    def __init__(self):
        self.load = _PARKED
        self.rids: list[int] = []     # first stage: prompts to enqueue
        self.kv: list[int] = []       # decode: sequences whose KV arrived

    def enqueue(self, now: float, rid: int) -> None:
        self.rids.append(rid)
        self.load = _PARKED

    def deliver(self, now: float, rid: int) -> None:
        self.kv.append(rid)
        self.load = _PARKED


class _Gone:
    """Mixed into a replica's class when it leaves: its pending step ends do nothing, and
    KV hand-offs that reach it go to its pool's least-loaded replica instead."""

    __slots__ = ()

    def step_end(self, now: float) -> None:
        pass

    def deliver(self, now: float, rid: int) -> None:
        _hand(self.pool, now, rid, decoded=True)


class _GonePrefill(_Gone, PrefillReplica):
    __slots__ = ()


class _GoneDecode(_Gone, DecodeReplica):
    __slots__ = ()


class _GoneColocated(_Gone, ColocatedReplica):
    __slots__ = ()


_GONE = {PrefillReplica: _GonePrefill, DecodeReplica: _GoneDecode,
         ColocatedReplica: _GoneColocated}


class _DynPool:
    __slots__ = ("spec", "replicas", "links", "is_prefill", "backlog", "rnd")

    def __init__(self, spec: PoolSpec, rnd: random.Random):
        self.spec, self.links, self.rnd = spec, spec.links, rnd
        self.is_prefill = spec.role == "prefill"
        self.backlog = _Backlog()
        self.replicas: list = [self.backlog]
        if check_dispatch(spec.dispatch) == "central_queue":
            raise ValueError("the central_queue dispatch is not replayed with replicas that "
                             "come and go")

    def make(self, sim: Sim):
        s = self.spec
        if s.role == "prefill":
            return PrefillReplica(sim, self, s.steps, s.prefill_max_tokens, s.max_seqs,
                                  s.nic_bytes_per_s)
        if s.role == "decode":
            return DecodeReplica(sim, self, s.steps, s.max_seqs, s.kv_tokens)
        return ColocatedReplica(sim, self, s.steps, s.max_seqs, s.kv_tokens, s.token_budget,
                                s.min_chunk)


def _least(pool: _DynPool):
    return min(pool.replicas, key=lambda r: r.load)


def _pick(pool: _DynPool):
    """The replica up that the router's rule picks (the backlog when none is up)."""
    up = pool.replicas[1:]
    return pick_replica(up, pool.spec.dispatch, pool.rnd) if up else pool.backlog


def _hand(pool: _DynPool, now: float, rid: int, decoded: bool) -> None:
    """Give request rid to the pool's least-loaded replica (a decode pool's) or the one
    the router picks (a first-stage pool's), or to its backlog."""
    if decoded and pool.spec.role == "decode":
        r = _least(pool)
        r.load += 1
        r.deliver(now, rid)
    else:
        _pick(pool).enqueue(now, rid)


class _Up:
    __slots__ = ("pool", "replica")

    def __init__(self, pool, replica):
        self.pool, self.replica = pool, replica

    def step_end(self, now: float) -> None:
        pool, r = self.pool, self.replica
        pool.replicas.append(r)
        b = pool.backlog
        rids, kv, b.rids, b.kv = b.rids, b.kv, [], []
        for rid in rids:
            _hand(pool, now, rid, decoded=False)
        for rid in kv:
            _hand(pool, now, rid, decoded=True)


class _Down:
    __slots__ = ("pool", "replica", "requeued")

    def __init__(self, pool, replica, requeued: list[int]):
        self.pool, self.replica, self.requeued = pool, replica, requeued

    def step_end(self, now: float) -> None:
        pool, r = self.pool, self.replica
        if r not in pool.replicas:
            return
        pool.replicas.remove(r)
        sim = r.sim
        if isinstance(r, PrefillReplica):
            back = (list(r.batch) if r.busy else []) + list(r.queue)
            r.__class__ = _GONE[PrefillReplica]
            for rid in back:
                sim.t_start[rid] = -1.0
                _hand(pool, now, rid, decoded=False)
            self.requeued[0] += len(back)
            return
        gen, k = sim.gen, r.k
        moved = []
        for rid, s in list(r.running.items()):
            gen[rid] += k - s
            sim.preempt[rid] += 1
            moved.append(rid)
        moved += [e[0] for e in getattr(r, "prefilling", [])]
        moved += list(r.waiting)
        r.__class__ = _GONE[type(r)]
        for rid in moved:
            _hand(pool, now, rid, decoded=True)
        self.requeued[0] += len(moved)


def run_dynamic(arrival_s: np.ndarray, input_tokens: np.ndarray, output_tokens: np.ndarray,
                first_pool: np.ndarray, decode_pool: np.ndarray, pools: list[PoolSpec],
                up: Sequence[Sequence[tuple[float, float]]], seed: int = 0
                ) -> tuple[RunResult, int]:
    """Like `hetplan.simulate.engine.run`, with pool i's replicas up over the intervals
    `up[i]` ((up_s, down_s) each; one replica per interval). Returns the result and the
    number of requests re-queued by replicas that left."""
    lens, inv = np.unique(np.asarray(input_tokens, dtype=np.int64), return_inverse=True)
    steps0 = pools[0].steps
    kvl = np.array([steps0.kv_layer_tokens(int(n)) for n in lens], dtype=float)[inv]
    sim = Sim(input_tokens, output_tokens, kvl, decode_pool)
    rnd = random.Random(seed)
    dyn = [_DynPool(p, rnd) for p in pools]
    sim.pools = dyn
    requeued = [0]
    made: list[list] = [[] for _ in pools]
    start = float(np.min(arrival_s)) if len(arrival_s) else 0.0
    for i, pool in enumerate(dyn):
        for lo, hi in up[i]:
            r = pool.make(sim)
            made[i].append(r)
            if lo <= start:
                pool.replicas.append(r)
            else:
                sim.push(lo, _Up(pool, r), -1)
            if np.isfinite(hi):
                sim.push(hi, _Down(pool, r, requeued), -1)
    first = [dyn[int(i)] for i in first_pool]

    def route(now: float, rid: int) -> None:
        _pick(first[rid]).enqueue(now, rid)

    run_heap(sim, np.asarray(arrival_s, dtype=float).tolist(), route)
    return RunResult(
        arrival_s=np.asarray(arrival_s, dtype=float), start_s=np.array(sim.t_start),
        first_token_s=np.array(sim.t_first), done_s=np.array(sim.t_done),
        generated=np.array(sim.gen), preemptions=np.array(sim.preempt),
        dropped=np.array(sim.dropped, dtype=bool),
        pool_busy_s=[[r.busy_s for r in m] for m in made],
        pool_batch_s=[sum(getattr(r, "batch_s", 0.0) for r in m) for m in made],
        pool_steps=[sum(r.steps_run for r in m) for m in made],
        pool_preemptions=[sum(getattr(r, "preemptions", 0) for r in m) for m in made],
        outstanding=sum(len(p.backlog.rids) + len(p.backlog.kv) for p in dyn),
        first_pool=np.asarray(first_pool, dtype=np.int64),
        decode_pool=np.asarray(decode_pool, dtype=np.int64)), requeued[0]
