"""Summary statistics of a trace: size, rates, token percentiles, prefix reuse, sessions,
what loading found, and the classes the planner would see. Plain data (JSON-ready)."""

from __future__ import annotations

import numpy as np

from hetplan.bounds import DEFAULT_SLOT_S
from hetplan.errors import InputError
from hetplan.workload.classes import bucket
from hetplan.workload.profile import profile_from_trace
from hetplan.workload.trace import Trace


def _dist(x: np.ndarray) -> dict[str, float]:
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"mean": float(x.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": float(x.max())}


def trace_stats(trace: Trace, n_classes: int = 4, method: str = "log",
                window_s: float = 60.0, slot_s: float = DEFAULT_SLOT_S,
                slot_rate: str = "mean") -> dict:
    """Statistics of `trace`; classes are n_classes x n_classes (input x output) bins.
    Windowed rates are requests per second in consecutive `window_s` windows (shortened
    to the trace's duration when the trace is shorter than one window). `profile`: the
    rate per `slot_s` slot at `slot_rate` (`hetplan.workload.profile`); a trace whose
    profile is invalid (an empty slot, longer than a week) gets `profile_error` instead."""
    if trace.num_requests == 0:
        raise ValueError("the trace has no requests")
    if 0 < trace.duration_s < window_s:
        window_s = trace.duration_s
    rates = trace.window_rates_rps(window_s)
    seen = trace.request_window_rates_rps(window_s)
    out: dict = {
        "name": trace.name, "source": trace.source, "requests": trace.num_requests,
        "duration_s": trace.duration_s,
        "rate_rps": {"mean": trace.mean_rate_rps, "window_s": window_s,
                     **{f"p{q}": float(np.percentile(rates, q)) for q in (50, 95, 99)},
                     # the same windows' rates as the requests in them see them
                     **{f"r{q}": float(np.percentile(seen, q)) for q in (50, 90, 95)}},
        "input_tokens": _dist(trace.input_tokens), "output_tokens": _dist(trace.output_tokens),
    }
    if trace.prefix_tokens is not None:
        total_in = float(trace.input_tokens.sum())
        out["prefix_tokens"] = {**_dist(trace.prefix_tokens), "share_of_input":
                                float(trace.prefix_tokens.sum()) / total_in if total_in else 0.0}
    if trace.session_id is not None:
        ids = trace.session_id[trace.session_id >= 0]
        n_sess = int(np.unique(ids).size)
        out["sessions"] = {"count": n_sess, "requests_without_session":
                           int((trace.session_id < 0).sum()),
                           "mean_turns": float(ids.size / n_sess) if n_sess else 0.0}
    if trace.report is not None:
        out["load"] = trace.report.to_dict()
    classes = bucket(trace, n_classes, n_classes, method=method)
    try:
        prof = profile_from_trace(trace, classes, slot_s, None, slot_rate, window_s,
                                  field="profile")
        d = prof.to_dict()
        out["profile"] = {k: d[k] for k in ("slot_s", "slots", "planning_rate", "window_s",
                                            "peak_rps", "mean_rps", "min_rps", "total_rps")}
    except InputError as e:
        out["profile_error"] = e.one_line()
    out["classes"] = [
        {"name": c.name, "count": c.count, "share": c.share, "rate_rps": c.rate_rps,
         "input_tokens": {"mean": c.mean_input_tokens, "p50": c.p50_input_tokens,
                          "p90": c.p90_input_tokens},
         "output_tokens": {"mean": c.mean_output_tokens, "p50": c.p50_output_tokens,
                           "p90": c.p90_output_tokens},
         "mean_prefix_tokens": c.mean_prefix_tokens}
        for c in classes]
    out["classes_binning"] = {"n_input": n_classes, "n_output": n_classes, "method": method}
    return out
