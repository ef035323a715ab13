"""The perf model against published measurements (tests/data/published_perf.csv, each row
sourced), held out by 5-fold cross-validation of the fitted overheads.

Issue 3's target is a median absolute error <= 15% on H100 and A100 prefill and decode.
Each fold refits the overheads and the prefill compute scale on the other folds, so every
row is predicted by a fit that never saw it.

A second, independent table (tests/data/measured_h100_hf.csv, a transformers layer stack
timed on an H100 by scripts/measure_hf_layers.py) is predicted with the committed
calibration, which was fitted to the published table only."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from validate_perf_model import evaluate  # noqa: E402

TABLE = ROOT / "tests/data/published_perf.csv"


@pytest.fixture(scope="module")
def summary():
    res = evaluate(TABLE, folds=5)
    return {(s["gpu"], s["phase"]): s for s in res["cross_validated"]}, res


@pytest.mark.parametrize("gpu", ["H100-SXM", "A100-80G-SXM", "A100-40G-SXM"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_meets_15pct_target(summary, gpu, phase):
    assert summary[0][gpu, phase]["median_abs_pct"] <= 15.0


def test_h100_measured_layer_stack_prefill():
    """Kernel-bound prefill (>= 1024 prompt tokens) of three real decoder stacks on an H100,
    predicted with the calibration fitted to other engines' published numbers."""
    import numpy as np

    from hetplan.catalog import load_catalog
    from hetplan.perf import load_calibrations
    from hetplan.perf.measured import Predictor, abs_pct_errors, load_measurements
    table = ROOT / "tests/data/measured_h100_hf.csv"
    rows = [r for r in load_measurements(table)
            if r.phase == "prefill" and r.batch * r.input_tokens >= 1024]
    pred = Predictor(load_catalog(), dict(load_calibrations()), base=table.parent)
    err = abs_pct_errors(np.array([pred(r) for r in rows]),
                         np.array([r.measured_ms for r in rows]))
    assert len(rows) >= 20 and float(np.median(err)) <= 15.0


def test_h100_measured_mha_decode():
    """Decode steps of Llama-2-13B (no GQA, so transformers' SDPA path reads the KV cache
    once, as a paged-attention engine does): median within 10%, each within 16%.

    Since perf model v2 the per-kernel overhead is fitted to today's engines, whose fused
    layers launch ~11 kernels; transformers' unfused layers launch about three times as
    many, so its small-batch steps run ~1 ms longer than the model charges (b1, b8:
    -14.5%, -15.1% on 2026-11-30; they were within 12% when a 60 us per-layer overhead,
    fitted to 2023 engines, stood in for it)."""
    import numpy as np

    from hetplan.catalog import load_catalog
    from hetplan.perf import load_calibrations
    from hetplan.perf.measured import Predictor, abs_pct_errors, load_measurements
    table = ROOT / "tests/data/measured_h100_hf.csv"
    rows = [r for r in load_measurements(table) if r.phase == "decode" and "13b" in r.model]
    pred = Predictor(load_catalog(), dict(load_calibrations()), base=table.parent)
    err = abs_pct_errors(np.array([pred(r) for r in rows]),
                         np.array([r.measured_ms for r in rows]))
    assert len(rows) == 5 and float(np.median(err)) <= 10.0 and float(err.max()) <= 16.0


def test_every_row_is_sourced_and_predicted(summary):
    rows = summary[1]["rows"]
    assert len(rows) >= 40
    assert all(r["predicted_ms"] > 0 for r in rows)
