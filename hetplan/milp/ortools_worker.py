"""Child process for the OR-Tools backend: reads {"lp": ..., "time_limit_s": ...} as JSON on
stdin, solves with SCIP through pywraplp, prints {"status", "values", "gap", "bound"}.
Runs apart from the main process so OR-Tools' bundled HiGHS never meets highspy's."""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from ortools.linear_solver import pywraplp

    req = json.load(sys.stdin)
    lp, limit = req["lp"], float(req["time_limit_s"])
    s = pywraplp.Solver.CreateSolver("SCIP")
    s.SetNumThreads(1)
    s.SetTimeLimit(int(limit * 1000))
    inf = s.infinity()
    xs = []
    for name, lb, ub, integer in lp["vars"]:
        lo = -inf if lb is None else lb
        hi = inf if ub is None else ub
        xs.append(s.IntVar(lo, hi, name) if integer else s.NumVar(lo, hi, name))
    for name, terms, sense, rhs in lp["constraints"]:
        lo, hi = {"<=": (-inf, rhs), ">=": (rhs, inf), "==": (rhs, rhs)}[sense]
        c = s.Constraint(lo, hi, name)
        for i, coef in terms:
            c.SetCoefficient(xs[i], coef)
    obj = s.Objective()
    for i, coef in lp["objective"]:
        obj.SetCoefficient(xs[i], coef)
    obj.SetMaximization() if lp["maximize"] else obj.SetMinimization()
    t0 = time.perf_counter()
    r = s.Solve()
    elapsed = time.perf_counter() - t0
    status = {s.OPTIMAL: "Optimal", s.FEASIBLE: "TimeLimit", s.INFEASIBLE: "Infeasible",
              s.UNBOUNDED: "Unbounded"}.get(r, "Not Solved")
    values = [x.solution_value() for x in xs] if r in (s.OPTIMAL, s.FEASIBLE) else []
    gap = bound = None
    if values:
        bound = obj.BestBound()
        val = obj.Value()
        gap = 0.0 if r == s.OPTIMAL else abs(val - bound) / max(1e-9, abs(val))
    json.dump({"status": status, "values": values, "gap": gap, "bound": bound,
               "time_s": elapsed}, sys.stdout)


if __name__ == "__main__":
    main()
