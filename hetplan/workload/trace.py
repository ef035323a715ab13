"""A request trace: arrival times (s) and token counts, as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trace:
    """Requests sorted by arrival; the first arrives at t = 0 s."""

    arrival_s: np.ndarray        # float64, ascending
    input_tokens: np.ndarray     # int64
    output_tokens: np.ndarray    # int64
    name: str = ""
    source: str = ""
    session_id: np.ndarray | None = None
    prefix_tokens: np.ndarray | None = None

    @property
    def num_requests(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if self.num_requests > 1 else 0.0

    @property
    def mean_rate_rps(self) -> float:
        d = self.duration_s
        return (self.num_requests - 1) / d if d > 0 else 0.0

    def window_rates_rps(self, window_s: float = 60.0) -> np.ndarray:
        """Requests per second in consecutive windows of `window_s` (last partial dropped
        unless it is the only one)."""
        if self.num_requests == 0:
            return np.zeros(0)
        n_win = max(1, int(self.duration_s // window_s))
        counts = np.bincount(np.minimum((self.arrival_s // window_s).astype(np.int64),
                                        n_win - 1), minlength=n_win)
        return counts / window_s

    def planning_rate_rps(self, spec: str = "mean", window_s: float = 60.0) -> float:
        """'mean', or 'p<q>': the q-th percentile of the windowed rates (e.g. 'p95')."""
        if spec == "mean":
            return self.mean_rate_rps
        if spec.startswith("p"):
            try:
                q = float(spec[1:])
            except ValueError:
                q = -1.0
            if 0 < q <= 100:
                return float(np.percentile(self.window_rates_rps(window_s), q))
        raise ValueError(f"planning rate must be 'mean' or 'p<percentile>', not {spec!r}")


def make_trace(arrival_s, input_tokens, output_tokens, name: str = "", source: str = "",
               **extra) -> Trace:
    """Sort by arrival, shift to start at 0, fix dtypes."""
    a = np.asarray(arrival_s, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    a = a[order]
    a = a - a[0] if a.size else a
    opt = {k: (np.asarray(v, dtype=np.int64)[order] if v is not None else None)
           for k, v in extra.items()}
    return Trace(a, np.asarray(input_tokens, dtype=np.int64)[order],
                 np.asarray(output_tokens, dtype=np.int64)[order], name, source, **opt)
