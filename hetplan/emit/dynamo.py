"""Target `dynamo`: NVIDIA Dynamo's vLLM backend. A launch script per node with one
`python -m dynamo.vllm --disaggregation-mode prefill|decode` worker per replica (colocated
replicas run without the flag) and the frontend, and a DynamoGraphDeployment
(`nvidia.com/v1beta1`, one component per pool) for Kubernetes. The tests check every worker
command with Dynamo 1.6.1's own parser (`dynamo.vllm.args.parse_args`, which also parses
the vLLM engine arguments) and the vLLM part with vLLM's."""

from __future__ import annotations

import shlex

from hetplan.emit.instances import node_file_stem, slug
from hetplan.emit.k8s import GPU_LABEL, dump_yaml, gpu_resource, k8s_escape
from hetplan.emit.serve import engine_flags, instance_env
from hetplan.emit.shell import comment, command_lines, file_part, one_line, script

WORKER = ["python3", "-m", "dynamo.vllm"]
FRONTEND = ["python3", "-m", "dynamo.frontend"]
IMAGE = "nvcr.io/nvidia/ai-dynamo/vllm-runtime:REPLACE-with-a-release-on-vllm-0.33"
DYNAMO_ONLY = ("--disaggregation-mode",)


def worker_argv(ctx, pool) -> list[str]:
    argv = ["--model", ctx.model_arg, "--served-model-name", ctx.served_name] + \
        engine_flags(pool, ctx.settings[pool.name], ctx.opts)
    if pool.role in ("prefill", "decode"):
        argv += ["--disaggregation-mode", pool.role]
    return argv


def vllm_part(argv: list[str]) -> list[str]:
    """The vLLM engine arguments of a Dynamo worker argv, in `vllm serve` form (model
    first), for checking with vLLM's parser."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in DYNAMO_ONLY:
            i += 2
            continue
        out.append(argv[i])
        i += 1
    m = out.index("--model")
    return [out[m + 1]] + out[:m] + out[m + 2:]


def dynamo_files(ctx) -> dict[str, str]:
    by_host: dict[str, list[str]] = {}
    for inst in ctx.layout.instances:
        if len(inst.parts) > 1:
            from hetplan.errors import InputError
            raise InputError(f"{inst.name} spans {len(inst.parts)} nodes; the dynamo "
                             "target emits single-node workers only (use --target vllm)",
                             field="--target")
        env = instance_env(inst, 0, ctx.opts)
        body = by_host.setdefault(inst.host.name, [])
        body.append(comment(f"{inst.name}: {inst.pool.role}, {inst.pool.gpu} "
                            f"tp={inst.pool.tp}" + (f" dp={inst.pool.dp}" if inst.pool.dp > 1
                                                    else "")
                            + (" ep" if inst.pool.ep else "")))
        log = shlex.quote(f"logs/{file_part(inst.name)}.log")
        body += command_lines(WORKER, worker_argv(ctx, inst.pool), env,
                              suffix=f"> {log} 2>&1 &")
        body.append("")
    files = {}
    for host, body in by_host.items():
        files[f"nodes/{node_file_stem(host)}.sh"] = script(
            [f"hetplan: Dynamo vLLM workers on node {host}.",
             "Needs Dynamo's discovery (etcd) reachable; see README.md."],
            ["mkdir -p logs", ""] + body + ["wait"])
    files["frontend.sh"] = script(
        ["hetplan: Dynamo's OpenAI-compatible frontend (routes to the workers above)."],
        command_lines(FRONTEND, ["--http-port", str(ctx.opts.router_port)]))
    files["graph.yaml"] = dump_yaml([graph(ctx)])
    files["README.md"] = "\n".join([
        f"# Dynamo launch files for plan `{one_line(ctx.plan.scenario)}`", "",
        "Per node: `nodes/<node>.sh`; then `frontend.sh`.",
        "On Kubernetes: `kubectl apply -f graph.yaml` (Dynamo operator; set the "
        "image to a Dynamo release built on vLLM 0.33).",
        f"Pods select nodes labelled `{GPU_LABEL}=<GPU>`."]) + "\n"
    return files


def graph(ctx) -> dict:
    comps = [{"name": "frontend", "type": "frontend", "replicas": 1}]
    for pool in ctx.plan.pools:
        ctype = {"prefill": "prefill", "decode": "decode"}.get(pool.role, "worker")
        args = [k8s_escape(a) for a in worker_argv(ctx, pool)]
        comps.append({"name": slug(pool.name), "type": ctype, "replicas": pool.replicas,
                      "podTemplate": {"spec": {
                          "nodeSelector": {GPU_LABEL: pool.gpu},
                          "containers": [{"name": "main", "image": IMAGE,
                                          "command": WORKER, "args": args,
                                          "resources": {"limits": {
                                              gpu_resource(pool.vendor):
                                                  pool.gpus_per_replica}}}]}}})
    return {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment",
            "metadata": {"name": slug(f"hetplan-{ctx.plan.scenario}")},
            "spec": {"backendFramework": "vllm", "components": comps}}
