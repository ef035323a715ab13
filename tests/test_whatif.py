"""What-if library: in-memory price overrides, fixed-length classes, the P:D grid against
individual solves, SLO grids (monotone cost, Pareto set), GPU-restricted plans."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hetplan import whatif as W
from hetplan.catalog import load_catalog
from hetplan.errors import InputError
from hetplan.io import catalogs_dir, workloads_dir
from hetplan.planner import plan_scenario
from hetplan.scenario import load_scenario


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


@pytest.fixture(scope="module")
def default(cat):
    return load_scenario(workloads_dir() / "default.yaml", cat)


def test_scale_price_is_a_copy_and_leaves_catalog_files_alone(cat):
    sheet = catalogs_dir() / "prices" / "2026-11-market.yaml"
    before = sheet.read_bytes()
    c2 = W.scale_price(cat, "2026-11-market", "H100-SXM", 1.5)
    for a, b in zip(cat.offers("2026-11-market"), c2.offers("2026-11-market")):
        assert b.price_usd_per_hour == pytest.approx(
            a.price_usd_per_hour * (1.5 if a.gpu == "H100-SXM" else 1.0))
        if a.spot_price_usd_per_hour:
            assert b.spot_price_usd_per_hour == pytest.approx(
                a.spot_price_usd_per_hour * (1.5 if a.gpu == "H100-SXM" else 1.0))
    assert cat.cheapest_price_usd_per_hour("2026-11-market", "H100-SXM") == 2.50
    assert sheet.read_bytes() == before
    assert load_catalog().cheapest_price_usd_per_hour("2026-11-market", "H100-SXM") == 2.50


@pytest.mark.parametrize("args", [("2026-11-market", "H100-SXM", 0.0),
                                  ("2026-11-market", "H100-SXN", 1.0),
                                  ("no-such-sheet", "H100-SXM", 1.0),
                                  ("2026-04-17-seed", "MI300X", 1.0)])
def test_scale_price_rejects_bad_input(cat, args):
    with pytest.raises(InputError):
        W.scale_price(cat, *args)


def test_fixed_classes_rate_from_token_throughput():
    (c,) = W.fixed_classes(1000, 250, tokens_per_second=10_000)
    assert c.rate_rps == pytest.approx(8.0)
    assert (c.mean_input_tokens, c.p90_output_tokens) == (1000, 250)
    with pytest.raises(InputError):
        W.fixed_classes(1000, 250)
    with pytest.raises(InputError):
        W.fixed_classes(0, 250, rate_rps=1.0)


def test_price_shock_baseline_and_bounds(cat, default):
    rows = W.price_shock(default, cat, ["H100-SXM"], [2.0, 0.5, 1.0])
    assert [r["factor"] for r in rows] == [0.5, 1.0, 2.0]
    base = plan_scenario(default, cat)
    cost = [r["cost_usd_per_hour"] for r in rows]
    assert cost[1] == pytest.approx(base.cost_usd_per_hour)
    # An optimum cannot fall when a price rises, nor more than scale with it.
    assert cost[0] <= cost[1] <= cost[2] <= 2.0 * cost[1] + 1e-6
    assert cost[0] >= 0.5 * cost[1] - 1e-6
    assert rows[2]["price_usd_per_hour"] == pytest.approx(2 * 2.57)
    for r in rows:
        assert sum(r["gpus_by_type"].values()) == (r["prefill_gpus"] + r["decode_gpus"]
                                                   + r["colocated_gpus"])


def test_golden_ratio_grid_agrees_with_individual_solves(cat, default):
    ins, outs, tps = [256, 4096], [64, 2048], 50_000
    g = W.golden_ratio_grid(default, cat, ins, outs, tps, ttft_ms_per_1k_input=500)
    assert g.prefill_gpu_share.shape == g.prefill_cost_share.shape == (2, 2)
    disagg = default.with_constraints(roles=["prefill", "decode"])
    for (i, n_in), (j, n_out) in itertools.product(enumerate(ins), enumerate(outs)):
        slo = default.slo.model_copy(update={"ttft_ms": max(1000.0, 0.5 * n_in)})
        plan, why = W.try_plan(disagg, cat, W.fixed_classes(n_in, n_out,
                                                            tokens_per_second=tps), slo)
        assert plan is not None, why
        assert g.golden_ratio[i][j] == plan.golden_ratio
        assert g.usd_per_million_tokens[i, j] == pytest.approx(plan.usd_per_million_tokens)
        assert g.prefill_gpu_share[i, j] == pytest.approx(
            plan.prefill_gpus / (plan.prefill_gpus + plan.decode_gpus))
        assert plan.colocated_gpus == 0
        assert 0 < g.prefill_cost_share[i, j] < 1
    # Physics, not a fit: at a fixed token load, longer outputs shift cost to decode and
    # longer prompts shift it to prefill.
    assert g.prefill_cost_share[0, 1] < g.prefill_cost_share[0, 0]
    assert g.prefill_cost_share[1, 0] > g.prefill_cost_share[0, 0]


def test_slo_grid_cost_never_rises_as_targets_loosen(cat, default):
    rows = W.slo_grid(default, cat, [200, 1000], [20, 50])
    cost = {(r["ttft_ms"], r["tpot_ms"]): r["cost_usd_per_hour"] for r in rows}
    assert None not in cost.values()
    assert cost[(200, 20)] >= cost[(1000, 20)] >= cost[(1000, 50)]
    assert cost[(200, 20)] >= cost[(200, 50)] - 1e-9 >= cost[(1000, 50)] - 2e-9
    assert rows[0]["pareto"]                 # the tightest pair is never dominated


def test_mark_pareto_against_brute_force():
    rng = np.random.default_rng(3)
    rows = [{"ttft_ms": float(t), "tpot_ms": float(o),
             "cost_usd_per_hour": None if rng.random() < 0.15 else float(rng.integers(1, 9))}
            for t, o in itertools.product([100, 200, 400, 800], [10, 20, 40])]
    W.mark_pareto(rows)
    ok = [r for r in rows if r["cost_usd_per_hour"] is not None]
    keys = ("ttft_ms", "tpot_ms", "cost_usd_per_hour")
    vec = [tuple(r[k] for k in keys) for r in ok]
    for r, v in zip(ok, vec):
        dominated = any(all(a <= b for a, b in zip(u, v)) and u != v for u in vec)
        assert r["pareto"] == (not dominated)
    assert not any(r["pareto"] for r in rows if r["cost_usd_per_hour"] is None)
    hand = W.mark_pareto([{"ttft_ms": 1, "tpot_ms": 1, "cost_usd_per_hour": 5},
                          {"ttft_ms": 2, "tpot_ms": 1, "cost_usd_per_hour": 5},
                          {"ttft_ms": 2, "tpot_ms": 2, "cost_usd_per_hour": 3}])
    assert [r["pareto"] for r in hand] == [True, False, True]


def test_restricted_plans_use_only_the_given_gpus(cat, default):
    market = default.derive(catalog=default.scenario.catalog.model_copy(update={
        "prices": "2026-11-market", "gpus": ["H100-SXM", "B200", "MI300X"]}))
    cls = W.fixed_classes(4096, 256, tokens_per_second=50_000)
    plan, why = W.try_plan(market, cat, cls, prefill_gpus=["B200"], decode_gpus=["H100-SXM"])
    assert plan is not None, why
    assert {(p.role, p.gpu) for p in plan.pools} <= {("prefill", "B200"),
                                                     ("decode", "H100-SXM")}
    assert {p.role for p in plan.pools} == {"prefill", "decode"}
    # Cross-vendor pairs need the scenario's permission.
    plan, why = W.try_plan(market, cat, cls, prefill_gpus=["B200"], decode_gpus=["MI300X"])
    assert plan is None and why
    allowed = market.with_constraints(allow_cross_vendor=True)
    plan, why = W.try_plan(allowed, cat, cls, prefill_gpus=["B200"], decode_gpus=["MI300X"])
    assert plan is not None, why
    assert {p.vendor for p in plan.pools} == {"nvidia", "amd"}
    assert sum(r["cost_usd_per_hour"] for r in W.pool_costs(plan)) == pytest.approx(
        plan.cost_usd_per_hour)


def test_role_economics_ranks_candidates_per_dollar(cat, default):
    cls = W.fixed_classes(256, 512, rate_rps=50)
    rows = W.role_economics(default, cat, cls)
    assert {r["role"] for r in rows} == {"prefill", "decode", "colocated"}
    from hetplan.planner import prepare
    ctx = prepare(default.with_classes(cls), cat)
    for r in rows:        # each row is the best of its (role, GPU) candidates
        same = [c for c in ctx.candidates if c.role == r["role"] and c.shape.gpu == r["gpu"]]
        top = max(c.capacity(cls[0].name) / c.price_usd_per_hour for c in same)
        assert r["rps_per_usd_per_hour"] == pytest.approx(top)
    dec = [r["rps_per_usd_per_hour"] for r in rows if r["role"] == "decode"]
    assert dec == sorted(dec, reverse=True)


def test_replanning_never_costs_more_than_keeping_the_mix(cat, default):
    rows = W.price_shock(default, cat, ["L40S", "B200"], [0.5, 1.5])
    for r in rows:
        assert r["cost_usd_per_hour"] <= r["cost_if_mix_kept_usd_per_hour"] + 1e-6


def test_pairings_ratio_to_baseline(cat, default):
    cls = W.fixed_classes(2048, 256, tokens_per_second=50_000)
    rows = W.pairings(default, cat, cls, {"H100:H100": (["H100-SXM"], ["H100-SXM"]),
                                          "free": (None, None)}, "H100:H100")
    assert rows[0]["cost_ratio_vs_baseline"] == pytest.approx(1.0)
    # The unrestricted plan's space holds the baseline's, so it is never dearer.
    assert rows[1]["cost_ratio_vs_baseline"] >= 1.0 - 1e-9


def test_borrowed_calibrations_change_only_the_targets(cat, default):
    cals = W.borrowed_calibrations("H100-SXM", ["MI300X"])
    assert cals["MI300X"].memory_efficiency == cals["H100-SXM"].memory_efficiency
    assert cals["MI300X"].gpu == "MI300X" and "borrowed" in cals["MI300X"].provenance.method
    from hetplan.perf.calibration import load_calibrations
    assert "MI300X" not in load_calibrations()
    cls = W.fixed_classes(256, 512, rate_rps=20)
    plan, _ = W.try_plan(default, cat, cls)           # no MI300X in this scenario: same plan
    same, _ = W.try_plan(default, cat, cls, calibrations=cals)
    assert plan.cost_usd_per_hour == same.cost_usd_per_hour
    with pytest.raises(InputError):
        W.borrowed_calibrations("Gaudi3", ["MI300X"])
    market = default.derive(catalog=default.scenario.catalog.model_copy(update={
        "prices": "2026-11-market", "gpus": ["H100-SXM", "MI300X"]}))
    cls = W.fixed_classes(8192, 256, rate_rps=2)

    def mi300x_prefill(c):
        return next(r["rps_per_usd_per_hour"] for r in W.role_economics(market, cat, cls, c)
                    if r["role"] == "prefill" and r["gpu"] == "MI300X")
    # H100's measured FP8 GEMM efficiency (~0.45) is below the 0.70 default.
    assert mi300x_prefill(cals) < mi300x_prefill(None)
