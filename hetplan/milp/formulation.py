"""The planning MILP, written family by family.

Sets: candidates c (shape x role), classes w. Variables: n[c] integer replicas; x[c,w] >= 0
requests/s of class w served by c (only where c has capacity for w); in max-goodput mode a
scale s >= 0 on every class's rate.

  demand_prefill[w]:  sum_{c in P u C} x[c,w] = rate_w * s
  demand_decode[w]:   sum_{c in D u C} x[c,w] = rate_w * s      (colocated counts in both)
  capacity[c]:        sum_w x[c,w] / mu[c,w] <= rho_c * n[c]   (rho_c: decode's own rho if set,
                      times the candidate's learnt capacity scale, if any)
  availability[g]:    sum_{c on g} gpus_c * n[c] <= available_g
  budget:             sum_c price_c * n[c] <= budget
  vendor_compat[c]:   n[c] <= M * u[vendor(c)],  sum_v u[v] <= 1   (P/D only, when
                      cross-vendor hand-off is not allowed)
  kv_format[c]:       n[c] <= M * f[kv_dtype(c)],  sum_d f[d] <= 1  (P and D share one KV dtype)
  kv_bandwidth_out / kv_bandwidth_in: KV bytes/s leaving prefill (entering decode) GPUs
                      <= link bytes/s x rho_link x their GPU count (one NIC per GPU)
  capacity[c] with an inventory's spot headroom h counts each replica at 1 - h x the spot
                      share of its GPU type's nodes (exact when a pool fills the type).
  n_plus_one[c]:      (inventory with N+1) spare replicas s[c] >= pp n[c] / nodes able to
                      hold c, s[c] >= [n[c] > 0], and capacity[c] counts n[c] - s[c] only:
                      spread over the nodes, losing one node loses at most s[c] replicas

Objective: min sum_c price_c n[c] (+ a tiny per-replica tie-break), or max s under the
budget (minus a tiny cost term so equal-goodput plans prefer the cheaper).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hetplan.candidates import Candidate, ClassLike
from hetplan.milp.lp import LinearProgram

TIE_BREAK = 1e-4      # $/h per replica: among equal-cost plans prefer fewer replicas
LINK_UTILIZATION = 0.8


@dataclass(frozen=True)
class Problem:
    """Everything the MILP needs, already reduced to numbers."""

    candidates: Sequence[Candidate]
    classes: Sequence[ClassLike]
    utilization: float                            # rho
    availability: dict[str, int]                  # GPU -> max GPUs (absent: unlimited)
    budget_usd_per_hour: float | None = None
    allow_cross_vendor: bool = False
    kv_bytes_per_request: dict[tuple[str, str], float] | None = None   # (kv_dtype, class)
    kv_link_bytes_per_s: float | None = None      # per GPU NIC; None: not constrained
    objective: str = "min_cost"
    n_plus_one_nodes: dict[str, dict[int, int]] | None = None   # GPU -> {TP: nodes >= TP}
    usable_share: dict[str, float] | None = None  # GPU -> share of capacity counted (spot)
    decode_utilization: float | None = None       # rho of decode candidates (None: rho)
    # candidate key -> multiplier of its rho, learnt by simulating (the tuner,
    # hetplan/simulate/tuner.py); absent keys: 1
    capacity_scale: dict[str, float] | None = None


class Formulation:
    """Builds the LinearProgram and remembers which variable is which."""

    def __init__(self, p: Problem):
        self.p = p
        self.lp = LinearProgram()
        self.n: dict[int, int] = {}                    # candidate index -> var
        self.x: dict[tuple[int, str], int] = {}        # (candidate, class) -> var
        self.scale: int | None = None
        self.spare: dict[int, int] = {}                # candidate index -> spare replicas
        self.ub = [self._upper_bound(c) for c in p.candidates]
        self._variables()
        self.demand()
        self.capacity()
        self.availability()
        self.budget()
        self.vendor_compat()
        self.kv_format()
        self.kv_bandwidth()
        self.objective()

    def rho(self, c: Candidate) -> float:
        """Target utilization of candidate c's replicas."""
        scale = (self.p.capacity_scale or {}).get(c.key, 1.0)
        if c.role == "decode" and self.p.decode_utilization is not None:
            return self.p.decode_utilization * scale
        return self.p.utilization * scale

    # ---- variables -------------------------------------------------------------------
    def _upper_bound(self, c: Candidate) -> int:
        """Most replicas of c an optimal plan can use (its upper bound and big-M): enough to
        carry every class alone plus enough GPUs for all KV traffic; in goodput mode, what
        the budget buys; never more than the GPU's availability allows."""
        p = self.p
        if p.objective == "max_goodput" and p.budget_usd_per_hour:
            bound = p.budget_usd_per_hour / c.price_usd_per_hour
        else:
            bound = sum(w.rate_rps / (c.capacity(w.name) * self.rho(c))
                        for w in p.classes if c.capacity(w.name) > 0)
            if p.kv_link_bytes_per_s and p.kv_bytes_per_request and c.role != "colocated":
                kv = sum(w.rate_rps * p.kv_bytes_per_request[c.shape.kv_dtype, w.name]
                         for w in p.classes)
                bound += kv / (p.kv_link_bytes_per_s * LINK_UTILIZATION * c.num_gpus)
        if p.n_plus_one_nodes is not None:          # room for the spares
            nodes = p.n_plus_one_nodes.get(c.shape.gpu, {}).get(c.shape.gpus_per_stage, 0)
            bound += bound * c.shape.pp / max(1, nodes) + 1
        if c.shape.gpu in p.availability:
            bound = min(bound, p.availability[c.shape.gpu] / c.num_gpus)
        return int(min(1e6, bound)) + 1

    def _variables(self) -> None:
        for i, c in enumerate(self.p.candidates):
            self.n[i] = self.lp.add_var(f"n[{c.key}]", 0, self.ub[i], integer=True)
            for w in self.p.classes:
                if c.capacity(w.name) > 0:
                    self.x[i, w.name] = self.lp.add_var(f"x[{c.key},{w.name}]")
        if self.p.objective == "max_goodput":
            self.scale = self.lp.add_var("goodput_scale", 0.0)
        if self.p.n_plus_one_nodes is not None:
            for i, c in enumerate(self.p.candidates):
                self.spare[i] = self.lp.add_var(f"spare[{c.key}]", 0, self.ub[i], integer=True)

    def _serves(self, phase: str, c: Candidate) -> bool:
        return c.role == "colocated" or c.role == phase

    # ---- constraint families -----------------------------------------------------------
    def demand(self) -> None:
        for phase in ("prefill", "decode"):
            for w in self.p.classes:
                terms = {self.x[i, w.name]: 1.0 for i, c in enumerate(self.p.candidates)
                         if self._serves(phase, c) and (i, w.name) in self.x}
                if self.scale is not None:
                    terms[self.scale] = -w.rate_rps
                    self.lp.add_constraint(f"demand_{phase}[{w.name}]", terms, "==", 0.0)
                else:
                    self.lp.add_constraint(f"demand_{phase}[{w.name}]", terms, "==", w.rate_rps)

    def capacity(self) -> None:
        for i, c in enumerate(self.p.candidates):
            terms = {self.x[i, w.name]: 1.0 / c.capacity(w.name) for w in self.p.classes
                     if (i, w.name) in self.x}
            share = (self.p.usable_share or {}).get(c.shape.gpu, 1.0)
            terms[self.n[i]] = -self.rho(c) * share
            if i in self.spare:
                terms[self.spare[i]] = self.rho(c) * share
            self.lp.add_constraint(f"capacity[{c.key}]", terms, "<=", 0.0)
        self.n_plus_one()

    def n_plus_one(self) -> None:
        for i, c in enumerate(self.p.candidates):
            if i not in self.spare:
                continue
            nodes = self.p.n_plus_one_nodes.get(c.shape.gpu, {}).get(c.shape.gpus_per_stage, 0)
            if nodes == 0:        # no node holds it: the replica count must stay 0
                self.lp.add_constraint(f"n_plus_one[{c.key}]", {self.n[i]: 1.0}, "<=", 0.0)
                continue
            used = self.lp.add_var(f"used[{c.key}]", 0, 1, integer=True)
            self.lp.add_constraint(f"n_plus_one[{c.key},used]",
                                   {self.n[i]: 1.0, used: -float(self.ub[i])}, "<=", 0.0)
            self.lp.add_constraint(f"n_plus_one[{c.key},one]", {self.spare[i]: 1.0, used: -1.0},
                                   ">=", 0.0)
            self.lp.add_constraint(f"n_plus_one[{c.key},spread]",
                                   {self.spare[i]: float(nodes), self.n[i]: -float(c.shape.pp)},
                                   ">=", 0.0)

    def availability(self) -> None:
        for g in sorted({c.shape.gpu for c in self.p.candidates}):
            if g not in self.p.availability:
                continue
            terms = {self.n[i]: float(c.num_gpus) for i, c in enumerate(self.p.candidates)
                     if c.shape.gpu == g}
            self.lp.add_constraint(f"availability[{g}]", terms, "<=", self.p.availability[g])

    def budget(self) -> None:
        if self.p.budget_usd_per_hour is None:
            return
        terms = {self.n[i]: c.price_usd_per_hour for i, c in enumerate(self.p.candidates)}
        self.lp.add_constraint("budget", terms, "<=", self.p.budget_usd_per_hour)

    def _one_of(self, family: str, key_of) -> None:
        """Disaggregated candidates must all share one value of key_of(c)."""
        split = [(i, c) for i, c in enumerate(self.p.candidates) if c.role != "colocated"]
        keys = sorted({key_of(c) for _, c in split})
        if len(keys) < 2:
            return
        pick = {k: self.lp.add_var(f"{family}_pick[{k}]", 0, 1, integer=True) for k in keys}
        self.lp.add_constraint(f"{family}[one]", {v: 1.0 for v in pick.values()}, "<=", 1)
        for i, c in split:
            self.lp.add_constraint(f"{family}[{c.key}]",
                                   {self.n[i]: 1.0, pick[key_of(c)]: -self.ub[i]},
                                   "<=", 0.0)

    def vendor_compat(self) -> None:
        if not self.p.allow_cross_vendor:
            self._one_of("vendor_compat", lambda c: c.vendor)

    def kv_format(self) -> None:
        self._one_of("kv_format", lambda c: c.shape.kv_dtype)

    def kv_bandwidth(self) -> None:
        bw, kvb = self.p.kv_link_bytes_per_s, self.p.kv_bytes_per_request
        if not bw or not kvb:
            return
        for role, family in (("prefill", "kv_bandwidth_out"), ("decode", "kv_bandwidth_in")):
            terms: dict[int, float] = {}
            for i, c in enumerate(self.p.candidates):
                if c.role != role:
                    continue
                for w in self.p.classes:
                    if (i, w.name) in self.x:
                        terms[self.x[i, w.name]] = kvb[c.shape.kv_dtype, w.name]
                terms[self.n[i]] = -bw * LINK_UTILIZATION * c.num_gpus
            if terms:
                self.lp.add_constraint(f"{family}[fabric]", terms, "<=", 0.0)

    def objective(self) -> None:
        cost = {self.n[i]: c.price_usd_per_hour + TIE_BREAK
                for i, c in enumerate(self.p.candidates)}
        if self.scale is None:
            self.lp.objective = cost
            return
        self.lp.maximize = True
        self.lp.objective = {self.scale: 1.0, **{v: -1e-6 * k for v, k in cost.items()}}
