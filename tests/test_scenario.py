"""Scenario files: the bundled default loads; cross-references are checked by name."""

from __future__ import annotations

import pytest

from hetplan.catalog import load_catalog
from hetplan.errors import InputError
from hetplan.io import workloads_dir
from hetplan.scenario import load_scenario, scenario_gpus, scenario_model

CATALOG = load_catalog()

BASE = """
model: llama-3.1-8b
workload:
  synthetic: {arrival: {process: poisson, rate_rps: 1.0},
              input_tokens: {dist: fixed, value: 128}, output_tokens: {dist: fixed, value: 64},
              duration_s: 60, seed: 0}
slo: {ttft_ms: 500, tpot_ms: 40, percentile: 90}
catalog: {gpus: [H100-SXM, L40S], prices: 2026-04-17-seed}
"""


def test_default_scenario_loads():
    rs = load_scenario(workloads_dir() / "default.yaml", CATALOG)
    s = rs.scenario
    assert s.name == "default"
    assert scenario_model(s).name == rs.model.name == "llama-3.1-70b"
    assert scenario_gpus(s, CATALOG) == ["H100-SXM", "L40S", "A100-80G-PCIe", "B200"]
    assert s.slo.percentile == rs.slo.percentile == 90
    # Resolved once: the classes are the trace's requests, at its planning rate.
    assert sum(c.count for c in rs.classes) == rs.trace.num_requests
    assert sum(c.rate_rps for c in rs.classes) == pytest.approx(rs.trace.planning_rate_rps(
        s.workload.planning_rate, s.workload.planning_window_s))
    assert rs.inventory is None and rs.planning_rate == ("mean", 0.0)


def test_variants_keep_what_was_loaded():
    rs = load_scenario(workloads_dir() / "default.yaml", CATALOG)
    tight = rs.derive(slo=rs.slo.model_copy(update={"ttft_ms": 100.0}))
    assert tight.slo.ttft_ms == 100.0 and rs.slo.ttft_ms != 100.0
    assert tight.trace is rs.trace and tight.classes is rs.classes and tight.model is rs.model
    assert rs.with_constraints(max_tp=2).scenario.constraints.max_tp == 2
    with pytest.raises(ValueError, match="workload"):
        rs.derive(workload=rs.scenario.workload)
    adhoc = rs.with_classes(rs.classes[:1])
    assert adhoc.trace is None and len(adhoc.classes) == 1


def test_small_scenario_defaults(write):
    s = load_scenario(write("s.yaml", BASE), CATALOG).scenario
    assert s.name == "s"
    assert s.objective == "min_cost"
    assert s.constraints.target_utilization == 0.8


@pytest.mark.parametrize("edit, field", [
    (("H100-SXM, L40S", "H100-SXM, L40X"), "catalog.gpus.1"),
    (("2026-04-17-seed", "1999-01-01"), "catalog.prices"),
    (("tpot_ms: 40", "tpot_ms: -40"), "slo.tpot_ms"),
    (("percentile: 90", "percentile: 190"), "slo.percentile"),
    (("llama-3.1-8b", "no-such-model"), "model"),
    (("slo: {ttft_ms: 500, ", "slo: {"), "slo.ttft_ms"),
    (("duration_s: 60, seed: 0}", "duration_s: 60, seed: 0}\n  planning_rate: x95"),
     "workload.planning_rate"),
    (("duration_s: 60, seed: 0}", "duration_s: 60, seed: 0}\n  planning_rate: r0"),
     "workload.planning_rate"),
])
def test_bad_scenarios_name_the_field(write, edit, field):
    p = write("bad.yaml", BASE.replace(*edit))
    with pytest.raises(InputError) as e:
        load_scenario(p, CATALOG)
    assert e.value.field == field and e.value.file == str(p)


def test_workload_needs_exactly_one_source(write):
    p = write("bad.yaml", BASE.replace("workload:\n", "workload:\n  trace: t.csv\n"))
    with pytest.raises(InputError, match="exactly one of 'trace' or 'synthetic'"):
        load_scenario(p, CATALOG)


def test_missing_trace_file(write):
    text = BASE.split("workload:")[0] + "workload: {trace: nowhere.csv, format: azure}\n" \
        + "slo:" + BASE.split("slo:")[1]
    with pytest.raises(InputError, match="trace file not found"):
        load_scenario(write("t.yaml", text), CATALOG)


def test_unknown_top_level_key(write):
    with pytest.raises(InputError, match="budget"):
        load_scenario(write("u.yaml", BASE + "budget: 10\n"), CATALOG)
