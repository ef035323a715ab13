"""Emitters: a plan -> runnable configs (vLLM commands and scripts, Kubernetes manifests,
Dynamo commands and graph, llm-d chart values and InferencePool), as {relative path: text}. Same plan and options -> the same
bytes (no timestamps, sorted YAML, shell values quoted with shlex).

`emit(plan, target, opts)` builds the files; `write_files` replaces the output folder with
them as a whole (hetplan.io.output_folder: stale files of an earlier emit go, a failure
leaves the previous folder as it was); `diff_files` compares them with what is on disk (for
`--check`). Names from the plan reach comments only through `shell.comment`/`one_line` and
file names only through validated ids confined to the folder (`confined_path`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from hetplan.catalog import Catalog, load_catalog
from hetplan.emit.instances import Layout, build_layout
from hetplan.emit.serve import EmitOptions, ServeSettings, pool_settings
from hetplan.enums import EmitTarget
from hetplan.errors import InputError
from hetplan.io import confined_path, output_folder
from hetplan.model import ModelSpec, load_model, model_index
from hetplan.plan import Plan

TARGETS = tuple(EmitTarget)
EXECUTABLE_SUFFIX = ".sh"

# Top-level entries an emit writes (any target); `logs/` and `results/`, which the scripts
# create when run in the folder, and files of other origin stay when the folder is rewritten.
EMITTED_NAMES = frozenset({"nodes", "router.sh", "bench.sh", "hosts.txt", "README.md",
                           "frontend.sh", "graph.yaml", "values", "install.sh"})
K8S_MARK = "app.kubernetes.io/part-of: hetplan"

__all__ = ["TARGETS", "EmitOptions", "Context", "build_context", "emit", "write_files",
           "diff_files", "emitted_entry", "write_into", "check_target"]


@dataclass(frozen=True)
class Context:
    plan: Plan
    cat: Catalog
    spec: ModelSpec
    layout: Layout
    settings: dict[str, ServeSettings]     # pool name -> engine settings
    model_arg: str                         # what `vllm serve` loads
    served_name: str                       # the name clients request
    opts: EmitOptions

    @property
    def disaggregated(self) -> bool:
        return any(p.role in ("prefill", "decode") for p in self.plan.pools)


def _hf_id(plan: Plan) -> str:
    meta = model_index().get(plan.model)
    if meta and meta.get("hf_id"):
        return str(meta["hf_id"])
    return plan.model_ref or plan.model


def build_context(plan: Plan, opts: EmitOptions, cat: Catalog | None = None) -> Context:
    cat = cat or load_catalog()
    if not plan.pools:
        raise InputError("the plan has no pools (was it infeasible?)", field="pools")
    roles = {p.role for p in plan.pools}
    if ("prefill" in roles) != ("decode" in roles):
        raise InputError("a disaggregated plan needs both prefill and decode pools",
                         field="pools")
    kv = {p.kv_dtype for p in plan.pools if p.role in ("prefill", "decode")}
    if len(kv) > 1:
        raise InputError("prefill and decode pools store the KV cache differently "
                         f"({', '.join(sorted(kv))}); the KV connectors copy blocks as "
                         "stored, so both phases need one KV dtype", field="pools")
    spec = load_model(plan.model_ref or plan.model)
    settings = {p.name: pool_settings(plan, p, spec, cat.gpu(p.gpu), opts)
                for p in plan.pools}
    return Context(plan=plan, cat=cat, spec=spec, layout=build_layout(plan, cat),
                   settings=settings, model_arg=opts.model_path or _hf_id(plan),
                   served_name=opts.served_model_name or plan.model, opts=opts)


def check_target(target: str, field: str = "--target") -> None:
    """Refuse a target name that is not one of TARGETS."""
    if target not in TARGETS:
        raise InputError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}",
                         field=field)


def emit(plan: Plan, target: str, opts: EmitOptions = EmitOptions(),
         cat: Catalog | None = None) -> dict[str, str]:
    """The files of `target` for `plan`: {relative path: text}."""
    check_target(target)
    ctx = build_context(plan, opts, cat)
    if target == "vllm":
        from hetplan.emit.vllm import vllm_files
        return vllm_files(ctx)
    if target == "k8s":
        from hetplan.emit.k8s import k8s_files
        return k8s_files(ctx)
    if target == "llm-d":
        from hetplan.emit.llmd import llmd_files
        return llmd_files(ctx)
    from hetplan.emit.dynamo import dynamo_files
    return dynamo_files(ctx)


def emitted_entry(path: Path) -> bool:
    """Whether a top-level entry of an output folder is one an emit wrote (and a rewrite
    may replace): the fixed names above, and Kubernetes manifests carrying hetplan's label."""
    if path.name in EMITTED_NAMES:
        return True
    if path.suffix == ".yaml" and path.is_file():
        try:
            return K8S_MARK in path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    return False


def write_into(folder: Path, files: dict[str, str]) -> None:
    """Write `files` under `folder` (each confined to it); shell scripts executable."""
    for rel, text in sorted(files.items()):
        path = confined_path(folder, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        if rel.endswith(EXECUTABLE_SUFFIX):
            path.chmod(0o755)


def write_files(out: Path, files: dict[str, str]) -> None:
    """Replace the emitted files under `out` with `files`, as a whole (see module doc)."""
    top = {rel.split("/", 1)[0] for rel in files}
    with output_folder(out, owns=lambda p: p.name in top or emitted_entry(p)) as tmp:
        write_into(tmp, files)


def diff_files(out: Path, files: dict[str, str]) -> str:
    """A unified diff from the files under `out` to `files` ('' when identical); files
    under `out` that the emitter would not write count as extra (shown as deleted)."""
    out = Path(out)
    on_disk = {str(p.relative_to(out)): p for p in out.rglob("*") if p.is_file()} \
        if out.is_dir() else {}
    chunks = []
    for rel in sorted(set(files) | set(on_disk)):
        old = on_disk[rel].read_text(encoding="utf-8", errors="replace") \
            if rel in on_disk else ""
        new = files.get(rel, "")
        if rel in on_disk and rel in files and old == new:
            continue
        src = f"a/{rel}" if rel in on_disk else "/dev/null"
        dst = f"b/{rel}" if rel in files else "/dev/null"
        lines = list(difflib.unified_diff(old.splitlines(keepends=True),
                                          new.splitlines(keepends=True), src, dst))
        chunks.extend(lines or [f"--- {src}\n", f"+++ {dst}\n"])   # an empty file
    return "".join(c if c.endswith("\n") else c + "\n" for c in chunks)
