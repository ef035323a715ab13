"""End-to-end measurements (published tables, `vllm bench serve` results) and how well the
perf model predicts them: loading, prediction, overhead fitting, error summaries.

A measurement is one prefill latency (ms for a batch of prompts in one step, or TTFT at low
load), one decode time per output token (ms at a batch size and average context), or a
closed-loop mean TTFT (metric CLOSED_LOOP_TTFT, see `closed_loop_ttft_ms`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetplan.bounds import MAX_YAML_BYTES
from hetplan.catalog import Catalog
from hetplan.errors import InputError
from hetplan.io import data_root, read_text
from hetplan.model import ModelSpec, load_model
from hetplan.perf.calibration import Calibration
from hetplan.perf.estimator import PerfModel
from hetplan.perf.shape import ReplicaShape

COLUMNS = ("id", "phase", "model", "gpu", "tp", "weight_dtype", "kv_dtype", "batch",
           "input_tokens", "output_tokens", "context_tokens", "measured_ms", "metric",
           "engine", "source")


@dataclass(frozen=True)
class Measurement:
    id: str
    phase: str            # prefill | decode
    model: str
    gpu: str
    tp: int
    weight_dtype: str
    kv_dtype: str
    batch: int
    input_tokens: int
    context_tokens: float
    measured_ms: float
    metric: str = ""
    source: str = ""
    num_prompts: int = 0        # closed-loop TTFT rows: requests in the run
    wait_steps: float = 0.0     # closed-loop TTFT rows: decode steps a new request waits
    prompt_steps_eager: bool = False   # the run's steps holding a prompt had no CUDA graph

    @property
    def shape(self) -> ReplicaShape:
        return ReplicaShape(self.gpu, self.tp, 1, self.weight_dtype, self.kv_dtype)


def load_measurements(path: str | Path) -> list[Measurement]:
    """Read a measurement CSV (columns COLUMNS); bad rows are errors naming the line."""
    path = Path(path)
    try:
        rows = list(csv.DictReader(read_text(path, MAX_YAML_BYTES).splitlines()))
    except csv.Error as e:
        raise InputError(f"cannot parse CSV ({e})", file=path) from None
    if rows and (missing := [c for c in COLUMNS if c not in rows[0]]):
        raise InputError(f"missing columns: {', '.join(missing)}", file=path)
    out = []
    for line, r in enumerate(rows, start=2):
        try:
            phase = r["phase"].strip()
            if phase not in ("prefill", "decode"):
                raise ValueError(f"phase must be prefill or decode, not {phase!r}")
            inp = int(float(r["input_tokens"] or 0))
            ctx = float(r["context_tokens"] or 0) or inp + int(float(r["output_tokens"] or 0)) / 2
            m = Measurement(id=r["id"], phase=phase, model=r["model"].strip(), gpu=r["gpu"].strip(),
                            tp=int(r["tp"]), weight_dtype=r["weight_dtype"].strip() or "bf16",
                            kv_dtype=(r["kv_dtype"].strip() or "bf16").replace("fp16", "bf16"),
                            batch=int(float(r["batch"])), input_tokens=inp, context_tokens=ctx,
                            measured_ms=float(r["measured_ms"]), metric=r.get("metric", ""),
                            source=r.get("source", ""),
                            num_prompts=int(float(r.get("num_prompts") or 0)),
                            wait_steps=float(r.get("wait_steps") or 0),
                            prompt_steps_eager=_flag(r.get("prompt_steps_eager")))
        except (ValueError, TypeError, KeyError) as e:
            raise InputError(f"line {line}: {e}", file=path) from None
        if m.measured_ms <= 0 or m.batch <= 0 or m.tp <= 0:
            raise InputError(f"line {line}: measured_ms, batch and tp must be > 0", file=path)
        if m.metric == CLOSED_LOOP_TTFT and not (m.phase == "prefill"
                                                 and m.num_prompts > m.batch > 1
                                                 and m.wait_steps >= 0):
            raise InputError(f"line {line}: a {CLOSED_LOOP_TTFT} row is a prefill row with "
                             "num_prompts > batch > 1 and wait_steps >= 0", file=path)
        out.append(m)
    return out


def _flag(value: str | None) -> bool:
    """An optional 0/1 column (empty: 0)."""
    v = (value or "").strip()
    if v not in ("", "0", "1"):
        raise ValueError(f"expected 0, 1 or empty, not {v!r}")
    return v == "1"


def resolve_model(ref: str, base: Path | None = None) -> ModelSpec:
    """A measurement's model: a bundled key/HF id, or a config path (relative to the repo)."""
    for root in (base, data_root()):
        if root is not None and ref.endswith(".json") and (root / ref).exists():
            return load_model(root / ref)
    return load_model(ref)


CLOSED_LOOP_TTFT = "ttft_closed_loop"


def closed_loop_ttft_ms(pm: PerfModel, m: Measurement) -> float:
    """Mean TTFT of a closed-loop benchmark run: `num_prompts` requests, `batch` in flight.

    The first `batch` requests arrive together and share one prefill step. Every later one is
    sent when a request finishes, i.e. at a step boundary, while batch - 1 others decode at
    the row's average context: it waits `wait_steps` decode steps (the engine had already
    scheduled the next ones: 1 step with a synchronous scheduler, 2 with an asynchronous
    one), then its prompt runs in one step beside those decodes. Assumes the prompt fits one
    step's token budget and that later arrivals do not meet each other (long outputs)."""
    shape, n, c = m.shape, m.input_tokens, m.batch
    first = pm.prefill_breakdown(shape, [n] * c).total_s
    later = (pm.mixed_step_s(shape, c - 1, m.context_tokens, n)
             + m.wait_steps * pm.decode_breakdown(shape, c, m.context_tokens).total_s)
    return (c * first + (m.num_prompts - c) * later) / m.num_prompts * 1e3


def run_engine_mode(pm: PerfModel, m: Measurement) -> PerfModel:
    """The perf model under the engine mode the row ran with. `prompt_steps_eager` rows
    (vLLM 0.10 with max_num_seqs = 4, whose graphs stop at 2 x 4 tokens, or with
    cudagraph_mode FULL_DECODE_ONLY; SGLang before its prefill graphs) replayed graphs for
    their decode steps only: every step of more than `batch` tokens, i.e. every step that
    holds a prompt, is priced eager (`roofline.step_time`: the CPU's per-layer launch where
    it exceeds the GPU's work)."""
    if not m.prompt_steps_eager:
        return pm
    return pm.with_limits(pm.limits.model_copy(update={"enforce_eager": False,
                                                       "cuda_graph_max_tokens": m.batch}))


def predict_ms(pm: PerfModel, m: Measurement) -> float:
    """The perf model's figure for a measurement, in ms (uncached: calibrations may vary)."""
    pm = run_engine_mode(pm, m)
    if m.metric == CLOSED_LOOP_TTFT:
        return closed_loop_ttft_ms(pm, m)
    if m.phase == "prefill":
        return pm.prefill_breakdown(m.shape, [m.input_tokens] * m.batch).total_s * 1e3
    return pm.decode_breakdown(m.shape, m.batch, m.context_tokens).total_s * 1e3


PART_NAMES = ("gemm", "attention", "elementwise", "allreduce", "launch", "overhead", "wait")


def _step_parts_ms(b) -> dict[str, float]:
    """One step's time by part (ms): `launch` is an eager step's CPU launch beyond the GPU's
    work, `overhead` the step and per-kernel overheads (`roofline.step_time`)."""
    excess = max(0.0, b.launch_s - b.gpu_s)
    return {"gemm": b.gemm_s * 1e3, "attention": b.attention_s * 1e3,
            "elementwise": b.elementwise_s * 1e3, "allreduce": b.comm_s * 1e3,
            "launch": excess * 1e3, "overhead": (b.overhead_s - excess) * 1e3, "wait": 0.0}


def prefill_parts_ms(pm: PerfModel, m: Measurement) -> dict[str, float]:
    """A prefill row's prediction (`predict_ms`) split into PART_NAMES, in ms; the parts sum
    to the prediction. A closed-loop TTFT row averages its first wave's step and the later
    arrivals' mixed step as `closed_loop_ttft_ms` does; `wait` is the decode steps a later
    arrival waits."""
    if m.phase != "prefill":
        raise ValueError(f"{m.id} is not a prefill row")
    pm = run_engine_mode(pm, m)
    first = _step_parts_ms(pm.prefill_breakdown(m.shape, [m.input_tokens] * m.batch))
    if m.metric != CLOSED_LOOP_TTFT:
        return first
    mixed = _step_parts_ms(pm.mixed_step_breakdown(m.shape, m.batch - 1, m.context_tokens,
                                                   m.input_tokens))
    wait = m.wait_steps * pm.decode_breakdown(m.shape, m.batch, m.context_tokens).total_s * 1e3
    c, n = m.batch, m.num_prompts
    parts = {k: (c * first[k] + (n - c) * mixed[k]) / n for k in PART_NAMES}
    parts["wait"] = (n - c) * wait / n
    return parts


class Predictor:
    """PerfModels per model reference, sharing one calibration dict that callers may edit."""

    def __init__(self, catalog: Catalog, calibrations: dict[str, Calibration],
                 base: Path | None = None):
        self.catalog = catalog
        self.calibrations = calibrations
        self.base = base
        self._pms: dict[str, PerfModel] = {}

    def __call__(self, m: Measurement) -> float:
        if m.model not in self._pms:
            self._pms[m.model] = PerfModel(resolve_model(m.model, self.base), self.catalog,
                                           calibrations=self.calibrations)
        return predict_ms(self._pms[m.model], m)


def abs_pct_errors(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    return np.abs(pred - meas) / meas * 100.0


STEP_OVERHEAD_GRID_MS = tuple(float(x) for x in np.round(np.arange(0.0, 8.01, 0.25), 2))
KERNEL_OVERHEAD_GRID_US = tuple(float(x) for x in np.round(np.arange(0.0, 8.01, 0.5), 2))
PREFILL_COMPUTE_SCALE_GRID = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6)


def fit_step_overhead(pred: Predictor, gpu: str, rows: list[Measurement],
                      base: Calibration) -> Calibration:
    """Fit the GPU's end-to-end terms to whole-model rows, kernel efficiencies kept: the
    (step_overhead_ms, kernel_overhead_us) grid point with the least median absolute % error
    over the decode rows (the prefill rows' where there are none; ties: the smaller
    overheads), then prefill_compute_scale on its
    grid by the prefill rows' median (ties: the scale nearest 1, no derate), then the
    overheads again. The eager launch cost (layer_overhead_us) is not fitted here: rows of
    today's engines run their decode steps as CUDA graphs and never expose it.

    Closed-loop TTFT rows are left out: their prediction charges `wait_steps` decode steps, an
    assumption about the engine's scheduler that a fitted overhead would otherwise absorb;
    they validate the fit, they do not make it."""
    mine = [r for r in rows if r.gpu == gpu and r.metric != CLOSED_LOOP_TTFT]
    if not mine:
        return base
    meas = np.array([r.measured_ms for r in mine])
    is_prefill = np.array([r.phase == "prefill" for r in mine])

    def errors(cal: Calibration) -> np.ndarray:
        pred.calibrations[gpu] = cal
        return abs_pct_errors(np.array([pred(r) for r in mine]), meas)

    def balanced(e: np.ndarray) -> float:
        """The decode rows' median where there are decode rows, else the prefill rows': the
        overheads are per-step costs, which a decode row (one step per token) isolates; a
        TTFT also holds per-request costs outside any step (HTTP, tokenizer, admission) that
        a step overhead fitted to it would absorb and then charge to every decode step."""
        return float(np.median(e[~is_prefill] if (~is_prefill).any() else e))

    def best_overheads(cal: Calibration) -> tuple[float, Calibration]:
        best = (np.inf, cal)
        for kernel_us in KERNEL_OVERHEAD_GRID_US:
            for ov in STEP_OVERHEAD_GRID_MS:
                c = cal.model_copy(update={"step_overhead_ms": ov, "kernel_overhead_us": kernel_us})
                e = balanced(errors(c))
                if e < best[0] - 1e-9:
                    best = (e, c)
        return best

    e, cal = best_overheads(base)
    if is_prefill.any():              # the scale moves prefill rows only: fit it on them
        best_p = float(np.median(errors(cal)[is_prefill]))
        for scale in PREFILL_COMPUTE_SCALE_GRID:     # descending: ties keep the larger
            c = cal.model_copy(update={"prefill_compute_scale": scale})
            if (ep := float(np.median(errors(c)[is_prefill]))) < best_p - 1e-9:
                best_p, cal = ep, c
        if cal.prefill_compute_scale != base.prefill_compute_scale:
            e, cal = best_overheads(cal)
    pred.calibrations[gpu] = base
    ids = ", ".join(r.id for r in mine[:6]) + (", ..." if len(mine) > 6 else "")
    kept = re.sub(r"; step/layer overheads are hetplan defaults|; step_overhead_ms.*fitted to .*$",
                  "", base.provenance.notes)    # a refit replaces the previous fit's note
    prov = base.provenance.model_copy(update={
        "fit_error_pct": round(e, 2),
        "notes": kept + f"; step_overhead_ms, kernel_overhead_us and "
                 f"prefill_compute_scale fitted to {len(mine)} end-to-end rows ({ids})"})
    return cal.model_copy(update={"provenance": prov})


def cross_validated_errors(pred: Predictor, rows: list[Measurement], folds: int = 5,
                           fit: bool = True) -> dict[str, float]:
    """Held-out absolute % error of every row: for each of `folds` folds, the step
    overhead is fitted on the other folds (per GPU) and the fold is predicted."""
    base = dict(pred.calibrations)
    errors: dict[str, float] = {}
    for f in range(folds):
        test = [r for i, r in enumerate(rows) if i % folds == f]
        train = [r for i, r in enumerate(rows) if i % folds != f]
        for gpu in sorted({r.gpu for r in test}):
            if fit and gpu in base:
                pred.calibrations[gpu] = fit_step_overhead(pred, gpu, train, base[gpu])
        for r in test:
            errors[r.id] = float(abs_pct_errors(np.array([pred(r)]),
                                                np.array([r.measured_ms]))[0])
        pred.calibrations.clear()
        pred.calibrations.update(base)
    return errors


def error_summary(rows: list[Measurement], errors: dict[str, float]) -> list[dict]:
    """Median and max absolute % error per (GPU, phase), sorted by GPU then phase."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r.gpu, r.phase), []).append(errors[r.id])
    return [{"gpu": g, "phase": p, "n": len(v), "median_abs_pct": float(np.median(v)),
             "max_abs_pct": float(np.max(v))} for (g, p), v in sorted(groups.items())]


__all__ = ["Measurement", "load_measurements", "predict_ms", "closed_loop_ttft_ms",
           "run_engine_mode", "prefill_parts_ms", "PART_NAMES",
           "CLOSED_LOOP_TTFT", "Predictor", "fit_step_overhead",
           "cross_validated_errors", "error_summary"]
