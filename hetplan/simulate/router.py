"""The router: requests -> workload classes -> pools, following the plan's routing.

A request belongs to the class whose (input, output) bin contains it; requests outside every
bin (a trace other than the one planned for) go to the nearest bin in log-token distance, and
plans written before bins were recorded fall back to the nearest class mean. Within a class,
a request goes to a colocated or prefill pool with probability proportional to the plan's
rate for that pool, and a disaggregated request to a decode pool the same way (independent
draws, seeded). Inside a pool, the replica is picked at arrival by the dispatch rule
`DISPATCH` (`pick_replica`; decode replicas still take the least-loaded at KV hand-off).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from hetplan.plan import ClassSummary, Plan


@dataclass(frozen=True)
class ClassRoutes:
    """Pool indices and rates serving one class, per stage."""

    first: tuple[int, ...]          # colocated and prefill pools
    first_rates: tuple[float, ...]
    decode: tuple[int, ...]
    decode_rates: tuple[float, ...]


def class_routes(plan: Plan) -> dict[str, ClassRoutes]:
    """Classes the plan serves completely (colocated, or both prefill and decode)."""
    first: dict[str, list[tuple[int, float]]] = {}
    dec: dict[str, list[tuple[int, float]]] = {}
    for i, p in enumerate(plan.pools):
        for r in p.routes:
            if r.rate_rps <= 0:
                continue
            (dec if p.role == "decode" else first).setdefault(r.workload_class, []).append(
                (i, r.rate_rps))
    out = {}
    for w, f in first.items():
        needs_decode = any(plan.pools[i].role == "prefill" for i, _ in f)
        d = dec.get(w, [])
        if needs_decode and not d:
            f = [(i, r) for i, r in f if plan.pools[i].role == "colocated"]
            if not f:
                continue
        out[w] = ClassRoutes(tuple(i for i, _ in f), tuple(r for _, r in f),
                             tuple(i for i, _ in d), tuple(r for _, r in d))
    return out


def _has_bins(c: ClassSummary) -> bool:
    return None not in (c.input_lo, c.input_hi, c.output_lo, c.output_hi)


def assign_classes(input_tokens: np.ndarray, output_tokens: np.ndarray,
                   classes: list[ClassSummary]) -> np.ndarray:
    """Index into `classes` for every request (see the module docstring)."""
    if not classes:
        raise ValueError("the plan routes no workload class")
    li = np.log(np.maximum(input_tokens, 1).astype(float))
    lo_ = np.log(np.maximum(output_tokens, 1).astype(float))
    dist = np.empty((len(classes), li.size))
    for j, c in enumerate(classes):
        if _has_bins(c):
            d_in = np.maximum(np.log(max(c.input_lo, 1)) - li, 0) + np.maximum(
                li - np.log(max(c.input_hi, 1)), 0)
            d_out = np.maximum(np.log(max(c.output_lo, 1)) - lo_, 0) + np.maximum(
                lo_ - np.log(max(c.output_hi, 1)), 0)
        else:
            d_in = np.abs(li - np.log(max(c.mean_input_tokens, 1.0)))
            d_out = np.abs(lo_ - np.log(max(c.mean_output_tokens, 1.0)))
        dist[j] = d_in + d_out
    return np.argmin(dist, axis=0)


def draw_pools(cls: np.ndarray, routes: list[ClassRoutes],
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """First-stage pool and decode pool (-1: none) for every request of class index `cls`."""
    n = cls.size
    first = np.full(n, -1, dtype=np.int64)
    dec = np.full(n, -1, dtype=np.int64)
    for j, r in enumerate(routes):
        idx = np.flatnonzero(cls == j)
        if idx.size == 0:
            continue
        p = np.asarray(r.first_rates) / sum(r.first_rates)
        first[idx] = np.asarray(r.first)[rng.choice(len(r.first), size=idx.size, p=p)]
        if r.decode:
            q = np.asarray(r.decode_rates) / sum(r.decode_rates)
            dec[idx] = np.asarray(r.decode)[rng.choice(len(r.decode), size=idx.size, p=q)]
    return first, dec


# ---------------------------------------------------------------- dispatch inside a pool ---

DISPATCH_RULES = ("power_of_two", "least_requests", "least_tokens", "central_queue")
"""How a first-stage (prefill or colocated) pool's router picks the replica for a request:

- `power_of_two`: what hetplan emits (`vllm-router --prefill-policy/--policy power_of_two`:
  `hetplan.emit.serve.EmitOptions.router_policy` defaults to `DISPATCH`). vllm-router 0.1.17's
  policy (src/policies/power_of_two.rs) draws two distinct healthy workers at random and
  sends the request to the one with the lower load (the first drawn on a tie); the load is
  the router's count of the worker's in-flight requests (plus a polled /get_load value,
  which vLLM does not serve). In P/D mode the prefill request (max_tokens=1) is in flight
  until its prefill ends, so a prefill replica's load is the prompts it queues or runs.
  Binding is at arrival: the router keeps no queue.
- `least_requests`: the replica holding the fewest requests (join-shortest-queue by count;
  the simulator's rule before issue 17; lowest index on a tie).
- `least_tokens`: the replica with the fewest outstanding prompt tokens (queued or in the
  running batch), the prefill term of token-aware routers: Dynamo's KV router (`--router-mode
  kv`; its default is round_robin) costs a worker by the prefill blocks it would compute
  plus its active decode blocks (docs.nvidia.com/dynamo, "Router Design"); llm-d's endpoint
  picker scores endpoints by queue depth, KV usage and prefix hits (llm-d.ai, "Request
  Scheduler"). Prefill pools only; colocated pools use `least_requests` under it.
- `central_queue`: late binding, one FIFO queue per pool that an idle replica pulls its
  next batch from: the c-server queue `hetplan.queueing` / `hetplan.slo_capacity` size
  with. No router hetplan emits does this; a what-if for measuring the dispatch gap.
  Prefill pools only (colocated pools use `least_requests` under it).
"""

DISPATCH = "power_of_two"   # the one setting: what the emitted router does


def check_dispatch(rule: str) -> str:
    if rule not in DISPATCH_RULES:
        raise ValueError(f"dispatch rule {rule!r}: expected one of {', '.join(DISPATCH_RULES)}")
    return rule


def pick_replica(replicas: list, rule: str, rnd: random.Random):
    """The replica `rule` sends the next request to (`central_queue`: an idle replica if
    any, else the first: the request then waits in the pool's shared queue). `replicas`
    expose `load` (requests held) and, for `least_tokens`, `tokens`."""
    n = len(replicas)
    if n == 1:
        return replicas[0]
    if rule == "power_of_two":
        i = rnd.randrange(n)
        j = rnd.randrange(n - 1)
        a, b = replicas[i], replicas[j + (j >= i)]
        return a if a.load <= b.load else b
    if rule == "least_tokens" and hasattr(replicas[0], "tokens"):
        return min(replicas, key=_tokens)
    if rule == "central_queue" and hasattr(replicas[0], "tokens"):
        for r in replicas:
            if not r.busy:
                return r
        return replicas[0]
    return min(replicas, key=_load)


def _load(r) -> int:
    return r.load


def _tokens(r) -> int:
    return r.tokens
