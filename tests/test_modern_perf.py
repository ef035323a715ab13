"""The modern validation table (tests/data/modern_perf.csv, engines from 2025 on): it loads with
the measurement loader, every row is sourced, versioned and of the 2025+ era, its figures are
finite and positive, and the perf model can predict every row. Issue 15's accuracy target is
asserted per GPU and phase (and per TP) where perf model v2 meets it against the cited rows;
where it does not, NOT_MET says why and a test keeps that list current."""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from validate_perf_model import (MODERN_ERA, MODERN_TABLE, evaluate_by_shape,  # noqa: E402
                                 meets_modern_target)

from hetplan.perf.measured import load_measurements  # noqa: E402

ENGINES = {"vllm", "sglang", "tensorrt-llm"}
# metric -> (phase, whether the decode batch is 1): the metric kinds of modern_perf.md
METRICS = {"ttft_low_load": ("prefill", True), "itl": ("decode", True), "tpot": ("decode", True),
           "derived_from_throughput": ("decode", True), "tpot_closed_loop": ("decode", False),
           "derived_from_e2e_latency": ("decode", None)}


@pytest.fixture(scope="module")
def raw_rows() -> list[dict[str, str]]:
    with MODERN_TABLE.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_loads_with_the_measurement_loader(raw_rows):
    rows = load_measurements(MODERN_TABLE)
    assert len(rows) == len(raw_rows) >= 20
    assert len({r.id for r in rows}) == len(rows)
    for r in rows:
        assert math.isfinite(r.measured_ms) and r.measured_ms > 0
        assert math.isfinite(r.context_tokens) and r.context_tokens >= r.input_tokens > 0
        assert 1 <= r.tp <= 8 and 1 <= r.batch <= 64


def test_every_row_is_sourced_versioned_and_modern(raw_rows):
    for r in raw_rows:
        assert r["engine"] in ENGINES, r["id"]
        assert r["engine_version"].strip(), r["id"]
        assert int(r["era"]) >= 2025, r["id"]
        assert len(r["source"]) > 40 and ("http" in r["source"] or "github" in r["source"]), r["id"]
        assert r["conversion_note"].strip(), r["id"]


def test_model_predicts_every_row():
    res = evaluate_by_shape({MODERN_ERA: MODERN_TABLE})
    assert len(res["rows"]) == len(load_measurements(MODERN_TABLE))
    assert all(math.isfinite(r["predicted_ms"]) and r["predicted_ms"] > 0 for r in res["rows"])
    assert sum(s["n"] for s in res["summary"]) == len(res["rows"])


def test_metric_kinds_match_phase_batch_and_context(raw_rows):
    """Each metric is a documented kind; single-request metrics sit at batch 1, closed-loop
    TPOT above it; a decode row's context is input + output/2 (modern_perf.md, Columns)."""
    for r in raw_rows:
        phase, batch_one = METRICS[r["metric"]]
        assert r["phase"] == phase, r["id"]
        if batch_one is not None:
            assert (int(r["batch"]) == 1) == batch_one, r["id"]
        if phase == "decode":
            expected = float(r["input_tokens"]) + float(r["output_tokens"]) / 2
            assert abs(float(r["context_tokens"]) - expected) <= 0.5, r["id"]


# Issue 15's accuracy target (median <= 10%, max <= 25% per GPU and phase against the cited
# 2025+ rows: validate_perf_model.meets_modern_target), asserted where perf model v2 meets it.
MET = [("H100-SXM", "decode"), ("H200", "decode"), ("A100-80G-SXM", "decode"),
       ("A100-40G-SXM", "decode"), ("A100-80G-SXM", "prefill")]
# The same target per GPU, phase and TP where the table has >= 2 rows and the model meets it.
MET_BY_TP = [("B200", "decode", 1), ("B200", "decode", 2), ("B200", "decode", 4),
             ("H100-SXM", "decode", 2), ("H100-SXM", "decode", 4), ("H200", "decode", 1),
             ("H200", "decode", 8), ("A100-40G-SXM", "decode", 1), ("A100-80G-SXM", "decode", 1),
             ("A100-80G-SXM", "prefill", 1)]
# Where the target is not met (2026-11-30), and why (tests/data/modern_perf.md, "Prefill"):
NOT_MET = {
    ("H100-SXM", "prefill"): "2 TensorRT-LLM FP8 TTFTs (NIM 1.8), +9% and +25%: TRT-LLM's "
                             "prefill beats the vLLM kernel tables hetplan prices",
    ("B200", "prefill"): "2 DeepSeek-R1 SGLang TTFTs, -50% and -78%: a ~140 ms fixed cost "
                         "per request that no step term describes",
    ("A100-40G-SXM", "prefill"): "SGLang TTFT at 280 tokens -36%: ~12 ms per request outside "
                                 "the prefill step",
    ("B200", "decode"): "TP8 rows up to 29% (DeepSeek-R1 and Llama-70B at batch 64)",
}
# Not in the table at all: L40S (no 2025+ source found), H200 prefill, and prefill at TP 4-8
# on H100/H200 and TP 1-4 on B200.
# Dense-model decode on the NVLink GPUs, the rows that decide GPU choice for Llama-class
# pools: within 15% in the median on each GPU (before v2: 20-35% at TP8), and the error no
# longer grows with TP.
DENSE_DECODE = ["H100-SXM", "H200", "B200"]


@pytest.fixture(scope="module")
def modern_errors():
    rows = evaluate_by_shape({MODERN_ERA: MODERN_TABLE})["rows"]
    models = {m.id: m.model for m in load_measurements(MODERN_TABLE)}
    return [dict(r, model=models[r["id"]]) for r in rows]


@pytest.mark.parametrize("gpu,phase", MET)
def test_target_met_against_cited_rows(modern_errors, gpu, phase):
    err = [abs(r["signed_pct_error"]) for r in modern_errors
           if r["gpu"] == gpu and r["phase"] == phase]
    assert len(err) >= 2 and meets_modern_target(err)


@pytest.mark.parametrize("gpu,phase,tp", MET_BY_TP)
def test_target_met_per_tp_against_cited_rows(modern_errors, gpu, phase, tp):
    err = [abs(r["signed_pct_error"]) for r in modern_errors
           if r["gpu"] == gpu and r["phase"] == phase and r["tp"] == tp]
    assert len(err) >= 2 and meets_modern_target(err)


@pytest.mark.parametrize("gpu,phase", sorted(NOT_MET))
def test_not_met_list_is_current(modern_errors, gpu, phase):
    """Each listed miss is still a miss; one that starts to meet the target moves to MET."""
    err = [abs(r["signed_pct_error"]) for r in modern_errors
           if r["gpu"] == gpu and r["phase"] == phase]
    assert len(err) >= 2 and not meets_modern_target(err)


@pytest.mark.parametrize("gpu", DENSE_DECODE)
def test_dense_decode_median_and_tp_spread(modern_errors, gpu):
    rows = [r for r in modern_errors if r["gpu"] == gpu and r["phase"] == "decode"
            and "deepseek" not in r["model"]]
    assert len(rows) >= 8
    assert statistics.median(abs(r["signed_pct_error"]) for r in rows) <= 15.0
    by_tp = {}
    for r in rows:
        by_tp.setdefault(r["tp"], []).append(r["signed_pct_error"])
    medians = {tp: statistics.median(v) for tp, v in by_tp.items()}
    # before v2 the signed error rose with TP (H100 TP8 +35%, B200 TP8 +15% in the median)
    assert max(medians.values()) - min(medians.values()) <= 25.0
    assert medians[max(medians)] <= 15.0
