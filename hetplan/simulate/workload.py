"""Which requests a simulation replays: a trace file, or the scenario's workload again.

A plan records its scenario's name only, so `hetplan simulate` finds the workload from
`--trace FILE` (CSV: arrival_s, input_tokens, output_tokens), else `--scenario FILE`, else
`workloads/<plan.scenario>.yaml` when that exists. A synthetic workload is regenerated from
its seed (the same requests the planner bucketed), optionally stretched to more requests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetplan.errors import InputError
from hetplan.io import workloads_dir
from hetplan.scenario import ResolvedScenario
from hetplan.workload import Trace, generate, load_csv_trace, parse_synthetic


def scenario_trace(rs: ResolvedScenario, requests: int | None = None,
                   duration_s: float | None = None) -> Trace:
    """The scenario's workload (the trace it was resolved with); a synthetic one can be
    re-generated for `duration_s` or until it has `requests` requests (a trace file is only
    cut to `requests`)."""
    s = rs.scenario
    if rs.trace is None:
        raise InputError("the scenario was planned for explicit classes; it has no trace to "
                         "replay", field="workload")
    if s.workload.synthetic is None and duration_s is not None:
        raise InputError("--duration applies to a synthetic workload; this scenario replays "
                         "a trace file", field="--duration")
    if s.workload.synthetic is None or (requests is None and duration_s is None):
        return truncate(rs.trace, requests)
    spec = parse_synthetic(s.workload.synthetic)
    if duration_s is None:
        rate = spec.arrival.rate_rps
        duration_s = requests / rate * 1.05 + 10.0 * np.sqrt(requests) / rate + 1.0
    return truncate(generate(spec.model_copy(update={"duration_s": float(duration_s)})),
                    requests)


def truncate(t: Trace, requests: int | None) -> Trace:
    if requests is None or requests >= t.num_requests:
        return t
    if requests < 1:
        raise InputError("must be >= 1", field="--requests")
    cut = {k: (v[:requests] if isinstance(v, np.ndarray) else v) for k, v in t.__dict__.items()}
    return Trace(**cut)


def find_scenario(plan_scenario: str, trace: Path | None, scenario: Path | None) -> Path | None:
    """The scenario file to read (None when a trace file is given and no scenario)."""
    if scenario is not None or trace is not None:
        return scenario
    guess = workloads_dir() / f"{plan_scenario}.yaml"
    if guess.exists():
        return guess
    raise InputError(f"no workload: pass --trace FILE or --scenario FILE (no "
                     f"{guess.name} in {guess.parent} for scenario {plan_scenario!r})",
                     field="--trace")


def trace_file(path: Path, requests: int | None) -> Trace:
    if path.suffix.lower() != ".csv":
        raise InputError("expected a CSV trace (arrival_s,input_tokens,output_tokens)",
                         file=path)
    return truncate(load_csv_trace(path), requests)
