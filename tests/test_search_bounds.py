"""Search spaces bounded by sense: PP is enumerated only as far as layers, available GPUs and
KV saturation allow; pruning dominated candidates never changes the MILP's optimum; a
time-limited solve with a large gap says so on stderr in one line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import hetplan.milp.solve as milp_solve
from hetplan.candidates import (Candidate, ClassCapacity, colocated_capacity, decode_capacity,
                                prefill_capacity, shapes_for)
from hetplan.catalog import load_catalog
from hetplan.milp import Problem, solve_problem
from hetplan.milp.lp import Solution
from hetplan.milp.prune import dominates, prune_dominated
from hetplan.model import load_model
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.scenario import SLO
from hetplan.workload import single_class

GPUS = {"G1": ("nvidia", 2.0), "G2": ("nvidia", 3.5), "G3": ("amd", 2.5)}


def random_problem(seed: int, objective: str) -> Problem:
    """Per GPU and role: TP 1/2 x weight dtype x KV dtype, capacities correlated so that
    some variants dominate others (fp8 a bit faster, TP2 about 1.7x TP1) and some do not."""
    rng = np.random.default_rng(seed)
    classes = [single_class(f"w{i}", float(rng.uniform(0.5, 3.0)), 512 * (i + 1), 256)
               for i in range(2)]
    cands = []
    for (g, (vendor, price)), role in itertools.product(GPUS.items(),
                                                        ("prefill", "decode", "colocated")):
        base = {w.name: float(rng.uniform(0.5, 2.0)) for w in classes}
        for tp, wd, kd in itertools.product((1, 2), ("bf16", "fp8"), ("bf16", "fp8")):
            gain = tp ** float(rng.uniform(0.6, 1.1)) * (float(rng.uniform(0.95, 1.4))
                                                          if wd == "fp8" else 1.0)
            per = {w: ClassCapacity(c * gain * float(rng.uniform(0.9, 1.1)))
                   for w, c in base.items() if rng.random() > 0.1}
            cands.append(Candidate(ReplicaShape(g, tp, 1, wd, kd), role, vendor, price * tp,
                                   per))
    kvb = {(d, w.name): 2e6 * w.mean_input_tokens for d in ("bf16", "fp8") for w in classes}
    n1 = {g: {1: 3, 2: 2} for g in GPUS} if seed % 2 else None
    return Problem(candidates=cands, classes=classes, utilization=0.8,
                   availability={"G1": int(rng.integers(4, 12)), "G2": 6},
                   budget_usd_per_hour=30.0 if objective == "max_goodput" else None,
                   kv_bytes_per_request=kvb, kv_link_bytes_per_s=float(rng.uniform(2e8, 2e9)),
                   objective=objective, n_plus_one_nodes=n1,
                   usable_share={"G1": 0.9} if seed % 3 == 0 else None,
                   decode_utilization=0.9 if seed % 2 else None)


@pytest.mark.parametrize("objective", ["min_cost", "max_goodput"])
def test_pruning_keeps_the_optimum(objective):
    removed = 0
    for seed in range(6):
        p = random_problem(seed, objective)
        full = solve_problem(p, prune=False)
        pruned = solve_problem(p, prune=True)
        removed += len(p.candidates) - len(pruned.formulation.p.candidates)
        assert full.solution.status == pruned.solution.status == "optimal"
        assert pruned.solution.objective == pytest.approx(full.solution.objective, rel=1e-6,
                                                          abs=1e-6)
    assert removed > 0            # the instances do exercise the rule


def test_pruning_keeps_the_optimum_of_a_real_scenario():
    from hetplan.planner import prepare, problem_for
    from hetplan.scenario import load_scenario
    cat = load_catalog()
    ctx = prepare(load_scenario("workloads/default.yaml", cat), cat)
    p = problem_for(ctx)
    full, pruned = solve_problem(p, prune=False), solve_problem(p, prune=True)
    assert len(pruned.formulation.p.candidates) < len(p.candidates)
    assert pruned.solution.objective == pytest.approx(full.solution.objective, rel=1e-9)


def test_dominance_rule():
    def c(role, tp=1, wd="bf16", kd="bf16", price=2.0, cap=1.0, gpu="G1", pp=1):
        return Candidate(ReplicaShape(gpu, tp, pp, wd, kd), role, "nvidia", price,
                         {"w": ClassCapacity(cap)})
    assert dominates(c("decode", wd="fp8", cap=1.2), c("decode"), ["w"])
    assert not dominates(c("decode", cap=0.9), c("decode"), ["w"])            # less capacity
    assert not dominates(c("decode", price=2.1, cap=2), c("decode"), ["w"])   # costs more
    assert not dominates(c("prefill", cap=2), c("decode"), ["w"])             # other role
    assert not dominates(c("decode", gpu="G2", cap=2), c("decode"), ["w"])    # other GPU
    assert not dominates(c("decode", kd="fp8", cap=2), c("decode"), ["w"])    # P/D: KV dtype
    # fewer GPUs: fine for colocated, not for P/D (fewer NICs for the KV hand-off)
    assert dominates(c("colocated", cap=2), c("colocated", tp=2, price=4.0), ["w"])
    assert not dominates(c("decode", cap=2), c("decode", tp=2, price=4.0), ["w"])
    assert not dominates(c("colocated", tp=2, cap=2), c("colocated", pp=2), ["w"])  # wider TP
    # ties keep exactly one, the first
    a, b = c("decode"), c("decode", wd="fp8")
    b = Candidate(b.shape, "decode", "nvidia", 2.0, {"w": ClassCapacity(1.0)})
    assert prune_dominated([a, b], ["w"]) == [a]
    assert prune_dominated([b, a], ["w"]) == [b]


# ---- PP bounds ------------------------------------------------------------------------

def test_pp_bounded_by_layers_and_available_gpus():
    cat = load_catalog()
    pm = PerfModel(load_model("llama-3.1-8b"), cat)
    layers = pm.model.num_layers
    shapes, dropped = shapes_for(pm, ["H100-SXM"], 2, 200, ["bf16"], ["bf16"])
    assert max(s.pp for s in shapes) == layers
    assert not any("exceeds" in d and "layers" in d for d in dropped)   # not even tried
    shapes, dropped = shapes_for(pm, ["H100-SXM"], 2, 200, ["bf16"], ["bf16"],
                                 gpus_available={"H100-SXM": 6})
    assert {(s.tp, s.pp) for s in shapes} == {(1, p) for p in range(1, 7)} | {
        (2, p) for p in range(1, 4)}
    assert "H100-SXM TP2: PP above 3 not tried (only 6 H100-SXM GPUs are available)" in dropped


def test_pp_stops_at_kv_saturation_where_more_stages_only_add_gpus():
    cat = load_catalog()
    pm = PerfModel(load_model("llama-3.1-70b"), cat)
    w = single_class("w", 2.0, 4000, 1000)
    ctx = w.mean_input_tokens + w.mean_output_tokens
    shapes, dropped = shapes_for(pm, ["L40S"], 2, 64, ["fp8"], ["fp8"], context_tokens=ctx)
    top = max(s.pp for s in shapes if s.tp == 2)
    assert 1 < top < 64
    sat = ReplicaShape("L40S", 2, top, "fp8", "fp8")
    assert pm.max_decode_batch(sat, ctx) >= pm.limits.max_num_seqs
    assert pm.max_decode_batch(ReplicaShape("L40S", 2, top - 1, "fp8", "fp8"),
                               ctx) < pm.limits.max_num_seqs
    assert any(d.startswith(sat.label()) and f"PP above {top} not tried" in d for d in dropped)
    # the claim behind the bound: one more stage adds GPUs and no capacity in any role
    more = ReplicaShape("L40S", 2, top + 1, "fp8", "fp8")
    slo = SLO(ttft_ms=30000, tpot_ms=1000)
    for fn in (lambda s: prefill_capacity(pm, s, w, slo, "ib-400g", False),
               lambda s: decode_capacity(pm, s, w, slo),
               lambda s: colocated_capacity(pm, s, w, slo)):
        assert fn(sat).capacity_rps > 0
        assert fn(more).capacity_rps <= fn(sat).capacity_rps


# ---- gap warning ----------------------------------------------------------------------

def test_gap_warning_text():
    sol = Solution("feasible", 10.0, [], "highs", gap=0.793)
    msg = milp_solve.gap_warning(sol, 60.0, 1234)
    assert "\n" not in msg and "79.3% gap" in msg and "60 s time limit" in msg
    assert milp_solve.gap_warning(Solution("feasible", 1.0, [], "cbc"), 5, 1) is not None
    assert milp_solve.gap_warning(Solution("feasible", 1.0, [], "highs", gap=0.001), 5, 1) \
        is None
    assert milp_solve.gap_warning(Solution("optimal", 1.0, [], "highs", gap=0.0), 5, 1) is None


def test_time_limited_solve_warns_on_stderr(monkeypatch, capsys):
    p = random_problem(0, "min_cost")
    real = milp_solve.solve

    def stopped_early(lp, solver, time_limit_s):
        sol = real(lp, solver, time_limit_s)
        return Solution("feasible", sol.objective, sol.values, sol.solver, gap=0.42)

    monkeypatch.setattr(milp_solve, "solve", stopped_early)
    out = solve_problem(p, "highs", 7.0)
    assert out.solution.status == "feasible"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "42.0% gap" in err[0] and "7 s time limit" in err[0]
