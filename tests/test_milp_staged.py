"""Staged solving of queueing-sized programs (hetplan/milp/staged.py): the same optimum as
the full program, a fixing rule that never leaves out a candidate of an optimal plan, and
an honest gap when the time limit stops it."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from hetplan.enums import SolveStatus
from hetplan.milp import backends, solve_problem, staged
from hetplan.milp.backends import lp_relaxation
from hetplan.milp.formulation import Formulation
from hetplan.milp.lp import Solution
from hetplan.milp.staged import _opening_cost, _replica_caps, parts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bench_solve import instance  # noqa: E402


@pytest.mark.parametrize("gpus,classes,seed", [(5, 8, 0), (5, 8, 1), (6, 6, 2)])
def test_staged_finds_the_full_programs_optimum(gpus, classes, seed):
    p = instance(gpus, classes, seed=seed, sizing="queueing")
    full = solve_problem(p, "highs", 120, staged=False)
    staged = solve_problem(p, "highs", 120, staged=True)
    assert full.solution.status == staged.solution.status == "optimal"
    assert staged.solution.objective == pytest.approx(full.solution.objective, rel=1e-6)
    # the plan is one of the full program: every class's demand served in both phases
    for phase in ("prefill", "decode"):
        for w in p.classes:
            served = sum(ch.rates.get(w.name, 0.0) for ch in staged.chosen
                         if ch.candidate.role in (phase, "colocated"))
            assert served == pytest.approx(w.rate_rps, rel=1e-5)


@pytest.mark.parametrize("flow_rows", [False, True])
def test_fixing_rule_keeps_every_candidate_of_the_optimum(flow_rows):
    """LB + opening cost is a lower bound of any plan using the candidate: it never
    exceeds the optimum for the candidates the optimal plan uses, and does exceed it for
    some others (what the stages leave out)."""
    p = instance(5, 8, seed=1, sizing="queueing")
    opt = solve_problem(p, "highs", 120, staged=False)
    f = Formulation(p, flow_rows=flow_rows)
    lb, values, reduced = lp_relaxation(f.lp)
    assert lb <= opt.solution.objective + 1e-6
    used = {ch.candidate.key for ch in opt.chosen}
    bound = {c.key: lb + _opening_cost(f, i, reduced) for i, c in enumerate(p.candidates)}
    assert all(bound[k] <= opt.solution.objective * (1 + 1e-6) for k in used)
    assert any(b > opt.solution.objective for b in bound.values())
    # the replica caps of the same argument hold the optimal plan and do tighten bounds
    caps = _replica_caps(f, values, reduced, lb, opt.solution.objective * (1 + 1e-6), {})
    assert all(ch.replicas <= caps.get(ch.candidate.key, ch.replicas) for ch in opt.chosen)
    assert any(caps[c.key] < f.ub[i] for i, c in enumerate(p.candidates) if c.key in caps)


def test_parts_hold_one_vendor_of_prefill_and_decode_each():
    p = instance(5, 8, sizing="queueing")
    split = parts(p)
    assert len(split) == 3                      # the instance's three vendors
    colocated = [c for c in p.candidates if c.role == "colocated"]
    for cands in split:
        assert len({c.vendor for c in cands if c.role != "colocated"}) == 1
        assert [c for c in cands if c.role == "colocated"] == colocated
    assert sum(len(c) for c in split) == len(p.candidates) + 2 * len(colocated)
    assert len(parts(replace(p, allow_cross_vendor=True))) == 1


def test_flow_rows_tighten_the_relaxation_only():
    p = instance(5, 8, seed=1, sizing="queueing")
    plain = lp_relaxation(Formulation(p).lp)[0]
    tight = lp_relaxation(Formulation(p, flow_rows=True).lp)[0]
    opt = solve_problem(p, "highs", 120, staged=False).solution.objective
    assert plain < tight <= opt + 1e-6


def test_time_limited_staged_run_returns_a_plan_with_its_gap():
    p = instance(20, 32, sizing="queueing")
    out = solve_problem(p, "highs", 4.0, staged=True, warn=False)
    assert out.solution.status in ("feasible", "optimal")
    assert out.chosen
    sol = out.solution
    assert sol.bound is not None and sol.bound <= sol.objective + 1e-6
    if sol.status == "feasible":
        assert sol.gap is not None and sol.gap > 0
        assert sol.gap == pytest.approx((sol.objective - sol.bound) / sol.objective, rel=1e-3)
        assert "time limit" in sol.message


def test_parts_in_threads_give_the_plan_of_one_at_a_time(monkeypatch):
    """Parts finished at once (threads) against the first plan's cost give the plan and
    bound that finishing them one after another does: each part's work depends on that
    cost only, and the results are merged in part order."""
    p = instance(5, 8, sizing="queueing")
    finished = []
    finish = staged._finish
    monkeypatch.setattr(staged, "_finish", lambda *job: finished.append(1) or finish(*job))
    both = solve_problem(p, "highs", 120, staged=True)
    assert len(finished) > 1                    # more than one part went to the threads
    # the fixing does work on the bench instance (else the optimum test proves little)
    assert len(both.formulation.p.candidates) < len(p.candidates) / 2
    monkeypatch.setattr(staged, "PART_WORKERS", 1)
    one = solve_problem(p, "highs", 120, staged=True)
    assert both.solution.status == one.solution.status == "optimal"
    assert both.solution.objective == one.solution.objective
    assert both.solution.bound == one.solution.bound
    assert [(ch.candidate.key, ch.replicas, ch.rates) for ch in both.chosen] == \
        [(ch.candidate.key, ch.replicas, ch.rates) for ch in one.chosen]


def test_overlapping_quiet_solves_restore_stdout():
    """Solves overlapping in threads silence fd 1 while any runs and restore it after the
    last: here the first in ends first (a thread restoring the copy it saved on entry
    would leave the second's /dev/null behind)."""
    before = os.fstat(1)
    null = os.stat(os.devnull)
    inside = [threading.Event(), threading.Event()]
    leave = [threading.Event(), threading.Event()]

    def hold(k):
        with backends._quiet_stdout():
            inside[k].set()
            leave[k].wait()

    threads = [threading.Thread(target=hold, args=(k,)) for k in range(2)]
    for k, t in enumerate(threads):
        t.start()
        inside[k].wait()
    during = os.fstat(1)
    for k, t in enumerate(threads):
        leave[k].set()
        t.join()
    after = os.fstat(1)
    assert (during.st_rdev, during.st_ino) == (null.st_rdev, null.st_ino)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_flow_relaxation_from_the_first_relaxations_basis():
    """The relaxation with flow rows over fewer candidates, started from the first
    relaxation's basis (other columns and rows: an alien basis HiGHS completes), reaches
    the optimum a cold start does."""
    p = instance(5, 8, seed=1, sizing="queueing")
    first, basis = backends.relax_from(Formulation(p).lp)
    keep = [c for i, c in enumerate(p.candidates) if i % 3]       # columns and rows differ
    tight = Formulation(replace(p, candidates=keep), flow_rows=True)
    cold, _ = backends.relax_from(tight.lp)
    warm, warm_basis = backends.relax_from(tight.lp, basis)
    assert warm[0] == pytest.approx(cold[0], rel=1e-9)
    assert warm[0] > first[0]                   # the flow rows (and fewer columns) tighten
    assert set(warm_basis[0]) == {v.name for v in tight.lp.vars}


def test_overall_status_uses_the_programs_gap_not_the_first_plans():
    """The first plan's search stops within PLAN_REL_GAP; when that plan stays the best,
    the status still compares the proven gap with the program's own (1e-6)."""
    p = instance(5, 8, sizing="queueing")
    f = Formulation(p)
    f.lp.mip_rel_gap = staged.PLAN_REL_GAP
    sol = Solution(SolveStatus.OPTIMAL, 100.0, [0.0] * len(f.lp.vars), "highs")
    best = staged._Best(100.0, f, sol)
    loose = staged._overall(best, [99.5], 1e-6)          # 0.5% gap: below PLAN_REL_GAP
    assert loose.status == SolveStatus.FEASIBLE and loose.gap == pytest.approx(0.005)
    assert staged._overall(best, [100.0, 101.0], 1e-6).status == SolveStatus.OPTIMAL
