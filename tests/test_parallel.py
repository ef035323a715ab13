"""Parallel sweeps (`hetplan.parallel`): the same results in the same order whatever the
worker count or backend, errors carried back whole, and the CLI's --workers/--backend."""

from __future__ import annotations

import importlib.util
import sys
import time

import numpy as np
import pytest

from hetplan.errors import Infeasible, InputError
from hetplan.parallel import INLINE, Parallel, check_workers
from hetplan.schedule.decompose import lower_bound_usd
from hetplan.schedule.formulation import ScheduleProblem
from hetplan.schedule.tiers import GpuTiers

HAS_RAY = importlib.util.find_spec("ray") is not None


def _problem() -> ScheduleProblem:
    """3 distinct slots, 2 GPU types (the brute-force case of test_schedule.py)."""
    from test_schedule import _cand
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, 1.2, "reserved"),
             "G2": GpuTiers("G2", 1.5, 0.6, 0.2, False, None, None)}
    c1, c2 = _cand("G1", 1.25), _cand("G2", 1.0)
    return ScheduleProblem(
        candidates=[c1, c2], class_names=("w",), rates_rps=np.array([[1.0], [2.5], [2.0]]),
        slot_hours=np.array([1.0, 2.0, 1.0]), rho={c1.key: 0.8, c2.key: 0.9}, tiers=tiers,
        warmup_h={c1.key: 0.1, c2.key: 0.05}, spot_loss_h=0.1, max_step_replicas=1,
        max_spot_share=0.5)


def _digest(outs) -> list:
    return [(o.replicas, o.committed_gpus, o.cost_usd, o.solution.values) for o in outs]


def test_slots_are_identical_inline_and_on_two_processes():
    p = _problem()
    one = lower_bound_usd(p, "highs", 30, INLINE)
    two = lower_bound_usd(p, "highs", 30, Parallel(2))
    assert one[0] == two[0] > 0
    assert _digest(one[1]) == _digest(two[1])
    assert len({o.total_cost_usd for o in one[1]}) == 3       # three different slots


def _fails_on_odd(x: int) -> int:
    if x % 2:
        raise Infeasible([f"case {x}", "why"])
    return x * 10


def test_first_failing_case_raises_its_own_error_type():
    progress: list[str] = []
    assert Parallel(2).map(_fails_on_odd, [0, 2, 4], progress=progress.append,
                           label="t") == [0, 20, 40]
    assert sorted(progress) == ["t 1/3", "t 2/3", "t 3/3"]
    with pytest.raises(Infeasible) as e:
        Parallel(2).map(_fails_on_odd, [0, 3, 5])
    assert e.value.reasons == ["case 3", "why"]


def test_bad_settings_and_missing_ray_are_one_line_errors(monkeypatch):
    with pytest.raises(InputError, match="--workers: must be in"):
        Parallel(0)
    with pytest.raises(InputError, match="--backend: must be one of local, ray"):
        Parallel(2, "dask")
    monkeypatch.setitem(sys.modules, "ray", None)          # import ray -> ImportError
    with pytest.raises(InputError, match=r"hetplan\[ray\]"):
        Parallel(1, "ray").map(_fails_on_odd, [0])


def test_cli_rejects_bad_workers_in_one_line(tmp_path):
    from cli_harness import run_main
    res = run_main("frontier", "missing.yaml", "--workers", "0")
    assert res.code == 2 and res.err_lines == ["error: --workers: must be in [1, 1024], not 0"]


@pytest.mark.ray
@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (the hetplan[ray] extra)")
def test_ray_backend_matches_inline():
    import ray
    t0 = time.perf_counter()
    ray.init(num_cpus=1, include_dashboard=False, logging_level="WARNING")
    try:
        p = _problem()
        got = lower_bound_usd(p, "highs", 30, Parallel(2, "ray"))
        # (Ray workers import hetplan, not this test module)
        with pytest.raises(InputError, match="not 0") as e:
            Parallel(2, "ray").map(check_workers, [1, 0, 2000])
    finally:
        ray.shutdown()
    want = lower_bound_usd(p, "highs", 30, INLINE)
    assert got[0] == want[0]
    assert _digest(got[1]) == _digest(want[1])
    assert e.value.field == "--workers"
    print(f"ray test wall {time.perf_counter() - t0:.1f} s")


def test_frontier_cli_on_two_workers_matches_the_inline_sweep(tmp_path):
    import csv

    import yaml
    from cli_harness import TINY_SCENARIO, run_main

    from hetplan.catalog import load_catalog
    from hetplan.compare import frontier
    from hetplan.scenario import load_scenario
    sc = tmp_path / "tiny.yaml"
    sc.write_text(yaml.safe_dump(TINY_SCENARIO))
    res = run_main("frontier", sc, "--factors", "1,2", "--workers", "2", "--out", tmp_path,
                   budget_s=60)
    assert res.code == 0, res.describe()
    cat = load_catalog()
    rows = frontier(load_scenario(sc, cat), cat, "slo", [1.0, 2.0], parallel=INLINE)
    got = list(csv.DictReader((tmp_path / "frontier.csv").open()))
    assert [r["cost_usd_per_hour"] for r in got] == [str(r["cost_usd_per_hour"]) for r in rows]
    assert [r["status"] for r in got] == [r["status"] for r in rows]
    assert rows[0]["cost_usd_per_hour"] >= rows[1]["cost_usd_per_hour"] > 0
