"""Read the output of `scripts/gpu_engine_bench.py` (kernels and whole steps timed on a GPU
with PyTorch) and set it beside hetplan's perf model.

Three comparisons, each against a measurement, none fitted to it:
- per-GEMM efficiency (roofline at 100% of the catalog's peak / measured time, the same
  definition as the op tables, `optable_import.derive_gemm`) against the op table the
  planner reads for that GPU (aiconfigurator's vLLM kernels);
- decode-attention efficiency (KV bytes / bandwidth / measured time) against the same table;
- whole steps of the layer stack against `PerfModel`'s step time. A bare PyTorch stack runs
  no scheduler and no sampler, so the model's `step_overhead_ms` (the engine's per-step CPU
  cost) is taken off its prediction; everything else (GEMMs, attention, element-wise work,
  per-kernel cost, an eager step's launch floor) is compared as the planner prices it.

The stack's kinds of step: "compiled" (each layer through torch.compile, so norms, RoPE and
SwiGLU are fused Triton kernels as in vLLM's compilation, the step replayed as a CUDA graph:
the closest to vLLM V1's decode), "graph" (unfused layers, ~40 kernels each, replayed as a
graph) and "eager" (the unfused layers launched from Python every step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hetplan.bounds import MAX_YAML_BYTES
from hetplan.catalog import GPU
from hetplan.errors import InputError
from hetplan.io import read_text
from hetplan.perf.estimator import PerfModel
from hetplan.perf.roofline import gemm_roofline_s
from hetplan.perf.shape import ReplicaShape

STEP_KINDS = ("compiled", "graph", "eager")


def load_engine_bench(path: str | Path) -> dict:
    """The JSON written by scripts/gpu_engine_bench.py (a mapping with an `env` entry)."""
    try:
        data = json.loads(read_text(Path(path), MAX_YAML_BYTES))
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON ({e})", file=path) from None
    if not isinstance(data, dict) or "env" not in data:
        raise InputError("expected gpu_engine_bench.py output (a mapping with 'env')",
                         file=path)
    return data


@dataclass(frozen=True)
class StepRow:
    kind: str             # compiled | graph | eager (module docstring)
    phase: str            # decode | prefill
    weights: str          # bf16 | fp8
    batch: int
    tokens: int           # new tokens per sequence (1 for decode)
    context: int          # keys attended per sequence
    measured_ms: float


def step_rows(data: dict) -> list[StepRow]:
    """Every timed whole step in the file (rows that failed on the GPU are skipped)."""
    out = []
    for section, weights in (("stack_bf16", "bf16"), ("stack_fp8", "fp8")):
        for r in data.get(section, []):
            if "error" in r:
                continue
            common = dict(phase=r["phase"], weights=weights, batch=r["batch"],
                          tokens=r["tokens"], context=r["context"])
            out.append(StepRow("eager", measured_ms=r["eager_ms"], **common))
            if r.get("graph_ms"):
                out.append(StepRow("graph", measured_ms=r["graph_ms"], **common))
    for section in ("stack_compiled", "rank_compiled_bf16", "rank_compiled_fp8"):
        for r in data.get(section, []):
            if "error" not in r:
                out.append(StepRow("compiled", r["phase"], r.get("weights", "bf16"),
                                   r["batch"], r["tokens"], r["context"], r["graph_ms"]))
    return out


def bench_model(data: dict) -> str:
    """The bundled model key the file's layer stack was built from ("llama-3.1-8b.json")."""
    return str(data.get("config", "")).removesuffix(".json")


def predicted_step_ms(pm: PerfModel, gpu: str, row: StepRow, tp: int = 1) -> float:
    """The planner's time for the row's step on one GPU of a TP `tp` replica under the row's
    engine mode, less the calibration's step_overhead_ms (no scheduler or sampler in a bare
    stack) and less the all-reduces (one rank timed alone runs none)."""
    eager = row.kind == "eager"
    limits = pm.limits.model_copy(update={"enforce_eager": eager,
                                          "cuda_graph_max_tokens": None if eager else
                                          row.batch * row.tokens})
    pm = pm.with_limits(limits)
    shape = ReplicaShape(gpu, tp, 1, row.weights, "bf16")
    if row.phase == "decode":
        step = pm.decode_breakdown(shape, row.batch, row.context)
    else:
        step = pm.prefill_breakdown(shape, [row.tokens] * row.batch)
    return (step.total_s - step.comm_s - pm.calibration(gpu).step_overhead_ms * 1e-3) * 1e3


def gemm_efficiencies(data: dict, gpu: GPU) -> list[dict]:
    """Measured efficiency of each GEMM, defined as in the op tables: roofline time at the
    catalog's peak and bandwidth (max of FLOPs and bytes) / measured time."""
    out = []
    for section in ("gemm_bf16", "gemm_fp8"):
        for r in data.get(section, []):
            dt = "fp8" if r["gemm_dtype"] == "fp8" else "bf16"
            m, n, k = r["m_run"], r["n"], r["k"]
            roof_s = float(gemm_roofline_s(gpu, dt, m, n, k))
            out.append({"dtype": dt, "name": r["name"], "m": m, "weight_elements": n * k,
                        "measured_ms": r["latency"],
                        "efficiency": min(1.0, roof_s / (r["latency"] * 1e-3))})
    return out


def decode_attention_efficiencies(data: dict, gpu: GPU) -> list[dict]:
    """KV-read roofline / measured time of each decode-attention shape (bf16 KV)."""
    out = []
    for r in data.get("decode_attention", []):
        if "latency" not in r:
            continue
        out.append({"batch": r["batch"], "context": r["context"], "measured_ms": r["latency"],
                    "efficiency": min(1.0, r["kv_bytes"] / gpu.mem_bw_bytes_per_s
                                      / (r["latency"] * 1e-3))})
    return out


FP8_RECIPES = ("tensor", "rowwise", "rowwise_dynamic")


def fp8_recipe_layer_ms(data: dict, gpu: GPU, tables) -> dict[int, dict[str, float]]:
    """Per token count m, one layer's four FP8 GEMMs (ms, summed) under each activation
    recipe timed by `gpu_engine_bench.py fp8_recipes`, and under the planner's op table
    ("table": the GEMM's roofline / the table's efficiency at its (m, n*k), the roofline
    the table's efficiencies were derived against, `roofline.gemm_roofline_s`, which is
    roofline.py's price for a matmul too).
    Shapes with a failed recipe are left out of every column."""
    out: dict[int, dict[str, float]] = {}
    rows = [r for r in data.get("fp8_recipes", []) if "latency" in r]
    failed = {(r["m"], r["name"]) for r in data.get("fp8_recipes", []) if "error" in r}
    for r in rows:
        if (r["m"], r["name"]) in failed:
            continue
        col = out.setdefault(r["m"], dict.fromkeys(FP8_RECIPES + ("table",), 0.0))
        col[r["recipe"]] += r["latency"]
        if r["recipe"] == "tensor" and tables is not None:
            m, n, k = r["m_run"], r["n"], r["k"]
            eff = tables.gemm_efficiency_at("fp8", m, n * k).value
            col["table"] += float(gemm_roofline_s(gpu, "fp8", m, n, k)) / eff * 1e3
    return out
