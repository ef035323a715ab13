"""Stage 3: workloads — traces, synthetic generators, and classes for planning.

Traces load from the public formats (Azure 2023/2024, Mooncake, BurstGPT) or generic CSV /
JSONL / Parquet files (`formats.load_trace`), or are generated from a synthetic spec
(`synthetic.generate`, including multi-turn agentic sessions); `classes.bucket` turns a
trace into the workload classes the planner sizes replicas for.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from hetplan.errors import InputError, from_validation_error
from hetplan.io import load_yaml
from hetplan.workload.classes import WorkloadClass, bucket, single_class
from hetplan.workload.formats import FORMAT_NAMES, detect_format, load_trace
from hetplan.workload.ingest import LoadReport
from hetplan.workload.save import save_trace
from hetplan.workload.synthetic import SyntheticSpec, generate
from hetplan.workload.trace import Trace, make_trace


def parse_synthetic(raw: dict, file=None, prefix: str = "workload.synthetic") -> SyntheticSpec:
    try:
        return SyntheticSpec(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=file, prefix=prefix) from None


def load_spec_file(path: str | Path) -> SyntheticSpec:
    """A synthetic spec from YAML: a bare spec, or a scenario whose workload is synthetic."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping (a synthetic workload spec)", file=path)
    if isinstance(raw.get("workload"), dict):
        inner = raw["workload"]
        if inner.get("synthetic") is not None:
            return parse_synthetic(inner["synthetic"], file=path)
        if inner.get("spec") is not None:
            return load_spec_file(path.parent / inner["spec"])
        raise InputError("the scenario's workload is a trace, not a synthetic spec",
                         file=path, field="workload")
    return parse_synthetic(raw, file=path, prefix="")


def load_csv_trace(path: str | Path) -> Trace:
    """A CSV with columns arrival_s, input_tokens, output_tokens (seconds, tokens). Strict:
    any bad row (missing, non-numeric, negative value, zero output) is an error naming its
    line. `load_trace` reads every format and can skip bad rows instead."""
    return load_trace(path, format="csv", on_bad="error", warn=False)


def load_workload(ref, base_dir: str | Path = ".") -> Trace:
    """The trace a scenario's `workload` names: a synthetic spec (inline or a spec file) or
    a trace file in any supported format (`format`, `column_map`, `time_unit`, `on_bad`).
    A workload to plan for needs arrivals spread over time: fewer than two requests, or all
    at one instant, give no rate and are an InputError."""
    if ref.synthetic is not None:
        return _with_rate(generate(parse_synthetic(ref.synthetic)), None, "workload.synthetic")
    spec_file = getattr(ref, "spec", None)
    if spec_file is not None:
        p = Path(spec_file)
        p = p if p.is_absolute() else Path(base_dir) / p
        return _with_rate(generate(load_spec_file(p)), p, None)
    path = Path(ref.trace)
    path = path if path.is_absolute() else Path(base_dir) / path
    t = load_trace(path, format=ref.format, column_map=ref.column_map,
                   time_unit=getattr(ref, "time_unit", None),
                   on_bad=getattr(ref, "on_bad", "skip"))
    return _with_rate(t, path, "workload.trace")


def _with_rate(t: Trace, file, field) -> Trace:
    if t.num_requests < 2 or t.duration_s <= 0:
        what = (f"{t.num_requests} request{'s' * (t.num_requests != 1)}"
                if t.num_requests < 2 else f"all {t.num_requests:,} arrivals at one instant")
        raise InputError(f"the workload has {what}: no arrival rate to plan for (a synthetic "
                         "spec needs a larger rate_rps x duration_s; a trace, arrivals spread "
                         "over time)", file=file, field=field)
    return t


__all__ = ["Trace", "make_trace", "SyntheticSpec", "generate", "parse_synthetic",
           "WorkloadClass", "bucket", "single_class", "load_workload", "load_csv_trace",
           "load_trace", "detect_format", "FORMAT_NAMES", "LoadReport", "save_trace",
           "load_spec_file"]
