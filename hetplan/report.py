"""Markdown report of a plan (`report.md`)."""

from __future__ import annotations

from hetplan.plan import Plan
from hetplan.tables import fmt_num, markdown_table


def plan_report(plan: Plan) -> str:
    slo = plan.slo
    lines = [
        f"# hetplan plan: {plan.scenario}",
        "",
        f"Model **{plan.model}**; SLO p{slo['percentile']:g} TTFT <= {slo['ttft_ms']:g} ms, "
        f"p{slo['percentile']:g} TPOT <= {slo['tpot_ms']:g} ms; objective {plan.objective}.",
        f"Solver {plan.solver}: **{plan.status}**"
        + (f", gap {plan.gap:.2%}" if plan.gap is not None else ", gap unknown") + ".",
        "",
        "## Summary",
        "",
        markdown_table(["cost $/h", "$ per M tokens (in+out)", "$ per M output tokens",
                        "demand req/s", "served req/s", "P:D GPUs (golden ratio)",
                        "colocated GPUs"],
                       [[f"{plan.cost_usd_per_hour:.2f}", fmt_num(plan.usd_per_million_tokens),
                         fmt_num(plan.usd_per_million_output_tokens), fmt_num(plan.demand_rps),
                         fmt_num(plan.served_rps),
                         f"{plan.prefill_gpus}:{plan.decode_gpus} ({plan.golden_ratio})",
                         plan.colocated_gpus]]),
        "",
        "## Pools",
        "",
        markdown_table(["pool", "role", "GPU", "TP", "PP", "weights", "KV", "replicas", "GPUs",
                        "$/h", "utilization"],
                       [[p.name, p.role, p.gpu, p.tp, p.pp, p.weight_dtype, p.kv_dtype,
                         p.replicas, p.gpus, f"{p.cost_usd_per_hour:.2f}",
                         f"{p.utilization:.0%}"] for p in plan.pools]),
        "",
        "## Routing and predicted latency (service time per step, before queueing)",
        "",
        markdown_table(["pool", "class", "req/s", "TTFT ms", "TPOT ms", "batch"],
                       [[p.name, r.workload_class, fmt_num(r.rate_rps),
                         fmt_num(r.predicted_ttft_ms), fmt_num(r.predicted_tpot_ms), r.batch]
                        for p in plan.pools for r in p.routes]),
        "",
        "## Workload classes",
        "",
        markdown_table(["class", "req/s", "mean in", "mean out", "p90 in", "p90 out"],
                       [[c.name, fmt_num(c.rate_rps), fmt_num(c.mean_input_tokens),
                         fmt_num(c.mean_output_tokens), fmt_num(c.p90_input_tokens),
                         fmt_num(c.p90_output_tokens)] for c in plan.classes]),
        "",
        "## Calibration and caveats",
        "",
        *[f"- {n}" for n in plan.calibration_notes + plan.notes],
        "",
    ]
    return "\n".join(lines)
