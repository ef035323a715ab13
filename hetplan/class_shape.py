"""What a workload class's length spread does to its queues (queueing sizing,
`hetplan.slo_capacity`): the spread of a prompt's prefill work, the decode duration and a
decoding sequence's KV, measured from the class's requests in the trace or, without them,
fitted to its mean and p90 lengths (lognormal)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hetplan.candidates import ClassLike
from hetplan.workload.classes import in_bins

_Z90 = 1.2815515655446004  # standard normal 90th percentile


@dataclass(frozen=True)
class ClassShape:
    """What a class's length spread does to its queues (`measured_shape` from the trace's
    requests in the class's bins, else `fitted_shape` from its mean and p90):
    prefill_scv: SCV of one prompt's prefill work (the service time; attention makes it
    superlinear in the prompt, so a heavy length tail weighs more than the lengths' SCV);
    prefill_inflation: E[work] / work(mean prompt), >= 1 (the candidate's capacity is
    measured at the mean prompt); decode_scv: SCV of the output length (decode duration);
    kv_scv: SCV of a decoding sequence's KV (prompt + half its output), time-weighted."""

    prefill_scv: float
    prefill_inflation: float = 1.0
    decode_scv: float = 0.0
    kv_scv: float = 0.0


def lognormal_scv(mean: float, p90: float) -> float:
    """SCV of the lognormal with this mean and 90th percentile (0 when p90 <= mean:
    treated as fixed lengths). p90 / mean = exp(z90 s - s^2 / 2) has a root s <= z90."""
    if mean <= 0 or p90 <= mean:
        return 0.0
    r = math.log(p90 / mean)
    if r >= _Z90 ** 2 / 2:          # beyond the lognormal's reach: the heaviest it can be
        s = _Z90
    else:
        s = _Z90 - math.sqrt(_Z90 ** 2 - 2 * r)
    return math.expm1(s * s)


def _scv(x: np.ndarray, weight: np.ndarray | None = None) -> float:
    m = float(np.average(x, weights=weight))
    return float(np.average((x - m) ** 2, weights=weight)) / m ** 2 if m > 0 else 0.0


def fitted_shape(w: ClassLike) -> ClassShape:
    """A class's shape from its mean and p90 lengths alone (lognormal fits; the prompt's
    prefill work taken as proportional to its length, so heavy tails are understated)."""
    mi, mo = max(w.mean_input_tokens, 1.0), max(w.mean_output_tokens, 1.0)
    s_in = lognormal_scv(w.mean_input_tokens, w.p90_input_tokens)
    return ClassShape(s_in, 1.0, lognormal_scv(w.mean_output_tokens, w.p90_output_tokens),
                      s_in * (mi / (mi + mo / 2)) ** 2)


def measured_shape(input_tokens: np.ndarray, output_tokens: np.ndarray,
                   work: Callable[[np.ndarray], np.ndarray]) -> ClassShape:
    """A class's shape from its requests; `work(prompt lengths)`: prefill work per prompt in
    any unit (`prefill_work` of the model)."""
    x = np.asarray(input_tokens, dtype=float)
    o = np.maximum(np.asarray(output_tokens, dtype=float), 1.0)
    lens, inv = np.unique(np.maximum(x, 1.0), return_inverse=True)
    w = work(lens)[inv]
    at_mean = float(work(np.array([max(float(x.mean()), 1.0)]))[0])
    return ClassShape(_scv(w), max(1.0, float(w.mean()) / at_mean), _scv(o),
                      _scv(x + o / 2, weight=o))


def prefill_work(model) -> Callable[[np.ndarray], np.ndarray]:
    """FLOPs to prefill each prompt length (`ModelSpec`: matmuls + causal attention)."""
    per_key = model.attention_flops_per_key()
    lin = 2.0 * model.matmul_params_per_token

    def work(lens: np.ndarray) -> np.ndarray:
        return np.array([lin * n + per_key * model.prefill_attended_keys(int(n))
                         for n in np.asarray(lens)], dtype=float)
    return work


def class_shapes(classes: Sequence[ClassLike], trace, model) -> tuple[tuple[str, ClassShape], ...]:
    """`measured_shape` of every class with token bins and requests in the trace (others are
    left to `fitted_shape`)."""
    if trace is None or model is None or trace.num_requests == 0:
        return ()
    work = prefill_work(model)
    inp, out = trace.input_tokens, trace.output_tokens
    shapes = []
    for w in classes:
        m = in_bins(inp, out, w)
        if m is not None and m.sum() >= 2:
            shapes.append((w.name, measured_shape(inp[m], out[m], work)))
    return tuple(shapes)
