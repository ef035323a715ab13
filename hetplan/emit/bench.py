"""`vllm bench serve` runs that replay the plan's classes against the router: one run per
class, all started together so the mix arrives at the planned rates, each with random
prompts whose lengths stay inside the class's token bins. The result JSON carries
`hetplan_*` metadata that `hetplan calibrate import-bench` reads: every decode (or
colocated) pool serving the class with its GPU, TP and share of the class's rate
(`hetplan_pools`), and `hetplan_gpu`/`hetplan_tp` only when those pools share one GPU and
TP: the router spreads a class over its pools, so the measured TPOT is theirs together and
a mix of shapes has no single label (import-bench then asks for --gpu and --tp)."""

from __future__ import annotations

import json
import math
import shlex

from hetplan.emit.router import router_url
from hetplan.emit.shell import comment, command_lines, file_part, script

BENCH = ["vllm", "bench", "serve"]
DURATION_S = 120            # each class's run lasts about this long at its planned rate


def _range_ratio(mean: float, lo: int | None, hi: int | None) -> float:
    """vLLM draws lengths uniformly in mean x [1 - r, 1 + r] (r < 1): the widest r that
    stays inside the bin."""
    if lo is None or hi is None or mean <= 0:
        return 0.0
    return max(0.0, min(0.95, (hi - mean) / mean, (mean - lo) / mean))


def serving_pools(plan, class_name: str) -> list[tuple[float, object]]:
    """(share of the class's routed rate, pool) of each decode or colocated pool serving
    the class, largest share first."""
    serving = [(r.rate_rps, p) for p in plan.pools if p.role in ("decode", "colocated")
               for r in p.routes if r.workload_class == class_name and r.rate_rps > 0]
    total = sum(rate for rate, _ in serving)
    return sorted(((rate / total, p) for rate, p in serving),
                  key=lambda t: (-t[0], t[1].name)) if total > 0 else []


def pool_labels(plan, class_name: str) -> list[str]:
    """The `--metadata` labels naming the pools a class's run measures."""
    serving = serving_pools(plan, class_name)
    labels = ["hetplan_pools=" + ",".join(f"{p.name}:{p.gpu}:tp{p.tp}:{share:.3g}"
                                          for share, p in serving)]
    shapes = {(p.gpu, p.tp) for _, p in serving}
    if len(shapes) == 1:
        gpu, tp = shapes.pop()
        labels = [f"hetplan_gpu={gpu}", f"hetplan_tp={tp}"] + labels
    return labels


def bench_argvs(ctx) -> list[tuple[str, list[str]]]:
    plan = ctx.plan
    out = []
    for c in plan.classes:
        serving = serving_pools(plan, c.name)
        if not serving or c.rate_rps <= 0:
            continue
        role = serving[0][1].role
        ratio = json.dumps({"input": round(_range_ratio(c.mean_input_tokens, c.input_lo,
                                                        c.input_hi), 3),
                            "output": round(_range_ratio(c.mean_output_tokens, c.output_lo,
                                                         c.output_hi), 3)},
                           sort_keys=True, separators=(",", ":"))
        argv = ["--backend", "openai", "--base-url", router_url(ctx, role),
                "--endpoint", "/v1/completions",
                "--model", ctx.served_name, "--tokenizer", ctx.model_arg,
                "--dataset-name", "random",
                "--random-input-len", str(max(1, round(c.mean_input_tokens))),
                "--random-output-len", str(max(1, round(c.mean_output_tokens))),
                "--random-range-ratio", ratio, "--ignore-eos",
                "--num-prompts", str(max(1, math.ceil(c.rate_rps * DURATION_S))),
                "--request-rate", f"{c.rate_rps:.6g}", "--seed", "0",
                "--save-result", "--result-dir", "results",
                "--result-filename", f"bench-{file_part(c.name)}.json",
                "--metadata", f"hetplan_model={plan.model}", f"hetplan_class={c.name}",
                *pool_labels(plan, c.name)]
        out.append((c.name, argv))
    return out


def bench_script(ctx) -> str:
    body = ["mkdir -p results", ""]
    for name, argv in bench_argvs(ctx):
        pools = serving_pools(ctx.plan, name)
        body.append(comment(f"class {name}: served by " + ", ".join(
            f"{p.name} ({p.gpu} tp={p.tp}, {share:.0%})" for share, p in pools)))
        if len({(p.gpu, p.tp) for _, p in pools}) > 1:
            body.append(comment("pools of different GPUs or TP serve it: the run measures "
                                "them together; import-bench needs --gpu and --tp for it"))
        log = shlex.quote(f"results/bench-{file_part(name)}.log")
        body += command_lines(BENCH, argv, suffix=f"> {log} 2>&1 &")
        body.append("")
    return script(["hetplan: replay the plan's classes against the router with vLLM's "
                   "benchmark (vllm bench serve).",
                   "Each class runs at its planned rate, all classes at once; then read "
                   "the results back:",
                   "  hetplan calibrate import-bench results/*.json"],
                  body + ["wait"])
