"""Target llm-d: one llm-d-modelservice release per pool carrying the plan's replicas, GPUs,
vLLM settings and NIXL settings, one InferencePool selecting them all, quoting of hostile
values, refusals, and the CLI. (Schema and parser checks: tests/test_emit_schemas.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.emit import EmitOptions, build_context, diff_files, emit, write_files
from hetplan.emit.llmd import (HELM_RELEASE_MAX, SERVICE_PORT, VLLM_DECODE_PORT, release_name,
                               serve_args)
from hetplan.emit.serve import engine_flags
from hetplan.emit.shell import commands_in, parse_command
from hetplan.errors import InputError
from hetplan.plan import load_plan

PLAN = Path(__file__).parent / "data" / "emit_plan.json"
HOSTILE = "my model $(touch /tmp/pwned) `id` 'q' \"dq\" ; rm -rf ~"


@pytest.fixture(scope="module")
def plan():
    return load_plan(PLAN)


def _values(files: dict) -> dict:
    return {rel: yaml.safe_load(text) for rel, text in files.items()
            if rel.startswith("values/")}


def test_one_release_per_pool_with_the_plans_shape(plan):
    files = emit(plan, "llm-d")
    ctx = build_context(plan, EmitOptions())
    values = _values(files)
    assert len(values) == len(plan.pools)
    labels = set()
    for pool in plan.pools:
        v = values[f"values/{pool.name.lower()}.yaml"]
        role = "prefill" if pool.role == "prefill" else "decode"
        other = "decode" if role == "prefill" else "prefill"
        sec = v[role]
        assert sec["create"] is True and v[other]["create"] is False
        assert sec["replicas"] == pool.replicas
        assert sec["parallelism"]["tensor"] == pool.tp
        c = sec["containers"][0]
        assert c["resources"]["limits"] == {"nvidia.com/gpu": pool.gpus_per_replica}
        assert c["resources"]["requests"] == c["resources"]["limits"]
        assert sec["nodeSelector"] == {"hetplan/gpu": pool.gpu}
        # the full vllm serve command: the plan's engine flags, the port the chart expects
        assert c["modelCommand"] == "custom" and c["command"] == ["vllm", "serve"]
        assert c["args"] == serve_args(ctx, pool)
        assert c["args"][-len(engine_flags(pool, ctx.settings[pool.name], ctx.opts)):] == \
            engine_flags(pool, ctx.settings[pool.name], ctx.opts)
        port = int(c["args"][c["args"].index("--port") + 1])
        assert port == (SERVICE_PORT if role == "prefill" else VLLM_DECODE_PORT)
        assert v["routing"]["servicePort"] == SERVICE_PORT
        assert v["routing"]["proxy"]["targetPort"] == VLLM_DECODE_PORT
        kv = c["args"][c["args"].index("--kv-transfer-config") + 1]
        assert '"NixlConnector"' in kv
        assert {e["name"] for e in c["env"]} == {"VLLM_NIXL_SIDE_CHANNEL_HOST",
                                                 "VLLM_NIXL_SIDE_CHANNEL_PORT"}
        labels.add(tuple(sorted(v["modelArtifacts"]["labels"].items())))
    assert len(labels) == 1                     # one label set: one InferencePool finds all
    docs = list(yaml.safe_load_all(files["inferencepool.yaml"]))
    assert [d["kind"] for d in docs] == ["InferencePool", "HTTPRoute"]
    sel = docs[0]["spec"]["selector"]["matchLabels"]
    assert sel.items() <= dict(next(iter(labels))).items()
    assert docs[1]["spec"]["rules"][0]["backendRefs"][0]["name"] == docs[0]["metadata"]["name"]


def test_install_script_runs_one_release_per_values_file(plan, tmp_path):
    files = emit(plan, "llm-d")
    cmds = [parse_command(c)[1] for c in commands_in(files["install.sh"], "helm upgrade")]
    assert sorted(c[c.index("-f") + 1] for c in cmds) == sorted(_values(files))
    assert len({c[3] for c in cmds}) == len(cmds)           # distinct release names
    path = tmp_path / "install.sh"
    path.write_text(files["install.sh"])
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_colocated_pools_run_as_decode_without_a_connector(plan):
    colo = plan.model_copy(update={"pools": [plan.pools[1].model_copy(update={
        "role": "colocated", "name": "colo"})]})
    v = _values(emit(colo, "llm-d"))["values/colo.yaml"]
    c = v["decode"]["containers"][0]
    assert v["prefill"]["create"] is False and "--kv-transfer-config" not in c["args"]
    assert c["env"] == []


def test_hostile_names_stay_data(plan):
    opts = EmitOptions(model_path=HOSTILE, served_model_name=HOSTILE + " served")
    files = emit(plan, "llm-d", opts)
    for v in _values(files).values():
        for role in ("prefill", "decode"):
            if v[role]["create"]:
                args = v[role]["containers"][0]["args"]
                assert args[0] == HOSTILE.replace("$", "$$")      # Kubernetes' escape
                assert args[args.index("--served-model-name") + 1] == \
                    (HOSTILE + " served").replace("$", "$$")
    # modelArtifacts.name/uri are chart data, not container args: Kubernetes expands nothing
    # there; Helm renders the uri as a template, hence the refusal of '{{' below
    with pytest.raises(InputError, match="template"):
        emit(plan, "llm-d", EmitOptions(model_path="org/{{ .Values.x }}"))


def test_refusals(plan):
    with pytest.raises(InputError, match="NIXL"):
        emit(plan, "llm-d", EmitOptions(kv_connector="mooncake"))
    spans = plan.model_copy(update={"pools": [plan.pools[0], plan.pools[1].model_copy(
        update={"tp": 8, "pp": 2, "gpus": 16})]})
    with pytest.raises(InputError, match="spans 2 nodes"):
        emit(spans, "llm-d")


def test_long_names_stay_within_helm_and_label_limits(plan):
    long = plan.model_copy(update={"pools": [p.model_copy(update={"name": p.name + "-x" * 40})
                                             for p in plan.pools]})
    ctx = build_context(long, EmitOptions())
    names = [release_name(ctx, p) for p in long.pools]
    assert all(len(n) <= HELM_RELEASE_MAX for n in names) and len(set(names)) == 2


def test_cli_writes_checks_and_lists_the_target(plan, tmp_path):
    out = tmp_path / "llmd"
    r = CliRunner().invoke(app, ["emit", str(PLAN), "--target", "llm-d", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert diff_files(out, emit(plan, "llm-d")) == ""
    (out / "values" / "stale.yaml").write_text("x: 1\n")
    r = CliRunner().invoke(app, ["emit", str(PLAN), "--target", "llm-d", "--out", str(out),
                                 "--check"])
    assert r.exit_code == 1 and "stale.yaml" in r.output
    write_files(out, emit(plan, "llm-d"))           # a rewrite drops the stale file
    assert not (out / "values" / "stale.yaml").exists()
    help_text = CliRunner().invoke(app, ["emit", "--help"]).output
    assert "llm-d" in help_text


def test_hostile_plan_names_do_not_run_in_install_sh(plan, tmp_path):
    """install.sh, run with stub helm/kubectl: names carrying a newline and `touch MARKER`
    create nothing, and every values file still parses to one release's values."""
    from test_emit_safety import _hostile_plan
    import os
    marker = tmp_path / "pwned"
    out = tmp_path / "out"
    files = emit(_hostile_plan(plan, marker), "llm-d")
    write_files(out, files)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for prog in ("helm", "kubectl"):
        (stubs / prog).write_text("#!/bin/sh\nexit 0\n")
        (stubs / prog).chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(out / "install.sh")], cwd=out, env=env,
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, "") and not marker.exists()
    assert all(isinstance(v["modelArtifacts"]["labels"]["llm-d.ai/model"], str)
               for v in _values(files).values())


def test_fleet_gateway_routes_each_member_by_model_name_to_its_own_pool(plan):
    """The shared route (`solve FLEET --emit llm-d`) sends each member's served model name
    to the InferencePool its own llm-d folder creates: the committed fleet's members (their
    models on the fixture plan: the route reads a plan's model only), no solving."""
    import json

    from hetplan.emit.llmd_gateway import MAX_RULES, MODEL_HEADER, fleet_gateway_files
    fleet = Path(__file__).parent.parent / "deploy" / "fleet-platform"
    plans = {p.parent.name: plan.model_copy(update={"model": json.loads(p.read_text())["model"]})
             for p in sorted(fleet.glob("*/plan.json"))}
    assert len(plans) >= 2
    files = fleet_gateway_files("fleet-platform", plans)
    (route,) = yaml.safe_load_all(files["gateway.yaml"])
    routed = {r["matches"][0]["headers"][0]["value"]: r["backendRefs"][0]["name"]
              for r in route["spec"]["rules"]}
    assert all(r["matches"][0]["headers"][0]["name"] == MODEL_HEADER
               for r in route["spec"]["rules"])
    own = {}             # served name -> pool, from each member's committed llm-d folder
    for member in plans:
        folder = fleet / member / "llm-d"
        pool = next(d for d in yaml.safe_load_all((folder / "inferencepool.yaml").read_text())
                    if d["kind"] == "InferencePool")
        values = yaml.safe_load(next((folder / "values").glob("*.yaml")).read_text())
        role = "decode" if values["decode"].get("create") else "prefill"
        args = values[role]["containers"][0]["args"]
        own[args[args.index("--served-model-name") + 1]] = pool["metadata"]["name"]
    assert routed == own
    from crd_required import custom_resource_errors
    assert custom_resource_errors(route) == []
    broken = yaml.safe_load(yaml.safe_dump(route))
    del broken["spec"]["rules"][0]["matches"][0]["headers"][0]["value"]
    assert any("value is required" in e for e in custom_resource_errors(broken))
    install = files["install.sh"]
    assert "body-based-routing" in install and "kubectl apply -f gateway.yaml" in install
    # more members than one route holds: several routes; one model twice: refused
    many = {f"m{i:02d}": plans[next(iter(plans))].model_copy(update={"model": f"model-{i}"})
            for i in range(MAX_RULES + 1)}
    routes = list(yaml.safe_load_all(fleet_gateway_files("big", many)["gateway.yaml"]))
    assert [len(r["spec"]["rules"]) for r in routes] == [MAX_RULES, 1]
    twin = next(iter(plans.values()))
    with pytest.raises(InputError, match="both serve"):
        fleet_gateway_files("twins", {"a": twin, "b": twin})
