"""A scenario is resolved once: `solve --validate` (plan, simulate, re-plan) generates its
workload a single time, and the SLO the plan is sized at is the resolved scenario's."""

from __future__ import annotations

import pytest

import hetplan.simulate.workload as sim_workload
import hetplan.workload as workload
from hetplan.catalog import load_catalog
from hetplan.enums import Role, SolveStatus
from hetplan.planner import plan_scenario, prepare
from hetplan.scenario import load_scenario
from hetplan.simulate.repair import solve_validated

SMALL = """
model: llama-3.1-8b
workload:
  synthetic: {arrival: {process: poisson, rate_rps: 2.0},
              input_tokens: {dist: fixed, value: 512}, output_tokens: {dist: fixed, value: 64},
              duration_s: 60, seed: 0}
slo: {ttft_ms: 1000, tpot_ms: 50, percentile: 90}
catalog: {gpus: [H100-SXM, L40S], prices: 2026-04-17-seed}
"""


def test_validate_generates_the_workload_once(write, monkeypatch):
    calls = []
    real = workload.generate

    def counted(spec):
        calls.append(spec)
        return real(spec)

    monkeypatch.setattr(workload, "generate", counted)            # load_workload's lookup
    monkeypatch.setattr(sim_workload, "generate", counted)        # the simulator's
    cat = load_catalog()
    rs = load_scenario(write("small.yaml", SMALL), cat)
    assert len(calls) == 1
    plan, val = solve_validated(rs, cat, max_rounds=2)
    assert val.rounds and len(calls) == 1
    assert val.report.requests == rs.trace.num_requests


def test_the_slo_has_one_source(write):
    cat = load_catalog()
    rs = load_scenario(write("small.yaml", SMALL), cat)
    loose = rs.derive(slo=rs.slo.model_copy(update={"tpot_ms": 200.0}))
    ctx = prepare(loose, cat)
    assert ctx.scenario.slo.tpot_ms == 200.0
    # candidates are sized at the derived SLO: a looser one leaves at least as many useful
    tight_ctx = prepare(rs, cat)
    assert sum(c.useful for c in ctx.candidates) >= sum(c.useful for c in tight_ctx.candidates)
    plan = plan_scenario(loose, cat)
    assert plan.slo["tpot_ms"] == 200.0
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert all(isinstance(p.role, Role) for p in plan.pools)
    assert '"status": "optimal"' in plan.to_json() or '"status": "feasible"' in plan.to_json()


def test_a_variant_cannot_change_what_was_loaded(write):
    rs = load_scenario(write("small.yaml", SMALL), load_catalog())
    for field in ("model", "workload", "inventory", "base_dir"):
        with pytest.raises(ValueError, match=field):
            rs.derive(**{field: getattr(rs.scenario, field)})
