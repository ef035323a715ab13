#!/usr/bin/env python3
"""Solver scale test: synthetic planning MILPs of growing size, timed per backend.

Target (issue 5): 20 GPU types x TP {1,2,4,8} x 3 roles x 64 classes in <= 10 s per solve
on 2 cores. Capacities and prices are random but shaped like real ones (bigger TP: more
capacity per replica, sub-linear; decode capacity falls with output length; some
candidates cannot serve some classes), seeded so every run times the same instances.

    python scripts/bench_solve.py [--solvers highs,cbc,ortools] [--time-limit 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hetplan.candidates import Candidate, ClassCapacity  # noqa: E402
from hetplan.milp import Problem, solve_problem  # noqa: E402
from hetplan.perf import ReplicaShape  # noqa: E402
from hetplan.workload import single_class  # noqa: E402


def instance(n_gpus: int, n_classes: int, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
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
                    per[c.name] = ClassCapacity(cap)
                cands.append(Candidate(ReplicaShape(name, tp), role, vendor, price * tp, per))
    return Problem(candidates=cands, classes=classes, utilization=0.8, availability=avail,
                   allow_cross_vendor=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solvers", default="highs,cbc,ortools")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--sizes", default="5x8,10x16,20x32,20x64")
    args = ap.parse_args()
    print(f"{'gpus':>4} {'classes':>7} {'cands':>5} {'vars':>6} {'cons':>5}  solver   "
          f"{'time_s':>7}  status    cost_usd_per_hour")
    for size in args.sizes.split(","):
        g, w = (int(x) for x in size.split("x"))
        p = instance(g, w)
        for solver in args.solvers.split(","):
            t0 = time.perf_counter()
            out = solve_problem(p, solver, args.time_limit)
            dt = time.perf_counter() - t0
            lp = out.formulation.lp
            cost = out.solution.objective
            print(f"{g:>4} {w:>7} {len(p.candidates):>5} {len(lp.vars):>6} "
                  f"{len(lp.constraints):>5}  {solver:<7} {dt:>7.2f}  {out.solution.status:<9} "
                  f"{'-' if cost is None else f'{cost:.2f}'}", flush=True)


if __name__ == "__main__":
    main()
