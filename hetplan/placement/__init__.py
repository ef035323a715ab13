"""Placement: a sized plan onto an inventory of nodes (racks, fabrics, NICs, spot), with
KV-bandwidth limits, N+1 and spot headroom. Placement takes a sized plan and typed inputs
only; the planner (`planner.solve_context`) and the re-plan after node failures
(`hetplan.replan`) drive it.
"""

from __future__ import annotations

from hetplan.model import ModelSpec
from hetplan.placement.inventory import Inventory, Node, load_inventory
from hetplan.placement.place import Reliability, place_plan
from hetplan.plan import Plan


def kv_bytes_table(model: ModelSpec, plan: Plan) -> dict[tuple[str, str], float]:
    """(kv_dtype, class) -> KV bytes one request hands over (its mean prompt), as the
    planning MILP counts it."""
    return {(p.kv_dtype, c.name): model.kv_bytes_per_sequence(max(1, int(c.mean_input_tokens)),
                                                              p.kv_dtype)
            for p in plan.pools for c in plan.classes}


__all__ = ["Inventory", "Node", "Reliability", "kv_bytes_table", "load_inventory",
           "place_plan"]
