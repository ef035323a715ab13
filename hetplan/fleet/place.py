"""Place every member's pools on the fleet's inventory in one pass.

The members' plans are joined into one plan whose pools and classes are named
`<member>/<name>` (member names are safe file names, so they hold no `/`), placed with the
single-model placement (`placement.place_plan`: node packing, NIC and fabric KV flows of all
members on the shared links, N+1, spot headroom), and split back: each member's plan gets
its pools (grown by their spares) and a placement holding its shards and the nodes they use.
Two members may share a node, never a GPU (packing hands each GPU index to one shard).
"""

from __future__ import annotations

from collections.abc import Mapping

from hetplan.placement import Reliability, kv_bytes_table, place_plan
from hetplan.placement.inventory import Inventory
from hetplan.plan import Placement, Plan

SEP = "/"


def joined_plan(name: str, plans: Mapping[str, Plan]) -> Plan:
    """One plan holding every member's pools and classes, names prefixed `<member>/`. Each
    pool records the rho it was sized at, since the members' sizing may differ."""
    pools, classes = [], []
    for m, plan in plans.items():
        for p in plan.pools:
            pools.append(p.model_copy(update={
                "name": f"{m}{SEP}{p.name}",
                "target_utilization": plan.pool_target_utilization(p),
                "routes": [r.model_copy(update={"workload_class": f"{m}{SEP}{r.workload_class}"})
                           for r in p.routes]}))
        classes += [c.model_copy(update={"name": f"{m}{SEP}{c.name}"}) for c in plan.classes]
    first = next(iter(plans.values()))
    return first.model_copy(update={"scenario": name, "pools": pools, "classes": classes})


def place_fleet(name: str, plans: Mapping[str, Plan], models: Mapping, inv: Inventory, *,
                reliability: Reliability, solver: str, time_limit_s: float,
                translation_us: float, label: str | None) -> dict[str, Plan]:
    """Each member's plan with its placement (`models`: member -> ModelSpec, for the KV
    bytes a request hands over). Raises PlacementInfeasible with `<member>/<pool>` names."""
    kv: dict[tuple[str, str], float] = {}
    for m, plan in plans.items():
        kv |= {(d, f"{m}{SEP}{w}"): b for (d, w), b in kv_bytes_table(models[m], plan).items()}
    placed = place_plan(joined_plan(name, plans), inv, kv, reliability=reliability,
                        solver=solver, time_limit_s=time_limit_s,
                        translation_us=translation_us, label=label)
    return {m: _member_part(m, plan, placed) for m, plan in plans.items()}


def _strip(m: str, s: str) -> str | None:
    return s[len(m) + 1:] if s.startswith(f"{m}{SEP}") else None


def _member_part(m: str, plan: Plan, placed: Plan) -> Plan:
    """Member m's share of the joined placed plan."""
    own = {p.name: p for p in plan.pools}
    pools = []
    for p in placed.pools:
        base = _strip(m, p.name)
        if base is None:
            continue
        pools.append(p.model_copy(update={
            "name": base, "target_utilization": own[base].target_utilization,
            "routes": [r.model_copy(update={"workload_class": _strip(m, r.workload_class)})
                       for r in p.routes]}))
    pl = placed.placement
    shards = [s.model_copy(update={"pool": _strip(m, s.pool)}) for s in pl.shards
              if _strip(m, s.pool) is not None]
    used = {s.node for s in shards}
    others = sorted({s.pool.split(SEP, 1)[0] for s in pl.shards if s.node in used
                     and _strip(m, s.pool) is None})
    notes = ["fleet placement: all members placed in one pass; link loads are the whole "
             "fleet's" + (f"; shares nodes with {', '.join(others)}" if others else "")]
    placement = Placement(
        inventory=pl.inventory, nodes=[n for n in pl.nodes if n.id in used], shards=shards,
        link_loads=pl.link_loads, notes=notes + pl.notes,
        spare_replicas={b: k for p, k in pl.spare_replicas.items()
                        if (b := _strip(m, p)) is not None})
    return plan.model_copy(update={"pools": pools, "placement": placement})


def shared_nodes(plans: Mapping[str, Plan]) -> dict[str, list[str]]:
    """Node -> the members with a shard on it, for nodes used by more than one member."""
    on: dict[str, set[str]] = {}
    for m, plan in plans.items():
        for s in plan.placement.shards if plan.placement else []:
            on.setdefault(s.node, set()).add(m)
    return {n: sorted(ms) for n, ms in sorted(on.items()) if len(ms) > 1}
