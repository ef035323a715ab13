"""Place a sized plan onto an inventory: the MILP picks replica counts per (pool, node group)
with KV-bandwidth and reliability constraints (`formulation.py`), packing picks nodes and
GPU indices (`pack.py`), and the plan comes back with its `placement` filled and its pools
grown by any spare replicas N+1 or spot headroom needed.

Two stages: sizing (the planning MILP, GPU counts per type from the inventory) then
placement. If placement has no solution, `explain` names what binds: node packing per GPU
type, fabric/NIC bandwidth, or N+1 / spot headroom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from hetplan.enums import Role
from hetplan.errors import Infeasible
from hetplan.milp.backends import solve
from hetplan.milp.formulation import LINK_UTILIZATION
from hetplan.placement.formulation import Instance, Options, PlacementModel
from hetplan.placement.groups import PoolNeed, group_nodes, pool_needs
from hetplan.placement.inventory import Inventory
from hetplan.placement.pack import PackError, node_states, pack
from hetplan.placement.reliability import verify_n_plus_one
from hetplan.plan import LinkLoad, PlacedNode, PlacedShard, Placement, Plan


class PlacementInfeasible(Infeasible):
    """Placement failed; `blocked` pools cannot be placed even alone (the planner re-sizes
    without them), `spare_gpus` are the GPUs per type their spares need."""

    def __init__(self, reasons: list[str], blocked: set[str] = frozenset(),
                 spare_gpus: dict[str, int] | None = None):
        super().__init__(reasons)
        self.blocked = set(blocked)
        self.spare_gpus = spare_gpus or {}


PACK_ROUNDS = 8          # placement MILP re-solves when packing cuts a group's room


@dataclass(frozen=True)
class Reliability:
    n_plus_one: bool = False
    spot_headroom: float = 0.0


def place_plan(plan: Plan, inv: Inventory, kv_bytes: dict[tuple[str, str], float], *,
               reliability: Reliability = Reliability(), solver: str = "highs",
               time_limit_s: float = 60.0, pins: list[PlacedShard] = (),
               spares: dict[str, int] | None = None, translation_us: float = 0.0,
               label: str | None = None) -> Plan:
    """The plan with its placement. `pins` (survivors of an earlier placement) stay put;
    `spares` are that placement's spare replicas (so the sized counts can be recovered)."""
    needs = pool_needs(plan, kv_bytes, spares)
    by_name = {p.name: p for p in needs}
    _check_shapes(needs, inv)
    groups = group_nodes(inv)
    group_of = {n.id: g.name for g in groups for n in g.nodes}
    pinned: dict[tuple[str, str], set[int]] = {}
    for s in pins:
        pinned.setdefault((s.pool, group_of[s.node]), set()).add(s.replica)
    kv_class = {w: kv_bytes[p.kv_dtype, w] for p in needs if p.role == Role.PREFILL
                for w in p.class_rates}
    free = {g.name: [n.gpus - sum(len(s.gpu_indices) for s in pins if s.node == n.id)
                     for n in g.nodes] for g in groups}
    inst = Instance(needs, groups, inv, free, {k: len(v) for k, v in pinned.items()}, kv_class)
    opt = Options(reliability.n_plus_one, reliability.spot_headroom)
    for _ in range(PACK_ROUNDS):
        model = PlacementModel(inst, opt)
        sol = solve(model.lp, solver, time_limit_s)
        if not sol.has_solution:
            err = _infeasible(inst, opt, solver, time_limit_s)
            for gname, n in sorted(inst.cut_gpus.items()):   # give the cut GPUs to sizing
                gpu = next(g.gpu for g in groups if g.name == gname)
                err.spare_gpus[gpu] = err.spare_gpus.get(gpu, 0) + n
                err.reasons.append(f"node packing[{gname}]: per-node N+1 caps beside mixed TP "
                                   f"sizes leave {n} GPUs unusable")
            raise err
        new = model.counts(sol.values)
        per_node = model.per_node(sol.values) if model.n_plus_one else None
        states = node_states(groups, by_name, list(pins))
        try:
            shards = list(pins) + pack(groups, by_name, new, list(pins), states, per_node)
            break
        except PackError as e:      # per-node caps beside mixed TP sizes: cut that group's room
            last = str(e)
            if not e.group:
                raise PlacementInfeasible([last]) from None
            inst.cut_gpus[e.group] = inst.cut_gpus.get(e.group, 0) + e.deficit_gpus
    else:
        raise PlacementInfeasible([last])
    totals = {p.name: 0 for p in needs}
    for s in shards:
        if s.stage == 0:
            totals[s.pool] += 1
    flows = model.flows_gbps(sol.values)
    placed = _with_replicas(plan, totals)
    notes = [f"placement MILP over {len(groups)} groups of interchangeable nodes "
             f"({len(inv.nodes)} nodes): {sol.status} ({sol.solver}); "
             "nodes and GPU indices by deterministic packing"]
    notes += _reliability_notes(placed, reliability, needs, totals, shards, inv)
    notes += _kv_notes(needs, states, translation_us)
    placement = Placement(
        inventory=label or inv.name,
        nodes=[PlacedNode(id=st.node.id, gpu=st.node.gpu, gpus=st.node.gpus, rack=st.node.rack,
                          fabric=st.node.fabric, address=st.node.host,
                          nic_gbps=st.node.nic_gbps, spot=st.node.spot, kv_gbps=st.kv_gbps,
                          provider=st.node.provider)
               for _, st in sorted(states.items()) if st.stages],
        shards=sorted(shards, key=lambda s: (s.pool, s.replica, s.stage)),
        link_loads=_link_loads(inv, flows), notes=notes,
        spare_replicas={p.name: totals[p.name] - p.base_replicas for p in needs
                        if totals[p.name] > p.base_replicas})
    return placed.model_copy(update={"placement": placement})


def _check_shapes(needs: list[PoolNeed], inv: Inventory) -> None:
    most = inv.max_gpus_per_node()
    for p in needs:
        if p.gpu not in most:
            raise PlacementInfeasible([f"node packing[{p.gpu}]: pool {p.name} needs {p.gpu} "
                                       "nodes; the inventory has none healthy"], {p.name})
        if p.tp > most[p.gpu]:
            raise PlacementInfeasible([f"node packing[{p.gpu}]: pool {p.name} has TP{p.tp} but "
                                       f"{p.gpu} nodes hold at most {most[p.gpu]} GPUs (a TP "
                                       "group stays in one node)"], {p.name})


def _with_replicas(plan: Plan, totals: dict[str, int]) -> Plan:
    """The plan with pool replica counts changed (spares): each pool's GPUs, cost and
    utilization follow; the plan's totals are computed from its pools."""
    pools = []
    for p in plan.pools:
        n = totals.get(p.name, p.replicas)
        load = p.utilization * p.replicas
        pools.append(p.model_copy(update={
            "replicas": n, "gpus": n * p.gpus // p.replicas,
            "cost_usd_per_hour": p.cost_usd_per_hour / p.replicas * n,
            "utilization": load / n if n else 0.0}))
    return plan.model_copy(update={"pools": pools})


def _reliability_notes(plan: Plan, rel: Reliability, needs, totals, shards, inv) -> list[str]:
    notes = []
    extra = {p.name: totals[p.name] - p.base_replicas for p in needs
             if totals[p.name] > p.base_replicas}
    if extra:
        notes.append("spare replicas for reliability: " + ", ".join(
            f"{k} +{v}" for k, v in sorted(extra.items())))
    if rel.spot_headroom > 0:
        notes.append(f"spot headroom: spot replicas count {1 - rel.spot_headroom:.0%} of their "
                     "capacity")
    if rel.n_plus_one:
        fails, worst = verify_n_plus_one(plan.model_copy(update={"placement": Placement(
            inventory="", nodes=[PlacedNode(id=n.id, gpu=n.gpu, gpus=n.gpus, rack=n.rack,
                                            fabric=n.fabric, address=n.host, spot=n.spot)
                                 for n in inv.nodes], shards=shards)}), rel.spot_headroom)
        if fails:       # the MILP's rows make this impossible; say so rather than hide it
            notes.append(f"N+1 NOT met: losing {fails[0].node} leaves {fails[0].pool} "
                         f"{fails[0].usable_replicas:g} usable replicas for "
                         f"{fails[0].needed_replicas:.2f} needed")
        elif worst is not None:
            notes.append(f"N+1 verified on {len(inv.nodes)} nodes: the tightest loss is "
                         f"{worst.node} ({worst.pool} keeps {worst.usable_replicas:g} usable "
                         f"replicas for {worst.needed_replicas:.2f} needed)")
    return notes


def _kv_notes(needs: list[PoolNeed], states, translation_us: float) -> list[str]:
    notes = []
    loaded = [st for st in states.values() if st.kv_gbps > 0]
    if loaded:
        top = max(loaded, key=lambda st: (st.kv_gbps / st.node.nic_gbps, st.node.id))
        notes.append(f"node NICs: the busiest carries {top.kv_gbps:.1f} Gb/s of KV on "
                     f"{top.node.nic_gbps:g} Gb/s ({top.node.id}; limit "
                     f"{LINK_UTILIZATION:.0%} of line rate)")
    pre = [p for p in needs if p.role == Role.PREFILL]
    dec = [p for p in needs if p.role == Role.DECODE]
    pairs = sorted({(p.name, p.vendor, d.name, d.vendor) for p in pre for d in dec
                    if p.vendor != d.vendor and set(p.class_rates) & set(d.class_rates)})
    for pn, pv, dn, dv in pairs:
        notes.append(f"cross-vendor KV hand-off {pn} ({pv}) -> {dn} ({dv}): "
                     f"{translation_us:g} us format translation per request, charged in the "
                     "prefill pool's TTFT")
    if pre and dec:
        notes.append("KV traffic per link: requests pair prefill and decode replicas as the "
                     "placement MILP's flows say (the router must honour that pairing); each "
                     "replica carries its sized share")
    return notes


def _link_loads(inv: Inventory, flows: dict[tuple[str, str], float]) -> list[LinkLoad]:
    out = []
    for a in inv.fabric_names():
        cap = inv.fabrics[a].capacity_gbps if a in inv.fabrics else None
        if cap is None:
            cap = sum(n.nic_gbps for n in inv.nodes if n.fabric == a)
        out.append(LinkLoad(link=a, kv_gbps=flows.get((a, a), 0.0), capacity_gbps=cap))
        for b in inv.fabric_names():
            cap_ab = inv.link_capacity_gbps(a, b) if a != b else None
            if cap_ab is not None:
                out.append(LinkLoad(link=f"{a}->{b}", kv_gbps=flows.get((a, b), 0.0),
                                    capacity_gbps=cap_ab))
    return out


def _infeasible(inst: Instance, opt: Options, solver: str, time_limit_s: float
                ) -> PlacementInfeasible:
    """The explanation, plus what sizing can do about it: `blocked` pools (N+1 on fewer than
    two nodes able to hold them) and GPUs per type to keep free for spares, estimated from
    each pool alone with unbounded room (the planner holds back at least 2% per round)."""
    kind, reasons = explain(inst, opt, solver, time_limit_s)
    if kind != "reliability":
        return PlacementInfeasible(reasons)
    blocked, spare = set(), {}
    for p in inst.pools:
        nodes = sum(len(g.nodes) for g in inst.groups
                    if g.gpu == p.gpu and g.gpus_per_node >= p.tp)
        if nodes < (2 if opt.n_plus_one else 1):
            blocked.add(p.name)
            continue
        need = replicas_alone(p, inst, opt, unbounded=True) or p.base_replicas
        fits = replicas_alone(p, inst, opt)
        if fits is None or fits > p.base_replicas:
            spare[p.gpu] = spare.get(p.gpu, 0) + max(0, need - p.base_replicas) * p.tp * p.pp
    if not spare and not blocked:      # each pool fits alone, not together: hold back on all
        spare = {p.gpu: 0 for p in inst.pools}
    return PlacementInfeasible(reasons, blocked, spare)


def explain(inst: Instance, opt: Options, solver: str, time_limit_s: float
            ) -> tuple[str, list[str]]:
    """Which constraint family makes placement infeasible: relax KV limits and reliability
    together, then reliability alone, and name what the relaxed solution violates."""
    base = PlacementModel(inst, replace(opt, use_kv=False, use_reliability=False))
    if not solve(base.lp, solver, time_limit_s).has_solution:
        return "packing", _packing_reasons(inst)
    kv_model = PlacementModel(inst, replace(opt, use_reliability=False))
    kv_sol = solve(kv_model.lp, solver, time_limit_s)
    if not kv_sol.has_solution:
        free_sol = solve(base.lp, solver, time_limit_s)
        return "bandwidth", _bandwidth_reasons(inst, base, free_sol.values)
    what = " and ".join(x for x in ("N+1 (any one node lost)" if opt.n_plus_one else "",
                                    f"spot headroom {opt.spot_headroom:.0%}"
                                    if opt.spot_headroom > 0 else "") if x)
    reasons = []
    for p in inst.pools:
        need = replicas_alone(p, inst, opt)
        groups = [g for g in inst.groups if g.gpu == p.gpu and g.gpus_per_node >= p.tp]
        nodes = sum(len(g.nodes) for g in groups)
        if need is None:
            reasons.append(f"reliability[{p.name}]: {what} cannot hold on {nodes} healthy "
                           f"{p.gpu} node(s) even with every free GPU given to this pool")
        elif need > p.base_replicas:
            reasons.append(f"reliability[{p.name}]: {what} needs {need} replicas (sized "
                           f"{p.base_replicas}, {(need - p.base_replicas) * p.tp * p.pp} spare "
                           f"{p.gpu} GPUs)")
    return "reliability", reasons + [
        f"node packing: the spares do not fit the healthy nodes beside the other pools; "
        f"nearest feasible: fewer pools per GPU type, more nodes, or drop {what}"]


def replicas_alone(p: PoolNeed, inst: Instance, opt: Options,
                   unbounded: bool = False) -> int | None:
    """Fewest replicas pool p needs under N+1 / spot headroom if it had its GPU type's free
    room to itself (None: impossible), or, `unbounded`, any number of GPUs per node. With at
    most L stages of p per node, a group of N nodes takes min(room, N L) replicas; losing a
    node costs L of them."""
    groups = [g for g in inst.groups if g.gpu == p.gpu and g.gpus_per_node >= p.tp]
    need = p.needed_replicas - 1e-6
    keep = {g.name: (1 - opt.spot_headroom) if g.spot else 1.0 for g in groups}
    most = max((g.gpus_per_node // p.tp for g in groups), default=0)
    if unbounded and groups:
        most = max(most, math.ceil(p.base_replicas * p.pp / sum(len(g.nodes) for g in groups))
                   + 2)
    best = None
    for cap in range(1, most + 1) if opt.n_plus_one else [most]:
        lose = cap if opt.n_plus_one else 0
        taken, usable = 0, 0.0
        # fill the groups whose replicas count most first (on-demand before spot)
        for g in sorted(groups, key=lambda g: (-keep[g.name], g.name)):
            pinned = inst.pinned.get((p.name, g.name), 0)
            room = pinned + sum(f // p.tp for f in inst.free[g.name]) // p.pp
            if unbounded:
                room = len(g.nodes) * cap // p.pp if opt.n_plus_one else 10 ** 6
            limit = len(g.nodes) * cap // p.pp if opt.n_plus_one else room
            for _ in range(min(room, limit)):
                if usable - lose >= need and taken >= p.base_replicas:
                    break
                taken += 1
                usable += keep[g.name]
        if usable - lose >= need and taken >= p.base_replicas:
            best = taken if best is None else min(best, taken)
    return best


def _packing_reasons(inst: Instance) -> list[str]:
    out = []
    for gpu in sorted({p.gpu for p in inst.pools}):
        pools = [p for p in inst.pools if p.gpu == gpu]
        groups = [g for g in inst.groups if g.gpu == gpu]
        for t in sorted({p.tp for p in pools}, reverse=True):
            need = sum(p.tp * p.pp * max(0, p.base_replicas - sum(
                v for (pn, _), v in inst.pinned.items() if pn == p.name))
                for p in pools if p.tp >= t)
            room = sum((f // t) * t for g in groups for f in inst.free[g.name])
            if need > room:
                out.append(f"node packing[{gpu}]: pools need {need} {gpu} GPUs in TP groups of "
                           f">= {t} inside one node; healthy nodes have room for {room} "
                           f"({len([n for g in groups for n in g.nodes])} nodes)")
                break
    return out or ["node packing: pools do not fit the healthy nodes"]


def _bandwidth_reasons(inst: Instance, model: PlacementModel, values) -> list[str]:
    inv = inst.inventory
    out = []
    for (a, b), gbps in sorted(model.flows_gbps(values).items()):
        cap = (inv.fabrics[a].capacity_gbps if a == b and a in inv.fabrics
               else inv.link_capacity_gbps(a, b) if a != b else None)
        if a != b and cap is None and gbps > 1e-6:
            out.append(f"fabric bandwidth: {gbps:.1f} Gb/s of KV must cross from {a} to {b}, "
                       "which no link joins")
        elif cap is not None and gbps > cap * LINK_UTILIZATION + 1e-6:
            name = f"fabric[{a}]" if a == b else f"link[{a}->{b}]"
            out.append(f"{name}: KV needs {gbps:.1f} Gb/s; capacity {cap:g} Gb/s x "
                       f"{LINK_UTILIZATION:.0%} = {cap * LINK_UTILIZATION:g} Gb/s")
    for gi, g in enumerate(inst.groups):
        load = sum(values[model.y[pi, gi]] * p.kv_gbps_per_replica
                   for pi, p in enumerate(inst.pools) if (pi, gi) in model.y)
        cap = len(g.nodes) * g.nic_gbps * LINK_UTILIZATION
        if load > cap + 1e-6:
            out.append(f"nic[{g.name}]: KV needs {load:.1f} Gb/s; its node NICs carry "
                       f"{cap:g} Gb/s")
    return out or ["fabric bandwidth: prefill and decode cannot be paired within the KV "
                   "capacity of the fabrics and links"]
