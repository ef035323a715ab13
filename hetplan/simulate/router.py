"""The router: requests -> workload classes -> pools, following the plan's routing.

A request belongs to the class whose (input, output) bin contains it; requests outside every
bin (a trace other than the one planned for) go to the nearest bin in log-token distance, and
plans written before bins were recorded fall back to the nearest class mean. Within a class,
a request goes to a colocated or prefill pool with probability proportional to the plan's
rate for that pool, and a disaggregated request to a decode pool the same way (independent
draws, seeded). Inside a pool the least-loaded replica takes it (the replicas pick that at
dispatch time; see `replicas.py`).
"""

from __future__ import annotations

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
