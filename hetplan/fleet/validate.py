"""Simulate a fleet plan member by member (`hetplan solve FLEET.yaml --validate`).

Members never share a GPU (the placement gives each replica its own GPUs), so each
member's plan is replayed alone on its own workload, as `hetplan simulate` replays a
single plan. What members do share is a node's host and NICs (and the links between
racks); the simulator does not model them, so interference between members on a shared
node is not in these figures. Plans are checked, not tuned: the single-model tuner
(`solve --validate` on a scenario) re-solves one model and would break the fleet's
shared availability and budget rows.
"""

from __future__ import annotations

from hetplan.catalog import Catalog
from hetplan.fleet.spec import ResolvedFleet
from hetplan.perf import PerfModel
from hetplan.plan import Plan
from hetplan.simulate import SimOptions, simulate_plan
from hetplan.simulate.metrics import SimReport
from hetplan.simulate.workload import scenario_trace

INTERFERENCE_NOTE = ("each member simulated alone on its own GPUs; members sharing a node "
                     "share its host and NICs, which the simulator does not model")


def simulate_members(rf: ResolvedFleet, plans: dict[str, Plan], catalog: Catalog,
                     seed: int = 0) -> dict[str, SimReport]:
    """Member -> the report of its plan replayed on its own workload (the trace it was
    planned from), in fleet file order."""
    out = {}
    for m in rf.members:
        rs = m.resolved
        report, _ = simulate_plan(plans[m.name], scenario_trace(rs), PerfModel(rs.model, catalog),
                                  SimOptions(seed=seed))
        out[m.name] = report
    return out


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
