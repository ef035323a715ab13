"""Incremental re-plan after node failures (`hetplan solve SCENARIO --failed NODE ...`).

Every replica with no shard on a failed node stays exactly where it was (pinned: same nodes,
same GPU indices); only the lost replicas, and any spares N+1 now needs, are placed anew, at
least cost, so the number of moved replicas is the least that restores the plan. If the
survivors cannot be kept (the healthy nodes cannot hold the pools beside them), the scenario
is re-sized on the healthy nodes from scratch and the moves are counted against the
previous placement.
"""

from __future__ import annotations

from collections.abc import Sequence

from hetplan.catalog import Catalog, unknown_name_message
from hetplan.errors import Infeasible, InputError
from hetplan.perf.links import load_links
from hetplan.placement import Reliability, kv_bytes_table, place_plan
from hetplan.placement.place import PlacementInfeasible
from hetplan.plan import Plan
from hetplan.planner import plan_scenario, prepare, solve_context
from hetplan.scenario import ResolvedScenario


def replan(rs: ResolvedScenario, catalog: Catalog, failed: Sequence[str],
           previous: Plan | None = None, *, solver: str = "highs", time_limit_s: float = 60.0,
           progress=None) -> Plan:
    """The plan with `failed` nodes removed and the fewest replicas moved. Without
    `previous`, the scenario's plan on its full inventory is the starting point."""
    s, inv = rs.scenario, rs.inventory
    if inv is None:
        raise InputError("--failed needs a scenario with an inventory", field="--failed")
    ids = {n.id for n in inv.nodes}
    for f in failed:
        if f not in ids:
            raise InputError(unknown_name_message("node", f, ids), field="--failed")
    if ids <= set(failed):
        raise InputError("every node of the inventory is listed as failed; nothing is left "
                         "to place on", field="--failed")
    if previous is None:
        previous = plan_scenario(rs, catalog, solver=solver, time_limit_s=time_limit_s,
                                 progress=progress)
    elif previous.placement is None:
        raise InputError("the previous plan has no placement (solve with an inventory first)",
                         field="--previous")
    elif previous.scenario != s.name:
        raise InputError(f"the previous plan is of scenario {previous.scenario!r}, not "
                         f"{s.name!r}", field="--previous")
    prev = previous.placement
    down = sorted(set(prev.failed_nodes) | set(failed))
    gone = set(down)
    if ids <= gone:
        raise InputError("with the previous plan's failed nodes, every node of the inventory "
                         "is down; nothing is left to place on", field="--failed")
    for sh in prev.shards:
        if sh.node not in ids:
            raise InputError(f"node {sh.node!r} of the previous placement is not in the "
                             "inventory", field="--previous")
    lost = sorted({(sh.pool, sh.replica) for sh in prev.shards if sh.node in gone})
    pins = [sh for sh in prev.shards if (sh.pool, sh.replica) not in set(lost)]
    rel = s.constraints.reliability
    try:
        plan = place_plan(previous, inv.without(down), kv_bytes_table(rs.model, previous),
                          reliability=Reliability(rel.n_plus_one, rel.spot_headroom),
                          solver=solver, time_limit_s=time_limit_s, pins=pins,
                          spares=prev.spare_replicas,
                          translation_us=load_links().kv.cross_vendor_translation_us,
                          label=s.inventory)
        kept = {(sh.pool, sh.replica) for sh in pins}
        moved = len({(sh.pool, sh.replica) for sh in plan.placement.shards} - kept)
        note = (f"re-plan after losing {', '.join(failed)}: {len(lost)} replica(s) were on "
                f"failed nodes; {moved} placed anew, the other "
                f"{len(kept)} kept their nodes and GPUs")
    except PlacementInfeasible as e:
        try:
            ctx = prepare(rs, catalog, progress=progress, failed=down)
            plan = solve_context(ctx, solver=solver, time_limit_s=time_limit_s)
        except Infeasible as e2:
            raise Infeasible([f"keeping the survivors: {r}" for r in e.reasons[:3]]
                             + [f"re-sizing on the healthy nodes: {r}" for r in e2.reasons]
                             ) from None
        moved = _moved(previous, plan)
        note = (f"re-plan after losing {', '.join(failed)}: the survivors could not be kept "
                f"({'; '.join(e.reasons[:2])}); re-sized on the healthy nodes, {moved} "
                "replica(s) moved or added")
    pl = plan.placement
    return plan.model_copy(update={"placement": pl.model_copy(update={
        "moved_replicas": moved, "failed_nodes": down, "notes": [note] + pl.notes})})


def _moved(before: Plan, after: Plan) -> int:
    """Replicas of `after` not found at the same nodes and GPUs in `before`."""
    def where(plan: Plan) -> dict[tuple[str, int], tuple]:
        out: dict[tuple[str, int], list] = {}
        for sh in plan.placement.shards:
            out.setdefault((sh.pool, sh.replica), []).append(
                (sh.stage, sh.node, tuple(sh.gpu_indices)))
        return {k: tuple(sorted(v)) for k, v in out.items()}
    old = set(where(before).items())
    return sum(1 for item in where(after).items() if item not in old)
