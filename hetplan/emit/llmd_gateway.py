"""Target `llm-d` for a fleet: one HTTPRoute on the shared gateway routing each request to
its model's InferencePool by the model name it asks for.

Each member's `llm-d/` folder (`emit/llmd.py`) holds its releases, its InferencePool (named
after the model's label) and an HTTPRoute matching every path, written for a model alone
behind the gateway. Behind one gateway the model name is in the request body (OpenAI API:
`"model": ...`), which HTTPRoute cannot match; the Gateway API inference extension's
body-based router (its `body-based-routing` chart, one per gateway) copies it into the
header `X-Gateway-Model-Name`, and this route matches that header exactly, one rule per
member, to the member's InferencePool. A header match is more specific than a path-only
one, so requests naming a member's model reach it even where the members' own catch-all
routes were applied; a request naming none falls to those (Gateway API's precedence).

Assumptions: each member serves its plan's model name (the emit default,
`--served-model-name` unset), two members never serve one model (their pools would share
a name), and the gateway implementation is Istio (`provider.name` of the chart; change it
for GKE). Gateway API caps a route at MAX_RULES rules: larger fleets get several routes.
"""

from __future__ import annotations

import shlex

from hetplan.emit.instances import slug
from hetplan.emit.k8s import dump_yaml
from hetplan.emit.llmd import GATEWAY, LABEL_MAX, _bounded
from hetplan.emit.shell import command_lines, one_line, script
from hetplan.errors import InputError
from hetplan.plan import Plan

MODEL_HEADER = "X-Gateway-Model-Name"      # set by the body-based router from `model`
BBR_RELEASE = "body-based-router"
BBR_CHART = "oci://registry.k8s.io/gateway-api-inference-extension/charts/body-based-routing"
BBR_VERSION = "v1.0.1"                     # the inference extension release of the v1 API
BBR_PROVIDER = "istio"
MAX_RULES = 16                             # Gateway API: rules per HTTPRoute


def pool_name(plan: Plan) -> str:
    """The member's InferencePool, as `emit/llmd.py` names it (the model's label)."""
    return _bounded(slug(plan.model), LABEL_MAX)


def gateway_routes(fleet: str, plans: dict[str, Plan]) -> list[dict]:
    """The HTTPRoute(s) sending each member's model name to its InferencePool."""
    seen: dict[str, str] = {}
    for member, plan in plans.items():
        other = seen.setdefault(pool_name(plan), member)
        if other != member:
            raise InputError(f"members {other} and {member} both serve {plan.model}: one "
                             "gateway cannot tell their requests apart", field="members")
    rules = [{"matches": [{"headers": [{"type": "Exact", "name": MODEL_HEADER,
                                        "value": plan.model}],
                           "path": {"type": "PathPrefix", "value": "/"}}],
              "backendRefs": [{"group": "inference.networking.k8s.io",
                               "kind": "InferencePool", "name": pool_name(plan)}]}
             for _, plan in sorted(plans.items())]
    base = _bounded(f"{slug(fleet)}-models", LABEL_MAX - 3)
    chunks = [rules[i:i + MAX_RULES] for i in range(0, len(rules), MAX_RULES)]
    return [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": base if len(chunks) == 1 else f"{base}-{k + 1}",
                          "labels": {"app.kubernetes.io/name": slug(fleet),
                                     "app.kubernetes.io/part-of": "hetplan"}},
             "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io",
                                      "kind": "Gateway", "name": GATEWAY}],
                      "rules": chunk}}
            for k, chunk in enumerate(chunks)]


def fleet_gateway_files(fleet: str, plans: dict[str, Plan]) -> dict[str, str]:
    """`gateway.yaml`, `install.sh` and `README.md` of the fleet's shared route."""
    routes = gateway_routes(fleet, plans)
    body = command_lines(["helm", "upgrade", "--install"],
                         [BBR_RELEASE, BBR_CHART, "--version", BBR_VERSION,
                          "--set", f"provider.name={BBR_PROVIDER}",
                          "--set", f"inferenceGateway.name={GATEWAY}"])
    body += ["", shlex.join(["kubectl", "apply", "-f", "gateway.yaml"])]
    members = [f"- `{one_line(plan.model)}` -> InferencePool `{pool_name(plan)}` (member "
               f"`{one_line(m)}`)" for m, plan in sorted(plans.items())]
    return {
        "gateway.yaml": dump_yaml(routes),
        "install.sh": script(
            [f"hetplan: the shared route of fleet {fleet}: the body-based router (model name",
             "into a header), then one HTTPRoute rule per member. Run after the members'",
             "install.sh, with kubectl's namespace set."], body),
        "README.md": "\n".join([
            f"# llm-d gateway for fleet `{one_line(fleet)}`", "",
            f"One HTTPRoute on the Gateway `{GATEWAY}` routes each request by the model it "
            f"names: the inference extension's body-based router (`{BBR_CHART}` "
            f"{BBR_VERSION}, one per gateway) copies the body's `model` into `{MODEL_HEADER}`,"
            " and each rule matches it exactly:", "", *members, "",
            "Install each member's `llm-d/` first (releases, InferencePool, its EPP), then "
            f"run `install.sh` (provider `{BBR_PROVIDER}`: set `provider.name` for another "
            "gateway implementation)."]) + "\n"}
