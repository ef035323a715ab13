#!/usr/bin/env python3
"""Solver scale test: synthetic planning MILPs of growing size, timed per backend.

Target (issue 5): 20 GPU types x TP {1,2,4,8} x 3 roles x 64 classes in <= 10 s per solve
on 2 cores. Capacities and prices are random but shaped like real ones (bigger TP: more
capacity per replica, sub-linear; decode capacity falls with output length; some
candidates cannot serve some classes), seeded so every run times the same instances.
Under queueing sizing (--sizing queueing; issue 16) each capacity also gets a batch and a
service latency (a random share of the 1 s TTFT target) and the pools are sized by their
p90 capacity curves (incremental binaries), solved in stages (hetplan/milp/staged.py: one
part per vendor, bounds, fixing; --staged off: the full program in one solve); the time
includes computing those curves. The machine may be shared: wall_s is wall time, cpu_s
this process's CPU time (the solvers run single-threaded, so cpu_s is what an idle core
would take), load the 1-minute load average after the solve; gap is the proven relative
gap (0.00%: optimal; a stopped solve keeps its plan and says its gap).

    python scripts/bench_solve.py [--solvers highs,cbc,ortools] [--time-limit 60]
                                  [--sizing queueing|utilization] [--staged auto|on|off]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hetplan.candidates import Candidate, ClassCapacity  # noqa: E402
from hetplan.enums import DEFAULT_SIZING, Sizing  # noqa: E402
from hetplan.milp import Problem, solve_problem  # noqa: E402
from hetplan.perf import ReplicaShape  # noqa: E402
from hetplan.slo_capacity import Burstiness, SizingInputs  # noqa: E402
from hetplan.workload import single_class  # noqa: E402


TTFT_S = 1.0       # the instances' SLO for queueing sizing: p90 TTFT 1 s, bursty arrivals
SIZING = SizingInputs(TTFT_S, 0.9, Burstiness(prefill_ca2=2.0, decode_ca2=1.5))


def instance(n_gpus: int, n_classes: int, seed: int = 0,
             sizing: str = DEFAULT_SIZING) -> Problem:
    rng = np.random.default_rng(seed)
    lat_rng = np.random.default_rng(seed + 1)   # sizing figures: the capacities stay as before
    classes = []
    for w in range(n_classes):
        i, o = float(rng.lognormal(7, 1)), float(rng.lognormal(5, 1))
        classes.append(single_class(f"c{w}", float(rng.uniform(0.1, 2.0)), i, o, 1.5 * i,
                                    1.5 * o))
    cands, avail = [], {}
    for g in range(n_gpus):
        name = f"G{g:02d}"
        price = float(rng.uniform(0.5, 8.0))
        speed = price ** 0.8 * float(rng.uniform(0.6, 1.4))
        vendor = ("nvidia", "amd", "intel")[g % 3]
        avail[name] = int(rng.integers(16, 256))
        for tp in (1, 2, 4, 8):
            for role in ("prefill", "decode", "colocated"):
                per = {}
                for c in classes:
                    if rng.random() < 0.1:          # this shape cannot meet the SLO here
                        continue
                    base = speed * tp ** 0.85
                    cap = base * (2000 / c.mean_input_tokens if role == "prefill"
                                  else 300 / c.mean_output_tokens if role == "decode"
                                  else 150 / (c.mean_input_tokens / 20 + c.mean_output_tokens))
                    per[c.name] = ClassCapacity(
                        cap, ttft_ms=float(lat_rng.uniform(0.05, 0.5)) * TTFT_S * 1e3,
                        batch=int(lat_rng.integers(1, 9) if role == "prefill"
                                  else lat_rng.integers(8, 257)))
                cands.append(Candidate(ReplicaShape(name, tp), role, vendor, price * tp, per))
    return Problem(candidates=cands, classes=classes, utilization=0.8, availability=avail,
                   allow_cross_vendor=False,
                   sizing=SIZING if sizing == Sizing.QUEUEING else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solvers", default="highs,cbc,ortools")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--sizes", default="5x8,10x16,20x32,20x64")
    ap.add_argument("--sizing", default=DEFAULT_SIZING, choices=[str(s) for s in Sizing])
    ap.add_argument("--staged", default="auto", choices=["auto", "on", "off"])
    args = ap.parse_args()
    staged = {"auto": None, "on": True, "off": False}[args.staged]
    print(f"{'gpus':>4} {'classes':>7} {'cands':>5} {'vars':>6} {'cons':>5}  {'sizing':<11} "
          f"solver   {'wall_s':>7} {'cpu_s':>7} {'load':>5}  status    {'gap':>6}  "
          "cost_usd_per_hour")
    for size in args.sizes.split(","):
        g, w = (int(x) for x in size.split("x"))
        p = instance(g, w, sizing=args.sizing)
        for solver in args.solvers.split(","):
            t0, c0 = time.perf_counter(), time.process_time()
            out = solve_problem(p, solver, args.time_limit, staged=staged)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            lp = out.formulation.lp            # staged: of the stage that found the plan
            cost, gap = out.solution.objective, out.solution.gap
            print(f"{g:>4} {w:>7} {len(p.candidates):>5} {len(lp.vars):>6} "
                  f"{len(lp.constraints):>5}  {args.sizing:<11} {solver:<7} {dt:>7.2f} {cpu:>7.2f} "
                  f"{os.getloadavg()[0]:>5.1f}  {out.solution.status:<9} "
                  f"{'-' if gap is None else f'{gap:.2%}':>6}  "
                  f"{'-' if cost is None else f'{cost:.2f}'}", flush=True)


if __name__ == "__main__":
    main()
