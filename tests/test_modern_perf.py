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

from hetplan.catalog import load_catalog  # noqa: E402
from hetplan.perf import load_calibrations  # noqa: E402
from hetplan.perf.measured import (CLOSED_LOOP_TTFT, Predictor, load_measurements,  # noqa: E402
                                   predict_ms, prefill_parts_ms)

ENGINES = {"vllm", "sglang", "tensorrt-llm"}
# metric -> (phase, whether the decode batch is 1): the metric kinds of modern_perf.md
METRICS = {"ttft_low_load": ("prefill", True), "itl": ("decode", True), "tpot": ("decode", True),
           "derived_from_throughput": ("decode", True), "tpot_closed_loop": ("decode", False),
           "derived_from_e2e_latency": ("decode", None), "ttft_closed_loop": ("prefill", False)}


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


def test_prefill_parts_add_up_to_the_prediction():
    """validate_perf_model --breakdown: each prefill row's parts (GEMM, attention, ..., the
    closed-loop wait) are >= 0 and sum to the row's prediction."""
    pred = Predictor(load_catalog(), dict(load_calibrations()), base=MODERN_TABLE.parent)
    rows = [m for m in load_measurements(MODERN_TABLE) if m.phase == "prefill"]
    assert len(rows) >= 10
    for m in rows:
        pred(m)
        pm = pred._pms[m.model]
        parts = prefill_parts_ms(pm, m)
        assert min(parts.values()) >= 0.0, m.id
        assert sum(parts.values()) == pytest.approx(predict_ms(pm, m), rel=1e-9), m.id
        assert (parts["wait"] > 0) == (m.metric == CLOSED_LOOP_TTFT), m.id


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
       ("A100-80G-SXM", "prefill"), ("H200", "prefill")]
# The same target per GPU, phase and TP where the table has >= 2 rows and the model meets it.
MET_BY_TP = [("B200", "decode", 2), ("B200", "decode", 4),
             ("B200", "decode", 8),
             ("H100-SXM", "decode", 2), ("H100-SXM", "decode", 4), ("H200", "decode", 1),
             ("H200", "decode", 8), ("A100-40G-SXM", "decode", 1), ("A100-80G-SXM", "decode", 1),
             ("A100-80G-SXM", "prefill", 1)]
# Where the target is not met (2026-11-30), and why (tests/data/modern_perf.md, "Prefill",
# "Third pass", "Fourth pass"):
NOT_MET = {
    ("H100-SXM", "prefill"): "TRT-LLM FP8 TTFT (NIM 1.8) at 5000 tokens +19%, faster than the "
                             "vLLM kernel tables hetplan prices; vLLM closed-loop TTFT "
                             "TP2/TP4/TP8 +25%/+20%/+24% while H200's (same compute) are "
                             "within 13%: the two GPUs' FP8 GEMM tables disagree by 4-7%, and "
                             "the H100 runs back out 0.57 ms/layer of eager launch, not 0.8",
    ("B200", "prefill"): "DeepSeek-R1 SGLang TTFTs -51% and -69%: ~110 ms per request beyond "
                         "the step on B200 in every run of this engine (B300, same recipe: "
                         "70.9 ms), and its 7373-token GPU work under-priced (B300: 288 ms); "
                         "vLLM closed-loop TTFT TP4 -42% (measured slower than TP2, and slower "
                         "at conc 4 than at conc 8 in the same sweep)",
    ("A100-40G-SXM", "prefill"): "SGLang TTFT at 280 tokens -16% (TP1) and -11% / -40% (TP8, "
                                 "Llama-3-70B / Mixtral-8x7B) with A100-80G-SXM's kernels "
                                 "(calibration.SAME_SILICON) and an eager prompt step: ~5-17 ms "
                                 "per request outside the predicted step",
    ("A100-40G-SXM", "decode"): "SGLang Mixtral-8x7B TP8 batch-1 TPOT -31% (3.41 predicted, "
                                "4.94 ms measured; Llama-3-70B TP8 in the same runs +2%): A100 "
                                "has no MoE-layer table, and 1/8-wide expert slices do not "
                                "reach the scalar efficiencies "
                                "(AccelMark rows of 2026-05, out of sample: no calibration was "
                                "refitted to them)",
    ("B200", "decode"): "vLLM 0.20.1 Llama-3-8B/3.1-8B TP1 batch-1 TPOT +25% / +22% (4.31 "
                        "predicted, 3.45 ms measured): the per-step and per-kernel overheads "
                        "fitted to the decode rows (1.25 ms, 1.0 us; 30 of the 36 are Llama-70B "
                        "and DeepSeek-R1 steps of 5-25 ms) are ~1.6 ms of an 8B step that "
                        "holds 0.6-0.7 ms beyond the predicted GPU work",
}
# Not in the table at all: L40S (no 2025+ source found). H200 prefill has one row per TP,
# too few for a per-TP target; A100 has TP1 and TP8 (A100-40G, SGLang) only.
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


def test_closed_loop_ttft_prediction_composes_steps():
    """A closed-loop TTFT row costs the shared first step for `batch` of `num_prompts`
    requests and, for the rest, a mixed step plus `wait_steps` decode steps: each extra wait
    step adds (num_prompts - batch) / num_prompts decode steps, and with many prompts the
    mean tends to one later arrival's TTFT."""
    import dataclasses

    from hetplan.catalog import load_catalog
    from hetplan.perf import load_calibrations
    from hetplan.perf.measured import CLOSED_LOOP_TTFT, Predictor, predict_ms

    row = next(m for m in load_measurements(MODERN_TABLE) if m.metric == CLOSED_LOOP_TTFT)
    pred = Predictor(load_catalog(), dict(load_calibrations()), base=MODERN_TABLE.parent)
    pred(row)
    pm = pred._pms[row.model]
    step_ms = pm.decode_breakdown(row.shape, row.batch, row.context_tokens).total_s * 1e3
    t = {w: predict_ms(pm, dataclasses.replace(row, wait_steps=w)) for w in (0.0, 1.0, 2.0)}
    share = (row.num_prompts - row.batch) / row.num_prompts
    assert t[1.0] - t[0.0] == pytest.approx(share * step_ms, rel=1e-9)
    assert t[2.0] - t[1.0] == pytest.approx(share * step_ms, rel=1e-9)
    later = (pm.mixed_step_s(row.shape, row.batch - 1, row.context_tokens, row.input_tokens)
             * 1e3 + row.wait_steps * step_ms)
    many = predict_ms(pm, dataclasses.replace(row, num_prompts=10**7))
    assert many == pytest.approx(later, rel=1e-5)


def test_closed_loop_rows_need_more_prompts_than_in_flight(tmp_path):
    from hetplan.errors import InputError
    with MODERN_TABLE.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    bad = next(dict(r) for r in rows if r["metric"] == "ttft_closed_loop")
    bad["num_prompts"] = bad["batch"]
    out = tmp_path / "bad.csv"
    with out.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerow(bad)
    with pytest.raises(InputError, match="num_prompts > batch"):
        load_measurements(out)


def test_eager_prompt_rows_run_their_prompt_steps_without_graphs():
    """Rows marked prompt_steps_eager price every step holding a prompt eager (the CPU's
    per-layer launch, calibration.EAGER_LAYER_DISPATCH_US, is a floor under it) and their
    decode steps from a graph; unmarked rows keep the engine's default capture size."""
    from hetplan.catalog import load_catalog
    from hetplan.perf import load_calibrations
    from hetplan.perf.calibration import EAGER_LAYER_DISPATCH_US
    from hetplan.perf.measured import Predictor, run_engine_mode

    rows = load_measurements(MODERN_TABLE)
    eager = [m for m in rows if m.prompt_steps_eager]
    assert eager and all(m.phase == "prefill" for m in eager)
    pred = Predictor(load_catalog(), dict(load_calibrations()), base=MODERN_TABLE.parent)
    row = next(m for m in eager if m.gpu == "B200" and m.tp == 8 and m.batch > 1)
    pred(row)
    pm = pred._pms[row.model]
    run = run_engine_mode(pm, row)
    assert pm.prefill_breakdown(row.shape, [row.input_tokens]).cuda_graph    # B200 default: 1024
    step = run.prefill_breakdown(row.shape, [row.input_tokens])
    assert not step.cuda_graph
    assert step.total_s >= pm.model.num_layers * EAGER_LAYER_DISPATCH_US * 1e-6
    assert run.decode_breakdown(row.shape, row.batch, row.context_tokens).cuda_graph
    plain = next(m for m in rows if not m.prompt_steps_eager)
    assert run_engine_mode(pm, plain) is pm


def test_prompt_steps_eager_is_a_0_or_1_flag(tmp_path):
    from hetplan.errors import InputError
    with MODERN_TABLE.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    bad = dict(next(r for r in rows if r["prompt_steps_eager"] == "1"), prompt_steps_eager="yes")
    out = tmp_path / "bad.csv"
    with out.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerow(bad)
    with pytest.raises(InputError, match="expected 0, 1 or empty"):
        load_measurements(out)
