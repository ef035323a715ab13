"""GPU catalog and price offers, loaded from `catalogs/gpus.yaml` and `catalogs/prices/*.yaml`.

Units are in the field names. TFLOPS are dense (no 2:4 sparsity). Every numeric figure of a
GPU must name its source (a key of the file's `references`): a figure without provenance
is rejected at load time.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hetplan.bounds import (MAX_INTRA_NODE_GB_PER_S, MAX_MEM_BW_TBPS, MAX_MEMORY_GB, MAX_TDP_W,
                            MAX_TFLOPS, GpuCount, GpusPerNode, PriceUsdPerHour, SafeName, Text)

from hetplan.dtypes import DTYPES, Dtype
from hetplan.errors import InputError, from_validation_error
from hetplan.io import catalogs_dir, load_yaml

Vendor = Literal["nvidia", "amd", "intel"]
Tflops = Annotated[float, Field(gt=0.0, le=MAX_TFLOPS)]
SOURCED_FIELDS = ("memory_gb", "mem_bw_tbps", "dense_tflops", "intra_node_bw_gb_per_s",
                  "max_gpus_per_node", "tdp_w")


class GPU(BaseModel):
    """One accelerator model. Figures are per GPU (a GB200 row is one Blackwell GPU)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: SafeName                          # also the calibration file's name
    vendor: Vendor
    architecture: Text
    memory_gb: float = Field(gt=0.0, le=MAX_MEMORY_GB)
    mem_bw_tbps: float = Field(gt=0.0, le=MAX_MEM_BW_TBPS)
    dense_tflops: dict[Dtype, Tflops] = Field(min_length=1)
    intra_node_link: Text
    intra_node_bw_gb_per_s: float = Field(
        gt=0.0, le=MAX_INTRA_NODE_GB_PER_S,
        description="intra-node GPU-to-GPU bandwidth, GB/s, total bidirectional per GPU")
    max_gpus_per_node: GpusPerNode
    tdp_w: float = Field(gt=0.0, le=MAX_TDP_W)
    sources: dict[str, str]
    notes: str = ""

    def supports(self, dtype: str) -> bool:
        return dtype in self.dense_tflops

    def tflops(self, dtype: str) -> float:
        """Dense TFLOPS for `dtype`; raises if the GPU has no tensor-core support for it."""
        if dtype not in self.dense_tflops:
            raise ValueError(f"{self.name} has no {dtype} support")
        return self.dense_tflops[dtype]

    @property
    def memory_bytes(self) -> float:
        return self.memory_gb * 1e9

    @property
    def mem_bw_bytes_per_s(self) -> float:
        return self.mem_bw_tbps * 1e12

    @property
    def datacenter_blackwell(self) -> bool:
        """NVLink Blackwell (B200/GB200-class, compute capability 10.x), which vLLM treats
        apart (e.g. larger default CUDA-graph capture); PCIe Blackwell cards (RTX) are 12.x."""
        return (self.vendor == "nvidia" and self.architecture.lower() == "blackwell"
                and self.intra_node_link.lower().startswith("nvlink"))

    @property
    def link_bytes_per_s_per_direction(self) -> float:
        """Unidirectional intra-node bandwidth (half the datasheet's bidirectional figure)."""
        return self.intra_node_bw_gb_per_s * 1e9 / 2.0


class Offer(BaseModel):
    """A price for one GPU-hour of `gpu` from `provider` in `region`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    gpu: SafeName
    provider: Text
    region: Text = "any"
    price_usd_per_hour: PriceUsdPerHour
    spot_price_usd_per_hour: PriceUsdPerHour | None = None
    available_count: GpuCount | None = None
    source: str
    note: str = ""
    # Purchase tiers (`hetplan schedule`), optional: interruptions of the spot price per
    # hour, and a committed (reserved-term) price. Each names its reference in `sources`
    # (field -> key of the sheet's references), as `source` does for the on-demand price.
    spot_preemptions_per_hour: float | None = Field(default=None, ge=0.0, le=100.0)
    reserved_price_usd_per_hour: PriceUsdPerHour | None = None
    reserved_term_months: int | None = Field(default=None, ge=1, le=120)
    sources: dict[str, str] = {}


TIER_FIELDS = ("spot_preemptions_per_hour", "reserved_price_usd_per_hour",
               "reserved_term_months")


class OwnedHardware(BaseModel):
    """A GPU bought rather than rented: its capital cost per GPU (with its share of the
    host), amortized and powered at the rates a schedule states (`hetplan.schedule`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    gpu: SafeName
    capex_usd_per_gpu: float = Field(gt=0.0, le=1e7)
    source: str
    note: str = ""


class PriceSheet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: SafeName                              # the file's stem
    as_of: Text
    description: str = ""
    references: dict[str, str] = {}
    offers: list[Offer]
    owned: list[OwnedHardware] = []


class Catalog(BaseModel):
    """All GPUs and price sheets. `gpu()` and `offers()` give clear errors on unknown names."""

    model_config = ConfigDict(frozen=True)

    gpus: dict[str, GPU]
    references: dict[str, str]
    price_sheets: dict[str, PriceSheet]

    def gpu(self, name: str, field: str | None = None) -> GPU:
        """The GPU `name`; InputError naming `field` (e.g. the flag it came from) if unknown."""
        if name not in self.gpus:
            raise InputError(unknown_name_message("GPU", name, self.gpus), field=field)
        return self.gpus[name]

    def price_sheet(self, name: str, field: str | None = None) -> PriceSheet:
        if name not in self.price_sheets:
            raise InputError(unknown_name_message("price sheet", name, self.price_sheets),
                             field=field)
        return self.price_sheets[name]

    def offers(self, sheet: str, gpus: list[str] | None = None) -> list[Offer]:
        """Offers of one price sheet, optionally for a subset of GPUs, in file order."""
        wanted = set(gpus) if gpus is not None else None
        return [o for o in self.price_sheet(sheet).offers if wanted is None or o.gpu in wanted]

    def cheapest_price_usd_per_hour(self, sheet: str, gpu: str) -> float | None:
        prices = [o.price_usd_per_hour for o in self.offers(sheet, [gpu])]
        return min(prices) if prices else None


def unknown_name_message(kind: str, name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(known))}"
    return f"unknown {kind} {name!r}{hint}"


def load_gpus(path: str | Path) -> tuple[dict[str, GPU], dict[str, str]]:
    """Parse a GPU catalog file; check that every figure names a known reference."""
    raw = load_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("gpus"), dict):
        raise InputError("expected a mapping with a 'gpus' mapping", file=path, field="gpus")
    references = raw.get("references") or {}
    if not isinstance(references, dict):
        raise InputError("expected a mapping of reference keys to citations", file=path,
                         field="references")
    gpus: dict[str, GPU] = {}
    for name, row in raw["gpus"].items():
        if not isinstance(row, dict):
            raise InputError("expected a mapping of GPU fields", file=path, field=f"gpus.{name}")
        try:
            gpu = GPU(name=str(name), **row)
        except ValidationError as e:
            raise from_validation_error(e, file=path, prefix=f"gpus.{name}") from None
        except TypeError as e:  # e.g. a duplicate 'name' key
            raise InputError(str(e), file=path, field=f"gpus.{name}") from None
        check_sources(gpu, references, path)
        gpus[gpu.name] = gpu
    return gpus, references


def check_sources(gpu: GPU, references: dict[str, str], path: str | Path) -> None:
    """Each sourced figure needs `sources[field]` (TFLOPS: as a whole or per dtype)."""
    keys = [f for f in SOURCED_FIELDS if f != "dense_tflops"]
    if "dense_tflops" in gpu.sources:
        keys.append("dense_tflops")
    else:
        keys += [f"dense_tflops.{d}" for d in gpu.dense_tflops]
    for key in keys:
        ref = gpu.sources.get(key)
        if ref is None:
            raise InputError("figure has no source (add it under 'sources')", file=path,
                             field=f"gpus.{gpu.name}.{key}")
        if ref not in references:
            raise InputError(f"source {ref!r} is not a key of 'references'", file=path,
                             field=f"gpus.{gpu.name}.sources.{key}")


def load_price_sheet(path: str | Path, known_gpus: dict[str, GPU]) -> PriceSheet:
    """Parse one dated price file; every offer must name a known GPU and a known reference."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping with 'as_of' and 'offers'", file=path)
    raw = {"name": path.stem, **raw}
    if isinstance(raw.get("as_of"), (int, float)) or hasattr(raw.get("as_of"), "isoformat"):
        raw["as_of"] = str(raw["as_of"])
    try:
        sheet = PriceSheet(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None
    for i, offer in enumerate(sheet.offers):
        if offer.gpu not in known_gpus:
            raise InputError(unknown_name_message("GPU", offer.gpu, known_gpus), file=path,
                             field=f"offers.{i}.gpu")
        if offer.source not in sheet.references:
            raise InputError(f"source {offer.source!r} is not a key of 'references'", file=path,
                             field=f"offers.{i}.source")
        for key in [k for k in TIER_FIELDS if getattr(offer, k) is not None]:
            ref = offer.sources.get(key)
            if ref not in sheet.references:
                raise InputError("figure has no source (add its reference key under "
                                 "'sources')" if ref is None else
                                 f"source {ref!r} is not a key of 'references'", file=path,
                                 field=f"offers.{i}.sources.{key}")
    for i, own in enumerate(sheet.owned):
        if own.gpu not in known_gpus:
            raise InputError(unknown_name_message("GPU", own.gpu, known_gpus), file=path,
                             field=f"owned.{i}.gpu")
        if own.source not in sheet.references:
            raise InputError(f"source {own.source!r} is not a key of 'references'", file=path,
                             field=f"owned.{i}.source")
    return sheet


def load_catalog(root: str | Path | None = None) -> Catalog:
    """Load `gpus.yaml` and every `prices/*.yaml` under `root` (default: bundled catalogs)."""
    root = Path(root) if root is not None else catalogs_dir()
    gpus, references = load_gpus(root / "gpus.yaml")
    sheets = {}
    for p in sorted((root / "prices").glob("*.yaml")):
        sheet = load_price_sheet(p, gpus)
        sheets[sheet.name] = sheet
    return Catalog(gpus=gpus, references=references, price_sheets=sheets)


__all__ = ["GPU", "Offer", "OwnedHardware", "PriceSheet", "TIER_FIELDS", "Catalog", "load_catalog", "load_gpus",
           "load_price_sheet", "DTYPES"]
