"""Turning chunks of raw trace rows into compact arrays, with every bad row counted.

A reader (see `formats.py`) hands `TraceBuilder.add` one chunk at a time: raw column values
under canonical names (`time`, `input_tokens`, `output_tokens`, optional `session_id`,
`prefix_tokens`) plus the file line of each row. The builder keeps only float64 arrival
seconds and int64 token counts of the rows it accepts, so memory stays proportional to the
kept requests, never to the text of the file.

Bad rows (missing, non-numeric (NaN included) or negative values, infinite or out-of-range
numbers (tokens above MAX_TOKENS, times beyond MAX_ABS_TIME_S), zero output tokens,
unparsable timestamps, invalid JSON) are never kept: they are counted per reason with the first five
line numbers, and either skipped (on_bad="skip") or rejected with an InputError naming the
file and the first bad line (on_bad="error").
"""

from __future__ import annotations

import os
import sys
import time as _time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from hetplan.bounds import MAX_ABS_TIME_S, MAX_DURATION_S, MAX_TOKENS
from hetplan.errors import InputError
from hetplan.workload.trace import Trace, make_trace

if TYPE_CHECKING:       # pandas is imported where a file is read: a CLI run that reads no
    import pandas as pd  # trace file does not pay its ~1 CPU-s import

OnBad = Literal["skip", "error"]
TIME_UNITS = ("s", "ms", "us", "datetime")
_SCALE_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
MAX_LISTED = 5


@dataclass
class LoadReport:
    """What loading a trace file found. `first_bad` holds (line, reason) of the first five
    bad rows in file order; `line_word` is "line" for text files and "row" for Parquet."""

    path: str
    format: str
    time_unit: str = ""
    line_word: str = "line"
    rows_read: int = 0
    rows_kept: int = 0
    bad_rows: int = 0
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    first_bad: list[tuple[int, str]] = field(default_factory=list)
    failed_requests: int = 0                 # BurstGPT rows with 0 response tokens
    first_failed: list[int] = field(default_factory=list)
    out_of_order: int = 0                    # rows earlier than a previous row; sorted on load
    bytes_total: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "time_unit": self.time_unit,
                "rows_read": self.rows_read, "rows_kept": self.rows_kept,
                "bad_rows": self.bad_rows, "bad_by_reason": dict(sorted(
                    self.bad_by_reason.items())),
                f"first_bad_{self.line_word}s": [n for n, _ in self.first_bad],
                "failed_requests": self.failed_requests,
                f"first_failed_{self.line_word}s": list(self.first_failed),
                "out_of_order": self.out_of_order, "notes": list(self.notes)}

    def warnings(self) -> list[str]:
        """One line per thing the user should know (empty when the file was clean)."""
        out = []
        w = self.line_word
        if self.bad_rows:
            firsts = ", ".join(f"{n} ({r})" for n, r in self.first_bad)
            out.append(f"skipped {_count(self.bad_rows, 'bad row')}; first at "
                       f"{w}{'s' * (len(self.first_bad) > 1)} {firsts}")
        if self.failed_requests:
            out.append(f"skipped {_count(self.failed_requests, 'failed request')} (0 response "
                       f"tokens); first at {w}{'s' * (len(self.first_failed) > 1)} "
                       f"{', '.join(map(str, self.first_failed))}")
        if self.out_of_order:
            out.append(f"{_count(self.out_of_order, 'row')} arrived before an earlier row; "
                       "sorted by arrival (stable)")
        return out + list(self.notes)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


class Progress:
    """A one-line progress display on stderr (rows read, MB of the file), shown when stderr
    is a terminal or HETPLAN_PROGRESS=1; silent otherwise. No third-party dependency."""

    def __init__(self, label: str, total_bytes: int = 0, enabled: bool | None = None,
                 interval_s: float = 0.25):
        if enabled is None:
            enabled = sys.stderr.isatty() or os.environ.get("HETPLAN_PROGRESS") == "1"
        self.label, self.total_bytes, self.enabled = label, total_bytes, enabled
        self.interval_s, self._last, self._shown = interval_s, 0.0, False

    def update(self, rows: int, bytes_done: int, force: bool = False) -> None:
        now = _time.monotonic()
        if not self.enabled or (not force and now - self._last < self.interval_s):
            return
        self._last, self._shown = now, True
        mb = f"{bytes_done / 1e6:,.1f}"
        if self.total_bytes:
            mb += f"/{self.total_bytes / 1e6:,.1f} MB ({100 * bytes_done / self.total_bytes:.0f}%)"
        else:
            mb += " MB"
        sys.stderr.write(f"\r{self.label}: {rows:,} rows, {mb}\033[K")
        sys.stderr.flush()

    def close(self, rows: int, bytes_done: int) -> None:
        if self.enabled:
            self.update(rows, bytes_done, force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


def _numeric(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values as float64, missing mask, non-numeric mask)."""
    import pandas as pd
    missing = raw.isna().to_numpy()
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return num, missing, np.isnan(num) & ~missing


_NS_RANGE = ("1677-09-22", "2262-04-11")      # UTC dates pandas' nanosecond stamps hold


def _parse_one(x) -> pd.Timestamp:
    import pandas as pd
    try:
        return pd.to_datetime(x, format="ISO8601", utc=True)
    except (ValueError, OverflowError):     # OutOfBoundsDatetime is a ValueError
        return pd.NaT


def _to_datetime(raw: pd.Series) -> pd.Series:
    """UTC timestamps, NaT where unparsable; a value out of pandas' range (years outside
    1677-2262), which fails the vectorized parse even with errors="coerce", becomes NaT."""
    import pandas as pd
    try:
        return pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
    except (ValueError, OverflowError):
        return pd.to_datetime(raw.map(_parse_one), utc=True)


class TraceBuilder:
    """Accumulates validated chunks. `columns` maps canonical names to the file's own column
    names (used in messages). With `zero_output_is_failure`, rows with 0 output tokens are
    counted as failed requests rather than bad rows. With `block_tokens`, `add` takes the
    rows' block-hash lists and derives prefix tokens (see `_prefix_from_hashes`)."""

    def __init__(self, report: LoadReport, columns: dict[str, str], time_unit: str | None,
                 on_bad: OnBad = "skip", zero_output_is_failure: bool = False,
                 block_tokens: int | None = None):
        if on_bad not in ("skip", "error"):
            raise InputError(f"must be 'skip' or 'error', not {on_bad!r}", field="on_bad")
        if time_unit is not None and time_unit not in TIME_UNITS:
            raise InputError(f"time unit must be one of {', '.join(TIME_UNITS)}, not "
                             f"{time_unit!r}", field="time_unit")
        self.report, self.columns, self.time_unit = report, columns, time_unit
        self.on_bad, self.zero_failed, self.block_tokens = on_bad, zero_output_is_failure, \
            block_tokens
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "arrival_s", "input_tokens", "output_tokens", "session_id", "prefix_tokens",
            "block_hashes")}
        self._hash_ids: dict = {}         # block hash -> dense int id (block_hashes)
        self._t0_ns: int | None = None
        self._carry_max = -np.inf
        self._session_mode: str | None = None
        self._labels: dict[str, int] = {}
        self._seen_hashes: set = set()

    # -- columns ---------------------------------------------------------------------------
    def _seconds(self, raw: pd.Series) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
        """(arrival seconds, [(reason, bad mask)]) for the time column."""
        import pandas as pd
        name = self.columns["time"]
        typed_dt = pd.api.types.is_datetime64_any_dtype(raw)     # e.g. a Parquet timestamp
        if typed_dt and self.time_unit != "datetime":
            if self.time_unit is not None:
                raise InputError(f"{name} holds timestamps; its time unit is datetime, not "
                                 f"{self.time_unit}", file=self.report.path, field="time_unit")
            self.time_unit = "datetime"
        if self.time_unit is None:        # infer from the first chunk: numbers or datetimes
            num, missing, nonnum = _numeric(raw)
            self.time_unit = "s" if (~nonnum).sum() >= nonnum.sum() else "datetime"
            self.report.notes.append(f"time unit of {name!r} inferred as {self.time_unit}")
        self.report.time_unit = self.time_unit
        if self.time_unit != "datetime":
            num, missing, nonnum = _numeric(raw)
            sec = num * _SCALE_S[self.time_unit]
            with np.errstate(invalid="ignore"):
                huge = ~np.isnan(sec) & ~(np.abs(sec) <= MAX_ABS_TIME_S)
            return np.where(huge, 0.0, sec), [
                (f"missing {name}", missing), (f"non-numeric {name}", nonnum),
                (f"negative {name}", num < 0),
                (f"{name} beyond {MAX_ABS_TIME_S:g} s", huge)]
        missing = raw.isna().to_numpy()
        if typed_dt:
            dt = raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")
        else:
            dt = _to_datetime(raw.astype("string"))
        # a timestamp pandas parses at a coarser unit may lie outside int64 nanoseconds
        lo, hi = (pd.Timestamp(d, tz="UTC") for d in _NS_RANGE)
        ok = (dt.notna() & (dt >= lo) & (dt <= hi)).to_numpy()
        ns = np.zeros(len(raw), dtype=np.int64)
        ns[ok] = dt[ok].dt.as_unit("ns").astype("int64").to_numpy()
        if self._t0_ns is None and ok.any():
            self._t0_ns = int(ns[ok][0])
        sec = (ns - (self._t0_ns or 0)).astype(np.float64) / 1e9
        return sec, [(f"missing {name}", missing),
                     (f"unparsable timestamp in {name}", ~ok & ~missing)]

    def _sessions(self, raw: pd.Series) -> np.ndarray:
        """int64 session ids, -1 where missing. Integer ids are kept; text labels are
        numbered in order of first appearance."""
        num, missing, nonnum = _numeric(raw)
        present = ~missing
        with np.errstate(invalid="ignore"):
            whole = ~nonnum & (np.abs(num) < 2.0**53) & (num == np.floor(num))
        if self._session_mode is None and present.any():
            integral = whole[present]
            self._session_mode = "int" if integral.all() else "label"
        out = np.full(len(raw), -1, dtype=np.int64)
        if self._session_mode == "int":
            if not whole[present].all():
                raise InputError(f"{self.columns['session_id']} mixes integer ids and text "
                                 "labels", file=self.report.path)
            out[present] = num[present].astype(np.int64)
        elif self._session_mode == "label":
            import pandas as pd
            codes, uniques = pd.factorize(raw.astype("string"))
            glob = np.array([self._labels.setdefault(str(u), len(self._labels))
                             for u in uniques], dtype=np.int64)
            out[codes >= 0] = glob[codes[codes >= 0]]
        return out

    def _prefix_from_hashes(self, hashes: list, input_tokens: np.ndarray) -> np.ndarray:
        """Shared-prefix estimate from block hashes: the tokens of a request's leading blocks
        whose hash an earlier (kept) request in the file already had, capped at its input.
        Blocks after the first unseen one do not count (a KV prefix cache matches prefixes)."""
        b = self.block_tokens
        out = np.zeros(len(hashes), dtype=np.int64)
        seen = self._seen_hashes
        for i, hs in enumerate(hashes):
            if not isinstance(hs, list):
                continue
            k = 0
            for h in hs:
                if h not in seen:
                    break
                k += 1
            out[i] = min(k * b, int(input_tokens[i]))
            seen.update(hs)
        return out

    def _dense_blocks(self, hashes: list) -> np.ndarray:
        """Per row, its block hashes as dense int64 ids (object array; an empty array
        where a row has no list), for the prefix-cache model (`hetplan.workload.prefix`)."""
        ids = self._hash_ids
        out = np.empty(len(hashes), dtype=object)
        for i, hs in enumerate(hashes):
            hs = hs if isinstance(hs, list) else []
            out[i] = np.fromiter((ids.setdefault(h, len(ids)) for h in hs), dtype=np.int64,
                                 count=len(hs))
        return out

    # -- chunks ----------------------------------------------------------------------------
    def add(self, chunk: dict[str, pd.Series], lines: np.ndarray,
            invalid: np.ndarray | None = None, hashes: list | None = None) -> None:
        """Validate one chunk. `invalid` marks rows the reader could not parse at all."""
        n = len(lines)
        if n == 0:
            return
        rep, cols = self.report, self.columns
        checks: list[tuple[str, np.ndarray]] = []
        if invalid is not None:
            checks.append(("invalid JSON object", invalid))
        sec, time_checks = self._seconds(chunk["time"])
        checks += time_checks
        tok = {}
        for key in ("input_tokens", "output_tokens"):
            num, missing, nonnum = _numeric(chunk[key])
            too_big = num > MAX_TOKENS         # infinity included; would overflow int64
            checks += [(f"missing {cols[key]}", missing), (f"non-numeric {cols[key]}", nonnum),
                       (f"negative {cols[key]}", num < 0),
                       (f"{cols[key]} above {MAX_TOKENS:,}", too_big)]
            tok[key] = np.rint(np.where(np.isnan(num) | too_big | (num < 0), -1.0, num))
        failed = np.zeros(n, dtype=bool)
        zero_out = tok["output_tokens"] == 0
        if self.zero_failed:
            failed = zero_out
        else:
            checks.append((f"zero {cols['output_tokens']}", zero_out))
        prefix = None
        if "prefix_tokens" in chunk:
            num, missing, nonnum = _numeric(chunk["prefix_tokens"])
            name = cols["prefix_tokens"]
            checks += [(f"non-numeric {name}", nonnum), (f"negative {name}", num < 0),
                       (f"{name} > {cols['input_tokens']}", num > tok["input_tokens"])]
            prefix = np.rint(np.where(np.isnan(num) | (num > MAX_TOKENS) | (num < 0), 0.0,
                                      num))

        bad = np.zeros(n, dtype=bool)
        first_reason: list[tuple[np.ndarray, str]] = []
        for reason, mask in checks:
            new = mask & ~bad
            if new.any():
                rep.bad_by_reason[reason] = rep.bad_by_reason.get(reason, 0) + int(new.sum())
                first_reason.append((new, reason))
                bad |= new
        failed &= ~bad
        rep.rows_read += n
        if bad.any() or failed.any():
            self._record(lines, bad, failed, first_reason)
        keep = ~(bad | failed)
        a = sec[keep]
        if a.size:
            running = np.maximum.accumulate(np.concatenate([[self._carry_max], a]))
            rep.out_of_order += int((a < running[:-1]).sum())
            self._carry_max = running[-1]
        inp = tok["input_tokens"][keep].astype(np.int64)
        self._parts["arrival_s"].append(a)
        self._parts["input_tokens"].append(inp)
        self._parts["output_tokens"].append(tok["output_tokens"][keep].astype(np.int64))
        if "session_id" in chunk:
            self._parts["session_id"].append(self._sessions(chunk["session_id"])[keep])
        if hashes is not None and self.block_tokens:
            kept = [h for h, k in zip(hashes, keep) if k]
            self._parts["prefix_tokens"].append(self._prefix_from_hashes(kept, inp))
            self._parts["block_hashes"].append(self._dense_blocks(kept))
        elif prefix is not None:
            self._parts["prefix_tokens"].append(prefix[keep].astype(np.int64))
        rep.rows_kept += int(keep.sum())

    def _record(self, lines, bad, failed, first_reason) -> None:
        rep = self.report
        rep.bad_rows += int(bad.sum())
        rep.failed_requests += int(failed.sum())
        if len(rep.first_bad) < MAX_LISTED and bad.any():
            found = sorted((int(lines[i]), reason) for mask, reason in first_reason
                           for i in np.flatnonzero(mask)[:MAX_LISTED])
            rep.first_bad += found[:MAX_LISTED - len(rep.first_bad)]
        if len(rep.first_failed) < MAX_LISTED and failed.any():
            rep.first_failed += [int(x) for x in lines[failed][:MAX_LISTED
                                                              - len(rep.first_failed)]]
        if self.on_bad == "error":
            what = [(n, r) for n, r in rep.first_bad[:1]] + [
                (n, f"failed request (0 {self.columns['output_tokens']})")
                for n in rep.first_failed[:1]]
            n, reason = min(what)
            raise InputError(f"{rep.line_word} {n}: {reason}", file=rep.path)

    def finish(self, name: str, source: str) -> Trace:
        p = self._parts
        if not p["arrival_s"] or sum(x.size for x in p["arrival_s"]) == 0:
            raise InputError("no valid requests" + (f" ({self.report.bad_rows:,} bad rows)"
                             if self.report.bad_rows else ""), file=self.report.path)
        cat = {}
        for k, parts in p.items():       # one column at a time: peak = kept arrays + 1 column
            cat[k] = np.concatenate(parts) if parts else None
            parts.clear()
        extra = {k: cat[k] for k in ("session_id", "prefix_tokens", "block_hashes")
                 if cat[k] is not None}
        if "block_hashes" in extra and not any(c.size for c in extra["block_hashes"]):
            del extra["block_hashes"]           # a file without hash lists
        if "block_hashes" in extra:
            extra["block_tokens"] = self.block_tokens
        span = float(cat["arrival_s"].max() - cat["arrival_s"].min())
        if span > MAX_DURATION_S:
            raise InputError(f"arrivals span {span:.3g} s, more than {MAX_DURATION_S:g} s; "
                             "check the time unit", file=self.report.path,
                             field=self.columns["time"])
        t = make_trace(cat["arrival_s"], cat["input_tokens"], cat["output_tokens"], name=name,
                       source=source, **extra)
        return replace(t, report=self.report)
