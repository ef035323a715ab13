"""Deterministic packing inside node groups: which node and which local GPUs each pipeline
stage of each replica gets, given the MILP's replica counts per (pool, group).

A stage is `tp` GPUs of one node (its TP group stays inside the NVLink/xGMI domain); the
stages of one replica stay in one group (so in one rack and fabric) and may share a node.
TP sizes are placed largest first (with power-of-two sizes the MILP's packing rows then
guarantee room); the stages of one size are matched to nodes by max-flow under each pool's
per-node cap (N+1), which succeeds whenever any assignment exists and, for a group of
identical nodes, whenever the MILP's aggregate rows hold. GPU indices are the lowest free
ones. A node's KV traffic (the share of its stages) must fit its NIC at the link
utilization; what cannot be packed raises PackError naming the group."""

from __future__ import annotations

from dataclasses import dataclass, field

from hetplan.milp.formulation import LINK_UTILIZATION
from hetplan.placement.groups import Group, PoolNeed
from hetplan.placement.inventory import Node
from hetplan.plan import PlacedShard


class PackError(Exception):
    """`group` could not take `deficit_gpus` of the GPUs the MILP gave it."""

    def __init__(self, message: str, group: str = "", deficit_gpus: int = 0):
        super().__init__(message)
        self.group = group
        self.deficit_gpus = deficit_gpus


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
    """Shards for the new replicas (pins stay where they are). Inside a group, TP sizes are
    placed largest first; the stages of one TP size go to nodes by an integral max-flow
    (pools -> nodes, at most the per-node cap of each pool, at most the node's free TP slots),
    which finds a packing whenever one exists. New replicas take the lowest replica indices
    their pool does not use yet, group by group in order."""
    used: dict[str, set[int]] = {}
    for s in pins:
        used.setdefault(s.pool, set()).add(s.replica)
    out: list[PlacedShard] = []
    for g in groups:
        here = sorted((p, n) for (p, gn), n in new.items() if gn == g.name)
        for tp in sorted({pools[p].tp for p, _ in here}, reverse=True):
            batch = [(p, n) for p, n in here if pools[p].tp == tp]
            flows, short = _assign(g, [(pools[p], n * pools[p].pp) for p, n in batch], tp,
                                   states, per_node)
            if short:
                raise PackError(_why(g, pools[batch[0][0]], states, per_node), g.name,
                                short * tp)
            for name, count in batch:
                p = pools[name]
                slots = [nid for nid, k in flows[name] for _ in range(k)]
                for r in range(count):
                    idx = _next_index(used.setdefault(name, set()))
                    for stage in range(p.pp):
                        st = states[slots[r * p.pp + stage]]
                        if st.kv_gbps + p.kv_gbps_per_replica / p.pp > \
                                st.node.nic_gbps * LINK_UTILIZATION * (1 + 1e-9):
                            raise PackError(_why(g, p, states, per_node), g.name, p.tp)
                        out.append(PlacedShard(pool=name, replica=idx, stage=stage,
                                               node=st.node.id, gpu_indices=st.take(
                                                   name, p.tp, p.kv_gbps_per_replica / p.pp)))
    return out


def _assign(g: Group, demand: list[tuple[PoolNeed, int]], tp: int,
            states: dict[str, NodeState], per_node: dict[str, int] | None
            ) -> tuple[dict[str, list[tuple[str, int]]], int]:
    """Stages per (pool, node) for one TP size by max-flow, and how many did not fit."""
    nodes = [states[n.id] for n in g.nodes]
    n_p = len(demand)
    src, sink = n_p + len(nodes), n_p + len(nodes) + 1
    flow = _MaxFlow(sink + 1)
    for i, (p, d) in enumerate(demand):
        flow.add(src, i, d)
        for j, st in enumerate(nodes):
            slots = len(st.free) // tp
            cap = slots if per_node is None else \
                max(0, per_node.get(p.name, 1) - st.stages.get(p.name, 0))
            if min(cap, slots) > 0:
                flow.add(i, n_p + j, min(cap, slots))
    for j, st in enumerate(nodes):
        if len(st.free) // tp:
            flow.add(n_p + j, sink, len(st.free) // tp)
    short = sum(d for _, d in demand) - flow.run(src, sink)
    out: dict[str, list[tuple[str, int]]] = {}
    for i, (p, _) in enumerate(demand):
        out[p.name] = [(nodes[e.to - n_p].node.id, e.flow) for e in flow.edges[i]
                       if e.to >= n_p and e.to < src and e.flow > 0]
    return out, short


@dataclass
class _Edge:
    to: int
    cap: int
    rev: int
    flow: int = 0


class _MaxFlow:
    """Dinic's algorithm on small graphs; edges are explored in insertion order, so the
    result is deterministic (earlier nodes fill first)."""

    def __init__(self, n: int):
        self.edges: list[list[_Edge]] = [[] for _ in range(n)]

    def add(self, a: int, b: int, cap: int) -> None:
        self.edges[a].append(_Edge(b, cap, len(self.edges[b])))
        self.edges[b].append(_Edge(a, 0, len(self.edges[a]) - 1))

    def run(self, s: int, t: int) -> int:
        total = 0
        while True:
            level = [-1] * len(self.edges)
            level[s] = 0
            queue = [s]
            for u in queue:
                for e in self.edges[u]:
                    if e.cap - e.flow > 0 and level[e.to] < 0:
                        level[e.to] = level[u] + 1
                        queue.append(e.to)
            if level[t] < 0:
                return total
            it = [0] * len(self.edges)
            while (pushed := self._push(s, t, 10 ** 12, level, it)) > 0:
                total += pushed

    def _push(self, u: int, t: int, f: int, level: list[int], it: list[int]) -> int:
        if u == t:
            return f
        while it[u] < len(self.edges[u]):
            e = self.edges[u][it[u]]
            if e.cap - e.flow > 0 and level[e.to] == level[u] + 1:
                got = self._push(e.to, t, min(f, e.cap - e.flow), level, it)
                if got > 0:
                    e.flow += got
                    self.edges[e.to][e.rev].flow -= got
                    return got
            it[u] += 1
        return 0


def _next_index(used: set[int]) -> int:
    i = 0
    while i in used:
        i += 1
    used.add(i)
    return i


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
