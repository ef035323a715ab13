"""`vllm bench serve` runs that replay the plan's classes against the router: one run per
class, all started together so the mix arrives at the planned rates, each with random
prompts whose lengths stay inside the class's token bins. The result JSON carries
`hetplan_*` metadata that `hetplan calibrate import-bench` reads (GPU and TP of the decode
(or colocated) pool serving most of the class: its TPOT is what the run measures)."""

from __future__ import annotations

import json
import math
import shlex

from hetplan.emit.router import router_url
from hetplan.emit.shell import command_lines, script

BENCH = ["vllm", "bench", "serve"]
DURATION_S = 120            # each class's run lasts about this long at its planned rate


def _range_ratio(mean: float, lo: int | None, hi: int | None) -> float:
    """vLLM draws lengths uniformly in mean x [1 - r, 1 + r] (r < 1): the widest r that
    stays inside the bin."""
    if lo is None or hi is None or mean <= 0:
        return 0.0
    return max(0.0, min(0.95, (hi - mean) / mean, (mean - lo) / mean))


def bench_argvs(ctx) -> list[tuple[str, list[str]]]:
    plan = ctx.plan
    out = []
    for c in plan.classes:
        serving = [(r.rate_rps, p) for p in plan.pools if p.role in ("decode", "colocated")
                   for r in p.routes if r.workload_class == c.name]
        if not serving or c.rate_rps <= 0:
            continue
        pool = max(serving, key=lambda t: (t[0], t[1].name))[1]
        ratio = json.dumps({"input": round(_range_ratio(c.mean_input_tokens, c.input_lo,
                                                        c.input_hi), 3),
                            "output": round(_range_ratio(c.mean_output_tokens, c.output_lo,
                                                         c.output_hi), 3)},
                           sort_keys=True, separators=(",", ":"))
        argv = ["--backend", "openai", "--base-url", router_url(ctx, pool.role),
                "--endpoint", "/v1/completions",
                "--model", ctx.served_name, "--tokenizer", ctx.model_arg,
                "--dataset-name", "random",
                "--random-input-len", str(max(1, round(c.mean_input_tokens))),
                "--random-output-len", str(max(1, round(c.mean_output_tokens))),
                "--random-range-ratio", ratio, "--ignore-eos",
                "--num-prompts", str(max(1, math.ceil(c.rate_rps * DURATION_S))),
                "--request-rate", f"{c.rate_rps:.6g}", "--seed", "0",
                "--save-result", "--result-dir", "results",
                "--result-filename", f"bench-{c.name}.json",
                "--metadata", f"hetplan_gpu={pool.gpu}", f"hetplan_tp={pool.tp}",
                f"hetplan_model={plan.model}", f"hetplan_class={c.name}",
                f"hetplan_pool={pool.name}"]
        out.append((c.name, argv))
    return out


def bench_script(ctx) -> str:
    body = ["mkdir -p results", ""]
    for name, argv in bench_argvs(ctx):
        body.append(f"# class {name}")
        log = shlex.quote(f"results/bench-{name}.log")
        body += command_lines(BENCH, argv, suffix=f"> {log} 2>&1 &")
        body.append("")
    return script(["hetplan: replay the plan's classes against the router with vLLM's "
                   "benchmark (vllm bench serve).",
                   "Each class runs at its planned rate, all classes at once; then read "
                   "the results back:",
                   "  hetplan calibrate import-bench results/*.json"],
                  body + ["wait"])
