"""Replica models of the simulator: one event per engine step, never per token.

Shared per-request state lives in the `Sim` (plain Python lists, indexed by request id):
arrival, input/output tokens, tokens generated so far (`gen`), start of service, first
token, completion, preemptions. A replica's `load` (requests it holds or has been promised)
is what the router's least-loaded choice reads.

Decode bookkeeping in O(1) per step: a running sequence that joined after step s with
`base` tokens in its KV cache holds base + (k - s) tokens after step k, so the replica keeps
H = sum(base - s) and holds H + B x k tokens at step k. Sequences finish at a known step
(`fin_at`), and the most recently joined is preempted first (vLLM's recompute policy):
it goes back to the front of the queue and its prompt plus generated tokens are prefilled
again when it is readmitted.
"""

from __future__ import annotations

import heapq
from collections import deque


class PrefillReplica:
    """Runs prompts in batches (FIFO, up to `max_tokens` prompt tokens and `max_seqs`
    prompts per step), then ships each prompt's KV to a decode replica of its route over the
    sender's NICs (one per GPU), which serialise transfers in order."""

    __slots__ = ("sim", "pool", "steps", "max_tokens", "max_seqs", "queue", "batch", "busy",
                 "t0", "busy_s", "load", "tokens", "link_free", "nic_bytes_per_s", "steps_run")

    def __init__(self, sim, pool, steps, max_tokens: int, max_seqs: int, nic_bytes_per_s: float):
        self.sim, self.pool, self.steps = sim, pool, steps
        self.max_tokens, self.max_seqs = max_tokens, max_seqs
        self.queue: deque[int] = deque()
        self.batch: list[int] = []
        self.busy = False
        self.t0 = self.busy_s = self.link_free = 0.0
        self.load = self.tokens = self.steps_run = 0
        self.nic_bytes_per_s = nic_bytes_per_s

    def enqueue(self, now: float, rid: int) -> None:
        self.queue.append(rid)
        self.load += 1
        self.tokens += self.sim.inp[rid]
        if not self.busy:
            self.start(now)

    def start(self, now: float) -> None:
        sim, q, inp = self.sim, self.queue, self.sim.inp
        rid = q.popleft()
        batch, tokens = [rid], inp[rid]
        while q and len(batch) < self.max_seqs and tokens + inp[q[0]] <= self.max_tokens:
            rid = q.popleft()
            batch.append(rid)
            tokens += inp[rid]
        t_start = sim.t_start
        for rid in batch:
            t_start[rid] = now
        self.batch, self.busy, self.t0 = batch, True, now
        sim.push(now + self.steps.prefill_s([inp[r] for r in batch]), self, -1)

    def step_end(self, now: float) -> None:
        sim = self.sim
        prefill_s = now - self.t0
        self.busy_s += prefill_s
        self.steps_run += 1
        batch = self.batch
        self.load -= len(batch)
        dpool, pools, inp = sim.dpool, sim.pools, sim.inp
        for rid in batch:
            self.tokens -= inp[rid]
            d = dpool[rid]
            if d < 0:       # prefill-only request: done when its prompt is
                sim.t_first[rid] = sim.t_done[rid] = now
                continue
            target = min(pools[d].replicas, key=_load)
            target.load += 1
            link = self.pool.links[d]
            total_s, exposed_s = link.transfer_s(sim.kvl[rid] * self.steps.bytes_per_layer_token,
                                                 prefill_s)
            nic_s = total_s * link.bytes_per_s / self.nic_bytes_per_s
            free = self.link_free
            self.link_free = (free if free > self.t0 else self.t0) + nic_s
            t = now + exposed_s
            t_nic = self.link_free + link.latency_s
            t = t if t > t_nic else t_nic
            sim.t_kv[rid] = t
            sim.push(t, target, rid)
        if self.queue:
            self.start(now)
        else:
            self.busy = False


def _load(r) -> int:
    return r.load


class DecodeReplica:
    """Continuous batching bounded by `max_seqs` and a KV cache of `kv_tokens` tokens.
    A sequence that arrives with its prompt's KV produces its first token at the end of the
    first step it joins."""

    __slots__ = ("sim", "pool", "steps", "max_seqs", "kv_tokens", "waiting", "running", "fin_at",
                 "joined", "H", "k", "busy", "t0", "busy_s", "batch_s", "load", "steps_run",
                 "preemptions")

    def __init__(self, sim, pool, steps, max_seqs: int, kv_tokens: int):
        self.sim, self.pool, self.steps = sim, pool, steps
        self.max_seqs, self.kv_tokens = max_seqs, kv_tokens
        self.waiting: deque[int] = deque()
        self.running: dict[int, int] = {}          # rid -> step after which it joined
        self.fin_at: dict[int, list[int]] = {}     # step -> rids finishing then
        self.joined: list[int] = []
        self.H = 0
        self.k = 0
        self.busy = False
        self.t0 = self.busy_s = self.batch_s = 0.0
        self.load = self.steps_run = self.preemptions = 0

    def deliver(self, now: float, rid: int) -> None:
        self.waiting.append(rid)
        if not self.busy:
            self.next_step(now)

    def step_end(self, now: float) -> None:
        sim = self.sim
        dt = now - self.t0
        self.busy_s += dt
        self.batch_s += dt * len(self.running)
        self.steps_run += 1
        self.k = k = self.k + 1
        t_first = sim.t_first
        for rid in self.joined:
            if t_first[rid] < 0:
                t_first[rid] = now
        self.after_step(now)
        done = self.fin_at.pop(k, None)
        if done:
            running, fin, t_done, inp, gen = self.running, sim.fin, sim.t_done, sim.inp, sim.gen
            for rid in done:
                if fin[rid] == k and rid in running:
                    s = running.pop(rid)
                    self.H -= inp[rid] + gen[rid] - s
                    gen[rid] = sim.out[rid]
                    t_done[rid] = now
                    self.load -= 1
        self.next_step(now)

    def after_step(self, now: float) -> None:
        """Hook for subclasses: work that completes with the step (before finishes)."""

    def _preempt_last(self) -> None:
        sim, running = self.sim, self.running
        rid = next(reversed(running))
        s = running.pop(rid)
        self.H -= sim.inp[rid] + sim.gen[rid] - s
        sim.gen[rid] += self.k - s
        sim.preempt[rid] += 1
        self.preemptions += 1
        self.waiting.appendleft(rid)

    def _drop(self, now: float, rid: int) -> None:
        """A sequence that cannot fit even alone: the engine would reject it."""
        sim = self.sim
        sim.dropped[rid] = 1
        if sim.t_first[rid] < 0:
            sim.t_first[rid] = now
        sim.t_done[rid] = now
        self.load -= 1

    def next_step(self, now: float) -> None:
        sim, running, k, cap = self.sim, self.running, self.k, self.kv_tokens
        B = len(running)
        while B and self.H + B * k + B > cap:      # the next step's tokens do not fit
            if B == 1:
                rid = next(iter(running))
                s = running.pop(rid)
                self.H -= sim.inp[rid] + sim.gen[rid] - s
                self._drop(now, rid)
            else:
                self._preempt_last()
            B -= 1
        joined = []
        new = B
        att = kvl = 0.0
        w, inp, gen, out, fin, steps = self.waiting, sim.inp, sim.gen, sim.out, sim.fin, self.steps
        while w and B < self.max_seqs:
            rid = w[0]
            base = inp[rid] + gen[rid]
            if self.H + B * k + B + base + 1 > cap:
                if B == 0:
                    w.popleft()
                    self._drop(now, rid)
                    continue
                break
            w.popleft()
            running[rid] = k
            self.H += base - k
            B += 1
            f = fin[rid] = k + out[rid] - gen[rid]
            lst = self.fin_at.get(f)
            if lst is None:
                self.fin_at[f] = [rid]
            else:
                lst.append(rid)
            joined.append(rid)
            if gen[rid]:      # a preempted sequence: recompute its KV in this step
                new += base
                att += steps.prefill_keys(base)
                kvl += steps.kv_layer_tokens(base)
            else:             # arrived with its prompt's KV: one token, like the others
                new += 1
        self.joined = joined
        if B == 0:
            self.busy = False
            return
        ctx = self.H + B * k
        if new == B:
            dt = steps.decode_s(B, ctx)
        else:
            per = steps.kv_layer_tokens(ctx / B) * B
            dt = steps.step_s(new, B, per + att, per + kvl)
        self.busy, self.t0 = True, now
        sim.push(now + dt, self, -1)


def run_heap(sim, arrivals, route, progress=None) -> None:
    """The event loop: arrivals (sorted) merged with the heap of step ends and KV hand-offs.
    Heap entries are (time, sequence number, replica, rid or -1 for a step end)."""
    heap = sim.heap
    pop = heapq.heappop
    i, n = 0, len(arrivals)
    tick = 0
    while True:
        if i < n and (not heap or arrivals[i] <= heap[0][0]):
            route(arrivals[i], i)
            i += 1
            if progress is not None:
                tick += 1
                if tick >= 65536:
                    tick = 0
                    progress(i / n)
            continue
        if not heap:
            break
        t, _, obj, rid = pop(heap)
        if rid < 0:
            obj.step_end(t)
        else:
            obj.deliver(t, rid)
