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
        f"p{slo['percentile']:g} TPOT <= {slo['tpot_ms']:g} ms"
        + (" over all requests (scope workload)" if slo.get("scope") == "workload" else "")
        + f"; objective {plan.objective}.",
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
        *simplification_section(plan),
        *missing_section(plan),
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


def simplification_section(plan: Plan) -> list[str]:
    """What the pool cost / pool cap did: this plan against the unconstrained one."""
    s = plan.simplification
    if s is None:
        return []
    gpu, free = plan.cost_usd_per_hour, s.unconstrained_cost_usd_per_hour
    rule = (f"a fixed ${s.pool_cost_usd_per_hour:g}/h per distinct pool"
            + (f" and at most {s.max_pools_per_role} pools per role"
               if s.max_pools_per_role is not None else ""))
    return ["## Operational simplicity", "",
            f"Solved with {rule} (constraints.pool_cost_usd_per_hour, max_pools_per_role); "
            "the unconstrained plan is solved without them for comparison.", "",
            markdown_table(["plan", "pools", "GPU $/h", "operations $/h", "total $/h", "mix"],
                           [["this plan", s.pools, f"{gpu:.2f}",
                             f"{plan.operations_usd_per_hour():.2f}",
                             f"{gpu + plan.operations_usd_per_hour():.2f}", plan.mix()],
                            ["unconstrained", s.unconstrained_pools, f"{free:.2f}",
                             f"{s.unconstrained_pools * s.pool_cost_usd_per_hour:.2f}",
                             f"{free + s.unconstrained_pools * s.pool_cost_usd_per_hour:.2f}",
                             s.unconstrained_mix]]), "",
            f"The simpler plan's GPUs cost ${gpu - free:+.2f}/h "
            f"({(gpu - free) / free:+.1%}) against the unconstrained plan's, with "
            f"{s.unconstrained_pools - s.pools} fewer pool(s).", ""]


def missing_section(plan: Plan) -> list[str]:
    """Scope workload: the classes the plan lets miss the SLO, their request share and the
    relaxed service times they are sized at."""
    names = plan.missing_classes()
    if not names:
        return []
    slo = plan.slo
    total = sum(c.rate_rps for c in plan.classes) or 1.0
    rows = []
    for c in plan.classes:
        if not c.misses_slo:
            continue
        routes = [r for p in plan.pools for r in p.routes if r.workload_class == c.name]
        ttft = max((r.predicted_ttft_ms for r in routes if r.predicted_ttft_ms), default=None)
        tpot = max((r.predicted_tpot_ms for r in routes if r.predicted_tpot_ms), default=None)
        rows.append([c.name, f"{c.rate_rps / total:.3%}", fmt_num(ttft),
                     f"{ttft / slo['ttft_ms']:.2f}x" if ttft else "-", fmt_num(tpot),
                     f"{tpot / slo['tpot_ms']:.2f}x" if tpot else "-"])
    share = sum(c.rate_rps for c in plan.classes if c.misses_slo) / total
    return ["## Classes allowed to miss the SLO (scope workload)", "",
            f"{len(names)} class(es), {share:.3%} of the requests (budget "
            f"{100 - slo['percentile']:g}%), are served at relaxed targets and may miss the "
            f"p{slo['percentile']:g} targets; every other class is sized to meet them. "
            "Predicted service times (before queueing) against the targets:", "",
            markdown_table(["class", "share of requests", "TTFT ms", "x TTFT target",
                            "TPOT ms", "x TPOT target"], rows), ""]


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
