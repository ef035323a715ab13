"""Purchase tiers per GPU from a price sheet: on-demand, spot (with its interruption rate)
and committed (reserved term price, or owned hardware amortized and powered).

Per tier the cheapest offer of the sheet wins, as `planner.offer_terms` does for on-demand.
Owned GPUs cost capex / (years x 8760 h) + TDP x PUE x $/kWh per hour (`ScheduleSpec`).
A GPU has at most one committed price: the cheaper of reserved and owned.

Owned nodes of the scenario's inventory (`Node.owned`) are GPUs already held: they exist in
every slot and are paid whether they serve or not, a committed baseline apart from what the
schedule buys (`owned_gpus`, at `owned_usd_per_hour`). Their price is the sheet's owned
entry for the GPU (the cheapest capex where several) amortized plus power; where the sheet
has none, power alone (capex sunk: `owned_capex_sunk`). They are held whatever `spec.tiers`
lists: tiers say what may be bought, and these are held already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hetplan.catalog import Catalog
from hetplan.schedule.spec import ScheduleSpec

HOURS_PER_YEAR = 8_760.0


@dataclass(frozen=True)
class GpuTiers:
    """$/GPU-hour per tier (None: the tier is not offered or not asked for)."""

    gpu: str
    on_demand_usd_per_hour: float | None
    spot_usd_per_hour: float | None
    spot_preemptions_per_hour: float
    spot_rate_published: bool          # False: the spec's assumption
    committed_usd_per_hour: float | None
    committed_tier: str | None         # "reserved" | "owned"
    owned_gpus: int = 0                # on the inventory's owned nodes (held every slot)
    owned_usd_per_hour: float | None = None   # per owned GPU (None: no owned GPUs)
    owned_capex_sunk: bool = False     # the sheet has no owned capex: power alone

    def to_dict(self) -> dict:
        return {"gpu": self.gpu, "on_demand_usd_per_hour": self.on_demand_usd_per_hour,
                "spot_usd_per_hour": self.spot_usd_per_hour,
                "spot_preemptions_per_hour": self.spot_preemptions_per_hour,
                "spot_rate": "published" if self.spot_rate_published else "assumed",
                "committed_usd_per_hour": self.committed_usd_per_hour,
                "committed_tier": self.committed_tier} | ({
                    "owned_gpus": self.owned_gpus,
                    "owned_usd_per_hour": self.owned_usd_per_hour,
                    "owned_capex": "sunk" if self.owned_capex_sunk else "amortized"}
                    if self.owned_gpus else {})


def owned_usd_per_hour(capex_usd_per_gpu: float, tdp_w: float, spec: ScheduleSpec) -> float:
    """Hourly cost of an owned GPU: amortized capex plus its power (TDP x PUE)."""
    return (capex_usd_per_gpu / (spec.amortization_years * HOURS_PER_YEAR)
            + tdp_w / 1000.0 * spec.pue * spec.power_usd_per_kwh)


def power_usd_per_hour(tdp_w: float, spec: ScheduleSpec) -> float:
    """Hourly power of one GPU at its TDP x PUE (an owned GPU whose capex is sunk)."""
    return owned_usd_per_hour(0.0, tdp_w, spec)


def gpu_tiers(catalog: Catalog, sheet: str, gpus: Sequence[str], spec: ScheduleSpec,
              owned: dict[str, int] | None = None) -> dict[str, GpuTiers]:
    """Tier prices of `gpus` (and of every GPU in `owned`) in price sheet `sheet`, limited
    to `spec.tiers`; `owned`: GPU -> GPUs on owned inventory nodes (module docstring)."""
    ps = catalog.price_sheet(sheet)
    want = set(spec.tiers)
    owned = owned or {}
    out: dict[str, GpuTiers] = {}
    for g in sorted(set(gpus) | set(owned)) if owned else gpus:
        offers = [o for o in ps.offers if o.gpu == g]
        od = min((o.price_usd_per_hour for o in offers), default=None)
        spots = sorted((o for o in offers if o.spot_price_usd_per_hour is not None),
                       key=lambda o: o.spot_price_usd_per_hour)
        spot, rate, published = None, spec.spot_preemptions_per_hour, False
        if spots and "spot" in want:
            offer = spots[0]
            spot = offer.spot_price_usd_per_hour
            if offer.spot_preemptions_per_hour is not None:
                rate, published = offer.spot_preemptions_per_hour, True
        committed: list[tuple[float, str]] = []
        if "reserved" in want:
            committed += [(o.reserved_price_usd_per_hour, "reserved") for o in offers
                          if o.reserved_price_usd_per_hour is not None]
        if "owned" in want:
            tdp = catalog.gpu(g).tdp_w
            committed += [(owned_usd_per_hour(h.capex_usd_per_gpu, tdp, spec), "owned")
                          for h in ps.owned if h.gpu == g]
        best = min(committed, default=(None, None))
        out[g] = GpuTiers(g, od if "on_demand" in want else None, spot, rate, published,
                          best[0], best[1], *_held(catalog, ps.owned, g, owned.get(g, 0), spec))
    return out


def _held(catalog: Catalog, sheet_owned, g: str, n: int, spec: ScheduleSpec
          ) -> tuple[int, float | None, bool]:
    """(owned GPUs, $/h each, capex sunk) of GPU g with n GPUs on owned nodes."""
    if n <= 0:
        return 0, None, False
    tdp = catalog.gpu(g).tdp_w
    capex = min((h.capex_usd_per_gpu for h in sheet_owned if h.gpu == g), default=None)
    if capex is None:
        return n, power_usd_per_hour(tdp, spec), True
    return n, owned_usd_per_hour(capex, tdp, spec), False
