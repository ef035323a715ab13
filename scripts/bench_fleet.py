#!/usr/bin/env python3
"""Fleet scale test (issue 18): five models planned as one fleet on the 1000-node bench
inventory of `bench_place.py` (8 GPU types, N+1 and spot headroom), timed per stage.

Targets: the single-model ones (issue 5: a solve <= 10 s on 2 cores; issue 6: placement
<= 60 s). The fleet (a 70B chat model, an 8B router, a 32B coder, a 30B-A3B MoE and a
20B MoE, two classes each) and its inventory are written to a temporary directory, not
kept. The machine may be shared: times are wall times, and the fleet MILP's CPU time (the
solver runs single-threaded in this process) is what an idle core would take.

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


def _timed(calls: dict[str, list[float]]) -> None:
    """Record the wall time of the fleet MILP solves and of the placement calls."""
    import hetplan.fleet.place as fplace
    import hetplan.fleet.solve as fsolve

    def wrap(mod, name, key):
        inner = getattr(mod, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                calls.setdefault(key, []).append(time.perf_counter() - t)
        setattr(mod, name, wrapper)
    wrap(fsolve, "plan_alone_in_turn", "alone in turn")
    wrap(fsolve, "alone_on_whole", "alone on the whole inventory")
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
    alone = sum(calls.get("alone in turn", []))
    place = sum(calls.get("placement", []))
    print(f"load fleet + inventory          {t1 - t0:6.2f} s")
    print(f"candidates + MILPs + placement  {t2 - t1:6.2f} s")
    print(f"  fleet MILP (last round)       {r.solve_s:6.2f} s  ({r.solve_cpu_s:.2f} CPU s) "
          "target <= 10 s")
    whole = sum(calls.get("alone on the whole inventory", []))
    print(f"  members alone in turn         {alone:6.2f} s  (the comparison and the start)")
    print(f"  members alone on everything   {whole:6.2f} s  (the fleet MILP's member floors)")
    print(f"  placement                     {place:6.2f} s in {len(calls.get('placement', []))} "
          "round(s)  target <= 60 s")


if __name__ == "__main__":
    main()
