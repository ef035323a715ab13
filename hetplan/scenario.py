"""Scenario: one YAML file naming the model, workload, SLO, GPU catalog subset, prices,
constraints and objective of a planning problem.

Relative paths inside a scenario (a trace file, a local config.json) are resolved against
the scenario file's directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hetplan.bounds import (BudgetUsdPerHour, ClassesPerAxis, GpuCount, LatencyMs, PpDegree,
                            SafeName, Text, TpDegree, Unique, WindowS)
from hetplan.catalog import Catalog, load_catalog, unknown_name_message
from hetplan.dtypes import Dtype
from hetplan.engine_limits import EngineLimits
from hetplan.enums import DEFAULT_SIZING, ROLES, Role, Sizing
from hetplan.errors import InputError, from_validation_error
from hetplan.io import load_yaml
from hetplan.model import ModelSpec, load_model
from hetplan.schedule.spec import ScheduleSpec
from hetplan.workload import Trace, WorkloadClass

if TYPE_CHECKING:
    from hetplan.placement.inventory import Inventory


class SLO(BaseModel):
    """Latency targets met at `percentile` (e.g. p90 TTFT <= 1000 ms and p90 TPOT <= 50 ms)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ttft_ms: LatencyMs
    tpot_ms: LatencyMs
    percentile: float = Field(default=90.0, gt=0.0, le=100.0)
    # Whose percentile: "class" (every workload class meets it on its own) or "workload"
    # (all requests together: the planner may let classes carrying at most (100 -
    # percentile)% of the requests miss, serving them at relaxed targets, see
    # `missing_class_slo`). Default "class": see README, "Whose percentile".
    scope: Literal["class", "workload"] = "class"

    def plan_dict(self) -> dict:
        """The SLO as plan.json records it: `scope` only when not the default, so plans of
        class-scope scenarios read and write as before."""
        return self.model_dump(exclude={"scope"} if self.scope == "class" else None)


# A class the planner lets miss (scope workload) is still served, sized at this multiple of
# the SLO's TTFT and TPOT targets: it may miss, but by a bounded factor, never by queueing
# without limit (it is not dropped).
MISSING_CLASS_SLO_FACTOR = 4.0


def missing_class_slo(slo: SLO) -> SLO:
    """The relaxed targets a class allowed to miss is sized at."""
    return slo.model_copy(update={"ttft_ms": slo.ttft_ms * MISSING_CLASS_SLO_FACTOR,
                                  "tpot_ms": slo.tpot_ms * MISSING_CLASS_SLO_FACTOR})


def miss_budget_share(slo: SLO) -> float | None:
    """Largest share of requests the classes allowed to miss may carry (None: scope class)."""
    return None if slo.scope == "class" else (100.0 - slo.percentile) / 100.0


class Bucketing(BaseModel):
    """How the workload is split into classes (input x output length bins)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    n_input: ClassesPerAxis = 4
    n_output: ClassesPerAxis = 4
    method: Literal["log", "quantile"] = "log"


class WorkloadRef(BaseModel):
    """A trace file (with its format), an inline synthetic generator spec, or a spec file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    trace: Text | None = None
    format: Text | None = None         # azure | mooncake | burstgpt | generic (see workload)
    column_map: dict[Text, Text] | None = None
    time_unit: Literal["s", "ms", "us", "datetime"] | None = None   # generic traces
    on_bad: Literal["skip", "error"] = "skip"       # bad trace rows: skip (warned) or error
    synthetic: dict[str, Any] | None = None
    spec: Text | None = None           # a synthetic spec file (e.g. workloads/specs/*.yaml)
    # "mean"; "p<q>": q-th percentile over time of the windowed rate (e.g. "p95"); "r<q>":
    # q-th percentile over requests of the rate of the window each arrived in
    planning_rate: str = "mean"
    # Window of the percentile planning rate, seconds. 60 s smooths bursts shorter than a
    # minute; a bursty trace with a TTFT target of seconds wants windows of a few seconds.
    planning_window_s: WindowS = 60.0
    classes: Bucketing = Bucketing()

    @field_validator("planning_rate")
    @classmethod
    def _rate_spec(cls, v: str) -> str:
        from hetplan.workload.trace import parse_planning_rate
        parse_planning_rate(v)
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "WorkloadRef":
        if sum(x is not None for x in (self.trace, self.synthetic, self.spec)) != 1:
            raise ValueError("give exactly one of 'trace' or 'synthetic' (or 'spec': a "
                             "synthetic spec file)")
        return self


class CatalogSelection(BaseModel):
    """Which GPUs the planner may use and at what prices."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    gpus: Annotated[list[SafeName], Unique] | None = Field(default=None, min_length=1)   # None: every priced GPU
    prices: SafeName                            # price sheet name (file stem in catalogs/prices)
    use_spot: bool = False
    availability: dict[SafeName, GpuCount] = {}  # GPU -> max GPUs (overrides the sheet's counts)


class Reliability(BaseModel):
    """Placement headroom: `n_plus_one` keeps every pool within the target utilization with
    any one node lost; `spot_headroom` discounts the capacity of replicas on spot nodes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    n_plus_one: bool = False
    spot_headroom: float = Field(default=0.0, ge=0.0, lt=1.0)


# Operator time one more distinct deployment costs: about 2 engineer-hours a week (its own
# dashboards, alerts, autoscaling rules, rollouts and on-call attention) at ~$150/h loaded
# ~= $1.8/h, rounded to $2/h. It outweighs splits that save a few dollars an hour (below 1-3%
# of the shipped plans), and no split that saves more.
DEFAULT_POOL_COST_USD_PER_HOUR = 2.0


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    budget_usd_per_hour: BudgetUsdPerHour | None = None
    allow_cross_vendor: bool = False            # prefill and decode on different vendors
    roles: Annotated[list[Role], Unique, Field(min_length=1)] = list(ROLES)
    weight_dtypes: Annotated[list[Dtype], Unique, Field(min_length=1)] = ["bf16", "fp8"]
    kv_dtypes: Annotated[list[Dtype], Unique, Field(min_length=1)] = ["bf16", "fp8"]
    max_tp: TpDegree = 8
    max_pp: PpDegree = 1
    target_utilization: float = Field(default=0.8, gt=0.0, le=1.0)
    # Decode pools' rho, when it should differ from target_utilization: a decode replica
    # has no queue below its batch cap (requests join the running batch), so its margin
    # guards only against batch fluctuations. None: target_utilization. Check a raised
    # value with `hetplan solve --validate`.
    decode_target_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    # Pool sizing: "queueing" (the load n replicas carry with the SLO percentile met, from
    # the trace's burstiness; target_utilization is then unused) or "utilization" (rho).
    sizing: Sizing = DEFAULT_SIZING
    kv_link: Text = "ib-400g"                   # fabric between prefill and decode pools
    reliability: Reliability = Reliability()    # used when the scenario has an inventory
    engine: EngineLimits = EngineLimits()       # serving-engine limits (hetplan.engine_limits)
    # Prefix caching (hetplan.prefix_cache): charge prefill only for prompt blocks the pool's
    # cache misses. None: on when the trace file has block ids (Mooncake hash_ids); true
    # also derives blocks from sessions and prefix_tokens; false charges every prompt in full.
    prefix_cache: bool | None = None
    prefix_routing: Literal["cache_aware", "random"] = "cache_aware"   # inside a prefill pool
    # Operational simplicity (README, "Plans an operator can run"): a fixed $/h charged per
    # distinct pool the plan uses (its deployment, dashboards, alerts, scaling rules and
    # upgrades), on top of GPU cost; and an optional cap on distinct pools per role.
    pool_cost_usd_per_hour: float = Field(default=DEFAULT_POOL_COST_USD_PER_HOUR, ge=0.0,
                                          le=1e6)
    max_pools_per_role: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("kv_link")
    @classmethod
    def _known_link(cls, v: str) -> str:
        from hetplan.perf.links import load_links
        links = load_links().links
        if v not in links:
            raise ValueError(unknown_name_message("link", v, links))
        return v


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: SafeName                              # default: the file name (workloads/<name>.yaml)
    description: str = ""
    model: Text                                 # bundled key, HF id, or path to config.json
    workload: WorkloadRef
    slo: SLO
    catalog: CatalogSelection
    constraints: Constraints = Constraints()
    objective: Literal["min_cost", "max_goodput"] = "min_cost"
    inventory: Text | None = None               # nodes to place on (path, see placement)
    schedule: ScheduleSpec | None = None        # capacity over time (`hetplan schedule`)
    base_dir: str = "."                         # set by the loader: the scenario's directory

    def resolve_path(self, p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else Path(self.base_dir) / path


@dataclass(frozen=True)
class ResolvedScenario:
    """A checked scenario with everything it names loaded once: the model, the workload
    (its trace and the classes bucketed from it at the planning rate) and the inventory.
    The planner, the repair loop, compare, frontier and what-if take this, never a bare
    `Scenario`, so nothing is parsed twice and the SLO has one source: `scenario.slo`.
    Variants (another SLO, budget, roles, prices) are derived with `derive`."""

    scenario: Scenario
    model: ModelSpec
    classes: tuple[WorkloadClass, ...]
    trace: Trace | None                   # None when the classes were given (`with_classes`)
    inventory: Inventory | None = None
    planning_rate: tuple[str, float] = ("mean", 0.0)    # parsed `workload.planning_rate`
    source: str | None = None             # the file it came from (named by later errors)

    # Scenario fields a variant may change: none of them changes what was loaded.
    DERIVABLE = frozenset({"name", "description", "slo", "catalog", "constraints", "objective"})

    @property
    def slo(self) -> SLO:
        return self.scenario.slo

    def derive(self, **update: Any) -> ResolvedScenario:
        """This scenario with some fields replaced (e.g. `slo=`, `constraints=`), keeping the
        loaded model, workload and inventory. Fields they depend on cannot change here."""
        fixed = set(update) - self.DERIVABLE
        if fixed:
            raise ValueError(f"{', '.join(sorted(fixed))} change what was loaded; load the "
                             "changed scenario instead")
        return replace(self, scenario=self.scenario.model_copy(update=update))

    def with_constraints(self, **update: Any) -> ResolvedScenario:
        return self.derive(constraints=self.scenario.constraints.model_copy(update=update))

    def with_classes(self, classes: Sequence[WorkloadClass]) -> ResolvedScenario:
        """The scenario planned for explicit classes instead of its workload (what-if
        studies); it has no trace to simulate."""
        return replace(self, classes=tuple(classes), trace=None)


def load_scenario(path: str | Path, catalog: Catalog | None = None) -> ResolvedScenario:
    """Load, cross-check and resolve a scenario (see `check_scenario`)."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of scenario fields", file=path)
    raw.setdefault("name", path.stem)
    raw["base_dir"] = str(path.resolve().parent)
    try:
        scenario = Scenario(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None
    return check_scenario(scenario, catalog or load_catalog(), file=path)


def check_scenario(s: Scenario, catalog: Catalog, file: str | Path | None = None
                   ) -> ResolvedScenario:
    """Cross-references a schema cannot check (each failure names the field), then what
    they name loaded: model, workload trace and classes, inventory."""
    from hetplan.workload import bucket, load_workload
    from hetplan.workload.trace import parse_planning_rate
    try:
        model = scenario_model(s)
    except InputError as e:
        # keep the config.json's own file and field when the error is inside it
        raise InputError(e.one_line() if e.file else e.message, file=file,
                         field="model") from None
    check_catalog_selection(s.catalog, catalog, file)
    w = s.workload
    if w.synthetic is not None:
        from hetplan.workload import parse_synthetic
        parse_synthetic(w.synthetic, file=file)
    if w.trace is not None and not s.resolve_path(w.trace).exists():
        raise InputError(f"trace file not found: {s.resolve_path(w.trace)}",
                         file=file, field="workload.trace")
    if w.spec is not None:
        if not s.resolve_path(w.spec).exists():
            raise InputError(f"spec file not found: {s.resolve_path(w.spec)}",
                             file=file, field="workload.spec")
    inventory = scenario_inventory(s, catalog)
    trace = load_workload(w, s.base_dir)
    try:
        classes = bucket(trace, w.classes.n_input, w.classes.n_output, method=w.classes.method,
                         planning_rate=w.planning_rate, window_s=w.planning_window_s)
    except ValueError as e:
        raise InputError(str(e), file=file, field="workload") from None
    return ResolvedScenario(s, model, tuple(classes), trace, inventory,
                            parse_planning_rate(w.planning_rate),
                            str(file) if file is not None else None)


def check_catalog_selection(sel: CatalogSelection, catalog: Catalog,
                            file: str | Path | None = None) -> None:
    """The price sheet and GPUs a scenario names exist in `catalog` (also run on derived
    variants, whose catalog selection may have changed)."""
    if sel.prices not in catalog.price_sheets:
        raise InputError(unknown_name_message("price sheet", sel.prices,
                                              catalog.price_sheets), file=file,
                         field="catalog.prices")
    for i, g in enumerate(sel.gpus or []):
        if g not in catalog.gpus:
            raise InputError(unknown_name_message("GPU", g, catalog.gpus), file=file,
                             field=f"catalog.gpus.{i}")
    for g, n in sel.availability.items():
        if g not in catalog.gpus:
            raise InputError(unknown_name_message("GPU", g, catalog.gpus), file=file,
                             field=f"catalog.availability.{g}")
        if n < 0:
            raise InputError("must be >= 0", file=file, field=f"catalog.availability.{g}")


def scenario_model(s: Scenario) -> ModelSpec:
    ref = s.model
    local = s.resolve_path(ref)
    return load_model(local if local.exists() else ref)


def scenario_gpus(s: Scenario, catalog: Catalog) -> list[str]:
    """GPUs the scenario may use: its subset (or all) that have an offer in its price sheet."""
    priced = {o.gpu for o in catalog.offers(s.catalog.prices)}
    names = s.catalog.gpus if s.catalog.gpus is not None else sorted(catalog.gpus)
    return [g for g in names if g in priced]


def scenario_inventory(s: Scenario, catalog: Catalog):
    """The scenario's inventory (None without one); errors name the inventory file."""
    if s.inventory is None:
        return None
    from hetplan.placement.inventory import load_inventory
    return load_inventory(s.resolve_path(s.inventory), catalog)
