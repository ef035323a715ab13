"""Solve a LinearProgram with PuLP (HiGHS or CBC) or OR-Tools (SCIP).

OR-Tools and highspy each bundle a HiGHS shared library under the same soname, and loading
both into one process breaks whichever comes second. OR-Tools therefore runs in a child
process (`python -m hetplan.milp.ortools_worker`) that never imports highspy; the program
travels as JSON. All backends run single-threaded so repeated solves give the same plan.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time

from hetplan.enums import Solver, SolveStatus
from hetplan.errors import InputError
from hetplan.milp.lp import INF, LinearProgram, Solution

SOLVERS = tuple(Solver)


def solve(lp: LinearProgram, solver: str = "highs", time_limit_s: float = 60.0,
          deadline: float | None = None, min_limit_s: float = 0.0) -> Solution:
    """Solve `lp` within `time_limit_s`. With a `deadline` (a `time.perf_counter()`
    instant) the limit is also at most the time left to it once the solver starts (HiGHS:
    after PuLP has built its model, ~2 s for the week's schedule MILP), and no less than
    `min_limit_s`."""
    if solver == Solver.HIGHS:
        return _solve_pulp(lp, "highs", time_limit_s, deadline, min_limit_s)
    if deadline is not None:
        time_limit_s = _limit(time_limit_s, deadline, min_limit_s)
    if solver == Solver.CBC:
        return _solve_pulp(lp, "cbc", time_limit_s)
    if solver in (Solver.ORTOOLS, "ortools-scip", "scip"):
        return _solve_ortools(lp, time_limit_s)
    raise InputError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}",
                     field="--solver")


def _limit(time_limit_s: float, deadline: float, min_limit_s: float) -> float:
    return min(time_limit_s, max(min_limit_s, deadline - time.perf_counter()))


def _solve_pulp(lp: LinearProgram, which: str, time_limit_s: float,
                deadline: float | None = None, min_limit_s: float = 0.0) -> Solution:
    import pulp

    prob = pulp.LpProblem("hetplan", pulp.LpMaximize if lp.maximize else pulp.LpMinimize)
    xs = [pulp.LpVariable(f"v{i}", lowBound=None if v.lb == -INF else v.lb,
                          upBound=None if v.ub == INF else v.ub,
                          cat=pulp.LpInteger if v.integer else pulp.LpContinuous)
          for i, v in enumerate(lp.vars)]
    prob += pulp.lpSum(c * xs[i] for i, c in lp.objective.items())
    for j, c in enumerate(lp.constraints):
        expr = pulp.lpSum(coef * xs[i] for i, coef in c.terms.items())
        rel = {"<=": expr <= c.rhs, ">=": expr >= c.rhs, "==": expr == c.rhs}[c.sense]
        prob += rel, f"c{j}"
    t0 = time.perf_counter()
    # the limit HiGHS runs under, set when it starts, and that instant (for _classify)
    ran = {"limit_s": time_limit_s, "at": t0}
    if which == "highs":
        cmd = _highs_with_start(pulp, xs, lp.start, deadline, min_limit_s, ran)(
            msg=False, timeLimit=time_limit_s, threads=1, mip_rel_gap=lp.mip_rel_gap,
            **lp.highs_options)
    else:
        cmd = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, threads=1, gapRel=lp.mip_rel_gap)
    try:
        with _quiet_stdout():
            prob.solve(cmd)
    except pulp.PulpSolverError as e:
        return Solution(SolveStatus.ERROR, None, [], which, message=str(e))
    elapsed = time.perf_counter() - t0
    values = [x.value() if x.value() is not None else math.nan for x in xs]
    has_values = all(not math.isnan(v) for v in values) and len(values) > 0
    status = pulp.LpStatus[prob.status]
    gap, bound = None, None
    if which == "highs" and getattr(prob, "solverModel", None) is not None:
        info = prob.solverModel.getInfo()
        gap = float(info.mip_gap) if math.isfinite(info.mip_gap) else None
        bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else None
        model_status = prob.solverModel.modelStatusToString(prob.solverModel.getModelStatus())
        if "Time limit" in model_status or "Interrupted" in model_status:
            status = "TimeLimit"        # (interrupted: only by _stop_before)
    return _classify(status, has_values, values, lp, which, gap, bound, elapsed,
                     ran["at"] - t0 + ran["limit_s"])


def lp_relaxation(lp: LinearProgram, drop: str | None = None
                  ) -> tuple[float, list[float], list[float]] | None:
    """The LP relaxation of a minimization `lp` by HiGHS (highspy, single-threaded): its
    optimal value, column values and reduced costs; None unless solved to optimality.
    Rows of family `drop` are left out (a weaker relaxation of the same program)."""
    return relax_from(lp, drop=drop)[0]


Basis = tuple[dict[str, object], dict[str, object]]   # column / row name -> HiGHS status


def relax_from(lp: LinearProgram, warm: Basis | None = None, drop: str | None = None
               ) -> tuple[tuple[float, list[float], list[float]] | None, Basis | None]:
    """`lp_relaxation`, started from `warm` (the optimal basis of a related program, by
    column and row names; HiGHS completes it where the programs differ, as an alien
    basis), and the optimal basis of this one (None with no optimum)."""
    import highspy
    import numpy as np

    if lp.maximize:
        raise ValueError("lp_relaxation is for minimization programs")
    with _quiet_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    inf = highspy.kHighsInf
    n = len(lp.vars)
    h.addVars(n, np.array([-inf if v.lb == -INF else v.lb for v in lp.vars]),
              np.array([inf if v.ub == INF else v.ub for v in lp.vars]))
    cost = np.zeros(n)
    for i, c in lp.objective.items():
        cost[i] = c
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    rows = [c for c in lp.constraints if drop is None or c.family != drop]
    for c in rows:
        lo, hi = {"<=": (-inf, c.rhs), ">=": (c.rhs, inf), "==": (c.rhs, c.rhs)}[c.sense]
        h.addRow(lo, hi, len(c.terms), np.fromiter(c.terms, dtype=np.int32, count=len(c.terms)),
                 np.fromiter(c.terms.values(), dtype=float, count=len(c.terms)))
    if warm is not None:
        _set_basis(h, highspy, lp, rows, warm)
    with _quiet_stdout():
        h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None, None
    sol, basis = h.getSolution(), h.getBasis()
    names = ({v.name: s for v, s in zip(lp.vars, basis.col_status)},
             {c.name: s for c, s in zip(rows, basis.row_status)})
    return (h.getInfo().objective_function_value, list(sol.col_value),
            list(sol.col_dual)), names


def _set_basis(h, highspy, lp: LinearProgram, rows, warm: Basis) -> None:
    """Hand h the statuses `warm` gives lp's columns and rows: new columns nonbasic at
    their lower bound, new rows basic (their slack); HiGHS repairs the rest (alien)."""
    cols, old_rows = warm
    at_lower, basic = highspy.HighsBasisStatus.kLower, highspy.HighsBasisStatus.kBasic
    b = highspy.HighsBasis()
    b.col_status = [cols.get(v.name, at_lower) for v in lp.vars]
    b.row_status = [old_rows.get(c.name, basic) for c in rows]
    b.alien = True
    b.valid = True
    h.setBasis(b)


def _highs_with_start(pulp, xs, start: dict[int, float] | None, deadline: float | None,
                      min_limit_s: float, ran: dict[str, float]):
    """PuLP's HiGHS class, handing the model `start` (LinearProgram.start) as a first
    incumbent when given (PuLP itself has no warm start for HiGHS) and, with a `deadline`,
    setting its time limit (`_limit`) when it starts, noted in `ran`."""
    if not start and deadline is None:
        return pulp.HiGHS

    class HiGHSWithStart(pulp.HiGHS):
        def callSolver(self, prob):
            if deadline is not None:
                ran["at"] = time.perf_counter()
                ran["limit_s"] = _limit(ran["limit_s"], deadline, min_limit_s)
                prob.solverModel.setOptionValue("time_limit", float(ran["limit_s"]))
                prob.solverModel.cbMipInterrupt.subscribe(
                    _stop_before(ran["at"] + ran["limit_s"], ran["at"]))
            super().callSolver(prob)

        def buildSolverModel(self, prob):
            super().buildSolverModel(prob)
            if not start:
                return
            import highspy
            col = [0.0] * len(xs)
            for i, x in enumerate(xs):
                col[x.index] = float(start.get(i, 0.0))
            sol = highspy.HighsSolution()
            sol.col_value = col
            sol.value_valid = True
            prob.solverModel.setSolution(sol)

    return HiGHSWithStart


def _stop_before(end: float, started: float, clock=time.perf_counter):
    """A HiGHS MIP-interrupt callback that stops the solve at the last of its checks from
    which the longest stretch it has gone between two of them (counted from `started`)
    would end past `end`. HiGHS checks its time limit at the same points only, and on the
    week's schedule MILP a root cut round ran ~6 s between two (33 s before
    `curve_rows`' one-binary rows): past its limit by as much."""
    seen = {"last": started, "longest": 0.0}

    def check(event) -> None:
        now = clock()
        seen["longest"] = max(seen["longest"], now - seen["last"])
        seen["last"] = now
        if now + seen["longest"] > end:
            event.interrupt()

    return check


_QUIET_LOCK = threading.Lock()
_quiet = {"depth": 0, "saved": -1}     # solves silencing fd 1 now, and the fd it had


@contextlib.contextmanager
def _quiet_stdout():
    """Silence file descriptor 1 while a solver runs (it was asked for msg=False).

    highspy >= 1.16 prints a banner from C when a model is created, before `msg=False`
    can silence it; on stdout it would corrupt `--json` output. Solves may overlap in
    threads (`staged.py`): the first to start silences fd 1, the last to end restores it.
    """
    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            sys.stdout.flush()
            _quiet["saved"] = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                sys.stdout.flush()
                os.dup2(_quiet["saved"], 1)
                os.close(_quiet["saved"])


def _classify(status: str, has_values: bool, values, lp, solver, gap, bound, elapsed,
              limit) -> Solution:
    obj = sum(c * values[i] for i, c in lp.objective.items()) if has_values else None
    if status == "Optimal" and elapsed < limit * 0.98:
        return Solution(SolveStatus.OPTIMAL, obj, values, solver, gap=gap if gap is not None else 0.0,
                        bound=bound, time_s=elapsed)
    if status in ("Optimal", "Not Solved", "TimeLimit") and has_values and _feasible(lp, values):
        return Solution(SolveStatus.FEASIBLE, obj, values, solver, gap=gap, bound=bound, time_s=elapsed,
                        message="time limit reached; best plan found")
    if status == "Infeasible":
        return Solution(SolveStatus.INFEASIBLE, None, [], solver, time_s=elapsed)
    if status == "Unbounded":
        return Solution(SolveStatus.UNBOUNDED, None, [], solver, time_s=elapsed)
    return Solution(SolveStatus.NO_SOLUTION, None, [], solver, time_s=elapsed,
                    message=f"solver status {status}")


def _feasible(lp: LinearProgram, values: list[float], tol: float = 1e-5) -> bool:
    for c in lp.constraints:
        lhs = sum(coef * values[i] for i, coef in c.terms.items())
        scale = max(1.0, abs(c.rhs))
        if (c.sense == "<=" and lhs > c.rhs + tol * scale) or \
           (c.sense == ">=" and lhs < c.rhs - tol * scale) or \
           (c.sense == "==" and abs(lhs - c.rhs) > tol * scale):
            return False
    return True


def _solve_ortools(lp: LinearProgram, time_limit_s: float) -> Solution:
    payload = json.dumps({"lp": lp.to_dict(), "time_limit_s": time_limit_s})
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hetplan.milp.ortools_worker"], input=payload,
                          capture_output=True, text=True, timeout=time_limit_s + 60)
    if proc.returncode != 0:
        return Solution(SolveStatus.ERROR, None, [], "ortools", message=proc.stderr.strip()[-500:])
    out = json.loads(proc.stdout)
    values = out["values"]
    sol = _classify(out["status"], bool(values), values, lp, "ortools-scip", out.get("gap"),
                    out.get("bound"), out.get("time_s", time.perf_counter() - t0), time_limit_s)
    return sol
