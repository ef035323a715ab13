"""Target `vllm`: one launch script per node (`vllm serve` per instance), the router in
front, a benchmark script replaying the workload's lengths, hosts and a README."""

from __future__ import annotations

import shlex

from hetplan.emit.bench import bench_script
from hetplan.emit.instances import Instance
from hetplan.emit.router import router_commands
from hetplan.emit.serve import (CHAT_TEMPLATE_HEADROOM_TOKENS, connector_note, instance_env,
                                serve_argv, vendor_note)
from hetplan.emit.instances import node_file_stem
from hetplan.emit.shell import comment, command_lines, file_part, one_line, script

SERVE = ["vllm", "serve"]


def serve_commands(ctx) -> list[tuple[Instance, int, dict[str, str], list[str]]]:
    """(instance, node rank, env, argv after `vllm serve`) for every vLLM process."""
    out = []
    for inst in ctx.layout.instances:
        s = ctx.settings[inst.pool.name]
        for part in inst.parts:
            out.append((inst, part.rank, instance_env(inst, part.rank, ctx.opts),
                        serve_argv(inst, s, ctx.model_arg, ctx.served_name, ctx.opts,
                                   part.rank)))
    return out


def gpus_used(ctx) -> dict[str, int]:
    """Host name -> GPUs the plan's instances use on it (a node may have more)."""
    used: dict[str, int] = {}
    for inst in ctx.layout.instances:
        for part in inst.parts:
            used[part.host.name] = used.get(part.host.name, 0) + len(part.gpu_indices)
    return used


def _node_gpus(host, used: int, placeholder: bool) -> str:
    """'6x L40S used of an 8-GPU node' (placeholder nodes: the GPUs to rent)."""
    if placeholder:
        return f"{used}x {host.gpu} (a node with at least {used}; up to {host.gpus} per node)"
    return f"{used}x {host.gpu} used of {host.gpus} on the node"


def _placeholder_note(ctx) -> list[str]:
    if not ctx.layout.placeholder_hosts:
        return [f"Hosts from the plan's placement (inventory {ctx.plan.placement.inventory})."]
    return ["Host names are placeholders hetplan chose (the plan has no placement): make",
            "each name in hosts.txt resolve to a real node (DNS or /etc/hosts), or edit it."]


def node_scripts(ctx) -> dict[str, str]:
    by_host: dict[str, list[str]] = {}
    for inst, rank, env, argv in serve_commands(ctx):
        host = inst.parts[rank].host
        p = inst.pool
        body = by_host.setdefault(host.name, [])
        where = (f"node {rank + 1} of {len(inst.parts)}, " if len(inst.parts) > 1 else "")
        body.append(comment(f"{inst.name}: {p.role}, {p.gpu} tp={p.tp} pp={p.pp}"
                            + (f" dp={p.dp}" if p.dp > 1 else "") + (" ep" if p.ep else "")
                            + f", {where}"
                            f"GPUs {','.join(map(str, inst.parts[rank].gpu_indices))}"
                            + (f", port {inst.port}" if rank == 0 else ", headless")))
        note = vendor_note(p.vendor)
        if note:
            body.append(comment(note))
        log = shlex.quote(f"logs/{file_part(inst.name)}.node{rank}.log")
        body += command_lines(SERVE, argv, env, suffix=f"> {log} 2>&1 &")
        body.append("")
    files = {}
    used = gpus_used(ctx)
    for name, body in by_host.items():
        host = next(h for h in ctx.layout.hosts if h.name == name)
        files[f"nodes/{node_file_stem(name)}.sh"] = script(
            [f"hetplan: vLLM instances on node {name}: "
             f"{_node_gpus(host, used[name], ctx.layout.placeholder_hosts)}, "
             f"address {host.address}.",
             f"Plan: scenario {ctx.plan.scenario}, model {ctx.plan.model}.",
             *_placeholder_note(ctx),
             "Run on that node; logs go to ./logs/."],
            ["mkdir -p logs", ""] + body + ["wait"])
    return files


def vllm_files(ctx) -> dict[str, str]:
    files = node_scripts(ctx)
    files["router.sh"] = router_commands(ctx)
    files["bench.sh"] = bench_script(ctx)
    files["hosts.txt"] = hosts_txt(ctx)
    files["README.md"] = readme(ctx)
    return files


def hosts_txt(ctx) -> str:
    """`address<TAB>name<TAB># GPUs used` per node, in /etc/hosts form."""
    used = gpus_used(ctx)
    return "".join(f"{one_line(h.address)}\t{one_line(h.name)}\t"
                   f"{comment(_node_gpus(h, used[h.name], ctx.layout.placeholder_hosts))}\n"
                   for h in ctx.layout.hosts)


def readme(ctx) -> str:
    plan = ctx.plan
    lines = [f"# vLLM launch files for plan `{one_line(plan.scenario)}`", "",
             f"Model `{one_line(ctx.model_arg)}` served as `{one_line(ctx.served_name)}`; "
             f"{len(ctx.layout.instances)} instance(s) on {len(ctx.layout.hosts)} node(s).",
             "", *map(one_line, _placeholder_note(ctx)), "",
             "1. On each node run `nodes/<node>.sh` (vLLM 0.33; one `vllm serve` per replica).",
             "2. Start the router: `router.sh` (package `vllm-router`).",
             "3. Replay the workload's lengths: `bench.sh`, then read the results back with",
             "   `hetplan calibrate import-bench results/<file>.json`.", "",
             "| pool | role | GPU | tp | pp | replicas | max-model-len | max-num-seqs | "
             "max-num-batched-tokens | kv-cache-dtype |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in plan.pools:
        s = ctx.settings[p.name]
        lines.append(f"| {one_line(p.name)} | {p.role} | {p.gpu} | {p.tp} | {p.pp} | "
                     f"{p.replicas} | "
                     f"{s.max_model_len} | {s.max_num_seqs} | {s.max_num_batched_tokens} | "
                     f"{s.kv_cache_dtype} |")
    notes = sorted({n for p in plan.pools if (n := vendor_note(p.vendor))})
    if ctx.disaggregated and (n := connector_note(ctx.opts.kv_connector)):
        notes.append(n)
    lines += ["", "Settings: max-model-len covers the longest request of the pool's classes "
              f"plus {CHAT_TEMPLATE_HEADROOM_TOKENS} tokens for a chat template, within the "
              "model's context; "
              "max-num-seqs is the batch the planner sized the pool at; the KV connector is "
              f"`{ctx.opts.kv_connector}`."]
    if ctx.disaggregated:
        lines.append("The router balances load inside each phase; it does not enforce the "
                     "plan's per-class split between decode pools of different GPUs.")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
