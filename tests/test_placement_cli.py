"""`hetplan solve` with an inventory: every replica placed, byte-identical re-runs, N+1
checked by removing each node, `--failed` moving only the lost replicas, bad inventories
rejected with the file and field named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hetplan.io import workloads_dir

SCENARIO = workloads_dir() / "default-inventory.yaml"
REPO = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hetplan.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


@pytest.fixture(scope="module")
def util_scenario(tmp_path_factory) -> Path:
    """The scenario sized by utilization, whose plan puts prefill on the L40S nodes (under
    the default queueing sizing it is one colocated H100 pool): the failure tests below
    need replicas on the nodes they fail."""
    text = SCENARIO.read_text()
    inv = (SCENARIO.parent / "inventories" / "lab.yaml").resolve()
    for old, new in (("  target_utilization: 0.8\n",
                      "  target_utilization: 0.8\n  sizing: utilization\n"),
                     ("inventory: inventories/lab.yaml", f"inventory: {inv}")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("util") / "util.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def solved_util(util_scenario) -> Path:
    out = util_scenario.parent
    r = run("solve", str(util_scenario), "--out", str(out / "a"))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("placed")
    r = run("solve", str(SCENARIO), "--out", str(out / "a"))
    assert r.returncode == 0, r.stderr
    r = run("solve", str(SCENARIO), "--out", str(out / "b"))
    assert r.returncode == 0, r.stderr
    return out


def test_every_replica_placed_deterministically(solved):
    a = (solved / "a" / "plan.json").read_bytes()
    assert a == (solved / "b" / "plan.json").read_bytes()
    assert (solved / "a" / "report.md").read_bytes() == (solved / "b" / "report.md").read_bytes()
    plan = json.loads(a)
    pl = plan["placement"]
    nodes = {n["id"]: n for n in pl["nodes"]}
    used: dict[tuple[str, int], int] = {}
    for p in plan["pools"]:
        stages = {(s["replica"], s["stage"]) for s in pl["shards"] if s["pool"] == p["name"]}
        assert stages == {(r, st) for r in range(p["replicas"]) for st in range(p["pp"])}
    for s in pl["shards"]:
        pool = next(p for p in plan["pools"] if p["name"] == s["pool"])
        node = nodes[s["node"]]
        assert node["gpu"] == pool["gpu"] and len(s["gpu_indices"]) == pool["tp"]
        for g in s["gpu_indices"]:
            assert 0 <= g < node["gpus"]
            assert (s["node"], g) not in used            # no GPU given twice
            used[s["node"], g] = 1
    report = (solved / "a" / "report.md").read_text()
    assert "## Placement" in report and "KV traffic per link" in report


def assert_n_plus_one(plan: dict, headroom: float) -> None:
    """Remove each node in turn: every pool keeps load <= rho x usable replicas, rho the
    pool's own (queueing sizing's per-pool rho, else decode pools' when the plan sets one)."""
    spot = {n["id"]: n["spot"] for n in plan["placement"]["nodes"]}
    for node in spot:
        for p in plan["pools"]:
            rho = plan["target_utilization"]
            if p["role"] == "decode" and plan.get("decode_target_utilization"):
                rho = plan["decode_target_utilization"]
            rho = p.get("target_utilization", rho)
            usable = 0.0
            for r in range(p["replicas"]):
                on = {s["node"] for s in plan["placement"]["shards"]
                      if s["pool"] == p["name"] and s["replica"] == r}
                if node not in on:
                    usable += (1 - headroom) if any(spot[n] for n in on) else 1.0
            load = p["utilization"] * p["replicas"]
            assert usable * rho >= load - 1e-6, (node, p["name"])


def test_n_plus_one_holds_for_each_node_removed(solved):
    plan = json.loads((solved / "a" / "plan.json").read_text())
    assert_n_plus_one(plan, headroom=0.5)        # the scenario's spot_headroom


def test_n_plus_one_with_a_decode_rho(util_scenario, solved_util, tmp_path):
    """Decode pools sized at their own rho are placed and N+1-checked at that rho."""
    # rho is the utilization model's knob: both plans here are sized by utilization (the
    # base plan is util_scenario's, solved once by the solved_util fixture)
    text = util_scenario.read_text()
    text = text.replace("  sizing: utilization\n",
                        "  sizing: utilization\n  decode_target_utilization: 0.95\n")
    scenario = tmp_path / "decode-rho.yaml"
    scenario.write_text(text)
    r = run("solve", str(scenario), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["decode_target_utilization"] == 0.95
    base = json.loads((solved_util / "a" / "plan.json").read_text())
    assert plan["cost_usd_per_hour"] < base["cost_usd_per_hour"]      # decode runs hotter
    assert_n_plus_one(plan, headroom=0.5)


def test_failed_node_moves_only_its_replicas(solved_util, util_scenario, tmp_path):
    prev = json.loads((solved_util / "a" / "plan.json").read_text())
    victim = "l40s-03"
    r = run("solve", str(util_scenario), "--failed", victim, "--previous",
            str(solved_util / "a" / "plan.json"), "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    new = json.loads((tmp_path / "plan.json").read_text())
    old_shards = prev["placement"]["shards"]
    lost = {(s["pool"], s["replica"]) for s in old_shards if s["node"] == victim}
    kept = [s for s in old_shards if (s["pool"], s["replica"]) not in lost]
    assert lost
    for s in kept:                            # survivors untouched: same node, same GPUs
        assert s in new["placement"]["shards"]
    assert all(s["node"] != victim for s in new["placement"]["shards"])
    added = sum(p["replicas"] for p in new["pools"]) - sum(p["replicas"] for p in prev["pools"])
    assert new["placement"]["moved_replicas"] == len(lost) + added
    assert new["placement"]["failed_nodes"] == [victim]
    assert json.loads(r.stdout)["placement"]["moved_replicas"] == len(lost) + added


def test_unknown_failed_node_is_an_input_error():
    r = run("solve", str(SCENARIO), "--failed", "h100-99")
    assert r.returncode == 2
    assert "--failed: unknown node 'h100-99'" in r.stderr


BAD = [
    ("nodes:\n  - {id: a, gpu: H100-SXM, gpus: 8, rack: r, fabric: f, nic_gbps: 400}\n"
     "  - {id: b, gpu: H999, gpus: 8, rack: r, fabric: f, nic_gbps: 400}\n",
     "nodes.1.gpu: unknown GPU 'H999'"),
    ("nodes:\n  - {id: a, gpu: H100-SXM, gpus: 8, rack: r, fabric: f, nic_gbps: -1}\n",
     "nodes.0.nic_gbps"),
    ("nodes:\n  - {id: a, gpu: H100-SXM, gpus: 8, rack: r, fabric: f, nic_gbps: 400}\n"
     "  - {id: a, gpu: H100-SXM, gpus: 8, rack: r, fabric: f, nic_gbps: 400}\n",
     "nodes.1.id: duplicate node id 'a'"),
    ("nodes:\n  - {id: a, gpu: H100-SXM, gpus: 8, rack: r, fabric: f, nic_gbps: 400}\n"
     "links:\n  - {a: f, b: g, capacity_gbps: 100}\n", "links.0.b: unknown fabric 'g'"),
    ("nodes:\n  - {id: a, gpu: H100-SXM, rack: r, fabric: f, nic_gbps: 400}\n", "nodes.0.gpus"),
    ("nodes_csv: nodes.csv\n", "nodes.csv: line 3.gpus"),
    ("nodes: [\n", "YAML syntax error"),
]


@pytest.mark.parametrize("text,expect", BAD)
def test_bad_inventory_exits_2_naming_file_and_field(tmp_path, text, expect):
    (tmp_path / "nodes.csv").write_text("id,gpu,gpus,rack,fabric,nic_gbps,spot\n"
                                        "a,H100-SXM,8,r,f,400,false\nb,H100-SXM,x,r,f,400,no\n")
    (tmp_path / "inv.yaml").write_text(text)
    scen = SCENARIO.read_text().replace("inventory: inventories/lab.yaml", "inventory: inv.yaml")
    (tmp_path / "s.yaml").write_text(scen)
    r = run("solve", str(tmp_path / "s.yaml"))
    assert r.returncode == 2, r.stderr
    assert "inv.yaml" in r.stderr or "nodes.csv" in r.stderr
    assert expect in r.stderr


def test_csv_nodes_load(tmp_path):
    from hetplan.catalog import load_catalog
    from hetplan.placement import load_inventory
    (tmp_path / "nodes.csv").write_text("id,gpu,gpus,rack,fabric,nic_gbps,spot,address\n"
                                        "a,H100-SXM,8,r,f,400,true,10.0.0.1\n")
    (tmp_path / "inv.yaml").write_text("nodes_csv: nodes.csv\n")
    inv = load_inventory(tmp_path / "inv.yaml", load_catalog())
    assert inv.nodes[0].spot and inv.nodes[0].host == "10.0.0.1" and inv.name == "inv"


def test_scenarios_without_inventory_have_no_placement(tmp_path):
    r = run("solve", str(workloads_dir() / "default.yaml"), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "plan.json").read_text())["placement"] is None


def test_n_plus_one_on_single_nodes_is_infeasible_and_explained(tmp_path):
    # One node per GPU type: no replica survives losing its node, so the N+1-aware sizing
    # has no plan; the report says N+1 binds and names the node counts (exit 3).
    (tmp_path / "inv.yaml").write_text(
        "nodes:\n"
        "  - {id: h, gpu: H100-SXM, gpus: 8, rack: r1, fabric: f, nic_gbps: 3200}\n"
        "  - {id: l, gpu: L40S, gpus: 8, rack: r2, fabric: f, nic_gbps: 400}\n")
    scen = SCENARIO.read_text().replace("inventory: inventories/lab.yaml", "inventory: inv.yaml")
    (tmp_path / "s.yaml").write_text(scen)
    r = run("solve", str(tmp_path / "s.yaml"))
    assert r.returncode == 3, r.stderr
    assert "reliability: N+1 (any one node lost) has no plan" in r.stderr
    assert "(1 node able to hold its replicas)" in r.stderr


def test_failure_beyond_the_survivors_re_sizes_and_counts_moves(solved_util, util_scenario,
                                                               tmp_path):
    # Four of five L40S nodes lost: the surviving prefill replicas plus the lost ones no
    # longer fit on the one left (the plan holds one L40S TP2 prefill replica per node, so
    # three lost nodes would still fit on two), so the plan is re-sized on the healthy
    # nodes; moves are counted against the previous placement (replicas not found at the
    # same nodes and GPUs).
    lost = ["l40s-01", "l40s-02", "l40s-03", "l40s-04"]
    prev = json.loads((solved_util / "a" / "plan.json").read_text())
    r = run("solve", str(util_scenario), "--failed", ",".join(lost), "--previous",
            str(solved_util / "a" / "plan.json"), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    new = json.loads((tmp_path / "plan.json").read_text())
    pl = new["placement"]
    assert pl["failed_nodes"] == lost
    assert not {s["node"] for s in pl["shards"]} & set(lost)
    assert "re-sized on the healthy nodes" in pl["notes"][0]

    def where(plan):
        out = {}
        for s in plan["placement"]["shards"]:
            out.setdefault((s["pool"], s["replica"]), []).append(
                (s["stage"], s["node"], tuple(s["gpu_indices"])))
        return {k: tuple(sorted(v)) for k, v in out.items()}
    old = set(where(prev).items())
    assert pl["moved_replicas"] == sum(1 for x in where(new).items() if x not in old) > 0
