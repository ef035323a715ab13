"""Planner-facing workload core: seeded generators, CSV traces with named bad rows, and
bucketing into classes whose shares and rates add up."""

from __future__ import annotations

import numpy as np
import pytest

from hetplan.errors import InputError
from hetplan.workload import SyntheticSpec, bucket, generate, load_csv_trace, make_trace


def spec(**arrival) -> SyntheticSpec:
    return SyntheticSpec(arrival={"process": "poisson", "rate_rps": 20.0, **arrival},
                         input_tokens={"dist": "lognormal", "median": 1000, "sigma": 1.0,
                                       "max": 32000},
                         output_tokens={"dist": "lognormal", "median": 200, "sigma": 0.8},
                         duration_s=1000, seed=7)


def test_generator_is_deterministic_per_seed():
    a, b = generate(spec()), generate(spec())
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.input_tokens, b.input_tokens)
    c = generate(spec().model_copy(update={"seed": 8}))
    assert not np.array_equal(a.arrival_s[:100], c.arrival_s[:100])


def test_poisson_rate_and_gamma_burstiness():
    t = generate(spec())
    gaps = np.diff(t.arrival_s)
    assert gaps.mean() == pytest.approx(1 / 20.0, rel=0.03)        # ~20k arrivals
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)
    g = generate(spec(process="gamma", cv=3.0))
    gg = np.diff(g.arrival_s)
    assert gg.std() / gg.mean() == pytest.approx(3.0, rel=0.1)
    assert g.planning_rate_rps("p95", 10.0) > g.mean_rate_rps


def test_diurnal_modulates_rate():
    s = SyntheticSpec(arrival={"rate_rps": 10.0, "diurnal": {"period_s": 1000,
                                                              "amplitude": 0.8}},
                      input_tokens={"dist": "fixed", "value": 10},
                      output_tokens={"dist": "fixed", "value": 10}, duration_s=1000)
    t = generate(s)
    first, second = (t.arrival_s < 500).sum(), (t.arrival_s >= 500).sum()
    assert first > 2 * second            # sin > 0 in the first half-period


def test_bucket_shares_and_rates_add_up():
    t = generate(spec())
    for method in ("log", "quantile"):
        cls = bucket(t, 4, 3, method=method)
        assert sum(c.share for c in cls) == pytest.approx(1.0)
        assert sum(c.rate_rps for c in cls) == pytest.approx(t.mean_rate_rps)
        assert sum(c.count for c in cls) == t.num_requests
        for c in cls:
            assert c.input_lo <= c.mean_input_tokens <= c.input_hi
    assert len(bucket(make_trace([0, 1, 2], [5, 5, 5], [7, 7, 7]))) == 1


def test_percentile_planning_rate_uses_the_window():
    """A burst of 10 requests in one second inside 60 s of 1 req/s: the p100 rate over
    1-s windows is the burst's 11 req/s, over 60-s windows the minute's 70/60."""
    arrivals = sorted([float(i) for i in range(60)] + [30.05 + 0.09 * k for k in range(10)])
    n = len(arrivals)
    t = make_trace(arrivals, [100] * n, [10] * n)
    for window_s, want in ((1.0, 11.0), (60.0, 70 / 60)):
        cls = bucket(t, 1, 1, planning_rate="p100", window_s=window_s)
        assert cls[0].rate_rps == pytest.approx(want)


def test_request_weighted_planning_rate_sees_the_burst():
    """The same trace: 11 of 70 requests arrive in the burst's second, so over requests the
    90th-percentile rate is the burst's, while over time (1-s windows) it is 1 req/s."""
    arrivals = sorted([float(i) for i in range(60)] + [30.05 + 0.09 * k for k in range(10)])
    n = len(arrivals)
    t = make_trace(arrivals, [100] * n, [10] * n)
    assert t.planning_rate_rps("p90", 1.0) == pytest.approx(1.0)
    assert t.planning_rate_rps("r90", 1.0) == pytest.approx(11.0)
    assert t.planning_rate_rps("r50", 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="r<percentile>"):
        t.planning_rate_rps("q90")


def test_bad_spec_is_named():
    with pytest.raises(ValueError, match="lognormal needs"):
        SyntheticSpec(arrival={"rate_rps": 1}, input_tokens={"dist": "lognormal"},
                      output_tokens={"dist": "fixed", "value": 1})


def test_csv_trace_and_bad_rows(write):
    good = write("t.csv", "arrival_s,input_tokens,output_tokens\n2.0,100,10\n1.0,50,5\n")
    t = load_csv_trace(good)
    assert list(t.arrival_s) == [0.0, 1.0] and list(t.input_tokens) == [50, 100]
    bad = write("b.csv", "arrival_s,input_tokens,output_tokens\n1,2,3\n2,-5,3\n")
    with pytest.raises(InputError, match=r"b\.csv: line 3: negative"):
        load_csv_trace(bad)
    with pytest.raises(InputError, match="missing columns: output_tokens"):
        load_csv_trace(write("c.csv", "arrival_s,input_tokens\n1,2\n"))
