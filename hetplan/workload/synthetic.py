"""Seeded synthetic workloads: Poisson or gamma (bursty) arrivals with an optional diurnal
rate, and fixed / uniform / lognormal / empirical length distributions. `pattern: agentic`
generates multi-turn sessions instead of independent requests (see `agentic.py`).

Deterministic: numpy's PCG64 seeded with `seed`; the same spec gives the same trace.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hetplan.bounds import (MAX_SYNTHETIC_REQUESTS, DurationS, FiniteFloat, RateRps, Seed,
                            Text, synthetic_requests_message)
from hetplan.errors import InputError
from hetplan.workload.agentic import AgenticSpec, sessions
from hetplan.workload.distributions import Durations, Lengths
from hetplan.workload.trace import Trace, make_trace

__all__ = ["Arrival", "Diurnal", "Durations", "Lengths", "AgenticSpec", "SyntheticSpec",
           "arrivals", "generate"]


class Diurnal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    period_s: DurationS = 86_400.0
    amplitude: float = Field(default=0.5, ge=0.0, lt=1.0)
    phase_s: FiniteFloat = 0.0


class Arrival(BaseModel):
    """rate_rps: mean requests/s. gamma: inter-arrival CV `cv` (1 = Poisson, > 1 bursty)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    process: Literal["poisson", "gamma"] = "poisson"
    rate_rps: RateRps
    cv: float = Field(default=1.0, gt=0.0, le=100.0)   # CV > 100: gaps of ~0 or ~forever
    diurnal: Diurnal | None = None


class SyntheticSpec(BaseModel):
    """`workload.synthetic` in a scenario. pattern `independent` (default): each arrival is
    one request with input_tokens / output_tokens drawn independently. pattern `agentic`:
    each arrival starts a session (rate_rps is sessions/s) whose first turn's new input is
    input_tokens and every turn's generation is output_tokens; see the `agentic` block."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    arrival: Arrival
    input_tokens: Lengths
    output_tokens: Lengths
    duration_s: DurationS = 600.0
    seed: Seed = 0
    name: Text = "synthetic"
    pattern: Literal["independent", "agentic"] = "independent"
    agentic: AgenticSpec | None = None

    @model_validator(mode="after")
    def _pattern_block(self) -> "SyntheticSpec":
        if self.pattern == "agentic" and self.agentic is None:
            raise ValueError("pattern 'agentic' needs an 'agentic' block")
        if self.pattern != "agentic" and self.agentic is not None:
            raise ValueError("an 'agentic' block needs pattern: agentic")
        n = expected_arrivals(self.arrival, self.duration_s)
        if n > MAX_SYNTHETIC_REQUESTS:
            raise ValueError(synthetic_requests_message(n))
        if n < 2:
            raise ValueError(f"arrival.rate_rps x duration_s gives about {n:.2g} arrivals; a "
                             "workload needs at least 2 (raise either)")
        return self


def expected_arrivals(spec: Arrival, duration_s: float) -> float:
    """Arrivals drawn before thinning (at the peak rate of a diurnal pattern)."""
    return spec.rate_rps * (1 + (spec.diurnal.amplitude if spec.diurnal else 0.0)) * duration_s


def arrivals(spec: Arrival, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times in [0, duration_s). With a diurnal rate, candidates are drawn at the
    peak rate and thinned with probability rate(t) / peak. More than MAX_SYNTHETIC_REQUESTS
    arrivals (expected, or drawn) is an InputError; it is checked here too because
    `model_copy(update=...)` skips the spec's validator."""
    if expected_arrivals(spec, duration_s) > MAX_SYNTHETIC_REQUESTS:
        raise InputError(synthetic_requests_message(expected_arrivals(spec, duration_s)),
                         field="workload.synthetic")
    peak = spec.rate_rps * (1 + (spec.diurnal.amplitude if spec.diurnal else 0.0))
    n_guess = int(peak * duration_s * 1.2 + 10 * np.sqrt(peak * duration_s) + 10)
    times = np.zeros(0)
    while times.size == 0 or times[-1] < duration_s:
        if spec.process == "poisson" or spec.cv == 1.0:
            gaps = rng.exponential(1.0 / peak, size=n_guess)
        else:   # gamma with mean 1/peak and coefficient of variation cv
            k = 1.0 / spec.cv ** 2
            gaps = rng.gamma(k, 1.0 / (peak * k), size=n_guess)
        start = times[-1] if times.size else 0.0
        times = np.concatenate([times, start + np.cumsum(gaps)])
        if times.size > 2 * MAX_SYNTHETIC_REQUESTS and times[-1] < duration_s:
            raise InputError(synthetic_requests_message(times.size),
                             field="workload.synthetic")
    times = times[times < duration_s]
    if spec.diurnal:
        d = spec.diurnal
        rate = spec.rate_rps * (1 + d.amplitude * np.sin(2 * np.pi * (times + d.phase_s)
                                                         / d.period_s))
        times = times[rng.random(times.size) < rate / peak]
    return times


def generate(spec: SyntheticSpec) -> Trace:
    rng = np.random.Generator(np.random.PCG64(spec.seed))
    t = arrivals(spec.arrival, spec.duration_s, rng)
    if spec.pattern == "agentic":
        cols = sessions(spec.agentic, t, spec.input_tokens, spec.output_tokens,
                        spec.duration_s, rng)
        return make_trace(cols["arrival_s"], cols["input_tokens"], cols["output_tokens"],
                          name=spec.name, source=f"synthetic(agentic, seed={spec.seed})",
                          session_id=cols["session_id"], prefix_tokens=cols["prefix_tokens"])
    n = t.size
    return make_trace(t, spec.input_tokens.sample(rng, n), spec.output_tokens.sample(rng, n),
                      name=spec.name, source=f"synthetic(seed={spec.seed})")
