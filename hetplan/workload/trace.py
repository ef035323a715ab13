"""A request trace: arrival times (s) and token counts, as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hetplan.bounds import MAX_RATE_WINDOWS
from hetplan.errors import InputError


@dataclass(frozen=True)
class Trace:
    """Requests sorted by arrival; the first arrives at t = 0 s."""

    arrival_s: np.ndarray        # float64, ascending
    input_tokens: np.ndarray     # int64
    output_tokens: np.ndarray    # int64
    name: str = ""
    source: str = ""
    session_id: np.ndarray | None = None       # int64; -1 = no session
    prefix_tokens: np.ndarray | None = None    # int64; leading tokens shared with earlier requests
    # object array: per request, its prompt's block ids (int64 array; Mooncake `hash_ids`
    # mapped to dense ids), each block `block_tokens` tokens; None when the file has none
    block_hashes: np.ndarray | None = None
    block_tokens: int = 0
    report: Any = field(default=None, compare=False, repr=False)   # LoadReport of a file

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

    def _full_windows(self, window_s: float) -> tuple[np.ndarray, int]:
        """Window index of every request in a full window from t = 0, and the window count.
        A last, partial window is dropped (it would read low, or double-count if merged into
        its neighbour) unless it is the only one. More than MAX_RATE_WINDOWS windows is an
        InputError (a tiny window over a long trace would allocate gigabytes)."""
        if not window_s > 0 or self.duration_s / window_s > MAX_RATE_WINDOWS:
            raise InputError(f"a {window_s:g}-s window over a {self.duration_s:.6g}-s trace makes "
                             f"more than {MAX_RATE_WINDOWS:,} windows; use a longer window",
                             field="window")
        n_win = max(1, int(self.duration_s // window_s))
        idx = (self.arrival_s // window_s).astype(np.int64)
        return idx[idx < n_win], n_win

    def window_rates_rps(self, window_s: float = 60.0) -> np.ndarray:
        """Requests per second in consecutive full windows of `window_s` from t = 0."""
        if self.num_requests == 0:
            return np.zeros(0)
        idx, n_win = self._full_windows(window_s)
        return np.bincount(idx, minlength=n_win) / window_s

    def request_window_rates_rps(self, window_s: float = 60.0) -> np.ndarray:
        """For every request (of the full windows), the rate of the window it arrived in:
        the rate a request sees, which in a bursty trace is far above the time average."""
        if self.num_requests == 0:
            return np.zeros(0)
        idx, n_win = self._full_windows(window_s)
        return np.bincount(idx, minlength=n_win)[idx] / window_s

    def planning_rate_rps(self, spec: str = "mean", window_s: float = 60.0) -> float:
        """See `parse_planning_rate` for `spec`."""
        kind, q = parse_planning_rate(spec)
        if kind == "mean":
            return self.mean_rate_rps
        rates = (self.window_rates_rps(window_s) if kind == "p"
                 else self.request_window_rates_rps(window_s))
        return float(np.percentile(rates, q))


def parse_planning_rate(spec: str) -> tuple[str, float]:
    """('mean', 0) for 'mean'; ('p', q) for 'p<q>', the q-th percentile over time of the
    windowed rate (e.g. 'p95'); ('r', q) for 'r<q>', the q-th percentile over requests of the
    rate of the window each arrived in (an SLO counted over requests sees the bursts most
    requests arrive in). 0 < q <= 100; anything else is a ValueError."""
    if spec == "mean":
        return "mean", 0.0
    q = -1.0
    if spec[:1] in ("p", "r"):
        try:
            q = float(spec[1:])
        except ValueError:
            pass
    if not 0 < q <= 100:
        raise ValueError("planning rate must be 'mean', 'p<percentile>' (over time of the "
                         "windowed rate) or 'r<percentile>' (over requests), 0 < q <= 100; "
                         f"not {spec!r}")
    return spec[0], q


def make_trace(arrival_s, input_tokens, output_tokens, name: str = "", source: str = "",
               **extra) -> Trace:
    """Sort by arrival (stable), shift to start at 0, fix dtypes. Already-sorted int64 input
    is not copied (large traces)."""
    a = np.asarray(arrival_s, dtype=np.float64)
    order = None if a.size < 2 or bool(np.all(a[1:] >= a[:-1])) else np.argsort(a, kind="stable")

    def arr(v, dtype):
        v = np.asarray(v, dtype=dtype)
        return v if order is None else v[order]

    a = arr(a, np.float64)
    if a.size and a[0] != 0:
        a = a - a[0]
    blocks = extra.pop("block_hashes", None)
    opt = {k: (arr(v, np.int64) if v is not None else None) for k, v in extra.items()
           if k != "block_tokens"}
    if blocks is not None:
        opt["block_hashes"] = blocks if order is None else blocks[order]
        opt["block_tokens"] = int(extra.get("block_tokens") or 0)
    return Trace(a, arr(input_tokens, np.int64), arr(output_tokens, np.int64), name, source,
                 **opt)
