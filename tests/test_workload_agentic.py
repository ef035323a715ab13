"""Agentic sessions (seeded, shared prefix, growing context), class statistics checked by
brute force, windowed rates, and the embedded workload specs."""

from __future__ import annotations

import numpy as np
import pytest

from hetplan.io import workloads_dir
from hetplan.workload import SyntheticSpec, bucket, generate, load_spec_file

AGENTIC = {"turns": {"dist": "uniform", "min": 1, "max": 12},
           "new_tokens": {"dist": "lognormal", "median": 500, "sigma": 1.0},
           "think_time_s": {"dist": "lognormal", "median": 2.0, "sigma": 0.5},
           "system_prompt_tokens": 3000, "assumed_tpot_ms": 20, "max_context_tokens": 40000}


def agentic_spec(**over) -> SyntheticSpec:
    return SyntheticSpec(**{"arrival": {"rate_rps": 1.0},
                            "input_tokens": {"dist": "lognormal", "median": 300, "sigma": 0.8},
                            "output_tokens": {"dist": "lognormal", "median": 120, "sigma": 0.7},
                            "duration_s": 300, "seed": 3, "pattern": "agentic",
                            "agentic": AGENTIC, **over})


def test_agentic_is_deterministic_per_seed():
    a, b, c = generate(agentic_spec()), generate(agentic_spec()), generate(agentic_spec(seed=4))
    for k in ("arrival_s", "input_tokens", "output_tokens", "session_id", "prefix_tokens"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert not np.array_equal(a.input_tokens[:50], c.input_tokens[:50])


def test_agentic_sessions_share_prefix_and_grow():
    t = generate(agentic_spec())
    s, sp = t.session_id, AGENTIC["system_prompt_tokens"]
    assert len(np.unique(s)) > 100 and t.num_requests > 2 * len(np.unique(s))
    assert t.prefix_tokens[0] == 0                     # nothing cached before request 1
    assert t.arrival_s.max() < 300 and t.input_tokens.max() <= AGENTIC["max_context_tokens"]
    firsts = 0
    for sid in np.unique(s):
        idx = np.flatnonzero(s == sid)                 # arrival order = turn order
        inp, out, pre = t.input_tokens[idx], t.output_tokens[idx], t.prefix_tokens[idx]
        if idx[0] != 0:
            assert pre[0] == sp                        # turn 1: the shared system prompt
            firsts += 1
        assert inp[0] > sp
        assert np.all(np.diff(inp) > 0)                # the context grows every turn
        assert np.array_equal(pre[1:], inp[:-1] + out[:-1])   # reuse = previous turn + output
        gaps = np.diff(t.arrival_s[idx])
        assert np.all(gaps >= out[:-1] * AGENTIC["assumed_tpot_ms"] / 1e3 - 1e-9)
    assert firsts == len(np.unique(s)) - 1


def test_agentic_spec_needs_its_block():
    with pytest.raises(ValueError, match="needs an 'agentic' block"):
        agentic_spec(agentic=None)
    with pytest.raises(ValueError, match="needs pattern: agentic"):
        agentic_spec(pattern="independent")
    with pytest.raises(ValueError, match="exponential needs 'mean'"):
        agentic_spec(agentic={**AGENTIC, "think_time_s": {"dist": "exponential"}})


def test_class_statistics_match_brute_force():
    t = generate(agentic_spec())
    for method in ("log", "quantile"):
        classes = bucket(t, 3, 3, method=method)
        assert sum(c.count for c in classes) == t.num_requests
        for c in classes:
            m = ((t.input_tokens >= c.input_lo) & (t.input_tokens <= c.input_hi)
                 & (t.output_tokens >= c.output_lo) & (t.output_tokens <= c.output_hi))
            assert m.sum() == c.count
            for q, attr in ((50, "p50"), (90, "p90")):
                assert getattr(c, f"{attr}_input_tokens") == np.percentile(t.input_tokens[m], q)
                assert getattr(c, f"{attr}_output_tokens") == np.percentile(
                    t.output_tokens[m], q)
            assert c.mean_prefix_tokens == pytest.approx(t.prefix_tokens[m].mean())


def test_windowed_rate_percentiles_do_not_double_count_the_tail():
    """A 600 s Poisson trace in 60 s windows: the partial last window must not be folded
    into the one before it (that read ~1.6x the mean rate at p95)."""
    t = generate(SyntheticSpec(arrival={"rate_rps": 10.0}, duration_s=600, seed=1,
                               input_tokens={"dist": "fixed", "value": 1},
                               output_tokens={"dist": "fixed", "value": 1}))
    rates = t.window_rates_rps(60.0)
    assert rates.size == int(t.duration_s // 60)
    assert t.planning_rate_rps("p95", 60.0) < 1.2 * t.mean_rate_rps


SPECS = sorted((workloads_dir() / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_embedded_specs_generate_what_they_declare(path):
    spec = load_spec_file(path)
    t = generate(spec)
    assert t.num_requests > 100
    if spec.pattern == "agentic":
        assert t.prefix_tokens is not None and t.session_id is not None
        return
    for name, arr in (("input_tokens", t.input_tokens), ("output_tokens", t.output_tokens)):
        d = getattr(spec, name)
        if d.median:
            assert np.median(arr) == pytest.approx(d.median, rel=0.1), name
        if d.mean:
            assert arr.mean() == pytest.approx(d.mean, rel=0.1), name
    bursty = spec.arrival.cv > 2            # a very bursty gamma process: wide sample mean
    assert t.mean_rate_rps == pytest.approx(spec.arrival.rate_rps, rel=0.5 if bursty else 0.1)


def test_embedded_specs_exist():
    assert {p.stem for p in SPECS} >= {"splitwise-conversation", "splitwise-coding",
                                       "mooncake", "agentic"}


@pytest.mark.parametrize("name", ["splitwise-conversation", "splitwise-coding", "mooncake",
                                  "agentic"])
def test_embedded_scenarios_use_their_specs(name):
    from hetplan.catalog import load_catalog
    from hetplan.scenario import load_scenario

    rs = load_scenario(workloads_dir() / f"{name}.yaml", load_catalog())
    s, classes = rs.scenario, rs.classes
    assert s.workload.spec == f"specs/{name}.yaml"
    b = s.workload.classes
    assert 1 <= len(classes) <= b.n_input * b.n_output
    spec = load_spec_file(workloads_dir() / "specs" / f"{name}.yaml")
    t = generate(spec)
    assert sum(c.rate_rps for c in classes) == pytest.approx(
        t.planning_rate_rps(s.workload.planning_rate))


def test_scenario_spec_file_errors_name_the_field(write):
    from hetplan.catalog import load_catalog
    from hetplan.errors import InputError
    from hetplan.scenario import load_scenario

    text = (workloads_dir() / "agentic.yaml").read_text().replace(
        "spec: specs/agentic.yaml", "spec: nowhere.yaml")
    with pytest.raises(InputError) as e:
        load_scenario(write("s.yaml", text), load_catalog())
    assert e.value.field == "workload.spec"
    write("bad-spec.yaml", "arrival: {rate_rps: 1}\ninput_tokens: {dist: fixed}\n"
                           "output_tokens: {dist: fixed, value: 1}\n")
    with pytest.raises(InputError, match="fixed needs 'value'") as e:
        load_scenario(write("s2.yaml", text.replace("nowhere.yaml", "bad-spec.yaml")),
                      load_catalog())
    assert e.value.field == "input_tokens"
