"""Every emitted vLLM command checked by vLLM 0.33 itself (its serve parser and
create_engine_config(), its bench parser) and every router command by vllm-router's parser,
in the CPU-only venv of scripts/install_vllm_cpu.sh; and configs vLLM refuses are refused.
All of it, with the EP commands of test_moe_ep.py and the prefix flags of test_prefix.py, in
ONE check() batch: importing vLLM costs ~20 CPU-s, checking a command ~0.1 s.

Skipped when that venv is missing, except under CI=true, where a missing venv fails.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml

from hetplan.catalog import load_catalog
from hetplan.emit import EmitOptions, build_context, emit
from hetplan.emit.bench import bench_argvs
from hetplan.emit.dynamo import vllm_part, worker_argv
from hetplan.emit.router import router_argvs
from hetplan.emit.shell import commands_in, parse_command
from hetplan.emit.vllm_check import check
from check_venv import require_check_venv
from hetplan.engine_limits import EngineLimits
from hetplan.plan import load_plan
from hetplan.planner import plan_scenario
from hetplan.scenario import load_scenario
from test_moe_ep import _ep_plan, _serve_argvs       # tests/ is on sys.path (rootdir tests)
from test_prefix import conv_plans

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "tests" / "data" / "emit_plan.json"

require_check_venv("the vLLM check venv")


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


def _workload_plans():
    """The committed plans of the repo's embedded scenarios (deploy/<scenario>/plan.json,
    per member for a fleet): test_deploy_configs proves them what `hetplan solve --validate`
    gives now, and they are the plans the committed configs serve. Solving the scenarios
    here again (without --validate) cost ~37 CPU-s, one solve stopping at its wall-clock
    limit under load, for plans with the same vLLM flag sets."""
    from hetplan.fleet.spec import is_fleet_file
    cat = load_catalog()
    plans = {}
    for scen in sorted((ROOT / "workloads").glob("*.yaml")):
        if not is_fleet_file(scen):
            plans[scen.stem] = load_plan(ROOT / "deploy" / scen.stem / "plan.json")
            continue
        members = sorted((ROOT / "deploy" / scen.stem).glob("*/plan.json"))
        assert members, f"deploy/{scen.stem} holds no member plans"
        plans |= {f"{scen.stem}/{p.parent.name}": load_plan(p) for p in members}
    # a class decoded by pools of two shapes, which the bench labels must handle: the default
    # scenario without the per-pool cost decodes on H100 TP2 decode + colocated pools; its
    # colocated pool is re-shaped to TP4 here (with the $2/h pool cost the plan is one pool)
    free = plan_scenario(load_scenario(ROOT / "workloads" / "default.yaml", cat)
                         .with_constraints(pool_cost_usd_per_hour=0.0), cat)
    pools = [q.model_copy(update={"tp": 4, "gpus": 4 * q.replicas})
             if q.role == "colocated" else q for q in free.pools]
    assert len(pools) > 1 and any(q.role == "colocated" for q in pools)
    return plans | {"mixed-shapes": free.model_copy(update={"pools": pools})}


def _emitted_groups() -> dict[str, list]:
    """The golden plan, its hostile-name variant, the Mooncake/LMCache connector variants, a
    multi-node variant, the engine-mode variants, and every embedded scenario's committed
    plan."""
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
    return groups | {name: _items(p) for name, p in _workload_plans().items()}


def _assert_emitted_read_back(groups, results):
    flat = [it for g in groups.values() for it in g]
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
    assert any("hetplan_gpu" not in m for m in meta)     # mixed-shapes decodes on two shapes
    hostile_served = [s for (k, a, _), s in zip(groups["hostile"], results[
        len(groups["golden"]):len(groups["golden"]) + len(groups["hostile"])])
        if k == "serve"]
    assert hostile_served and all(r.ok for r in hostile_served)


def _ep_items():
    """The `vllm serve` lines of an EP decode pool (tp 2 x dp 4) beside a plain prefill."""
    plan = _ep_plan()
    cmds = [a for cs in _serve_argvs(emit(plan, "vllm", EmitOptions())).values()
            for _, a in cs]
    return [("serve", a[2:], plan.model_ref) for a in cmds]


def _assert_ep_read_back(items, results):
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert any("--enable-expert-parallel" in argv for _, argv, _ in items)
    for (_, argv, _), r in zip(items, results):
        ep = "--enable-expert-parallel" in argv
        assert r.summary["enable_expert_parallel"] is ep
        assert r.summary["data_parallel_size"] == (4 if ep else 1)
        assert r.summary["data_parallel_size_local"] == (4 if ep else 1)
        assert r.summary["tensor_parallel_size"] == (2 if ep else 1)


def _prefix_items(tmp_path):
    """The prefill `vllm serve` line with prefix caching and the cache-aware router line of
    test_prefix.py's conversation plan."""
    from hetplan.emit.shell import commands_in, parse_command
    plan = conv_plans(tmp_path, load_catalog(), keys=("on",))["on"][1]
    items = []
    for rel, text in sorted(emit(plan, "vllm", EmitOptions()).items()):
        if not rel.endswith(".sh"):
            continue
        for c in commands_in(text, "vllm serve"):
            if "--enable-prefix-caching" in c and "vllm bench serve" not in c:
                items.append(("serve", parse_command(c)[1][2:], plan.model_ref or plan.model))
        for c in commands_in(text, "vllm-router"):
            if "cache_aware" in c:
                items.append(("router", parse_command(c)[1][1:], None))
    assert {k for k, _, _ in items} == {"serve", "router"}
    return items


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


def _refusal_cases():
    """(item, needle): configs vLLM 0.33 would refuse (needle: a word of its error), and
    their unmodified bases (needle None: they must pass)."""
    bench = ["--dataset-name", "random", "--random-range-ratio"]
    router = ["--vllm-pd-disaggregation", "--prefill", "http://p:8000", "--decode",
              "http://d:8000"]
    return ([(("serve", BASE, "llama-3.1-8b"), None)]
            + [(("serve", BASE + extra, "llama-3.1-8b"), needle) for extra, needle in BAD]
            + [(("bench", bench + ['{"input":0.5,"output":0.2}'], None), None),
               (("bench", bench + ["1.5"], None), "outside [0, 1)"),
               (("bench", bench + ['{"input":0.5}'], None), "output"),
               (("router", router, None), None),
               (("router", router + ["--policy", "fastest"], None), "invalid choice"),
               (("router", router + ["--kv-connector", "p2pnccl"], None), "invalid choice")])


def _assert_refused(cases, results):
    """The check is not a rubber stamp: what vLLM would refuse comes back refused."""
    for (item, needle), r in zip(cases, results):
        if needle is None:
            assert r.ok, (item, r.error)
            continue
        assert not r.ok, item
        assert needle.lower() in r.error.lower(), (item, r.error)


def test_vllm_accepts_every_emitted_command_and_refuses_bad_configs(tmp_path):
    """One batch: the emitted commands (golden plan and variants, every embedded scenario's
    plan, the EP and prefix-caching plans) pass and vLLM reads back what we meant; the bad
    configs come last, so none of them can affect how a good one is checked."""
    groups = _emitted_groups()
    emitted = [it for g in groups.values() for it in g]
    ep, prefix, refusals = _ep_items(), _prefix_items(tmp_path), _refusal_cases()
    results = check(emitted + ep + prefix + [it for it, _ in refusals])
    assert len(results) == len(emitted) + len(ep) + len(prefix) + len(refusals)
    cut = np.cumsum([len(emitted), len(ep), len(prefix)])
    _assert_emitted_read_back(groups, results[:cut[0]])
    _assert_ep_read_back(ep, results[cut[0]:cut[1]])
    bad = [(k, r.error) for (k, _, _), r in zip(prefix, results[cut[1]:cut[2]]) if not r.ok]
    assert not bad, bad
    _assert_refused(refusals, results[cut[2]:])
