"""Plots of plans and what-if studies, as PNG bytes: SLO frontier and Pareto grid, cost
breakdown per pool, golden-ratio heatmap, latency CDFs.

Deterministic: figures are built with `matplotlib.figure.Figure` on the Agg canvas (no
pyplot, so a notebook's backend is left alone), at fixed sizes and dpi, and saved with no
'Software' entry in the PNG metadata (Agg writes no timestamp), so the same data gives the
same bytes. The data each plot draws comes from a tested function (`compare.frontier`,
`whatif.slo_grid`, `whatif.price_shock`, `Plan.pool_costs`, `whatif.golden_ratio_grid`,
`simulate.metrics.latencies_ms`); these functions only draw.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hetplan.enums import Role
from hetplan.plan import Plan
from hetplan.simulate.engine import RunResult
from hetplan.simulate.metrics import latencies_ms

DPI = 100
ROLE_HATCH = {Role.PREFILL: "//", Role.DECODE: "", Role.COLOCATED: "xx"}
CDF_POINTS = 1000


def _esc(text: str) -> str:
    """Show '$' literally (matplotlib reads a pair of '$' as mathtext)."""
    return text.replace("$", r"\$")


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def frontier_png(rows: Sequence[dict], vary: str) -> bytes:
    """`compare.frontier` rows: $/M tokens vs the varied SLO target (or served req/s vs
    budget); infeasible factors are left out."""
    ok = [r for r in rows if r["cost_usd_per_hour"] is not None]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    if vary == "budget":
        ax.plot([r["budget_usd_per_hour"] for r in ok], [r["served_rps"] for r in ok], "o-")
        ax.set_xlabel(r"budget (\$/h)")
        ax.set_ylabel("served requests/s")
    else:
        key = "tpot_ms" if vary == "tpot" else "ttft_ms"
        ax.plot([r[key] for r in ok], [r["usd_per_million_tokens"] for r in ok], "o-")
        ax.set_xlabel(f"{'TPOT' if vary == 'tpot' else 'TTFT'} target (ms)"
                      + (" (TPOT scaled alike)" if vary == "slo" else ""))
        ax.set_ylabel(r"\$ per million tokens")
    ax.set_title("hetplan frontier")
    ax.grid(True, alpha=0.3)
    return png_bytes(fig)


def slo_pareto_png(rows: Sequence[dict], title: str = "cost vs SLO targets") -> bytes:
    """`whatif.slo_grid` rows: $/h vs TPOT target (one line per TTFT target) and vs TTFT
    target (one line per TPOT target); Pareto-optimal points ringed in black."""
    ok = [r for r in rows if r["cost_usd_per_hour"] is not None]
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, (x, line) in zip(axes, (("tpot_ms", "ttft_ms"), ("ttft_ms", "tpot_ms"))):
        for v in sorted({r[line] for r in ok}):
            pts = sorted((r[x], r["cost_usd_per_hour"]) for r in ok if r[line] == v)
            ax.plot(*zip(*pts), "o-", ms=4, label=f"{line.split('_')[0].upper()} <= {v:g} ms")
        par = [r for r in ok if r.get("pareto")]
        ax.scatter([r[x] for r in par], [r["cost_usd_per_hour"] for r in par], s=110,
                   facecolors="none", edgecolors="black", lw=1.2, label="Pareto", zorder=3)
        ax.set_xscale("log")
        ticks = sorted({r[x] for r in ok})
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.minorticks_off()
        ax.set_xlabel(f"{x.split('_')[0].upper()} target (ms, p{_pct(rows)})")
        ax.set_ylabel(r"cost (\$/h)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(_esc(title))
    fig.tight_layout()
    return png_bytes(fig)


def price_shock_png(rows: Sequence[dict]) -> bytes:
    """`whatif.price_shock` rows: $/M tokens vs price factor (left) and the shocked GPU's
    share of the plan's $/h (right), one line per GPU."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for g in sorted({r["gpu"] for r in rows}):
        pts = sorted((r["factor"], r["usd_per_million_tokens"],
                      r["cost_by_type"].get(g, 0.0) / r["cost_usd_per_hour"])
                     for r in rows if r["gpu"] == g and r["cost_usd_per_hour"] is not None)
        if pts:
            f, usd, share = zip(*pts)
            axes[0].plot(f, usd, "o-", ms=4, label=g)
            axes[1].plot(f, share, "o-", ms=4, label=g)
    axes[0].set_ylabel(r"\$ per million tokens (in+out)")
    axes[1].set_ylabel(r"that GPU's share of the plan's \$/h")
    axes[1].set_ylim(-0.03, 1.03)
    for ax in axes:
        ax.set_xlabel("price factor of one GPU (others unchanged)")
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("price shock: one GPU's price moves, the planner re-solves")
    fig.tight_layout()
    return png_bytes(fig)


def _pct(rows: Sequence[dict]) -> str:
    p = {r.get("percentile") for r in rows} - {None}
    return f"{p.pop():g}" if len(p) == 1 else "q"


def cost_breakdown_png(plans: Mapping[str, Plan], title: str = "cost per pool") -> bytes:
    """One stacked bar per plan: each segment a pool's $/h, coloured by GPU, hatched by
    role (prefill //, decode plain, colocated xx), labelled with replicas x TP."""
    segments = {label: plan.pool_costs() for label, plan in plans.items()}
    gpus = sorted({p["gpu"] for rows in segments.values() for p in rows})
    cmap = {g: f"C{i % 10}" for i, g in enumerate(gpus)}
    fig = Figure(figsize=(max(5.0, 1.6 * len(plans) + 3), 4.5))
    ax = fig.subplots()
    top = max((pl.cost_usd_per_hour for pl in plans.values()), default=1.0) or 1.0
    for x, rows in enumerate(segments.values()):
        base = 0.0
        for p in rows:
            cost = p["cost_usd_per_hour"]
            ax.bar(x, cost, bottom=base, width=0.6, color=cmap[p["gpu"]],
                   hatch=ROLE_HATCH.get(p["role"], ""), edgecolor="black", lw=0.6)
            if cost > 0.06 * top:
                ax.text(x, base + cost / 2, f"{p['role'][0].upper()} {p['replicas']}x "
                        f"tp{p['tp']}", ha="center", va="center", fontsize=7,
                        bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
            base += cost
        ax.text(x, base, rf"\${base:,.1f}/h", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(plans)), [_esc(k) for k in plans], fontsize=8)
    ax.set_ylabel(r"cost (\$/h)")
    ax.set_ylim(0, top * 1.12)
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=cmap[g], edgecolor="black", label=g) for g in gpus]
    handles += [Patch(facecolor="white", edgecolor="black", hatch=h, label=r)
                for r, h in ROLE_HATCH.items()
                if any(p["role"] == r for rows in segments.values() for p in rows)]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(_esc(title))
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def ratio_heatmap_png(grid, value: str = "prefill_cost_share",
                      title: str = "P:D golden ratio") -> bytes:
    """`whatif.RatioGrid`: colour = `value` (prefill_cost_share or prefill_gpu_share, 0-1),
    each cell annotated with its P:D GPU ratio and $/M tokens; grey = no feasible plan."""
    z = getattr(grid, value)
    fig = Figure(figsize=(1.5 * len(grid.output_tokens) + 3, 0.8 * len(grid.input_tokens) + 2))
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(z), origin="lower", cmap="viridis", vmin=0, vmax=1,
                   aspect="auto")
    ax.set_facecolor("#d0d0d0")
    for i in range(len(grid.input_tokens)):
        for j in range(len(grid.output_tokens)):
            txt = ("no plan" if np.isnan(z[i, j]) else
                   f"{grid.golden_ratio[i][j]}\n\\${grid.usd_per_million_tokens[i, j]:.2f}/M")
            dark = np.isnan(z[i, j]) or z[i, j] > 0.6
            ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                    color="black" if dark else "white")
    ax.set_xticks(range(len(grid.output_tokens)), [str(o) for o in grid.output_tokens])
    ax.set_yticks(range(len(grid.input_tokens)), [str(n) for n in grid.input_tokens])
    ax.set_xlabel("output tokens per request")
    ax.set_ylabel("prompt tokens per request")
    fig.colorbar(im, ax=ax, label=value.replace("_", " "))
    ttft = (f"; TTFT >= {grid.ttft_ms_per_1k_input:g} ms per 1k prompt tokens"
            if grid.ttft_ms_per_1k_input else "")
    ax.set_title(f"{_esc(title)}: cells show P:D GPUs and \\$/M tokens at "
                 f"{grid.tokens_per_second:,.0f} tok/s{ttft}", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def latency_cdf_png(runs: Mapping[str, RunResult], slo: dict) -> bytes:
    """TTFT, TPOT and end-to-end CDFs of one or more simulator runs (`RunResult`s keyed by
    label; an empty label draws no legend entry), SLO targets and percentile marked."""
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    qs = np.linspace(0, 100, CDF_POINTS)
    for label, res in runs.items():
        ttft, tpot, e2e, ok = latencies_ms(res)
        for ax, x in zip(axes, (ttft[ok], tpot[ok & ~np.isnan(tpot)], e2e[ok])):
            if x.size:
                ax.plot(np.percentile(x, qs), qs / 100, lw=1.6, label=label or None)
    for ax, (name, target) in zip(axes, (("TTFT", slo.get("ttft_ms")),
                                         ("TPOT", slo.get("tpot_ms")), ("end to end", None))):
        if target:
            ax.axvline(target, color="tab:red", ls="--", lw=1, label=f"SLO {target:g} ms")
            ax.axhline(slo.get("percentile", 90) / 100, color="grey", ls=":", lw=1)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel(f"{name} (ms)")
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of requests")
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def cdf_png(res: RunResult, slo: dict) -> bytes:
    """TTFT, TPOT and E2E CDFs of one run (PNG bytes), SLO targets marked."""
    return latency_cdf_png({"": res}, slo)


PLAN_PLOTS = ("cost_breakdown.png", "slo_frontier.png")   # what write_plan_plots may write


def write_plan_plots(out: Path, plan: Plan, frontier_rows: Sequence[dict] | None = None
                     ) -> list[Path]:
    """What `hetplan solve --plots` writes: cost_breakdown.png, and slo_frontier.png when
    frontier rows are given. Returns the paths written."""
    from hetplan.io import write_bytes_atomic

    paths = [out / PLAN_PLOTS[0]]
    write_bytes_atomic(paths[0], cost_breakdown_png({plan.scenario: plan},
                                                    f"{plan.scenario}: cost per pool"))
    if frontier_rows:
        paths.append(out / PLAN_PLOTS[1])
        write_bytes_atomic(paths[1], frontier_png(frontier_rows, "slo"))
    return paths
