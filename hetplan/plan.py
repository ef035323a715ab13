"""Plan: the planner's output. Pools (role, GPU shape, replicas), routing of classes to
pools, predicted latencies, cost, and the solver's status. Serialises to byte-identical JSON
for identical inputs (sorted keys, rounded floats)."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any

from pydantic import (BaseModel, ConfigDict, Field, computed_field, model_serializer,
                      model_validator)

from hetplan.bounds import (MAX_BATCH, MAX_DP, MAX_GPUS_PER_NODE, MAX_PP,
                            MAX_REPLICAS_PER_POOL, has_control)
from hetplan.engine_limits import DEFAULT_ENGINE_LIMITS, ENGINE_MODE_FIELDS, EngineLimits
from hetplan.enums import ROLES, UNRECORDED_SIZING, Role, Sizing, SolveStatus
from hetplan.io import dumps_json
from hetplan.prefix_cache import PrefixCachePlan

ROUND = 6


class ClassRoute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workload_class: str
    rate_rps: float
    predicted_ttft_ms: float | None = None     # service part (prefill + KV hand-off)
    predicted_tpot_ms: float | None = None
    batch: int = 0


class Pool(BaseModel):
    """`replicas` identical replicas of one shape in one role. `ep` / `dp`: MoE expert
    parallelism and data-parallel attention ranks (ReplicaShape); written to plan.json only
    when set, so plans without them read and write as before."""

    model_config = ConfigDict(extra="forbid")

    name: str
    role: Role
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
    ep: bool = False
    dp: int = 1
    # queueing sizing: U(n) / n, the utilization n replicas may run at with the SLO
    # percentile met (the pool's own rho); written only when set
    target_utilization: float | None = None

    @model_serializer(mode="wrap")
    def _drop_default_parallelism(self, handler):
        out = handler(self)
        if isinstance(out, dict):
            if not self.ep:
                out.pop("ep", None)
            if self.dp == 1:
                out.pop("dp", None)
            if self.target_utilization is None:
                out.pop("target_utilization", None)
        return out

    @property
    def gpus_per_stage(self) -> int:
        """GPUs of one pipeline stage of a replica, on one node: tp x dp."""
        return self.tp * self.dp

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp * self.dp


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
    # scope workload: the planner let this class miss the SLO (it is served at the relaxed
    # targets of `scenario.missing_class_slo`); written only when true
    misses_slo: bool = False

    @model_serializer(mode="wrap")
    def _drop_default_miss(self, handler):
        out = handler(self)
        if isinstance(out, dict) and not self.misses_slo:
            out.pop("misses_slo", None)
        return out


class Simplification(BaseModel):
    """What the operational terms (a fixed $/h per distinct pool, a cap on pools per role)
    did: the plan against the unconstrained one (same scenario, neither term), solved
    apart. Recorded only when the two plans differ."""

    model_config = ConfigDict(extra="forbid")

    pool_cost_usd_per_hour: float          # the fixed cost per pool the plan was solved with
    max_pools_per_role: int | None = None
    pools: int                             # distinct pools of this plan
    unconstrained_cost_usd_per_hour: float   # GPU cost of the unconstrained plan
    unconstrained_pools: int
    unconstrained_mix: str


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
    """One pipeline stage of one replica, on one node: its tp x dp GPUs of that node."""

    model_config = ConfigDict(extra="forbid")

    pool: str                    # Pool.name
    replica: int                 # 0-based index inside the pool
    stage: int                   # pipeline stage, 0..pp-1
    node: str                    # PlacedNode.id
    gpu_indices: list[int]       # local GPU indices on that node (len == tp x dp)


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
    """Totals over the pools (cost, GPUs per role, P:D, $/M tokens) are computed from them,
    never stored beside them, so a plan whose pools change (spares, a re-plan) cannot
    disagree with its totals; they are still written to plan.json for readers."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    model: str
    status: SolveStatus
    gap: float | None
    solver: str
    objective: str
    slo: dict
    pools: list[Pool]
    classes: list[ClassSummary]
    demand_rps: float
    served_rps: float            # demand x goodput scale (equal to demand for min_cost)
    tokens_per_second: float     # input + output tokens served per second
    # Output tokens served per second: not written to plan.json (which carries the $ per
    # million output tokens instead; a plan read back recovers it from that and the cost).
    output_tokens_per_second: float = Field(default=0.0, exclude=True)
    calibration_notes: list[str]
    notes: list[str]
    hetplan_version: str
    kv_link: str | None = None               # fabric assumed between prefill and decode pools
    target_utilization: float | None = None  # the rho the capacities were sized at
    model_ref: str | None = None             # the scenario's model field (HF id, key or path)
    decode_target_utilization: float | None = None   # decode pools' rho, where it differs
    # how pools were sized (enums.Sizing); written only when not the unrecorded default
    sizing: Sizing = UNRECORDED_SIZING
    placement: Placement | None = None       # present when the scenario has an inventory
    # The engine limits the plan was sized with (simulate and emit use them); written to
    # plan.json only when they differ from the defaults, so default plans stay unchanged.
    engine: EngineLimits = EngineLimits()
    # The prefix-cache assumption the prefill pools were sized with (hetplan.prefix_cache);
    # written to plan.json only when present.
    prefix_cache: PrefixCachePlan | None = None
    # Present when a pool cost or cap changed the plan (see Simplification); GPU cost stays
    # in cost_usd_per_hour, the operational cost is pools x pool_cost_usd_per_hour.
    simplification: Simplification | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_totals(cls, raw: Any) -> Any:
        """plan.json carries the computed totals; they are recomputed from the pools (the
        output token rate, which plan.json does not carry, from its $ per M output tokens)."""
        if not isinstance(raw, dict) or not any(k in raw for k in cls.model_computed_fields):
            return raw
        usd = raw.get("usd_per_million_output_tokens")
        raw = {k: v for k, v in raw.items() if k not in cls.model_computed_fields}
        if "output_tokens_per_second" not in raw and usd:
            try:
                cost = sum(float(p["cost_usd_per_hour"]) for p in raw.get("pools", []))
            except (KeyError, TypeError, ValueError):
                return raw          # field validation names what is wrong with the pools
            raw["output_tokens_per_second"] = cost / (float(usd) * 3600) * 1e6
        return raw

    @computed_field
    @property
    def cost_usd_per_hour(self) -> float:
        return sum(p.cost_usd_per_hour for p in self.pools)

    @computed_field
    @property
    def usd_per_million_tokens(self) -> float | None:
        """$ per million input + output tokens served."""
        return _per_million(self.cost_usd_per_hour, self.tokens_per_second)

    @computed_field
    @property
    def usd_per_million_output_tokens(self) -> float | None:
        """$ per million output tokens served."""
        return _per_million(self.cost_usd_per_hour, self.output_tokens_per_second)

    def gpus_by_role(self) -> dict[Role, int]:
        return {r: sum(p.gpus for p in self.pools if p.role == r) for r in ROLES}

    @computed_field
    @property
    def prefill_gpus(self) -> int:
        return self.gpus_by_role()[Role.PREFILL]

    @computed_field
    @property
    def decode_gpus(self) -> int:
        return self.gpus_by_role()[Role.DECODE]

    @computed_field
    @property
    def colocated_gpus(self) -> int:
        return self.gpus_by_role()[Role.COLOCATED]

    @computed_field
    @property
    def golden_ratio(self) -> str:
        """"P:D" prefill to decode GPUs, reduced."""
        return reduced_ratio(self.prefill_gpus, self.decode_gpus)

    def mix(self) -> str:
        """The pools in one line, e.g. 'P 13x L40S tp2 wfp8/kvfp8 + D 1x B200 tp1 wbf16/kvfp8'
        (role initial, replicas, GPU, TP, PP when > 1, weight / KV dtypes)."""
        return " + ".join(f"{p.role[0].upper()} {p.replicas}x {p.gpu} tp{p.tp}"
                          + (f" pp{p.pp}" if p.pp > 1 else "")
                          + (f" dp{p.dp}" if p.dp > 1 else "") + (" ep" if p.ep else "")
                          + f" w{p.weight_dtype}/kv{p.kv_dtype}" for p in self.pools)

    def pool_costs(self) -> list[dict]:
        """$/h per pool with its role and GPU (what the cost-breakdown plot stacks)."""
        return [{"pool": p.name, "role": p.role, "gpu": p.gpu, "replicas": p.replicas,
                 "tp": p.tp, "gpus": p.gpus, "cost_usd_per_hour": p.cost_usd_per_hour}
                for p in self.pools]

    def pool_target_utilization(self, pool: Pool) -> float:
        """The rho `pool` was sized at (its own under queueing sizing; 1.0 for plans that
        did not record one)."""
        if pool.target_utilization is not None:
            return pool.target_utilization
        if pool.role == Role.DECODE and self.decode_target_utilization is not None:
            return self.decode_target_utilization
        return self.target_utilization or 1.0

    def operations_usd_per_hour(self) -> float:
        """The operational cost the plan was solved with: pools x the per-pool cost (0 for
        plans that record no simplification)."""
        s = self.simplification
        return s.pools * s.pool_cost_usd_per_hour if s else 0.0

    def missing_classes(self) -> list[str]:
        return [c.name for c in self.classes if c.misses_slo]

    def to_json(self) -> str:
        skip = ({"engine"} if self.engine.is_default() else set()) | (
            {"prefix_cache"} if self.prefix_cache is None else set()) | (
            {"simplification"} if self.simplification is None else set())
        d = self.model_dump(exclude=skip or None)
        if self.sizing == UNRECORDED_SIZING:
            d.pop("sizing", None)
        if "engine" in d:     # engine-mode fields only when set, so older plans read back same
            d["engine"] = {k: v for k, v in d["engine"].items()
                           if k not in ENGINE_MODE_FIELDS or v != getattr(DEFAULT_ENGINE_LIMITS, k)}
        return dumps_json(_rounded(d))

    def summary(self) -> dict:
        """The `--json` summary of `hetplan solve`."""
        return _rounded({
            "status": self.status, "gap": self.gap, "cost_usd_per_hour": self.cost_usd_per_hour,
            "usd_per_million_tokens": self.usd_per_million_tokens,
            "golden_ratio": self.golden_ratio,
            "pools": [{"name": p.name, "role": p.role, "gpu": p.gpu, "tp": p.tp, "pp": p.pp,
                       "weight_dtype": p.weight_dtype, "kv_dtype": p.kv_dtype,
                       "replicas": p.replicas, "gpus": p.gpus,
                       "cost_usd_per_hour": p.cost_usd_per_hour}
                      | ({"ep": p.ep, "dp": p.dp} if p.ep or p.dp > 1 else {})
                      for p in self.pools]}
            | ({"placement": {"nodes": len(self.placement.nodes),
                              "shards": len(self.placement.shards),
                              "moved_replicas": self.placement.moved_replicas,
                              "failed_nodes": self.placement.failed_nodes}}
               if self.placement else {}))


def reduced_ratio(p: int, d: int) -> str:
    """'p:d' in lowest terms ('3:0' and '0:2' stay as they are)."""
    if p == 0 or d == 0:
        return f"{p}:{d}"
    g = math.gcd(p, d)
    return f"{p // g}:{d // g}"


def _per_million(cost_usd_per_hour: float, tokens_per_second: float) -> float | None:
    return cost_usd_per_hour / (tokens_per_second * 3600) * 1e6 if tokens_per_second else None


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, ROUND)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


NAME_FIELDS = ("scenario", "model", "model_ref", "solver", "objective", "status", "kv_link")


@contextmanager
def plan_errors(path):
    """An InputError about a field of the plan that a later stage finds (an emitter, the
    simulator) names the plan's file too."""
    from hetplan.errors import InputError
    try:
        yield
    except InputError as e:
        if e.file is None and (e.field or "").split(".")[0] in Plan.model_fields:
            raise InputError(e.message, file=path, field=e.field) from None
        raise


def load_plan(path, cat=None) -> Plan:
    """Read a plan.json written by `hetplan solve`; bad files are one-line InputErrors
    naming the file and the field (checked as `validate_plan` states). `cat`: the catalog
    its GPUs must be in (default: the bundled one)."""
    from pydantic import ValidationError

    from hetplan.errors import InputError, from_validation_error
    from hetplan.io import load_json

    raw = load_json(path)
    if not isinstance(raw, dict):
        raise InputError("expected a plan object", file=path)
    try:
        plan = Plan(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None
    validate_plan(plan, path, cat)
    return plan


def validate_plan(plan: Plan, file=None, cat=None) -> None:
    """What a plan read from disk must satisfy before any stage uses it: names without
    control characters (they reach scripts, comments and file names); per pool a known
    role, a GPU in the catalog, known dtypes, 1 <= tp <= the GPU's per-node count,
    1 <= pp <= MAX_PP, 1 <= replicas <= MAX_REPLICAS_PER_POOL, 1 <= dp <= MAX_DP with
    dp > 1 only with ep and pp 1, tp x dp <= the per-node count, gpus = replicas x tp x pp x dp;
    per route a rate >= 0, 1 <= batch <= MAX_BATCH and a class of `classes`; pool names
    unique; placement ids and addresses without control characters and a consistent
    placement (`_check_placement`). The first violation is an InputError naming file and
    field."""
    from hetplan.catalog import load_catalog
    from hetplan.dtypes import DTYPES
    from hetplan.errors import InputError

    def bad(field: str, msg: str):
        raise InputError(msg, file=file, field=field)

    def name(field: str, value: str | None) -> None:
        if value is not None and has_control(value):
            bad(field, f"control character in {value!r}")

    for f in NAME_FIELDS:
        name(f, getattr(plan, f))
    from pydantic import ValidationError

    from hetplan.errors import from_validation_error
    from hetplan.scenario import SLO
    try:
        SLO(**plan.slo) if isinstance(plan.slo, dict) else bad("slo", "expected a mapping")
    except ValidationError as e:
        raise from_validation_error(e, file=file, prefix="slo") from None
    if plan.kv_link is not None:
        from hetplan.catalog import unknown_name_message
        from hetplan.perf.links import load_links
        links = load_links().links
        if plan.kv_link not in links:
            bad("kv_link", unknown_name_message("link", plan.kv_link, links))
    cat = cat or load_catalog()
    for i, c in enumerate(plan.classes):
        name(f"classes.{i}.name", c.name)
    seen_pools: set[str] = set()
    class_names = {c.name for c in plan.classes}
    for i, p in enumerate(plan.pools):
        at = f"pools.{i}"
        if p.name in seen_pools:
            bad(f"{at}.name", f"duplicate pool name {p.name!r}")
        seen_pools.add(p.name)
        for f in ("name", "vendor"):
            name(f"{at}.{f}", getattr(p, f))
        if p.role not in ROLES:
            bad(f"{at}.role", f"unknown role {p.role!r}; expected one of {', '.join(ROLES)}")
        if p.gpu not in cat.gpus:
            bad(f"{at}.gpu", f"unknown GPU {p.gpu!r} (not in the catalog)")
        for f in ("weight_dtype", "kv_dtype"):
            if getattr(p, f) not in DTYPES:
                bad(f"{at}.{f}", f"unknown dtype {getattr(p, f)!r}; expected one of "
                                 f"{', '.join(DTYPES)}")
        per_node = cat.gpus[p.gpu].max_gpus_per_node
        if not 1 <= p.tp <= per_node:
            bad(f"{at}.tp", f"must be between 1 and {per_node} ({p.gpu} GPUs per node)")
        if not 1 <= p.pp <= MAX_PP:
            bad(f"{at}.pp", f"must be between 1 and {MAX_PP}")
        if not 1 <= p.replicas <= MAX_REPLICAS_PER_POOL:
            bad(f"{at}.replicas", f"must be between 1 and {MAX_REPLICAS_PER_POOL}")
        if not 1 <= p.dp <= MAX_DP:
            bad(f"{at}.dp", f"must be between 1 and {MAX_DP}")
        if p.dp > 1 and (not p.ep or p.pp > 1):
            bad(f"{at}.dp", "dp > 1 needs ep true and pp 1")
        if p.gpus_per_stage > per_node:
            bad(f"{at}.dp", f"tp x dp {p.gpus_per_stage} exceeds {per_node} ({p.gpu} GPUs "
                            "per node)")
        if p.dp == 1 and p.gpus != p.replicas * p.tp * p.pp:
            bad(f"{at}.gpus", f"{p.gpus} is not replicas x tp x pp "
                              f"({p.replicas * p.tp * p.pp})")
        if p.gpus != p.replicas * p.gpus_per_replica:
            bad(f"{at}.gpus", f"{p.gpus} is not replicas x tp x pp x dp "
                              f"({p.replicas * p.gpus_per_replica})")
        for j, r in enumerate(p.routes):
            name(f"{at}.routes.{j}.workload_class", r.workload_class)
            if class_names and r.workload_class not in class_names:
                bad(f"{at}.routes.{j}.workload_class", f"no class named "
                                                       f"{r.workload_class!r} in classes")
            if r.rate_rps < 0:
                bad(f"{at}.routes.{j}.rate_rps", "must be >= 0")
            if not 1 <= r.batch <= MAX_BATCH:
                bad(f"{at}.routes.{j}.batch", f"must be between 1 and {MAX_BATCH}")
    if plan.placement is not None:
        pl = plan.placement
        name("placement.inventory", pl.inventory)
        for i, n in enumerate(pl.nodes):
            for f in ("id", "address", "gpu", "rack", "fabric", "provider"):
                name(f"placement.nodes.{i}.{f}", getattr(n, f))
        for i, sh in enumerate(pl.shards):
            name(f"placement.shards.{i}.node", sh.node)
            name(f"placement.shards.{i}.pool", sh.pool)
        _check_placement(plan, bad)


def _check_placement(plan: Plan, bad) -> None:
    """Placement consistency: node ids unique with 1..MAX_GPUS_PER_NODE GPUs; each shard on
    a listed node, of a known pool, replica < replicas, stage < pp, tp x dp distinct GPU
    indices of its node that no other shard holds (emitters turn them into
    CUDA_VISIBLE_DEVICES)."""
    nodes: dict[str, int] = {}
    for i, n in enumerate(plan.placement.nodes):
        if n.id in nodes:
            bad(f"placement.nodes.{i}.id", f"duplicate node id {n.id!r}")
        if not 1 <= n.gpus <= MAX_GPUS_PER_NODE:
            bad(f"placement.nodes.{i}.gpus", f"must be between 1 and {MAX_GPUS_PER_NODE}")
        nodes[n.id] = n.gpus
    pools = {p.name: p for p in plan.pools}
    held: dict[tuple[str, int], int] = {}
    for i, sh in enumerate(plan.placement.shards):
        at = f"placement.shards.{i}"
        if sh.node not in nodes:
            bad(f"{at}.node", f"node {sh.node!r} is not in placement.nodes")
        pool = pools.get(sh.pool)
        if pool is None:
            bad(f"{at}.pool", f"no pool named {sh.pool!r}")
        if not 0 <= sh.replica < pool.replicas:
            bad(f"{at}.replica", f"must be between 0 and {pool.replicas - 1} (the pool's "
                                 "replicas)")
        if not 0 <= sh.stage < pool.pp:
            bad(f"{at}.stage", f"must be between 0 and {pool.pp - 1} (the pool's pp)")
        if len(sh.gpu_indices) != pool.gpus_per_stage:
            bad(f"{at}.gpu_indices", f"{len(sh.gpu_indices)} indices for tp {pool.tp}"
                + (f" x dp {pool.dp}" if pool.dp > 1 else ""))
        for g in sh.gpu_indices:
            if not 0 <= g < nodes[sh.node]:
                bad(f"{at}.gpu_indices", f"GPU {g} is not on node {sh.node!r} "
                                         f"({nodes[sh.node]} GPUs)")
            if held.setdefault((sh.node, g), i) != i:
                bad(f"{at}.gpu_indices", f"GPU {g} of node {sh.node!r} is also held by "
                                         f"placement.shards.{held[sh.node, g]}")
