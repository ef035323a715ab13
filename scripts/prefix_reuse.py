#!/usr/bin/env python3
"""Prefix reuse on the Mooncake conversation trace (issue 16, item 5): the plan with and
without the prefix cache, the share of prefill work the cache removes, and the hit rate
the planner assumed against the one the simulator replays.

The scenario is `workloads/mooncake.yaml`'s (Llama-3.1-70B, the same GPUs and prices, p90
TPOT <= 100 ms) on the real trace, with a p90 TTFT of 10 s (the trace's longest class,
~90k-token prompts, cannot be prefilled within 5 s on any candidate), disaggregated only:
colocated pools are charged for every prompt token (the planner's prefix model covers
prefill pools), so letting the MILP choose them would mix the cache's effect with a change
of serving mode.

    python scripts/prefix_reuse.py [--traces DIR] [--ttft-ms 10000] [--rate-scale K]

--rate-scale K replays the trace K times faster (arrival times divided by K, prompts and
block ids unchanged): more replicas per pool, so whole replicas round less.

DIR defaults to $HETPLAN_TRACES_DIR, else ../shared/traces beside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hetplan.catalog import load_catalog  # noqa: E402
from hetplan.model import load_model  # noqa: E402
from hetplan.perf import PerfModel  # noqa: E402
from hetplan.planner import plan_scenario  # noqa: E402
from hetplan.scenario import load_scenario  # noqa: E402
from hetplan.simulate import simulate_plan  # noqa: E402
from hetplan.tables import text_table  # noqa: E402

TRACE = "mooncake_conversation_trace.jsonl"


def scenario(trace: Path, ttft_ms: float, **constraints) -> dict:
    return {"name": "mooncake-conversation", "model": "llama-3.1-70b",
            "workload": {"trace": str(trace), "format": "mooncake",
                         "classes": {"n_input": 3, "n_output": 2, "method": "log"}},
            "slo": {"ttft_ms": ttft_ms, "tpot_ms": 100, "percentile": 90},
            "catalog": {"gpus": ["H100-SXM", "L40S", "A100-80G-PCIe", "B200"],
                        "prices": "2026-04-17-seed"},
            "constraints": {"roles": ["prefill", "decode"], **constraints}}


def scaled(src: Path, dst: Path, k: float) -> Path:
    """A copy of a Mooncake JSONL trace with arrival times divided by k."""
    with open(src) as f, open(dst, "w") as g:
        for line in f:
            row = json.loads(line)
            row["timestamp"] = int(round(row["timestamp"] / k))
            g.write(json.dumps(row) + "\n")
    return dst


def prefill_usd(plan) -> float:
    return sum(p.cost_usd_per_hour for p in plan.pools if p.role == "prefill")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=Path, default=Path(os.environ.get(
        "HETPLAN_TRACES_DIR", ROOT.parent / "shared" / "traces")))
    ap.add_argument("--ttft-ms", type=float, default=10000.0)
    ap.add_argument("--rate-scale", type=float, default=1.0)
    args = ap.parse_args()
    trace = args.traces / TRACE
    if not trace.exists():
        print(f"no {TRACE} under {args.traces}", file=sys.stderr)
        return 2
    cat = load_catalog()
    pm = PerfModel(load_model("llama-3.1-70b"), cat)
    rows, plans = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.rate_scale != 1.0:
            trace = scaled(trace, Path(tmp) / TRACE, args.rate_scale)
        for key, extra in (("off", {"prefix_cache": False}), ("cache-aware", {}),
                           ("random", {"prefix_routing": "random"})):
            f = Path(tmp) / f"{key}.yaml"
            f.write_text(yaml.safe_dump(scenario(trace, args.ttft_ms, **extra)))
            rs = load_scenario(f, cat)
            t0 = time.perf_counter()
            plan = plan_scenario(rs, cat)
            solve_s = time.perf_counter() - t0
            rep, _ = simulate_plan(plan, rs.trace, pm)
            plans[key] = plan
            pc, sp = plan.prefix_cache, rep.prefix_cache
            rows.append([key, f"{plan.cost_usd_per_hour:.2f}", f"{prefill_usd(plan):.2f}",
                         " + ".join(f"{p.replicas}x {p.name}" for p in plan.pools
                                    if p.role == "prefill"),
                         f"{pc.hit_rate:.1%}" if pc else "-",
                         f"{sp.planned_hit_rate:.1%}" if sp else "-",
                         f"{sp.hit_rate:.1%}" if sp else "-",
                         f"{rep.slo_attainment:.1%}", f"{solve_s:.1f}"])
    print(text_table(["plan", "$/h", "prefill $/h", "prefill pools", "hit planned",
                      "planned (sim's routing)", "hit simulated", "SLO attain (sim)",
                      "solve s"], rows))
    off, on = plans["off"], plans["cache-aware"]
    pc = on.prefix_cache
    print()
    print(f"trace {TRACE} at {args.rate_scale:g}x its rate, p90 TTFT <= {args.ttft_ms:g} ms")
    print(f"prompt tokens served from the cache (planned, cache-aware): {pc.hit_rate:.1%}")
    print(f"prefill work the cache removes (replica-time of the chosen pools, pro rata): "
          f"{pc.work_share:.1%} (${pc.saved_usd_per_hour:.2f}/h)")
    print(f"plan cost: ${off.cost_usd_per_hour:.2f}/h without, ${on.cost_usd_per_hour:.2f}/h "
          f"with ({1 - on.cost_usd_per_hour / off.cost_usd_per_hour:.1%} cheaper); prefill "
          f"pools ${prefill_usd(off):.2f}/h -> ${prefill_usd(on):.2f}/h "
          f"({1 - prefill_usd(on) / prefill_usd(off):.1%} cheaper)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
