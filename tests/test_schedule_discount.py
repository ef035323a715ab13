"""The reserved-discount sweep (hetplan.schedule.discount, notebooks/05_schedule): on a
small schedule, a deeper discount never costs more and serves more of the GPU-hours on
committed GPUs. The plot is drawn by the notebook, which the suite executes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hetplan.candidates import Candidate, ClassCapacity
from hetplan.perf import ReplicaShape
from hetplan.schedule.discount import discount_sweep, reserved_at_discount
from hetplan.schedule.formulation import ScheduleProblem, solve_schedule
from hetplan.schedule.tiers import GpuTiers


def _problem() -> ScheduleProblem:
    """A 6-slot day on two GPU types (on-demand 2.0 and 1.5 $/h, G2 with spot)."""
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, 1.9, "reserved"),
             "G2": GpuTiers("G2", 1.5, 0.6, 0.2, False, None, None)}
    cands = [Candidate(ReplicaShape(g), "colocated", "nvidia", 1.0, {"w": ClassCapacity(c)})
             for g, c in (("G1", 1.25), ("G2", 1.0))]
    rates = np.array([[0.5], [1.0], [3.0], [4.0], [2.0], [1.0]])
    p = ScheduleProblem(candidates=cands, class_names=("w",), rates_rps=rates,
                        slot_hours=np.full(6, 4.0), rho={c.key: 0.8 for c in cands},
                        tiers=tiers, warmup_h={c.key: 0.1 for c in cands},
                        max_step_replicas=2, max_step_share=0.5, max_spot_share=0.5)
    return p


def _result():
    """The problem solved, as the part of a ScheduleResult the sweep reads."""
    return SimpleNamespace(outcome=solve_schedule(_problem()), curves=None,   # utilization
                           down_curves=None)


def test_reserved_price_follows_the_discount():
    t = reserved_at_discount(_problem().tiers, 0.4)
    assert t["G1"].committed_usd_per_hour == pytest.approx(1.2)
    assert t["G2"].committed_usd_per_hour == pytest.approx(0.9)
    assert {x.committed_tier for x in t.values()} == {"reserved"}
    with pytest.raises(ValueError, match="outside"):
        reserved_at_discount(t, 1.0)


def test_deeper_discount_costs_no_more_and_commits_more():
    rows = discount_sweep(_result(), [0.0, 0.3, 0.6, 0.9], time_limit_s=10)
    assert all(r["status"] == "optimal" for r in rows)
    cost = [r["horizon_cost_usd"] for r in rows]
    # a schedule at a discount stays feasible at a deeper one and costs no more there
    assert all(b <= a + 1e-6 for a, b in zip(cost, cost[1:]))
    assert rows[-1]["committed_gpu_h_share"] > rows[0]["committed_gpu_h_share"]
    for r in rows:
        parts = r["committed_usd"] + r["on_demand_usd"] + r["spot_usd"] + r["warmup_usd"]
        assert r["horizon_cost_usd"] == pytest.approx(parts)
        assert 0.0 <= r["committed_gpu_h_share"] <= 1.0 and r["committed_idle_gpu_h"] >= -1e-9
