"""Emit a capacity schedule (`hetplan schedule SCENARIO --out DIR --emit TARGET`): files
under DIR/emit/, as {relative path: text}.

- `baseline/`: the committed part as today's configs: the existing TARGET emitter on the
  baseline plan (each pool at the least replicas it runs on committed GPUs in every slot);
  `baseline-plan.json` beside it, to re-emit for another target with `hetplan emit`.
- `scaling/` (targets k8s and dynamo): the time-varying part. k8s: every pool the schedule
  runs, as the k8s target writes it but without `spec.replicas` (the autoscaler owns it:
  re-applying a fixed count would reset it), the router over all pools, `keda.yaml`
  (ScaledObjects with the replica schedule as cron triggers) and `hpa.yaml` (the
  alternative: HPAs bounded by the schedule). dynamo: `planner.yaml`, the Dynamo
  planner's bounds, where its one-pool-per-role model can hold the schedule.
  `fleet-plan.json`: every pool at its most replicas.
See hetplan.emit.scaling for the time zone, the windows and the stated assumptions.
"""

from __future__ import annotations

from hetplan.emit import EmitOptions, build_context, emit
from hetplan.emit.k8s import dump_yaml, pool_manifests, router_manifests
from hetplan.emit.scaling import (DEFAULT_TIMEZONE, WEEK_S, PoolSchedule, ReplicaSchedule,
                                  check_cron_horizon,
                                  check_pools, hpa, planner_bounds, scaled_object, windows)
from hetplan.emit.shell import one_line
from hetplan.plan import ClassRoute, Plan, Pool
from hetplan.planner import pool_name
from hetplan.schedule.slots import ROUTE_EPS_RPS

SCALING_TARGETS = ("k8s", "dynamo")


def replica_schedule(result) -> ReplicaSchedule:
    """Replicas per pool and slot over all tiers, from a ScheduleResult."""
    out = result.outcome
    warm = out.formulation.p.warmup_h
    T = result.profile.num_slots
    pools = []
    for c in result.candidates:
        tiers = {k: r for (key, k), r in out.replicas.items() if key == c.key}
        if not tiers:
            continue
        total = tuple(int(sum(r[t] for r in tiers.values())) for t in range(T))
        committed = tuple(int(x) for x in tiers.get("committed", [0] * T))
        pools.append(PoolSchedule(pool_name(c), total, committed, warm[c.key] * 3600.0))
    lengths = set(float(x) for x in result.profile.lengths_s)
    slot_s = lengths.pop() if len(lengths) == 1 else float(result.profile.slot_s)
    return ReplicaSchedule(slot_s, tuple(sorted(pools, key=lambda p: p.pool)))


def schedule_plan(result, counts: dict[str, int], note: str) -> Plan:
    """A plan of the schedule's pools at `counts` (pool name -> replicas; pools at 0 are
    left out), routed every class a pool serves in any slot (so its engine settings hold
    for all of them), at the most rate it gets in a slot."""
    out, f = result.outcome, result.outcome.formulation
    vals = out.solution.values
    classes = list(f.p.class_names)
    pools = []
    for i, c in enumerate(result.candidates):
        n = counts.get(pool_name(c), 0)
        if n < 1:
            continue
        flows = {w: max(vals[f.x[i, w, t]] for t in range(f.T))
                 for w in classes if (i, w, 0) in f.x}
        served = {w: r for w, r in flows.items() if r > ROUTE_EPS_RPS} or flows
        routes = [ClassRoute(workload_class=w, rate_rps=float(r),
                             predicted_ttft_ms=_num(c.per_class[w].ttft_ms),
                             predicted_tpot_ms=_num(c.per_class[w].tpot_ms),
                             batch=c.per_class[w].batch) for w, r in sorted(served.items())]
        util = sum(r / c.capacity(w) for w, r in served.items() if c.capacity(w) > 0) / n
        pools.append(Pool(name=pool_name(c), role=c.role, gpu=c.shape.gpu, vendor=c.vendor,
                          tp=c.shape.tp, pp=c.shape.pp, weight_dtype=c.shape.weight_dtype,
                          kv_dtype=c.shape.kv_dtype, ep=c.shape.ep, dp=c.shape.dp,
                          replicas=n, gpus=n * c.num_gpus,
                          cost_usd_per_hour=n * c.price_usd_per_hour, utilization=util,
                          routes=routes))
    base = result.static_peak
    return base.model_copy(update={"pools": pools, "placement": None, "simplification": None,
                                   "notes": [note]})


def _num(x):
    return None if x is None or x != x else float(x)


def baseline_counts(s: ReplicaSchedule) -> dict[str, int]:
    return {p.pool: min(p.committed) for p in s.pools if min(p.committed) > 0}


def peak_counts(s: ReplicaSchedule) -> dict[str, int]:
    return {p.pool: p.peak for p in s.pools}


def k8s_scaling_files(fleet: Plan, s: ReplicaSchedule, opts: EmitOptions, timezone: str
                      ) -> dict[str, str]:
    """The fleet's manifests without fixed replicas, KEDA ScaledObjects and HPAs."""
    check_pools(fleet, s)
    check_cron_horizon(s)
    ctx = build_context(fleet, opts)
    sched = {p.pool: p for p in s.pools}
    files, keda, hpas = {}, [], []
    for pool in fleet.pools:
        docs = pool_manifests(ctx, pool)
        workload = docs[0]
        del workload["spec"]["replicas"]
        keda.append(scaled_object(sched[pool.name], workload, s, timezone))
        hpas.append(hpa(sched[pool.name], workload))
        files[f"{workload['metadata']['name']}.yaml"] = dump_yaml(docs)
    files["router.yaml"] = dump_yaml(router_manifests(ctx))
    files["keda.yaml"] = dump_yaml(keda)
    files["hpa.yaml"] = dump_yaml(hpas)
    return files


def _table(s: ReplicaSchedule) -> list[str]:
    lines = ["| pool | least | most | windows above the least (slots: replicas) |",
             "|---|---|---|---|"]
    for p in s.pools:
        runs = ", ".join(f"{w.start}-{w.end - 1}: {w.replicas}" for w in windows(p)) or "none"
        lines.append(f"| {one_line(p.pool)} | {p.floor} | {p.peak} | {runs} |")
    return lines


def schedule_files(result, target: str, opts: EmitOptions = EmitOptions(),
                   timezone: str = DEFAULT_TIMEZONE) -> dict[str, str]:
    """Every file of `--emit TARGET` for a ScheduleResult (see the module docstring)."""
    s = replica_schedule(result)
    name = one_line(result.scenario)
    files: dict[str, str] = {}
    base_counts = baseline_counts(s)
    readme = [f"# Configs for the capacity schedule `{name}`", "",
              f"{s.num_slots} slots of {s.slot_s:g} s; slot 0 starts at 00:00 {timezone}"
              + (" on a Monday" if s.horizon_s == WEEK_S else "") + ".", ""]
    if base_counts:
        base = schedule_plan(result, base_counts, f"committed baseline of schedule {name}: "
                             "each pool at its least committed replicas over the horizon")
        files["baseline-plan.json"] = base.to_json()
        files |= {f"baseline/{k}": v for k, v in emit(base, target, opts).items()}
        readme.append(f"- `baseline/`: the committed part ({base.mix()}) as `--target "
                      f"{target}` configs; `baseline-plan.json` re-emits with `hetplan emit`.")
    else:
        readme.append("- No baseline: no pool keeps committed replicas in every slot.")
    fleet = schedule_plan(result, peak_counts(s), f"every pool of schedule {name} at its "
                          "most replicas (the autoscaler sets the count per slot)")
    files["fleet-plan.json"] = fleet.to_json()
    if target == "k8s":
        files |= {f"scaling/{k}": v
                  for k, v in k8s_scaling_files(fleet, s, opts, timezone).items()}
        readme += ["- `scaling/`: every pool's workload (no fixed replicas) and the router; "
                   "then `keda.yaml` (KEDA 2.x ScaledObjects, cron triggers: the replica "
                   "schedule) or `hpa.yaml` (HPAs on the waiting queue inside the "
                   "schedule's bounds, needs a custom-metrics adapter). Apply one of the "
                   "two, not both."]
    elif target == "dynamo":
        bounds = planner_bounds(fleet, s)
        if bounds is not None:
            files["scaling/planner.yaml"] = dump_yaml([bounds])
            readme.append("- `scaling/planner.yaml`: Dynamo planner bounds (PlannerConfig: "
                          "`python -m dynamo.planner --config planner.yaml`, or under "
                          "`spec.features.planner` of a DynamoGraphDeploymentRequest); "
                          "`hetplan emit fleet-plan.json --target dynamo` writes the graph "
                          "with every pool it scales.")
        else:
            readme.append("- No Dynamo planner bounds: its planner scales one prefill and "
                          "one decode component, and this schedule runs several pools in a "
                          "role; the table below gives each pool's bounds.")
    else:
        readme.append(f"- No scaling objects for `--target {target}` (they exist for "
                      f"{' and '.join(SCALING_TARGETS)}); run the counts below per slot.")
    readme += ["", "## Replicas per pool", "", *_table(s)]
    files["README.md"] = "\n".join(readme) + "\n"
    return files
