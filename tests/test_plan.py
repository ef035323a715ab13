"""Plan totals are computed from the pools: plan.json reads back byte-identical, and a
plan whose pools change cannot disagree with its cost, GPUs per role or P:D."""

from __future__ import annotations

from pathlib import Path

import pytest

from hetplan.enums import Role
from hetplan.plan import Plan, load_plan, reduced_ratio

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PLANS = sorted(DEPLOY.glob("*/plan.json"))


@pytest.mark.parametrize("path", PLANS, ids=[p.parent.name for p in PLANS])
def test_plan_json_round_trips(path):
    text = path.read_text(encoding="utf-8")
    plan = load_plan(path)
    assert plan.to_json() == text
    assert Plan(**plan.model_dump()).to_json() == text      # computed keys are accepted


def test_totals_follow_the_pools():
    plan = load_plan(next(p for p in PLANS if p.parent.name == "default"))
    doubled = plan.model_copy(update={"pools": [p.model_copy(update={
        "replicas": 2 * p.replicas, "gpus": 2 * p.gpus,
        "cost_usd_per_hour": 2 * p.cost_usd_per_hour}) for p in plan.pools]})
    assert doubled.cost_usd_per_hour == pytest.approx(2 * plan.cost_usd_per_hour)
    assert doubled.usd_per_million_tokens == pytest.approx(2 * plan.usd_per_million_tokens)
    assert doubled.usd_per_million_output_tokens == pytest.approx(
        2 * plan.usd_per_million_output_tokens)
    for role in Role:
        assert doubled.gpus_by_role()[role] == 2 * plan.gpus_by_role()[role]
    assert doubled.golden_ratio == plan.golden_ratio
    assert plan.prefill_gpus == sum(p.gpus for p in plan.pools if p.role == "prefill")
    assert plan.cost_usd_per_hour == sum(p.cost_usd_per_hour for p in plan.pools)


@pytest.mark.parametrize("p, d, want", [(6, 4, "3:2"), (0, 4, "0:4"), (5, 0, "5:0"),
                                        (7, 7, "1:1")])
def test_reduced_ratio(p, d, want):
    assert reduced_ratio(p, d) == want
