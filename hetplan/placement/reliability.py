"""Reliability checks on a placed plan: does every pool still carry its load at the target
utilization when any one node is lost (N+1), with spot capacity discounted?

A pool's load is `utilization x replicas` (busy replica-equivalents, the sizing's
sum of rate / capacity); it is covered while load <= rho x usable replicas. Losing a node
loses every replica with a stage on it. Routing is held fixed per pool (conservative: the
router could also shift a class to another pool that serves it).
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplan.plan import Plan


@dataclass(frozen=True)
class NodeLoss:
    node: str
    pool: str
    usable_replicas: float
    needed_replicas: float          # load / rho

    @property
    def ok(self) -> bool:
        return self.usable_replicas >= self.needed_replicas - 1e-6

    @property
    def margin(self) -> float:
        return self.usable_replicas - self.needed_replicas


def node_losses(plan: Plan, spot_headroom: float = 0.0) -> list[NodeLoss]:
    """For every node of the placement and every pool: what is left after losing it."""
    pl = plan.placement
    if pl is None:
        return []
    spot = {n.id: n.spot for n in pl.nodes}
    nodes_of: dict[tuple[str, int], set[str]] = {}
    for s in pl.shards:
        nodes_of.setdefault((s.pool, s.replica), set()).add(s.node)
    out = []
    for node in sorted(spot):
        for p in plan.pools:
            usable = 0.0
            for r in range(p.replicas):
                on = nodes_of.get((p.name, r), set())
                if not on or node in on:
                    continue
                usable += (1.0 - spot_headroom) if any(spot[n] for n in on) else 1.0
            out.append(NodeLoss(node, p.name, usable, p.utilization * p.replicas
                                    / plan.pool_target_utilization(p)))
    return out


def verify_n_plus_one(plan: Plan, spot_headroom: float = 0.0) -> tuple[list[NodeLoss],
                                                                       NodeLoss | None]:
    """(failures, tightest case): the node losses that leave a pool short, and the one with
    the least margin overall."""
    losses = node_losses(plan, spot_headroom)
    worst = min(losses, key=lambda x: (x.margin, x.node, x.pool), default=None)
    return [x for x in losses if not x.ok], worst
