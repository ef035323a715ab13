"""Per-operation measured tables for one GPU, and their log-space lookups.

An op-table file (`catalogs/calibration/optables/<GPU>.yaml`) holds compact tables derived
from measured kernel latencies (`hetplan calibrate import-optables`; see optable_import.py):

- allreduce_us[tp]: Curve of (message_bytes, latency_us), the measured all-reduce latency;
- gemm_efficiency[dtype]: Grid over (m_tokens, weight_elements = n*k) of
  roofline time at 100% of datasheet peak / measured time;
- decode_attention_efficiency[kv_dtype]: Grid over (batch, context_tokens) of KV-read
  roofline time / measured time;
- context_attention_efficiency: Grid over (batch, prompt_tokens) of causal-FLOP roofline
  time at bf16 peak / measured time;
- moe_efficiency[dtype]: Grid over (tokens, expert_slice_elements = 3 x hidden x expert FFN /
  TP) of the routed experts' roofline time (max(FLOPs / peak, bytes of the experts touched /
  bandwidth)) / measured time of one MoE layer with TP-sliced experts (no EP).

Efficiencies are capped at 1, so a time built as roofline / efficiency never undercuts the
roofline. Lookups interpolate linearly in log(value) over log(axis) (bilinear on grids) and
clamp to the end points outside the measured range; `Lookup.in_range` says whether the query
was inside it (and, on grids, whether every surrounding cell was measured rather than filled
from its nearest measured neighbour). A lookup is None when the GPU has no table for the
dtype / TP size, so callers fall back to roofline x scalar efficiency (calibration.py).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hetplan.dtypes import Dtype
from hetplan.errors import InputError, from_validation_error
from hetplan.io import catalogs_dir, dumps_json, load_yaml, write_atomic
from hetplan.perf.calibration import Provenance, with_same_silicon

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
GEMM_AXES = ("m_tokens", "weight_elements")
DECODE_AXES = ("batch", "context_tokens")
CONTEXT_AXES = ("batch", "prompt_tokens")
MOE_AXES = ("tokens", "expert_slice_elements")


@dataclass(frozen=True)
class Lookup:
    """A table value, where it came from, and whether the query lay inside the measurements."""

    value: float
    source: str
    in_range: bool


class TableSource(BaseModel):
    """The measurement file a table was derived from and how."""

    model_config = _STRICT

    package: str = Field(min_length=1)      # e.g. "aiconfigurator-core"
    version: str = Field(min_length=1)      # the package's version
    file: str = Field(min_length=1)         # path inside the package, "systems/data/..."
    selection: str = ""                     # rows used and how they were summarised

    @property
    def label(self) -> str:
        """Short tag, e.g. 'table:aiconfigurator-core 0.12.0 h100_sxm gemm/vllm/0.24.0'."""
        parts = self.file.split("/")
        if len(parts) >= 6 and parts[:2] == ["systems", "data"]:
            where = f"{parts[2]} {'/'.join(parts[3:-1])}"
        else:
            where = self.file
        return f"table:{self.package} {self.version} {where}"


def _check_axis(name: str, values: list[float]) -> None:
    if not values:
        raise ValueError(f"{name}: needs at least one point")
    if any(v <= 0 for v in values):
        raise ValueError(f"{name}: axis points must be > 0 (interpolation is in log space)")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"{name}: axis points must be strictly increasing (sorted, no "
                         "duplicates)")


class Curve(BaseModel):
    """y(x) at measured points, x strictly increasing, both > 0."""

    model_config = _STRICT

    source: TableSource
    points: list[tuple[float, float]] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> Curve:
        _check_axis("points", [x for x, _ in self.points])
        if any(y <= 0 for _, y in self.points):
            raise ValueError("points: values must be > 0")
        return self

    def at(self, x: float) -> tuple[float, bool]:
        return _points_at(self.points, x)


def _points_at(points, x: float) -> tuple[float, bool]:
    """y at x on measured (x, y) points: log-log interpolation, clamped outside."""
    xs = [p[0] for p in points]
    i, t, inside = _bracket(xs, x)
    y0, y1 = points[i][1], points[min(i + 1, len(xs) - 1)][1]
    return _log_mix(y0, y1, t), inside


class Grid(BaseModel):
    """Efficiency (0, 1] on a full grid: values[i][j] at (x[i], y[j]). Cells listed in
    `filled` had no measurement and copy their nearest measured cell (log distance)."""

    model_config = _STRICT

    source: TableSource
    x_axis: str
    y_axis: str
    x: list[float]
    y: list[float]
    values: list[list[float]]
    filled: list[tuple[int, int]] = []

    @model_validator(mode="after")
    def _valid(self) -> Grid:
        _check_axis(self.x_axis, self.x)
        _check_axis(self.y_axis, self.y)
        if len(self.values) != len(self.x) or any(len(r) != len(self.y) for r in self.values):
            raise ValueError(f"values: must be {len(self.x)} rows of {len(self.y)} "
                             f"({self.x_axis} x {self.y_axis})")
        if any(not 0.0 < v <= 1.0 for r in self.values for v in r):
            raise ValueError("values: efficiencies must be in (0, 1]")
        if any(not (0 <= i < len(self.x) and 0 <= j < len(self.y)) for i, j in self.filled):
            raise ValueError("filled: cell index outside the grid")
        return self

    def at(self, x: float, y: float) -> tuple[float, bool]:
        i, tx, in_x = _bracket(self.x, x)
        j, ty, in_y = _bracket(self.y, y)
        i1, j1 = min(i + 1, len(self.x) - 1), min(j + 1, len(self.y) - 1)
        v = self.values
        value = _log_mix(_log_mix(v[i][j], v[i][j1], ty), _log_mix(v[i1][j], v[i1][j1], ty), tx)
        used = {(a, b) for a in ({i, i1} if tx else {i}) for b in ({j, j1} if ty else {j})}
        measured = not used & {tuple(c) for c in self.filled}
        return value, in_x and in_y and measured


def _bracket(axis: list[float], q: float) -> tuple[int, float, bool]:
    """Index i and log-space fraction t in [0, 1] with q between axis[i] and axis[i+1];
    clamped (t = 0 at the ends) when q is outside, which the flag reports."""
    if not (q > 0 and math.isfinite(q)):
        raise ValueError(f"table query must be a finite number > 0, got {q!r}")
    if q <= axis[0] or len(axis) == 1:
        return 0, 0.0, axis[0] <= q <= axis[-1]
    if q >= axis[-1]:
        return len(axis) - 1, 0.0, q == axis[-1]
    i = bisect_right(axis, q) - 1
    t = math.log(q / axis[i]) / math.log(axis[i + 1] / axis[i])
    return i, t, True


def _log_mix(a: float, b: float, t: float) -> float:
    return a if t == 0.0 else math.exp((1 - t) * math.log(a) + t * math.log(b))


def monotone_latency(curve: Curve) -> Curve:
    """The curve with each point lowered to the least latency measured at any size >= its
    own (a suffix minimum), so latency never falls as the message grows.

    A larger message cannot need less time than a smaller one on the same kernel: the
    engine could pad the smaller one. Where a table says otherwise, the slower point is a
    noisy sample. Example: aiconfigurator's B200 TP8 vLLM custom all-reduce gives 25.8 us
    and 26.1 us at 256 KiB and 512 KiB, but 17.2 us at 1 MiB. All three sizes run the same
    two-stage kernel, which vLLM's custom_all_reduce.cuh picks at TP8 from 256 KiB on. The
    raw points priced Llama-70B TP8 decode at batch 16 (256 KiB messages) 2.7 ms slower
    than at batch 64, which is 1 MiB."""
    return curve.model_copy(update={"points": list(_suffix_min(tuple(curve.points)))})


@lru_cache(maxsize=64)
def _suffix_min(points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    ys = [y for _, y in points]
    for i in range(len(ys) - 2, -1, -1):
        ys[i] = min(ys[i], ys[i + 1])
    return tuple((x, y) for (x, _), y in zip(points, ys))


class OpTables(BaseModel):
    """One GPU's per-operation tables (see the module docstring for each table's axes)."""

    model_config = _STRICT

    gpu: str = Field(min_length=1)
    provenance: Provenance
    allreduce_us: dict[int, Curve] = {}
    gemm_efficiency: dict[Dtype, Grid] = {}               # by weight/compute dtype
    decode_attention_efficiency: dict[Dtype, Grid] = {}   # by KV-cache dtype
    context_attention_efficiency: Grid | None = None
    moe_efficiency: dict[Dtype, Grid] = {}                # by expert weight dtype

    @model_validator(mode="after")
    def _axes(self) -> OpTables:
        expect = [(f"gemm_efficiency.{d}", g, GEMM_AXES) for d, g in self.gemm_efficiency.items()]
        expect += [(f"decode_attention_efficiency.{d}", g, DECODE_AXES)
                   for d, g in self.decode_attention_efficiency.items()]
        expect += [(f"moe_efficiency.{d}", g, MOE_AXES) for d, g in self.moe_efficiency.items()]
        if self.context_attention_efficiency:
            expect.append(("context_attention_efficiency", self.context_attention_efficiency,
                           CONTEXT_AXES))
        for where, grid, axes in expect:
            if (grid.x_axis, grid.y_axis) != axes:
                raise ValueError(f"{where}: axes must be {axes}, got "
                                 f"{(grid.x_axis, grid.y_axis)}")
        if any(tp < 2 for tp in self.allreduce_us):
            raise ValueError("allreduce_us: TP sizes must be >= 2")
        return self

    def allreduce_s(self, message_bytes: float, tp: int) -> Lookup | None:
        """Seconds for one all-reduce of `message_bytes` (per GPU) over `tp` GPUs, on the
        curve's non-decreasing lower envelope (`monotone_latency`)."""
        curve = self.allreduce_us.get(tp)
        if curve is None:
            return None
        us, inside = _points_at(_suffix_min(tuple(curve.points)), message_bytes)
        return Lookup(us * 1e-6, curve.source.label, inside)

    def gemm_efficiency_at(self, dtype: str, m_tokens: float,
                           weight_elements: float) -> Lookup | None:
        """Fraction of max(FLOP, bytes) roofline a GEMM of m x (n*k weights) reaches."""
        return _grid_lookup(self.gemm_efficiency.get(dtype), m_tokens, weight_elements)

    def moe_efficiency_at(self, dtype: str, tokens: float,
                          expert_slice_elements: float) -> Lookup | None:
        """Fraction of the routed-expert roofline one TP-sliced MoE layer reaches."""
        return _grid_lookup(self.moe_efficiency.get(dtype), tokens, expert_slice_elements)

    def decode_attention_efficiency_at(self, batch: float, context_tokens: float,
                                       kv_dtype: str = "bf16") -> Lookup | None:
        """Fraction of the KV-read roofline that decode attention reaches."""
        return _grid_lookup(self.decode_attention_efficiency.get(kv_dtype), batch,
                            context_tokens)

    def context_attention_efficiency_at(self, prompt_tokens: float,
                                        batch: float = 1) -> Lookup | None:
        """Fraction of the causal-FLOP roofline (bf16 peak) that prefill attention reaches."""
        return _grid_lookup(self.context_attention_efficiency, batch, prompt_tokens)


def _grid_lookup(grid: Grid | None, x: float, y: float) -> Lookup | None:
    if grid is None:
        return None
    value, inside = grid.at(x, y)
    return Lookup(value, grid.source.label, inside)


def optables_dir() -> Path:
    return catalogs_dir() / "calibration" / "optables"


def load_optables_file(path: str | Path) -> OpTables:
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of op-table fields", file=path)
    try:
        return OpTables(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None


@lru_cache(maxsize=4)
def load_optables(directory: str | None = None) -> dict[str, OpTables]:
    """All op-table files in `directory` (default: catalogs/calibration/optables), by GPU, and
    the SAME_SILICON GPUs that share one of them."""
    d = Path(directory) if directory else optables_dir()
    out: dict[str, OpTables] = {}
    for p in sorted(d.glob("*.yaml")):
        t = load_optables_file(p)
        if t.gpu in out:
            raise InputError(f"second op-table file for GPU {t.gpu!r}", file=p)
        out[t.gpu] = t
    return with_same_silicon(out, lambda t, gpu, src: t.model_copy(update={"gpu": gpu}))


def save_optables(tables: OpTables, path: str | Path) -> None:
    """Write op tables as YAML (JSON is valid YAML; keys sorted for stable diffs)."""
    write_atomic(path, "# hetplan per-operation tables (derived from measured kernels); "
                 "see hetplan/perf/optables.py\n" + dumps_json(tables.model_dump(mode="json")))
