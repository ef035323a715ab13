"""Committed vs burst capacity as the reserved discount varies (notebooks/05_schedule).

Each GPU's committed price is set to its on-demand price x (1 - discount), a reserved
term at that discount (replacing the sheet's reserved or owned figure), and the schedule
MILP of a solved schedule is re-solved over the same candidates, profile and terms. The
candidates were nominated at the sheet's prices (`plan.choose_candidates`), so a discount
far from the sheet's may favour shapes the sweep does not offer: each row is the best
schedule over those candidates, not a fresh plan. A schedule sized by queueing is topped
up at each discount as `plan_schedule` tops it up (`sizing.with_top_up`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hetplan.schedule.formulation import solve_schedule
from hetplan.schedule.plan import ScheduleResult
from hetplan.schedule.sizing import with_top_up
from hetplan.schedule.tiers import GpuTiers


def reserved_at_discount(tiers: dict[str, GpuTiers], discount: float) -> dict[str, GpuTiers]:
    """`tiers` with every on-demand-priced GPU committable at on-demand x (1 - discount)."""
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"discount {discount} outside [0, 1)")
    return {g: replace(t, committed_usd_per_hour=t.on_demand_usd_per_hour * (1.0 - discount),
                       committed_tier="reserved")
            if t.on_demand_usd_per_hour is not None else t for g, t in tiers.items()}


def discount_sweep(result: ScheduleResult, discounts: Sequence[float], *,
                   solver: str = "highs", time_limit_s: float = 10.0) -> list[dict]:
    """One row per discount: the schedule's cost over the horizon by component, its
    committed GPUs, and the share of GPU-hours they serve."""
    p = result.outcome.formulation.p
    hours = float(p.slot_hours.sum())
    gpus_of = {c.key: c.num_gpus for c in p.candidates}
    rows = []
    for d in discounts:
        out = solve_schedule(replace(p, tiers=reserved_at_discount(p.tiers, d)), solver,
                             time_limit_s)
        if not out.solution.has_solution:
            rows.append({"discount": d, "status": str(out.solution.status)})
            continue
        out, _ = with_top_up(out, result.curves, result.down_curves)
        gpu_h = {k: 0.0 for k in ("committed", "on_demand", "spot")}
        for (key, tier), counts in out.replicas.items():
            gpu_h[tier] += gpus_of[key] * sum(n * h for n, h in zip(counts, p.slot_hours))
        committed = sum(out.committed_gpus.values())
        rows.append({
            "discount": d, "horizon_cost_usd": float(out.total_cost_usd),
            **{f"{k}_usd": float(v) for k, v in out.cost_usd.items()},
            "committed_gpus": committed,
            "committed_mix": ", ".join(f"{n}x {g}" for g, n in sorted(
                out.committed_gpus.items())) or "none",
            "committed_gpu_h_share": float(gpu_h["committed"] / max(sum(gpu_h.values()),
                                                                     1e-9)),
            "committed_idle_gpu_h": float(committed * hours - gpu_h["committed"]),
            "status": str(out.solution.status), "gap": out.solution.gap})
    return rows


def discount_png(rows: Sequence[dict], title: str = "committed vs burst") -> bytes:
    """Stacked cost over the horizon (committed, burst = on-demand + spot + warm-ups) and
    the committed GPUs, against the reserved discount."""
    from matplotlib.figure import Figure

    from hetplan.plots import png_bytes
    ok = [r for r in rows if "horizon_cost_usd" in r]
    x = [100 * r["discount"] for r in ok]
    committed = [r["committed_usd"] + r.get("owned_usd", 0.0) for r in ok]
    burst = [r["on_demand_usd"] + r["spot_usd"] + r["warmup_usd"]
             + r.get("queueing_top_up_usd", 0.0) for r in ok]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    width = 0.8 * (min(b - a for a, b in zip(x, x[1:])) if len(x) > 1 else 10.0)
    ax.bar(x, committed, width, label="committed (and owned)" if any(
        "owned_usd" in r for r in ok) else "committed", color="tab:blue")
    ax.bar(x, burst, width, bottom=committed, label="on-demand + spot + warm-ups",
           color="tab:orange", hatch="//")
    ax.set_xlabel("reserved discount off on-demand (%)")
    ax.set_ylabel(r"schedule cost over the horizon (\$)")
    ax2 = ax.twinx()
    ax2.plot(x, [r["committed_gpus"] for r in ok], "ko-", label="committed GPUs")
    ax2.set_ylabel("committed GPUs")
    ax2.set_ylim(bottom=0)
    ax.set_xticks(x)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3,
              fontsize=8)
    fig.subplots_adjust(bottom=0.24, right=0.88)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return png_bytes(fig)
