"""schedule.png: demand vs capacity per pool over the horizon, one panel per stage (the
first stage: prefill and colocated pools; the decode stage: decode and colocated pools;
every request passes both; one panel when all pools are colocated). Capacity per slot is
stacked by pool and tier (colour = GPU, hatch = tier), in req/s at the target utilization
(`slots.slot_pools`), against the slot's demand.

Deterministic like `hetplan.plots` (Figure on the Agg canvas, fixed size and dpi, no
'Software' metadata); the data comes from `slots.slot_pools`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hetplan.plots import _esc, png_bytes
from hetplan.schedule.slots import slot_pools

if TYPE_CHECKING:
    from hetplan.schedule.plan import ScheduleResult

TIER_HATCH = {"committed": "", "on_demand": "//", "spot": ".."}
STAGES = (("first stage (prefill + colocated)", ("prefill", "colocated")),
          ("decode stage (decode + colocated)", ("decode", "colocated")))


def schedule_png(r: ScheduleResult) -> bytes:
    slots = slot_pools(r)
    gpus = sorted({sp.gpu for row in slots for sp in row})
    colour = {g: f"C{i % 10}" for i, g in enumerate(gpus)}
    hours = r.profile.starts_s / 3600.0
    width = r.profile.lengths_s / 3600.0
    demand = r.profile.total_rps
    roles_used = {sp.role for row in slots for sp in row}
    stages = ([("all stages (colocated pools)", ("colocated",))] if roles_used == {"colocated"}
              else list(STAGES))
    fig = Figure(figsize=(10, 3.2 * len(stages) + 0.6))
    axes = np.atleast_1d(fig.subplots(len(stages), 1, sharex=True))
    keys = sorted({(sp.pool, sp.gpu, k) for row in slots for sp in row for k in sp.capacity_rps})
    for ax, (title, roles) in zip(axes, stages):
        base = np.zeros(len(slots))
        for pool, gpu, tier in keys:
            h = np.array([next((sp.capacity_rps.get(tier, 0.0) for sp in row
                                if sp.pool == pool and sp.role in roles), 0.0) for row in slots])
            if not h.any():
                continue
            ax.bar(hours, h, width=width, bottom=base, align="edge", color=colour[gpu],
                   hatch=TIER_HATCH.get(tier, ""), edgecolor="black", lw=0.4)
            base += h
        ax.step(np.append(hours, hours[-1] + width[-1]), np.append(demand, demand[-1]),
                where="post", color="black", lw=1.6, label="demand")
        ax.set_ylim(0.0, 1.08 * max(float(base.max()), float(demand.max())))
        ax.set_ylabel("req/s")
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    axes[-1].set_xlabel("hour of the horizon")
    handles = [Patch(facecolor=colour[g], edgecolor="black", label=g) for g in gpus]
    handles += [Patch(facecolor="white", edgecolor="black", hatch=TIER_HATCH[k],
                      label=k.replace("_", "-")) for k in TIER_HATCH
                if any(k == t for _, _, t in keys)]
    handles.append(axes[0].lines[0])
    fig.suptitle(f"capacity schedule: {_esc(r.scenario)}", y=0.99, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.95),
               ncol=min(len(handles), 8), fontsize=8, frameon=False)
    return png_bytes(fig)
