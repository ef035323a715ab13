"""Candidate replica configurations and their capacity per workload class at the SLO.

A candidate is a replica shape (GPU, TP, PP, weight dtype, KV dtype) in one role:
- prefill: runs prompts; capacity = prompts/s with batches small enough that a batch's
  prefill plus the KV hand-off fits in half the TTFT budget (the other half is left for
  queueing, which the MILP's target utilization bounds);
- decode: runs generations; capacity = B / (output_tokens x step_time(B)) with B the
  largest batch whose KV fits in VRAM and whose step time meets the TPOT target;
- colocated: chunked prefill; each step carries B decode tokens and a prefill chunk of
  C = B x input/output tokens (`EngineLimits.colocated_chunk_tokens`), so prompt and decode
  work stay balanced; the step must meet the TPOT target and the prompt's ceil(input/C)
  steps half the TTFT budget.
Throughput uses a class's mean lengths; latency checks use its p90 lengths. Batch caps and
the prefill token budget are the perf model's engine limits (`pm.limits`).
Approximation: classes sharing a replica are combined by time-sharing (sum of rate /
capacity), which ignores batching across classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from hetplan.catalog import Catalog
from hetplan.enums import ROLES
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.prefix_cache import pool_replicas, solo_replicas
from hetplan.scenario import SLO

TTFT_SHARE_FOR_SERVICE = 0.5    # share of the TTFT target a prefill step may use


class ClassLike(Protocol):
    name: str
    rate_rps: float
    mean_input_tokens: float
    mean_output_tokens: float
    p90_input_tokens: float
    p90_output_tokens: float


@dataclass(frozen=True)
class ClassCapacity:
    """One replica's figures for one class (capacity 0: cannot serve it, `why` says why)."""

    capacity_rps: float
    ttft_ms: float = math.nan        # service part of TTFT (prefill step + KV hand-off)
    tpot_ms: float = math.nan        # decode step time at the chosen batch
    batch: int = 0                   # prompts per prefill step, or decode batch
    why: str = ""
    cached_tokens: float = 0.0       # prefill: mean prompt tokens the prefix cache serves
    uncached_capacity_rps: float = math.nan   # prefill with a prefix cache: capacity without


@dataclass(frozen=True)
class Candidate:
    shape: ReplicaShape
    role: Role
    vendor: str
    price_usd_per_hour: float        # per replica (all its GPUs)
    per_class: dict[str, ClassCapacity] = field(hash=False)
    prefix_replicas: int = 0         # prefix cache: pool size the hit rates assumed
    prefix_blocks: int = 0           # prefix cache: blocks per replica

    @property
    def key(self) -> str:
        return f"{self.role}:{self.shape.label()}"

    @property
    def num_gpus(self) -> int:
        return self.shape.num_gpus

    @property
    def useful(self) -> bool:
        return any(c.capacity_rps > 0 for c in self.per_class.values())

    def capacity(self, cls: str) -> float:
        c = self.per_class.get(cls)
        return c.capacity_rps if c else 0.0


def _largest(pred: Callable[[int], bool], hi: int) -> int:
    """Largest b in [1, hi] with pred(b) true, assuming pred is monotone (true then false)."""
    if hi < 1 or not pred(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pred(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def prefill_capacity(pm: PerfModel, s: ReplicaShape, c: ClassLike, slo: SLO,
                     kv_link: str, cross_vendor: bool,
                     cached_tokens: float = 0.0) -> ClassCapacity:
    """`cached_tokens`: mean prompt tokens a prefix cache serves; only the rest is computed
    (the p90 prompt is shortened in the same proportion; its KV is still handed off whole)."""
    budget_s = slo.ttft_ms / 1e3 * TTFT_SHARE_FOR_SERVICE
    p90_full = max(1, int(round(c.p90_input_tokens)))
    hit = min(max(cached_tokens, 0.0) / max(c.mean_input_tokens, 1.0), 1.0)
    p90_hit = int(round(p90_full * hit))
    p90_in = max(1, p90_full - p90_hit)
    mean_hit = int(round(max(cached_tokens, 0.0)))
    mean_in = max(1, int(round(c.mean_input_tokens)) - mean_hit)

    def latency_s(k: int) -> float:
        t = pm.prefill_time_s(s, p90_in, k, cached_tokens=p90_hit)
        return t + pm.kv_transfer_s(p90_full, s.kv_dtype, kv_link, t, cross_vendor)

    # the token budget is per engine: a replica with dp DP-attention ranks runs dp engines
    max_k = max(1, pm.limits.max_num_batched_tokens // max(mean_in, 1)) * s.dp
    k = _largest(lambda k: latency_s(k) <= budget_s, max_k)
    if k == 0:
        return ClassCapacity(0.0, ttft_ms=latency_s(1) * 1e3, why=(
            f"TTFT: prefill of a {p90_in}-token prompt + KV hand-off takes "
            f"{latency_s(1) * 1e3:.0f} ms > {budget_s * 1e3:.0f} ms "
            f"({TTFT_SHARE_FOR_SERVICE:.0%} of the {slo.ttft_ms:g} ms target)"))
    return ClassCapacity(k / pm.prefill_time_s(s, mean_in, k, cached_tokens=mean_hit),
                         ttft_ms=latency_s(k) * 1e3, batch=k, cached_tokens=float(mean_hit))


def decode_capacity(pm: PerfModel, s: ReplicaShape, c: ClassLike, slo: SLO) -> ClassCapacity:
    mean_in, mean_out = c.mean_input_tokens, max(1.0, c.mean_output_tokens)
    ctx_avg = mean_in + mean_out / 2
    b_mem = pm.max_decode_batch(s, mean_in + mean_out)
    if b_mem == 0:
        return ClassCapacity(0.0, why=f"VRAM: no room for one {int(mean_in + mean_out)}-token "
                                      f"sequence ({pm.memory(s).reason or 'KV cache full'})")
    target_s = slo.tpot_ms / 1e3
    b = _largest(lambda b: pm.decode_step_s(s, b, ctx_avg) <= target_s, b_mem)
    if b == 0:
        t1 = pm.decode_step_s(s, 1, ctx_avg) * 1e3
        return ClassCapacity(0.0, tpot_ms=t1, why=f"TPOT: a decode step takes {t1:.1f} ms at "
                                                  f"batch 1 > {slo.tpot_ms:g} ms")
    t = pm.decode_step_s(s, b, ctx_avg)
    return ClassCapacity(b / (mean_out * t), tpot_ms=t * 1e3, batch=b)


def colocated_capacity(pm: PerfModel, s: ReplicaShape, c: ClassLike,
                       slo: SLO) -> ClassCapacity:
    mean_in = max(1.0, c.mean_input_tokens)
    mean_out = max(1.0, c.mean_output_tokens)
    ctx_avg = mean_in + mean_out / 2
    b_mem = pm.max_decode_batch(s, mean_in + mean_out)
    if b_mem == 0:
        return ClassCapacity(0.0, why="VRAM: no room for one sequence")
    ttft_budget_s = slo.ttft_ms / 1e3 * TTFT_SHARE_FOR_SERVICE
    best = ClassCapacity(0.0, why=f"TPOT/TTFT: no batch meets {slo.tpot_ms:g} ms per token "
                                  f"and {slo.ttft_ms:g} ms to first token with chunked prefill")

    def step(b: int) -> tuple[float, int]:
        chunk = pm.limits.colocated_chunk_tokens(b, mean_in, mean_out)
        return pm.mixed_step_s(s, b, ctx_avg, chunk, int(mean_in // 2)), chunk

    b = 1
    while b <= b_mem:
        t, chunk = step(b)
        ttft = math.ceil(c.p90_input_tokens / chunk) * t
        if t <= slo.tpot_ms / 1e3 and ttft <= ttft_budget_s:
            rate = min(chunk / (mean_in * t), b / (mean_out * t))
            if rate > best.capacity_rps:
                best = ClassCapacity(rate, ttft_ms=ttft * 1e3, tpot_ms=t * 1e3, batch=b)
        elif t > slo.tpot_ms / 1e3:
            break     # larger batches only get slower
        b = b * 2 if b < 8 else b + max(1, b // 4)
    return best


def shapes_for(pm: PerfModel, gpus: Sequence[str], max_tp: int, max_pp: int,
               weight_dtypes: Sequence[str], kv_dtypes: Sequence[str],
               max_tp_by_gpu: dict[str, int] | None = None,
               gpus_available: dict[str, int] | None = None,
               context_tokens: float | None = None) -> tuple[list[ReplicaShape], list[str]]:
    """Every shape that can hold the model, and why the others were dropped.
    `max_tp_by_gpu` (from an inventory: GPUs per node) caps TP per GPU type.

    PP is enumerated only as far as sense allows: at most one layer per stage, at most
    the GPUs of the type that are available (`gpus_available`: GPU -> count, absent =
    unlimited), and, per (GPU, TP, dtypes), no stage past the first PP whose KV cache holds
    `max_num_seqs` sequences of `context_tokens` (the longest class's mean context): the perf
    model credits PP with memory, not throughput, so a further stage only adds GPUs
    (assumption: the NICs those GPUs would add to a P/D pool's KV hand-off are not worth
    their price; the MILP could otherwise pick a deeper pipeline for its bandwidth alone).
    A shape unsupported for another reason (dtype, heads, node size) is reported once, at
    its lowest PP.

    MoE models also get expert-parallel shapes (`ep_shapes`), after each GPU's TP/PP ones."""
    shapes, dropped = [], []
    layers = pm.model.num_layers
    for g in gpus:
        for tp in (1, 2, 4, 8, 16, 32, 72):
            if tp > max_tp:
                continue
            if max_tp_by_gpu and tp > max_tp_by_gpu.get(g, tp):
                dropped.append(f"{g} TP{tp}: inventory nodes hold at most "
                               f"{max_tp_by_gpu[g]} {g} GPUs (a TP group stays in one node)")
                continue
            pp_hi = min(max_pp, layers)
            have = (gpus_available or {}).get(g)
            if have is not None and tp * pp_hi > have:
                pp_hi = have // tp
                dropped.append(f"{g} TP{tp}: PP above {pp_hi} not tried (only {have} {g} "
                               "GPUs are available)")
            saturated: dict[tuple[str, str], int] = {}
            done: set[tuple[str, str]] = set()      # saturated, or unsupported at any PP
            for pp in range(1, pp_hi + 1):
                for wd in weight_dtypes:
                    for kd in kv_dtypes:
                        if (wd, kd) in done or (wd, kd) in saturated:
                            continue
                        s = ReplicaShape(g, tp, pp, wd, kd)
                        why = pm.check(s)         # (with pp <= layers: the same at every PP)
                        if why:
                            done.add((wd, kd))
                        elif not pm.memory(s).fits:
                            why = "VRAM: " + pm.memory(s).reason
                        if why:
                            dropped.append(f"{s.label()}: {why}")
                            continue
                        shapes.append(s)
                        if context_tokens and pm.max_decode_batch(
                                s, context_tokens) >= pm.limits.max_num_seqs:
                            saturated[wd, kd] = pp
            for (wd, kd), pp in saturated.items():
                if pp < pp_hi:
                    dropped.append(f"{ReplicaShape(g, tp, pp, wd, kd).label()}: PP above {pp} "
                                   f"not tried (its KV cache already holds max_num_seqs "
                                   f"sequences; more stages only add GPUs)")
        if pm.model.moe is not None:
            cap = min(max_tp, (max_tp_by_gpu or {}).get(g, max_tp),
                      (gpus_available or {}).get(g, max_tp))
            ep, why = ep_shapes(pm, g, cap, weight_dtypes, kv_dtypes)
            shapes += ep
            dropped += why
    return shapes, dropped


EP_DEGREES = (1, 2, 4, 8, 16, 32, 72)     # tp and dp values tried for EP shapes


def ep_shapes(pm: PerfModel, gpu: str, max_gpus: int, weight_dtypes: Sequence[str],
              kv_dtypes: Sequence[str]) -> tuple[list[ReplicaShape], list[str]]:
    """Expert-parallel shapes of a MoE model on `gpu`: every tp and dp of EP_DEGREES with
    2 <= tp x dp <= `max_gpus` and the GPU's node (EP = TP when dp is 1, else EP x
    DP-attention), PP 1 (bounded: at most 10 (tp, dp) pairs per dtype pair on an 8-GPU
    node). Shapes that do not fit or are unsupported come back as reasons."""
    node = pm.catalog.gpu(gpu).max_gpus_per_node
    shapes, dropped = [], []
    for tp in EP_DEGREES:
        for dp in EP_DEGREES:
            if not 2 <= tp * dp <= min(max_gpus, node):
                continue
            for wd in weight_dtypes:
                for kd in kv_dtypes:
                    s = ReplicaShape(gpu, tp, 1, wd, kd, ep=True, dp=dp)
                    why = pm.check(s)
                    if not why and not pm.memory(s).fits:
                        why = "VRAM: " + pm.memory(s).reason
                    if why:
                        dropped.append(f"{s.label()}: {why}")
                    else:
                        shapes.append(s)
    return shapes, dropped


def build_candidates(pm: PerfModel, catalog: Catalog, prices: dict[str, float],
                     classes: Sequence[ClassLike], slo: SLO, *, roles: Sequence[str] = ROLES,
                     max_tp: int = 8, max_pp: int = 1, weight_dtypes=("bf16",),
                     kv_dtypes=("bf16",), kv_link: str = "ib-400g",
                     allow_cross_vendor: bool = False,
                     progress: Callable[[str], None] | None = None,
                     max_tp_by_gpu: dict[str, int] | None = None,
                     gpus_available: dict[str, int] | None = None,
                     prefix=None) -> tuple[list[Candidate], list[str]]:
    """All (shape, role) candidates of the shapes that fit, with per-class capacity (zero,
    with the reason, where the SLO cannot be met: the infeasibility report reads those).

    prices: GPU -> $/GPU-hour (GPUs without a price are skipped); `gpus_available`: GPU ->
    GPUs that may be used (bounds PP, see `shapes_for`). Returns the candidates and the
    reasons shapes were dropped before that (VRAM, TP, PP, dtype support). `prefix` (a
    `hetplan.prefix_cache.PrefixCharge`) charges prefill candidates only for cache misses."""
    context = max((max(1.0, c.mean_input_tokens) + max(1.0, c.mean_output_tokens)
                   for c in classes), default=None)
    shapes, dropped = shapes_for(pm, sorted(prices), max_tp, max_pp, weight_dtypes, kv_dtypes,
                                 max_tp_by_gpu, gpus_available, context)
    out: list[Candidate] = []
    for i, s in enumerate(shapes):
        gpu = catalog.gpu(s.gpu)
        for role in roles:
            per = {}
            for c in classes:
                if role == "prefill":
                    per[c.name] = prefill_capacity(pm, s, c, slo, kv_link, allow_cross_vendor)
                elif role == "decode":
                    per[c.name] = decode_capacity(pm, s, c, slo)
                else:
                    per[c.name] = colocated_capacity(pm, s, c, slo)
            cand = Candidate(s, role, gpu.vendor, prices[s.gpu] * s.num_gpus, per)
            if role == "prefill" and prefix is not None:
                cand = with_prefix_cache(pm, cand, classes, slo, kv_link, allow_cross_vendor,
                                         prefix)
            out.append(cand)
        if progress:
            progress(f"candidates: {i + 1}/{len(shapes)} shapes")
    return out, dropped


def with_prefix_cache(pm: PerfModel, cand: Candidate, classes: Sequence[ClassLike], slo: SLO,
                      kv_link: str, cross_vendor: bool, prefix,
                      replicas: int | None = None) -> Candidate:
    """A prefill candidate re-sized for prefix-cache misses (`hetplan.prefix_cache`), its
    hit rates for a pool of `replicas` (None: the pool it would buy alone)."""
    blocks = prefix.capacity_blocks(pm, cand.shape)
    rates = {c.name: c.rate_rps for c in classes}
    base = {w: (replace(cc, capacity_rps=cc.uncached_capacity_rps)
                if cc.uncached_capacity_rps == cc.uncached_capacity_rps else cc)
            for w, cc in cand.per_class.items()}

    def per_class(n: int) -> dict[str, ClassCapacity]:
        per = {}
        for c in classes:
            b = base[c.name]
            cached = prefix.class_cached_tokens(c.name, n, blocks)
            if b.capacity_rps <= 0 or cached <= 0:
                per[c.name] = cand.per_class[c.name] if b.capacity_rps <= 0 else \
                    prefill_capacity(pm, cand.shape, c, slo, kv_link, cross_vendor)
                continue
            cc = prefill_capacity(pm, cand.shape, c, slo, kv_link, cross_vendor, cached)
            per[c.name] = replace(cc, uncached_capacity_rps=b.capacity_rps)
        return per

    def size_with(n: int) -> int:
        return solo_replicas(rates, {w: cc.capacity_rps for w, cc in per_class(n).items()},
                             prefix.utilization)

    n = replicas or pool_replicas(size_with, solo_replicas(
        rates, {w: cc.capacity_rps for w, cc in base.items()}, prefix.utilization))
    return replace(cand, per_class=per_class(n), prefix_replicas=n, prefix_blocks=blocks)
