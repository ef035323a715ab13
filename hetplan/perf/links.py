"""Network links for KV transfer and pipeline stages, from `catalogs/links.yaml`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

from hetplan.catalog import GPU, unknown_name_message
from hetplan.errors import InputError, from_validation_error
from hetplan.io import catalogs_dir, load_yaml


class Link(BaseModel):
    """A point-to-point path between two GPUs: achieved bandwidth and per-message latency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["infiniband", "roce", "ethernet", "nvlink", "xgmi", "pcie", "intra_node"]
    bandwidth_gbit_per_s: PositiveFloat     # nominal line rate, one direction
    efficiency: float = Field(gt=0.0, le=1.0)
    latency_us: float = Field(ge=0.0)
    sources: dict[str, str] = {}

    @property
    def achieved_bytes_per_s(self) -> float:
        return self.bytes_per_s_at(self.efficiency)

    def bytes_per_s_at(self, efficiency: float) -> float:
        """The line rate, in bytes/s, at `efficiency` (a collective's own fitted one)."""
        return self.bandwidth_gbit_per_s * 1e9 / 8.0 * efficiency


class KVTransferConstants(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cross_vendor_translation_us: float = Field(ge=0.0)
    exposed_layers: int = Field(ge=0)
    sources: dict[str, str] = {}


class LinkCatalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    links: dict[str, Link]
    intra_node_efficiency: float
    intra_node_latency_us: float
    kv: KVTransferConstants
    references: dict[str, str]

    def link(self, name: str) -> Link:
        if name not in self.links:
            raise InputError(unknown_name_message("link", name, self.links))
        return self.links[name]

    def intra_node(self, gpu: GPU) -> Link:
        """The GPU's own NVLink/xGMI/PCIe domain as a Link (unidirectional bandwidth)."""
        return Link(name=f"{gpu.name}:{gpu.intra_node_link}", kind="intra_node",
                    bandwidth_gbit_per_s=gpu.intra_node_bw_gb_per_s / 2.0 * 8.0,
                    efficiency=self.intra_node_efficiency,
                    latency_us=self.intra_node_latency_us)


@lru_cache(maxsize=8)
def load_links(path: str | None = None) -> LinkCatalog:
    p = Path(path) if path else catalogs_dir() / "links.yaml"
    raw = load_yaml(p)
    if not isinstance(raw, dict) or "links" not in raw:
        raise InputError("expected a mapping with 'links'", file=p)
    refs = raw.get("references") or {}
    try:
        links = {n: Link(name=n, **row) for n, row in raw["links"].items()}
        kv = KVTransferConstants(**raw["kv_transfer"])
        intra = raw["intra_node"]
    except ValidationError as e:
        raise from_validation_error(e, file=p) from None
    except KeyError as e:
        raise InputError("required section missing", file=p, field=str(e.args[0])) from None
    for n, link in links.items():
        for field, ref in link.sources.items():
            if ref not in refs:
                raise InputError(f"source {ref!r} is not a key of 'references'", file=p,
                                 field=f"links.{n}.sources.{field}")
    return LinkCatalog(links=links, intra_node_efficiency=float(intra["efficiency"]),
                       intra_node_latency_us=float(intra["latency_us"]), kv=kv, references=refs)
