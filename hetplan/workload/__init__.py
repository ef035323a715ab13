"""Stage 3: workloads — traces, synthetic generators, and classes for planning.

This is the planner-facing core (synthetic specs, a plain CSV trace, bucketing). Loaders
for the public trace formats (Azure, Mooncake, BurstGPT) are issue 4's scope.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from hetplan.errors import InputError, from_validation_error
from hetplan.workload.classes import WorkloadClass, bucket, single_class
from hetplan.workload.synthetic import SyntheticSpec, generate
from hetplan.workload.trace import Trace, make_trace


def parse_synthetic(raw: dict, file=None, prefix: str = "workload.synthetic") -> SyntheticSpec:
    try:
        return SyntheticSpec(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=file, prefix=prefix) from None


def load_csv_trace(path: str | Path) -> Trace:
    """A CSV with columns arrival_s, input_tokens, output_tokens (seconds, tokens). Rows
    with missing, non-numeric or negative values are errors naming the line."""
    path = Path(path)
    cols: dict[str, list[float]] = {"arrival_s": [], "input_tokens": [], "output_tokens": []}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in cols if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"missing columns: {', '.join(missing)}", file=path)
            for line, row in enumerate(reader, start=2):
                try:
                    vals = {c: float(row[c]) for c in cols}
                except (TypeError, ValueError):
                    raise InputError(f"line {line}: missing or non-numeric value",
                                     file=path) from None
                if min(vals.values()) < 0 or vals["output_tokens"] < 1:
                    raise InputError(f"line {line}: negative time/tokens or zero output",
                                     file=path)
                for c in cols:
                    cols[c].append(vals[c])
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    if not cols["arrival_s"]:
        raise InputError("no requests", file=path)
    return make_trace(cols["arrival_s"], np.rint(cols["input_tokens"]),
                      np.rint(cols["output_tokens"]), name=path.stem, source=str(path))


def load_workload(ref, base_dir: str | Path = ".") -> Trace:
    """The trace a scenario's `workload` names: a synthetic spec or a CSV trace file."""
    if ref.synthetic is not None:
        return generate(parse_synthetic(ref.synthetic))
    path = Path(ref.trace)
    path = path if path.is_absolute() else Path(base_dir) / path
    if ref.format not in (None, "generic", "csv"):
        raise InputError(f"trace format {ref.format!r} is not supported yet (csv with "
                         "arrival_s,input_tokens,output_tokens)", field="workload.format")
    return load_csv_trace(path)


__all__ = ["Trace", "make_trace", "SyntheticSpec", "generate", "parse_synthetic",
           "WorkloadClass", "bucket", "single_class", "load_workload", "load_csv_trace"]
