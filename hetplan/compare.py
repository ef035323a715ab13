"""Side-by-side baselines (`hetplan compare`) and Pareto sweeps (`hetplan frontier`).

The baselines are subsets of the full candidate set, so the full plan can never cost more
than any of them when solved to optimality; if a time limit leaves the full solve worse than
a baseline, that baseline's plan is a feasible plan of the full problem and is reported as
such (noted in the row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

from hetplan.catalog import Catalog
from hetplan.io import write_atomic, write_bytes_atomic
from hetplan.plots import frontier_png
from hetplan.planner import Infeasible, prepare, solve_context
from hetplan.scenario import SLO, Scenario
from hetplan.tables import fmt_num, text_table


def _row(kind: str, plan=None, why: str = "") -> dict:
    if plan is None:
        return {"variant": kind, "feasible": False, "cost_usd_per_hour": None,
                "usd_per_million_tokens": None, "mix": "", "golden_ratio": "", "note": why}
    mix = ", ".join(f"{p.role[0].upper()}:{p.replicas}x{p.gpu}-tp{p.tp}-w{p.weight_dtype}-kv{p.kv_dtype}"
                    for p in plan.pools)
    return {"variant": kind, "feasible": True, "cost_usd_per_hour": plan.cost_usd_per_hour,
            "usd_per_million_tokens": plan.usd_per_million_tokens, "mix": mix,
            "golden_ratio": plan.golden_ratio, "note": why, "status": plan.status}


def compare(s: Scenario, catalog: Catalog, *, solver: str = "highs", time_limit_s: float = 60,
            classes: Sequence | None = None,
            progress: Callable[[str], None] | None = None) -> list[dict]:
    """Four rows: best homogeneous colocated, best homogeneous disaggregated (each the
    cheapest over GPU types, the per-type results under `details`), heterogeneous colocated
    (Melange-style) and full hetplan."""
    ctx = prepare(s, catalog, classes, progress=progress)
    cands = ctx.candidates
    rows = []
    for kind, keep in (("homogeneous colocated", lambda c: c.role == "colocated"),
                       ("homogeneous disaggregated", lambda c: c.role != "colocated")):
        details = []
        for g in sorted(ctx.prices):
            plan, why = _try(ctx, [c for c in cands if c.shape.gpu == g and keep(c)], solver,
                             time_limit_s, f"{kind} {g}")
            details.append(_row(f"{kind} {g}", plan, why) | {"plan": plan})
        feasible = [d for d in details if d["plan"] is not None]
        best = min(feasible, key=lambda d: d["cost_usd_per_hour"], default=None)
        row = dict(best) if best else _row(kind, None, "no GPU type alone meets the SLO")
        row["variant"] = f"best {kind}" + (f" ({best['variant'].split()[-1]})" if best else "")
        row["details"] = [{k: v for k, v in d.items() if k != "plan"} for d in details]
        rows.append(row)
    het, why = _try(ctx, [c for c in cands if c.role == "colocated"], solver, time_limit_s,
                    "heterogeneous colocated")
    rows.append(_row("heterogeneous colocated", het, why) | {"plan": het})
    full, why = _try(ctx, cands, solver, time_limit_s, "hetplan (full)")
    baselines = [r["plan"] for r in rows if r.get("plan") is not None]
    cheapest = min(baselines, key=lambda p: p.cost_usd_per_hour, default=None)
    if cheapest is not None and (full is None or
                                 full.cost_usd_per_hour > cheapest.cost_usd_per_hour + 1e-9):
        full, why = cheapest, "full solve stopped early; the best baseline plan is in its space"
    rows.append(_row("hetplan (full)", full, why))
    return [{k: v for k, v in r.items() if k != "plan"} for r in rows]


def _try(ctx, subset, solver, limit, label):
    if not subset:
        return None, "no candidate in this variant serves the workload"
    try:
        return solve_context(ctx, subset, solver=solver, time_limit_s=limit, label=label), ""
    except Infeasible as e:
        return None, "; ".join(e.reasons)[:200]


def compare_table(rows: Sequence[dict]) -> str:
    return text_table(["variant", "$/h", "$/M tok", "P:D", "mix / why not"],
                      [[r["variant"], fmt_num(r["cost_usd_per_hour"]),
                        fmt_num(r["usd_per_million_tokens"]), r["golden_ratio"],
                        r["mix"] or r["note"]] for r in rows])


def frontier(s: Scenario, catalog: Catalog, vary: str, factors: Sequence[float], *,
             solver: str = "highs", time_limit_s: float = 30, classes: Sequence | None = None,
             progress: Callable[[str], None] | None = None) -> list[dict]:
    """Solve the scenario at each factor x (SLO targets, or budget). Classes are computed
    once; candidates are rebuilt per SLO because capacities depend on it."""
    base = prepare(s, catalog, classes, progress=progress)
    rows = []
    for f in sorted(factors):
        slo, scen = s.slo, s
        if vary in ("slo", "ttft"):
            slo = SLO(ttft_ms=s.slo.ttft_ms * f, tpot_ms=slo.tpot_ms, percentile=slo.percentile)
        if vary in ("slo", "tpot"):
            slo = SLO(ttft_ms=slo.ttft_ms, tpot_ms=s.slo.tpot_ms * f, percentile=slo.percentile)
        if vary == "budget":
            if s.constraints.budget_usd_per_hour is None:
                from hetplan.errors import InputError
                raise InputError("--vary budget needs constraints.budget_usd_per_hour",
                                 field="constraints.budget_usd_per_hour")
            k = s.constraints.model_copy(update={
                "budget_usd_per_hour": s.constraints.budget_usd_per_hour * f})
            scen = s.model_copy(update={"constraints": k})
        else:
            scen = s.model_copy(update={"slo": slo})
        ctx = prepare(scen, catalog, classes=base.classes, slo=slo, progress=progress)
        try:
            plan = solve_context(ctx, solver=solver, time_limit_s=time_limit_s)
            rows.append({"factor": f, "ttft_ms": slo.ttft_ms, "tpot_ms": slo.tpot_ms,
                         "budget_usd_per_hour": scen.constraints.budget_usd_per_hour,
                         "cost_usd_per_hour": plan.cost_usd_per_hour,
                         "served_rps": plan.served_rps,
                         "usd_per_million_tokens": plan.usd_per_million_tokens,
                         "golden_ratio": plan.golden_ratio, "status": plan.status})
        except Infeasible as e:
            rows.append({"factor": f, "ttft_ms": slo.ttft_ms, "tpot_ms": slo.tpot_ms,
                         "budget_usd_per_hour": scen.constraints.budget_usd_per_hour,
                         "cost_usd_per_hour": None, "served_rps": None,
                         "usd_per_million_tokens": None, "golden_ratio": "",
                         "status": "infeasible: " + e.reasons[0][:120]})
    return rows


def frontier_outputs(rows: Sequence[dict], vary: str, out: Path) -> str:
    """Write frontier.csv and frontier.png under `out`; return the table as text."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(out / "frontier.csv", buf.getvalue())
    write_bytes_atomic(out / "frontier.png", frontier_png(rows, vary))
    return text_table(["factor", "TTFT ms", "TPOT ms", "budget $/h", "cost $/h", "$/M tok",
                       "P:D", "status"],
                      [[r["factor"], fmt_num(r["ttft_ms"]), fmt_num(r["tpot_ms"]),
                        fmt_num(r["budget_usd_per_hour"]), fmt_num(r["cost_usd_per_hour"]),
                        fmt_num(r["usd_per_million_tokens"]), r["golden_ratio"], r["status"]]
                       for r in rows])
