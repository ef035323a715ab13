"""Seeded synthetic workloads: Poisson or gamma (bursty) arrivals with an optional diurnal
rate, and fixed / uniform / lognormal / empirical length distributions.

Deterministic: numpy's PCG64 seeded with `seed`; the same spec gives the same trace.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from hetplan.workload.trace import Trace, make_trace


class Diurnal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period_s: PositiveFloat = 86_400.0
    amplitude: float = Field(default=0.5, ge=0.0, lt=1.0)
    phase_s: float = 0.0


class Arrival(BaseModel):
    """rate_rps: mean requests/s. gamma: inter-arrival CV `cv` (1 = Poisson, > 1 bursty)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    process: Literal["poisson", "gamma"] = "poisson"
    rate_rps: PositiveFloat
    cv: PositiveFloat = 1.0
    diurnal: Diurnal | None = None


class Lengths(BaseModel):
    """Token-length distribution. lognormal: `median` (or `mean`) and `sigma`; all kinds are
    clipped to [min, max] and rounded to whole tokens >= 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dist: Literal["fixed", "uniform", "lognormal", "empirical"]
    value: int | None = Field(default=None, ge=1)
    median: PositiveFloat | None = None
    mean: PositiveFloat | None = None
    sigma: float | None = Field(default=None, ge=0.0)
    min: int = Field(default=1, ge=1)
    max: int = Field(default=1_000_000, ge=1)
    values: list[int] | None = None
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "Lengths":
        need = {"fixed": self.value is not None,
                "uniform": self.min <= self.max,
                "lognormal": self.sigma is not None and (self.median or self.mean) is not None,
                "empirical": bool(self.values) and (self.weights is None
                                                    or len(self.weights) == len(self.values))}
        if not need[self.dist]:
            raise ValueError({"fixed": "fixed needs 'value'", "uniform": "min must be <= max",
                              "lognormal": "lognormal needs 'sigma' and 'median' or 'mean'",
                              "empirical": "empirical needs 'values' (and equal-length "
                                           "'weights')"}[self.dist])
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.dist == "fixed":
            x = np.full(n, float(self.value))
        elif self.dist == "uniform":
            x = rng.integers(self.min, self.max + 1, size=n).astype(float)
        elif self.dist == "lognormal":
            mu = np.log(self.median) if self.median else np.log(self.mean) - self.sigma ** 2 / 2
            x = rng.lognormal(mu, self.sigma, size=n)
        else:
            w = np.asarray(self.weights if self.weights else [1.0] * len(self.values), float)
            x = rng.choice(np.asarray(self.values, float), size=n, p=w / w.sum())
        return np.clip(np.rint(x), self.min, self.max).astype(np.int64)


class SyntheticSpec(BaseModel):
    """`workload.synthetic` in a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arrival: Arrival
    input_tokens: Lengths
    output_tokens: Lengths
    duration_s: PositiveFloat = 600.0
    seed: int = 0
    name: str = "synthetic"


def arrivals(spec: Arrival, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times in [0, duration_s). With a diurnal rate, candidates are drawn at the
    peak rate and thinned with probability rate(t) / peak."""
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
    n = t.size
    return make_trace(t, spec.input_tokens.sample(rng, n), spec.output_tokens.sample(rng, n),
                      name=spec.name, source=f"synthetic(seed={spec.seed})")
