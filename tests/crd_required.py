"""The fields custom resources must carry, as their CRDs require, for objects the emitters
write whose schema kubernetes-validate does not ship. Each rule names its source; embedded
pod templates are left to kubernetes-validate (`pod_templates` extracts them as v1
PodTemplate objects).

Sources read (2026-11-30):
- InferencePool: kubernetes-sigs/gateway-api-inference-extension@84436a96 (tag v1.6.0 line),
  config/crd/bases/inference.networking.k8s.io_inferencepools.yaml, version v1: `spec`
  required; spec requires `selector` and `targetPorts`; selector requires `matchLabels`;
  targetPorts 1..8 items, each requiring `number` in 1..65535; `endpointPickerRef` requires
  `name`, and `port` (with `number`) when its kind is Service or unset (x-kubernetes-validation).
- DynamoGraphDeployment: ai-dynamo/dynamo deploy/operator/api/v1beta1
  (dynamographdeployment_types.go, dynamocomponentdeployment_types.go): `components` is a
  list map keyed by `name` (required, 1..63 chars, ^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$,
  unique case-insensitively), at most 25; `backendFramework` one of sglang|vllm|trtllm;
  `replicas` >= 0; `podTemplate` a core v1 PodTemplateSpec.
- HTTPRoute (gateway.networking.k8s.io/v1): parentRefs[] and rules[].backendRefs[] each need
  `name` (Gateway API's ParentReference / BackendObjectReference; recalled, not re-read); at
  most 16 rules; a header match (HTTPHeaderMatch) needs `name` and a non-empty `value`, its
  `type` Exact or RegularExpression (recalled, not re-read).
- LeaderWorkerSet: only its leader/worker pod templates are checked (as PodTemplateSpecs);
  its CRD was not read.
- ScaledObject (keda.sh/v1alpha1): kedacore/keda config/crd/bases/keda.sh_scaledobjects.yaml
  (read at 00f66342): `spec` requires `scaleTargetRef` (requiring `name`) and `triggers`;
  each trigger requires `type` and `metadata`, a map of strings; min/maxReplicaCount,
  pollingInterval, cooldownPeriod integers. The cron scaler (keda.sh/docs/scalers/cron,
  read 2026-11-30): `timezone`, `start`, `end` and `desiredReplicas` required, start and
  end not the same; start/end five-field Linux cron.
"""

from __future__ import annotations

import re

DGD_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
DGD_BACKENDS = {"sglang", "vllm", "trtllm"}
DGD_MAX_COMPONENTS = 25


def _need(obj, key: str, where: str, errors: list[str]):
    if not isinstance(obj, dict) or key not in obj or obj[key] in (None, ""):
        errors.append(f"{where}.{key} is required")
        return None
    return obj[key]


def inference_pool_errors(doc: dict) -> list[str]:
    errors: list[str] = []
    spec = _need(doc, "spec", "", errors) or {}
    sel = _need(spec, "selector", "spec", errors) or {}
    labels = _need(sel, "matchLabels", "spec.selector", errors)
    if labels is not None and not isinstance(labels, dict):
        errors.append("spec.selector.matchLabels is not a map")
    ports = _need(spec, "targetPorts", "spec", errors) or []
    if ports and not 1 <= len(ports) <= 8:
        errors.append(f"spec.targetPorts has {len(ports)} items (1..8)")
    for i, p in enumerate(ports):
        n = _need(p, "number", f"spec.targetPorts[{i}]", errors)
        if n is not None and not (isinstance(n, int) and 1 <= n <= 65535):
            errors.append(f"spec.targetPorts[{i}].number {n!r} outside 1..65535")
    epp = spec.get("endpointPickerRef")
    if epp is not None:
        _need(epp, "name", "spec.endpointPickerRef", errors)
        if epp.get("kind", "Service") == "Service":
            port = _need(epp, "port", "spec.endpointPickerRef", errors)
            if port is not None:
                _need(port, "number", "spec.endpointPickerRef.port", errors)
    return errors


def dgd_errors(doc: dict) -> list[str]:
    errors: list[str] = []
    spec = _need(doc, "spec", "", errors) or {}
    if spec.get("backendFramework") not in DGD_BACKENDS | {None}:
        errors.append(f"spec.backendFramework {spec['backendFramework']!r} not one of "
                      f"{sorted(DGD_BACKENDS)}")
    comps = spec.get("components") or []
    if len(comps) > DGD_MAX_COMPONENTS:
        errors.append(f"spec.components has {len(comps)} items (at most 25)")
    seen: set[str] = set()
    for i, c in enumerate(comps):
        name = _need(c, "name", f"spec.components[{i}]", errors)
        if name is None:
            continue
        if not (len(name) <= 63 and DGD_NAME.match(name)):
            errors.append(f"spec.components[{i}].name {name!r} is not a valid component name")
        if name.lower() in seen:
            errors.append(f"spec.components[{i}].name {name!r} repeats")
        seen.add(name.lower())
        if c.get("replicas") is not None and c["replicas"] < 0:
            errors.append(f"spec.components[{i}].replicas < 0")
    return errors


def http_route_errors(doc: dict) -> list[str]:
    errors: list[str] = []
    spec = _need(doc, "spec", "", errors) or {}
    for i, ref in enumerate(spec.get("parentRefs") or []):
        _need(ref, "name", f"spec.parentRefs[{i}]", errors)
    rules = spec.get("rules") or []
    if len(rules) > 16:
        errors.append(f"spec.rules holds {len(rules)} rules (at most 16)")
    for i, rule in enumerate(rules):
        for j, ref in enumerate(rule.get("backendRefs") or []):
            _need(ref, "name", f"spec.rules[{i}].backendRefs[{j}]", errors)
        for j, match in enumerate(rule.get("matches") or []):
            for k, h in enumerate(match.get("headers") or []):
                where = f"spec.rules[{i}].matches[{j}].headers[{k}]"
                _need(h, "name", where, errors)
                _need(h, "value", where, errors)
                if h.get("type", "Exact") not in ("Exact", "RegularExpression"):
                    errors.append(f"{where}.type {h.get('type')!r} is not Exact or "
                                  "RegularExpression")
    return errors


KEDA_INTS = ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod")
KEDA_CRON_KEYS = ("timezone", "start", "end", "desiredReplicas")


def scaled_object_errors(doc: dict) -> list[str]:
    errors: list[str] = []
    spec = _need(doc, "spec", "", errors) or {}
    ref = _need(spec, "scaleTargetRef", "spec", errors) or {}
    _need(ref, "name", "spec.scaleTargetRef", errors)
    for k in KEDA_INTS:
        if k in spec and not (isinstance(spec[k], int) and not isinstance(spec[k], bool)):
            errors.append(f"spec.{k} is not an integer")
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount")
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        errors.append(f"spec.minReplicaCount {lo} > maxReplicaCount {hi}")
    triggers = _need(spec, "triggers", "spec", errors) or []
    for i, t in enumerate(triggers):
        where = f"spec.triggers[{i}]"
        kind = _need(t, "type", where, errors)
        meta = _need(t, "metadata", where, errors) or {}
        if not all(isinstance(v, str) for v in meta.values()):
            errors.append(f"{where}.metadata holds a non-string value")
        if kind == "cron":
            for k in KEDA_CRON_KEYS:
                _need(meta, k, f"{where}.metadata", errors)
            if meta.get("start") == meta.get("end"):
                errors.append(f"{where}: start and end are the same")
            for k in ("start", "end"):
                if isinstance(meta.get(k), str) and len(meta[k].split()) != 5:
                    errors.append(f"{where}.metadata.{k} is not a five-field cron")
    return errors


CHECKS = {("inference.networking.k8s.io/v1", "InferencePool"): inference_pool_errors,
          ("keda.sh/v1alpha1", "ScaledObject"): scaled_object_errors,
          ("nvidia.com/v1beta1", "DynamoGraphDeployment"): dgd_errors,
          ("gateway.networking.k8s.io/v1", "HTTPRoute"): http_route_errors}


def custom_resource_errors(doc: dict) -> list[str] | None:
    """The CRD rule violations of `doc`, or None when `doc` is not a custom resource
    listed here."""
    check = CHECKS.get((doc.get("apiVersion"), doc.get("kind")))
    return None if check is None else check(doc)


def as_pod_template(template: dict, name: str) -> dict:
    """A v1 PodTemplate object wrapping a PodTemplateSpec, for kubernetes-validate."""
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name},
            "template": template}


def pod_templates(doc: dict) -> list[dict]:
    """The PodTemplateSpecs embedded in a custom resource (LeaderWorkerSet,
    DynamoGraphDeployment), each wrapped as a v1 PodTemplate."""
    name = doc.get("metadata", {}).get("name", "x")
    spec = doc.get("spec", {})
    if doc.get("kind") == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate", {})
        return [as_pod_template(lwt[k], f"{name}-{k.lower()}")
                for k in ("leaderTemplate", "workerTemplate") if k in lwt]
    if doc.get("kind") == "DynamoGraphDeployment":
        return [as_pod_template(c["podTemplate"], f"{name}-{c.get('name', i)}")
                for i, c in enumerate(spec.get("components", [])) if "podTemplate" in c]
    return []


# llm-d-modelservice values (llm-d-incubation/llm-d-modelservice@3051935e, chart v0.4.12,
# charts/llm-d-modelservice/values.schema.json): `modelArtifacts` and `routing` allow only
# the keys below (additionalProperties: false), as does each role's `parallelism` (integers);
# `multinode` and `<role>.create` are booleans, `<role>.replicas` an integer, `containers`
# and `volumes` arrays; container `args` are strings; `routing.proxy.targetPort` an integer.
# The chart's custom-command container keys are `modelCommand` (vllmServe | imageDefault |
# custom; custom needs `command`) and `mountModelVolume`; the rest is a core v1 Container.
MS_MODEL_ARTIFACTS = {"authSecretName", "labels", "mountPath", "name", "readOnly", "size", "uri"}
MS_ROUTING = {"proxy", "servicePort"}
MS_PARALLELISM = {"data", "dataLocal", "tensor", "workers"}
MS_MODEL_COMMANDS = {"vllmServe", "imageDefault", "custom"}
MS_CHART_KEYS = {"modelCommand", "mountModelVolume"}


def modelservice_values_errors(values: dict) -> list[str]:
    errors: list[str] = []
    for key, allowed in (("modelArtifacts", MS_MODEL_ARTIFACTS), ("routing", MS_ROUTING)):
        extra = set(values.get(key, {})) - allowed
        if extra:
            errors.append(f"{key} has keys the chart's schema refuses: {sorted(extra)}")
    if not isinstance(values.get("multinode", False), bool):
        errors.append("multinode is not a boolean")
    proxy = values.get("routing", {}).get("proxy", {})
    if "targetPort" in proxy and not isinstance(proxy["targetPort"], int):
        errors.append("routing.proxy.targetPort is not an integer")
    for role in ("prefill", "decode"):
        sec = values.get(role, {})
        if not isinstance(sec.get("create", True), bool):
            errors.append(f"{role}.create is not a boolean")
        if not isinstance(sec.get("replicas", 0), int):
            errors.append(f"{role}.replicas is not an integer")
        par = sec.get("parallelism", {})
        if set(par) - MS_PARALLELISM or not all(isinstance(v, int) for v in par.values()):
            errors.append(f"{role}.parallelism: keys {sorted(par)} / non-integer values")
        for i, c in enumerate(sec.get("containers", [])):
            if c.get("modelCommand", "custom") not in MS_MODEL_COMMANDS:
                errors.append(f"{role}.containers[{i}].modelCommand {c['modelCommand']!r}")
            if c.get("modelCommand", "custom") == "custom" and not c.get("command"):
                errors.append(f"{role}.containers[{i}]: a custom modelCommand needs command")
            if not all(isinstance(a, str) for a in c.get("args", [])):
                errors.append(f"{role}.containers[{i}].args holds a non-string")
    return errors


def modelservice_pod_template(values: dict, role: str) -> dict:
    """The pod part a release's `role` section renders to, as a v1 PodTemplate: its
    containers without the chart's own keys, its volumes and node selector."""
    sec = values[role]
    spec = {"containers": [{k: v for k, v in c.items() if k not in MS_CHART_KEYS}
                           for c in sec["containers"]]}
    if sec.get("volumes"):
        spec["volumes"] = sec["volumes"]
    if sec.get("nodeSelector"):
        spec["nodeSelector"] = sec["nodeSelector"]
    labels = {**values["modelArtifacts"]["labels"], "llm-d.ai/role": role}
    return as_pod_template({"metadata": {"labels": labels}, "spec": spec}, f"ms-{role}")
