"""The `vllm-router` in front of the instances (flags of vllm-router 0.1.17, checked with
its own parser in the tests): P/D mode lists every prefill and decode instance; colocated
instances get a plain load-balancing router (a second one on the next port when a plan
mixes both)."""

from __future__ import annotations

from hetplan.emit.serve import KV_CONNECTORS
from hetplan.emit.shell import command_lines, script

ROUTER = ["vllm-router"]


def instance_endpoints(ctx) -> list[tuple[str, str, int]]:
    """(role, URL, KV bootstrap port) of every instance."""
    return [(i.pool.role, i.url, i.parts[0].side_channel_port) for i in ctx.layout.instances]


def router_argvs(ctx, endpoints: list[tuple[str, str, int]] | None = None
                 ) -> list[tuple[str, list[str]]]:
    """(what it fronts, argv after `vllm-router`) for each router process; `endpoints`
    default to the instances (Kubernetes passes one Service per pool)."""
    endpoints = instance_endpoints(ctx) if endpoints is None else endpoints
    pre = [(u, p) for r, u, p in endpoints if r == "prefill"]
    dec = [u for r, u, _ in endpoints if r == "decode"]
    col = [u for r, u, _ in endpoints if r == "colocated"]
    port = ctx.opts.router_port
    out = []
    if pre:
        mooncake = ctx.opts.kv_connector.lower() == "mooncake"
        argv = ["--host", "0.0.0.0", "--port", str(port), "--vllm-pd-disaggregation"]
        for u, p in pre:                # Mooncake: the prefill engine's bootstrap port
            argv += ["--prefill", u] + ([str(p)] if mooncake else [])
        for u in dec:
            argv += ["--decode", u]
        argv += ["--prefill-policy", prefill_policy(ctx),
                 "--decode-policy", ctx.opts.router_policy]
        kv = KV_CONNECTORS.get(ctx.opts.kv_connector.lower(), (None,) * 4)[3]
        if kv:
            argv += ["--kv-connector", kv]
        out.append(("prefill/decode", argv))
        port += 1
    if col:
        out.append(("colocated", ["--host", "0.0.0.0", "--port", str(port),
                                  "--policy", ctx.opts.router_policy, "--worker-urls", *col]))
    return out


def prefill_policy(ctx) -> str:
    """`cache_aware` where the plan's prefill hit rates assumed cache-aware routing (prompts
    go to the prefill instance holding their prefix), else the chosen policy."""
    pc = ctx.plan.prefix_cache
    return "cache_aware" if pc is not None and pc.routing == "cache_aware" else \
        ctx.opts.router_policy


def router_url(ctx, role: str = "decode") -> str:
    """Where bench.sh sends requests for a class served by a pool of `role` (the router
    runs beside it: loopback)."""
    pd = any(i.pool.role == "prefill" for i in ctx.layout.instances)
    port = ctx.opts.router_port + (1 if role == "colocated" and pd else 0)
    return f"http://127.0.0.1:{port}"


def router_commands(ctx) -> str:
    body = []
    for what, argv in router_argvs(ctx):
        body.append(f"# router for the {what} instances")
        body += command_lines(ROUTER, argv, suffix="&")
        body.append("")
    return script(["hetplan: vllm-router in front of the plan's instances "
                   "(pip install vllm-router).",
                   "Policies balance load inside a phase; the plan's class split is not "
                   "enforced."], body + ["wait"])
