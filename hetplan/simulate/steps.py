"""Step times for the simulator: the perf model's roofline, made cheap enough to call once
per engine step for a million requests.

The roofline step time (`hetplan.perf.roofline.step_time`) is a sum of parts, and only its
attention part depends on the keys attended and the KV bytes read, as
max(a x attended_keys, b x kv_bytes) with per-shape constants a, b. So a step is

    t = F(new_tokens, seqs) + max(a x attended_keys, b x kv_bytes)

with F the roofline at zero attention (prefill steps, new_tokens > seqs, with the
calibration's prefill compute scale, as PerfModel does). F is memoised: exactly for new_tokens <= 128 and for
pure decode steps (new_tokens == seqs); otherwise by linear interpolation in new_tokens on a
geometric grid with 2% steps. F is piecewise linear in new_tokens for dense models (one
compute/memory kink) and smooth for MoE (expected experts touched). Measured against
PerfModel on random prefill and mixed steps of every bundled model: dense models agree to
rounding, MoE models within 0.2% (tests/test_simulate.py requires 1%).

Eager steps (more new tokens than the engine's CUDA-graph capture size) take the larger of
their CPU launch time L and the GPU's work, as PerfModel does: F is memoised without that
excess, beside the GPU's work G(new_tokens, seqs) at zero attention, and a step adds
max(0, L - G - attention) (L from `roofline.eager_launch_s`, the graph limit from the
hardware). G is interpolated like F.

Decode steps take the replica's total context. Full-attention layers make that exact;
sliding-window layers are charged at the mean context per sequence (approximate).
"""

from __future__ import annotations

import math
import weakref

from hetplan.perf import PerfModel, ReplicaShape
from hetplan.perf.roofline import eager_launch_s, step_time, uses_cuda_graph

EXACT_TOKENS = 128
GRID_RATIO = 1.02
_LOG_RATIO = math.log(GRID_RATIO)


class StepModel:
    """Step times of one replica shape (seconds). `kv_layer_tokens(n)` is the KV footprint
    of n tokens in layer-tokens (windowed layers capped); bytes = that x bytes_per_layer_token."""

    def __init__(self, pm: PerfModel, shape: ReplicaShape):
        m = pm.model
        hw = pm.hardware(shape.gpu)
        cal = hw.cal

        def raw(new: float, seqs: float, att: float, kv: float, prefill: bool = False):
            return step_time(m, hw, shape, new_tokens=new, seqs=seqs,
                             attended_keys=att, kv_bytes_read=kv,
                             compute_scale=cal.prefill_compute_scale if prefill else 1.0)

        self._raw = raw
        self.hw = hw
        self.launch_s = eager_launch_s(m, cal)
        big = 1e12
        self.s_per_key = raw(1.0, 1.0, big, 0.0).attention_s / big
        self.s_per_key_prefill = raw(1.0, 1.0, big, 0.0, True).attention_s / big
        self.s_per_kv_byte = raw(1.0, 1.0, 0.0, big).attention_s / big
        self.model = m
        self.shape = shape
        self.win_layers = len(m.sliding_layers)
        self.full_layers = m.num_layers - self.win_layers
        self.window = m.sliding_window
        self.bytes_per_layer_token = m.kv_bytes_per_sequence(1, shape.kv_dtype) / m.num_layers
        self._f: dict[tuple, tuple[float, float]] = {}
        self._att: dict[tuple[int, int], float] = {}

    # ---- per-sequence footprints -------------------------------------------------------
    def kv_layer_tokens(self, n: float) -> float:
        if not self.win_layers:
            return self.full_layers * n
        w = self.window or n
        return self.full_layers * n + self.win_layers * min(n, w)

    def prefill_keys(self, n: int, cached: int = 0) -> float:
        """Keys attended while prefilling n tokens after `cached` (memoised)."""
        key = (n, cached)
        v = self._att.get(key)
        if v is None:
            v = self._att[key] = self.model.prefill_attended_keys(n, cached)
        return v

    # ---- step times --------------------------------------------------------------------
    def _point(self, new: float, seqs: int, prefill: bool) -> tuple[float, float]:
        """(F, G) at one point: the step without attention and without the eager excess,
        and the GPU's work."""
        b = self._raw(new, float(seqs), 0.0, 0.0, prefill)
        return b.total_s - max(0.0, b.launch_s - b.gpu_s), b.gpu_s

    def _f_exact(self, new: int, seqs: int) -> tuple[float, float]:
        key = (new, seqs)
        v = self._f.get(key)
        if v is None:
            v = self._f[key] = self._point(float(new), seqs, new > seqs)
        return v

    def base_s(self, new: int, seqs: int) -> tuple[float, float]:
        """(F, G)(new_tokens, seqs): the step without attention and without an eager
        step's launch excess, and the GPU's work."""
        if new <= EXACT_TOKENS or new == seqs:
            return self._f_exact(new, seqs)
        j = int(math.log(new / EXACT_TOKENS) / _LOG_RATIO)
        lo = EXACT_TOKENS * GRID_RATIO ** j
        hi = lo * GRID_RATIO
        key_lo, key_hi = ("g", j, seqs), ("g", j + 1, seqs)
        f = self._f
        a = f.get(key_lo)
        if a is None:
            a = f[key_lo] = self._point(lo, seqs, True)
        b = f.get(key_hi)
        if b is None:
            b = f[key_hi] = self._point(hi, seqs, True)
        w = (new - lo) / (hi - lo)
        return a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w

    def step_s(self, new: int, seqs: int, attended_keys: float, kv_layer_tokens: float) -> float:
        """A step of `new` tokens from `seqs` sequences; attention over `attended_keys` keys
        reading `kv_layer_tokens` of KV cache. A step with prompt tokens in it (new > seqs)
        is derated by the calibration's prefill_compute_scale, as in PerfModel."""
        att = (self.s_per_key_prefill if new > seqs else self.s_per_key) * attended_keys
        kv = self.s_per_kv_byte * kv_layer_tokens * self.bytes_per_layer_token
        extra = att if att > kv else kv
        base, gpu = self.base_s(new, seqs)
        if not uses_cuda_graph(self.hw, new):
            return base + extra + max(0.0, self.launch_s - gpu - extra)
        return base + extra

    def decode_s(self, batch: int, total_context: float) -> float:
        """A decode step of `batch` sequences holding `total_context` tokens between them."""
        if self.win_layers:
            per = self.kv_layer_tokens(total_context / batch) * batch
        else:
            per = self.full_layers * total_context
        return self.step_s(batch, batch, per, per)

    def prefill_s(self, lengths, cached=None) -> float:
        """A step that prefills every prompt in `lengths` (new tokens), each after its
        `cached` prefix tokens (prefix cache; default none) whose KV it reads."""
        new = 0
        att = kv = 0.0
        for i, n in enumerate(lengths):
            c = cached[i] if cached is not None else 0
            new += n
            att += self.prefill_keys(n, c)
            kv += self.kv_layer_tokens(n + c)
        return self.step_s(new, len(lengths), att, kv)


_SHARED: weakref.WeakKeyDictionary[PerfModel, dict[ReplicaShape, StepModel]] = \
    weakref.WeakKeyDictionary()


def step_model(pm: PerfModel, shape: ReplicaShape) -> StepModel:
    """The StepModel of `shape` under `pm`, one per (perf model, shape) for as long as the perf
    model lives, so its memoised step times carry over from one simulation to the next (the
    `--validate` tuner simulates the same shapes round after round). Assumes, as PerfModel's
    own cache does, that a perf model is not changed after it is built."""
    by_shape = _SHARED.setdefault(pm, {})
    steps = by_shape.get(shape)
    if steps is None:
        steps = by_shape[shape] = StepModel(pm, shape)
    return steps


class ConstantSteps:
    """A stand-in with fixed step times, for checks against queueing theory: a step with
    prompt tokens in it (more new tokens than sequences) takes `prefill_s`, a pure decode
    step `decode_s`; KV has no size."""

    bytes_per_layer_token = 0.0

    def __init__(self, prefill_s: float, decode_s: float = 0.0):
        self._p, self._d = prefill_s, decode_s

    def kv_layer_tokens(self, n: float) -> float:
        return 0.0

    def prefill_keys(self, n: int, cached: int = 0) -> float:
        return 0.0

    def step_s(self, new, seqs, attended_keys, kv_layer_tokens) -> float:
        return self._p if new > seqs else self._d

    def decode_s(self, batch: int, total_context: float) -> float:
        return self._d

    def prefill_s(self, lengths, cached=None) -> float:
        return self._p
