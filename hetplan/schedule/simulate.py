"""Validation over time: replay the horizon's traffic on a schedule (or on a static plan,
or on the reactive autoscaler's fleet) and report SLO attainment per slot.

The approximation, stated:
- Sampled windows: each slot is simulated over a window of `sample_s` (default
  DEFAULT_SAMPLE_S) at its middle, starting empty, with the slot's pools, replica counts and
  routes (the per-plan simulator's engine, `hetplan.schedule.replay`); a whole slot of
  production traffic is ~10^5 requests and a week of them would take hours in Python.
  `sample_s` >= the slot length replays every request.
- Traffic: a trace-profile scenario replays its own trace's requests in each window; a
  rate-shape scenario draws Poisson arrivals at the shape's rate over the window (thinned,
  so the rate moves inside it) with token lengths resampled from the scenario's trace.
  Seeded: the same seed gives the same requests, routing and preemptions.
- Warm-up: the schedule launches its replicas ahead of their slot by their warm-up (which
  its cost pays), so they serve from the slot's start; the reactive scaler's replicas serve
  from the end of their warm-up (their intervals come from `reactive`).
- Spot: every spot replica (per pool, by index) is preempted as a Poisson process at its
  GPU's rate per hour over the whole horizon; a preempted replica is down for its warm-up
  plus the reacquire time, and its requests are re-queued (`replay`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetplan.errors import InputError
from hetplan.io import load_json, workloads_dir
from hetplan.perf import PerfModel
from hetplan.plan import ClassRoute, Plan
from hetplan.scenario import ResolvedScenario
from hetplan.schedule.replay import run_dynamic
from hetplan.schedule.spec import ScheduleSpec
from hetplan.simulate.metrics import summarize
from hetplan.simulate.router import assign_classes, class_routes, draw_pools
from hetplan.simulate.sim import SimOptions, pool_specs
from hetplan.tables import text_table
from hetplan.workload import Trace, make_trace
from hetplan.workload.profile import RateShape

DEFAULT_SAMPLE_S = 120.0        # simulated seconds per slot (see the module docstring)


@dataclass(frozen=True)
class SlotTraffic:
    """The requests of one slot's window, on the window's clock (0 = window start)."""

    start_s: float                  # window start on the horizon's clock
    length_s: float
    trace: Trace


def windows(starts_s: Sequence[float], lengths_s: Sequence[float], sample_s: float
            ) -> list[tuple[float, float]]:
    """(start, length) of each slot's sampled window: centred, at most the slot."""
    out = []
    for a, n in zip(starts_s, lengths_s):
        w = min(sample_s, n)
        out.append((a + (n - w) / 2, w))
    return out


def traffic_from_trace(trace: Trace, wins: Sequence[tuple[float, float]]) -> list[SlotTraffic]:
    out = []
    for a, w in wins:
        lo, hi = np.searchsorted(trace.arrival_s, [a, a + w], side="left")
        out.append(SlotTraffic(a, w, make_trace(trace.arrival_s[lo:hi] - a,
                                                trace.input_tokens[lo:hi],
                                                trace.output_tokens[lo:hi])))
    return out


def traffic_from_shape(shape: RateShape, lengths_from: Trace,
                       wins: Sequence[tuple[float, float]], seed: int) -> list[SlotTraffic]:
    """Poisson arrivals at the shape's rate (thinning), lengths resampled from a trace."""
    out = []
    for t, (a, w) in enumerate(wins):
        rng = np.random.Generator(np.random.PCG64([seed, t]))
        grid = a + np.linspace(0.0, w, 65)
        top = float(np.max(shape.rate_rps(grid))) * 1.05
        n = rng.poisson(top * w)
        arr = np.sort(rng.uniform(0.0, w, n))
        keep = rng.uniform(0.0, top, n) < shape.rate_rps(a + arr)
        arr = arr[keep]
        pick = rng.integers(0, lengths_from.num_requests, arr.size)
        out.append(SlotTraffic(a, w, make_trace(arr, lengths_from.input_tokens[pick],
                                                lengths_from.output_tokens[pick])))
    return out


def preemptions(rate_per_hour: float, horizon_s: float, seed: int, pool: int, replica: int
                ) -> np.ndarray:
    """Preemption times (s) of one spot replica over the horizon: a Poisson process."""
    if rate_per_hour <= 0:
        return np.zeros(0)
    rng = np.random.Generator(np.random.PCG64([seed, 1 + pool, replica]))
    mean_gap = 3600.0 / rate_per_hour
    n = max(8, int(3 * horizon_s / mean_gap) + 8)
    times = np.cumsum(rng.exponential(mean_gap, n))
    return times[times < horizon_s]


def effective(times: np.ndarray, down_s: float) -> np.ndarray:
    """The preemptions that hit a running replica: one that falls while the replica is
    still down from the previous one is void."""
    keep: list[float] = []
    for tp in times:
        if not keep or tp >= keep[-1] + down_s:
            keep.append(float(tp))
    return np.array(keep)


def schedule_intervals(replay: dict, seed: int) -> dict[str, list[tuple[float, float]]]:
    """Per pool, (up_s, down_s) of every replica on the horizon's clock: each slot's
    replicas up over the slot, spot replicas down for warm-up + reacquire after each
    preemption (spot replica j of a pool is one identity over the horizon, whether or not
    a slot holds it)."""
    starts, lengths = replay["slot_start_s"], replay["slot_length_s"]
    horizon = float(starts[-1] + lengths[-1])
    names = sorted({n for row in replay["slots"] for n in row})
    out: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for pi, name in enumerate(names):
        down_s = replay["warmup_s"][name] + replay["spot_reacquire_s"]
        most_spot = max(row.get(name, {}).get("spot", 0) for row in replay["slots"])
        hits = [effective(preemptions(replay["spot_preemptions_per_hour"][name], horizon, seed,
                                      pi, j), down_s) for j in range(most_spot)]
        for t, row in enumerate(replay["slots"]):
            a, b = starts[t], starts[t] + lengths[t]
            sp = row.get(name)
            if not sp:
                continue
            out[name] += [(a, b)] * (sp["replicas"] - sp["spot"])
            for j in range(sp["spot"]):
                lo = a
                for tp in hits[j]:
                    if tp + down_s <= a or tp >= b:
                        continue
                    if tp > lo:
                        out[name].append((lo, tp))
                    lo = tp + down_s
                if lo < b:
                    out[name].append((lo, b))
    return out


@dataclass
class SlotResult:
    slot: int
    requests: int
    attainment: float
    attainment_ttft: float
    attainment_tpot: float
    slo_met: bool                    # the simulator's verdict (`simulate.metrics`)
    replicas: int                    # replicas up in the window (a replacement counts anew)
    preempted: int                   # replicas that left in the window (reactive: scale-downs)
    requeued: int                    # requests those replicas handed back
    # replica-seconds of the slot's planned replicas not up in the window (spot downtime,
    # including a preemption before the window whose replica is still down); 0 unplanned
    down_replica_s: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class HorizonResult:
    label: str
    slots: list[SlotResult]
    sample_s: float
    seed: int

    @property
    def attainment(self) -> float:
        n = sum(s.requests for s in self.slots)
        return sum(s.attainment * s.requests for s in self.slots) / n if n else 1.0

    @property
    def worst_slot_attainment(self) -> float:
        return min((s.attainment for s in self.slots if s.requests), default=1.0)

    def summary(self) -> dict:
        return {"label": self.label, "attainment": self.attainment,
                "worst_slot_attainment": self.worst_slot_attainment,
                "slots_meeting_slo": sum(s.slo_met for s in self.slots),
                "requests": sum(s.requests for s in self.slots),
                "preempted_replicas": sum(s.preempted for s in self.slots),
                "requeued_requests": sum(s.requeued for s in self.slots),
                "slots_with_replicas_down": sum(int(s.down_replica_s > 0) for s in self.slots),
                "sample_s_per_slot": self.sample_s, "seed": self.seed,
                "slots": [s.to_dict() for s in self.slots]}


def _slot_plan(template: Plan, routes: dict[str, dict[str, float]]) -> Plan:
    """The template with only the pools that serve in the slot, at the slot's rates."""
    pools = []
    for p in template.pools:
        r = routes.get(p.name)
        if not r:
            continue
        by_cls = {x.workload_class: x for x in p.routes}
        rs = [ClassRoute(**{**by_cls[w].model_dump(), "rate_rps": v})
              for w, v in sorted(r.items()) if w in by_cls]
        pools.append(p.model_copy(update={"routes": rs}))
    return template.model_copy(update={"pools": pools})


def replay_horizon(label: str, template: Plan, slot_routes: Sequence[dict[str, dict[str, float]]],
                   intervals: dict[str, list[tuple[float, float]]],
                   traffic: Sequence[SlotTraffic], pm: PerfModel, seed: int = 0,
                   sample_s: float = DEFAULT_SAMPLE_S, steps: dict | None = None,
                   planned: Sequence[dict[str, int]] | None = None) -> HorizonResult:
    """Simulate each slot's window on its pools; replicas up over `intervals` (horizon
    clock, clipped to the window). `steps`: step models by replica shape, kept across
    slots and fleets (each memoizes its step times). `planned`: per slot, the replicas
    each pool is meant to hold, to report those down in the window."""
    steps = {} if steps is None else steps
    out = []
    for t, tr in enumerate(traffic):
        plan = _slot_plan(template, slot_routes[t])
        if tr.trace.num_requests == 0 or not plan.pools:
            empty = not tr.trace.num_requests
            out.append(SlotResult(t, tr.trace.num_requests, float(empty), float(empty),
                                  float(empty), empty, 0, 0, 0))
            continue
        routes = class_routes(plan)
        classes = [c for c in plan.classes if c.name in routes]
        cls = assign_classes(tr.trace.input_tokens, tr.trace.output_tokens, classes)
        rng = np.random.Generator(np.random.PCG64([seed, t]))
        first, dec = draw_pools(cls, [routes[c.name] for c in classes], rng)
        is_prefill = np.array([p.role == "prefill" for p in plan.pools])
        dec = np.where(is_prefill[first], dec, -1)
        specs = pool_specs(plan, pm, SimOptions(seed=seed))
        for spec, p in zip(specs, plan.pools):
            key = (p.gpu, p.tp, p.pp, p.weight_dtype, p.kv_dtype, p.ep, p.dp, repr(plan.engine))
            spec.steps = steps.setdefault(key, spec.steps)
        a, b = tr.start_s, tr.start_s + tr.length_s
        up, n_up, gone, down = [], 0, 0, 0.0
        for p in plan.pools:
            mine = [(max(lo, a) - a, hi - a if hi < b else math.inf)
                    for lo, hi in intervals.get(p.name, []) if lo < b and hi > a]
            up.append(sorted(mine))
            n_up += len(mine)
            gone += sum(1 for _, hi in mine if math.isfinite(hi))
            if planned is not None:
                held_s = sum(min(hi, tr.length_s) - lo for lo, hi in mine)
                down += max(0.0, planned[t].get(p.name, 0) * tr.length_s - held_s)
        res, requeued = run_dynamic(tr.trace.arrival_s, tr.trace.input_tokens,
                                    tr.trace.output_tokens, first, dec, specs, up,
                                    seed=seed * 1_000_003 + t)
        rep = summarize(plan, tr.trace, res, cls, [c.name for c in classes], seed,
                        plan.kv_link or "")
        out.append(SlotResult(t, tr.trace.num_requests, rep.slo_attainment,
                              rep.slo_attainment_ttft, rep.slo_attainment_tpot, rep.slo_met,
                              n_up, gone, requeued, round(float(down), 6)))
    return HorizonResult(label, out, sample_s, seed)


def replay_schedule(replay: dict, traffic: Sequence[SlotTraffic], pm: PerfModel,
                    seed: int = 0, sample_s: float = DEFAULT_SAMPLE_S,
                    steps: dict | None = None) -> HorizonResult:
    """The schedule of `replay` (schedule.json's `replay` block) on `traffic`."""
    template = Plan.model_validate(replay["plan"])
    routes = [{n: v["routes_rps"] for n, v in row.items()} for row in replay["slots"]]
    planned = [{n: v["replicas"] for n, v in row.items()} for row in replay["slots"]]
    return replay_horizon("schedule", template, routes, schedule_intervals(replay, seed),
                          traffic, pm, seed, sample_s, steps, planned)


def replay_static(plan: Plan, starts_s: Sequence[float], lengths_s: Sequence[float],
                  traffic: Sequence[SlotTraffic], pm: PerfModel, label: str,
                  intervals: dict[str, list[tuple[float, float]]] | None = None,
                  seed: int = 0, sample_s: float = DEFAULT_SAMPLE_S,
                  steps: dict | None = None) -> HorizonResult:
    """A plan's pools and routes in every slot: all replicas up all the time (a static
    plan, on-demand), or up over `intervals` (the reactive scaler's fleet)."""
    horizon = float(starts_s[-1] + lengths_s[-1])
    if intervals is None:
        intervals = {p.name: [(0.0, horizon)] * p.replicas for p in plan.pools}
    routes = {p.name: {r.workload_class: r.rate_rps for r in p.routes} for p in plan.pools}
    return replay_horizon(label, plan, [routes] * len(starts_s), intervals, traffic, pm,
                          seed, sample_s, steps)


def horizon_traffic(rs: ResolvedScenario, spec: ScheduleSpec, starts_s: Sequence[float],
                    lengths_s: Sequence[float], sample_s: float = DEFAULT_SAMPLE_S,
                    seed: int = 0) -> list[SlotTraffic]:
    """Each slot's sampled window of the scenario's horizon traffic (module docstring)."""
    if rs.trace is None:
        raise InputError("the scenario gives its classes by figures; it has no trace to "
                         "replay over the horizon", field="workload")
    if not (math.isfinite(sample_s) and sample_s > 0):
        raise InputError(f"must be > 0 s, not {sample_s:g}", field="--sample-s")
    wins = windows(starts_s, lengths_s, sample_s)
    if spec.profile is not None:
        return traffic_from_shape(spec.profile, rs.trace, wins, seed)
    return traffic_from_trace(rs.trace, wins)


def validate_replay(replay: dict, traffic: Sequence[SlotTraffic], pm: PerfModel,
                    seed: int = 0, sample_s: float = DEFAULT_SAMPLE_S,
                    baselines: bool = True) -> dict[str, HorizonResult]:
    """The schedule, and (`baselines`) the static peak plan and the reactive scaler, on
    the same traffic windows."""
    steps: dict = {}
    out = {"schedule": replay_schedule(replay, traffic, pm, seed, sample_s, steps)}
    if baselines:
        peak = Plan.model_validate(replay["static_peak_plan"])
        starts, lengths = replay["slot_start_s"], replay["slot_length_s"]
        out["static_peak"] = replay_static(peak, starts, lengths, traffic, pm, "static peak",
                                           seed=seed, sample_s=sample_s, steps=steps)
        if replay.get("reactive_intervals"):
            ivs = {k: [tuple(x) for x in v] for k, v in replay["reactive_intervals"].items()}
            out["reactive"] = replay_static(peak, starts, lengths, traffic, pm, "reactive",
                                            intervals=ivs, seed=seed, sample_s=sample_s,
                                            steps=steps)
    return out


def horizon_text(results: dict[str, HorizonResult]) -> str:
    """Attainment per slot for each replayed fleet, then the totals."""
    labels = list(results)
    first = results[labels[0]]
    rows = []
    for t in range(len(first.slots)):
        s = first.slots[t]
        row = [t, s.requests]
        for k in labels:
            x = results[k].slots[t]
            row += [f"{100 * x.attainment:.1f}%"]
        row += [s.replicas, s.preempted, s.requeued, f"{s.down_replica_s:.0f}"]
        rows.append(row)
    head = (["slot", "requests"] + [f"{results[k].label} attainment" for k in labels]
            + [f"{first.label} replicas", "preempted", "requeued", "down replica-s"])
    lines = [text_table(head, rows), ""]
    for k in labels:
        r = results[k]
        lines.append(f"{r.label}: attainment {100 * r.attainment:.2f}% over "
                     f"{sum(s.requests for s in r.slots):,} requests (worst slot "
                     f"{100 * r.worst_slot_attainment:.1f}%); SLO met in "
                     f"{sum(s.slo_met for s in r.slots)} of {len(r.slots)} slots")
    lines.append(f"{first.sample_s:g} s simulated per slot (its middle), seed {first.seed}; "
                 "see hetplan/schedule/simulate.py for the approximation")
    return "\n".join(lines)


def is_schedule_file(path: Path) -> bool:
    """A schedule.json (written by `hetplan schedule --out`) rather than a plan.json."""
    try:
        raw = load_json(path)
    except InputError:
        return False          # load_plan reports it
    return isinstance(raw, dict) and "replay" in raw and "summary" in raw


def schedule_scenario(name: str, scenario: Path | None) -> Path:
    """The scenario to replay: `--scenario`, else workloads/<name>.yaml or
    workloads/schedule/<name>.yaml."""
    if scenario is not None:
        return scenario
    for guess in (workloads_dir() / f"{name}.yaml", workloads_dir() / "schedule" / f"{name}.yaml"):
        if guess.exists():
            return guess
    raise InputError(f"no scenario named {name!r} under {workloads_dir()}: pass --scenario FILE",
                     field="--scenario")


def simulate_schedule_file(path: Path, scenario: Path | None = None, seed: int = 0,
                           sample_s: float = DEFAULT_SAMPLE_S, baselines: bool = True
                           ) -> dict[str, HorizonResult]:
    """`hetplan simulate schedule.json`: replay the scenario's horizon traffic on it."""
    from hetplan.catalog import load_catalog
    from hetplan.scenario import load_scenario

    raw = load_json(path)
    try:
        replay, name, model = raw["replay"], raw["summary"]["scenario"], raw["model"]
        n = len(replay["slots"])
        if not n or len(replay["slot_start_s"]) != n or len(replay["slot_length_s"]) != n:
            raise ValueError("slots, slot_start_s and slot_length_s differ in length")
        Plan.model_validate(replay["plan"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"not a schedule.json written by `hetplan schedule`: "
                         f"{str(e).splitlines()[0]}", file=path) from None
    cat = load_catalog()
    rs = load_scenario(schedule_scenario(name, scenario), cat)
    if rs.model.name != model:
        raise InputError(f"the schedule is for {model}, the scenario for {rs.model.name}",
                         field="--scenario")
    spec = rs.scenario.schedule or ScheduleSpec()
    traffic = horizon_traffic(rs, spec, replay["slot_start_s"], replay["slot_length_s"],
                              sample_s, seed)
    try:
        return validate_replay(replay, traffic, PerfModel(rs.model, cat), seed, sample_s,
                               baselines)
    except (KeyError, TypeError) as e:
        raise InputError(f"a replay field is missing or malformed: {e}", file=path) from None
