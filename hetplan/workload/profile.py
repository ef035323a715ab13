"""Rate profile: the demand of every workload class in consecutive time slots, for planning
capacity over time (`hetplan schedule`).

A profile comes from a trace (requests counted per slot) or from a rate shape (a sinusoid
or a piecewise rate over a period, e.g. a day), and is taken at the planning rate inside
each slot: `mean` (requests / slot length), `p<q>` (q-th percentile over the slot's
windows of `window_s`) or `r<q>` (the same, over requests), the rules of
`Trace.planning_rate_rps` applied slot by slot. Class shares are counted per slot from a
trace and fixed (the classes' own shares) for a shape.

Assumptions: slots start at t = 0 and cover the horizon (default: the trace's span); a last
partial slot is kept with its own length. A horizon longer than MAX_HORIZON_S, a slot
shorter than MIN_SLOT_S, an empty slot and a negative rate are one-line InputErrors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hetplan.bounds import (DEFAULT_SLOT_S, MAX_HORIZON_S, MIN_SLOT_S, DurationS, FiniteFloat,
                            RateRps)
from hetplan.errors import InputError
from hetplan.workload.classes import WorkloadClass, in_bins
from hetplan.workload.trace import Trace, parse_planning_rate

SHAPE_SAMPLES_PER_SLOT = 60     # a shape's rate is read at this many points of a slot at most


class RateShape(BaseModel):
    """A synthetic rate over time: `base_rps` times a sinusoid (1 + amplitude x sin(2 pi
    (t + phase_s) / period_s)) or, when `multipliers` is given, a piecewise-constant factor
    per equal part of the period (24 values over a day: one per hour). Factors of 0 are
    allowed (a slot where all of them are 0 is an empty slot, an error when profiled)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    base_rps: RateRps
    period_s: DurationS = 86_400.0
    amplitude: float = Field(default=0.0, ge=0.0, le=1.0)
    phase_s: FiniteFloat = 0.0
    multipliers: list[float] | None = Field(default=None, min_length=1, max_length=10_080)

    @model_validator(mode="after")
    def _non_negative(self) -> "RateShape":
        for i, m in enumerate(self.multipliers or []):
            if not (math.isfinite(m) and m >= 0):
                raise ValueError(f"multipliers.{i} is {m}: a rate factor must be >= 0 "
                                 "(negative rates are not demand)")
        if self.multipliers is not None and self.amplitude:
            raise ValueError("give either a sinusoid (amplitude) or multipliers, not both")
        return self

    def rate_rps(self, t_s: np.ndarray) -> np.ndarray:
        phase = (np.asarray(t_s, dtype=float) + self.phase_s) / self.period_s
        if self.multipliers is None:
            return self.base_rps * (1.0 + self.amplitude * np.sin(2 * np.pi * phase))
        m = np.asarray(self.multipliers, dtype=float)
        idx = np.floor((phase % 1.0) * m.size).astype(np.int64).clip(0, m.size - 1)
        return self.base_rps * m[idx]


@dataclass(frozen=True)
class RateProfile:
    """rates_rps[t, i]: planning rate of class `classes[i]` in slot t (slot t spans
    [starts_s[t], starts_s[t] + lengths_s[t]))."""

    slot_s: float
    starts_s: np.ndarray
    lengths_s: np.ndarray
    classes: tuple[str, ...]
    rates_rps: np.ndarray
    planning_rate: str
    window_s: float
    source: str                     # "trace" or "shape"

    @property
    def num_slots(self) -> int:
        return int(self.starts_s.size)

    @property
    def total_rps(self) -> np.ndarray:
        return self.rates_rps.sum(axis=1)

    @property
    def slot_hours(self) -> np.ndarray:
        return self.lengths_s / 3600.0

    def slot_classes(self, classes: Sequence[WorkloadClass], t: int) -> list[WorkloadClass]:
        """`classes` at slot t's rates (their lengths and bins unchanged)."""
        return [replace(w, rate_rps=float(self.rates_rps[t, self.classes.index(w.name)]))
                for w in classes]

    def to_dict(self) -> dict:
        tot = self.total_rps
        return {"slot_s": self.slot_s, "slots": self.num_slots, "source": self.source,
                "planning_rate": self.planning_rate, "window_s": self.window_s,
                "horizon_s": float(self.lengths_s.sum()),
                "peak_rps": float(tot.max()), "mean_rps": float(np.average(
                    tot, weights=self.lengths_s)), "min_rps": float(tot.min()),
                "classes": list(self.classes),
                "slot_start_s": [float(x) for x in self.starts_s],
                "total_rps": [float(x) for x in tot],
                "class_rps": [[float(x) for x in row] for row in self.rates_rps]}


def slot_grid(horizon_s: float, slot_s: float = DEFAULT_SLOT_S,
              field: str = "schedule") -> tuple[np.ndarray, np.ndarray]:
    """Slot starts and lengths over [0, horizon_s); checks the limits (one-line errors)."""
    if not (math.isfinite(slot_s) and slot_s >= MIN_SLOT_S):
        raise InputError(f"a slot of {slot_s:g} s is shorter than {MIN_SLOT_S:g} s "
                         "(per-minute billing is the finest a schedule follows)",
                         field=f"{field}.slot_s")
    if not (math.isfinite(horizon_s) and horizon_s > 0):
        raise InputError(f"the horizon must be > 0 s, not {horizon_s:g}",
                         field=f"{field}.horizon_s")
    if horizon_s > MAX_HORIZON_S * (1 + 1e-9):
        raise InputError(f"a horizon of {horizon_s:,.0f} s is longer than a week "
                         f"({MAX_HORIZON_S:,.0f} s); set {field}.horizon_s to a week or less",
                         field=f"{field}.horizon_s")
    slot = min(slot_s, horizon_s)
    n = max(1, math.ceil(horizon_s / slot - 1e-6))
    starts = np.arange(n) * slot
    lengths = np.minimum(slot, horizon_s - starts)
    return starts, lengths


def class_index(trace: Trace, classes: Sequence[WorkloadClass]) -> np.ndarray:
    """The class (index into `classes`) of every request, by the classes' token bins; -1
    where none holds it (classes given by figures, not bucketed from this trace)."""
    idx = np.full(trace.num_requests, -1, dtype=np.int64)
    for i, w in enumerate(classes):
        idx[in_bins(trace.input_tokens, trace.output_tokens, w) & (idx < 0)] = i
    return idx


def _slot_rate(arr_s: np.ndarray, start: float, length: float, kind: str, q: float,
               window_s: float) -> float:
    """The planning rate of the requests `arr_s` of one slot (the rules of
    `Trace.planning_rate_rps`, windows counted from the slot's start)."""
    if kind == "mean":
        return arr_s.size / length
    w = min(window_s, length)
    n_win = max(1, int(length // w))
    idx = ((arr_s - start) // w).astype(np.int64)
    idx = idx[idx < n_win]
    counts = np.bincount(idx, minlength=n_win) / w
    vals = counts if kind == "p" else counts[idx]
    return float(np.percentile(vals, q)) if vals.size else 0.0


def profile_from_trace(trace: Trace, classes: Sequence[WorkloadClass],
                       slot_s: float = DEFAULT_SLOT_S, horizon_s: float | None = None,
                       planning_rate: str = "mean", window_s: float = 60.0,
                       field: str = "schedule") -> RateProfile:
    """The per-slot, per-class demand of `trace` (see the module docstring)."""
    kind, q = parse_planning_rate(planning_rate)
    horizon = trace.duration_s if horizon_s is None else horizon_s
    if horizon_s is None and horizon > MAX_HORIZON_S:
        raise InputError(f"the trace spans {horizon:,.0f} s, longer than a week "
                         f"({MAX_HORIZON_S:,.0f} s); set {field}.horizon_s to plan its "
                         "first week", field=f"{field}.horizon_s")
    starts, lengths = slot_grid(horizon, slot_s, field)
    cls = class_index(trace, classes)
    n_cls = len(classes)
    rates = np.zeros((starts.size, n_cls))
    lo = np.searchsorted(trace.arrival_s, starts, side="left")
    hi = np.searchsorted(trace.arrival_s, starts + lengths, side="left")
    if hi.size:       # the last arrival sits exactly at the horizon: count it in the last slot
        hi[-1] = np.searchsorted(trace.arrival_s, starts[-1] + lengths[-1], side="right")
    for t in range(starts.size):
        arr = trace.arrival_s[lo[t]:hi[t]]
        c = cls[lo[t]:hi[t]]
        c = c[c >= 0]
        if c.size == 0:
            raise InputError(f"slot {t} ([{starts[t]:,.0f}, {starts[t] + lengths[t]:,.0f}) s) "
                             "has no requests: an empty slot has no demand to plan; use "
                             f"longer slots ({field}.slot_s) or a horizon the trace covers",
                             field=f"{field}.slot_s")
        total = _slot_rate(arr, float(starts[t]), float(lengths[t]), kind, q, window_s)
        rates[t] = total * np.bincount(c, minlength=n_cls) / c.size
    return RateProfile(float(min(slot_s, horizon)), starts, lengths,
                       tuple(w.name for w in classes), rates, planning_rate, window_s, "trace")


def profile_from_shape(shape: RateShape, classes: Sequence[WorkloadClass],
                       slot_s: float = DEFAULT_SLOT_S, horizon_s: float | None = None,
                       planning_rate: str = "mean", window_s: float = 60.0,
                       field: str = "schedule") -> RateProfile:
    """The per-slot demand of a rate shape; the classes keep their shares of the trace the
    scenario bucketed. Default horizon: one period."""
    kind, q = parse_planning_rate(planning_rate)
    starts, lengths = slot_grid(shape.period_s if horizon_s is None else horizon_s, slot_s,
                                field)
    shares = np.array([w.share for w in classes], dtype=float)
    if shares.sum() <= 0:
        raise InputError("the classes carry no requests to share the rate among",
                         field=f"{field}.profile")
    shares = shares / shares.sum()
    rates = np.zeros((starts.size, len(classes)))
    for t in range(starts.size):
        n = int(min(SHAPE_SAMPLES_PER_SLOT, max(1, lengths[t] // min(window_s, lengths[t]))))
        pts = starts[t] + (np.arange(n) + 0.5) * lengths[t] / n
        r = np.maximum(shape.rate_rps(pts), 0.0)
        if kind == "mean":
            total = float(r.mean())
        elif kind == "p":
            total = float(np.percentile(r, q))
        else:                     # over requests: each point weighted by its rate
            order = np.argsort(r)
            cum = np.cumsum(r[order])
            total = float(r[order][np.searchsorted(cum, q / 100 * cum[-1])]) if cum[-1] else 0.0
        if total <= 0:
            raise InputError(f"slot {t} ([{starts[t]:,.0f}, {starts[t] + lengths[t]:,.0f}) s) "
                             "has a zero rate: an empty slot has no demand to plan",
                             field=f"{field}.profile")
        rates[t] = total * shares
    return RateProfile(float(min(slot_s, lengths.sum())), starts, lengths,
                       tuple(w.name for w in classes), rates, planning_rate, window_s, "shape")
