"""Simulate a Plan on a trace: build the pools from the plan and the perf model, route,
run, summarise.

Serving settings the simulator assumes (what the emitted configs should set):
- the engine limits are the plan's (`plan.engine`, what it was sized with): the perf model
  is switched to them when it was built with others;
- prefill replicas batch up to `max_num_batched_tokens` prompt tokens and at most the
  plan's prefill batch of prompts per step;
- decode and colocated replicas run at most the plan's batch of sequences (vLLM's
  `--max-num-seqs`), in a KV cache of `PerfModel.memory(shape).kv_capacity_tokens` tokens;
- colocated replicas spend batch + chunk tokens per step, chunk by the planner's rule
  (`EngineLimits.colocated_chunk_tokens`), at least one chunk of prompt tokens per step;
- KV hand-offs use the plan's `kv_link` (the scenario's fabric) until placement records
  per-pool links; a transfer starts with its prefill (layer-pipelined) and shares the
  sending replica's NICs (one per GPU) with the other transfers in order;
- prefix caching: where the plan counts on it (`plan.prefix_cache`) and the trace has prompt
  blocks, prefill replicas keep an LRU block cache and prefill misses only, routed
  cache-aware when the plan assumed it (`hetplan.simulate.prefix`); otherwise every prompt
  is prefilled in full (vLLM run with --no-enable-prefix-caching);
- inside a pool, a request goes to the replica the emitted router picks at arrival:
  `router.DISPATCH` (vllm-router's `power_of_two`; `SimOptions.dispatch` replays another
  rule of `router.DISPATCH_RULES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hetplan.errors import InputError
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.plan import Plan
from hetplan.scenario import Constraints
from hetplan.simulate.engine import LinkModel, PoolSpec, RunResult, run
from hetplan.prefix_cache import cache_capacity_blocks
from hetplan.simulate.metrics import SimReport, summarize
from hetplan.simulate.prefix import prefix_result
from hetplan.simulate.router import DISPATCH, assign_classes, class_routes, draw_pools
from hetplan.simulate.steps import step_model
from hetplan.workload import Trace
from hetplan.workload.prefix import block_chains


@dataclass(frozen=True)
class SimOptions:
    seed: int = 0                          # routing draws
    kv_link: str | None = None             # None: the plan's, else the scenario default
    max_num_seqs: int | None = None        # decode/colocated; None: the plan's batch
    prefill_max_seqs: int | None = None    # None: the plan's prefill batch
    prefill_max_tokens: int | None = None  # None: the plan's max_num_batched_tokens
    dispatch: str = DISPATCH               # the router's rule inside a pool


def pool_specs(plan: Plan, pm: PerfModel, opts: SimOptions,
               block_tokens: int = 0) -> list[PoolSpec]:
    """The engine's view of the plan's pools, under the plan's engine limits."""
    lim = plan.engine
    pm = pm.with_limits(lim)
    link_name = opts.kv_link or plan.kv_link or Constraints().kv_link
    link = pm.links.link(link_name)
    kv = pm.links.kv
    classes = {c.name: c for c in plan.classes}
    specs = []
    for p in plan.pools:
        shape = ReplicaShape(p.gpu, p.tp, p.pp, p.weight_dtype, p.kv_dtype, p.ep, p.dp)
        why = pm.check(shape)
        if why:
            raise InputError(f"pool {p.name}: {why}", field="pools")
        steps = step_model(pm, shape)
        batch = max((r.batch for r in p.routes), default=0) or lim.max_num_seqs
        spec = PoolSpec(name=p.name, role=p.role, replicas=p.replicas, steps=steps,
                        max_seqs=batch, kv_tokens=pm.memory(shape).kv_capacity_tokens,
                        prefill_max_tokens=opts.prefill_max_tokens or lim.max_num_batched_tokens,
                        dispatch=opts.dispatch)
        if p.role == "prefill":
            spec.max_seqs = opts.prefill_max_seqs or batch
            if plan.prefix_cache is not None and block_tokens > 0:
                spec.prefix_blocks = cache_capacity_blocks(spec.kv_tokens,
                                                           spec.prefill_max_tokens, shape.dp,
                                                           block_tokens)
                spec.prefix_block_tokens = block_tokens
                spec.cache_aware = plan.prefix_cache.routing == "cache_aware"
            spec.nic_bytes_per_s = link.achieved_bytes_per_s * shape.num_gpus
            for d, q in enumerate(plan.pools):
                if q.role == "decode":
                    xv = kv.cross_vendor_translation_us if q.vendor != p.vendor else 0.0
                    spec.links[d] = LinkModel(link.achieved_bytes_per_s,
                                              (link.latency_us + xv) * 1e-6,
                                              kv.exposed_layers, pm.model.num_layers)
        else:
            spec.max_seqs = opts.max_num_seqs or batch
        if p.role == "colocated":
            chunk = max((lim.colocated_chunk_tokens(r.batch, c.mean_input_tokens,
                                                    c.mean_output_tokens)
                         for r in p.routes if (c := classes.get(r.workload_class))),
                        default=lim.colocated_chunk_tokens(0, 1.0, 1.0))
            spec.token_budget, spec.min_chunk = spec.max_seqs + chunk, chunk
        if not spec.kv_tokens and p.role != "prefill":
            raise InputError(f"pool {p.name}: the model does not fit in VRAM", field="pools")
        specs.append(spec)
    return specs


def simulate_plan(plan: Plan, trace: Trace, pm: PerfModel, opts: SimOptions = SimOptions(),
                  progress: Callable[[float], None] | None = None) -> tuple[SimReport, RunResult]:
    """Replay `trace` on `plan`; the report and the raw per-request times."""
    if trace.num_requests == 0:
        raise InputError("the trace has no requests", field="--trace")
    routes = class_routes(plan)
    classes = [c for c in plan.classes if c.name in routes]
    if not classes:
        raise InputError("the plan routes no workload class", field="pools")
    cls = assign_classes(trace.input_tokens, trace.output_tokens, classes)
    rng = np.random.Generator(np.random.PCG64(opts.seed))
    first, dec = draw_pools(cls, [routes[c.name] for c in classes], rng)
    is_prefill = np.array([p.role == "prefill" for p in plan.pools])
    dec = np.where(is_prefill[first], dec, -1)
    chains = block_chains(trace) if plan.prefix_cache is not None else None
    specs = pool_specs(plan, pm, opts, chains.block_tokens if chains else 0)
    res = run(trace.arrival_s, trace.input_tokens, trace.output_tokens, first, dec, specs,
              progress, chains=chains.chains if chains else None, seed=opts.seed)
    res.workload_class = cls
    names = [c.name for c in classes]
    report = summarize(plan, trace, res, cls, names, opts.seed,
                       opts.kv_link or plan.kv_link or Constraints().kv_link)
    if plan.prefix_cache is not None:
        caching = [i for i, s in enumerate(specs) if s.prefix_blocks > 0]
        pr = prefix_result(plan, trace.input_tokens, res.cached_tokens, first, cls, names,
                           caching)
        note = ("the plan counts on prefix caching but the trace has no prompt blocks: "
                "prompts were prefilled in full") if pr is None else (
            f"prefix cache: {pr.hit_rate:.1%} of prefill-pool prompt tokens hit "
            f"(planned {pr.planned_hit_rate:.1%})")
        report = report.model_copy(update={"prefix_cache": pr, "notes": report.notes + [note]})
    return report, res
