"""The perf model against published measurements (tests/data/published_perf.csv, each row
sourced), held out by 5-fold cross-validation of the fitted overheads.

Issue 3's target is a median absolute error <= 15% on H100 and A100 prefill and decode.
Decode meets it; prefill does not yet (H100 ~24%, A100-80G ~17%: most misses are 2023-era
engines in the Splitwise and LMDeploy tables, slower than the kernels the calibration
measured). The prefill bounds below guard what is achieved, not the target."""

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
def test_decode_meets_15pct_target(summary, gpu):
    assert summary[0][gpu, "decode"]["median_abs_pct"] <= 15.0


@pytest.mark.parametrize("gpu, bound", [("H100-SXM", 26.0), ("A100-80G-SXM", 19.0),
                                        ("A100-40G-SXM", 15.0)])
def test_prefill_within_achieved_bound(summary, gpu, bound):
    assert summary[0][gpu, "prefill"]["median_abs_pct"] <= bound


def test_every_row_is_sourced_and_predicted(summary):
    rows = summary[1]["rows"]
    assert len(rows) >= 40
    assert all(r["predicted_ms"] > 0 for r in rows)
