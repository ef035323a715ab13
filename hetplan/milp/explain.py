"""Say why a scenario has no plan, and what the nearest feasible relaxation is.

Two passes:
1. precheck: a class that no candidate can serve in a phase (SLO too tight for every shape,
   or no shape fits in VRAM) is named with the best latency any shape reaches, which is the
   SLO to relax to.
2. elastic re-solve: drop availability and budget, solve for the cheapest plan, and report
   each limit that plan exceeds (GPUs needed vs available, cost vs budget); if even that has
   no plan, try without N+1 (inventory), then without the pool cap, then allowing
   cross-vendor prefill->decode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hetplan.candidates import TTFT_SHARE_FOR_SERVICE, Candidate
from hetplan.enums import Role
from hetplan.milp.formulation import Problem
from hetplan.milp.solve import solve_problem
from hetplan.scenario import Scenario


def precheck(problem: Problem, all_candidates: Sequence[Candidate], dropped: Sequence[str],
             s: Scenario, model_name: str) -> list[str]:
    """Classes no candidate can serve in a phase, with the best latency any shape reaches
    (from `all_candidates`, which keeps zero-capacity candidates and their reasons;
    `dropped`: why shapes were left out before that; `s` gives the SLO and limits)."""
    reasons = []
    if not all_candidates:
        vram = [d for d in dropped if "VRAM" in d]
        if vram and len(vram) == len(dropped):
            reasons.append(f"VRAM: no allowed shape holds {model_name} "
                           f"(max_tp {s.constraints.max_tp}, max_pp {s.constraints.max_pp}, "
                           f"weights {', '.join(s.constraints.weight_dtypes)}); e.g. "
                           f"{vram[-1]}")
        else:
            reasons.append("no candidate replica can serve any class: "
                           + "; ".join(dropped[-3:]))
        return reasons
    for w in problem.classes:
        for phase in (Role.PREFILL, Role.DECODE):
            able = [c for c in problem.candidates
                    if c.role in (phase, Role.COLOCATED) and c.capacity(w.name) > 0]
            if able or _may_miss(problem, w, phase):
                continue
            per = [c.per_class[w.name] for c in all_candidates
                   if c.role in (phase, Role.COLOCATED)]
            if phase == Role.PREFILL:
                best = min((p.ttft_ms for p in per if p.ttft_ms == p.ttft_ms), default=None)
                need = f"; nearest feasible: TTFT target >= {best / TTFT_SHARE_FOR_SERVICE:.0f} " \
                       f"ms (best service time {best:.0f} ms)" if best else ""
                reasons.append(f"SLO: no replica meets p{s.slo.percentile:g} TTFT <= "
                               f"{s.slo.ttft_ms:g} ms for class {w.name} "
                               f"({w.p90_input_tokens:.0f}-token prompts){need}")
            else:
                best = min((p.tpot_ms for p in per if p.tpot_ms == p.tpot_ms), default=None)
                vram = bool(per) and all(p.why.startswith("VRAM") for p in per)
                if vram:
                    reasons.append(f"VRAM: no decode-capable replica holds a "
                                   f"{w.mean_input_tokens + w.mean_output_tokens:.0f}-token "
                                   f"sequence of class {w.name}")
                else:
                    need = f"; nearest feasible: TPOT target >= {best:.1f} ms" if best else ""
                    reasons.append(f"SLO: no replica meets p{s.slo.percentile:g} TPOT <= "
                                   f"{s.slo.tpot_ms:g} ms for class {w.name}{need}")
    return reasons


def _may_miss(problem: Problem, w, phase: str) -> bool:
    """Scope workload: class w fits the miss budget alone and some candidate serves it in
    `phase` at the relaxed targets (so the MILP may let it miss rather than fail)."""
    if problem.miss_budget_share is None or not problem.relaxed_capacity:
        return False
    total = sum(c.rate_rps for c in problem.classes)
    if w.rate_rps > problem.miss_budget_share * total:
        return False
    return any(problem.relaxed_capacity.get(c.key, {}).get(w.name, 0.0) > 0
               for c in problem.candidates if c.role in (phase, Role.COLOCATED))


def explain_infeasible(problem: Problem, solver: str, time_limit_s: float) -> list[str]:
    free = replace(problem, availability={}, budget_usd_per_hour=None)
    out = solve_problem(free, solver, time_limit_s, warn=False)
    if not out.solution.has_solution:
        if problem.n_plus_one_nodes is not None:
            loose = solve_problem(replace(free, n_plus_one_nodes=None), solver, time_limit_s,
                                  warn=False)
            if loose.solution.has_solution:
                nodes = {ch.candidate.shape.gpu: problem.n_plus_one_nodes.get(
                    ch.candidate.shape.gpu, {}).get(ch.candidate.shape.gpus_per_stage, 0)
                    for ch in loose.chosen}
                return ["reliability: N+1 (any one node lost) has no plan; the plan without "
                        "it uses " + ", ".join(f"{g} ({n} node{'s' if n != 1 else ''} able to "
                                               f"hold its replicas)"
                                               for g, n in sorted(nodes.items()))
                        + "; nearest feasible: more nodes per GPU type or n_plus_one: false"]
        if problem.max_pools_per_role is not None:
            uncapped = solve_problem(replace(free, max_pools_per_role=None), solver,
                                     time_limit_s, warn=False)
            if uncapped.solution.has_solution:
                per_role: dict[str, int] = {}
                for ch in uncapped.chosen:
                    per_role[ch.candidate.role] = per_role.get(ch.candidate.role, 0) + 1
                return [f"max_pools_per_role: no plan within {problem.max_pools_per_role} pool(s) "
                        "per role; the plan without the cap uses "
                        + ", ".join(f"{n} {r}" for r, n in sorted(per_role.items()))
                        + "; nearest feasible: max_pools_per_role >= "
                        f"{max(per_role.values())}"]
        if not problem.allow_cross_vendor:
            cross = solve_problem(replace(free, allow_cross_vendor=True), solver, time_limit_s,
                                  warn=False)
            if cross.solution.has_solution:
                return ["vendor compatibility: no single vendor serves both prefill and "
                        "decode; nearest feasible: allow_cross_vendor: true"]
        return ["no plan even without availability and budget limits "
                f"(solver status {out.solution.status})"]
    reasons = []
    used: dict[str, int] = {}
    for ch in out.chosen:
        used[ch.candidate.shape.gpu] = used.get(ch.candidate.shape.gpu, 0) + \
            ch.replicas * ch.candidate.num_gpus
    for g, n in sorted(used.items()):
        if g in problem.availability and n > problem.availability[g]:
            reasons.append(f"availability[{g}]: the cheapest plan needs {n} {g} GPUs, "
                           f"{problem.availability[g]} available")
    cost = sum(ch.replicas * ch.candidate.price_usd_per_hour for ch in out.chosen)
    if problem.budget_usd_per_hour is not None and cost > problem.budget_usd_per_hour:
        reasons.append(f"budget: the cheapest plan costs ${cost:.2f}/h > budget "
                       f"${problem.budget_usd_per_hour:.2f}/h; nearest feasible: "
                       f"budget >= ${cost:.2f}/h")
    if not reasons:
        reasons.append("availability and budget jointly bind: the cheapest unconstrained plan "
                       f"(${cost:.2f}/h, GPUs {used}) must be reshaped to fit both")
    return reasons
