"""Owned inventory nodes in a schedule: parsing and the spot/owned error, their tier price
(sheet capex amortized + power, or power alone), the schedule MILP holding them in every
slot against a brute force, and a tiny scenario end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hetplan.candidates import Candidate, ClassCapacity
from hetplan.catalog import load_catalog
from hetplan.errors import InputError
from hetplan.perf import ReplicaShape
from hetplan.placement import load_inventory
from hetplan.schedule.formulation import ScheduleProblem, solve_schedule
from hetplan.schedule.decompose import lower_bound_usd
from hetplan.schedule.spec import ScheduleSpec
from hetplan.schedule.tiers import GpuTiers, gpu_tiers
from schedule_fixture import TINY_SCHEDULE_BODY

NODE = "{id: %s, gpu: H100-SXM, gpus: 8, rack: r, fabric: f, nic_gbps: 400%s}"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_owned_nodes_load_from_yaml_and_csv(tmp_path, catalog):
    (tmp_path / "nodes.csv").write_text("id,gpu,gpus,rack,fabric,nic_gbps,owned\n"
                                        "c1,L40S,4,r2,f,100,yes\nc2,L40S,2,r2,f,100,\n")
    (tmp_path / "old.csv").write_text("id,gpu,gpus,rack,fabric,nic_gbps,spot\n"
                                      "o1,L40S,4,r3,f,100,true\n")
    (tmp_path / "inv.yaml").write_text(
        "nodes_csv: nodes.csv\nnodes:\n  - " + NODE % ("a", ", owned: true") + "\n  - "
        + NODE % ("b", "") + "\n")
    inv = load_inventory(tmp_path / "inv.yaml", catalog)
    assert [n.owned for n in inv.nodes] == [True, False, True, False]
    assert inv.owned_gpus_by_type() == {"H100-SXM": 8, "L40S": 4}
    assert inv.gpus_by_type() == {"H100-SXM": 16, "L40S": 6}
    # a CSV without the column still loads: no node owned
    (tmp_path / "old.yaml").write_text("nodes_csv: old.csv\n")
    old = load_inventory(tmp_path / "old.yaml", catalog)
    assert old.nodes[0].spot and not old.nodes[0].owned and old.owned_gpus_by_type() == {}


@pytest.mark.parametrize("form,field", [("yaml", "inv.yaml: nodes.0.owned"),
                                        ("csv", "nodes.csv: line 2.owned")])
def test_a_node_both_spot_and_owned_is_a_one_line_error(tmp_path, catalog, form, field):
    (tmp_path / "nodes.csv").write_text("id,gpu,gpus,rack,fabric,nic_gbps,spot,owned\n"
                                        "a,H100-SXM,8,r,f,400,true,true\n")
    (tmp_path / "inv.yaml").write_text(
        "nodes_csv: nodes.csv\n" if form == "csv"
        else "nodes:\n  - " + NODE % ("a", ", spot: true, owned: true") + "\n")
    with pytest.raises(InputError) as e:
        load_inventory(tmp_path / "inv.yaml", catalog)
    msg = str(e.value)
    assert field in msg and "both spot and owned" in msg and len(msg.splitlines()) == 1


def test_owned_gpus_price_sheet_capex_amortized_or_power_alone(catalog):
    spec = ScheduleSpec(amortization_years=4, power_usd_per_kwh=0.2, pue=1.5)
    sheet = "2026-11-market"
    capex = {h.gpu: h.capex_usd_per_gpu for h in catalog.price_sheet(sheet).owned}
    assert "H100-SXM" in capex and "L40S" not in capex         # the two cases below
    t = gpu_tiers(catalog, sheet, ["H100-SXM"], spec, owned={"H100-SXM": 8, "L40S": 4})
    h100, l40s = t["H100-SXM"], t["L40S"]                       # L40S: owned, not asked
    power = lambda g: catalog.gpu(g).tdp_w / 1000 * 1.5 * 0.2   # noqa: E731
    assert (h100.owned_gpus, h100.owned_capex_sunk) == (8, False)
    assert h100.owned_usd_per_hour == pytest.approx(capex["H100-SXM"] / (4 * 8760)
                                                    + power("H100-SXM"))
    assert (l40s.owned_gpus, l40s.owned_capex_sunk) == (4, True)
    assert l40s.owned_usd_per_hour == pytest.approx(power("L40S"))
    assert l40s.to_dict()["owned_capex"] == "sunk"
    # without owned nodes the tiers are as before: nothing owned, no owned keys
    plain = gpu_tiers(catalog, sheet, ["H100-SXM"], spec)["H100-SXM"]
    assert plain.owned_gpus == 0 and "owned_gpus" not in plain.to_dict()


# ---- the schedule MILP against brute force ----------------------------------------------
def _cand(gpu: str, cap: float) -> Candidate:
    return Candidate(ReplicaShape(gpu), "colocated", "nvidia", 1.0, {"w": ClassCapacity(cap)})


def _problem(rates, com1: float | None, owned: int, avail: int | None = None):
    tiers = {"G1": GpuTiers("G1", 2.0, None, 0.0, False, com1, "reserved" if com1 else None,
                            owned, 0.3, com1 is None),
             "G2": GpuTiers("G2", 1.5, None, 0.0, False, None, None),
             "G3": GpuTiers("G3", None, None, 0.0, False, None, None, 8, 0.05, True)}
    c1, c2 = _cand("G1", 1.25), _cand("G2", 1.0)
    return ScheduleProblem(
        candidates=[c1, c2], class_names=("w",), rates_rps=np.array(rates)[:, None],
        slot_hours=np.array([1.0, 2.0, 1.0]), rho={c1.key: 0.8, c2.key: 0.9}, tiers=tiers,
        warmup_h={c1.key: 0.1, c2.key: 0.05}, availability={"G1": avail} if avail else {},
        warmup=False, max_step_replicas=None, cyclic=False, tie_break=0.0)


def _brute(p: ScheduleProblem, per_slot: bool = False, most: int = 6) -> float:
    """Slots are independent once the bought committed GPUs K of G1 are fixed (no change
    limits, no warm-ups): enumerate K and, per slot, every (committed, on-demand) count of
    G1 and on-demand count of G2; the owned GPUs (G1's and the idle G3's) paid every hour.
    `per_slot`: each slot picks its own K (the lower bound's relaxation)."""
    c1, c2 = p.candidates
    t1 = p.tiers["G1"]
    held = sum(t.owned_gpus * t.owned_usd_per_hour for t in p.tiers.values() if t.owned_gpus)
    avail = p.availability.get("G1", 10 ** 6)

    def slot(t: int, k: int) -> float:          # $/h of slot t with K = k
        return held + k * (t1.committed_usd_per_hour or 0.0) + min(
            (o1 * 2.0 + o2 * 1.5 for a1, o1, o2 in itertools.product(range(most), repeat=3)
             if a1 <= k + t1.owned_gpus and a1 + o1 <= avail
             and 0.8 * 1.25 * (a1 + o1) + 0.9 * 1.0 * o2 >= p.rates_rps[t, 0] - 1e-9),
            default=np.inf)

    ks = range(most if t1.committed_usd_per_hour is not None else 1)
    if per_slot:
        return sum(h * min(slot(t, k) for k in ks) for t, h in enumerate(p.slot_hours))
    return min(sum(h * slot(t, k) for t, h in enumerate(p.slot_hours)) for k in ks)


@pytest.mark.parametrize("rates,com1,owned,avail", [
    ([1.0, 3.5, 2.0], 1.2, 2, None),      # owned G1 + bought (reserved) G1 + on-demand
    ([0.5, 4.0, 2.5], None, 2, None),     # owned G1 only: power alone, nothing to buy
    ([0.2, 0.3, 0.2], 1.2, 3, None),      # more owned than any slot needs: still paid
    ([1.0, 5.0, 2.0], 1.2, 2, 3),         # the inventory caps G1 at 3 GPUs in all
])
def test_owned_gpus_are_held_and_paid_in_every_slot(rates, com1, owned, avail):
    p = _problem(rates, com1, owned, avail)
    out = solve_schedule(p, time_limit_s=30)
    assert out.solution.status == "optimal"
    assert out.total_cost_usd == pytest.approx(_brute(p), rel=1e-6, abs=1e-6)
    # the lower bound (each slot alone, its own commitment) holds the owned GPUs too
    lb, _ = lower_bound_usd(p, "highs", 30)
    assert lb == pytest.approx(_brute(p, per_slot=True), rel=1e-6, abs=1e-6)
    # the committed GPUs of G1 are the owned ones and those bought; G3 (no candidate) too
    assert out.committed_gpus["G1"] >= owned and out.committed_gpus["G3"] == 8
    own_h = owned * 0.3 + 8 * 0.05
    assert out.cost_usd["owned"] == pytest.approx(own_h * p.slot_hours.sum())
    for t, h in enumerate(p.slot_hours):                 # every slot pays the owned GPUs
        assert out.slot_cost_usd[t] >= own_h * h - 1e-9
        used = sum(r[t] for (key, k), r in out.replicas.items()
                   if k == "committed" and key == p.candidates[0].key)
        assert used <= out.committed_gpus["G1"]
    assert sum(out.slot_cost_usd) == pytest.approx(out.total_cost_usd)
    if avail:
        assert all(sum(r[t] for (key, _), r in out.replicas.items()
                       if key == p.candidates[0].key) <= avail for t in range(3))


# ---- a tiny scenario end to end ---------------------------------------------------------
SCENARIO = "\nname: tiny-owned\n" + TINY_SCHEDULE_BODY + """\
constraints: {max_tp: 1, weight_dtypes: [fp8], kv_dtypes: [fp8], roles: [colocated],
              sizing: utilization, pool_cost_usd_per_hour: 0}
inventory: inv.yaml
schedule:
  slot_s: 21600
  representative_slots: 2
  profile: {base_rps: 200, amplitude: 0.6}
"""
INVENTORY = """
nodes:
  - {id: l1, gpu: L40S, gpus: 4, rack: r1, fabric: f, nic_gbps: 400, owned: true}
  - {id: h1, gpu: H100-SXM, gpus: 8, rack: r1, fabric: f, nic_gbps: 400}
"""


def test_schedule_of_a_scenario_with_owned_nodes(tmp_path, catalog):
    from hetplan.scenario import load_scenario
    from hetplan.schedule.plan import plan_schedule
    from hetplan.schedule.report import schedule_report
    (tmp_path / "s.yaml").write_text(SCENARIO)
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    r = plan_schedule(load_scenario(tmp_path / "s.yaml", catalog), catalog, time_limit_s=30)
    s = r.summary(timings=False)
    own = r.tiers["L40S"]
    assert s["owned_gpus"] == {"L40S": 4} and own.owned_capex_sunk    # no L40S capex in sheet
    assert s["owned_cost_usd"] == pytest.approx(4 * own.owned_usd_per_hour * r.hours)
    assert s["cost_breakdown_usd"]["owned"] == pytest.approx(s["owned_cost_usd"])
    assert {"gpu": "L40S", "tier": "owned (inventory)", "gpus": 4, "capex": "sunk",
            "usd_per_gpu_hour": own.owned_usd_per_hour} in s["committed_mix"]
    # committed replicas run on the owned GPUs (no L40S is bought), within their count, and
    # fill them at the peak (they cost nothing more there; idle in quiet slots, still paid)
    l40s = [k for k in r.candidates if k.shape.gpu == "L40S"]
    on = [sum(k.num_gpus * r.outcome.replicas.get((k.key, "committed"), [0] * 9)[t]
              for k in l40s) for t in range(r.profile.num_slots)]
    assert r.outcome.committed_gpus["L40S"] == 4 and max(on) <= 4
    assert on[int(np.argmax(r.profile.total_rps))] == 4
    assert all(c >= 4 * own.owned_usd_per_hour * h for c, h in
               zip(r.outcome.slot_cost_usd, r.profile.slot_hours))
    # every baseline pays them: the static plans at their prices with owned GPUs first
    # (idle ones paid), the reactive scaler besides its rentals; the bound below the schedule
    for name, plan in (("static_peak_cost_usd", r.static_peak),
                       ("static_mean_cost_usd", r.static_mean)):
        used = sum(p.gpus for p in plan.pools if p.gpu == "L40S")
        per = (sum(p.cost_usd_per_hour for p in plan.pools if p.gpu == "L40S") / used
               if used else 0.0)
        assert s[name] == pytest.approx((plan.cost_usd_per_hour - min(used, 4) * per
                                         + 4 * own.owned_usd_per_hour) * r.hours)
    assert s["reactive_cost_usd"] == pytest.approx(r.reactive.cost_usd + s["owned_cost_usd"])
    assert s["owned_cost_usd"] < s["lower_bound_cost_usd"] <= s["horizon_cost_usd"] + 1e-6
    md = schedule_report(r)
    assert "| L40S | owned (inventory) | 4 |" in md and "taken as sunk" in md
    assert "owned GPUs first" in md and any("owned nodes" in a for a in r.to_dict()["assumptions"])


def test_shipped_owned_nodes_scenario_holds_them_and_rents_the_peak(catalog):
    """workloads/schedule/owned-nodes.yaml (README, owned nodes): its 8 owned L40S GPUs
    serve in every slot, paid every hour; H100s are rented only where the owned ones fall
    short under U(n), none in the quietest slot; the MILP's sizing leaves the top-up nothing,
    and the schedule costs less than the static peak plan, which idles the owned GPUs."""
    from hetplan.io import workloads_dir
    from hetplan.scenario import load_scenario
    from hetplan.schedule.plan import plan_schedule
    rs = load_scenario(workloads_dir() / "schedule" / "owned-nodes.yaml", catalog)
    r = plan_schedule(rs, catalog, time_limit_s=30)
    s = r.summary(timings=False)
    assert s["owned_gpus"] == {"L40S": 8} and s["sizing"] == "queueing"
    cands = {c.key: c for c in r.candidates}
    gpus = lambda gpu, tier, t: sum(  # noqa: E731
        cands[key].num_gpus * n[t] for (key, k), n in r.outcome.replicas.items()
        if cands[key].shape.gpu == gpu and k == tier)
    slots = range(r.profile.num_slots)
    assert all(gpus("L40S", "committed", t) == 8 for t in slots)     # owned: all serve
    rented = [gpus("H100-SXM", "on_demand", t) + gpus("H100-SXM", "spot", t) for t in slots]
    assert rented[int(np.argmax(r.profile.total_rps))] > 0
    assert rented[int(np.argmin(r.profile.total_rps))] == 0
    assert s["queueing_top_up"]["replicas_added"] == 0
    assert s["lower_bound_cost_usd"] <= s["horizon_cost_usd"] < s["static_peak_cost_usd"]
