"""The inventory's owned GPUs in a schedule's baselines and report.

Owned nodes (`Node.owned`) are a committed baseline held in every slot at their owned price
(`tiers.py`), used or not; the schedule MILP holds them (`formulation.py`). The baselines
pay them too:
- a static fleet (the peak and mean plans, solved at on-demand prices) runs on them first:
  of each owned GPU type, its GPUs up to the owned count are the owned ones, at their
  price, and owned GPUs it leaves idle are still paid;
- the reactive autoscaler rents on-demand as it does without them and pays the owned GPUs
  besides (its replicas change by the minute; which of them the owned GPUs would carry is
  not tracked);
- the lower bound holds them in every slot, as the schedule does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hetplan.candidates import Candidate
from hetplan.plan import Plan, Pool
from hetplan.schedule.tiers import GpuTiers


def held_usd_per_hour(tiers: Mapping[str, GpuTiers]) -> float:
    """$/h of all owned GPUs."""
    return sum(t.owned_gpus * t.owned_usd_per_hour for t in tiers.values() if t.owned_gpus)


def static_credit_usd_per_hour(tiers: Mapping[str, GpuTiers], plan: Plan,
                               price: Callable[[Pool], float]) -> float:
    """$/h a static fleet changes by with the owned GPUs: of each owned type, its GPUs up
    to the owned count at the owned price instead of `price(pool)` per GPU, and the owned
    GPUs it leaves idle paid (0.0 without owned GPUs)."""
    out = 0.0
    for g, t in sorted(tiers.items()):
        if not t.owned_gpus:
            continue
        pools = [p for p in plan.pools if p.gpu == g and p.gpus > 0]
        gpus = sum(p.gpus for p in pools)
        mean = sum(p.gpus * price(p) for p in pools) / gpus if gpus else 0.0
        out += t.owned_gpus * t.owned_usd_per_hour - min(gpus, t.owned_gpus) * mean
    return out


def owned_notes(tiers: Mapping[str, GpuTiers], candidates: Sequence[Candidate]) -> list[str]:
    """The owned GPUs' figures and how the baselines count them, for the report (none
    without owned GPUs)."""
    held = [(g, t) for g, t in sorted(tiers.items()) if t.owned_gpus]
    if not held:
        return []
    unused = [g for g, _ in held if not any(c.shape.gpu == g for c in candidates)]
    return ["owned nodes (inventory): " + "; ".join(
        f"{g}: {t.owned_gpus} GPUs at ${t.owned_usd_per_hour:.4g}/GPU-hour ("
        + ("power only: the sheet has no owned capex for it, taken as sunk"
           if t.owned_capex_sunk else "capex amortized + power") + ")" for g, t in held)
        + "; paid in every slot, used or not",
        "baselines with owned GPUs: a static fleet runs on them first (its GPUs of an "
        "owned type up to the owned count at the owned price; idle owned GPUs paid); "
        "the reactive autoscaler rents on-demand and pays the owned GPUs besides; the "
        "lower bound holds them in every slot"] + (
        [f"owned GPUs with no candidate in the schedule (paid, idle): {', '.join(unused)}"]
        if unused else [])
