#!/usr/bin/env python3
"""Simulator speed: replay N requests (default 1M) of a scenario's synthetic workload on
the scenario's plan and time it.

Target (issue 7): 1M requests in <= 60 s on 2 cores. The scenario is solved first (not
timed); the trace is the scenario's synthetic spec with its duration stretched to N
requests at the same rate (generation timed separately).

    python scripts/bench_simulate.py [SCENARIO.yaml] [--requests 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hetplan.catalog import load_catalog  # noqa: E402
from hetplan.io import workloads_dir  # noqa: E402
from hetplan.perf import PerfModel  # noqa: E402
from hetplan.planner import plan_scenario  # noqa: E402
from hetplan.scenario import load_scenario  # noqa: E402
from hetplan.simulate import SimOptions, simulate_plan  # noqa: E402
from hetplan.simulate.workload import scenario_trace  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=str(workloads_dir() / "default.yaml"))
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    cat = load_catalog()
    s = load_scenario(a.scenario, cat)
    t0 = time.perf_counter()
    plan = plan_scenario(s, cat)
    t1 = time.perf_counter()
    trace = scenario_trace(s, requests=a.requests)
    t2 = time.perf_counter()
    rep, _ = simulate_plan(plan, trace, PerfModel(s.model, cat), SimOptions(a.seed))
    t3 = time.perf_counter()
    print(f"scenario {s.scenario.name}: plan {t1 - t0:.1f} s, trace of {trace.num_requests:,} "
          f"requests {t2 - t1:.1f} s, simulation {t3 - t2:.1f} s "
          f"({trace.num_requests / (t3 - t2):,.0f} requests/s)")
    print(f"p90 TTFT {rep.ttft_p90_ms:.1f} ms, p90 TPOT {rep.tpot_p90_ms:.2f} ms, "
          f"attainment {rep.slo_attainment:.2%}, preempted {rep.preempted_requests:,}")
    target = 60.0 * a.requests / 1_000_000
    print(f"target <= {target:.0f} s: {'PASS' if t3 - t2 <= target else 'FAIL'}")


if __name__ == "__main__":
    main()
