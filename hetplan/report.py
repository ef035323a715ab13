"""Markdown report of a plan (`report.md`)."""

from __future__ import annotations

from hetplan.plan import Plan
from hetplan.prefix_cache import prefix_section
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
        *placement_section(plan),
        *prefix_section(plan),
        "## Calibration and caveats",
        "",
        *[f"- {n}" for n in plan.calibration_notes + plan.notes],
        "",
    ]
    return "\n".join(lines)


NODE_ROWS_MAX = 100     # larger placements list racks only


def placement_section(plan: Plan) -> list[str]:
    """Placement per rack (and per node when small), KV traffic per link vs capacity."""
    pl = plan.placement
    if pl is None:
        return []
    shards_on: dict[str, list] = {}
    for s in pl.shards:
        shards_on.setdefault(s.node, []).append(s)
    racks: dict[tuple[str, str], list] = {}
    for n in pl.nodes:
        racks.setdefault((n.fabric, n.rack), []).append(n)
    rack_rows = []
    for (fabric, rack), nodes in sorted(racks.items()):
        per_pool: dict[str, int] = {}
        for n in nodes:
            for s in shards_on.get(n.id, []):
                per_pool[s.pool] = per_pool.get(s.pool, 0) + len(s.gpu_indices)
        used = sum(per_pool.values())
        rack_rows.append([rack, fabric, len(nodes), f"{used}/{sum(n.gpus for n in nodes)}",
                          fmt_num(sum(n.kv_gbps for n in nodes)),
                          ", ".join(f"{p}: {g} GPUs" for p, g in sorted(per_pool.items()))])
    lines = ["## Placement", "",
             f"Inventory `{pl.inventory}`: {len(pl.nodes)} nodes hold {len(pl.shards)} "
             f"shards (one per pipeline stage of a replica)."
             + (f" Failed nodes left out: {', '.join(pl.failed_nodes)}." if pl.failed_nodes
                else "")
             + (f" **{pl.moved_replicas} replica(s) moved** by this re-plan."
                if pl.moved_replicas is not None else ""), "",
             markdown_table(["rack", "fabric", "nodes", "GPUs used", "KV Gb/s", "pools"],
                            rack_rows), ""]
    if len(pl.nodes) <= NODE_ROWS_MAX:
        rows = [[n.rack, n.id, n.gpu + (" (spot)" if n.spot else ""),
                 f"{sum(len(s.gpu_indices) for s in shards_on.get(n.id, []))}/{n.gpus}",
                 fmt_num(n.kv_gbps),
                 "; ".join(f"{s.pool} #{s.replica}" + (f" stage {s.stage}" if s.stage else "")
                           + f" GPUs {','.join(map(str, s.gpu_indices))}"
                           for s in sorted(shards_on.get(n.id, []),
                                           key=lambda s: s.gpu_indices))]
                for n in sorted(pl.nodes, key=lambda n: (n.rack, n.id))]
        lines += [markdown_table(["rack", "node", "GPU", "GPUs used", "KV Gb/s (max)", "shards"],
                                 rows), ""]
    if pl.link_loads:
        lines += ["KV traffic per link (a fabric's own row is its internal traffic):", "",
                  markdown_table(["link", "KV Gb/s", "capacity Gb/s", "utilization"],
                                 [[x.link, fmt_num(x.kv_gbps), fmt_num(x.capacity_gbps),
                                   f"{x.kv_gbps / x.capacity_gbps:.1%}" if x.capacity_gbps
                                   else "-"] for x in pl.link_loads]), ""]
    lines += [f"- {n}" for n in pl.notes] + [""]
    return lines
