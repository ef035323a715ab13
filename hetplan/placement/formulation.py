"""The placement MILP over (pool x node group) replica counts.

Sets: pools p (from the sized plan), node groups g (interchangeable nodes, `groups.py`),
fabrics a, b, disaggregated classes w. Variables: y[p,g] integer new replicas of p in g
(pinned survivors of an earlier placement are constants), L[p] integer replicas of p one node
may hold (N+1 only), f[w,a,b] >= 0 requests/s of class w whose prefill runs in fabric a and
decode in fabric b.

  pool_total[p]:     sum_g (pin + y)[p,g] >= sized replicas of p
  packing[g,tp>=t]:  sum_{p: tp_p >= t} tp_p pp_p y[p,g] <= sum_{k in g} floor(free_k / t) t
                     (TP groups inside one node; exact for power-of-two TP sizes without
                     per-node caps; when N+1 caps and mixed sizes defeat it, packing reports
                     the GPUs it could not place and the group's room is cut by them)
  reliability[p]:    sum_g (1 - h spot_g)(pin + y)[p,g] - L[p] >= load_p / rho_p
                     (h: spot headroom; L[p] only with N+1: losing any node leaves the rest)
  spread[p,g]:       pp_p (pin + y)[p,g] <= N_g L[p]             (N+1 only)
  nic[g]:            sum_p kv_per_replica_p (pin + y)[p,g] <= N_g nic_g rho_link
  kv_flow[w]:        sum_{a,b} f[w,a,b] = disaggregated rate of w
  kv_produce[w,a]:   sum_b f[w,a,b] <= sum_{prefill p, g in a} rate_pw / n_p (pin + y)[p,g]
  kv_consume[w,b]:   sum_a f[w,a,b] <= sum_{decode p, g in b} rate_pw / n_p (pin + y)[p,g]
  link[a->b]:        sum_w kv_w f[w,a,b] <= capacity_ab rho_link   (no link: f = 0)
  fabric[a]:         sum_w kv_w f[w,a,a] <= capacity_a rho_link    (when the fabric has one)

Objective: min $/h of new replicas + a small charge per Gb/s of KV crossing fabrics (pair
prefill and decode inside a fabric when the cost is equal). No tie-break terms: among equal
plans the solver's (deterministic, single-threaded) choice stands; tiny tie-breaks made
HiGHS spend minutes proving optimality over near-symmetric groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hetplan.enums import Role
from hetplan.milp.formulation import LINK_UTILIZATION
from hetplan.milp.lp import LinearProgram
from hetplan.placement.groups import Group, PoolNeed
from hetplan.placement.inventory import Inventory

CROSS_FABRIC_USD_PER_GBPS = 1e-3


@dataclass(frozen=True)
class Options:
    n_plus_one: bool = False
    spot_headroom: float = 0.0              # share of a spot replica's capacity not counted
    use_kv: bool = True                     # False: drop NIC/link/fabric limits (explain)
    use_reliability: bool = True            # False: drop N+1 and spot headroom (explain)


@dataclass
class Instance:
    pools: list[PoolNeed]
    groups: list[Group]
    inventory: Inventory
    free: dict[str, list[int]]              # group -> free GPUs per node (after pins)
    pinned: dict[tuple[str, str], int]      # (pool, group) -> pinned replicas
    kv_bytes: dict[str, float]              # class -> KV bytes per request
    cut_gpus: dict[str, int] = field(default_factory=dict)   # group -> GPUs packing lost


class PlacementModel:
    def __init__(self, inst: Instance, opt: Options):
        self.i, self.o = inst, opt
        self.lp = LinearProgram()
        self.y: dict[tuple[int, int], int] = {}
        self.L: dict[int, int] = {}
        self.f: dict[tuple[str, str, str], int] = {}
        self.fabrics = inst.inventory.fabric_names()
        self._variables()
        self.pool_total()
        self.packing()
        if opt.use_reliability:
            self.reliability()
        if opt.use_kv:
            self.nic()
        self.kv_flows()
        self.objective()

    # ---- helpers ------------------------------------------------------------------------
    def _count(self, pi: int, gi: int) -> tuple[dict[int, float], float]:
        """(pin + y)[p,g] as (terms, constant)."""
        p, g = self.i.pools[pi], self.i.groups[gi]
        terms = {self.y[pi, gi]: 1.0} if (pi, gi) in self.y else {}
        return terms, float(self.i.pinned.get((p.name, g.name), 0))

    def _fits(self, p: PoolNeed, g: Group) -> bool:
        return p.gpu == g.gpu and p.tp <= g.gpus_per_node

    @property
    def n_plus_one(self) -> bool:
        return self.o.use_reliability and self.o.n_plus_one

    def _variables(self) -> None:
        for pi, p in enumerate(self.i.pools):
            for gi, g in enumerate(self.i.groups):
                if not self._fits(p, g):
                    continue
                room = sum(f // p.tp for f in self.i.free[g.name]) // p.pp
                self.y[pi, gi] = self.lp.add_var(f"y[{p.name},{g.name}]", 0, room, integer=True)
            if self.n_plus_one:
                most = max([g.gpus_per_node // p.tp for g in self.i.groups if self._fits(p, g)],
                           default=1)
                self.L[pi] = self.lp.add_var(f"per_node[{p.name}]", 1, max(1, most),
                                             integer=True)
        for w in self._kv_classes():
            for a in self.fabrics:
                for b in self.fabrics:
                    if a == b or not self.o.use_kv or \
                            self.i.inventory.link_capacity_gbps(a, b) is not None:
                        self.f[w, a, b] = self.lp.add_var(f"f[{w},{a}->{b}]")

    def _kv_classes(self) -> list[str]:
        return sorted({w for p in self.i.pools if p.role == Role.PREFILL for w in p.class_rates})

    # ---- constraint families ----------------------------------------------------------
    def pool_total(self) -> None:
        for pi, p in enumerate(self.i.pools):
            terms, const = {}, 0.0
            for gi in range(len(self.i.groups)):
                t, c = self._count(pi, gi)
                terms.update(t)
                const += c
            self.lp.add_constraint(f"pool_total[{p.name}]", terms, ">=", p.base_replicas - const)

    def packing(self) -> None:
        for gi, g in enumerate(self.i.groups):
            here = [(pi, p) for pi, p in enumerate(self.i.pools) if (pi, gi) in self.y]
            for t in sorted({p.tp for _, p in here}):
                terms = {self.y[pi, gi]: float(p.tp * p.pp) for pi, p in here if p.tp >= t}
                room = sum((f // t) * t for f in self.i.free[g.name]) - \
                    self.i.cut_gpus.get(g.name, 0)
                self.lp.add_constraint(f"packing[{g.name},tp>={t}]", terms, "<=", room)

    def reliability(self) -> None:
        h = self.o.spot_headroom
        if not self.o.n_plus_one and h <= 0:
            return
        for pi, p in enumerate(self.i.pools):
            terms: dict[int, float] = {}
            const = 0.0
            for gi, g in enumerate(self.i.groups):
                t, c = self._count(pi, gi)
                keep = 1.0 - h if g.spot else 1.0
                terms.update({k: v * keep for k, v in t.items()})
                const += c * keep
            if self.n_plus_one:
                terms[self.L[pi]] = -1.0
            # sized pools meet load <= rho n exactly; the 1e-6 absorbs rounding in plan.json
            need = p.needed_replicas - 1e-6 - const
            self.lp.add_constraint(f"reliability[{p.name}]", terms, ">=", need)
            if not self.n_plus_one:
                continue
            for gi, g in enumerate(self.i.groups):
                t, c = self._count(pi, gi)
                if not t and not c:
                    continue
                terms = {k: v * p.pp for k, v in t.items()}
                terms[self.L[pi]] = -float(len(g.nodes))
                self.lp.add_constraint(f"spread[{p.name},{g.name}]", terms, "<=", -c * p.pp)

    def nic(self) -> None:
        for gi, g in enumerate(self.i.groups):
            terms: dict[int, float] = {}
            const = 0.0
            for pi, p in enumerate(self.i.pools):
                if p.kv_gbps_per_replica <= 0:
                    continue
                t, c = self._count(pi, gi)
                terms.update({k: v * p.kv_gbps_per_replica for k, v in t.items()})
                const += c * p.kv_gbps_per_replica
            if terms or const:
                cap = len(g.nodes) * g.nic_gbps * LINK_UTILIZATION
                self.lp.add_constraint(f"nic[{g.name}]", terms, "<=", cap - const)

    def kv_flows(self) -> None:
        inv = self.i.inventory
        for w in self._kv_classes():
            rate = sum(p.class_rates.get(w, 0.0) for p in self.i.pools if p.role == Role.PREFILL)
            self.lp.add_constraint(f"kv_flow[{w}]", {v: 1.0 for (c, _, _), v in self.f.items()
                                                      if c == w}, "==", rate)
            for role, family in ((Role.PREFILL, "kv_produce"), (Role.DECODE, "kv_consume")):
                for a in self.fabrics:
                    terms = {v: 1.0 for (c, s, d), v in self.f.items()
                             if c == w and (s if role == Role.PREFILL else d) == a}
                    const = 0.0
                    for pi, p in enumerate(self.i.pools):
                        if p.role != role or w not in p.class_rates:
                            continue
                        per = p.class_rates[w] / p.base_replicas
                        for gi, g in enumerate(self.i.groups):
                            if g.fabric != a:
                                continue
                            t, c = self._count(pi, gi)
                            terms.update({k: -v * per for k, v in t.items()})
                            const += c * per
                    self.lp.add_constraint(f"{family}[{w},{a}]", terms, "<=", const)
        if not self.o.use_kv:
            return
        for a in self.fabrics:
            for b in self.fabrics:
                cap = (inv.fabrics[a].capacity_gbps if a == b and a in inv.fabrics
                       else inv.link_capacity_gbps(a, b) if a != b else None)
                terms = {v: self.i.kv_bytes[w] * 8 / 1e9 for (w, s, d), v in self.f.items()
                         if (s, d) == (a, b)}
                if cap is not None and terms:
                    name = f"fabric[{a}]" if a == b else f"link[{a}->{b}]"
                    self.lp.add_constraint(name, terms, "<=", cap * LINK_UTILIZATION)

    def objective(self) -> None:
        obj: dict[int, float] = {}
        for (pi, gi), v in self.y.items():
            obj[v] = self.i.pools[pi].price_usd_per_hour
        for (w, a, b), v in self.f.items():
            if a != b:
                obj[v] = CROSS_FABRIC_USD_PER_GBPS * self.i.kv_bytes[w] * 8 / 1e9
        self.lp.objective = obj

    # ---- reading a solution -----------------------------------------------------------
    def counts(self, values: list[float]) -> dict[tuple[str, str], int]:
        """New replicas per (pool, group) in the solution (zeros left out)."""
        out = {}
        for (pi, gi), v in self.y.items():
            n = int(round(values[v]))
            if n > 0:
                out[self.i.pools[pi].name, self.i.groups[gi].name] = n
        return out

    def per_node(self, values: list[float]) -> dict[str, int]:
        return {self.i.pools[pi].name: int(round(values[v])) for pi, v in self.L.items()}

    def flows_gbps(self, values: list[float]) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for (w, a, b), v in self.f.items():
            out[a, b] = out.get((a, b), 0.0) + max(0.0, values[v]) * self.i.kv_bytes[w] * 8 / 1e9
        return out
