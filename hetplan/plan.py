"""Plan: the planner's output. Pools (role, GPU shape, replicas), routing of classes to
pools, predicted latencies, cost, and the solver's status. Serialises to byte-identical JSON
for identical inputs (sorted keys, rounded floats)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from hetplan.engine_limits import EngineLimits
from hetplan.io import dumps_json

ROUND = 6


class ClassRoute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workload_class: str
    rate_rps: float
    predicted_ttft_ms: float | None = None     # service part (prefill + KV hand-off)
    predicted_tpot_ms: float | None = None
    batch: int = 0


class Pool(BaseModel):
    """`replicas` identical replicas of one shape in one role."""

    model_config = ConfigDict(extra="forbid")

    name: str
    role: str                    # prefill | decode | colocated
    gpu: str
    vendor: str
    tp: int
    pp: int
    weight_dtype: str
    kv_dtype: str
    replicas: int
    gpus: int
    cost_usd_per_hour: float
    utilization: float           # sum over classes of rate / capacity, per replica
    routes: list[ClassRoute]


class ClassSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    rate_rps: float
    mean_input_tokens: float
    mean_output_tokens: float
    p90_input_tokens: float
    p90_output_tokens: float
    # The class's token bins (inclusive), so a simulator can route requests; absent in
    # plans written before they were recorded.
    input_lo: int | None = None
    input_hi: int | None = None
    output_lo: int | None = None
    output_hi: int | None = None


class PlacedNode(BaseModel):
    """A node of the inventory that holds at least one replica shard."""

    model_config = ConfigDict(extra="forbid")

    id: str
    gpu: str
    gpus: int                    # GPUs on the node
    rack: str
    fabric: str
    address: str                 # host name or IP the emitted configs use (default: id)
    nic_gbps: float = 0.0
    spot: bool = False
    provider: str = ""
    kv_gbps: float = 0.0         # KV traffic its replicas send or receive, Gb/s (predicted)


class PlacedShard(BaseModel):
    """One pipeline stage of one replica, on one node: `tp` GPUs of that node."""

    model_config = ConfigDict(extra="forbid")

    pool: str                    # Pool.name
    replica: int                 # 0-based index inside the pool
    stage: int                   # pipeline stage, 0..pp-1
    node: str                    # PlacedNode.id
    gpu_indices: list[int]       # local GPU indices on that node (len == tp)


class LinkLoad(BaseModel):
    """KV-cache traffic the plan sends over one network link (between fabrics or racks)."""

    model_config = ConfigDict(extra="forbid")

    link: str                    # e.g. "fabric-a<->fabric-b" or "rack-1"
    kv_gbps: float               # predicted KV traffic, Gb/s
    capacity_gbps: float


class Placement(BaseModel):
    """Where every replica runs. Written by the placement stage when the scenario has an
    inventory; emitters use it for hosts and GPU indices."""

    model_config = ConfigDict(extra="forbid")

    inventory: str               # inventory file the placement was made on
    nodes: list[PlacedNode]
    shards: list[PlacedShard]
    link_loads: list[LinkLoad] = []
    moved_replicas: int | None = None   # set by an incremental re-plan (--failed)
    notes: list[str] = []
    spare_replicas: dict[str, int] = {}  # pool -> replicas added for N+1 / spot headroom
    failed_nodes: list[str] = []         # nodes a re-plan (--failed) left out


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str
    model: str
    status: str                  # optimal | feasible | infeasible | ...
    gap: float | None
    solver: str
    objective: str
    slo: dict
    pools: list[Pool]
    classes: list[ClassSummary]
    demand_rps: float
    served_rps: float            # demand x goodput scale (equal to demand for min_cost)
    cost_usd_per_hour: float
    tokens_per_second: float     # input + output tokens served per second
    usd_per_million_tokens: float | None
    usd_per_million_output_tokens: float | None
    prefill_gpus: int
    decode_gpus: int
    colocated_gpus: int
    golden_ratio: str            # "P:D" prefill to decode GPUs, reduced
    calibration_notes: list[str]
    notes: list[str]
    hetplan_version: str
    kv_link: str | None = None               # fabric assumed between prefill and decode pools
    target_utilization: float | None = None  # the rho the capacities were sized at
    model_ref: str | None = None             # the scenario's model field (HF id, key or path)
    decode_target_utilization: float | None = None   # decode pools' rho, where it differs
    placement: Placement | None = None       # present when the scenario has an inventory
    # The engine limits the plan was sized with (simulate and emit use them); written to
    # plan.json only when they differ from the defaults, so default plans stay unchanged.
    engine: EngineLimits = EngineLimits()

    def pool_target_utilization(self, pool: Pool) -> float:
        """The rho `pool` was sized at (1.0 for plans that did not record one)."""
        if pool.role == "decode" and self.decode_target_utilization is not None:
            return self.decode_target_utilization
        return self.target_utilization or 1.0

    def to_json(self) -> str:
        return dumps_json(_rounded(self.model_dump(
            exclude={"engine"} if self.engine.is_default() else None)))

    def summary(self) -> dict:
        """The `--json` summary of `hetplan solve`."""
        return _rounded({
            "status": self.status, "gap": self.gap, "cost_usd_per_hour": self.cost_usd_per_hour,
            "usd_per_million_tokens": self.usd_per_million_tokens,
            "golden_ratio": self.golden_ratio,
            "pools": [{"name": p.name, "role": p.role, "gpu": p.gpu, "tp": p.tp, "pp": p.pp,
                       "weight_dtype": p.weight_dtype, "kv_dtype": p.kv_dtype,
                       "replicas": p.replicas, "gpus": p.gpus,
                       "cost_usd_per_hour": p.cost_usd_per_hour} for p in self.pools]}
            | ({"placement": {"nodes": len(self.placement.nodes),
                              "shards": len(self.placement.shards),
                              "moved_replicas": self.placement.moved_replicas,
                              "failed_nodes": self.placement.failed_nodes}}
               if self.placement else {}))


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, ROUND)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def load_plan(path) -> Plan:
    """Read a plan.json written by `hetplan solve`; bad files are one-line InputErrors."""
    from pydantic import ValidationError

    from hetplan.errors import InputError, from_validation_error
    from hetplan.io import load_json

    raw = load_json(path)
    if not isinstance(raw, dict):
        raise InputError("expected a plan object", file=path)
    try:
        return Plan(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None
