"""Workload classes: requests bucketed by (input, output) length, with per-class rate and
token statistics. The planner sizes replicas per class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hetplan.workload.trace import Trace


@dataclass(frozen=True)
class WorkloadClass:
    """Requests with input in [input_lo, input_hi] and output in [output_lo, output_hi]
    tokens. rate_rps = share x the trace's planning rate. Token statistics are over the
    class's requests (p50 / p90: percentiles, linear interpolation)."""

    name: str
    input_lo: int
    input_hi: int
    output_lo: int
    output_hi: int
    count: int
    share: float
    rate_rps: float
    mean_input_tokens: float
    mean_output_tokens: float
    p90_input_tokens: float
    p90_output_tokens: float
    mean_prefix_tokens: float = 0.0
    p50_input_tokens: float = 0.0
    p50_output_tokens: float = 0.0


def in_bins(input_tokens: np.ndarray, output_tokens: np.ndarray, c) -> np.ndarray | None:
    """Which requests fall in class c's token bins ([input_lo, input_hi] x [output_lo,
    output_hi]); None for a class without bins (a plan's ad-hoc classes given by figures)."""
    bins = [getattr(c, k, None) for k in ("input_lo", "input_hi", "output_lo", "output_hi")]
    if None in bins:
        return None
    return ((input_tokens >= bins[0]) & (input_tokens <= bins[1])
            & (output_tokens >= bins[2]) & (output_tokens <= bins[3]))


def _edges(x: np.ndarray, n: int, method: str) -> np.ndarray:
    lo, hi = int(x.min()), int(x.max())
    if lo == hi or n <= 1:
        return np.array([lo, hi + 1])
    if method == "quantile":
        e = np.unique(np.round(np.quantile(x, np.linspace(0, 1, n + 1))).astype(np.int64))
    else:
        e = np.unique(np.round(np.geomspace(max(lo, 1), hi, n + 1)).astype(np.int64))
    e[0], e[-1] = lo, hi + 1          # right edge exclusive: every value falls in a bin
    return np.unique(e)


def bucket(trace: Trace, n_input: int = 4, n_output: int = 4,
           method: Literal["log", "quantile"] = "log",
           planning_rate: str = "mean", window_s: float = 60.0) -> list[WorkloadClass]:
    """Bucket requests into at most n_input x n_output classes; empty ones are dropped.
    Shares sum to 1 and class rates to the planning rate (a percentile planning rate is
    taken over windows of `window_s` seconds)."""
    if trace.num_requests == 0:
        raise ValueError("the workload has no requests")
    if method not in ("log", "quantile"):
        raise ValueError(f"method must be 'log' or 'quantile', not {method!r}")
    ie, oe = _edges(trace.input_tokens, n_input, method), _edges(trace.output_tokens, n_output,
                                                                method)
    ib = np.clip(np.searchsorted(ie, trace.input_tokens, side="right") - 1, 0, len(ie) - 2)
    ob = np.clip(np.searchsorted(oe, trace.output_tokens, side="right") - 1, 0, len(oe) - 2)
    rate = trace.planning_rate_rps(planning_rate, window_s) if trace.num_requests > 1 else 0.0
    n = trace.num_requests
    out = []
    for i in range(len(ie) - 1):
        for o in range(len(oe) - 1):
            m = (ib == i) & (ob == o)
            c = int(m.sum())
            if c == 0:
                continue
            inp, outp = trace.input_tokens[m], trace.output_tokens[m]
            pre = trace.prefix_tokens[m] if trace.prefix_tokens is not None else np.zeros(1)
            out.append(WorkloadClass(
                name=f"in{ie[i]}-{ie[i + 1] - 1}_out{oe[o]}-{oe[o + 1] - 1}",
                input_lo=int(ie[i]), input_hi=int(ie[i + 1] - 1),
                output_lo=int(oe[o]), output_hi=int(oe[o + 1] - 1), count=c, share=c / n,
                rate_rps=rate * c / n, mean_input_tokens=float(inp.mean()),
                mean_output_tokens=float(outp.mean()),
                p90_input_tokens=float(np.percentile(inp, 90)),
                p90_output_tokens=float(np.percentile(outp, 90)),
                mean_prefix_tokens=float(pre.mean()),
                p50_input_tokens=float(np.percentile(inp, 50)),
                p50_output_tokens=float(np.percentile(outp, 50))))
    return out


def single_class(name: str, rate_rps: float, input_tokens: float, output_tokens: float,
                 p90_input_tokens: float | None = None,
                 p90_output_tokens: float | None = None) -> WorkloadClass:
    """A class given by its figures alone (what-if studies, tests, synthetic benchmarks);
    p90 lengths default to the means, p50 lengths are the means."""
    p90_in = input_tokens if p90_input_tokens is None else p90_input_tokens
    p90_out = output_tokens if p90_output_tokens is None else p90_output_tokens
    return WorkloadClass(name=name, input_lo=int(input_tokens), input_hi=int(p90_in),
                         output_lo=int(output_tokens), output_hi=int(p90_out), count=0,
                         share=1.0, rate_rps=rate_rps, mean_input_tokens=input_tokens,
                         mean_output_tokens=output_tokens, p90_input_tokens=p90_in,
                         p90_output_tokens=p90_out, p50_input_tokens=input_tokens,
                         p50_output_tokens=output_tokens)
