"""What placement works on: pools reduced to numbers, and nodes merged into groups.

Nodes of the same GPU type, GPU count, rack, fabric, NIC bandwidth and spot status are
interchangeable, so the placement MILP decides replica counts per (pool, group) and a
deterministic packing (`pack.py`) picks the nodes and GPU indices inside each group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hetplan.enums import Role
from hetplan.placement.inventory import Inventory, Node
from hetplan.plan import Plan


@dataclass(frozen=True)
class PoolNeed:
    """One pool as placement sees it. `load` is the pool's busy replica-equivalents
    (sum over classes of rate / per-replica capacity): the pool meets its SLO while
    load <= rho x usable replicas, rho the pool's target utilization."""

    name: str
    role: Role
    gpu: str
    vendor: str
    tp: int
    pp: int
    kv_dtype: str
    base_replicas: int                      # what sizing asked for, before any spare
    load: float
    price_usd_per_hour: float               # per replica
    class_rates: dict[str, float]           # class -> req/s routed to the pool
    kv_gbps: float = 0.0                    # KV Gb/s the pool sends (prefill) or receives
    rho: float = 1.0                        # target utilization the pool was sized at

    @property
    def needed_replicas(self) -> float:
        """Usable replicas that keep the pool within its target utilization."""
        return self.load / self.rho

    @property
    def kv_gbps_per_replica(self) -> float:
        """A replica's KV share at the sized count (spares only lower it)."""
        return self.kv_gbps / self.base_replicas if self.base_replicas else 0.0

    @property
    def gpus_per_stage(self) -> int:
        return self.tp


@dataclass(frozen=True)
class Group:
    name: str
    gpu: str
    gpus_per_node: int
    rack: str
    fabric: str
    nic_gbps: float
    spot: bool
    nodes: tuple[Node, ...] = field(default=())


def group_nodes(inv: Inventory) -> list[Group]:
    """Interchangeable nodes merged, groups and their nodes in a fixed (sorted) order."""
    buckets: dict[tuple, list[Node]] = {}
    for n in inv.nodes:
        key = (n.fabric, n.rack, n.gpu, n.gpus, n.nic_gbps, n.spot)
        buckets.setdefault(key, []).append(n)
    out = []
    for (fabric, rack, gpu, gpus, nic, spot), nodes in sorted(buckets.items()):
        name = f"{fabric}/{rack}/{gpu}x{gpus}/{nic:g}G" + ("/spot" if spot else "")
        out.append(Group(name, gpu, gpus, rack, fabric, nic, spot,
                         tuple(sorted(nodes, key=lambda n: n.id))))
    return out


def pool_needs(plan: Plan, kv_bytes: dict[tuple[str, str], float],
               spares: dict[str, int] | None = None) -> list[PoolNeed]:
    """Pools of a plan with their load and KV traffic. kv_bytes: (kv_dtype, class) -> KV
    bytes one request hands from prefill to decode. `spares` (from an earlier placement)
    are taken off the replica counts to get the sized counts back."""
    spares = spares or {}
    out = []
    for p in plan.pools:
        rates = {r.workload_class: r.rate_rps for r in p.routes if r.rate_rps > 0}
        kv = 0.0
        if p.role != Role.COLOCATED:
            kv = sum(r * kv_bytes[p.kv_dtype, w] for w, r in rates.items()) * 8 / 1e9
        base = max(1, p.replicas - spares.get(p.name, 0))
        # PoolNeed.tp is GPUs per stage: tp x dp for data-parallel-attention pools
        out.append(PoolNeed(p.name, p.role, p.gpu, p.vendor, p.gpus_per_stage, p.pp, p.kv_dtype,
                            base,
                            p.utilization * p.replicas, p.cost_usd_per_hour / p.replicas,
                            rates, kv, plan.pool_target_utilization(p)))
    return out
