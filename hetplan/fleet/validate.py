"""Simulate a fleet plan member by member and top up the members that miss
(`hetplan solve FLEET.yaml --validate`).

Members never share a GPU (the placement gives each replica its own GPUs), so each
member's plan is replayed alone on its own workload, as `hetplan simulate` replays a
single plan. What members do share is a node's host and NICs (and the links between
racks); the simulator does not model them, so interference between members on a shared
node is not in these figures.

Plans are tuned, not re-solved: a member that misses (in fleet file order) has the pools
its missing classes blame (`tuner.blame`) grown, routing kept (so the mix and every other
member's plan stay as the fleet MILP made them), by the single-model tuner's per-pool
bounds (`tuner.next_counts`: grow until a count passes, then bisect back between the
largest count blamed and the smallest passing), never below the first plan's counts. The
GPUs added must fit the fleet's shared availability per GPU type net of what every
member's plan already uses (placed, spares included) and the fleet's (and the member's)
budget net of every plan's cost; growth over a limit is trimmed (`tuner.Tuner.room`'s
rule). At most `bounds.VALIDATE_ROUNDS` simulations per member, one kept, with an
inventory, for the placed plan. The cheapest passing top-up is kept; a member with none
keeps its first plan and is named with why (a limit bound, a blamed pool saturated, the
rounds ran out). With an inventory every member is then placed again in one pass from its
sized counts (placement adds the spares back) and every member's placed plan simulated
once more (placement sets the KV links the simulator uses): those are the figures
reported. If the topped-up plans cannot be placed, the first plans stay, with the reason.
Assumption (the single-model tuner's): pools interact weakly, so growing the blamed pools
does not starve the others. Deterministic: fixed seed, fixed order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hetplan.bounds import VALIDATE_ROUNDS
from hetplan.catalog import Catalog
from hetplan.fleet.solve import BUDGET_TOL, FleetResult, place_members
from hetplan.perf import PerfModel
from hetplan.placement.place import PlacementInfeasible
from hetplan.plan import Plan
from hetplan.simulate import SimOptions, simulate_plan
from hetplan.simulate.engine import RunResult
from hetplan.simulate.metrics import SimReport
from hetplan.simulate.tuner import (PoolBounds, blame, counts, next_counts, trim_growth,
                                    with_replicas)
from hetplan.simulate.workload import scenario_trace

INTERFERENCE_NOTE = ("each member simulated alone on its own GPUs; members sharing a node "
                     "share its host and NICs, which the simulator does not model")


@dataclass
class MemberTuning:
    """One member's top-up: its first plan's figures, the emitted plan's, what was added."""

    name: str
    first_attainment: float
    first_cost_usd_per_hour: float
    first_met: bool
    attainment: float = 0.0                  # the emitted plan's (placed, when placed)
    cost_usd_per_hour: float = 0.0
    slo_met: bool = False
    added: dict[str, tuple[int, int]] = field(default_factory=dict)   # pool -> (first, tuned)
    simulations: int = 0
    stopped: str = ""                        # why a member that misses has no top-up

    def change(self) -> str:
        """The pools added to, "pool first -> tuned, ..."."""
        return ", ".join(f"{p} {a} -> {b}" for p, (a, b) in self.added.items())

    def row(self) -> dict:
        return {"name": self.name, "first_slo_attainment": round(self.first_attainment, 4),
                "first_cost_usd_per_hour": round(self.first_cost_usd_per_hour, 4),
                "first_slo_met": self.first_met,
                "slo_attainment": round(self.attainment, 4),
                "cost_usd_per_hour": round(self.cost_usd_per_hour, 4), "slo_met": self.slo_met,
                "added": [f"{p}: {a} -> {b} replicas" for p, (a, b) in self.added.items()],
                "simulations": self.simulations, "stopped": self.stopped}


@dataclass
class Room:
    """What the fleet has left for top-ups: GPUs per type (a type absent: unlimited) and
    $/h (None: no budget)."""

    gpus: dict[str, int]
    budget_usd_per_hour: float | None

    @classmethod
    def left(cls, availability: dict[str, int], budget: float | None,
             plans: dict[str, Plan]) -> Room:
        free = dict(availability)
        for plan in plans.values():
            for p in plan.pools:
                if p.gpu in free:
                    free[p.gpu] -= p.gpus
        cost = sum(plan.cost_usd_per_hour for plan in plans.values())
        return cls(free, None if budget is None else budget * (1 + BUDGET_TOL) - cost)

    def clamp(self, first: Plan, member_budget: float | None, hits: list[str]
              ) -> Callable[[dict[str, int]], dict[str, int]]:
        """Proposed counts -> counts at least the first plan's whose growth fits the room
        (and `member_budget` $/h for the member's growth), growth trimmed as the tuner's
        (`tuner.trim_growth`); `hits` gets the limits that trimmed."""
        base = counts(first)
        pools = {p.name: p for p in first.pools}

        def gpus(out, names):
            return sum((out[n] - base[n]) * (pools[n].gpus // pools[n].replicas) for n in names)

        def cost(out):
            return sum((out[n] - base[n]) * pools[n].cost_usd_per_hour / pools[n].replicas
                       for n in out)

        def clamp(new: dict[str, int]) -> dict[str, int]:
            out = {n: max(k, base[n]) for n, k in new.items()}
            hits.clear()
            for g in sorted({p.gpu for p in first.pools}):
                if g in self.gpus:
                    names = [n for n, p in pools.items() if p.gpu == g]
                    if trim_growth(out, base, names, lambda: gpus(out, names) > self.gpus[g]):
                        hits.append(f"{g} availability ({max(self.gpus[g], 0)} GPUs left "
                                    "in the fleet)")
            for what, left in (("fleet budget", self.budget_usd_per_hour),
                               ("member budget", member_budget)):
                if left is not None and trim_growth(out, base, list(out),
                                                     lambda: cost(out) > left):
                    hits.append(f"{what} (${max(left, 0.0):.2f}/h left)")
            return out
        return clamp

    def take(self, first: Plan, tuned: Plan) -> None:
        for a, b in zip(first.pools, tuned.pools):
            if a.gpu in self.gpus:
                self.gpus[a.gpu] -= b.gpus - a.gpus
        if self.budget_usd_per_hour is not None:
            self.budget_usd_per_hour -= tuned.cost_usd_per_hour - first.cost_usd_per_hour


Sim = Callable[[Plan], tuple[SimReport, RunResult]]


def top_up(first: Plan, rep: SimReport, res: RunResult, sim: Sim,
           clamp: Callable[[dict[str, int]], dict[str, int]], hits: list[str],
           max_sims: int) -> tuple[Plan | None, SimReport | None, int, str]:
    """Grow `first`'s blamed pools (module docstring) for at most `max_sims` simulations,
    `first`'s own included. Returns the cheapest passing top-up and its report (None, None
    when none passed), the simulations run, and why none passed."""
    q = float(first.slo.get("percentile", 90.0)) / 100
    bounds: dict[str, PoolBounds] = {}
    plan, blamed, n_sims = first, blame(first, rep, res), 1
    seen = {tuple(sorted(counts(first).items()))}
    passing: list[tuple[float, int, Plan, SimReport]] = []
    stopped = ""
    while True:
        new = next_counts(plan, blamed, bounds, q, clamp)
        key = tuple(sorted(new.items()))
        if new == counts(plan) or key in seen:
            saturated = [f"{n}: {b.saturated}" for n, b in bounds.items() if b.saturated]
            stopped = ("a limit binds: " + "; ".join(hits) if hits else
                       "blamed pool saturated: " + "; ".join(saturated) if saturated else
                       "no pool to grow (none blamed)" if not blamed else
                       "the search converged without a passing count")
            break
        if n_sims >= max_sims:
            stopped = f"rounds ran out ({n_sims} simulations)"
            break
        seen.add(key)
        plan = with_replicas(first, new)
        rep, res = sim(plan)
        n_sims += 1
        blamed = blame(plan, rep, res)
        if rep.slo_met:
            passing.append((plan.cost_usd_per_hour, n_sims, plan, rep))
    if not passing:
        return None, None, n_sims, stopped
    _, _, best, best_rep = min(passing, key=lambda t: (t[0], t[1]))
    return best, best_rep, n_sims, ""


def tune_members(r: FleetResult, catalog: Catalog, *, solver: str = "highs",
                 time_limit_s: float = 60.0, seed: int = 0, max_rounds: int = VALIDATE_ROUNDS
                 ) -> tuple[FleetResult, dict[str, SimReport], list[MemberTuning]]:
    """Simulate every member and top up those that miss (module docstring). Returns the
    fleet result with the emitted plans, each member's report on its emitted plan, and the
    tuning rows, in fleet file order."""
    rf = r.fleet
    perfs = {m.name: PerfModel(m.resolved.model, catalog) for m in rf.members}
    traces = {m.name: scenario_trace(m.resolved) for m in rf.members}

    def sim_of(name: str) -> Sim:
        return lambda plan: simulate_plan(plan, traces[name], perfs[name], SimOptions(seed=seed))

    placed = rf.inventory is not None
    room = Room.left(r.availability, rf.fleet.constraints.budget_usd_per_hour, r.plans)
    plans, sims, firsts, rows = dict(r.plans), {}, {}, []
    for m in rf.members:
        first = r.plans[m.name]
        rep, res = sim_of(m.name)(first)
        row = MemberTuning(m.name, rep.slo_attainment, first.cost_usd_per_hour, rep.slo_met,
                           rep.slo_attainment, first.cost_usd_per_hour, rep.slo_met,
                           simulations=1)
        rows.append(row)
        sims[m.name] = firsts[m.name] = rep
        if rep.slo_met:
            continue
        hits: list[str] = []
        own = first.cost_usd_per_hour
        member_budget = m.resolved.scenario.constraints.budget_usd_per_hour
        clamp = room.clamp(first, None if member_budget is None else member_budget - own, hits)
        best, best_rep, row.simulations, row.stopped = top_up(
            first, rep, res, sim_of(m.name), clamp, hits, max_rounds - placed)
        if best is None:
            row.stopped = f"still misses: {row.stopped}; its first plan stays"
            continue
        room.take(first, best)
        row.added = {a.name: (a.replicas, b.replicas) for a, b in zip(first.pools, best.pools)
                     if b.replicas != a.replicas}
        plans[m.name] = best.model_copy(update={"notes": best.notes + [
            f"fleet --validate: topped up by the simulator ({row.change()} replicas; attainment "
            f"{rep.slo_attainment:.1%} -> {best_rep.slo_attainment:.1%}), routing as planned"]})
        sims[m.name] = best_rep
    tuned = [row for row in rows if row.added]
    notes = list(r.notes)
    if tuned and placed:
        plans, sims, notes = _replace(r, plans, rows, sim_of, perfs, solver, time_limit_s,
                                      firsts, notes)
    for row in rows:
        row.attainment, row.slo_met = sims[row.name].slo_attainment, sims[row.name].slo_met
        row.cost_usd_per_hour = plans[row.name].cost_usd_per_hour
        if row.added and not row.slo_met and not row.stopped:
            row.stopped = "its top-up passed unplaced but its placed plan misses"
    return replace(r, plans=plans, notes=notes), sims, rows


def _replace(r: FleetResult, plans: dict[str, Plan], rows: list[MemberTuning],
             sim_of: Callable[[str], Sim], perfs: dict, solver: str, time_limit_s: float,
             firsts: dict[str, SimReport], notes: list[str]
             ) -> tuple[dict[str, Plan], dict[str, SimReport], list[str]]:
    """Every member placed again from its sized counts (the top-ups included; placement
    adds the spares back) and simulated once more; on failure the first plans and reports
    (`firsts`), the reason in the rows and notes."""
    sized = {}
    for n, plan in plans.items():
        spares = r.plans[n].placement.spare_replicas if r.plans[n].placement else {}
        sized[n] = with_replicas(plan, {p.name: p.replicas - spares.get(p.name, 0)
                                        for p in plan.pools})
    try:
        placed = place_members(r.fleet, sized, perfs, solver=solver, time_limit_s=time_limit_s)
    except PlacementInfeasible as e:
        why = "; ".join(e.reasons[:2])
        for row in rows:
            if row.added:
                row.stopped = (f"its top-up ({row.change()}) could not be placed on the inventory "
                               f"({why}); its first plan stays")
                row.added = {}
        return dict(r.plans), dict(firsts), notes + [
            f"--validate top-ups not placed, the first plans kept: {why}"]
    sims = {}
    for row in rows:
        sims[row.name], _ = sim_of(row.name)(placed[row.name])
        row.simulations += 1
    return placed, sims, notes


def simulated_rows(reports: dict[str, SimReport]) -> list[dict]:
    """fleet.json's per member simulation summary (deterministic: fixed seed)."""
    return [{"name": name, "requests": r.requests, "slo_met": r.slo_met,
             "slo_attainment": round(r.slo_attainment, 4),
             "slo_attainment_ttft": round(r.slo_attainment_ttft, 4),
             "slo_attainment_tpot": round(r.slo_attainment_tpot, 4),
             "worst_class_attainment": round(min((c.attainment for c in r.classes),
                                                 default=r.slo_attainment), 4)}
            for name, r in reports.items()]


def simulated_table(rows: list[dict]) -> str:
    lines = ["| member | requests | attainment | TTFT | TPOT | worst class | SLO met |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for s in rows:
        lines.append(f"| {s['name']} | {s['requests']:,} | {s['slo_attainment']:.1%} | "
                     f"{s['slo_attainment_ttft']:.1%} | {s['slo_attainment_tpot']:.1%} | "
                     f"{s['worst_class_attainment']:.1%} | {'yes' if s['slo_met'] else 'NO'} |")
    return "\n".join(lines) + f"\n\nNote: {INTERFERENCE_NOTE}."


def tuned_table(rows: list[dict]) -> str:
    """fleet.md's top-up table: per member its first plan against the emitted one."""
    lines = ["| member | first plan | first $/h | emitted plan | emitted $/h | added | "
             "simulations |", "|---|---:|---:|---:|---:|---|---:|"]
    for t in rows:
        lines.append(f"| {t['name']} | {t['first_slo_attainment']:.1%} | "
                     f"{t['first_cost_usd_per_hour']:.2f} | {t['slo_attainment']:.1%} | "
                     f"{t['cost_usd_per_hour']:.2f} | {'; '.join(t['added']) or '-'} | "
                     f"{t['simulations']} |")
    missing = [f"- {t['name']} {t['stopped']}" if t["stopped"].startswith("still") else
               f"- {t['name']}: {t['stopped']}" for t in rows if t["stopped"]]
    return "\n".join(lines + ([""] + missing if missing else []))
