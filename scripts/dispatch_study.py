"""Measure the gap between the prefill sizing's promise and the simulator's dispatch (issue 17).

    python -m scripts.dispatch_study [--requests 40000] [--seeds 0-2] [--json]

One prefill pool of n = 2..8 replicas, prefill-only requests, one prompt per step (k = 1:
the regime where the sizing's work-drain view is exact), lognormal prompt lengths with
prefill time linear plus causal attention in the length. The pool is offered the rate
U(n) x mu that `hetplan.slo_capacity.prefill_curve` promises meets the TTFT percentile q
(with the shape measured from the requests, as the planner does), under Poisson arrivals
and bursty ones (gamma inter-arrivals, SCV 4; the sizing is given the SCV measured the
planner's way). Prints, per dispatch rule of `hetplan.simulate.router.DISPATCH_RULES`, the
share of requests whose TTFT met the target (first 10% dropped as warm-up), mean over seeds.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from hetplan.class_shape import measured_shape
from hetplan.queueing import arrival_scv
from hetplan.simulate.engine import PoolSpec, run
from hetplan.simulate.router import DISPATCH_RULES
from hetplan.simulate.steps import ConstantSteps
from hetplan.slo_capacity import PREFILL_WINDOW_TTFTS, prefill_curve

A_S_PER_TOKEN = 5e-5       # prefill seconds per prompt token (linear part)
X0_TOKENS = 30000.0        # attention doubles the per-token cost at this length
MEDIAN_TOKENS, SIGMA = 2000.0, 0.8
SLACK_S = 1.0              # TTFT target = prefill of the p90 prompt + this
SIZES = (2, 3, 4, 6, 8)


class AttentionPrefill(ConstantSteps):
    """Prefill time a x n (1 + n / x0) per prompt of n tokens, summed over the batch."""

    def __init__(self, a: float = A_S_PER_TOKEN, x0: float = X0_TOKENS):
        super().__init__(0.0)
        self.a, self.x0 = a, x0

    def prefill_s(self, lengths, cached=None) -> float:
        return sum(self.a * n * (1 + n / self.x0) for n in lengths)


def work(x) -> np.ndarray:
    x = np.asarray(x, float)
    return A_S_PER_TOKEN * x * (1 + x / X0_TOKENS)


def case(n: int, q: float, ca2_target: float, requests: int, seed: int) -> dict:
    """Attainment per dispatch rule at the rate U(n) promises."""
    rng = np.random.default_rng(seed)
    x = np.maximum(np.round(rng.lognormal(np.log(MEDIAN_TOKENS), SIGMA, requests)), 1)
    x = x.astype(int)
    ones = np.ones(requests, int)
    sh = measured_shape(x, ones, work)
    mu = 1.0 / float(work([x.mean()])[0])
    lat = float(work([np.percentile(x, 90)])[0])
    ttft = lat + SLACK_S
    gaps = (rng.exponential(1.0, requests) if ca2_target == 1.0 else
            rng.gamma(1.0 / ca2_target, ca2_target, requests))
    unit = np.cumsum(gaps)                      # mean gap 1: scaled to the rate below
    ca2 = arrival_scv(unit / unit[-1] * requests / (mu * n), PREFILL_WINDOW_TTFTS * ttft)
    u = prefill_curve(n, mu, lat, ttft, sh.prefill_scv, ca2, q, sh.prefill_inflation)[n]
    arr = unit / (u * mu)
    out = {"n": n, "q": q, "ca2": round(ca2, 2), "U": round(float(u), 3),
           "busy": round(float(u * mu * work(x).mean() / n), 3)}
    for rule in DISPATCH_RULES:
        res = run(arr, x, ones, np.zeros(requests, int), np.full(requests, -1),
                  [PoolSpec("p", "prefill", n, AttentionPrefill(), max_seqs=1,
                            dispatch=rule)], seed=seed)
        ok = (res.first_token_s - arr)[requests // 10:] <= ttft
        out[rule] = float(ok.mean())
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=40_000)
    ap.add_argument("--seeds", default="0-2", help="a-b")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    lo, _, hi = a.seeds.partition("-")
    seeds = range(int(lo), int(hi or lo) + 1)
    rows = []
    for q in (0.9, 0.99):
        for ca2 in (1.0, 4.0):
            for n in SIZES:
                runs = [case(n, q, ca2, a.requests, s) for s in seeds]
                row = {k: runs[0][k] for k in ("n", "q", "U")}
                row["ca2"] = round(float(np.mean([r["ca2"] for r in runs])), 2)
                row["busy"] = round(float(np.mean([r["busy"] for r in runs])), 3)
                for rule in DISPATCH_RULES:
                    row[rule] = round(100 * float(np.mean([r[rule] for r in runs])), 2)
                rows.append(row)
                if not a.json:
                    print(f"q={q:.2f} ca2={row['ca2']:4.2f} n={n} U={row['U']:.2f} "
                          f"busy={row['busy']:.2f} " + " ".join(
                              f"{r}={row[r]:.2f}" for r in DISPATCH_RULES), flush=True)
    if a.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
