"""CLI: `hetplan emit PLAN.json --target vllm|k8s|dynamo|llm-d --out DIR [--check]`; several
targets (`--target vllm,k8s` or repeated) write DIR/<target>/ each, in one process."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hetplan.cli.options import out_dir
from hetplan.errors import InputError


def emit_options(model_path, served_model_name, kv_connector):
    from hetplan.bounds import check_text
    from hetplan.emit import EmitOptions
    for flag, value in (("--model-path", model_path), ("--served-model-name", served_model_name)):
        try:                            # both reach scripts, manifests and comments
            if value is not None:
                check_text(value)
        except ValueError as e:
            raise InputError(str(e), field=flag) from None
    return EmitOptions(model_path=model_path, served_model_name=served_model_name,
                       kv_connector=kv_connector)


def emit_to(plan, target: str, out: Path, opts, check: bool) -> int:
    """Write (or with `check`, compare) the target's files; 1 when `check` finds drift."""
    from hetplan.emit import diff_files, emit, write_files

    files = emit(plan, target, opts)
    if check:
        diff = diff_files(out, files)
        if diff:
            sys.stdout.write(diff)
            typer.echo(f"{out}: emitted files differ from the plan (diff above)", err=True)
            return 1
        typer.echo(f"{out}: {len(files)} files up to date")
        return 0
    write_files(out, files)
    typer.echo(f"wrote {len(files)} files under {out}")
    return 0


def register(app: typer.Typer, echo_json) -> None:
    @app.command("emit")
    def emit_cmd(
        plan_path: Path = typer.Argument(..., metavar="PLAN.json"),
        target: list[str] = typer.Option(..., help="vllm | k8s | dynamo | llm-d; several "
                                         "(repeat or comma-separate) write --out/<target>/ "
                                         "each."),
        out: out_dir("Directory for the emitted files (one target), or for one folder per "
                     "target (several).") = ...,
        check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 with a "
                                   "diff when the files under --out differ."),
        model_path: str = typer.Option(None, help="Weights to serve (default: the model's "
                                       "Hugging Face id from the catalog)."),
        served_model_name: str = typer.Option(None, help="Model name clients request "
                                              "(default: the plan's model)."),
        kv_connector: str = typer.Option("nixl", help="nixl | mooncake | lmcache"),
    ) -> None:
        """Emit runnable configs for a plan: vLLM commands, Kubernetes, Dynamo, llm-d."""
        from hetplan.cli.options import check_out_dir
        from hetplan.emit import check_target
        from hetplan.plan import load_plan, plan_errors

        targets = list(dict.fromkeys(t.strip() for x in target for t in x.split(",")
                                     if t.strip()))
        if not targets:
            raise InputError("names no target", field="--target")
        for t in targets:               # every target checked before anything is written
            check_target(t)
        dirs = {targets[0]: out} if len(targets) == 1 else {t: out / t for t in targets}
        for d in dirs.values():
            check_out_dir(d)
        plan = load_plan(plan_path)
        opts = emit_options(model_path, served_model_name, kv_connector)
        with plan_errors(plan_path):
            codes = [emit_to(plan, t, d, opts, check) for t, d in dirs.items()]
        raise typer.Exit(max(codes))
