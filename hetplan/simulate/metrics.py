"""What a simulation reports: latency percentiles, SLO attainment per class, utilization per
pool, cost per token; the `sim.json` model, a text summary and the latency CDF plot.

Definitions: TTFT = first token - arrival; TPOT = (completion - first token) / (output
tokens - 1), per request (requests of one output token count as meeting TPOT); E2E =
completion - arrival. Attainment is the share of requests meeting a target; a class meets
the SLO at percentile q when both its TTFT and its TPOT attainment are >= q / 100; the
plan meets it when every class does that has at least 10 / (1 - q/100) requests (100 at
p90: fewer leave under ten requests in the tail, too few to judge), or, when no class has
that many, when all requests together do. With `slo.scope: workload` the plan meets it when
all requests together do (TTFT and TPOT attainment over every request >= q / 100), and the
classes that miss on their own are named with how far they miss (`misses`). Requests
the engine had to drop (a sequence that cannot fit in KV memory even alone) miss both.
Every request counts, including the warm-up from an empty system.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from hetplan.enums import Role
from hetplan.io import dumps_json
from hetplan.plan import Plan
from hetplan.simulate.prefix import PrefixSimResult, prefix_text
from hetplan.tables import fmt_num, text_table
from hetplan.workload import Trace

ROUND = 6


class ClassResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    requests: int
    ttft_p90_ms: float | None
    tpot_p90_ms: float | None
    ttft_at_slo_ms: float | None        # at the SLO's percentile
    tpot_at_slo_ms: float | None
    predicted_ttft_ms: float | None     # the planner's service-time figures (worst route)
    predicted_tpot_ms: float | None
    attainment_ttft: float
    attainment_tpot: float
    attainment: float                   # both targets
    slo_met: bool
    decides: bool                       # enough requests to count for the plan's verdict


class PoolResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: Role
    replicas: int
    utilization: float                  # busy time / (replicas x simulated time)
    planned_utilization: float
    mean_batch: float | None            # decode / colocated: time-averaged sequences
    steps: int
    preemptions: int
    # reconcile with the plan (None where the pool does not run that phase): requests
    # through the pool, its planned batch (the plan's largest route batch), and the TTFT
    # (prefill / colocated) or TPOT (decode / colocated) at the SLO percentile of the
    # requests it served vs the plan's predicted service time (worst route)
    requests: int = 0
    planned_batch: int | None = None
    ttft_at_slo_ms: float | None = None
    predicted_ttft_ms: float | None = None
    attainment_ttft: float | None = None
    tpot_at_slo_ms: float | None = None
    predicted_tpot_ms: float | None = None
    attainment_tpot: float | None = None


class SimReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str
    trace: str
    seed: int
    kv_link: str
    requests: int
    completed: int
    dropped: int
    preempted_requests: int
    preemptions: int
    duration_s: float
    ttft_p50_ms: float
    ttft_p90_ms: float
    ttft_p99_ms: float
    tpot_p50_ms: float | None
    tpot_p90_ms: float | None
    tpot_p99_ms: float | None
    e2e_p50_ms: float
    e2e_p90_ms: float
    e2e_p99_ms: float
    slo: dict
    slo_attainment: float               # share of requests meeting both targets
    slo_attainment_ttft: float
    slo_attainment_tpot: float
    slo_met: bool                       # every class at the SLO percentile
    classes: list[ClassResult]
    pools: list[PoolResult]
    cost_usd_per_hour: float
    tokens_per_second: float
    usd_per_million_tokens: float | None
    notes: list[str]
    prefix_cache: PrefixSimResult | None = None   # written only when the plan caches
    # scope workload: one line per class that misses the percentile on its own (written
    # only when there are some, so class-scope reports read as before)
    misses: list[str] = []

    def to_json(self) -> str:
        return dumps_json(self.summary())

    def summary(self) -> dict:
        skip = ({"prefix_cache"} if self.prefix_cache is None else set()) | (
            set() if self.misses else {"misses"})
        return _rounded(self.model_dump(exclude=skip or None))


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, ROUND)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def _pct(x: np.ndarray, q: float) -> float | None:
    return float(np.percentile(x, q)) if x.size else None


def latencies_ms(res) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """TTFT, TPOT (NaN for one-token outputs), E2E in ms, and the served mask."""
    ok = (res.done_s >= 0) & ~res.dropped
    ttft = (res.first_token_s - res.arrival_s) * 1e3
    e2e = (res.done_s - res.arrival_s) * 1e3
    steps = res.generated - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(steps > 0, (res.done_s - res.first_token_s) * 1e3 / np.maximum(steps, 1),
                        np.nan)
    return ttft, tpot, e2e, ok


def summarize(plan: Plan, trace: Trace, res, cls: np.ndarray, class_names: list[str],
              seed: int, kv_link: str) -> SimReport:
    slo = plan.slo
    q = float(slo.get("percentile", 90.0))
    ttft, tpot, e2e, ok = latencies_ms(res)
    meet_ttft = ok & (ttft <= slo["ttft_ms"])
    meet_tpot = ok & (np.isnan(tpot) | (tpot <= slo["tpot_ms"]))
    both = meet_ttft & meet_tpot
    tp = tpot[ok & ~np.isnan(tpot)]
    pred = {}
    for p in plan.pools:
        for r in p.routes:
            t, o = pred.get(r.workload_class, (None, None))
            t = _max(t, r.predicted_ttft_ms)
            o = _max(o, r.predicted_tpot_ms)
            pred[r.workload_class] = (t, o)
    min_n = 10.0 / (1.0 - q / 100) if q < 100 else 1.0
    classes = []
    for j, name in enumerate(class_names):
        m = cls == j
        n = int(m.sum())
        if n == 0:
            continue
        cm = m & ok
        ct = tpot[cm & ~np.isnan(tpot)]
        a_t, a_o = float(meet_ttft[m].mean()), float(meet_tpot[m].mean())
        classes.append(ClassResult(
            name=name, requests=n, ttft_p90_ms=_pct(ttft[cm], 90), tpot_p90_ms=_pct(ct, 90),
            ttft_at_slo_ms=_pct(ttft[cm], q), tpot_at_slo_ms=_pct(ct, q),
            predicted_ttft_ms=pred.get(name, (None, None))[0],
            predicted_tpot_ms=pred.get(name, (None, None))[1],
            attainment_ttft=a_t, attainment_tpot=a_o, attainment=float(both[m].mean()),
            slo_met=bool(a_t >= q / 100 and a_o >= q / 100), decides=n >= min_n))
    end = float(res.done_s.max()) if res.done_s.size else 0.0
    duration = max(end - float(res.arrival_s.min()), 1e-9)
    pools = []
    for i, p in enumerate(plan.pools):
        busy = res.pool_busy_s[i]
        pools.append(PoolResult(
            name=p.name, role=p.role, replicas=p.replicas,
            utilization=sum(busy) / (max(len(busy), 1) * duration),
            planned_utilization=p.utilization,
            mean_batch=(res.pool_batch_s[i] / max(sum(busy), 1e-12)
                        if p.role != Role.PREFILL else None),
            steps=res.pool_steps[i], preemptions=res.pool_preemptions[i],
            **_pool_latency(i, p, res, ttft, tpot, meet_ttft, meet_tpot, ok, q)))
    tokens = float(trace.input_tokens[ok].sum() + res.generated[ok].sum())
    hours = duration / 3600
    cost = plan.cost_usd_per_hour
    return SimReport(
        scenario=plan.scenario, trace=trace.name or trace.source, seed=seed, kv_link=kv_link,
        requests=int(res.arrival_s.size), completed=int(ok.sum()),
        dropped=int(res.dropped.sum()), preempted_requests=int((res.preemptions > 0).sum()),
        preemptions=int(res.preemptions.sum()), duration_s=duration,
        ttft_p50_ms=_pct(ttft[ok], 50) or 0.0, ttft_p90_ms=_pct(ttft[ok], 90) or 0.0,
        ttft_p99_ms=_pct(ttft[ok], 99) or 0.0, tpot_p50_ms=_pct(tp, 50),
        tpot_p90_ms=_pct(tp, 90), tpot_p99_ms=_pct(tp, 99),
        e2e_p50_ms=_pct(e2e[ok], 50) or 0.0, e2e_p90_ms=_pct(e2e[ok], 90) or 0.0,
        e2e_p99_ms=_pct(e2e[ok], 99) or 0.0, slo=dict(slo),
        slo_attainment=float(both.mean()), slo_attainment_ttft=float(meet_ttft.mean()),
        slo_attainment_tpot=float(meet_tpot.mean()),
        slo_met=_verdict(classes, float(meet_ttft.mean()), float(meet_tpot.mean()), q,
                         slo.get("scope", "class")),
        misses=class_misses(plan, classes) if slo.get("scope") == "workload" else [],
        classes=classes, pools=pools,
        cost_usd_per_hour=cost, tokens_per_second=tokens / duration,
        usd_per_million_tokens=cost * hours / tokens * 1e6 if tokens else None,
        notes=["step times from the perf model (see hetplan/simulate/steps.py); the system "
               "starts empty and every request counts; TTFT ends with the first decode step "
               "(disaggregated) or the last prefill chunk (colocated)"])


def pool_requests(res, i: int, role: str) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the requests whose TTFT (first stage) and TPOT (decode stage) pool `i` of
    role `role` decided."""
    first = res.first_pool == i
    return (first if role != Role.DECODE else np.zeros_like(first),
            res.decode_pool == i if role == Role.DECODE else
            (first if role == Role.COLOCATED else np.zeros_like(first)))


def _pool_latency(i: int, p, res, ttft, tpot, meet_ttft, meet_tpot, ok, q: float) -> dict:
    """A pool's reconcile fields (PoolResult)."""
    if res.first_pool is None:
        return {}
    on_t, on_o = pool_requests(res, i, p.role)
    out = {"requests": int((on_t | on_o).sum()),
           "planned_batch": max((r.batch for r in p.routes), default=None)}
    if on_t.any():
        out |= {"ttft_at_slo_ms": _pct(ttft[on_t & ok], q),
                "predicted_ttft_ms": _max_of(r.predicted_ttft_ms for r in p.routes),
                "attainment_ttft": float(meet_ttft[on_t].mean())}
    if on_o.any():
        out |= {"tpot_at_slo_ms": _pct(tpot[on_o & ok & ~np.isnan(tpot)], q),
                "predicted_tpot_ms": _max_of(r.predicted_tpot_ms for r in p.routes),
                "attainment_tpot": float(meet_tpot[on_o].mean())}
    return out


def _max_of(values) -> float | None:
    out = None
    for v in values:
        out = _max(out, v)
    return out


def reconcile_rows(r: SimReport) -> list[list]:
    """One row per pool: the plan's figures beside the simulation's (`RECONCILE_HEADER`)."""
    return [[p.name, p.replicas, f"{p.planned_utilization:.0%}", f"{p.utilization:.0%}",
             fmt_num(p.planned_batch), fmt_num(p.mean_batch),
             fmt_num(p.predicted_ttft_ms), fmt_num(p.ttft_at_slo_ms),
             fmt_num(p.predicted_tpot_ms), fmt_num(p.tpot_at_slo_ms), p.preemptions]
            for p in r.pools]


def reconcile_header(q: float) -> list[str]:
    return ["pool", "replicas", "util planned", "util simulated", "batch planned",
            "batch observed", "TTFT ms predicted", f"TTFT p{q:g} simulated",
            "TPOT ms predicted", f"TPOT p{q:g} simulated", "preemptions"]


RECONCILE_NOTE = ("predicted latencies are the perf model's service times before queueing; "
                  "simulated ones include queueing, batching and KV hand-off; utilization "
                  "planned is load / capacity at the SLO, simulated is busy time (a decode "
                  "replica with any sequence is busy); batch observed is the time-averaged "
                  "number of running sequences")


def _verdict(classes: list[ClassResult], att_ttft: float, att_tpot: float, q: float,
             scope: str = "class") -> bool:
    deciding = [c for c in classes if c.decides] if scope == "class" else []
    if deciding:
        return all(c.slo_met for c in deciding)
    return att_ttft >= q / 100 and att_tpot >= q / 100


def class_misses(plan: Plan, classes: list[ClassResult]) -> list[str]:
    """One line per class that misses the SLO percentile on its own: its share of the
    requests, whether the plan let it miss, and how far its percentile latency is from the
    target (ratio) with its attainment."""
    slo, q = plan.slo, float(plan.slo.get("percentile", 90.0))
    planned = set(plan.missing_classes())
    total = sum(c.requests for c in classes) or 1
    out = []
    for c in classes:
        if c.slo_met:
            continue
        parts = []
        if c.attainment_ttft < q / 100 and c.ttft_at_slo_ms is not None:
            parts.append(f"TTFT p{q:g} {c.ttft_at_slo_ms:.0f} ms = "
                         f"{c.ttft_at_slo_ms / slo['ttft_ms']:.2f}x the {slo['ttft_ms']:g} ms "
                         f"target")
        if c.attainment_tpot < q / 100 and c.tpot_at_slo_ms is not None:
            parts.append(f"TPOT p{q:g} {c.tpot_at_slo_ms:.1f} ms = "
                         f"{c.tpot_at_slo_ms / slo['tpot_ms']:.2f}x the {slo['tpot_ms']:g} ms "
                         f"target")
        out.append(f"class {c.name} ({c.requests / total:.3%} of requests, "
                   + ("planned to miss" if c.name in planned else "NOT planned to miss")
                   + f"): {'; '.join(parts) or 'requests dropped'}; attainment "
                   f"{c.attainment:.1%}")
    return out


def _max(a, b):
    if a is None:
        return b
    return a if b is None else max(a, b)


def report_text(r: SimReport) -> str:
    """The human summary printed by `hetplan simulate`."""
    slo = r.slo
    q = slo.get("percentile", 90.0)
    lines = [
        f"simulated {r.requests:,} requests over {r.duration_s:,.0f} s ({r.trace}, seed "
        f"{r.seed}): {r.completed:,} completed, {r.dropped:,} dropped, "
        f"{r.preempted_requests:,} preempted",
        text_table(["", "p50", "p90", "p99"],
                   [["TTFT ms", fmt_num(r.ttft_p50_ms), fmt_num(r.ttft_p90_ms),
                     fmt_num(r.ttft_p99_ms)],
                    ["TPOT ms", fmt_num(r.tpot_p50_ms), fmt_num(r.tpot_p90_ms),
                     fmt_num(r.tpot_p99_ms)],
                    ["E2E ms", fmt_num(r.e2e_p50_ms), fmt_num(r.e2e_p90_ms),
                     fmt_num(r.e2e_p99_ms)]]),
        "",
        f"SLO p{q:g} TTFT <= {slo['ttft_ms']:g} ms and TPOT <= {slo['tpot_ms']:g} ms"
        + (" over all requests" if slo.get("scope") == "workload" else "") + ": "
        f"{'met' if r.slo_met else 'NOT met'}; attainment {r.slo_attainment:.1%} (TTFT "
        f"{r.slo_attainment_ttft:.1%}, TPOT {r.slo_attainment_tpot:.1%})",
        text_table(["class", "requests", f"TTFT p{q:g}", "planned", f"TPOT p{q:g}", "planned",
                    "attain", "met"],
                   [[c.name, c.requests, fmt_num(c.ttft_at_slo_ms), fmt_num(c.predicted_ttft_ms),
                     fmt_num(c.tpot_at_slo_ms), fmt_num(c.predicted_tpot_ms),
                     f"{c.attainment:.1%}",
                     ("yes" if c.slo_met else "no") + ("" if c.decides else " (few)")]
                    for c in r.classes]),
        *(["classes missing the SLO on their own (scope workload):"]
          + [f"  {m}" for m in r.misses] if r.misses else []),
        "",
        "plan vs simulation per pool (" + RECONCILE_NOTE + "):",
        text_table(reconcile_header(q), reconcile_rows(r)),
        "",
        f"cost ${r.cost_usd_per_hour:.2f}/h, {fmt_num(r.tokens_per_second)} tokens/s, "
        f"${fmt_num(r.usd_per_million_tokens)} per M tokens (in+out)",
    ]
    if r.prefix_cache is not None:
        lines.append(prefix_text(r.prefix_cache))
    return "\n".join(lines)

