"""Fleet file: several models (members), each with its workload, SLO and weight, planned
together on one catalog selection, one inventory and one budget.

A member is a scenario without the shared parts: the loader turns each into a `Scenario`
(the fleet's catalog, objective and constraints, with the member's constraint overrides
merged over the fleet's) and resolves it as `hetplan.scenario` does, so a member is checked
exactly like a scenario and the planner's per-scenario stages apply to it unchanged. Errors
are one line naming the member and field (`members.chat.slo.ttft_ms: ...`).

Assumptions: placement (the inventory, reliability) is fleet-wide, so a member may not
override `reliability`; a member's own `budget_usd_per_hour` caps that member on top of the
fleet budget. Relative paths resolve against the fleet file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hetplan.bounds import SafeName, Text
from hetplan.catalog import Catalog, load_catalog
from hetplan.errors import InputError, from_validation_error
from hetplan.io import load_yaml
from hetplan.scenario import (SLO, CatalogSelection, Constraints, ResolvedScenario, Scenario,
                              WorkloadRef, check_scenario, scenario_inventory)

MAX_MEMBERS = 64                       # members per fleet (each adds its own MILP block)
FLEET_ONLY_CONSTRAINTS = ("reliability",)   # placement is one pass for the whole fleet


class FleetMember(BaseModel):
    """One model of the fleet. `weight`: its goodput's worth under objective max_goodput
    (the budget sheds the least weight per dollar first); `priority`: the order members are
    planned in turn for the fleet-vs-alone comparison (higher first, then file order)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: SafeName
    description: str = ""
    model: Text
    workload: WorkloadRef
    slo: SLO
    weight: float = Field(default=1.0, gt=0.0, le=1e6)
    priority: int = Field(default=0, ge=-1000, le=1000)
    constraints: dict[str, Any] = {}    # overrides of the fleet's constraints (checked below)


class Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: SafeName
    description: str = ""
    members: list[FleetMember] = Field(min_length=1, max_length=MAX_MEMBERS)
    catalog: CatalogSelection
    constraints: Constraints = Constraints()
    objective: Literal["min_cost", "max_goodput"] = "min_cost"
    inventory: Text | None = None
    base_dir: str = "."

    @model_validator(mode="after")
    def _unique_names(self) -> "Fleet":
        seen: set[str] = set()
        for m in self.members:
            if m.name in seen:
                raise ValueError(f"member name {m.name!r} appears twice")
            seen.add(m.name)
        return self


@dataclass(frozen=True)
class ResolvedMember:
    """A member checked and loaded as a scenario of its own (`resolved.scenario`)."""

    spec: FleetMember
    resolved: ResolvedScenario

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class ResolvedFleet:
    fleet: Fleet
    members: tuple[ResolvedMember, ...]
    source: str | None = None

    @property
    def inventory(self):
        return self.members[0].resolved.inventory

    def member(self, name: str) -> ResolvedMember:
        return next(m for m in self.members if m.name == name)


def is_fleet_file(path: str | Path) -> bool:
    """Whether a YAML file is a fleet (a mapping with `members`) rather than a scenario."""
    raw = load_yaml(path)
    return isinstance(raw, dict) and "members" in raw


def load_fleet(path: str | Path, catalog: Catalog | None = None) -> ResolvedFleet:
    """Load, validate and resolve a fleet file; every error is one line naming the field
    (and the member, for member fields)."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of fleet fields", file=path)
    raw = dict(raw)
    raw.setdefault("name", path.stem)
    raw["base_dir"] = str(path.resolve().parent)
    members = raw.get("members")
    if not isinstance(members, list) or not members:
        raise InputError("expected a non-empty list of members", file=path, field="members")
    checked = []
    for i, m in enumerate(members):
        label = m.get("name") if isinstance(m, dict) and isinstance(m.get("name"), str) else i
        if not isinstance(m, dict):
            raise InputError("expected a mapping of member fields", file=path,
                             field=f"members.{label}")
        try:
            checked.append(FleetMember(**m))
        except ValidationError as e:
            raise from_validation_error(e, file=path, prefix=f"members.{label}") from None
    try:
        fleet = Fleet(**(raw | {"members": checked}))
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None
    return check_fleet(fleet, catalog or load_catalog(), file=path)


def member_scenario(fleet: Fleet, m: FleetMember, file: str | Path | None = None) -> Scenario:
    """The scenario a member is planned as: its model, workload and SLO with the fleet's
    catalog, objective and inventory, and the fleet's constraints with its overrides (merged per top-level field)."""
    where = f"members.{m.name}.constraints"
    for k in FLEET_ONLY_CONSTRAINTS:
        if k in m.constraints:
            raise InputError(f"{k} is fleet-wide (placement is one pass for all members): set "
                             "it in the fleet's constraints", file=file, field=f"{where}.{k}")
    merged = fleet.constraints.model_dump(exclude_unset=True) | m.constraints
    try:
        constraints = Constraints(**merged)
    except ValidationError as e:
        raise from_validation_error(e, file=file, prefix=where) from None
    return Scenario(name=m.name, description=m.description, model=m.model,
                    workload=m.workload, slo=m.slo, catalog=fleet.catalog,
                    constraints=constraints, objective=fleet.objective,
                    inventory=fleet.inventory, base_dir=fleet.base_dir)


def check_fleet(fleet: Fleet, catalog: Catalog, file: str | Path | None = None
                ) -> ResolvedFleet:
    """Resolve every member as a scenario (the inventory is loaded once and shared); an
    error inside a member names it (`members.<name>.<field>`)."""
    if fleet.objective == "max_goodput" and fleet.constraints.budget_usd_per_hour is None:
        raise InputError("objective max_goodput needs constraints.budget_usd_per_hour",
                         file=file, field="constraints.budget_usd_per_hour")
    inventory = None
    if fleet.inventory is not None:
        probe = member_scenario(fleet, fleet.members[0], file)
        try:
            inventory = scenario_inventory(probe, catalog)
        except InputError as e:
            raise InputError(e.one_line(), file=file, field="inventory") from None
    out = []
    for m in fleet.members:
        s = member_scenario(fleet, m, file)
        try:
            rs = check_scenario(s.model_copy(update={"inventory": None}), catalog, file=file)
        except InputError as e:
            field = e.field or ""
            if field.startswith("catalog"):      # the shared part: no member to name
                raise
            raise InputError(e.message, file=e.file or file,
                             field=f"members.{m.name}" + (f".{field}" if field else "")
                             ) from None
        out.append(ResolvedMember(m, replace(rs, scenario=s, inventory=inventory)))
    return ResolvedFleet(fleet, tuple(out), str(file) if file is not None else None)
