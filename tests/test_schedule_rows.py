"""The schedule MILP's U(n) rows (`curve_rows._size_rows`: a binary per replica count)
against `milp.pool_sizing`'s incremental binaries they replaced: for every replica count
the same largest load, which is U(n) exactly up to the exact steps and its linear lower
bound beyond, and the same LP relaxation at fractional counts; and a deadline honoured."""

from __future__ import annotations

import pytest

from hetplan.milp.backends import lp_relaxation, solve
from hetplan.milp.lp import LinearProgram
from hetplan.milp.pool_sizing import add_curve_capacity
from hetplan.schedule.curve_rows import _size_rows, truncated
from hetplan.slo_capacity import PoolCurve

# convex (pooling) like the planner's curves: U(1) well below the later increments
CURVE = PoolCurve((0.0, 0.16, 0.62, 1.2, 1.84, 2.53, 3.25), 0.8)
UB = 9


def _most_load(rows: str, k: int, n: float, relaxed: bool) -> float:
    """The largest load the rows allow on a pool of exactly `n` replicas (`relaxed`: in
    the LP relaxation, where n may be fractional)."""
    lp = LinearProgram()
    total = lp.add_var("N", n, n)
    load = lp.add_var("load", 0.0, 100.0)
    cap = truncated(CURVE, k)
    if rows == "choice":
        _size_rows(lp, "c", total, {load: 1.0}, cap, UB)
    else:
        add_curve_capacity(lp, "c", total, {load: 1.0}, cap, 1.0, UB)
    lp.objective = {load: -1.0}
    if relaxed:
        got = lp_relaxation(lp)
        assert got is not None
        return -got[0]
    sol = solve(lp, "highs", 10.0)
    assert sol.status == "optimal"
    return -sol.objective


@pytest.mark.parametrize("k", [1, 3, 6])
def test_choice_rows_hold_the_same_load_as_the_incremental_rows(k):
    cap = truncated(CURVE, k)
    for n in range(UB + 1):
        want = cap.at(n)                    # U(n) up to k, the linear lower bound past it
        assert want <= CURVE.at(n) + 1e-12
        assert _most_load("choice", k, n, False) == pytest.approx(want, abs=1e-7)
        assert _most_load("incremental", k, n, False) == pytest.approx(want, abs=1e-7)
    for n in (0.5, 1.7, k - 0.4, k + 0.6, UB - 0.3):
        assert _most_load("choice", k, n, True) == pytest.approx(
            _most_load("incremental", k, n, True), abs=1e-7)


# ---- the schedule MILP's deadline (`backends.solve(deadline=...)`) ----------------------
def test_highs_stops_at_its_last_check_before_a_deadline():
    """`_stop_before` interrupts at the first check from which the longest stretch seen
    between two checks (a root cut round) would end past the deadline."""
    from hetplan.milp.backends import _stop_before

    class Event:
        stopped = False

        def interrupt(self):
            self.stopped = True

    now = [0.0]
    check = _stop_before(10.8, 0.0, clock=lambda: now[0])
    stops = []
    for t in (1.0, 1.5, 6.0, 6.4):         # longest stretch 4.5 s: 6.4 + 4.5 > 10.8
        now[0] = t
        e = Event()
        check(e)
        stops.append(e.stopped)
    assert stops == [False, False, False, True]


def test_a_milp_with_a_deadline_returns_by_it_feasible_with_its_gap():
    """A knapsack HiGHS does not close in 20 s, given 30 s but a deadline 1 s away: it
    returns by the deadline with its incumbent, as feasible with a gap, never optimal."""
    import time

    import numpy as np
    rng = np.random.default_rng(0)
    lp = LinearProgram()
    x = [lp.add_var(f"x[{i}]", 0, 1, integer=True) for i in range(60)]
    w = rng.integers(20, 100, size=(5, 60))
    for j in range(5):
        lp.add_constraint(f"cap[{j}]", {x[i]: float(w[j, i]) for i in range(60)}, "<=",
                          float(w[j].sum() // 2))
    value = w.sum(axis=0) + rng.integers(0, 10, size=60)
    lp.objective = {x[i]: -float(value[i]) for i in range(60)}
    t0 = time.perf_counter()
    sol = solve(lp, "highs", 30.0, deadline=t0 + 1.0)
    assert time.perf_counter() - t0 < 1.5
    assert sol.status == "feasible" and sol.gap is not None and sol.gap > 0
