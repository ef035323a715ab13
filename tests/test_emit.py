"""Emitters: golden files for a small plan, determinism, quoting of hostile values, hosts
from a placement, and refusals (FP8 on Ampere, unknown connectors, mismatched KV dtypes)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.emit import TARGETS, EmitOptions, build_context, diff_files, emit, write_files
from hetplan.emit.shell import commands_in, parse_command
from hetplan.emit.vllm import serve_commands
from hetplan.errors import InputError
from hetplan.plan import PlacedNode, PlacedShard, Placement, load_plan

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden" / "emit"
PLAN = DATA / "emit_plan.json"
HOSTILE = "my model $(touch /tmp/pwned) `id` 'q' \"dq\" ; rm -rf ~"


@pytest.fixture(scope="module")
def plan():
    return load_plan(PLAN)


@pytest.mark.parametrize("target", TARGETS)
def test_golden(plan, target):
    """Byte-for-byte against tests/golden/emit/<target>; HETPLAN_UPDATE_GOLDEN=1 rewrites."""
    files = emit(plan, target)
    folder = GOLDEN / target
    if os.environ.get("HETPLAN_UPDATE_GOLDEN") == "1":
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
        write_files(folder, files)
    assert diff_files(folder, files) == ""


@pytest.mark.parametrize("target", TARGETS)
def test_deterministic(plan, target):
    assert emit(plan, target) == emit(load_plan(PLAN), target)


def test_hostile_values_are_quoted(plan):
    opts = EmitOptions(model_path=HOSTILE, served_model_name=HOSTILE + " served")
    files = emit(plan, "vllm", opts)
    ctx = build_context(plan, opts)
    expected = [argv for _, _, _, argv in serve_commands(ctx)]
    parsed = []
    for rel, text in sorted(files.items()):
        if rel.startswith("nodes/"):
            parsed += [parse_command(c)[1] for c in commands_in(text, "vllm serve")]
    # every command splits back to exactly the argv it was built from (order: nodes sorted)
    assert sorted(p[2:] for p in parsed) == sorted(expected)
    assert all(p[2] == HOSTILE for p in parsed)
    for rel in ("bench.sh",):
        for c in commands_in(files[rel], "vllm bench serve"):
            argv = parse_command(c)[1]
            assert argv[argv.index("--model") + 1] == HOSTILE + " served"
            assert argv[argv.index("--tokenizer") + 1] == HOSTILE
    # and bash itself reads the same words: no expansion, no command substitution
    import subprocess
    line = commands_in(files["nodes/prefill-l40s-0.sh"], "vllm serve")[0]
    words = subprocess.run(["bash", "-c", "printf '%s\\n' " + line.split("vllm serve", 1)[1]
                            .split(" > ")[0].replace("\\\n", " ")],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert words[0] == HOSTILE


def test_hostile_values_in_yaml(plan):
    opts = EmitOptions(model_path=HOSTILE, served_model_name=HOSTILE)
    for target, rel in (("k8s", "prefill-l40s-tp1-wfp8-kvfp8.yaml"), ("dynamo", "graph.yaml")):
        docs = list(yaml.safe_load_all(emit(plan, target, opts)[rel]))
        text = str(docs)
        assert "$$(touch /tmp/pwned)" in text       # Kubernetes' escape for $(...)
        assert "$(touch" not in text.replace("$$(touch", "")


def test_router_lists_every_instance(plan):
    text = emit(plan, "vllm")["router.sh"]
    argv = parse_command(commands_in(text, "vllm-router")[0])[1]
    pre = [argv[i + 1] for i, a in enumerate(argv) if a == "--prefill"]
    dec = [argv[i + 1] for i, a in enumerate(argv) if a == "--decode"]
    assert pre == ["http://prefill-l40s-0:8000", "http://prefill-l40s-0:8001"]
    assert dec == ["http://decode-h100-sxm-0:8000"]


def test_nixl_side_channels_distinct_per_host(plan):
    ctx = build_context(plan, EmitOptions())
    seen = set()
    for inst, rank, env, argv in serve_commands(ctx):
        key = (env["VLLM_NIXL_SIDE_CHANNEL_HOST"], env["VLLM_NIXL_SIDE_CHANNEL_PORT"])
        port = (inst.parts[rank].host.name, argv[argv.index("--port") + 1])
        assert key not in seen and port not in seen
        seen |= {key, port}


def test_placement_hosts_and_multinode(plan):
    """With a placement, hosts, addresses and GPU indices come from it; a pp=2 replica
    over two nodes becomes a multi-node launch (rank 1 headless) / a LeaderWorkerSet."""
    pools = [plan.pools[0].model_copy(update={"replicas": 1}),
             plan.pools[1].model_copy(update={"pp": 2, "gpus": 4})]
    nodes = [PlacedNode(id=n, gpu=g, gpus=8, rack="r1", fabric="ib", address=a)
             for n, g, a in (("p0", "L40S", "10.0.0.5"), ("d0", "H100-SXM", "10.0.1.5"),
                             ("d1", "H100-SXM", "10.0.1.6"))]
    shards = [PlacedShard(pool=pools[0].name, replica=0, stage=0, node="p0", gpu_indices=[6]),
              PlacedShard(pool=pools[1].name, replica=0, stage=0, node="d0",
                          gpu_indices=[2, 3]),
              PlacedShard(pool=pools[1].name, replica=0, stage=1, node="d1",
                          gpu_indices=[0, 1])]
    placed = plan.model_copy(update={"pools": pools, "placement": Placement(
        inventory="inv.yaml", nodes=nodes, shards=shards)})
    files = emit(placed, "vllm")
    assert sorted(f for f in files if f.startswith("nodes/")) == \
        ["nodes/d0.sh", "nodes/d1.sh", "nodes/p0.sh"]
    env, argv = parse_command(commands_in(files["nodes/d1.sh"], "vllm serve")[0])
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert argv[argv.index("--node-rank") + 1] == "1" and "--headless" in argv
    assert argv[argv.index("--master-addr") + 1] == "10.0.1.5"
    env, _ = parse_command(commands_in(files["nodes/p0.sh"], "vllm serve")[0])
    assert env["CUDA_VISIBLE_DEVICES"] == "6"
    assert env["VLLM_NIXL_SIDE_CHANNEL_HOST"] == "10.0.0.5"
    assert "placeholder" not in files["README.md"]
    k8s = emit(placed, "k8s")
    docs = list(yaml.safe_load_all(k8s["decode-h100-sxm-tp2-wbf16-kvfp8.yaml"]))
    assert [d["kind"] for d in docs] == ["LeaderWorkerSet", "Service"]
    tmpl = docs[0]["spec"]["leaderWorkerTemplate"]
    leader = tmpl["leaderTemplate"]["spec"]["containers"][0]
    worker = tmpl["workerTemplate"]["spec"]["containers"][0]
    # Only the leader serves HTTP, so only it is probed; both hold 2 GPUs and need /dev/shm.
    assert leader["startupProbe"]["httpGet"]["path"] == "/health" and "readinessProbe" in leader
    assert "startupProbe" not in worker and "readinessProbe" not in worker
    for t in ("leaderTemplate", "workerTemplate"):
        assert tmpl[t]["spec"]["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]


def test_k8s_shm_and_probes_follow_the_pool_shape(plan):
    """A pod with several GPU workers gets a memory-backed /dev/shm; a one-GPU pod does not.
    Every serving pod has startup and readiness probes on vLLM's /health."""
    k8s = emit(plan, "k8s")
    by_tp = {}
    for p in plan.pools:
        dep = next(yaml.safe_load_all(k8s[f"{p.name.lower()}.yaml"]))
        by_tp[p.tp] = dep["spec"]["template"]["spec"]
    assert set(by_tp) == {1, 2}
    assert "volumes" not in by_tp[1]
    assert by_tp[2]["containers"][0]["volumeMounts"] == [{"name": "dshm",
                                                          "mountPath": "/dev/shm"}]
    for spec in by_tp.values():
        c = spec["containers"][0]
        assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600


def test_packing_spans_nodes_when_a_replica_does_not_fit(plan):
    big = plan.model_copy(update={"pools": [
        plan.pools[0], plan.pools[1].model_copy(update={"tp": 8, "pp": 2, "replicas": 2})]})
    ctx = build_context(big, EmitOptions())
    dec = [i for i in ctx.layout.instances if i.pool.role == "decode"]
    assert [[p.host.name for p in i.parts] for i in dec] == \
        [["decode-h100-sxm-0", "decode-h100-sxm-1"], ["decode-h100-sxm-2", "decode-h100-sxm-3"]]
    assert all(p.gpu_indices == tuple(range(8)) for i in dec for p in i.parts)


def test_fp8_kv_on_ampere_is_refused(plan):
    a100 = plan.model_copy(update={"pools": [
        p.model_copy(update={"gpu": "A100-80G-SXM"}) if p.role == "decode" else p
        for p in plan.pools]})
    with pytest.raises(InputError, match="FP8 KV cache needs FP8 hardware"):
        emit(a100, "vllm")


def test_fp8_weights_on_ampere_are_refused(plan):
    a100 = plan.model_copy(update={"pools": [
        p.model_copy(update={"gpu": "A100-80G-SXM", "kv_dtype": "fp8"}) for p in plan.pools]})
    with pytest.raises(InputError, match="no fp8 support"):
        emit(a100, "vllm")


def test_mismatched_kv_dtypes_are_refused(plan):
    bad = plan.model_copy(update={"pools": [
        plan.pools[0], plan.pools[1].model_copy(update={"kv_dtype": "bf16"})]})
    with pytest.raises(InputError, match="one KV dtype"):
        emit(bad, "vllm")


@pytest.mark.parametrize("connector,match", [("p2pnccl", "not in vLLM 0.33"),
                                             ("carrier-pigeon", "unknown KV connector")])
def test_bad_connectors_are_refused(plan, connector, match):
    with pytest.raises(InputError, match=match):
        emit(plan, "vllm", EmitOptions(kv_connector=connector))


def test_mooncake_roles(plan):
    ctx = build_context(plan, EmitOptions(kv_connector="mooncake"))
    roles = {inst.pool.role: shlex.split(shlex.join(argv))[argv.index("--kv-transfer-config") + 1]
             for inst, _, _, argv in serve_commands(ctx)}
    assert '"kv_role":"kv_producer"' in roles["prefill"]
    assert '"kv_role":"kv_consumer"' in roles["decode"]


def test_cli_check_reports_drift(tmp_path):
    runner = CliRunner()
    out = tmp_path / "emitted"
    r = runner.invoke(app, ["emit", str(PLAN), "--target", "vllm", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert os.access(out / "router.sh", os.X_OK)
    r = runner.invoke(app, ["emit", str(PLAN), "--target", "vllm", "--out", str(out), "--check"])
    assert r.exit_code == 0, r.output
    (out / "router.sh").write_text((out / "router.sh").read_text() + "# edited\n")
    (out / "nodes" / "prefill-l40s-0.sh").unlink()
    (out / "stray.txt").write_text("x\n")
    r = runner.invoke(app, ["emit", str(PLAN), "--target", "vllm", "--out", str(out), "--check"])
    assert r.exit_code == 1
    for needle in ("-# edited", "+++ b/nodes/prefill-l40s-0.sh", "--- a/stray.txt"):
        assert needle in r.output


def test_cli_several_targets_write_one_folder_each(plan, tmp_path):
    """`--target vllm,k8s --target llm-d` writes each target's files under --out/<target>/,
    the same files one --target at a time writes; --check covers every target; an unknown
    target among them is refused before anything is written."""
    runner = CliRunner()
    out = tmp_path / "all"
    r = runner.invoke(app, ["emit", str(PLAN), "--target", "vllm,k8s", "--target", "llm-d",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["k8s", "llm-d", "vllm"]
    for target in ("vllm", "k8s", "llm-d"):
        assert diff_files(out / target, emit(plan, target)) == "", target
    (out / "k8s" / "router.yaml").write_text("edited\n")
    r = runner.invoke(app, ["emit", str(PLAN), "--target", "vllm,k8s,llm-d", "--out", str(out),
                            "--check"])
    assert r.exit_code == 1 and "router.yaml" in r.output
    assert f"{out / 'vllm'}: {len(emit(plan, 'vllm'))} files up to date" in r.output
    bad = tmp_path / "bad"
    r = runner.invoke(app, ["emit", str(PLAN), "--target", "vllm,slurm", "--out", str(bad)])
    assert r.exit_code != 0 and not bad.exists()


def test_cli_bad_target_is_an_input_error(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "emit", str(PLAN), "--target",
                        "slurm", "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --target: unknown target 'slurm'; expected one of vllm, k8s, dynamo, llm-d"]


def test_bench_results_read_back_by_import_bench(plan, tmp_path):
    """A result file shaped as `vllm bench serve --save-result` writes it (vLLM 0.33 keys;
    each `--metadata KEY=VALUE` becomes a top-level key) is read by import-bench with the
    GPU, TP and model the emitted command recorded."""
    import json

    from hetplan.emit.bench import bench_argvs
    from hetplan.perf.bench_import import measurements_from_bench

    ctx = build_context(plan, EmitOptions())
    for name, argv in bench_argvs(ctx):
        i = argv.index("--metadata") + 1
        meta = {}
        while i < len(argv) and not argv[i].startswith("--"):
            k, v = argv[i].split("=", 1)
            meta[k.strip()] = v.strip()
            i += 1
        result = {"date": "20261124-000000", "backend": "openai", "model_id": ctx.served_name,
                  "num_prompts": 100, "request_rate": 8.0, "max_concurrency": None,
                  "duration": 12.5, "completed": 100, "failed": 0,
                  "total_input_tokens": 50000, "total_output_tokens": 20000,
                  "request_throughput": 8.0, "mean_e2el_ms": 4000.0,
                  "median_ttft_ms": 90.0, "median_tpot_ms": 19.5, **meta}
        path = tmp_path / argv[argv.index("--result-filename") + 1]
        path.write_text(json.dumps(result))
        rows = measurements_from_bench(path)
        assert {(r.gpu, r.tp, r.model) for r in rows} == {("H100-SXM", 2, "llama-3.1-8b")}
        assert rows[0].phase == "decode" and rows[0].measured_ms == 19.5


def test_non_nvidia_pools_get_their_devices_and_a_note(plan):
    amd = plan.model_copy(update={"pools": [
        plan.pools[0], plan.pools[1].model_copy(update={"gpu": "MI300X", "vendor": "amd"})]})
    files = emit(amd, "vllm")
    env, _ = parse_command(commands_in(files["nodes/decode-mi300x-0.sh"], "vllm serve")[0])
    assert env["HIP_VISIBLE_DEVICES"] == "0,1" and "CUDA_VISIBLE_DEVICES" not in env
    assert "ROCm" in files["nodes/decode-mi300x-0.sh"] and "ROCm" in files["README.md"]
    dep = next(yaml.safe_load_all(emit(amd, "k8s")["decode-h100-sxm-tp2-wbf16-kvfp8.yaml"]))
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"] == {"amd.com/gpu": 2}
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"hetplan/gpu": "MI300X"}
    assert c["image"].startswith("REPLACE-")      # no guessed ROCm image tag


@pytest.mark.parametrize("target", ["vllm", "dynamo"])
def test_scripts_are_valid_bash(plan, target, tmp_path):
    import subprocess
    opts = EmitOptions(model_path=HOSTILE, served_model_name=HOSTILE)
    write_files(tmp_path, emit(plan, target, opts))
    scripts = sorted(tmp_path.rglob("*.sh"))
    assert scripts
    for s in scripts:
        r = subprocess.run(["bash", "-n", str(s)], capture_output=True, text=True)
        assert r.returncode == 0, (s, r.stderr)


def test_settings_follow_the_plan(plan):
    """max-model-len = longest request plus the chat-template headroom, rounded up to 256
    (8191+1023+128 -> 9472), capped at the model's context; max-num-seqs = the sized batch;
    prefill budget >= longest prompt."""
    from hetplan.emit.serve import CHAT_TEMPLATE_HEADROOM_TOKENS
    ctx = build_context(plan, EmitOptions())
    pre, dec = (ctx.settings[p.name] for p in plan.pools)
    assert CHAT_TEMPLATE_HEADROOM_TOKENS == 128
    assert (pre.max_model_len, dec.max_model_len) == (9472, 9472)
    assert (pre.max_num_seqs, dec.max_num_seqs) == (4, 96)
    assert pre.max_num_batched_tokens >= 8191 and dec.max_num_batched_tokens == 256
    assert (pre.quantization, dec.quantization) == ("fp8", None)
    huge = plan.model_copy(update={"classes": [
        c.model_copy(update={"input_hi": 200_000}) if c.name == "long" else c
        for c in plan.classes]})
    ctx = build_context(huge, EmitOptions())
    assert {s.max_model_len for s in ctx.settings.values()} == {ctx.spec.max_position_embeddings}
    pre = ctx.settings[plan.pools[0].name]
    assert pre.max_num_batched_tokens >= ctx.spec.max_position_embeddings


def test_solve_emit_writes_what_emit_checks(tmp_path):
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "solve",
                        str(root / "workloads" / "default.yaml"), "--out", str(tmp_path),
                        "--emit", "vllm"], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "vllm" / "router.sh").exists()
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "emit", str(tmp_path / "plan.json"),
                        "--target", "vllm", "--out", str(tmp_path / "vllm"), "--check"],
                       capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
