"""The schedule's slots solved alone (`schedule/decompose.py`) in batches give what the
stage-by-stage solves give, repeated slots solved once give what each solved alone gives,
and a budget caps the schedule MILP's limit. Tiny problems: the file runs in a few seconds."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from hetplan.parallel import INLINE
from hetplan.schedule import formulation
from hetplan.schedule.decompose import (decompose, lower_bound_usd, relaxed_guess, slot_alone,
                                        slot_plans, solve_slots)
from hetplan.schedule.formulation import ScheduleProblem, solve_schedule
from hetplan.schedule.tiers import GpuTiers


def _problem(rates, pool_cost: float = 0.0) -> ScheduleProblem:
    from test_schedule import _cand
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, 1.2, "reserved"),
             "G2": GpuTiers("G2", 1.5, 0.6, 0.2, False, None, None)}
    c1, c2 = _cand("G1", 1.25), _cand("G2", 1.0)
    return ScheduleProblem(
        candidates=[c1, c2], class_names=("w",), rates_rps=np.array(rates, dtype=float)[:, None],
        slot_hours=np.ones(len(rates)), rho={c1.key: 0.8, c2.key: 0.9}, tiers=tiers,
        warmup_h={c1.key: 0.1, c2.key: 0.05}, spot_loss_h=0.1, max_step_replicas=1,
        max_spot_share=0.5, pool_cost_usd_per_hour=pool_cost)


def _digest(outs) -> list:
    return [(o.replicas, o.committed_gpus, o.cost_usd) for o in outs]


def test_repeated_slots_are_solved_once_and_match_each_slot_alone():
    p = _problem([1.0, 2.5, 1.0, 2.5, 1.0 + 1e-12])     # 2 distinct demands (to 1e-9)
    calls = []

    class Counting:
        def calls(self, jobs, **kw):
            calls.append(len(jobs))
            return INLINE.calls(jobs, **kw)

    shared = solve_slots(p, "highs", 30, Counting())
    assert calls == [2]
    alone = [solve_schedule(slot_alone(p, t), "highs", 30) for t in range(p.num_slots)]
    assert _digest(shared) == _digest(alone)


def test_batched_slots_give_the_stage_by_stage_bound_envelope_and_stacks():
    p = _problem([1.0, 2.5, 0.5], pool_cost=0.5)
    dec = decompose(p, "highs", 30, INLINE)
    lb, bound_slots = lower_bound_usd(p, "highs", 30)
    assert dec.lower_bound_usd == pytest.approx(lb, abs=1e-9) and lb > 0
    assert _digest(dec.bound_slots) == _digest(bound_slots)
    env = solve_schedule(slot_alone(replace(p, rates_rps=p.rates_rps.max(axis=0)[None, :]), 0),
                         "highs", 30)
    assert _digest([dec.envelope]) == _digest([env])
    # the stacks: the slots with the relaxation's committed GPUs fixed, paying a pool for
    # their hour (slot_plans), then for the whole horizon
    guess, subsets = relaxed_guess(p)
    narrow = replace(p, candidates=subsets[0])
    assert len(dec.stacks) == 2
    assert _digest(dec.stacks[0]) == _digest(slot_plans(narrow, "highs", 30, guess))
    horizon = replace(narrow, pool_cost_usd_per_hour=3 * p.pool_cost_usd_per_hour)
    assert _digest(dec.stacks[1]) == _digest(slot_plans(horizon, "highs", 30, guess))


@pytest.mark.parametrize("left_s,limit_s,want_s", [
    (100.0, 30.0, 30.0),                                       # the time limit comes first
    (12.0, 30.0, 12.0),                                        # the deadline does
    (-5.0, 30.0, formulation.MIN_DEADLINE_LIMIT_S)])           # past: the floor
def test_a_deadline_caps_the_schedule_milps_limit(monkeypatch, left_s, limit_s, want_s):
    """The time limit HiGHS runs under, read from it as it starts (after PuLP has built
    the model, which counts against the deadline)."""
    import pulp
    seen = []
    real = pulp.HiGHS.callSolver

    def spy(self, prob):
        seen.append(prob.solverModel.getOptionValue("time_limit")[1])
        return real(self, prob)

    monkeypatch.setattr(pulp.HiGHS, "callSolver", spy)
    out = solve_schedule(_problem([1.0, 2.5]), "highs", limit_s,
                         deadline=time.perf_counter() + left_s)
    assert out.solution.has_solution
    assert seen[0] == pytest.approx(want_s, abs=0.5)


def test_cli_budget_is_checked_before_any_solve(tmp_path):
    from cli_harness import run_main
    from test_schedule import SCENARIO
    sc = tmp_path / "tiny.yaml"
    sc.write_text(SCENARIO)
    res = run_main("schedule", str(sc), "--budget", "0")
    assert res.code == 2, res.err + res.tb
    assert "--budget" in res.err and len(res.err.strip().splitlines()) == 1


def test_rho_sized_stack_is_raised_to_a_start_feasible_under_the_curves():
    """Under queueing sizing the decomposition's slots are solved on the rho row (starts
    only); `stacked_start` raises them until every pool carries its routed load under U(n)
    (`repair_capacity`), so the stack is a feasible start of the curve-sized MILP, which
    never ends above it."""
    from test_schedule import CURVES, DOWN

    from hetplan.schedule.formulation import ScheduleFormulation, stacked_start, start_cost
    from hetplan.schedule.starts import implied_start, repair_steps
    rho = _problem([0.5, 2.5, 1.0, 2.0])
    p = replace(rho, curves={c.key: CURVES[c.shape.gpu] for c in rho.candidates},
                down_curves={c.key: DOWN[c.shape.gpu] for c in rho.candidates})
    slots = solve_slots(rho, "highs", 30, INLINE)
    f = ScheduleFormulation(p)
    raw = {var: float(slots[t].replicas.get((p.candidates[i].key, k), [0])[0])
           for (i, k, t), var in f.n.items()}
    raw |= {var: slots[t].solution.values[slots[t].formulation.x[i, w, 0]]
            for (i, w, t), var in f.x.items()}
    steps_only = dict(raw)
    repair_steps(f, steps_only)
    assert start_cost(f, implied_start(f, steps_only)) is None    # premise: short under U
    start = stacked_start(f, slots)
    cost = start_cost(f, start)
    assert cost is not None and all(start[v] >= raw[v] for v in f.n.values())
    assert solve_schedule(p, start_slots=slots).solution.objective <= cost + 1e-6
