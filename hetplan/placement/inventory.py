"""Inventory: the nodes a plan may be placed on, and the network between their fabrics.

One YAML file (paths inside it are relative to it):

    name: lab
    nodes:                       # and/or `nodes_csv: nodes.csv` with the same columns
      - {id: h100-1, gpu: H100-SXM, gpus: 8, rack: r1, fabric: ib-a, nic_gbps: 3200,
         provider: lambda, spot: false, address: 10.0.0.1}
      - {id: a100-1, gpu: A100-80G-SXM, gpus: 8, rack: r2, fabric: ib-a, nic_gbps: 800,
         owned: true}          # bought, not rented: `hetplan schedule` pays it every slot
    fabrics:                     # optional: KV capacity inside a fabric (spine), Gb/s
      ib-a: {capacity_gbps: 25600}
    links:                       # between fabrics, Gb/s per direction
      - {a: ib-a, b: eth-b, capacity_gbps: 400}

Units: `nic_gbps` is the node's total scale-out NIC bandwidth in Gb/s (all its NICs, one
direction); `capacity_gbps` likewise. A node's GPUs form one NVLink/xGMI (or PCIe) domain.
`owned` marks hardware bought rather than rented (it cannot also be `spot`): a schedule
holds its GPUs as a committed baseline in every slot (`hetplan.schedule.tiers`); sizing
for one rate (`hetplan solve`) and placement treat it as any other node.
Racks live in one fabric. Racks of a fabric are assumed non-blocking between each other up to
the fabric's `capacity_gbps` (unbounded if absent: then only node NICs limit KV traffic).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator)

from hetplan.bounds import (MAX_NODES, MAX_YAML_BYTES, Address, BandwidthGbps, GpusPerNode,
                            MaybeText, SafeName, Text)
from hetplan.catalog import Catalog, unknown_name_message
from hetplan.errors import InputError, from_validation_error
from hetplan.io import load_yaml, read_text

CSV_COLUMNS = ("id", "gpu", "gpus", "rack", "fabric", "nic_gbps", "provider", "spot", "address",
               "owned")
CSV_TRUE = ("1", "true", "yes")          # a CSV boolean cell that reads as true


class Node(BaseModel):
    """`id` names the node's launch script (nodes/<id>.sh), so it is a safe file name."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: SafeName
    gpu: SafeName
    gpus: GpusPerNode                       # GPUs in the node (one intra-node link domain)
    rack: Text
    fabric: Text
    nic_gbps: BandwidthGbps                 # total scale-out NIC bandwidth, Gb/s
    provider: MaybeText = ""
    spot: bool = False
    address: Address | None = None          # host name / IP for emitted configs (default: id)
    owned: bool = False                     # bought, not rented (never spot)

    @field_validator("owned")
    @classmethod
    def _not_spot(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("spot"):
            raise ValueError("a node cannot be both spot and owned (owned hardware is not "
                             "preempted)")
        return v

    @property
    def host(self) -> str:
        return self.address or self.id


class FabricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    capacity_gbps: BandwidthGbps | None = None


class FabricLink(BaseModel):
    """A link between two fabrics; its capacity holds in each direction."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    a: Text
    b: Text
    capacity_gbps: BandwidthGbps


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: Text
    description: str = ""
    nodes: list[Node] = Field(default=[], max_length=MAX_NODES)
    nodes_csv: Text | None = None
    fabrics: dict[Text, FabricSpec] = {}
    links: list[FabricLink] = []
    source: str = ""                        # set by the loader: the file it came from

    def without(self, failed: Iterable[str]) -> "Inventory":
        gone = set(failed)
        return self.model_copy(update={"nodes": [n for n in self.nodes if n.id not in gone]})

    def gpus_by_type(self, owned_only: bool = False) -> dict[str, int]:
        """GPU -> GPUs on the nodes (on owned nodes only with `owned_only`; types without
        any are left out)."""
        out: dict[str, int] = {}
        for n in self.nodes:
            if n.owned or not owned_only:
                out[n.gpu] = out.get(n.gpu, 0) + n.gpus
        return dict(sorted(out.items()))

    def owned_gpus_by_type(self) -> dict[str, int]:
        """GPU -> GPUs on owned nodes (types without any are left out)."""
        return self.gpus_by_type(owned_only=True)

    def max_gpus_per_node(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.gpu] = max(out.get(n.gpu, 0), n.gpus)
        return dict(sorted(out.items()))

    def fabric_names(self) -> list[str]:
        return sorted({n.fabric for n in self.nodes})

    def link_capacity_gbps(self, a: str, b: str) -> float | None:
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link.capacity_gbps
        return None


def load_inventory(path: str | Path, catalog: Catalog) -> Inventory:
    """Load and check an inventory; every error is one line naming the file and field."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping with 'nodes' (or 'nodes_csv')", file=path)
    raw.setdefault("name", path.stem)
    raw["source"] = str(path)
    try:
        inv = Inventory(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None
    nodes = list(inv.nodes)
    if inv.nodes_csv:
        csv_path = Path(inv.nodes_csv)
        csv_path = csv_path if csv_path.is_absolute() else path.parent / csv_path
        nodes += _read_nodes_csv(csv_path)
    if not nodes:
        raise InputError("an inventory needs at least one node", file=path, field="nodes")
    if len(nodes) > MAX_NODES:
        raise InputError(f"{len(nodes):,} nodes, more than the limit of {MAX_NODES:,}",
                         file=path, field="nodes")
    inv = inv.model_copy(update={"nodes": nodes})
    _check(inv, catalog, path)
    return inv


def _read_nodes_csv(path: Path) -> list[Node]:
    text = read_text(path, MAX_YAML_BYTES)
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as e:
        raise InputError(f"cannot parse CSV ({e})", file=path) from None
    if rows and not {"id", "gpu", "gpus", "rack", "fabric", "nic_gbps"} <= set(rows[0]):
        raise InputError(f"header must name {', '.join(CSV_COLUMNS[:6])} (optional: "
                         f"{', '.join(CSV_COLUMNS[6:])})", file=path, field="header")
    nodes = []
    for i, row in enumerate(rows, start=2):
        if None in row:                 # csv.DictReader files surplus values under None
            raise InputError(f"{len(row) - 1 + len(row[None])} values, more than the "
                             f"{len(rows[0]) - (None in rows[0])} header columns", file=path,
                             field=f"line {i}")
        vals = {k: v.strip() for k, v in row.items() if k and v is not None and v.strip() != ""}
        if "spot" in vals:
            vals["spot"] = vals["spot"].lower() in CSV_TRUE + ("spot",)
        if "owned" in vals:
            vals["owned"] = vals["owned"].lower() in CSV_TRUE + ("owned",)
        try:
            nodes.append(Node(**vals))
        except ValidationError as e:
            raise from_validation_error(e, file=path, prefix=f"line {i}") from None
    return nodes


def _check(inv: Inventory, catalog: Catalog, path: Path) -> None:
    seen: dict[str, int] = {}
    rack_fabric: dict[str, str] = {}
    for i, n in enumerate(inv.nodes):
        where = f"nodes.{i}"
        if n.id in seen:
            raise InputError(f"duplicate node id {n.id!r} (also nodes.{seen[n.id]})", file=path,
                             field=f"{where}.id")
        seen[n.id] = i
        if n.gpu not in catalog.gpus:
            raise InputError(unknown_name_message("GPU", n.gpu, catalog.gpus), file=path,
                             field=f"{where}.gpu")
        if rack_fabric.setdefault(n.rack, n.fabric) != n.fabric:
            raise InputError(f"rack {n.rack!r} is in fabric {rack_fabric[n.rack]!r} and "
                             f"{n.fabric!r}; a rack belongs to one fabric", file=path,
                             field=f"{where}.fabric")
    fabrics = set(rack_fabric.values())
    for f in inv.fabrics:
        if f not in fabrics:
            raise InputError(unknown_name_message("fabric", f, fabrics), file=path,
                             field=f"fabrics.{f}")
    pairs = set()
    for i, link in enumerate(inv.links):
        for end in ("a", "b"):
            if getattr(link, end) not in fabrics:
                raise InputError(unknown_name_message("fabric", getattr(link, end), fabrics),
                                 file=path, field=f"links.{i}.{end}")
        if link.a == link.b:
            raise InputError("a link joins two different fabrics", file=path,
                             field=f"links.{i}.b")
        key = frozenset((link.a, link.b))
        if key in pairs:
            raise InputError(f"duplicate link {link.a}<->{link.b}", file=path, field=f"links.{i}")
        pairs.add(key)
