"""The `vllm-router` in front of the instances (flags of vllm-router 0.1.17, checked with
its own parser in the tests): P/D mode lists every prefill and decode instance; colocated
instances get a plain load-balancing router (a second one on the next port when a plan
mixes both)."""

from __future__ import annotations

from hetplan.emit.serve import KV_CONNECTORS
from hetplan.emit.shell import command_lines, script

ROUTER = ["vllm-router"]


def router_argvs(ctx) -> list[tuple[str, list[str]]]:
    """(what it fronts, argv after `vllm-router`) for each router process."""
    insts = ctx.layout.instances
    pre = [i.url for i in insts if i.pool.role == "prefill"]
    dec = [i.url for i in insts if i.pool.role == "decode"]
    col = [i.url for i in insts if i.pool.role == "colocated"]
    port = ctx.opts.router_port
    out = []
    if pre:
        argv = ["--host", "0.0.0.0", "--port", str(port), "--vllm-pd-disaggregation"]
        for u in pre:
            argv += ["--prefill", u]
        for u in dec:
            argv += ["--decode", u]
        argv += ["--prefill-policy", ctx.opts.router_policy,
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
