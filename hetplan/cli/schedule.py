"""CLI: `hetplan schedule SCENARIO` (capacity over time: a committed baseline plus
per-slot on-demand and spot capacity, compared with static plans and a lower bound)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hetplan.cli.options import Backend, Solver, TimeLimit, Workers, as_json, out_dir, parallel_of

SCHEDULE_FILES = ("schedule.json", "schedule.md")


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        typer.echo(f"\r{msg}\033[K", err=True, nl=False)


def register(app: typer.Typer, echo_json) -> None:
    @app.command("schedule")
    def schedule_cmd(
        scenario: Path = typer.Argument(..., help="Scenario YAML (see "
                                        "workloads/schedule/diurnal.yaml)."),
        out: out_dir("Directory for schedule.json and schedule.md.") = None,
        solver: Solver = "highs",
        time_limit: TimeLimit = 60.0,
        as_json: as_json("Print the costs and the committed mix as JSON.") = False,
        workers: Workers = None, backend: Backend = "local",
    ) -> None:
        """Plan capacity over the scenario's horizon: committed + on-demand + spot per slot."""
        from hetplan.catalog import load_catalog
        from hetplan.io import dumps_json, output_folder, write_atomic
        from hetplan.scenario import load_scenario
        from hetplan.schedule.plan import plan_schedule
        from hetplan.schedule.report import schedule_report

        cat = load_catalog()
        rs = load_scenario(scenario, cat)
        result = plan_schedule(rs, cat, solver=solver, time_limit_s=time_limit,
                               progress=_progress, parallel=parallel_of(workers, backend))
        _progress("")
        if out is not None:
            with output_folder(out, owns=lambda p: p.name in SCHEDULE_FILES) as tmp:
                write_atomic(tmp / "schedule.json", dumps_json(result.to_dict()))
                write_atomic(tmp / "schedule.md", schedule_report(result))
        if as_json:
            echo_json(result.summary())
            return
        typer.echo(schedule_report(result).split("## Committed mix")[0].rstrip())
        if out is not None:
            typer.echo(f"\nwrote {out / 'schedule.json'} and {out / 'schedule.md'}")
