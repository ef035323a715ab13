"""Plots: PNG bytes, deterministic (same data -> same bytes, no Software/time metadata),
and `hetplan solve --plots` writing them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hetplan import plots as P
from hetplan import whatif as W
from hetplan.catalog import load_catalog
from hetplan.io import workloads_dir
from hetplan.planner import plan_scenario
from hetplan.scenario import load_scenario
from hetplan.simulate import SimOptions, simulate_plan
from hetplan.simulate.workload import scenario_trace

SIG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def case():
    cat = load_catalog()
    s = load_scenario(workloads_dir() / "default.yaml", cat)
    return cat, s, plan_scenario(s, cat)


def _check(make):
    a, b = make(), make()
    assert a[:8] == SIG and len(a) > 2000
    assert a == b
    assert b"Software" not in a and b"tIME" not in a
    return a


def test_cost_breakdown_and_frontier(case):
    cat, s, plan = case
    cheap = W.try_plan(s, W.scale_price(cat, s.scenario.catalog.prices, "H100-SXM", 0.5),
                       None)[0]
    _check(lambda: P.cost_breakdown_png({"base": plan, "H100 -50%": cheap}))
    rows = [{"factor": 1.0, "ttft_ms": 1000.0, "tpot_ms": 50.0, "budget_usd_per_hour": None,
             "cost_usd_per_hour": plan.cost_usd_per_hour, "served_rps": plan.served_rps,
             "usd_per_million_tokens": plan.usd_per_million_tokens}]
    _check(lambda: P.frontier_png(rows, "slo"))


def test_pareto_and_heatmap_from_synthetic_data():
    rows = W.mark_pareto([{"ttft_ms": t, "tpot_ms": o, "percentile": 90.0,
                           "cost_usd_per_hour": (None if (t, o) == (100, 10)
                                                 else 100.0 / t + 1000.0 / o)}
                          for t in (100, 300, 1000) for o in (10, 30, 100)])
    _check(lambda: P.slo_pareto_png(rows))
    z = np.array([[0.8, 0.3], [np.nan, 0.6]])
    grid = W.RatioGrid([256, 8192], [64, 4096], 1e5, 250.0, z, z, z,
                       [["4:1", "1:3"], ["", "3:2"]], [["", ""], ["", ""]])
    _check(lambda: P.ratio_heatmap_png(grid))
    _check(lambda: P.ratio_heatmap_png(grid, value="prefill_gpu_share"))
    shock = [{"gpu": g, "factor": f, "cost_usd_per_hour": 10 * f if g == "A" else None,
              "usd_per_million_tokens": f, "cost_by_type": {"A": 5 * f, "B": 5 * f}}
             for g in ("A", "B") for f in (0.5, 1.0, 1.5)]
    _check(lambda: P.price_shock_png(shock))


def test_latency_cdfs_overlay_and_single(case):
    cat, s, plan = case
    from hetplan.perf import PerfModel
    tr = scenario_trace(s, requests=1500)
    pm = PerfModel(s.model, cat)
    _, r0 = simulate_plan(plan, tr, pm, SimOptions(seed=0))
    _, r1 = simulate_plan(plan, tr, pm, SimOptions(seed=1))
    one = _check(lambda: P.cdf_png(r0, plan.slo))
    two = _check(lambda: P.latency_cdf_png({"seed 0": r0, "seed 1": r1}, plan.slo))
    assert one != two


def run(*args):
    return subprocess.run([sys.executable, "-m", "hetplan.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_solve_plots_cli_is_deterministic(tmp_path):
    default = str(workloads_dir() / "default.yaml")
    for d in ("a", "b"):
        r = run("solve", default, "--out", str(tmp_path / d), "--plots")
        assert r.returncode == 0, r.stderr
        assert "cost_breakdown.png" in r.stdout
    for name in ("cost_breakdown.png", "slo_frontier.png", "plan.json"):
        a = (tmp_path / "a" / name).read_bytes()
        assert a and a == (tmp_path / "b" / name).read_bytes()
    assert not (tmp_path / "a" / "latency_cdf.png").exists()   # only with --validate
    r = run("solve", default, "--plots")
    assert r.returncode == 2 and "--plots needs --out" in r.stderr
