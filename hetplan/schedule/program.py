"""The schedule MILP (`formulation.solve_schedule` solves it): a committed baseline paid in
every slot plus per-slot on-demand and spot replicas that meet every slot's demand at the
SLO, at least horizon cost.

Sets: candidates c (the planner's, with its per-replica capacities mu[c,w] and target
utilization rho_c), tiers k in {on_demand, spot, committed} where the GPU has a price,
slots t with lengths h_t (hours), classes w. Variables: n[c,k,t] integer replicas;
x[c,w,t] >= 0 requests/s; K[g] integer committed GPUs; u[c,k,t] >= 0 replicas started;
O[g] the GPUs on the inventory's owned nodes (fixed: they exist in every slot).

  demand_prefill[w,t] / demand_decode[w,t]:  sum x[c,w,t] = rate[t,w]
  capacity[c,t]:     sum_w x[c,w,t] / mu[c,w] <= rho_c (n[c,od,t] + n[c,com,t]
                     + (1 - d_c) n[c,spot,t])   (d_c: capacity a spot replica loses to
                     preemptions: rate x (warm-up + reacquire time)); under queueing
                     sizing (`curves`) instead U(N[c,t]) on a binary per replica count,
                     and with spot replicas U_d(N - 1) with one of them down
                     (`curve_rows.py`)
  committed[g,t]:    sum_{c on g} gpus_c n[c,com,t] <= K[g] + O[g]
  availability[g,t]: sum_{c on g} gpus_c sum_k n[c,k,t] <= available_g;  K[g] + O[g] too
  spot_share[t]:     spot GPUs <= share x all GPUs of the slot
  kv_bandwidth_out/in[t]: as the planning MILP, per slot
  vendor_compat / kv_format: one vendor and one KV dtype for P/D over the horizon (per
                     slot, N[c,t] <= ub pick; with a pool cost, pool_open[c] <= pick)
  started[c,k,t]:    u[c,k,t] >= n[c,k,t] - n[c,k,t-1]   (k in od, spot; cyclic: t-1 of
                     slot 0 is the last slot; otherwise every replica of slot 0 starts)
  step_up/step_down[c,t]: |N[c,t] - N[c,t-1]| <= step + share x N[c,t-1]  (N = sum_k n)

Objective: sum_g H (K[g] p_com[g] + O[g] p_own[g])
+ sum_t h_t sum_c (p_od n[c,od,t] + p_spot' n[c,spot,t])
+ sum warm-up_c (p_od u[c,od,t] + p_spot u[c,spot,t]) + a tiny per-replica tie-break;
p_spot' = p_spot (1 + preemptions/h x warm-up h): each preemption pays a new warm-up.
Committed replicas pay no warm-up (their GPUs are paid whether they serve or not). A GPU
with owned GPUs has the committed tier even without a committed price (then K[g] = 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hetplan.candidates import Candidate
from hetplan.milp.formulation import LINK_UTILIZATION, ONE_OF_KEYS, TIE_BREAK, add_one_of
from hetplan.milp.lp import LinearProgram, Solution
from hetplan.schedule.curve_rows import add_slot_rows, planned_held
from hetplan.schedule.tiers import GpuTiers
from hetplan.slo_capacity import PoolCurve

KINDS = ("committed", "on_demand", "spot")


@dataclass(frozen=True)
class ScheduleProblem:
    candidates: Sequence[Candidate]
    class_names: tuple[str, ...]
    rates_rps: np.ndarray                  # (slots, classes)
    slot_hours: np.ndarray                 # (slots,)
    rho: dict[str, float]                  # candidate key -> target utilization
    tiers: dict[str, GpuTiers]             # GPU -> tier prices
    warmup_h: dict[str, float]             # candidate key -> warm-up hours
    spot_loss_h: float = 0.0               # hours a preempted replica is lost beyond warm-up
    availability: dict[str, int] = field(default_factory=dict)
    allow_cross_vendor: bool = False
    kv_bytes_per_request: dict[tuple[str, str], float] | None = None
    kv_link_bytes_per_s: float | None = None
    max_step_replicas: int | None = None   # None: no change limit
    max_step_share: float = 0.0
    max_spot_share: float = 1.0
    cyclic: bool = True
    warmup: bool = True                    # charge warm-ups (off in the per-slot relaxation)
    # operational cost of a pool used in any slot, $/h over the horizon (the planner's
    # `constraints.pool_cost_usd_per_hour`); reported apart from the GPU cost
    pool_cost_usd_per_hour: float = 0.0
    mip_rel_gap: float = 1e-6
    tie_break: float = TIE_BREAK           # $/h per replica among equal-cost schedules
    fixed_committed_gpus: dict[str, int] | None = None   # GPU -> K fixed (decomposition)
    # queueing sizing (`curve_rows.py`): candidate key -> U(n) at the sizing percentile, and
    # U(n) at the SLO's for the one-spot-replica-down rule; None: the rho row for all
    curves: dict[str, PoolCurve] | None = None
    down_curves: dict[str, PoolCurve] | None = None

    @property
    def num_slots(self) -> int:
        return int(self.rates_rps.shape[0])

    def price(self, c: Candidate, kind: str) -> float | None:
        """$/h of one replica of c in tier `kind` (spot with its preemption re-warm-ups)."""
        t = self.tiers[c.shape.gpu]
        per_gpu = {"committed": t.committed_usd_per_hour, "on_demand": t.on_demand_usd_per_hour,
                   "spot": t.spot_usd_per_hour}[kind]
        if kind == "committed" and per_gpu is None and t.owned_gpus:
            per_gpu = t.owned_usd_per_hour
        if per_gpu is None:
            return None
        if kind == "spot":
            per_gpu *= 1.0 + t.spot_preemptions_per_hour * self.warmup_h[c.key]
        return per_gpu * c.num_gpus

    def spot_capacity_share(self, c: Candidate) -> float:
        """Share of a spot replica's capacity left after expected preemption downtime."""
        lost = self.tiers[c.shape.gpu].spot_preemptions_per_hour * (
            self.warmup_h[c.key] + self.spot_loss_h)
        return max(0.0, 1.0 - lost)


class ScheduleFormulation:
    def __init__(self, p: ScheduleProblem):
        self.p = p
        self.lp = LinearProgram()
        self.T = p.num_slots
        self.n: dict[tuple[int, str, int], int] = {}
        self.x: dict[tuple[int, str, int], int] = {}
        self.u: dict[tuple[int, str, int], int] = {}
        self.commit: dict[str, int] = {}
        self.owned: dict[str, int] = {}         # GPU -> its fixed owned-GPUs variable
        self.pool_open: dict[int, int] = {}
        # (candidate, slot) -> (N, step binaries, tail, spot used) of its curve rows
        self.steps: dict[tuple[int, int], tuple] = {}
        self.index = {c.key: i for i, c in enumerate(p.candidates)}
        self.ub = [self._upper_bound(c) for c in p.candidates]
        self._variables()
        self.demand()
        self.capacity()
        self.committed()
        self.availability()
        self.spot_share()
        self.kv_bandwidth()
        self.pools_open()
        self.vendor_compat()
        self.started()
        self.change_limits()
        self.objective()
        self.lp.mip_rel_gap = p.mip_rel_gap

    # ---- variables -------------------------------------------------------------------
    def kinds(self, c: Candidate) -> list[str]:
        return [k for k in KINDS if self.p.price(c, k) is not None
                and (k != "spot" or self.p.spot_capacity_share(c) > 0)]

    def max_load(self, c: Candidate, t: int) -> float:
        """Replica-equivalents of load on c in slot t were all it can serve routed there."""
        return sum(self.p.rates_rps[t, j] / c.capacity(w)
                   for j, w in enumerate(self.p.class_names) if c.capacity(w) > 0)

    def curve(self, c: Candidate) -> PoolCurve | None:
        return (self.p.curves or {}).get(c.key)

    def _upper_bound(self, c: Candidate) -> int:
        """Replicas of c enough for the peak slot alone (at the worst tier's capacity;
        under its curve, all spot with one down)."""
        p = self.p
        share = p.spot_capacity_share(c) if "spot" in self.kinds(c) else 1.0
        peak = max(self.max_load(c, t) for t in range(self.T))
        bound = int(peak / (p.rho[c.key] * share)) + 1
        if (u := self.curve(c)) is not None:
            down = (p.down_curves or {}).get(c.key)
            n = first = u.replicas_for(peak / share)
            while planned_held(u, n, n, share, down) < peak and n < first + 16:
                n += 1                  # (a replica or two more: the spot-down rule)
            bound = max(bound, n)
        if c.shape.gpu in p.availability:
            bound = min(bound, p.availability[c.shape.gpu] // c.num_gpus)
        return bound

    def _variables(self) -> None:
        p = self.p
        gpus = sorted({c.shape.gpu for c in p.candidates
                       if p.tiers[c.shape.gpu].committed_usd_per_hour is not None})
        for g in gpus:
            fixed = (p.fixed_committed_gpus or {}).get(g)
            self.commit[g] = self.lp.add_var(
                f"committed_gpus[{g}]", 0 if fixed is None else fixed,
                max(0, p.availability.get(g, float("inf")) - p.tiers[g].owned_gpus)
                if fixed is None else fixed, integer=True)
        for g, t in sorted(p.tiers.items()):    # paid even where no candidate runs on g
            if t.owned_gpus:
                self.owned[g] = self.lp.add_var(f"owned_gpus[{g}]", t.owned_gpus,
                                                t.owned_gpus)
        for t in range(self.T):
            for i, c in enumerate(p.candidates):
                for k in self.kinds(c):
                    self.n[i, k, t] = self.lp.add_var(f"n[{c.key},{k},{t}]", 0, self.ub[i],
                                                      integer=True)
                for w in p.class_names:
                    if c.capacity(w) > 0:
                        self.x[i, w, t] = self.lp.add_var(f"x[{c.key},{w},{t}]")

    def total(self, i: int, t: int) -> dict[int, float]:
        """N[c,t]: replicas of candidate i in slot t over all tiers, as terms."""
        return {self.n[i, k, t]: 1.0 for k in KINDS if (i, k, t) in self.n}

    def _prev(self, t: int) -> int | None:
        return (t - 1) % self.T if (t > 0 or self.p.cyclic) and self.T > 1 else None

    # ---- constraint families -----------------------------------------------------------
    def demand(self) -> None:
        p = self.p
        for t in range(self.T):
            for phase in ("prefill", "decode"):
                for j, w in enumerate(p.class_names):
                    terms = {self.x[i, w, t]: 1.0 for i, c in enumerate(p.candidates)
                             if (c.role in (phase, "colocated")) and (i, w, t) in self.x}
                    self.lp.add_constraint(f"demand_{phase}[{w},{t}]", terms, "==",
                                           float(p.rates_rps[t, j]))

    def capacity(self) -> None:
        p = self.p
        for t in range(self.T):
            for i, c in enumerate(p.candidates):
                terms = {self.x[i, w, t]: 1.0 / c.capacity(w) for w in p.class_names
                         if (i, w, t) in self.x}
                if (u := self.curve(c)) is not None:
                    self.steps[i, t] = add_slot_rows(
                        self, i, t, terms, u, (p.down_curves or {}).get(c.key),
                        self.max_load(c, t))
                    continue
                rho = p.rho[c.key]
                for k in KINDS:
                    if (i, k, t) in self.n:
                        share = p.spot_capacity_share(c) if k == "spot" else 1.0
                        terms[self.n[i, k, t]] = -rho * share
                self.lp.add_constraint(f"capacity[{c.key},{t}]", terms, "<=", 0.0)

    def committed(self) -> None:
        for t in range(self.T):
            for g in sorted(set(self.commit) | set(self.owned)):
                terms = {self.n[i, "committed", t]: float(c.num_gpus)
                         for i, c in enumerate(self.p.candidates)
                         if c.shape.gpu == g and (i, "committed", t) in self.n}
                terms |= {v[g]: -1.0 for v in (self.commit, self.owned) if g in v}
                self.lp.add_constraint(f"committed[{g},{t}]", terms, "<=", 0.0)

    def availability(self) -> None:
        p = self.p
        for g in sorted({c.shape.gpu for c in p.candidates} & set(p.availability)):
            for t in range(self.T):
                terms: dict[int, float] = {}
                for i, c in enumerate(p.candidates):
                    if c.shape.gpu == g:
                        terms |= {v: float(c.num_gpus) for v in self.total(i, t)}
                self.lp.add_constraint(f"availability[{g},{t}]", terms, "<=",
                                       p.availability[g])

    def spot_share(self) -> None:
        p = self.p
        if p.max_spot_share >= 1.0:
            return
        for t in range(self.T):
            terms: dict[int, float] = {}
            for i, c in enumerate(p.candidates):
                for k in KINDS:
                    if (i, k, t) in self.n:
                        terms[self.n[i, k, t]] = c.num_gpus * ((k == "spot") - p.max_spot_share)
            if any(k == "spot" for (_, k, tt) in self.n if tt == t):
                self.lp.add_constraint(f"spot_share[{t}]", terms, "<=", 0.0)

    def kv_bandwidth(self) -> None:
        p = self.p
        bw, kvb = p.kv_link_bytes_per_s, p.kv_bytes_per_request
        if not bw or not kvb:
            return
        for t in range(self.T):
            for role, family in (("prefill", "kv_bandwidth_out"), ("decode", "kv_bandwidth_in")):
                terms: dict[int, float] = {}
                for i, c in enumerate(p.candidates):
                    if c.role != role:
                        continue
                    for w in p.class_names:       # in link-seconds per second: bytes / bw
                        if (i, w, t) in self.x:       # (bytes/s rows spanned 1e-3..7e10)
                            terms[self.x[i, w, t]] = kvb[c.shape.kv_dtype, w] / bw
                    for v in self.total(i, t):
                        terms[v] = -LINK_UTILIZATION * c.num_gpus
                if terms:
                    self.lp.add_constraint(f"{family}[fabric,{t}]", terms, "<=", 0.0)

    def _one_of(self, family: str, key_of) -> None:
        """With pool_open (a pool cost), one row per candidate, pool_open[c] <= its pick:
        the per-slot rows N[c,t] <= ub pick follow from it and pool_open's rows (the
        same schedules, an LP at least as tight), and HiGHS's root probing, which followed
        each of them from one fractional binary to every slot of the other vendor's
        candidates, kept 270k implied-bound cuts of them on the week bench (~15k now)."""
        if self.pool_open:
            def usage(i, c):
                return [("", {self.pool_open[i]: 1.0}, 1.0)]
        else:
            def usage(i, c):
                return [(f",{t}", self.total(i, t), float(self.ub[i])) for t in range(self.T)]
        add_one_of(self.lp, self.p.candidates, family, key_of, usage)

    def vendor_compat(self) -> None:
        if not self.p.allow_cross_vendor:
            self._one_of("vendor_compat", ONE_OF_KEYS["vendor_compat"])
        self._one_of("kv_format", ONE_OF_KEYS["kv_format"])

    def started(self) -> None:
        if not self.p.warmup:
            return
        for (i, k, t), v in list(self.n.items()):
            if k == "committed":
                continue
            c = self.p.candidates[i]
            u = self.u[i, k, t] = self.lp.add_var(f"started[{c.key},{k},{t}]", 0, self.ub[i])
            terms = {u: 1.0, v: -1.0}
            prev = self._prev(t)
            if prev is not None:
                terms[self.n[i, k, prev]] = 1.0
            self.lp.add_constraint(f"started[{c.key},{k},{t}]", terms, ">=", 0.0)

    def change_limits(self) -> None:
        p = self.p
        if p.max_step_replicas is None:
            return
        for t in range(self.T):
            prev = self._prev(t)
            if prev is None:
                continue
            for i, c in enumerate(p.candidates):
                now, before = self.total(i, t), self.total(i, prev)
                up = dict(now)
                down = {v: -1.0 for v in now}
                for v in before:
                    up[v] = -1.0 - p.max_step_share
                    down[v] = 1.0 - p.max_step_share
                self.lp.add_constraint(f"step_up[{c.key},{t}]", up, "<=", p.max_step_replicas)
                self.lp.add_constraint(f"step_down[{c.key},{t}]", down, "<=",
                                       p.max_step_replicas)

    def pools_open(self) -> None:
        """pool_open[c] = 1 when candidate c has replicas in any slot (charged the pool
        cost over the horizon): fewer, steadier pools, as the planner prefers."""
        if self.p.pool_cost_usd_per_hour <= 0:
            return
        for i, c in enumerate(self.p.candidates):
            y = self.pool_open[i] = self.lp.add_var(f"pool_open[{c.key}]", 0, 1, integer=True)
            for t in range(self.T):
                terms = self.total(i, t)
                terms[y] = -float(self.ub[i])
                self.lp.add_constraint(f"pool_open[{c.key},{t}]", terms, "<=", 0.0)

    def objective(self) -> None:
        p = self.p
        hours = float(p.slot_hours.sum())
        obj: dict[int, float] = {y: hours * p.pool_cost_usd_per_hour
                                 for y in self.pool_open.values()}
        for g, v in self.commit.items():
            obj[v] = hours * p.tiers[g].committed_usd_per_hour
        for g, v in self.owned.items():
            obj[v] = hours * p.tiers[g].owned_usd_per_hour
        for (i, k, t), v in self.n.items():
            c = p.candidates[i]
            price = 0.0 if k == "committed" else p.price(c, k)
            obj[v] = p.slot_hours[t] * (price + p.tie_break)
        for (i, k, t), v in self.u.items():
            c = p.candidates[i]
            obj[v] = p.warmup_h[c.key] * p.price(c, k)
        self.lp.objective = obj


@dataclass(frozen=True)
class ScheduleOutcome:
    """The solved schedule: replicas per (candidate key, tier) per slot, committed GPUs
    (bought and owned: what committed replicas may run on), and its cost split by component
    (from the values, without the tie-break; `owned` only where GPUs are owned)."""

    solution: Solution
    replicas: dict[tuple[str, str], list[int]]     # (candidate key, tier) -> per slot
    committed_gpus: dict[str, int]                 # GPU -> count, owned ones included
    cost_usd: dict[str, float]                     # committed / on_demand / spot / warmup
    #                                                (/ owned)
    pool_cost_usd: float                           # operational: pools used x $/h x hours
    slot_cost_usd: list[float]                     # per slot, committed spread by hours
    formulation: ScheduleFormulation

    @property
    def total_cost_usd(self) -> float:
        return sum(self.cost_usd.values())
