"""Deterministic packing inside node groups: which node and which local GPUs each pipeline
stage of each replica gets, given the MILP's replica counts per (pool, group).

A stage is `tp` GPUs of one node (its TP group stays inside the NVLink/xGMI domain); the
stages of one replica stay in one group (so in one rack and fabric) and may share a node.
Stages are placed in decreasing TP size, so with power-of-two TP sizes any node with room
works and the MILP's packing rows guarantee success. The choice of node is first-fit in node
order, or, with N+1, the node holding the fewest stages of that pool (then the emptiest), so
that no node holds more than the MILP's per-node cap. A node's KV traffic (the share of its
stages) must also fit its NIC at the link utilization; a stage that fits nowhere raises
PackError naming the group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hetplan.milp.formulation import LINK_UTILIZATION
from hetplan.placement.groups import Group, PoolNeed
from hetplan.placement.inventory import Node
from hetplan.plan import PlacedShard


class PackError(Exception):
    pass


@dataclass
class NodeState:
    node: Node
    free: list[int]                                     # free local GPU indices, ascending
    kv_gbps: float = 0.0
    stages: dict[str, int] = field(default_factory=dict)  # pool -> stages on this node

    def take(self, pool: str, n: int, kv_gbps: float) -> list[int]:
        got, self.free = self.free[:n], self.free[n:]
        self.kv_gbps += kv_gbps
        self.stages[pool] = self.stages.get(pool, 0) + 1
        return got


def node_states(groups: list[Group], pools: dict[str, PoolNeed],
                pins: list[PlacedShard]) -> dict[str, NodeState]:
    """Every node's state with the pinned shards already on it."""
    states = {n.id: NodeState(n, list(range(n.gpus))) for g in groups for n in g.nodes}
    for s in pins:
        st, p = states[s.node], pools[s.pool]
        st.free = [i for i in st.free if i not in set(s.gpu_indices)]
        st.kv_gbps += p.kv_gbps_per_replica / p.pp
        st.stages[s.pool] = st.stages.get(s.pool, 0) + 1
    return states


def pack(groups: list[Group], pools: dict[str, PoolNeed], new: dict[tuple[str, str], int],
         pins: list[PlacedShard], states: dict[str, NodeState],
         per_node: dict[str, int] | None) -> list[PlacedShard]:
    """Shards for the new replicas (pins stay where they are). New replicas take the lowest
    replica indices their pool does not use yet, group by group in order."""
    used: dict[str, set[int]] = {}
    for s in pins:
        used.setdefault(s.pool, set()).add(s.replica)
    out: list[PlacedShard] = []
    for g in groups:
        items = sorted(((p, n) for (p, gn), n in new.items() if gn == g.name),
                       key=lambda it: (-pools[it[0]].tp, (per_node or {}).get(it[0], 0), it[0]))
        for name, count in items:
            p = pools[name]
            for _ in range(count):
                idx = _next_index(used.setdefault(name, set()))
                for stage in range(p.pp):
                    st = _choose(g, p, states, per_node)
                    if st is None:
                        raise PackError(_why(g, p, states, per_node))
                    out.append(PlacedShard(pool=name, replica=idx, stage=stage, node=st.node.id,
                                           gpu_indices=st.take(name, p.tp,
                                                               p.kv_gbps_per_replica / p.pp)))
    return out


def _next_index(used: set[int]) -> int:
    i = 0
    while i in used:
        i += 1
    used.add(i)
    return i


def _ok(st: NodeState, p: PoolNeed, per_node: dict[str, int] | None) -> bool:
    if len(st.free) < p.tp:
        return False
    if per_node is not None and st.stages.get(p.name, 0) >= per_node.get(p.name, 1):
        return False
    nic = st.node.nic_gbps * LINK_UTILIZATION
    return st.kv_gbps + p.kv_gbps_per_replica / p.pp <= nic * (1 + 1e-9)


def _choose(g: Group, p: PoolNeed, states: dict[str, NodeState],
            per_node: dict[str, int] | None) -> NodeState | None:
    able = [(i, states[n.id]) for i, n in enumerate(g.nodes) if _ok(states[n.id], p, per_node)]
    if not able:
        return None
    if per_node is None:
        return able[0][1]
    return min(able, key=lambda it: (it[1].stages.get(p.name, 0), -len(it[1].free), it[0]))[1]


def _why(g: Group, p: PoolNeed, states: dict[str, NodeState],
         per_node: dict[str, int] | None) -> str:
    sts = [states[n.id] for n in g.nodes]
    room = sum(len(s.free) >= p.tp for s in sts)
    cap = (per_node or {}).get(p.name)
    nic_ok = sum(s.kv_gbps + p.kv_gbps_per_replica / p.pp
                 <= s.node.nic_gbps * LINK_UTILIZATION * (1 + 1e-9) for s in sts)
    return (f"node packing[{g.name}]: a TP{p.tp} stage of {p.name} fits no node "
            f"({room} of {len(sts)} nodes have {p.tp} free GPUs, {nic_ok} have NIC room for "
            f"{p.kv_gbps_per_replica / p.pp:.1f} Gb/s of KV"
            + (f", at most {cap} stage(s) of the pool per node for N+1" if cap else "") + ")")
