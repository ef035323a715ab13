"""Placement: a sized plan onto an inventory of nodes (racks, fabrics, NICs, spot), with
KV-bandwidth limits, N+1 and spot headroom, and incremental re-planning after node failures.
"""

from __future__ import annotations

from hetplan.placement.inventory import Inventory, Node, load_inventory
from hetplan.placement.place import Reliability, place_plan
from hetplan.plan import Plan


def kv_bytes_table(model, plan: Plan) -> dict[tuple[str, str], float]:
    """(kv_dtype, class) -> KV bytes one request hands over (its mean prompt), as the
    planning MILP counts it."""
    return {(p.kv_dtype, c.name): model.kv_bytes_per_sequence(max(1, int(c.mean_input_tokens)),
                                                              p.kv_dtype)
            for p in plan.pools for c in plan.classes}


def place_context(ctx, plan: Plan, *, solver: str = "highs", time_limit_s: float = 60.0,
                  pins=(), spares=None) -> Plan:
    """Place a plan solved from `ctx` (planner.Context) on `ctx.inventory`."""
    s = ctx.scenario
    rel = s.constraints.reliability
    placed = place_plan(plan, ctx.inventory, kv_bytes_table(ctx.perf.model, plan),
                        reliability=Reliability(rel.n_plus_one, rel.spot_headroom),
                        solver=solver, time_limit_s=time_limit_s, pins=list(pins),
                        spares=spares,
                        translation_us=ctx.perf.links.kv.cross_vendor_translation_us,
                        label=s.inventory)
    unused = sorted(set(ctx.inventory.gpus_by_type()) - set(ctx.prices))
    if unused:
        pl = placed.placement
        placed = placed.model_copy(update={"placement": pl.model_copy(update={
            "notes": pl.notes + [f"inventory GPUs not used (no price in sheet "
                                 f"{s.catalog.prices!r} or not in catalog.gpus): "
                                 f"{', '.join(unused)}"]})})
    return placed


__all__ = ["Inventory", "Node", "Reliability", "kv_bytes_table", "load_inventory",
           "place_context", "place_plan"]
