"""The schedule MILP's U(n) rows (`curve_rows._size_rows`: a binary per replica count)
against `milp.pool_sizing`'s incremental binaries they replaced: for every replica count
the same largest load, which is U(n) exactly up to the exact steps and its linear lower
bound beyond, and the same LP relaxation at fractional counts."""

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
