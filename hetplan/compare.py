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
from hetplan.enums import Role
from hetplan.errors import InputError
from hetplan.io import write_atomic, write_bytes_atomic
from hetplan.parallel import INLINE, Parallel
from hetplan.planner import check_objective, prepare
from hetplan.plots import frontier_png
from hetplan.scenario import SLO, ResolvedScenario
from hetplan.tables import fmt_num, text_table
from hetplan.variants import PlanRow, plan_variant

NOTE_CHARS = 200          # compare: why a variant has no plan, cut to this length
STATUS_CHARS = 120        # frontier: the first reason in the status column


def _row(kind: str, r: PlanRow, note: str | None = None) -> dict:
    row = {"variant": kind, "feasible": r.feasible, "cost_usd_per_hour": r.cost_usd_per_hour,
           "usd_per_million_tokens": r.usd_per_million_tokens, "mix": r.mix,
           "golden_ratio": r.golden_ratio,
           "note": r.why[:NOTE_CHARS] if note is None else note}
    return row | ({"status": r.status} if r.feasible else {})


def compare(rs: ResolvedScenario, catalog: Catalog, *, solver: str = "highs",
            time_limit_s: float = 60,
            progress: Callable[[str], None] | None = None) -> list[dict]:
    """Four rows: best homogeneous colocated, best homogeneous disaggregated (each the
    cheapest over GPU types, the per-type results under `details`), heterogeneous colocated
    (Melange-style) and full hetplan."""
    ctx = prepare(rs, catalog, progress=progress)
    cands = ctx.candidates

    def run(subset, label: str) -> PlanRow:
        return plan_variant(ctx, subset, solver=solver, time_limit_s=time_limit_s, label=label)

    rows, baselines = [], []
    for kind, keep in (("homogeneous colocated", lambda c: c.role == Role.COLOCATED),
                       ("homogeneous disaggregated", lambda c: c.role != Role.COLOCATED)):
        details = [(g, run([c for c in cands if c.shape.gpu == g and keep(c)], f"{kind} {g}"))
                   for g in sorted(ctx.prices)]
        best = min(((g, r) for g, r in details if r.feasible),
                   key=lambda gr: gr[1].cost_usd_per_hour, default=None)
        row = (_row(f"best {kind} ({best[0]})", best[1]) if best else
               _row(f"best {kind}", PlanRow(None), "no GPU type alone meets the SLO"))
        row["details"] = [_row(f"{kind} {g}", r) for g, r in details]
        rows.append(row)
        baselines += [best[1].plan] if best else []
    het = run([c for c in cands if c.role == Role.COLOCATED], "heterogeneous colocated")
    rows.append(_row("heterogeneous colocated", het))
    baselines += [het.plan] if het.feasible else []
    full = run(cands, "hetplan (full)")
    cheapest = min(baselines, key=lambda p: p.cost_usd_per_hour, default=None)
    if cheapest is not None and (not full.feasible or
                                 full.cost_usd_per_hour > cheapest.cost_usd_per_hour + 1e-9):
        rows.append(_row("hetplan (full)", PlanRow(cheapest), "full solve stopped early; the "
                         "best baseline plan is in its space"))
    else:
        rows.append(_row("hetplan (full)", full))
    return rows


def compare_table(rows: Sequence[dict]) -> str:
    return text_table(["variant", "$/h", "$/M tok", "P:D", "mix / why not"],
                      [[r["variant"], fmt_num(r["cost_usd_per_hour"]),
                        fmt_num(r["usd_per_million_tokens"]), r["golden_ratio"],
                        r["mix"] or r["note"]] for r in rows])


def frontier(rs: ResolvedScenario, catalog: Catalog, vary: str, factors: Sequence[float], *,
             solver: str = "highs", time_limit_s: float = 30,
             progress: Callable[[str], None] | None = None,
             parallel: Parallel = INLINE) -> list[dict]:
    """Solve the scenario at each factor x (SLO targets, or budget). The workload is
    resolved once; candidates are rebuilt per variant because capacities depend on the
    SLO. The variants solve on `parallel` (`hetplan frontier`: one process per core)."""
    k, base = rs.scenario.constraints, rs.slo
    if vary == "budget" and k.budget_usd_per_hour is None:
        raise InputError("--vary budget needs constraints.budget_usd_per_hour",
                         file=rs.source, field="constraints.budget_usd_per_hour")
    check_objective(rs)          # before the sweep: every point would fail alike
    variants = []
    for f in sorted(factors):
        if vary == "budget":
            var = rs.with_constraints(budget_usd_per_hour=k.budget_usd_per_hour * f)
        else:
            var = rs.derive(slo=SLO(
                ttft_ms=base.ttft_ms * f if vary in ("slo", "ttft") else base.ttft_ms,
                tpot_ms=base.tpot_ms * f if vary in ("slo", "tpot") else base.tpot_ms,
                percentile=base.percentile))
        variants.append((f, var))
    solved = parallel.calls(
        [(_frontier_point, (var, catalog, solver, time_limit_s), {}) for _, var in variants],
        progress=progress, label="frontier")
    rows = []
    for (f, var), r in zip(variants, solved):
        rows.append({"factor": f, "ttft_ms": var.slo.ttft_ms, "tpot_ms": var.slo.tpot_ms,
                     "budget_usd_per_hour": var.scenario.constraints.budget_usd_per_hour,
                     "cost_usd_per_hour": r.cost_usd_per_hour, "served_rps": r.served_rps,
                     "usd_per_million_tokens": r.usd_per_million_tokens,
                     "golden_ratio": r.golden_ratio,
                     "status": r.status if r.feasible else
                     "infeasible: " + r.reasons[0][:STATUS_CHARS]})
    return rows


def _frontier_point(var: ResolvedScenario, catalog: Catalog, solver: str,
                    time_limit_s: float) -> PlanRow:
    return plan_variant(prepare(var, catalog), solver=solver, time_limit_s=time_limit_s)


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
