"""Target `k8s`: plain manifests. Per pool a Deployment (a LeaderWorkerSet when a replica
spans nodes through pipeline parallelism) and a Service; the router as a Deployment and a
Service. Pods land on nodes labelled `hetplan/gpu=<catalog GPU name>` (label your nodes, or
swap the selector for your cluster's GPU feature-discovery label).

Every `$` in a user value is doubled: Kubernetes expands `$(VAR)` in container args, and
`$$` is its escape. YAML is written with yaml.safe_dump, keys sorted.
"""

from __future__ import annotations

import shlex

import yaml

from hetplan.emit.instances import slug
from hetplan.emit.router import router_argvs
from hetplan.emit.serve import engine_flags, vendor_note
from hetplan.emit.shell import one_line

PORT = 8000
SIDE_CHANNEL_PORT = 5600
MASTER_PORT = 29500
STARTUP_PROBES = 180           # x 10 s: time allowed to load weights
GPU_LABEL = "hetplan/gpu"
GPU_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu", "intel": "habana.ai/gaudi"}
IMAGE = {"nvidia": "vllm/vllm-openai:v0.33.0"}
IMAGE_PLACEHOLDER = "REPLACE-with-a-vllm-0.33-image-for-{vendor}"
ROUTER_IMAGE = "vllm/vllm-openai:v0.33.0"


def k8s_escape(value: str) -> str:
    return value.replace("$", "$$")


def gpu_resource(vendor: str) -> str:
    """The extended resource a pod requests GPUs of this vendor by (NVIDIA's if unknown)."""
    return GPU_RESOURCE.get(vendor, "nvidia.com/gpu")


def vllm_image(vendor: str) -> str:
    return IMAGE.get(vendor, IMAGE_PLACEHOLDER.format(vendor=vendor))


def nixl_side_channel_env() -> list[dict]:
    """vLLM's NIXL side channel: listen on the pod's IP, at SIDE_CHANNEL_PORT."""
    return [{"name": "VLLM_NIXL_SIDE_CHANNEL_HOST",
             "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "VLLM_NIXL_SIDE_CHANNEL_PORT", "value": str(SIDE_CHANNEL_PORT)}]


def _labels(name: str, extra: dict | None = None) -> dict:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "hetplan",
            **(extra or {})}


def _container(ctx, pool, nodes: int, rank_ref: str | None, headless: bool) -> dict:
    s = ctx.settings[pool.name]
    argv = [k8s_escape(a) for a in
            ["serve", ctx.model_arg, "--served-model-name", ctx.served_name,
             "--host", "0.0.0.0", "--port", str(PORT)] + engine_flags(pool, s, ctx.opts)]
    if nodes > 1:
        argv += ["--nnodes", str(nodes), "--node-rank", rank_ref or "0",
                 "--master-addr", "$(LWS_LEADER_ADDRESS)", "--master-port", str(MASTER_PORT)]
        if headless:
            argv.append("--headless")
    env = []
    connector = ctx.opts.kv_connector.lower()
    if pool.role != "colocated" and connector == "nixl":
        env = nixl_side_channel_env()
    if pool.role == "prefill" and connector == "mooncake":
        env = [{"name": "VLLM_MOONCAKE_BOOTSTRAP_PORT", "value": str(SIDE_CHANNEL_PORT)}]
    gpus = pool.gpus_per_replica // nodes
    res = {gpu_resource(pool.vendor): gpus}
    c = {"name": "vllm", "image": vllm_image(pool.vendor),
         "command": ["vllm"], "args": argv, "resources": {"limits": res},
         "ports": [{"containerPort": PORT, "name": "http"}]}
    if env:
        c["env"] = env
    return c


def _pod(ctx, pool, labels, nodes, rank_ref=None, headless=False) -> dict:
    container = _container(ctx, pool, nodes, rank_ref, headless)
    spec = {"nodeSelector": {GPU_LABEL: pool.gpu}, "containers": [container]}
    if pool.gpus_per_replica > 1:
        # Several GPU workers in a pod talk through /dev/shm (NCCL, vLLM's multiprocess
        # executor); a container's default 64 MB is too small for them.
        spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
        container["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if not headless:
        # vLLM answers /health once the engine is up. Loading weights can take many
        # minutes, so a startup probe (up to 30 min) holds the readiness checks back.
        probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
        container["startupProbe"] = {**probe, "failureThreshold": STARTUP_PROBES}
        container["readinessProbe"] = {**probe, "failureThreshold": 3}
    return {"metadata": {"labels": labels}, "spec": spec}


def pool_manifests(ctx, pool) -> list[dict]:
    name = slug(pool.name)
    nodes = next(len(i.parts) for i in ctx.layout.instances if i.pool.name == pool.name)
    labels = _labels(name, {"hetplan/role": pool.role})
    if nodes == 1:
        workload = {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"replicas": pool.replicas,
                             "selector": {"matchLabels": labels},
                             "template": _pod(ctx, pool, labels, 1)}}
        selector = labels
    else:
        workload = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"replicas": pool.replicas, "leaderWorkerTemplate": {
                        "size": nodes,
                        "leaderTemplate": _pod(ctx, pool, labels, nodes, "0"),
                        "workerTemplate": _pod(ctx, pool, labels, nodes,
                                               "$(LWS_WORKER_INDEX)", headless=True)}}}
        selector = {**labels, "leaderworkerset.sigs.k8s.io/worker-index": "0"}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "labels": labels},
               "spec": {"selector": selector,
                        "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]}}
    return [workload, service]


def router_manifests(ctx) -> list[dict]:
    services = [(p.role, f"http://{slug(p.name)}:{PORT}", SIDE_CHANNEL_PORT)
                for p in ctx.plan.pools]
    docs = []
    for idx, (what, mapped) in enumerate(router_argvs(ctx, services)):
        name = "hetplan-router" + (f"-{slug(what)}" if idx else "")
        labels = _labels(name)
        cmd = shlex.join(["pip", "install", "vllm-router==0.1.17"]) + " && exec " + \
            shlex.join(["vllm-router"] + mapped)
        port = int(mapped[mapped.index("--port") + 1])
        docs += [{"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "labels": labels},
                  "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": {
                               "containers": [{"name": "router", "image": ROUTER_IMAGE,
                                               "command": ["bash", "-c"],
                                               "args": [k8s_escape(cmd)],
                                               "ports": [{"containerPort": port,
                                                          "name": "http"}]}]}}}},
                 {"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": name, "labels": labels},
                  "spec": {"selector": labels,
                           "ports": [{"name": "http", "port": port, "targetPort": port}]}}]
    return docs


class _NoAliasDumper(yaml.SafeDumper):
    """Shared label dicts are written out in full, not as &anchors."""

    def ignore_aliases(self, data) -> bool:
        return True


def dump_yaml(docs: list[dict]) -> str:
    return yaml.dump_all(docs, Dumper=_NoAliasDumper, sort_keys=True,
                         default_flow_style=False, allow_unicode=True, width=1000)


def k8s_files(ctx) -> dict[str, str]:
    files = {f"{slug(p.name)}.yaml": dump_yaml(pool_manifests(ctx, p))
             for p in ctx.plan.pools}
    files["router.yaml"] = dump_yaml(router_manifests(ctx))
    notes = sorted({n for p in ctx.plan.pools if (n := vendor_note(p.vendor))})
    files["README.md"] = "\n".join([
        f"# Kubernetes manifests for plan `{one_line(ctx.plan.scenario)}`", "",
        f"Label each GPU node `{GPU_LABEL}=<GPU>` (e.g. `kubectl label node NODE "
        f"{GPU_LABEL}=H100-SXM`).",
        "Replicas spanning nodes use LeaderWorkerSet (install its controller).",
        "The router reaches each pool through its Service, so it balances across pools and "
        "kube-proxy across a pool's replicas; its pod installs vllm-router at start "
        "(or bake it into the image).",
        "`kubectl apply -f .` in this folder.", *[f"- {n}" for n in notes]]) + "\n"
    return files
