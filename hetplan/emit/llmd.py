"""Target `llm-d`: values for llm-d's model-service Helm chart (llm-d-modelservice, read at
chart v0.4.12) and the gateway's InferencePool (Gateway API inference extension,
`inference.networking.k8s.io/v1`) with an HTTPRoute to it.

Layout (one model; a fleet calls `llmd_files` once per member, into a folder per member:
release, InferencePool and EPP names carry the model's label, so members do not collide):
- `values/<pool>.yaml`: one chart release per plan pool, so a heterogeneous plan (prefill on
  one GPU, decode on another, or several decode pools) maps onto the chart's one `prefill` and
  one `decode` section per release: the release enables the section of its pool's role and
  disables the other. Colocated pools run as `decode` (llm-d routes a request to a decode pod
  alone when no prefill pod takes it).
- Every release labels its pods with the same `modelArtifacts.labels`, which the one
  InferencePool selects; the chart adds `llm-d.ai/role: prefill|decode`, which llm-d's
  inference scheduler (the endpoint picker, EPP) reads to pair a prefill and a decode pod.
- The vLLM command is given in full (`modelCommand: custom`), so what the chart runs is what
  hetplan emits and what the tests check with vLLM's parser. Decode pods run llm-d's routing
  sidecar (the chart's default) in front of vLLM: the sidecar listens on the service port
  and vLLM on the proxy's target port; prefill pods serve on the service port directly.
- GPUs are requested explicitly (the chart otherwise derives tp x data-local), pods select
  nodes labelled `hetplan/gpu=<GPU>` as in the k8s target.

Assumptions: P/D pools use NIXL (the sidecar's `nixlv2` connector; other connectors are
refused); replicas span one node (multi-node pools are refused: use --target k8s or vllm);
the EPP is installed separately (llm-d's inferencepool chart or guide) as Service
`<model>-epp` on port 9002. Helm renders `modelArtifacts.uri` as a template, so a model path
holding `{{` is refused.
"""

from __future__ import annotations

import hashlib
import shlex

from hetplan.emit.instances import slug
from hetplan.emit.k8s import (GPU_LABEL, SIDE_CHANNEL_PORT, STARTUP_PROBES, dump_yaml,
                              gpu_resource, k8s_escape, nixl_side_channel_env, vllm_image)
from hetplan.emit.serve import engine_flags, vendor_note
from hetplan.emit.shell import command_lines, one_line, script
from hetplan.errors import InputError

CHART = "llm-d-modelservice/llm-d-modelservice"
CHART_REPO = "https://llm-d-incubation.github.io/llm-d-modelservice/"
CHART_VERSION = "v0.4.12"
SERVICE_PORT = 8000           # routing.servicePort: what the gateway and the EPP reach
VLLM_DECODE_PORT = 8200       # routing.proxy.targetPort: vLLM behind the decode sidecar
EPP_PORT = 9002               # the endpoint picker's gRPC port (GAIE's default)
GATEWAY = "llm-d-inference-gateway"
SIDECAR_CONNECTOR = {"nixl": "nixlv2"}
# hetplan vendor -> the chart's accelerator.type
ACCELERATOR = {"nvidia": "nvidia", "amd": "amd", "intel": "intel-gaudi"}
HELM_RELEASE_MAX = 53         # Helm's limit on a release name
LABEL_MAX = 63                # Kubernetes' limit on a label value / DNS label


def _bounded(name: str, limit: int) -> str:
    """`name` cut to `limit` characters; a cut name ends in a hash of the whole, so two
    long names that share a prefix stay distinct."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return name[:limit - 9].rstrip("-") + "-" + digest


def model_label(ctx) -> str:
    return _bounded(slug(ctx.plan.model), LABEL_MAX)


def release_name(ctx, pool) -> str:
    """Helm release of `pool`: named after the model too, so members of a fleet sharing a
    namespace (and pool shapes) get distinct releases."""
    return _bounded(f"ms-{model_label(ctx)}-{slug(pool.name)}", HELM_RELEASE_MAX)


def chart_role(pool) -> str:
    return "prefill" if pool.role == "prefill" else "decode"


def vllm_port(pool) -> int:
    return SERVICE_PORT if chart_role(pool) == "prefill" else VLLM_DECODE_PORT


def serve_args(ctx, pool) -> list[str]:
    """What follows `vllm serve` in the pool's container (checked with vLLM's parser);
    the values file holds them with every `$` doubled (Kubernetes expands `$(VAR)` in
    container args, `$$` is its escape)."""
    return [ctx.model_arg, "--served-model-name", ctx.served_name,
            "--host", "0.0.0.0", "--port", str(vllm_port(pool))] + \
        engine_flags(pool, ctx.settings[pool.name], ctx.opts)


def _container(ctx, pool) -> dict:
    gpu_key = gpu_resource(pool.vendor)
    gpus = pool.gpus_per_replica
    env = []
    if pool.role != "colocated":
        env = nixl_side_channel_env()
    ports = [{"containerPort": vllm_port(pool), "name": "http", "protocol": "TCP"}]
    if pool.role != "colocated":
        ports.append({"containerPort": SIDE_CHANNEL_PORT, "name": "nixl", "protocol": "TCP"})
    probe = {"httpGet": {"path": "/health", "port": vllm_port(pool)}, "periodSeconds": 10}
    c = {"name": "vllm",
         "image": vllm_image(pool.vendor),
         "modelCommand": "custom", "command": ["vllm", "serve"],
         "args": [k8s_escape(a) for a in serve_args(ctx, pool)], "env": env, "ports": ports,
         "resources": {"limits": {gpu_key: gpus}, "requests": {gpu_key: gpus}},
         "mountModelVolume": True,
         "startupProbe": {**probe, "failureThreshold": STARTUP_PROBES},
         "readinessProbe": {**probe, "failureThreshold": 3}}
    if gpus > 1:      # NCCL and vLLM's workers talk through /dev/shm (see the k8s target)
        c["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    return c


def _section(ctx, pool) -> dict:
    sec = {"create": True, "replicas": pool.replicas,
           "parallelism": {"tensor": pool.tp, "data": pool.dp, "dataLocal": pool.dp,
                           "workers": 1},
           "accelerator": {"type": ACCELERATOR.get(pool.vendor, "nvidia")},
           "nodeSelector": {GPU_LABEL: pool.gpu},
           "containers": [_container(ctx, pool)], "volumes": []}
    if pool.gpus_per_replica > 1:
        sec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    return sec


def pool_values(ctx, pool) -> dict:
    """The chart values of the release serving `pool`."""
    role = chart_role(pool)
    other = "decode" if role == "prefill" else "prefill"
    return {
        "multinode": False,
        "modelArtifacts": {"name": ctx.served_name, "uri": "hf://" + ctx.model_arg,
                           "labels": model_labels(ctx)},
        "routing": {"servicePort": SERVICE_PORT,
                    "proxy": {"enabled": True, "targetPort": VLLM_DECODE_PORT,
                              "connector": SIDECAR_CONNECTOR["nixl"]}},
        role: _section(ctx, pool),
        other: {"create": False, "replicas": 0},
    }


def model_labels(ctx) -> dict:
    return {"llm-d.ai/inference-serving": "true", "llm-d.ai/model": model_label(ctx),
            "app.kubernetes.io/part-of": "hetplan"}


def gateway_objects(ctx) -> list[dict]:
    """The InferencePool selecting every pod of the model, and an HTTPRoute to it."""
    name = model_label(ctx)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "hetplan"}
    epp = _bounded(name, LABEL_MAX - 4) + "-epp"
    pool = {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": name, "labels": labels},
            "spec": {"selector": {"matchLabels": {
                         k: v for k, v in model_labels(ctx).items()
                         if k != "app.kubernetes.io/part-of"}},
                     "targetPorts": [{"number": SERVICE_PORT}],
                     "endpointPickerRef": {"name": epp, "port": {"number": EPP_PORT},
                                           "failureMode": "FailClose"}}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": name, "labels": labels},
             "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io",
                                      "kind": "Gateway", "name": GATEWAY}],
                      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                 "backendRefs": [{"group": "inference.networking.k8s.io",
                                                  "kind": "InferencePool", "name": name}]}]}}
    return [pool, route]


def _check(ctx) -> None:
    if ctx.disaggregated and ctx.opts.kv_connector.lower() not in SIDECAR_CONNECTOR:
        raise InputError(f"the llm-d target drives KV transfers through its routing sidecar "
                         f"with NIXL; --kv-connector {ctx.opts.kv_connector} is not emitted "
                         "for it (use nixl, or --target k8s)", field="--kv-connector")
    for inst in ctx.layout.instances:
        if len(inst.parts) > 1:
            raise InputError(f"{inst.name} spans {len(inst.parts)} nodes; the llm-d target "
                             "emits single-node replicas only (use --target k8s or vllm)",
                             field="--target")
    if "{{" in ctx.model_arg or "}}" in ctx.model_arg:
        raise InputError("the model path holds '{{' or '}}', which Helm would render as a "
                         "template in modelArtifacts.uri", field="--model-path")


def llmd_files(ctx) -> dict[str, str]:
    _check(ctx)
    files = {f"values/{slug(p.name)}.yaml": dump_yaml([pool_values(ctx, p)])
             for p in ctx.plan.pools}
    files["inferencepool.yaml"] = dump_yaml(gateway_objects(ctx))
    body = [shlex.join(["helm", "repo", "add", "llm-d-modelservice", CHART_REPO]), ""]
    for p in ctx.plan.pools:
        body += command_lines(["helm", "upgrade", "--install"],
                              [release_name(ctx, p), CHART, "--version", CHART_VERSION,
                               "-f", f"values/{slug(p.name)}.yaml"])
    body += ["", shlex.join(["kubectl", "apply", "-f", "inferencepool.yaml"])]
    files["install.sh"] = script(
        [f"hetplan: llm-d releases for plan {ctx.plan.scenario} (one per pool), then the",
         "InferencePool and HTTPRoute. Run in this folder with kubectl's namespace set."],
        body)
    notes = sorted({n for p in ctx.plan.pools if (n := vendor_note(p.vendor))})
    files["README.md"] = "\n".join([
        f"# llm-d deployment for plan `{one_line(ctx.plan.scenario)}`", "",
        f"One `{CHART}` release ({CHART_VERSION}) per pool (`values/<pool>.yaml`), all "
        f"labelled `llm-d.ai/model: {model_label(ctx)}`; `inferencepool.yaml` holds the "
        "InferencePool that selects them and an HTTPRoute from the Gateway "
        f"`{GATEWAY}` to it.",
        f"Install llm-d's gateway and its inference scheduler (EPP) with its P/D profile as "
        f"Service `{gateway_objects(ctx)[0]['spec']['endpointPickerRef']['name']}` "
        f"(port {EPP_PORT}), label each GPU node `{GPU_LABEL}=<GPU>`, then run "
        "`install.sh`.", *[f"- {n}" for n in notes]]) + "\n"
    return files
