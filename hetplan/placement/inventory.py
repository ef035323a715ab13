"""Inventory: the nodes a plan may be placed on, and the network between their fabrics.

One YAML file (paths inside it are relative to it):

    name: lab
    nodes:                       # and/or `nodes_csv: nodes.csv` with the same columns
      - {id: h100-1, gpu: H100-SXM, gpus: 8, rack: r1, fabric: ib-a, nic_gbps: 3200,
         provider: lambda, spot: false, address: 10.0.0.1}
    fabrics:                     # optional: KV capacity inside a fabric (spine), Gb/s
      ib-a: {capacity_gbps: 25600}
    links:                       # between fabrics, Gb/s per direction
      - {a: ib-a, b: eth-b, capacity_gbps: 400}

Units: `nic_gbps` is the node's total scale-out NIC bandwidth in Gb/s (all its NICs, one
direction); `capacity_gbps` likewise. A node's GPUs form one NVLink/xGMI (or PCIe) domain.
Racks live in one fabric. Racks of a fabric are assumed non-blocking between each other up to
the fabric's `capacity_gbps` (unbounded if absent: then only node NICs limit KV traffic).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from hetplan.catalog import Catalog, unknown_name_message
from hetplan.errors import InputError, from_validation_error
from hetplan.io import load_yaml

CSV_COLUMNS = ("id", "gpu", "gpus", "rack", "fabric", "nic_gbps", "provider", "spot", "address")


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    gpu: str
    gpus: PositiveInt                       # GPUs in the node (one intra-node link domain)
    rack: str = Field(min_length=1)
    fabric: str = Field(min_length=1)
    nic_gbps: PositiveFloat                 # total scale-out NIC bandwidth, Gb/s
    provider: str = ""
    spot: bool = False
    address: str | None = None              # host name / IP for emitted configs (default: id)

    @property
    def host(self) -> str:
        return self.address or self.id


class FabricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity_gbps: PositiveFloat | None = None


class FabricLink(BaseModel):
    """A link between two fabrics; its capacity holds in each direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    a: str
    b: str
    capacity_gbps: PositiveFloat


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    nodes: list[Node] = []
    nodes_csv: str | None = None
    fabrics: dict[str, FabricSpec] = {}
    links: list[FabricLink] = []
    source: str = ""                        # set by the loader: the file it came from

    def without(self, failed: Iterable[str]) -> "Inventory":
        gone = set(failed)
        return self.model_copy(update={"nodes": [n for n in self.nodes if n.id not in gone]})

    def gpus_by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.gpu] = out.get(n.gpu, 0) + n.gpus
        return dict(sorted(out.items()))

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
    inv = inv.model_copy(update={"nodes": nodes})
    _check(inv, catalog, path)
    return inv


def _read_nodes_csv(path: Path) -> list[Node]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    rows = list(csv.DictReader(text.splitlines()))
    if rows and not {"id", "gpu", "gpus", "rack", "fabric", "nic_gbps"} <= set(rows[0]):
        raise InputError(f"header must name {', '.join(CSV_COLUMNS[:6])} (optional: "
                         f"provider, spot, address)", file=path, field="header")
    nodes = []
    for i, row in enumerate(rows, start=2):
        vals = {k: v.strip() for k, v in row.items() if k and v is not None and v.strip() != ""}
        if "spot" in vals:
            vals["spot"] = vals["spot"].lower() in ("1", "true", "yes", "spot")
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
