"""Every emitted Kubernetes object and Dynamo command checked by its own project's schema or
parser, in ONE subprocess of the check venv (scripts/install_vllm_cpu.sh) per test session:
- k8s, llm-d and dynamo objects: core kinds against Kubernetes 1.37's OpenAPI schemas with
  kubernetes-validate in strict mode; custom resources (InferencePool, HTTPRoute,
  DynamoGraphDeployment) for the fields their CRDs require (tests/crd_required.py), their
  embedded pod templates as v1 PodTemplates; llm-d chart values against the rules of the
  chart's values.schema.json and each role's pod part as a v1 PodTemplate;
- every `vllm serve` argument list in the llm-d values through vLLM's parser and
  create_engine_config();
- every Dynamo worker command (node scripts and graph.yaml) through Dynamo 1.6.1's
  `dynamo.vllm.args.parse_args`;
- a capacity schedule's scaling objects (`hetplan schedule --emit`, on the fixture schedule
  of tests/scaling_fixture.py): workloads without fixed replicas and HPAs strictly, KEDA
  ScaledObjects by their CRD's rules, Dynamo planner bounds by Dynamo 1.6.1's
  PlannerConfig.
Plans: the golden emit plan, a colocated variant, and the committed deploy/*/plan.json (no
solving). Skipped when the venv is missing, except under CI=true.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from crd_required import (custom_resource_errors, modelservice_pod_template,
                          modelservice_values_errors, pod_templates)
from hetplan.emit import emit
from hetplan.emit.dynamo import WORKER
from hetplan.emit.shell import commands_in, parse_command
from hetplan.emit.vllm_check import check
from check_venv import require_check_venv
from hetplan.emit.scaling import planner_bounds
from hetplan.emit.schedule import k8s_scaling_files
from hetplan.emit.serve import EmitOptions
from hetplan.fleet.report import GATEWAY_DIR
from hetplan.plan import load_plan
from scaling_fixture import DECODE, golden_schedule

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "tests" / "data" / "emit_plan.json"

require_check_venv("the check venv")


def _plans() -> dict:
    plan = load_plan(PLAN)
    colocated = plan.model_copy(update={"pools": [plan.pools[1].model_copy(update={
        "role": "colocated", "name": "colocated-H100-SXM"})]})
    # decode tp=8 x pp=2 spans two 8-GPU nodes: a LeaderWorkerSet (dynamo and llm-d refuse)
    multinode = plan.model_copy(update={"pools": [plan.pools[0], plan.pools[1].model_copy(
        update={"tp": 8, "pp": 2, "gpus": 16})]})
    plans = {"golden": plan, "colocated": colocated, "multinode": multinode}
    for p in sorted((ROOT / "deploy").glob("*/plan.json")):
        plans[p.parent.name] = load_plan(p)
    return plans


def _unescape(argv: list[str]) -> list[str]:
    return [a.replace("$$", "$") for a in argv]


def _items(name: str, plan) -> tuple[list, list[str]]:
    """(check items, CRD/chart-rule errors) for one plan's k8s, dynamo and llm-d output."""
    items, errors = [], []
    model = plan.model_ref or plan.model

    def manifest(doc, where):
        crd = custom_resource_errors(doc)
        if crd is not None:
            errors.extend(f"{where}: {e}" for e in crd)
        elif doc["kind"] != "LeaderWorkerSet":
            items.append(("k8s", doc, None))
        items.extend(("k8s", t, None) for t in pod_templates(doc))

    for target in ("k8s", "dynamo", "llm-d"):
        try:
            files = emit(plan, target)
        except Exception as e:  # noqa: BLE001 (a target may refuse a plan: say which)
            if target == "k8s" or "spans" not in str(e):
                raise
            continue
        for rel, text in sorted(files.items()):
            where = f"{name}/{target}/{rel}"
            if rel.startswith("values/"):
                values = yaml.safe_load(text)
                errors.extend(f"{where}: {e}" for e in modelservice_values_errors(values))
                for role in ("prefill", "decode"):
                    if values[role].get("create"):
                        items.append(("k8s", modelservice_pod_template(values, role), None))
                        c = values[role]["containers"][0]
                        assert c["command"] == ["vllm", "serve"]
                        items.append(("serve", _unescape(c["args"]), model))
            elif rel.endswith(".yaml"):
                for doc in yaml.safe_load_all(text):
                    manifest(doc, where)
                    if doc["kind"] == "DynamoGraphDeployment":
                        for comp in doc["spec"]["components"]:
                            for c in comp.get("podTemplate", {}).get("spec", {}).get(
                                    "containers", []):
                                assert c["command"] == WORKER
                                items.append(("dynamo", _unescape(c["args"]), model))
            elif target == "dynamo" and rel.startswith("nodes/"):
                for cmd in commands_in(text, " ".join(WORKER)):
                    argv = parse_command(cmd)[1]
                    items.append(("dynamo", argv[len(WORKER):], model))
    return items, errors


def _scaling_items(name: str, plan) -> tuple[list, list[str]]:
    """(check items, CRD errors) for the scaling objects of `plan` on the fixture schedule."""
    items, errors = [], []
    _, sched = golden_schedule(plan)
    for rel, text in sorted(k8s_scaling_files(plan, sched, EmitOptions(), "Etc/UTC").items()):
        for doc in yaml.safe_load_all(text):
            crd = custom_resource_errors(doc)
            if crd is not None:
                errors.extend(f"{name}/scaling/{rel}: {e}" for e in crd)
            elif doc["kind"] != "LeaderWorkerSet":
                items.append(("k8s", doc, None))
            items.extend(("k8s", t, None) for t in pod_templates(doc))
    bounds = planner_bounds(plan, sched)
    if bounds is not None:
        items.append(("dynamo-planner", bounds, None))
    return items, errors


def _refusal_items() -> list:
    """Broken variants the checkers must refuse (and their unbroken originals): a Dynamo
    prefill worker with and without --kv-transfer-config; a Deployment as emitted, with an
    unknown field, with a wrongly typed field."""
    plan = load_plan(PLAN)
    graph = yaml.safe_load(emit(plan, "dynamo")["graph.yaml"])
    prefill = next(c for c in graph["spec"]["components"] if c["type"] == "prefill")
    argv = _unescape(prefill["podTemplate"]["spec"]["containers"][0]["args"])
    i = argv.index("--kv-transfer-config")
    dep = next(yaml.safe_load_all(emit(plan, "k8s")["router.yaml"]))
    model = plan.model_ref or plan.model
    bounds = planner_bounds(*golden_schedule(plan))
    return [("dynamo", argv, model), ("dynamo", argv[:i] + argv[i + 2:], model),
            ("k8s", dep, None), ("k8s", {**dep, "spec": {**dep["spec"], "replica": 1}}, None),
            ("k8s", {**dep, "spec": {**dep["spec"], "replicas": "one"}}, None),
            ("dynamo-planner", {**bounds, "prefill_min_endpoint": 0}, None),
            ("dynamo-planner", {**bounds, "max_gpu_budgets": 4}, None)]


def _fleet_routes() -> list[tuple[str, dict]]:
    """(file, object) of every committed fleet's shared llm-d route (`solve FLEET --emit
    llm-d`: deploy/<fleet>/llm-d-gateway/gateway.yaml)."""
    return [(str(p.relative_to(ROOT)), doc)
            for p in sorted((ROOT / "deploy").glob(f"*/{GATEWAY_DIR}/gateway.yaml"))
            for doc in yaml.safe_load_all(p.read_text())]


def _key(item) -> str:
    return json.dumps(item, sort_keys=True)


@pytest.fixture(scope="module")
def checked():
    """One check run (one subprocess) over every plan's items, each distinct item once
    (replicas repeat commands), plus the refusal cases: ([(plan, item, result)], CRD rule
    errors, refusal results)."""
    flat, errors = [], []
    for name, plan in _plans().items():
        items, errs = _items(name, plan)
        flat += [(name, it) for it in items]
        errors += errs
        if name in ("golden", "colocated", "multinode"):
            items, errs = _scaling_items(name, plan)
            flat += [(f"{name}-scaling", it) for it in items]
            errors += errs
    for where, doc in _fleet_routes():          # a fleet's shared llm-d route (CRD rules)
        errors += [f"{where}: {e}" for e in custom_resource_errors(doc)]
    refusals = _refusal_items()
    unique = {_key(it): it for it in [it for _, it in flat] + refusals}
    results = dict(zip(unique, check(list(unique.values()))))
    return ([(n, it, results[_key(it)]) for n, it in flat], errors,
            [results[_key(it)] for it in refusals])


def test_every_object_and_command_passes_its_own_checker(checked):
    rows, errors, _ = checked
    assert not errors, errors[:5]
    # the committed fleet's shared llm-d route was among the CRD-checked objects
    assert any(w.startswith("deploy/fleet-platform/") and doc["kind"] == "HTTPRoute"
               for w, doc in _fleet_routes())
    bad = [(n, it[0], it[1] if it[0] != "k8s" else it[1].get("kind"), r.error)
           for n, it, r in rows if not r.ok]
    assert not bad, bad[:5]
    kinds = {}
    for n, (kind, payload, _), r in rows:
        kinds.setdefault(kind, set()).add(payload["kind"] if kind == "k8s" else n)
    # every kind of object and command was checked (not an empty batch)
    assert {"Deployment", "Service", "PodTemplate"} <= kinds["k8s"]
    assert any(n == "multinode" and k == "k8s" and p["kind"] == "PodTemplate"
               and "leadertemplate" in p["metadata"]["name"] for n, (k, p, _), _ in rows)
    assert {"golden", "colocated"} <= kinds["serve"] and "golden" in kinds["dynamo"]
    assert "HorizontalPodAutoscaler" in kinds["k8s"]
    assert {"golden-scaling", "colocated-scaling"} <= kinds["dynamo-planner"]
    assert any(n == "multinode-scaling" and k == "k8s" and p["kind"] == "HorizontalPodAutoscaler"
               and p["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet"
               for n, (k, p, _), _ in rows)


def test_planner_reads_back_the_schedule_bounds(checked):
    """Dynamo's PlannerConfig resolves each role's minimum to the pool's least replicas."""
    rows, _, _ = checked
    _, sched = golden_schedule()
    floor = {p.pool.split("-")[0]: min(p.replicas) for p in sched.pools}
    got = {n: r.summary for n, (k, _, _), r in rows if k == "dynamo-planner"}
    assert got["golden-scaling"]["prefill_min"] == floor["prefill"]
    assert got["golden-scaling"]["decode_min"] == floor["decode"]
    # the colocated variant: one H100 tp2 pool on the decode pattern
    assert got["colocated-scaling"] == {"mode": "agg", "max_gpu_budget": 2 * max(DECODE),
                                        "min_endpoint": min(DECODE)}


def test_parsers_read_back_what_was_meant(checked):
    rows, _, _ = checked
    for n, (kind, argv, _), r in rows:
        if kind not in ("serve", "dynamo"):
            continue
        flag = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
        assert r.summary["tensor_parallel_size"] == int(flag["--tensor-parallel-size"])
        assert (r.summary["kv_connector"] is None) == ("--kv-transfer-config" not in flag)
        if kind == "dynamo":
            mode = flag.get("--disaggregation-mode", "agg")
            assert r.summary["disaggregation_mode"] == mode, (n, r.summary)


def test_checkers_refuse_broken_objects_and_commands(checked):
    """Not a rubber stamp: Dynamo refuses a prefill worker without --kv-transfer-config,
    strict validation refuses an unknown field and a wrong type (same batch), the CRD rules
    an InferencePool without targetPorts."""
    ok_dynamo, no_kv, ok_dep, typo, wrong, zero_min, planner_typo = checked[2]
    assert ok_dynamo.ok, ok_dynamo.error
    assert not no_kv.ok and "kv-transfer-config" in no_kv.error
    assert ok_dep.ok, ok_dep.error
    assert not typo.ok and "replica" in typo.error
    assert not wrong.ok and "replicas" in wrong.error
    assert not zero_min.ok and "prefill_min_endpoint" in zero_min.error
    assert not planner_typo.ok and "max_gpu_budgets" in planner_typo.error
    doc = next(yaml.safe_load_all(emit(load_plan(PLAN), "llm-d")["inferencepool.yaml"]))
    assert custom_resource_errors(doc) == []
    del doc["spec"]["targetPorts"]
    assert custom_resource_errors(doc) == ["spec.targetPorts is required"]
