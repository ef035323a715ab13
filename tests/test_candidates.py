"""Candidates: capacities respect the SLO and VRAM they were computed for, and shapes that
cannot serve say why."""

from __future__ import annotations

import pytest

from hetplan.candidates import (TTFT_SHARE_FOR_SERVICE, build_candidates, colocated_capacity,
                                decode_capacity, prefill_capacity)
from hetplan.catalog import load_catalog
from hetplan.model import load_model
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.scenario import SLO
from hetplan.workload import single_class

CAT = load_catalog()
PM = PerfModel(load_model("llama-3.1-70b"), CAT)
SLO_CHAT = SLO(ttft_ms=1000, tpot_ms=50, percentile=90)


CHAT = single_class("chat", 10, 256, 512)
LONG = single_class("long", 1, 30_000, 200, 32_000, 300)


def test_decode_batch_meets_tpot_and_is_maximal():
    s = ReplicaShape("H100-SXM", 2, 1, "fp8", "fp8")
    cap = decode_capacity(PM, s, CHAT, SLO_CHAT)
    ctx = CHAT.mean_input_tokens + CHAT.mean_output_tokens / 2
    assert PM.decode_step_s(s, cap.batch, ctx) * 1e3 <= SLO_CHAT.tpot_ms
    assert cap.batch == PM.max_decode_batch(s, 768, 1024) or \
        PM.decode_step_s(s, cap.batch + 1, ctx) * 1e3 > SLO_CHAT.tpot_ms
    assert cap.capacity_rps == pytest.approx(
        cap.batch / (CHAT.mean_output_tokens * PM.decode_step_s(s, cap.batch, ctx)))


def test_prefill_batch_meets_ttft_share():
    s = ReplicaShape("H100-SXM", 4, 1, "fp8", "fp8")
    cap = prefill_capacity(PM, s, LONG, SLO(ttft_ms=20_000, tpot_ms=50), "ib-400g", False)
    assert cap.capacity_rps > 0
    assert cap.ttft_ms <= 20_000 * TTFT_SHARE_FOR_SERVICE


def test_tight_ttft_gives_zero_capacity_with_reason():
    s = ReplicaShape("L40S", 2, 1, "fp8", "fp8")
    cap = prefill_capacity(PM, s, LONG, SLO_CHAT, "ib-400g", False)
    assert cap.capacity_rps == 0 and cap.why.startswith("TTFT:")


def test_l40s_tp2_cannot_decode_70b_at_50ms():
    """70B in FP8 is ~35 GB per GPU on 2 L40S: one step streams it at 864 GB/s, > 40 ms
    before any overhead, so a 50 ms TPOT leaves no room for a batch."""
    cap = decode_capacity(PM, ReplicaShape("L40S", 2, 1, "fp8", "fp8"), CHAT, SLO_CHAT)
    assert cap.capacity_rps == 0 and "TPOT" in cap.why


def test_colocated_step_meets_tpot():
    s = ReplicaShape("H100-SXM", 2, 1, "fp8", "fp8")
    cap = colocated_capacity(PM, s, CHAT, SLO_CHAT)
    assert cap.capacity_rps > 0 and cap.tpot_ms <= SLO_CHAT.tpot_ms
    assert cap.ttft_ms <= SLO_CHAT.ttft_ms * TTFT_SHARE_FOR_SERVICE


def test_build_candidates_drops_what_cannot_fit():
    prices = {"L40S": 0.72, "A100-80G-PCIe": 1.04}
    cands, dropped = build_candidates(PM, CAT, prices, [CHAT], SLO_CHAT, max_tp=8,
                                      weight_dtypes=("bf16", "fp8"), kv_dtypes=("bf16", "fp8"))
    assert any("A100-80G-PCIe-tp1-wbf16" in d and "VRAM" in d for d in dropped)
    assert any("A100-80G-PCIe" in d and "fp8" in d for d in dropped)   # no FP8 on Ampere
    assert all(c.num_gpus >= 2 for c in cands if c.shape.gpu == "L40S")   # 70 GB > 48 GB
    assert all(c.price_usd_per_hour == pytest.approx(prices[c.shape.gpu] * c.num_gpus)
               for c in cands)
