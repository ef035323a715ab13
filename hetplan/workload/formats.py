"""Trace file formats: the public LLM traces and generic CSV / JSONL / Parquet files.

| format   | file  | time column (unit)          | input / output tokens             |
|----------|-------|-----------------------------|-----------------------------------|
| azure    | CSV   | TIMESTAMP (datetime)        | ContextTokens / GeneratedTokens   |
| burstgpt | CSV   | Timestamp (s)               | Request tokens / Response tokens  |
| mooncake | JSONL | timestamp (ms)              | input_length / output_length      |
| generic  | any   | arrival_s (s) or timestamp  | input_tokens / output_tokens      |

`azure` covers the Azure LLM inference traces of 2023 (Splitwise) and 2024 (DynamoLLM);
their timestamps carry 7 fractional digits, parsed to the nanosecond. BurstGPT rows with 0
response tokens are failed requests: counted and skipped. Mooncake rows carry `hash_ids`
(one hash per 512-token block); `prefix_tokens` is derived from them (see
`TraceBuilder._prefix_from_hashes`). A generic file may name its columns with a column map
({arrival_s | timestamp, input_tokens, output_tokens, session_id, prefix_tokens} -> column)
and give its time unit (s, ms, us, datetime; inferred when absent).

Files are read in chunks (pandas for CSV, line by line for JSONL, record batches for
Parquet), optionally gzip-compressed (`.gz`); only compact arrays are kept.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hetplan.errors import InputError
from hetplan.io import open_input
from hetplan.workload.ingest import LoadReport, OnBad, Progress, TraceBuilder
from hetplan.workload.trace import Trace

MOONCAKE_BLOCK_TOKENS = 512
CANONICAL = ("time", "input_tokens", "output_tokens", "session_id", "prefix_tokens")
MAP_KEYS = {"arrival_s": "time", "timestamp": "time", "input_tokens": "input_tokens",
            "output_tokens": "output_tokens", "session_id": "session_id",
            "prefix_tokens": "prefix_tokens"}


@dataclass(frozen=True)
class FormatSpec:
    name: str
    container: str | None                  # csv | jsonl | parquet; None: from the file
    columns: dict[str, str] = field(default_factory=dict)   # canonical -> file column
    time_unit: str | None = None
    zero_output_is_failure: bool = False
    block_tokens: int | None = None        # hash_ids block size (Mooncake)


FORMATS = {
    "azure": FormatSpec("azure", "csv", {"time": "TIMESTAMP", "input_tokens": "ContextTokens",
                                         "output_tokens": "GeneratedTokens"}, "datetime"),
    "burstgpt": FormatSpec("burstgpt", "csv", {"time": "Timestamp",
                                               "input_tokens": "Request tokens",
                                               "output_tokens": "Response tokens"}, "s",
                           zero_output_is_failure=True),
    "mooncake": FormatSpec("mooncake", "jsonl", {"time": "timestamp",
                                                 "input_tokens": "input_length",
                                                 "output_tokens": "output_length"}, "ms",
                           block_tokens=MOONCAKE_BLOCK_TOKENS),
    "generic": FormatSpec("generic", None),
}
ALIASES = {"azure2023": "azure", "azure2024": "azure", "azure-2023": "azure",
           "azure-2024": "azure", "csv": "generic", "jsonl": "generic", "parquet": "generic"}
FORMAT_NAMES = sorted(set(FORMATS) | set(ALIASES))


def _container(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext in (".csv", ".tsv", ".txt"):
        return "csv"
    with _reading(path), _open(path) as f:     # no telling extension: sniff the first byte
        head = f.read(256).lstrip()
    return "jsonl" if head.startswith(b"{") else "csv"


# what a truncated, corrupt or mislabelled (.gz that is not gzip) file raises while read
READ_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)
# what json.loads raises on a line that is not JSON: bad syntax or encoding (ValueError),
# an integer of more than 4300 digits (ValueError), nesting beyond the recursion limit
JSON_ERRORS = (ValueError, RecursionError)


@contextmanager
def _reading(path: Path):
    """Turn a read failure (not gzip, truncated, unreadable) into a one-line InputError."""
    try:
        yield
    except READ_ERRORS as e:
        raise InputError(f"cannot read file ({str(e).strip() or type(e).__name__})",
                         file=path) from None


def _open(path: Path) -> io.BufferedIOBase:
    raw = open_input(path)
    return gzip.GzipFile(fileobj=raw) if path.suffix.lower() == ".gz" else raw


def _header(path: Path, container: str) -> list[str]:
    """Column names (CSV header, keys of the first JSON object, Parquet schema)."""
    if container == "parquet":
        pq = _pyarrow_parquet()
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (OSError, ValueError) as e:     # pyarrow's ArrowInvalid is a ValueError
            raise InputError(f"not a Parquet file ({e})", file=path) from None
    with _reading(path), _open(path) as f:
        for line in f:
            text = line.decode("utf-8-sig", errors="replace").strip()
            if not text:
                continue
            if container == "csv":
                return next(csv.reader([text]))
            try:
                obj = json.loads(text)
            except JSON_ERRORS:
                raise InputError("first line is not a JSON object", file=path) from None
            return list(obj) if isinstance(obj, dict) else []
    raise InputError("empty file", file=path)


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install hetplan[parquet]") from None
    return pq


def detect_format(path: str | Path) -> str:
    """The format of a trace file from its extension and header; InputError if unknown."""
    path = Path(path)
    container = _container(path)
    cols = set(_header(path, container))
    for name in ("azure", "burstgpt", "mooncake"):
        spec = FORMATS[name]
        if spec.container == container and set(spec.columns.values()) <= cols:
            return name
    if {"input_tokens", "output_tokens"} <= cols and cols & {"arrival_s", "timestamp"}:
        return "generic"
    raise InputError(f"unknown trace format (columns: {', '.join(sorted(cols)) or 'none'}); "
                     f"give format= one of {', '.join(FORMATS)} and, for generic files, a "
                     "column map", file=path)


def _columns(spec: FormatSpec, header: list[str], column_map: dict[str, str] | None,
             path: Path) -> dict[str, str]:
    """canonical -> file column, checked against the header."""
    cols = dict(spec.columns)
    if not cols:                          # generic: canonical names where present
        cols = {"time": "arrival_s" if "arrival_s" in header else "timestamp",
                "input_tokens": "input_tokens", "output_tokens": "output_tokens"}
    for k, v in (column_map or {}).items():
        if k not in MAP_KEYS:
            raise InputError(f"unknown key {k!r} (known: {', '.join(MAP_KEYS)})",
                             file=path, field=f"column_map.{k}")
        cols[MAP_KEYS[k]] = v
    for opt in ("session_id", "prefix_tokens"):
        if opt not in cols and opt in header and spec.name == "generic":
            cols[opt] = opt
    seen: dict[str, str] = {}
    for k, v in cols.items():          # one column read as two values: which one wins?
        if seen.setdefault(v, k) != k:
            raise InputError(f"column {v!r} is mapped to both {seen[v]} and {k}; map each "
                             "value to its own column", file=path, field="column_map")
    missing = [v for v in cols.values() if v not in header]
    if missing:
        raise InputError(f"missing columns: {', '.join(missing)} ({spec.name} format; "
                         f"file has: {', '.join(header)})", file=path)
    return cols


def _csv_chunks(path: Path, cols: dict[str, str], chunk_rows: int,
                pos: list[int]) -> Iterator[tuple[dict, np.ndarray, None, None]]:
    raw = open_input(path)
    stream = gzip.GzipFile(fileobj=raw) if path.suffix.lower() == ".gz" else raw
    sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    inv = {v: k for k, v in cols.items()}
    import pandas as pd        # here, not at the top: see TYPE_CHECKING in ingest.py
    try:
        reader = pd.read_csv(stream, sep=sep, usecols=list(inv), chunksize=chunk_rows,
                             skip_blank_lines=False, encoding="utf-8-sig")
        for df in reader:
            pos[0] = raw.tell()
            lines = df.index.to_numpy(dtype=np.int64) + 2       # header is line 1
            yield {inv[c]: df[c] for c in df.columns}, lines, None, None
    except (pd.errors.ParserError, *READ_ERRORS) as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        raise InputError(f"cannot parse CSV: {msg}", file=path) from None
    finally:
        raw.close()


def _jsonl_chunks(path: Path, cols: dict[str, str], chunk_rows: int, pos: list[int],
                  want_hashes: bool) -> Iterator[tuple[dict, np.ndarray, np.ndarray, list]]:
    raw = open_input(path)
    stream = gzip.GzipFile(fileobj=raw) if path.suffix.lower() == ".gz" else raw
    keys = list(cols.items())

    def flush(vals, lines, invalid, hashes):
        import pandas as pd
        chunk = {k: pd.Series(v, dtype=object) for k, v in vals.items()}
        return (chunk, np.asarray(lines, dtype=np.int64), np.asarray(invalid, dtype=bool),
                hashes if want_hashes else None)

    def empty():
        return {k: [] for k, _ in keys}, [], [], []

    vals, lines, invalid, hashes = empty()
    try:
        for n, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                ok = isinstance(obj, dict)
            except JSON_ERRORS:
                ok = False
            if not ok:
                obj = {}
            for k, src in keys:
                vals[k].append(obj.get(src))
            lines.append(n)
            invalid.append(not ok)
            hashes.append(obj.get("hash_ids"))
            if len(lines) >= chunk_rows:
                pos[0] = raw.tell()
                yield flush(vals, lines, invalid, hashes)
                vals, lines, invalid, hashes = empty()
        pos[0] = raw.tell()
        if lines:
            yield flush(vals, lines, invalid, hashes)
    except READ_ERRORS as e:
        raise InputError(f"cannot read file ({e})", file=path) from None
    finally:
        raw.close()


def _parquet_chunks(path: Path, cols: dict[str, str], chunk_rows: int,
                    pos: list[int]) -> Iterator[tuple[dict, np.ndarray, None, None]]:
    pq = _pyarrow_parquet()
    f = pq.ParquetFile(path)
    inv = {v: k for k, v in cols.items()}
    start, size = 1, os.path.getsize(path)
    n_total = max(1, f.metadata.num_rows)
    for batch in f.iter_batches(batch_size=chunk_rows, columns=list(inv)):
        df = batch.to_pandas()
        lines = np.arange(start, start + len(df), dtype=np.int64)
        start += len(df)
        pos[0] = int(size * (start - 1) / n_total)
        yield {inv[c]: df[c] for c in df.columns}, lines, None, None


def load_trace(path: str | Path, format: str | None = None,
               column_map: dict[str, str] | None = None, time_unit: str | None = None,
               on_bad: OnBad = "skip", chunk_rows: int = 500_000, max_rows: int | None = None,
               progress: bool | None = None, warn: bool = True) -> Trace:
    """Load a trace file in any supported format (detected when `format` is None; an explicit
    format wins). The returned Trace carries its LoadReport in `.report`; with `warn`, each
    skipped-row or re-sorting notice is also printed on stderr. `max_rows` stops after that
    many data rows (a quick look at a large file)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    if format is not None:
        key = format.lower()
        if key not in FORMATS and key not in ALIASES:
            raise InputError(f"unknown trace format {format!r} (known: "
                             f"{', '.join(FORMAT_NAMES)})", file=path, field="format")
        name = ALIASES.get(key, key)
        container = key if key in ("csv", "jsonl", "parquet") else None
    else:
        name = "generic" if column_map else detect_format(path)
        container = None
    spec = FORMATS[name]
    container = container or spec.container or _container(path)
    if chunk_rows < 1:
        raise InputError("chunk_rows must be >= 1", field="chunk_rows")
    header = _header(path, container)
    cols = _columns(spec, header, column_map, path)
    unit = time_unit or spec.time_unit
    if unit is None and ("arrival_s" in (column_map or {}) or cols["time"] == "arrival_s"):
        unit = "s"                         # arrival_s means seconds; a timestamp is inferred
    report = LoadReport(str(path), name, time_unit=unit or "",
                        line_word="row" if container == "parquet" else "line",
                        bytes_total=os.path.getsize(path))
    builder = TraceBuilder(report, cols, unit, on_bad, spec.zero_output_is_failure,
                           spec.block_tokens)
    pos = [0]
    if container == "csv":
        chunks = _csv_chunks(path, cols, chunk_rows, pos)
    elif container == "jsonl":
        chunks = _jsonl_chunks(path, cols, chunk_rows, pos, spec.block_tokens is not None)
    else:
        chunks = _parquet_chunks(path, cols, chunk_rows, pos)
    bar = Progress(f"reading {path.name}", report.bytes_total, enabled=progress)
    try:
        for chunk, lines, invalid, hashes in chunks:
            if max_rows is not None and report.rows_read + len(lines) > max_rows:
                k = max(0, max_rows - report.rows_read)
                chunk = {c: s.iloc[:k] for c, s in chunk.items()}
                lines = lines[:k]
                invalid = invalid[:k] if invalid is not None else None
                hashes = hashes[:k] if hashes is not None else None
            builder.add(chunk, lines, invalid, hashes)
            bar.update(report.rows_read, pos[0])
            if max_rows is not None and report.rows_read >= max_rows:
                report.notes.append(f"stopped after {max_rows:,} rows (max_rows)")
                break
    finally:
        chunks.close()
        bar.close(report.rows_read, pos[0])
    trace = builder.finish(name=path.name.split(".")[0], source=str(path))
    if warn:
        for w in report.warnings():
            print(f"warning: {path}: {w}", file=sys.stderr)
    return trace
