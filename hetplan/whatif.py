"""What-if studies on top of the planner: price shocks, synthetic workload grids (the P:D
golden ratio as prompt and output lengths change), SLO grids with their Pareto set, and
plans restricted to given prefill / decode GPUs (cross-vendor pairings).

Everything here builds variants in memory: a price override returns a modified copy of the
catalog (nothing is written to `catalogs/`), a workload override passes explicit classes to
the planner (one class per synthetic workload, mean = p90 lengths, no trace is sampled).
Each function returns plain rows (dicts) or arrays that `hetplan.plots` draws and the
notebooks under `notebooks/` tabulate. The grids solve their cells on `parallel` (a
`hetplan.parallel.Parallel`; default: one after another in this process); the rows are
the same, in the same order, whatever the worker count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hetplan.catalog import Catalog
from hetplan.enums import ROLES, Role
from hetplan.errors import InputError
from hetplan.parallel import INLINE, Parallel
from hetplan.plan import Plan
from hetplan.planner import Context, prepare
from hetplan.scenario import SLO, ResolvedScenario
from hetplan.variants import PlanRow, plan_variant
from hetplan.workload import WorkloadClass, single_class

WHY_CHARS = 160           # why a variant has no plan, cut to this length in table rows
SOLVER = "highs"          # the what-if solves' defaults
TIME_LIMIT_S = 30.0


def scale_price(catalog: Catalog, sheet: str, gpu: str, factor: float) -> Catalog:
    """A copy of `catalog` whose sheet has every offer of `gpu` (on-demand and spot)
    multiplied by `factor`. The catalog on disk is untouched."""
    if factor <= 0:
        raise InputError("must be > 0", field="factor")
    ps = catalog.price_sheet(sheet)
    catalog.gpu(gpu)
    if not catalog.offers(sheet, [gpu]):
        raise InputError(f"price sheet {sheet!r} has no offer for {gpu}", field="gpu")
    offers = [o.model_copy(update={
        "price_usd_per_hour": o.price_usd_per_hour * factor,
        "spot_price_usd_per_hour": (o.spot_price_usd_per_hour * factor
                                    if o.spot_price_usd_per_hour else None)})
        if o.gpu == gpu else o for o in ps.offers]
    sheets = dict(catalog.price_sheets)
    sheets[sheet] = ps.model_copy(update={"offers": offers})
    return catalog.model_copy(update={"price_sheets": sheets})


def fixed_classes(input_tokens: int, output_tokens: int, *, rate_rps: float | None = None,
                  tokens_per_second: float | None = None) -> list[WorkloadClass]:
    """One class of fixed-length requests. Give the request rate, or a token throughput
    (input + output tokens/s) from which the rate follows, so that workloads of different
    lengths carry the same token load."""
    if (rate_rps is None) == (tokens_per_second is None):
        raise InputError("give exactly one of rate_rps and tokens_per_second", field="rate")
    if input_tokens < 1 or output_tokens < 1:
        raise InputError("token lengths must be >= 1", field="tokens")
    rate = rate_rps if rate_rps is not None else tokens_per_second / (input_tokens + output_tokens)
    if rate <= 0:
        raise InputError("must be > 0", field="rate")
    return [single_class(f"in{input_tokens}_out{output_tokens}", rate, input_tokens,
                         output_tokens)]


def try_plan(rs: ResolvedScenario, catalog: Catalog, classes: Sequence | None = None,
             slo: SLO | None = None, *, prefill_gpus: Sequence[str] | None = None,
             decode_gpus: Sequence[str] | None = None, solver: str = SOLVER,
             time_limit_s: float = TIME_LIMIT_S, calibrations: dict | None = None
             ) -> tuple[Plan | None, str]:
    """Solve `rs`, or the variant of it with explicit classes and / or another SLO, and
    prefill / decode candidates limited to the given GPUs (giving either excludes colocated
    replicas, so the plan is disaggregated; `calibrations` replaces the bundled
    efficiencies). Returns (plan, "") or (None, why infeasible)."""
    r = plan_row_of(rs, catalog, classes, slo, prefill_gpus=prefill_gpus,
                    decode_gpus=decode_gpus, solver=solver, time_limit_s=time_limit_s,
                    calibrations=calibrations)
    return r.plan, r.why


def plan_row_of(rs: ResolvedScenario, catalog: Catalog, classes: Sequence | None = None,
                slo: SLO | None = None, *, prefill_gpus: Sequence[str] | None = None,
                decode_gpus: Sequence[str] | None = None, solver: str = SOLVER,
                time_limit_s: float = TIME_LIMIT_S, calibrations: dict | None = None) -> PlanRow:
    """`try_plan` as a typed row (see `variants.PlanRow`)."""
    var = rs if classes is None else rs.with_classes(classes)
    var = var if slo is None else var.derive(slo=slo)
    return _restricted_row(prepare(var, catalog, calibrations=calibrations), prefill_gpus,
                           decode_gpus, solver, time_limit_s)


def _restricted_row(ctx: Context, prefill_gpus: Sequence[str] | None,
                    decode_gpus: Sequence[str] | None, solver: str,
                    time_limit_s: float) -> PlanRow:
    """Solve a prepared context over the candidates on the given prefill / decode GPUs
    (`try_plan`)."""
    cands = None
    if prefill_gpus is not None or decode_gpus is not None:
        allowed = {Role.PREFILL: set(prefill_gpus or ctx.prices),
                   Role.DECODE: set(decode_gpus or ctx.prices)}
        cands = [c for c in ctx.candidates if c.shape.gpu in allowed.get(c.role, ())]
        if not any(c.role == Role.PREFILL for c in cands) or \
                not any(c.role == Role.DECODE for c in cands):
            return PlanRow(None, ("no prefill or no decode candidate on the requested GPUs",))
    return plan_variant(ctx, cands, solver=solver, time_limit_s=time_limit_s)


def plan_row(plan: Plan | PlanRow | None, why: str = "", **keys) -> dict:
    """A flat summary of a plan (or of its absence) for tables: cost, $/M tokens, GPUs per
    role and per type, P:D, and the plan's mix string (`Plan.mix`)."""
    r = plan if isinstance(plan, PlanRow) else PlanRow(plan, (why,) if why else ())
    gpus, cost = r.by_type()
    return dict(keys) | {
        "feasible": r.feasible, "cost_usd_per_hour": r.cost_usd_per_hour,
        "usd_per_million_tokens": r.usd_per_million_tokens,
        "prefill_gpus": r.gpus(Role.PREFILL), "decode_gpus": r.gpus(Role.DECODE),
        "colocated_gpus": r.gpus(Role.COLOCATED), "golden_ratio": r.golden_ratio,
        "gpus_by_type": gpus, "cost_by_type": cost, "mix": r.mix, "why": r.why[:WHY_CHARS]}


def mix_text(plan: Plan) -> str:
    """The plan's pools in one line (`Plan.mix`)."""
    return plan.mix()


def price_shock(rs: ResolvedScenario, catalog: Catalog, gpus: Sequence[str],
                factors: Sequence[float], classes: Sequence | None = None,
                parallel: Parallel = INLINE) -> list[dict]:
    """Re-plan with each GPU's price scaled by each factor (one GPU at a time; factor 1 is
    the baseline). Rows carry gpu, factor, the shocked price, `plan_row` fields and
    `cost_if_mix_kept_usd_per_hour`: the baseline plan's cost at the shocked price (what
    not re-planning would cost; the re-planned cost is never higher)."""
    sheet = rs.scenario.catalog.prices
    cells = [(g, f) for g in gpus for f in sorted(factors)]
    base_row, *solved = parallel.calls(
        [(plan_row_of, (rs, catalog, classes), {})]
        + [(plan_row_of, (rs, scale_price(catalog, sheet, g, f), classes), {}) for g, f in cells])
    base_plan, base_by_type = base_row.plan, base_row.by_type()[1]
    rows = []
    for (g, f), r in zip(cells, solved):
        base = catalog.cheapest_price_usd_per_hour(sheet, g)
        kept = (None if base_plan is None else
                base_plan.cost_usd_per_hour + base_by_type.get(g, 0.0) * (f - 1.0))
        rows.append(plan_row(r, gpu=g, factor=f,
                             price_usd_per_hour=None if base is None else base * f,
                             cost_if_mix_kept_usd_per_hour=kept))
    return rows


def length_plan(rs: ResolvedScenario, catalog: Catalog, input_tokens: int, output_tokens: int,
                tokens_per_second: float, ttft_ms_per_1k_input: float = 0.0,
                disaggregated: bool = True) -> tuple[Plan | None, str]:
    """Plan one fixed-length class at a token throughput (see `fixed_classes`), with TTFT
    target max(scenario TTFT, ttft_ms_per_1k_input x input / 1000); prefill and decode
    roles only unless `disaggregated` is False."""
    if disaggregated:
        rs = rs.with_constraints(roles=[Role.PREFILL, Role.DECODE])
    slo = rs.slo.model_copy(update={"ttft_ms": max(rs.slo.ttft_ms,
                                                   ttft_ms_per_1k_input * input_tokens / 1000)})
    return try_plan(rs, catalog, fixed_classes(input_tokens, output_tokens,
                                              tokens_per_second=tokens_per_second), slo)


def pairings(rs: ResolvedScenario, catalog: Catalog, classes: Sequence,
             variants: dict[str, tuple[Sequence[str] | None, Sequence[str] | None]],
             baseline: str, calibrations: dict | None = None,
             parallel: Parallel = INLINE) -> list[dict]:
    """Solve each variant label -> (prefill GPUs, decode GPUs) (None, None = unrestricted:
    any roles and GPUs of the scenario) and add `cost_ratio_vs_baseline` = baseline $/h /
    variant $/h (>1: the variant is that many times cheaper for the same load)."""
    if parallel.backend == "local" and parallel.workers == 1:
        # in this process: prepare the scenario (perf model, candidates) once for every variant
        var = rs if classes is None else rs.with_classes(classes)
        ctx = prepare(var, catalog, calibrations=calibrations)
        solved = [_restricted_row(ctx, pg, dg, SOLVER, TIME_LIMIT_S)
                  for pg, dg in variants.values()]
    else:
        solved = parallel.calls(
            [(plan_row_of, (rs, catalog, classes), {"prefill_gpus": pg, "decode_gpus": dg,
                                                    "calibrations": calibrations})
             for pg, dg in variants.values()])
    rows = [plan_row(r, variant=label) for label, r in zip(variants, solved)]
    ref = next((r["cost_usd_per_hour"] for r in rows if r["variant"] == baseline), None)
    for r in rows:
        r["cost_ratio_vs_baseline"] = (ref / r["cost_usd_per_hour"]
                                       if ref and r["cost_usd_per_hour"] else None)
    return rows


@dataclass(frozen=True)
class RatioGrid:
    """Disaggregated plans over prompt x output lengths. Arrays are [input, output];
    NaN where no plan exists."""

    input_tokens: list[int]
    output_tokens: list[int]
    tokens_per_second: float
    ttft_ms_per_1k_input: float
    prefill_gpu_share: np.ndarray      # prefill GPUs / (prefill + decode GPUs)
    prefill_cost_share: np.ndarray     # prefill pools' $/h / plan $/h
    usd_per_million_tokens: np.ndarray
    golden_ratio: list[list[str]]      # "P:D" GPU counts, "" if infeasible
    mix: list[list[str]]


def golden_ratio_grid(rs: ResolvedScenario, catalog: Catalog, input_tokens: Sequence[int],
                      output_tokens: Sequence[int], tokens_per_second: float,
                      ttft_ms_per_1k_input: float = 0.0, parallel: Parallel = INLINE
                      ) -> RatioGrid:
    """Plan one fixed-length class per (input, output) cell at the same token throughput,
    prefill and decode roles only (the P:D ratio is a property of disaggregated plans).
    The TTFT target of a cell is max(scenario TTFT, ttft_ms_per_1k_input x input / 1000):
    long prompts get a proportionally longer TTFT, as RAG users accept. The TPOT target and
    percentile are the scenario's. Assumption: mean = p90 lengths (no spread in a cell)."""
    shape = (len(input_tokens), len(output_tokens))
    gshare, cshare, usd = (np.full(shape, np.nan) for _ in range(3))
    ratio = [["" for _ in output_tokens] for _ in input_tokens]
    mixes = [["" for _ in output_tokens] for _ in input_tokens]
    cells = [(i, j) for i in range(shape[0]) for j in range(shape[1])]
    solved = parallel.calls(
        [(length_plan, (rs, catalog, input_tokens[i], output_tokens[j], tokens_per_second,
                        ttft_ms_per_1k_input), {}) for i, j in cells])
    for (i, j), (plan, _) in zip(cells, solved):
        if plan is None:
            continue
        p_cost = sum(p.cost_usd_per_hour for p in plan.pools if p.role == Role.PREFILL)
        gshare[i, j] = plan.prefill_gpus / (plan.prefill_gpus + plan.decode_gpus)
        cshare[i, j] = p_cost / plan.cost_usd_per_hour
        usd[i, j] = plan.usd_per_million_tokens
        ratio[i][j] = plan.golden_ratio
        mixes[i][j] = plan.mix()
    return RatioGrid(list(input_tokens), list(output_tokens), tokens_per_second,
                     ttft_ms_per_1k_input, gshare, cshare, usd, ratio, mixes)


def slo_grid(rs: ResolvedScenario, catalog: Catalog, ttft_ms: Sequence[float],
             tpot_ms: Sequence[float], classes: Sequence | None = None,
             parallel: Parallel = INLINE) -> list[dict]:
    """Solve every (TTFT, TPOT) target pair at the scenario's percentile; rows carry the
    targets, `plan_row` fields and `pareto` (see `mark_pareto`)."""
    q = rs.slo.percentile
    cells = [(t, o) for t in sorted(ttft_ms) for o in sorted(tpot_ms)]
    solved = parallel.calls(
        [(plan_row_of, (rs, catalog, classes, SLO(ttft_ms=t, tpot_ms=o, percentile=q)), {})
         for t, o in cells])
    return mark_pareto([plan_row(r, ttft_ms=t, tpot_ms=o, percentile=q)
                        for (t, o), r in zip(cells, solved)])


def mark_pareto(rows: list[dict], keys: Sequence[str] = ("ttft_ms", "tpot_ms",
                                                         "cost_usd_per_hour")) -> list[dict]:
    """Set row['pareto']: feasible and no other feasible row is <= on every key and < on
    one (all keys minimised: a tighter target and a lower cost are both better)."""
    ok = [r for r in rows if r.get("cost_usd_per_hour") is not None]

    def dominates(a: dict, b: dict) -> bool:
        return all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys)

    for r in rows:
        r["pareto"] = r in ok and not any(dominates(o, r) for o in ok if o is not r)
    return rows


def role_economics(rs: ResolvedScenario, catalog: Catalog, classes: Sequence | None = None,
                   calibrations: dict | None = None) -> list[dict]:
    """Per (role, GPU): the candidate with the most requests/s per $/h for the workload
    (classes served by time-sharing, so capacity = 1 / sum(share / capacity)); what drives
    a planner's choice before integrality and the KV link. Rows sorted by role, then best
    first; requests/s per $/h is 0 where no candidate of that GPU serves every class."""
    ctx = prepare(rs if classes is None else rs.with_classes(classes), catalog,
                  calibrations=calibrations)
    total = sum(w.rate_rps for w in ctx.classes)
    best: dict[tuple[str, str], dict] = {}
    for c in ctx.candidates:
        caps = [c.capacity(w.name) for w in ctx.classes]
        if min(caps, default=0.0) <= 0:
            continue
        rps = 1.0 / sum(w.rate_rps / total / cap for w, cap in zip(ctx.classes, caps))
        row = {"role": c.role, "gpu": c.shape.gpu, "shape": c.shape.label(),
               "price_usd_per_hour": c.price_usd_per_hour, "capacity_rps": rps,
               "rps_per_usd_per_hour": rps / c.price_usd_per_hour}
        key = (c.role, c.shape.gpu)
        if key not in best or row["rps_per_usd_per_hour"] > best[key]["rps_per_usd_per_hour"]:
            best[key] = row
    return sorted(best.values(), key=lambda r: (ROLES.index(r["role"]),
                                                -r["rps_per_usd_per_hour"], r["gpu"]))


def borrowed_calibrations(source_gpu: str, targets: Sequence[str]) -> dict:
    """The bundled calibrations, with `source_gpu`'s measured efficiencies copied to each
    target GPU (a what-if stand-in for a measurement on GPUs that have none: "if GPU X
    reached the same fractions of its peaks as the source does"). Nothing is written."""
    from hetplan.perf.calibration import load_calibrations
    cals = dict(load_calibrations())
    if source_gpu not in cals:
        raise InputError(f"no measured calibration for {source_gpu}", field="source_gpu")
    src = cals[source_gpu]
    for g in targets:
        cals[g] = src.model_copy(update={"gpu": g, "provenance": src.provenance.model_copy(
            update={"method": f"borrowed from {source_gpu} (what-if, not measured)"})})
    return cals


def pool_costs(plan: Plan) -> list[dict]:
    """$/h per pool with its role and GPU (`Plan.pool_costs`)."""
    return plan.pool_costs()
