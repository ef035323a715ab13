#!/usr/bin/env python3
"""Fleet scale test (issue 18): five models planned as one fleet on the 1000-node bench
inventory of `bench_place.py` (8 GPU types, N+1 and spot headroom), timed per stage.

Targets: the single-model ones (issue 5: a solve <= 10 s on 2 cores; issue 6: placement
<= 60 s). The fleet (a 70B chat model, an 8B router, a 32B coder, a 30B-A3B MoE and a
20B MoE, two classes each) and its inventory are written to a temporary directory, not
kept. The machine may be shared: times are wall times, and CPU times (the solvers run
single-threaded in this process) are what an idle core would take. The fleet MILP's
time splits into building its models (our LinearProgram, PuLP's model, HiGHS's copy)
and the HiGHS run.

    python scripts/bench_fleet.py [--nodes 1000] [--scale 1.0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402

from bench_place import inventory_yaml  # noqa: E402
from hetplan.catalog import load_catalog  # noqa: E402
from hetplan.fleet.report import fleet_summary  # noqa: E402
from hetplan.fleet.solve import plan_fleet  # noqa: E402
from hetplan.fleet.spec import load_fleet  # noqa: E402
from hetplan.io import write_atomic  # noqa: E402

# member -> (model, req/s at scale 1, median prompt tokens, TTFT ms, TPOT ms, weight)
MEMBERS = {
    "chat-70b": ("llama-3.1-70b", 2000.0, 1024, 2000, 50, 4.0),
    "router-8b": ("llama-3.1-8b", 4000.0, 512, 500, 30, 2.0),
    "coder-32b": ("qwen3-32b", 500.0, 4096, 3000, 50, 2.0),
    "moe-30b": ("qwen3-30b-a3b", 1000.0, 1024, 2000, 40, 1.0),
    "oss-20b": ("gpt-oss-20b", 1000.0, 1024, 2000, 40, 1.0),
}


def fleet_yaml(scale: float) -> str:
    members = []
    for name, (model, rate, median, ttft, tpot, weight) in MEMBERS.items():
        members.append({
            "name": name, "model": model, "weight": weight,
            "workload": {"synthetic": {
                "arrival": {"process": "poisson", "rate_rps": rate * scale},
                "input_tokens": {"dist": "lognormal", "median": median, "sigma": 1.0,
                                 "min": 16, "max": 16384},
                "output_tokens": {"dist": "lognormal", "median": 256, "sigma": 0.8,
                                  "min": 8, "max": 4096},
                "duration_s": 60, "seed": 0},
                "classes": {"n_input": 2, "n_output": 1}},
            "slo": {"ttft_ms": ttft, "tpot_ms": tpot, "percentile": 90}})
    return yaml.safe_dump({
        "name": "bench-fleet", "members": members, "inventory": "inventory.yaml",
        "catalog": {"prices": "2026-11-market"},
        "constraints": {"allow_cross_vendor": True, "weight_dtypes": ["fp8"],
                        "kv_dtypes": ["fp8"],
                        "reliability": {"n_plus_one": True, "spot_headroom": 0.3}}},
        sort_keys=False)


def _timed(calls: dict[str, list[tuple[float, float]]]) -> None:
    """Record the (wall, CPU) time of each stage: the members alone, the fleet MILP's
    model build (our LinearProgram; PuLP's model and HiGHS's copy of it) apart from the
    HiGHS run itself, and the placement calls."""
    import highspy

    import hetplan.fleet.formulation as fform
    import hetplan.fleet.place as fplace
    import hetplan.fleet.solve as fsolve

    inside: list[str] = []        # the stages now running, outermost first

    def wrap(mod, name, key, within: str | None = None):
        inner = getattr(mod, name)

        def wrapper(*args, **kwargs):
            if within is not None and within not in inside:
                return inner(*args, **kwargs)
            t, c = time.perf_counter(), time.process_time()
            inside.append(key)
            try:
                return inner(*args, **kwargs)
            finally:
                inside.pop()
                calls.setdefault(key, []).append((time.perf_counter() - t,
                                                  time.process_time() - c))
        setattr(mod, name, wrapper)
    wrap(fsolve, "plan_alone_in_turn", "alone in turn")
    wrap(fsolve, "alone_on_whole", "alone on the whole inventory")
    wrap(fsolve, "_solve_milp", "fleet MILP")
    wrap(fform.FleetFormulation, "__init__", "fleet MILP: LinearProgram")
    wrap(fsolve, "solve", "fleet MILP: PuLP + HiGHS")
    wrap(highspy.Highs, "run", "HiGHS run", within="fleet MILP: PuLP + HiGHS")
    wrap(fplace, "place_plan", "placement")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every member's rate")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--keep", type=Path, help="write the inventory and fleet file here")
    args = ap.parse_args()
    calls: dict[str, list[float]] = {}
    _timed(calls)
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or Path(tmp)
        write_atomic(d / "inventory.yaml", inventory_yaml(args.nodes))
        write_atomic(d / "fleet.yaml", fleet_yaml(args.scale))
        t0 = time.perf_counter()
        cat = load_catalog()
        rf = load_fleet(d / "fleet.yaml", cat)
        t1 = time.perf_counter()
        r = plan_fleet(rf, cat, time_limit_s=args.time_limit)
        t2 = time.perf_counter()
    s = fleet_summary(r)
    inv = rf.inventory
    print(f"inventory: {len(inv.nodes)} nodes, {len(inv.gpus_by_type())} GPU types, "
          f"{sum(inv.gpus_by_type().values())} GPUs")
    for m in s["members"]:
        print(f"  {m['name']:<10} ${m['cost_usd_per_hour']:>9,.2f}/h  "
              + ", ".join(f"{n}x {g}" for g, n in m["gpus"].items()))
    print(f"fleet: ${s['cost_usd_per_hour']:,.2f}/h on {sum(s['gpus'].values())} GPUs, "
          f"{len(s['shared_nodes'])} node(s) shared by members")
    a = s.get("alone_in_turn", {})
    if a.get("sizing_cost_usd_per_hour") is not None:
        print(f"sizing cost: fleet ${s['sizing_cost_usd_per_hour']:,.2f}/h vs members alone in "
              f"turn ${a['sizing_cost_usd_per_hour']:,.2f}/h")
    def tot(key: str) -> tuple[float, float, int]:
        rows = calls.get(key, [])
        return sum(w for w, _ in rows), sum(c for _, c in rows), len(rows)

    def line(label: str, key: str, note: str = "") -> None:
        wall, cpu, n = tot(key)
        print(f"  {label:<34}{wall:6.2f} s  ({cpu:5.2f} CPU s, {n} call(s)) {note}")
    print(f"load fleet + inventory            {t1 - t0:6.2f} s")
    print(f"candidates + MILPs + placement    {t2 - t1:6.2f} s")
    line("members alone on everything", "alone on the whole inventory", "(the lower bound)")
    line("members alone in turn", "alone in turn", "(the comparison and the start)")
    print(f"  fleet MILP over {len(r.joint)} of {len(s['members'])} members"
          + (" (the others' plans alone fit beside theirs)"
             if len(r.joint) < len(s["members"]) else ""))
    milp = tot("fleet MILP")
    print(f"  fleet MILP, all rounds            {milp[0]:6.2f} s  ({milp[1]:5.2f} CPU s) "
          "target <= 10 s")
    line("  build: LinearProgram", "fleet MILP: LinearProgram")
    backend, run = tot("fleet MILP: PuLP + HiGHS"), tot("HiGHS run")
    print(f"    build: PuLP model + HiGHS copy  {backend[0] - run[0]:6.2f} s  "
          f"({backend[1] - run[1]:5.2f} CPU s)")
    print(f"    HiGHS run                       {run[0]:6.2f} s  ({run[1]:5.2f} CPU s)")
    line("placement", "placement", "target <= 60 s")

if __name__ == "__main__":
    main()
