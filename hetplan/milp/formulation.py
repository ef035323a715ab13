"""The planning MILP, written family by family.

Sets: candidates c (shape x role), classes w. Variables: n[c] integer replicas; x[c,w] >= 0
requests/s of class w served by c (only where c has capacity for w); in max-goodput mode a
scale s >= 0 on every class's rate.

  demand_prefill[w]:  sum_{c in P u C} x[c,w] = rate_w * s
  demand_decode[w]:   sum_{c in D u C} x[c,w] = rate_w * s      (colocated counts in both)
  capacity[c]:        sum_w x[c,w] / mu[c,w] <= rho_c * n[c]   (rho_c: decode's own rho if set,
                      times the candidate's learnt capacity scale, if any)
                      or, with queueing sizing, <= U_c(n[c]) by incremental binaries
                      (`pool_sizing.py`; U from `hetplan.slo_capacity`)
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
  pool_open[c]:       (pool cost or cap set) binary y[c] >= n[c] / ub[c], and x[c,w] <=
                      rate_w y[c] per class (the tight form of the same link): c is a pool
  max_pools[role]:    sum_{c in role} y[c] <= max_pools_per_role
  (scope workload, `missing_classes`): binary m[w] "class w may miss"; z[c,w] >= 0 its rate
  served at the relaxed targets (capacity mu'[c,w] >= mu[c,w]), counted in demand, capacity
  and KV bandwidth like x;
  miss_route[w,phase]:   sum z[c,w] <= rate_w m[w];  slo_route[w,phase]: sum x[c,w] <=
                      rate_w (1 - m[w])  (a class is served all at the SLO or all relaxed)
  miss_budget:        sum_w rate_w m[w] <= share x sum_w rate_w  (share = 1 - percentile/100)

Objective: min sum_c price_c n[c] (+ a tiny per-replica tie-break) + pool_cost sum_c y[c],
or max s under the budget (minus a tiny cost term so equal-goodput plans prefer the
cheaper). The budget counts GPU cost only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hetplan.candidates import Candidate, ClassLike
from hetplan.milp.lp import LinearProgram
from hetplan.milp.pool_sizing import add_curve_capacity, replicas_bound
from hetplan.slo_capacity import PoolCurve, SizingInputs, pool_curves

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
    pool_cost_usd_per_hour: float = 0.0           # fixed $/h per distinct pool used
    max_pools_per_role: int | None = None
    # scope workload: candidate key -> class -> capacity at the relaxed targets a class
    # allowed to miss is sized at, and the largest request share such classes may carry
    relaxed_capacity: dict[str, dict[str, float]] | None = None
    miss_budget_share: float | None = None

    sizing: SizingInputs | None = None            # queueing sizing (None: utilization, rho)

    # candidate key -> multiplier of its rho, learnt by simulating (the tuner,
    # hetplan/simulate/tuner.py); absent keys: 1
    capacity_scale: dict[str, float] | None = None
    @property
    def simplifies(self) -> bool:
        """Whether the operational terms (pool cost, pool cap) are in the program."""
        return self.pool_cost_usd_per_hour > 0 or self.max_pools_per_role is not None


def target_rho(p: Problem, c: Candidate) -> float:
    """Target utilization of candidate c's replicas (decode's own rho if set, times the
    candidate's learnt capacity scale); the capacity schedule sizes replicas by it too."""
    scale = (p.capacity_scale or {}).get(c.key, 1.0)
    if c.role == "decode" and p.decode_utilization is not None:
        return p.decode_utilization * scale
    return p.utilization * scale


class Formulation:
    """Builds the LinearProgram and remembers which variable is which."""

    def __init__(self, p: Problem, curves: dict[str, PoolCurve] | None = None,
                 flow_rows: bool = False, ub_caps: dict[str, int] | None = None):
        """`curves`: the candidates' U(n) when already computed (a superset is fine);
        `flow_rows`: add `pool_sizing`'s per-class flow rows (valid inequalities that
        tighten the relaxation of curve candidates; min-cost programs only); `ub_caps`:
        candidate key -> a lower replica upper bound the caller has proven (`staged.py`)."""
        self.flow_rows = flow_rows
        self.p = p
        self.lp = LinearProgram()
        self.n: dict[int, int] = {}                    # candidate index -> var
        self.x: dict[tuple[int, str], int] = {}        # (candidate, class) -> var
        self.scale: int | None = None
        self.spare: dict[int, int] = {}                # candidate index -> spare replicas
        self.pool_open: dict[int, int] = {}            # candidate index -> binary y[c]
        self.z: dict[tuple[int, str], int] = {}        # (candidate, class) -> relaxed rate
        self.miss: dict[str, int] = {}                 # class -> binary m[w]
        self.picks: dict[str, tuple[dict, object]] = {}  # family -> (key -> binary, key_of)
        # queueing sizing: candidate key -> U(n) (`pool_sizing`); empty under utilization
        if p.sizing is None:
            self.curves: dict[str, PoolCurve] = {}
        elif curves is not None:
            self.curves = {c.key: curves[c.key] for c in p.candidates if c.key in curves}
        else:
            self.curves = pool_curves(p.candidates, p.classes, p.sizing)
        self.ub = [min(self._upper_bound(c), (ub_caps or {}).get(c.key, 10**9))
                   for c in p.candidates]
        self._variables()
        self.demand()
        self.capacity()
        self.availability()
        self.budget()
        self.vendor_compat()
        self.kv_format()
        self.kv_bandwidth()
        self.missing_classes()
        self.pools_open()
        self.objective()

    def rho(self, c: Candidate) -> float:
        return target_rho(self.p, c)

    # ---- variables -------------------------------------------------------------------
    def _upper_bound(self, c: Candidate) -> int:
        """Most replicas of c an optimal plan can use (its upper bound and big-M): enough to
        carry every class alone plus enough GPUs for all KV traffic; in goodput mode, what
        the budget buys; never more than the GPU's availability allows."""
        p = self.p
        if p.objective == "max_goodput" and p.budget_usd_per_hour:
            bound = p.budget_usd_per_hour / c.price_usd_per_hour
        else:
            rho = self.rho(c)
            caps = [(w.rate_rps, self._best_capacity(c, w.name)) for w in p.classes]
            bound = sum(rate / (cap * rho) for rate, cap in caps if cap > 0)
            bound = replicas_bound(self.curves.get(c.key), bound * rho
                                   / (p.usable_share or {}).get(c.shape.gpu, 1.0), bound)
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

    def relaxed_capacity(self, c: Candidate, w: str) -> float:
        """c's capacity for class w at the relaxed targets (0 without scope workload)."""
        if self.p.relaxed_capacity is None:
            return 0.0
        return (self.p.relaxed_capacity.get(c.key) or {}).get(w, 0.0)

    def _best_capacity(self, c: Candidate, w: str) -> float:
        return max(c.capacity(w), self.relaxed_capacity(c, w))

    def _variables(self) -> None:
        for i, c in enumerate(self.p.candidates):
            key = c.key
            self.n[i] = self.lp.add_var(f"n[{key}]", 0, self.ub[i], integer=True)
            for w in self.p.classes:
                if c.capacity(w.name) > 0:
                    self.x[i, w.name] = self.lp.add_var(f"x[{key},{w.name}]")
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
            if c.key in self.curves:
                rates = None if self.scale is not None or not self.flow_rows else {
                    self.x[i, w.name]: w.rate_rps for w in self.p.classes
                    if (i, w.name) in self.x}
                add_curve_capacity(self.lp, c.key, self.n[i], terms, self.curves[c.key],
                                   share, self.ub[i], self.spare.get(i), rates)
                continue
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
        pick = add_one_of(self.lp, self.p.candidates, family, key_of,
                          lambda i, c: [("", {self.n[i]: 1.0}, float(self.ub[i]))])
        if pick is not None:
            self.picks[family] = (pick, key_of)

    def vendor_compat(self) -> None:
        if not self.p.allow_cross_vendor:
            self._one_of("vendor_compat", ONE_OF_KEYS["vendor_compat"])

    def kv_format(self) -> None:
        self._one_of("kv_format", ONE_OF_KEYS["kv_format"])

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

    def pools_open(self) -> None:
        """Operational simplicity: y[c] = 1 when candidate c is a pool of the plan (n[c] > 0),
        charged `pool_cost_usd_per_hour` in the objective and capped per role."""
        if not self.p.simplifies:
            return
        for i, c in enumerate(self.p.candidates):
            y = self.pool_open[i] = self.lp.add_var(f"pool_open[{c.key}]", 0, 1, integer=True)
            self.lp.add_constraint(f"pool_open[{c.key}]",
                                   {self.n[i]: 1.0, y: -float(self.ub[i])}, "<=", 0.0)
            # the same link per routed class (x <= rate y): tighter than the replica big-M
            # in the LP relaxation, which keeps the branch and bound short
            for w in self.p.classes:
                for flows in (self.x, self.z):
                    if (i, w.name) in flows and self.scale is None:
                        self.lp.add_constraint(f"pool_open[{c.key},{w.name}]",
                                               {flows[i, w.name]: 1.0, y: -w.rate_rps},
                                               "<=", 0.0)
        cap = self.p.max_pools_per_role
        if cap is None:
            return
        for role in sorted({c.role for c in self.p.candidates}):
            terms = {self.pool_open[i]: 1.0 for i, c in enumerate(self.p.candidates)
                     if c.role == role}
            self.lp.add_constraint(f"max_pools[{role}]", terms, "<=", float(cap))

    def start_from(self, values: dict[str, float]) -> None:
        """Start the solver from a solution of the same program without the operational
        terms, or of the program over fewer candidates (`values`: variable name -> value):
        its variables as they were, each pool's y[c] open where it has replicas and the
        vendor / KV dtype picked that its pools use."""
        start = {k: values.get(v.name, 0.0) for k, v in enumerate(self.lp.vars)}
        for i, y in self.pool_open.items():
            start[y] = 1.0 if start[self.n[i]] > 0.5 else 0.0
        for pick, key_of in self.picks.values():     # one vendor / KV dtype: the one in use
            for k, v in pick.items():
                start[v] = float(any(start[self.n[i]] > 0.5 and key_of(c) == k
                                     for i, c in enumerate(self.p.candidates)
                                     if c.role != "colocated"))
        self.lp.start = start

    def missing_classes(self) -> None:
        """Scope workload: which classes may miss the SLO (m[w]), within the request budget;
        their rate moves from x (sized at the SLO) to z (sized at the relaxed targets). The z
        variables join the demand, capacity and KV-bandwidth rows built before them."""
        p = self.p
        if p.miss_budget_share is None or p.relaxed_capacity is None:
            return
        if self.scale is not None:
            raise ValueError("slo scope workload is planned for objective min_cost only")
        rows = {con.name: con for con in self.lp.constraints}
        total = sum(w.rate_rps for w in p.classes)
        for w in p.classes:
            m = self.miss[w.name] = self.lp.add_var(f"miss[{w.name}]", 0, 1, integer=True)
            for i, c in enumerate(p.candidates):
                mu = self.relaxed_capacity(c, w.name)
                if mu <= 0:
                    continue
                z = self.z[i, w.name] = self.lp.add_var(f"z[{c.key},{w.name}]")
                _add_terms(rows, f"capacity[{c.key}]", {z: 1.0 / mu})
                kvb = p.kv_bytes_per_request
                if p.kv_link_bytes_per_s and kvb and c.role in ("prefill", "decode"):
                    family = "kv_bandwidth_out" if c.role == "prefill" else "kv_bandwidth_in"
                    _add_terms(rows, f"{family}[fabric]", {z: kvb[c.shape.kv_dtype, w.name]})
            for phase in ("prefill", "decode"):
                serves = [i for i, c in enumerate(p.candidates) if self._serves(phase, c)]
                relaxed = {self.z[i, w.name]: 1.0 for i in serves if (i, w.name) in self.z}
                at_slo = {self.x[i, w.name]: 1.0 for i in serves if (i, w.name) in self.x}
                self.lp.add_constraint(f"miss_route[{w.name},{phase}]",
                                       {**relaxed, m: -w.rate_rps}, "<=", 0.0)
                self.lp.add_constraint(f"slo_route[{w.name},{phase}]",
                                       {**at_slo, m: w.rate_rps}, "<=", w.rate_rps)
        self.lp.add_constraint("miss_budget", {self.miss[w.name]: w.rate_rps for w in p.classes},
                               "<=", p.miss_budget_share * total)
        self._relaxed_demand()

    def _relaxed_demand(self) -> None:
        """Add the z variables to the demand rows built before they existed."""
        rows = {con.name: con for con in self.lp.constraints}
        for (i, w), z in self.z.items():
            c = self.p.candidates[i]
            for phase in ("prefill", "decode"):
                if self._serves(phase, c):
                    _add_terms(rows, f"demand_{phase}[{w}]", {z: 1.0})

    def objective(self) -> None:
        cost = {self.n[i]: c.price_usd_per_hour + TIE_BREAK
                for i, c in enumerate(self.p.candidates)}
        cost |= {y: self.p.pool_cost_usd_per_hour for y in self.pool_open.values()}
        if self.scale is None:
            self.lp.objective = cost
            return
        self.lp.maximize = True
        self.lp.objective = {self.scale: 1.0, **{v: -1e-6 * k for v, k in cost.items()}}


def _add_terms(rows: dict, name: str, terms: dict[int, float]) -> None:
    """Add terms to the left side of an existing constraint row (by name)."""
    row = rows.get(name)
    if row is None:
        raise KeyError(f"no constraint {name}")
    for k, v in terms.items():
        if v:
            row.terms[k] = row.terms.get(k, 0.0) + v


# what P and D pools must share (vendor_compat only when cross-vendor KV transfer is off)
ONE_OF_KEYS: dict[str, Callable[[Candidate], str]] = {
    "vendor_compat": lambda c: c.vendor,
    "kv_format": lambda c: c.shape.kv_dtype,
}


def add_one_of(lp: LinearProgram, candidates: Sequence[Candidate], family: str,
               key_of: Callable[[Candidate], str],
               usage: Callable[[int, Candidate], list[tuple[str, dict[int, float], float]]]
               ) -> dict[str, int] | None:
    """Disaggregated candidates must all share one value of key_of(c): one pick binary per
    value, at most one picked, and each of candidate i's usage rows (name suffix, terms,
    bound M) held to M x its value's pick. None (nothing added) with fewer than 2 values."""
    split = [(i, c) for i, c in enumerate(candidates) if c.role != "colocated"]
    keys = sorted({key_of(c) for _, c in split})
    if len(keys) < 2:
        return None
    pick = {k: lp.add_var(f"{family}_pick[{k}]", 0, 1, integer=True) for k in keys}
    lp.add_constraint(f"{family}[one]", {v: 1.0 for v in pick.values()}, "<=", 1)
    for i, c in split:
        for suffix, terms, bound in usage(i, c):
            row = dict(terms)
            row[pick[key_of(c)]] = -bound
            lp.add_constraint(f"{family}[{c.key}{suffix}]", row, "<=", 0.0)
    return pick
