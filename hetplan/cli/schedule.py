"""CLI: `hetplan schedule SCENARIO` (capacity over time: a committed baseline plus
per-slot on-demand and spot capacity, compared with static plans and a lower bound)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hetplan.cli.options import (Backend, Solver, TimeLimit, Workers, as_json, check_seconds,
                                 out_dir, parallel_of)

SCHEDULE_FILES = ("schedule.json", "schedule.md", "schedule.png")
EMIT_DIR = "emit"


def _budget(v: float | None) -> float | None:
    return v if v is None else check_seconds(v, "--budget")


def check_emit(target: str, out: Path | None, timezone: str | None) -> str:
    """Refuse a bad --emit before solving (unknown target, no --out, unknown time zone);
    the time zone to use."""
    from hetplan.emit import check_target
    from hetplan.emit.scaling import DEFAULT_TIMEZONE, check_timezone
    from hetplan.errors import InputError
    check_target(target, field="--emit")
    if out is None:
        raise InputError("--emit writes under OUT/emit/; give --out", field="--out")
    return check_timezone(timezone or DEFAULT_TIMEZONE)


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        typer.echo(f"\r{msg}\033[K", err=True, nl=False)


def register(app: typer.Typer, echo_json) -> None:
    @app.command("schedule")
    def schedule_cmd(
        scenario: Path = typer.Argument(..., help="Scenario YAML (see "
                                        "workloads/schedule/diurnal.yaml)."),
        out: out_dir("Directory for schedule.json, schedule.md and schedule.png.") = None,
        solver: Solver = "highs",
        time_limit: TimeLimit = 60.0,
        as_json: as_json("Print the costs and the committed mix as JSON.") = False,
        emit_target: str = typer.Option(None, "--emit", help="Also write configs under "
                                        "OUT/emit/: the committed baseline for this target "
                                        "(vllm | k8s | dynamo | llm-d) and, for k8s and "
                                        "dynamo, the scaling objects (see README)."),
        timezone: str = typer.Option(None, help="IANA time zone in which slot 0 starts "
                                     "at 00:00 (--emit's cron triggers; default Etc/UTC)."),
        workers: Workers = None, backend: Backend = "local",
        budget: float = typer.Option(None, "--budget", callback=_budget, help="Wall-clock "
                                     "seconds for the whole solve: the schedule MILP stops "
                                     "in time for it (reporting its status and gap) if "
                                     "--time-limit does not stop it first."),
    ) -> None:
        """Plan capacity over the scenario's horizon: committed + on-demand + spot per slot."""
        from hetplan.catalog import load_catalog
        from hetplan.io import dumps_json, output_folder, write_atomic, write_bytes_atomic
        from hetplan.scenario import load_scenario
        from hetplan.schedule.plan import plan_schedule
        from hetplan.schedule.plot import schedule_png
        from hetplan.schedule.report import schedule_report
        from hetplan.schedule.slots import schedule_json

        if emit_target is not None:
            timezone = check_emit(emit_target, out, timezone)
        cat = load_catalog()
        rs = load_scenario(scenario, cat)
        result = plan_schedule(rs, cat, solver=solver, time_limit_s=time_limit,
                               progress=_progress, parallel=parallel_of(workers, backend),
                               budget_s=budget)
        _progress("")
        emitted, refused = None, None
        if emit_target is not None:
            from hetplan.emit.schedule import schedule_files
            from hetplan.errors import InputError
            try:
                emitted = schedule_files(result, emit_target, timezone=timezone)
            except InputError as e:       # the schedule is still written, then the error
                refused = e
        if out is not None:
            with output_folder(out, owns=lambda p: p.name in SCHEDULE_FILES + (EMIT_DIR,)) \
                    as tmp:
                write_atomic(tmp / "schedule.json", dumps_json(schedule_json(result)))
                write_atomic(tmp / "schedule.md", schedule_report(result))
                write_bytes_atomic(tmp / "schedule.png", schedule_png(result))
                if emitted is not None:
                    from hetplan.emit import write_into
                    write_into(tmp / EMIT_DIR, emitted)
        if refused is not None:
            raise refused
        if as_json:
            echo_json(result.summary())
            return
        typer.echo(schedule_report(result).split("## Committed mix")[0].rstrip())
        if out is not None:
            typer.echo("\nwrote " + ", ".join(str(out / f) for f in SCHEDULE_FILES))
