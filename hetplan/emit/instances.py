"""Plan -> the serving instances to launch: one vLLM server per replica, with its nodes, GPU
indices and ports.

Hosts come from the plan's `placement` when it has one. Otherwise replicas are packed here,
deterministically: per (role, GPU type), nodes of `max_gpus_per_node` GPUs named
`<role>-<gpu>-<n>` (e.g. `prefill-l40s-0`), first fit in plan order, a whole replica on one
node when it fits, else an equal number of pipeline stages on each of several nodes. Those
names are placeholders the user maps to real hosts (hosts file or DNS).

Ports are allocated per host in instance order: API ports from 8000, NIXL side-channel
ports from 5600 (dp of them for a replica with dp data-parallel ranks: vLLM's NIXL connector
listens on the port + its DP rank), torch.distributed master ports (multi-node replicas)
from 29500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hetplan.catalog import Catalog
from hetplan.errors import InputError
from hetplan.plan import PlacedNode, PlacedShard, Plan, Pool

API_PORT_BASE = 8000
SIDE_CHANNEL_PORT_BASE = 5600
MASTER_PORT_BASE = 29500


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    gpu: str
    gpus: int


@dataclass(frozen=True)
class NodePart:
    """The GPUs one instance uses on one node (its pipeline stages there, in order)."""

    host: Host
    rank: int                     # node rank inside the instance (0 = API server)
    gpu_indices: tuple[int, ...]
    side_channel_port: int        # NIXL side channel of this node's workers


@dataclass(frozen=True)
class Instance:
    name: str                     # <pool>-r<replica>
    pool: Pool
    replica: int
    parts: tuple[NodePart, ...]
    port: int                     # API port on parts[0].host
    master_port: int | None       # set when the replica spans nodes

    @property
    def host(self) -> Host:
        return self.parts[0].host

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{self.port}"


@dataclass(frozen=True)
class Layout:
    hosts: tuple[Host, ...]
    instances: tuple[Instance, ...]
    placeholder_hosts: bool       # True when hetplan packed the replicas itself


def slug(text: str) -> str:
    """Lower-case [a-z0-9-] form of a name (host names, Kubernetes object names)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "x"


def node_file_stem(name: str) -> str:
    """The file name (without suffix) of a node's launch script: the node id itself, refused
    when it could name a path elsewhere (`/`, `\\`, a leading `.`, control characters)."""
    if (not name or name.startswith(".") or "/" in name or "\\" in name
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)):
        raise InputError(f"node id {name!r} cannot name a launch script; use letters, digits, "
                         "'-', '_' and '.' (not first)", field="placement.nodes")
    return name


def _check_host(node: PlacedNode) -> None:
    """A node id and address go into hosts.txt and URLs as single tokens."""
    for field, value in (("id", node.id), ("address", node.address)):
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise InputError(f"node {node.id!r}: {field} holds whitespace or control "
                             "characters", field=f"placement.nodes.{field}")


def _pack(plan: Plan, cat: Catalog) -> tuple[list[PlacedNode], list[PlacedShard]]:
    nodes: list[PlacedNode] = []
    shards: list[PlacedShard] = []
    free: dict[str, int] = {}            # node id -> next free GPU index
    groups: dict[str, list[str]] = {}    # "<role>-<gpu>" -> node ids, in creation order

    def new_node(group: str, gpu: str, size: int) -> str:
        ids = groups.setdefault(group, [])
        node_id = f"{group}-{len(ids)}"
        ids.append(node_id)
        nodes.append(PlacedNode(id=node_id, gpu=gpu, gpus=size, rack="", fabric="",
                                address=node_id))
        free[node_id] = 0
        return node_id

    for pool in plan.pools:
        size = cat.gpu(pool.gpu).max_gpus_per_node
        width = pool.gpus_per_stage       # tp, or tp x dp with data-parallel attention
        if width > size:
            raise InputError(f"pool {pool.name}: tp {pool.tp}"
                             + (f" x dp {pool.dp}" if pool.dp > 1 else "")
                             + f" exceeds {size} GPUs per {pool.gpu} node", field="pools")
        group = f"{slug(pool.role)}-{slug(pool.gpu)}"
        # Stages per node: all of them when the replica fits, else the largest divisor of
        # pp that fits (vLLM's multi-node launch wants the same GPU count on every node).
        per_node = max(d for d in range(1, pool.pp + 1)
                       if pool.pp % d == 0 and d * width <= size)
        for replica in range(pool.replicas):
            for first in range(0, pool.pp, per_node):
                need = per_node * width
                node_id = None
                if per_node == pool.pp:        # whole replica on one node: first fit
                    node_id = next((n for n in groups.get(group, [])
                                    if size - free[n] >= need), None)
                if node_id is None:            # a spanning replica takes fresh nodes
                    node_id = new_node(group, pool.gpu, size)
                for stage in range(first, first + per_node):
                    start = free[node_id]
                    shards.append(PlacedShard(pool=pool.name, replica=replica, stage=stage,
                                              node=node_id,
                                              gpu_indices=list(range(start, start + width))))
                    free[node_id] = start + width
    return nodes, shards


def build_layout(plan: Plan, cat: Catalog) -> Layout:
    """Every replica of every pool as an Instance, hosts from the placement or packed."""
    if plan.placement is not None:
        nodes, shards = plan.placement.nodes, plan.placement.shards
    else:
        nodes, shards = _pack(plan, cat)
    for n in nodes:
        _check_host(n)
    hosts = {n.id: Host(n.id, n.address or n.id, n.gpu, n.gpus) for n in nodes}
    by_replica: dict[tuple[str, int], list[PlacedShard]] = {}
    for s in shards:
        by_replica.setdefault((s.pool, s.replica), []).append(s)

    api, side, master = {}, {}, {}
    instances = []
    for pool in plan.pools:
        for replica in range(pool.replicas):
            stages = sorted(by_replica.get((pool.name, replica), []), key=lambda s: s.stage)
            if [s.stage for s in stages] != list(range(pool.pp)):
                raise InputError(f"placement has no complete set of {pool.pp} stage(s) for "
                                 f"{pool.name} replica {replica}", field="placement.shards")
            parts: list[tuple[str, list[int]]] = []
            for s in stages:
                if s.node not in hosts:
                    raise InputError(f"unknown node {s.node!r}", field="placement.shards")
                if len(s.gpu_indices) != pool.gpus_per_stage:
                    raise InputError(f"{pool.name} replica {replica} stage {s.stage}: "
                                     f"{len(s.gpu_indices)} GPU indices for tp {pool.tp}"
                                     + (f" x dp {pool.dp}" if pool.dp > 1 else ""),
                                     field="placement.shards")
                if parts and parts[-1][0] == s.node:
                    parts[-1][1].extend(s.gpu_indices)
                else:
                    parts.append((s.node, list(s.gpu_indices)))
            if len({n for n, _ in parts}) != len(parts):
                raise InputError(f"{pool.name} replica {replica}: its pipeline stages leave "
                                 "a node and come back; vLLM wants contiguous stages per node",
                                 field="placement.shards")
            if len({len(g) for _, g in parts}) != 1:
                raise InputError(f"{pool.name} replica {replica}: unequal GPU counts per "
                                 "node; vLLM's multi-node launch needs the same count on "
                                 "each node", field="placement.shards")
            head = parts[0][0]
            port = api.get(head, API_PORT_BASE)
            api[head] = port + 1
            side_ports = []
            for n, _ in parts:
                side_ports.append(side.get(n, SIDE_CHANNEL_PORT_BASE))
                side[n] = side_ports[-1] + pool.dp  # vLLM's NIXL: port + DP rank
            mp = None
            if len(parts) > 1:
                mp = master.get(head, MASTER_PORT_BASE)
                master[head] = mp + 1
            instances.append(Instance(
                name=f"{pool.name}-r{replica}", pool=pool, replica=replica,
                parts=tuple(NodePart(hosts[n], rank, tuple(g), side_ports[rank])
                            for rank, (n, g) in enumerate(parts)),
                port=port, master_port=mp))
    used = {p.host.name for i in instances for p in i.parts}
    return Layout(hosts=tuple(h for h in hosts.values() if h.name in used),
                  instances=tuple(instances), placeholder_hosts=plan.placement is None)
