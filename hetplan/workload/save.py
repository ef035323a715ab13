"""Writing a trace to CSV or JSONL (by extension), readable back by `load_trace`.

Columns: arrival_s, input_tokens, output_tokens, then session_id and prefix_tokens when the
trace has them. Arrival times are written with Python's shortest round-trip float repr, so
loading the file gives the same arrays bit for bit. Written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hetplan.errors import InputError
from hetplan.io import write_atomic
from hetplan.workload.trace import Trace


def trace_columns(trace: Trace) -> dict[str, np.ndarray]:
    cols = {"arrival_s": trace.arrival_s, "input_tokens": trace.input_tokens,
            "output_tokens": trace.output_tokens}
    if trace.session_id is not None:
        cols["session_id"] = trace.session_id
    if trace.prefix_tokens is not None:
        cols["prefix_tokens"] = trace.prefix_tokens
    return cols


def save_trace(trace: Trace, path: str | Path) -> Path:
    """Write `trace` as CSV (.csv) or JSONL (.jsonl / .ndjson); returns the path."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".csv", ".jsonl", ".ndjson"):
        raise InputError("output must end in .csv or .jsonl", file=path)
    cols = trace_columns(trace)
    names = list(cols)
    text_cols = [[repr(float(x)) for x in v] if k == "arrival_s" else [str(int(x)) for x in v]
                 for k, v in cols.items()]
    rows = zip(*text_cols)
    if ext == ".csv":
        text = ",".join(names) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    else:
        text = "".join(json.dumps({k: (float(v) if k == "arrival_s" else int(v))
                                   for k, v in zip(names, r)}) + "\n" for r in rows)
    write_atomic(path, text)
    return path
