"""Validation stage: a trace-driven discrete-event simulator of a plan, and the tuner.

`simulate_plan(plan, trace, perf)` replays requests on the plan's pools with the perf
model's step times (one event per engine step, not per token) and reports latency
percentiles, SLO attainment per class, utilization per pool and cost per token.
"""

from hetplan.simulate.metrics import SimReport, report_text
from hetplan.simulate.sim import SimOptions, simulate_plan

__all__ = ["SimOptions", "SimReport", "simulate_plan", "report_text"]
