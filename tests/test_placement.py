"""Placement on small inventories whose optimal placements are derived by hand: packing of
TP groups into nodes, prefill/decode pairing inside a fabric, link capacity, N+1 (checked by
removing every node in turn), spot headroom, and infeasible packing explained."""

from __future__ import annotations

import pytest

from hetplan.catalog import load_catalog
from hetplan.errors import Infeasible
from hetplan.placement import Reliability, load_inventory, place_plan
from hetplan.placement.place import PlacementInfeasible
from hetplan.plan import ClassRoute, Plan, Pool

RHO = 0.8
GB = 1e9                      # KV bytes per request in these fixtures: 1 GB = 8 Gb


def pool(name, role, gpu, tp, replicas, load, rate=10.0, pp=1, vendor="nvidia"):
    """A pool with `load` busy replica-equivalents (utilization = load / replicas)."""
    return Pool(name=name, role=role, gpu=gpu, vendor=vendor, tp=tp, pp=pp, weight_dtype="bf16",
                kv_dtype="bf16", replicas=replicas, gpus=replicas * tp * pp,
                cost_usd_per_hour=replicas * tp * pp * 2.0, utilization=load / replicas,
                routes=[ClassRoute(workload_class="c", rate_rps=rate)])


def plan_of(*pools: Pool) -> Plan:
    return Plan(scenario="t", model="m", status="optimal", gap=0.0, solver="highs",
                objective="min_cost", slo={}, pools=list(pools), classes=[], demand_rps=10.0,
                served_rps=10.0, tokens_per_second=1000.0, calibration_notes=[], notes=[],
                hetplan_version="0", target_utilization=RHO)


def inventory(write, nodes: list[str], extra: str = ""):
    """nodes: 'id gpu gpus rack fabric nic_gbps [spot]' lines."""
    rows = []
    for line in nodes:
        f = line.split()
        rows.append(f"  - {{id: {f[0]}, gpu: {f[1]}, gpus: {f[2]}, rack: {f[3]}, fabric: {f[4]}, "
                    f"nic_gbps: {f[5]}, spot: {'true' if len(f) > 6 else 'false'}}}")
    p = write("inv.yaml", "name: t\nnodes:\n" + "\n".join(rows) + "\n" + extra)
    return load_inventory(p, load_catalog())


def place(plan, inv, **kw):
    return place_plan(plan, inv, {("bf16", "c"): GB}, **kw)


def layout(plan) -> dict[str, list[tuple[str, int, tuple[int, ...]]]]:
    out: dict[str, list] = {}
    for s in plan.placement.shards:
        out.setdefault(s.node, []).append((s.pool, s.replica, tuple(s.gpu_indices)))
    return {k: sorted(v, key=lambda x: x[2]) for k, v in sorted(out.items())}


def test_tp_groups_pack_into_nodes_first_fit_decreasing(write):
    # 3 x TP4 + 2 x TP2 = 16 GPUs on two 8-GPU nodes: the only fit puts two TP4 groups on
    # n1 and the third TP4 plus both TP2 on n2; GPU indices are the lowest free ones.
    inv = inventory(write, ["n1 H100-SXM 8 r1 f1 400", "n2 H100-SXM 8 r1 f1 400"])
    plan = place(plan_of(pool("A", "colocated", "H100-SXM", 4, 3, 2.0),
                         pool("B", "colocated", "H100-SXM", 2, 2, 1.0)), inv)
    assert layout(plan) == {
        "n1": [("A", 0, (0, 1, 2, 3)), ("A", 1, (4, 5, 6, 7))],
        "n2": [("A", 2, (0, 1, 2, 3)), ("B", 0, (4, 5)), ("B", 1, (6, 7))]}
    assert plan.cost_usd_per_hour == pytest.approx(32.0)      # no spare added


def test_pipeline_stages_may_span_nodes(write):
    # TP8 x PP2 on two 8-GPU nodes: one stage per node.
    inv = inventory(write, ["n1 H100-SXM 8 r1 f1 400", "n2 H100-SXM 8 r1 f1 400"])
    plan = place(plan_of(pool("A", "colocated", "H100-SXM", 8, 1, 0.5, pp=2)), inv)
    stages = sorted((s.stage, s.node) for s in plan.placement.shards)
    assert stages == [(0, "n1"), (1, "n2")]


def test_infeasible_packing_names_the_gpu_type(write):
    # 3 x TP8 need 24 GPUs; two 8-GPU nodes hold 16.
    inv = inventory(write, ["n1 H100-SXM 8 r1 f1 400", "n2 H100-SXM 8 r1 f1 400"])
    with pytest.raises(Infeasible) as e:
        place(plan_of(pool("A", "colocated", "H100-SXM", 8, 3, 2.0)), inv)
    assert "node packing[H100-SXM]" in e.value.reasons[0]
    assert "24" in e.value.reasons[0] and "16" in e.value.reasons[0]


def test_tp_larger_than_any_node_is_infeasible(write):
    inv = inventory(write, ["n1 L40S 4 r1 f1 400"])
    with pytest.raises(Infeasible, match=r"node packing\[L40S\].*TP8.*at most 4"):
        place(plan_of(pool("A", "colocated", "L40S", 8, 1, 0.5)), inv)


def kv_plan(decode_replicas=2):
    return plan_of(pool("P", "prefill", "L40S", 2, 2, 1.5, rate=10.0),
                   pool("D", "decode", "H100-SXM", 2, decode_replicas, 1.5, rate=10.0))


def test_prefill_and_decode_paired_inside_a_fabric(write):
    # Decode fits in f1 (beside prefill) or f2; pairing inside f1 keeps 80 Gb/s of KV
    # (10 req/s x 1 GB) off the f1-f2 link, so the optimum puts both decode replicas in f1.
    inv = inventory(write, ["p1 L40S 8 r1 f1 400", "d1 H100-SXM 8 r2 f1 400",
                            "d2 H100-SXM 8 r3 f2 400"],
                    "links:\n  - {a: f1, b: f2, capacity_gbps: 1000}\n")
    plan = place(kv_plan(), inv)
    assert {s.node for s in plan.placement.shards if s.pool == "D"} == {"d1"}
    loads = {x.link: x.kv_gbps for x in plan.placement.link_loads}
    assert loads["f1"] == pytest.approx(80.0)
    assert loads["f1->f2"] == pytest.approx(0.0)


def test_cross_fabric_kv_uses_the_link_and_its_capacity_binds(write):
    nodes = ["p1 L40S 8 r1 f1 400", "d2 H100-SXM 8 r3 f2 400"]
    ok = inventory(write, nodes, "links:\n  - {a: f1, b: f2, capacity_gbps: 200}\n")
    plan = place(kv_plan(), ok)
    loads = {x.link: (x.kv_gbps, x.capacity_gbps) for x in plan.placement.link_loads}
    assert loads["f1->f2"] == pytest.approx((80.0, 200.0))
    # 80 Gb/s of KV on a 50 Gb/s link (40 usable at 80%): the link is named as binding.
    thin = inventory(write, nodes, "links:\n  - {a: f1, b: f2, capacity_gbps: 50}\n")
    with pytest.raises(Infeasible) as e:
        place(kv_plan(), thin)
    assert any(r.startswith("link[f1->f2]") and "80.0 Gb/s" in r for r in e.value.reasons)
    # no link at all: KV cannot cross.
    apart = inventory(write, nodes)
    with pytest.raises(Infeasible, match="no link joins"):
        place(kv_plan(), apart)


def test_node_nic_limits_kv(write):
    # Each prefill replica sends 40 Gb/s; a 40 Gb/s NIC carries 32: no node can hold one.
    inv = inventory(write, ["p1 L40S 8 r1 f1 40", "d1 H100-SXM 8 r2 f1 400"])
    with pytest.raises(Infeasible, match=r"nic\[f1/r1/L40Sx8/40G\]"):
        place(kv_plan(), inv)


def surviving_ok(plan) -> dict[str, list[str]]:
    """Independent N+1 check: for each node, drop every replica with a shard on it and test
    each pool's remaining replicas against its load at the target utilization."""
    short: dict[str, list[str]] = {}
    for node in {s.node for s in plan.placement.shards}:
        for p in plan.pools:
            hit = {s.replica for s in plan.placement.shards if s.pool == p.name and
                   s.node == node}
            load = p.utilization * p.replicas
            if (p.replicas - len(hit)) * plan.target_utilization < load - 1e-6:
                short.setdefault(node, []).append(p.name)
    return short


def test_n_plus_one_survives_every_single_node_loss(write):
    # load 3.2 at rho 0.8 needs 4 usable replicas. On 3 nodes with at most L per node,
    # T - L >= 4 and T <= 3L: L = 2, T = 6 is the least (L = 1 would need T = 5 > 3).
    inv = inventory(write, [f"n{i} H100-SXM 8 r1 f1 400" for i in (1, 2, 3)])
    base = plan_of(pool("A", "colocated", "H100-SXM", 1, 4, 3.2))
    plain = place(base, inv)
    assert surviving_ok(plain) == {"n1": ["A"]}        # first-fit stacks all 4 on n1
    safe = place(base, inv, reliability=Reliability(n_plus_one=True))
    assert safe.pools[0].replicas == 6
    assert safe.placement.spare_replicas == {"A": 2}
    assert safe.cost_usd_per_hour == pytest.approx(12.0)
    assert surviving_ok(safe) == {}
    assert sorted(len(v) for v in layout(safe).values()) == [2, 2, 2]
    assert any(n.startswith("N+1 verified") for n in safe.placement.notes)


def test_n_plus_one_on_a_single_node_is_explained(write):
    inv = inventory(write, ["n1 B200 8 r1 f1 400"])
    with pytest.raises(PlacementInfeasible) as e:
        place(plan_of(pool("A", "colocated", "B200", 1, 1, 0.5)), inv,
              reliability=Reliability(n_plus_one=True))
    assert e.value.reasons[0].startswith("reliability[A]")
    assert "1 healthy B200 node" in e.value.reasons[0]
    assert e.value.blocked == {"A"}


def test_spot_headroom_discounts_spot_replicas(write):
    # load 1.6 at rho 0.8 needs 2 usable replicas; one on-demand GPU gives 1, each spot
    # replica 0.5 at headroom 0.5, so two spot replicas are needed: 3 in all.
    inv = inventory(write, ["od H100-SXM 1 r1 f1 400", "sp H100-SXM 8 r1 f1 400 spot"])
    plan = place(plan_of(pool("A", "colocated", "H100-SXM", 1, 2, 1.6)), inv,
                 reliability=Reliability(spot_headroom=0.5))
    nodes = [s.node for s in plan.placement.shards]
    assert sorted(nodes) == ["od", "sp", "sp"]
    assert plan.placement.spare_replicas == {"A": 1}


def test_pinned_survivors_stay_and_only_lost_replicas_move(write):
    inv = inventory(write, [f"n{i} H100-SXM 8 r1 f1 400" for i in (1, 2, 3)])
    first = place(plan_of(pool("A", "colocated", "H100-SXM", 4, 4, 3.0)), inv)
    lost = {(s.pool, s.replica) for s in first.placement.shards if s.node == "n1"}
    pins = [s for s in first.placement.shards if s.node != "n1"]
    again = place(first, inv.without(["n1"]), pins=pins)
    assert len(lost) == 2
    assert all(p in again.placement.shards for p in pins)
    moved = [s for s in again.placement.shards if s not in pins]
    assert {(s.pool, s.replica) for s in moved} == lost
    assert {s.node for s in moved} == {"n3"}


@pytest.mark.parametrize("seed", range(6))
def test_n_plus_one_spares_match_brute_force(write, seed):
    """Fewest replicas meeting N+1 on random small inventories, against enumeration of
    every per-node distribution (a node holds at most its GPU count of TP1 replicas)."""
    import itertools
    import random
    rng = random.Random(seed)
    sizes = [rng.choice((4, 8)) for _ in range(rng.randint(2, 5))]
    load = round(rng.uniform(0.5, 0.8 * (sum(sizes) - max(sizes)) * 0.7), 3)
    base = max(1, -(-load // RHO))
    best = None
    for counts in itertools.product(*(range(s + 1) for s in sizes)):
        t = sum(counts)
        if t >= base and t - max(counts) >= load / RHO - 1e-6:
            best = t if best is None else min(best, t)
    inv = inventory(write, [f"n{i} H100-SXM {s} r{i % 2} f1 400" for i, s in enumerate(sizes)])
    plan = place(plan_of(pool("A", "colocated", "H100-SXM", 1, int(base), load)), inv,
                 reliability=Reliability(n_plus_one=True))
    assert plan.pools[0].replicas == best
    assert surviving_ok(plan) == {}
