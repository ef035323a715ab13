"""Distributions for synthetic workloads: token lengths (whole tokens) and durations
(seconds). Both are pydantic models so a spec file names them with one clear error."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hetplan.bounds import MAX_DURATION_S, NonNegDurationS, TokenCount, TokenLength

MAX_SIGMA = 10.0          # lognormal shape: beyond this the draws are 0 or overflow
MAX_EMPIRICAL_VALUES = 100_000


class Lengths(BaseModel):
    """Token-length distribution. lognormal: `median` (or `mean`) and `sigma`; all kinds are
    clipped to [min, max] and rounded to whole tokens >= 1 (at most MAX_TOKENS)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dist: Literal["fixed", "uniform", "lognormal", "empirical"]
    value: TokenCount | None = None
    median: TokenLength | None = None
    mean: TokenLength | None = None
    sigma: float | None = Field(default=None, ge=0.0, le=MAX_SIGMA)
    min: TokenCount = 1
    max: TokenCount = 1_000_000
    values: list[TokenCount] | None = Field(default=None, max_length=MAX_EMPIRICAL_VALUES)
    weights: list[Annotated[float, Field(ge=0.0, le=1e12)]] | None = Field(
        default=None, max_length=MAX_EMPIRICAL_VALUES)

    @model_validator(mode="after")
    def _complete(self) -> "Lengths":
        need = {"fixed": self.value is not None,
                "uniform": self.min <= self.max,
                "lognormal": self.sigma is not None and (self.median or self.mean) is not None,
                "empirical": bool(self.values) and (self.weights is None
                                                    or (len(self.weights) == len(self.values)
                                                        and sum(self.weights) > 0))}
        if not need[self.dist]:
            raise ValueError({"fixed": "fixed needs 'value'", "uniform": "min must be <= max",
                              "lognormal": "lognormal needs 'sigma' and 'median' or 'mean'",
                              "empirical": "empirical needs 'values' (and equal-length "
                                           "'weights' with a positive sum)"}[self.dist])
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


class Durations(BaseModel):
    """A duration distribution in seconds. fixed: `value`; exponential: `mean`;
    lognormal: `median` (or `mean`) and `sigma`; uniform: [min_s, max_s]. All kinds are
    clipped to [min_s, max_s]."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dist: Literal["fixed", "exponential", "lognormal", "uniform"]
    value: NonNegDurationS | None = None
    mean: Annotated[float, Field(gt=0.0, le=MAX_DURATION_S)] | None = None
    median: Annotated[float, Field(gt=0.0, le=MAX_DURATION_S)] | None = None
    sigma: float | None = Field(default=None, ge=0.0, le=MAX_SIGMA)
    min_s: NonNegDurationS = 0.0
    max_s: NonNegDurationS = 86_400.0

    @model_validator(mode="after")
    def _complete(self) -> "Durations":
        need = {"fixed": self.value is not None,
                "exponential": self.mean is not None,
                "lognormal": self.sigma is not None and (self.median or self.mean) is not None,
                "uniform": self.min_s <= self.max_s}
        if not need[self.dist] or self.min_s > self.max_s:
            raise ValueError({"fixed": "fixed needs 'value'", "exponential":
                              "exponential needs 'mean'", "lognormal":
                              "lognormal needs 'sigma' and 'median' or 'mean'",
                              "uniform": "min_s must be <= max_s"}[self.dist]
                             if not need[self.dist] else "min_s must be <= max_s")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.dist == "fixed":
            x = np.full(n, float(self.value))
        elif self.dist == "exponential":
            x = rng.exponential(self.mean, size=n)
        elif self.dist == "lognormal":
            mu = np.log(self.median) if self.median else np.log(self.mean) - self.sigma ** 2 / 2
            x = rng.lognormal(mu, self.sigma, size=n)
        else:
            x = rng.uniform(self.min_s, self.max_s, size=n)
        return np.clip(x, self.min_s, self.max_s)
