"""CLI: `hetplan simulate` (replay a trace on a plan)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hetplan.bounds import MAX_DURATION_S, MAX_SYNTHETIC_REQUESTS
from hetplan.cli.options import Seed, as_json, out_dir
from hetplan.errors import InputError


def _progress(frac: float) -> None:
    if sys.stderr.isatty():
        typer.echo(f"\rsimulating: {frac:.0%} of arrivals\033[K", err=True, nl=False)


def load_sim_inputs(plan, trace: Path | None, scenario: Path | None,
                    duration: float | None, requests: int | None):
    """(trace, PerfModel, scenario or None) for simulating `plan`."""
    from hetplan.catalog import load_catalog
    from hetplan.model import load_model
    from hetplan.perf import PerfModel
    from hetplan.scenario import load_scenario
    from hetplan.simulate.workload import find_scenario, scenario_trace, trace_file

    cat = load_catalog()
    path = find_scenario(plan.scenario, trace, scenario)
    s = load_scenario(path, cat) if path is not None else None
    if s is not None:
        spec = s.model
        if spec.name != plan.model:
            raise InputError(f"the plan is for {plan.model}, the scenario for {spec.name}",
                             file=path, field="model")
    else:
        spec = load_model(plan.model)
    if trace is not None:
        if duration is not None:
            raise InputError("--duration applies to a synthetic workload, not a trace file",
                             field="--duration")
        tr = trace_file(trace, requests)
    else:
        tr = scenario_trace(s, requests=requests, duration_s=duration)
    return tr, PerfModel(spec, cat), s


SIM_FILES = ("sim.json", "latency_cdf.png")     # what write_sim_outputs writes


def write_sim_outputs(out: Path, report, res) -> list[Path]:
    """sim.json and latency_cdf.png into the folder `out` (a temporary one while a command
    assembles its outputs); returns their paths."""
    from hetplan.io import write_atomic, write_bytes_atomic
    from hetplan.plots import cdf_png

    paths = [out / name for name in SIM_FILES]
    write_atomic(paths[0], report.to_json())
    write_bytes_atomic(paths[1], cdf_png(res, report.slo))
    return paths


def save_sim_outputs(out: Path, report, res) -> list[Path]:
    """`simulate --out`: both files replace the previous pair together; the rest of the
    folder (the plan.json beside them) stays."""
    from hetplan.io import output_folder

    with output_folder(out, owns=lambda p: p.name in SIM_FILES) as tmp:
        written = write_sim_outputs(tmp, report, res)
    return [out / p.name for p in written]


def register(app: typer.Typer, echo_json) -> None:
    @app.command("simulate")
    def simulate_cmd(
        plan_path: Path = typer.Argument(..., metavar="PLAN.json",
                                         help="A plan written by `hetplan solve --out`, or a "
                                              "schedule.json (`hetplan schedule --out`): its "
                                              "horizon is replayed slot by slot."),
        trace: Path = typer.Option(None, help="CSV trace (arrival_s,input_tokens,"
                                              "output_tokens) to replay."),
        scenario: Path = typer.Option(None, help="Scenario whose workload to replay (default: "
                                                 "workloads/<plan's scenario>.yaml)."),
        duration: float = typer.Option(None, help="Re-generate a synthetic workload for this "
                                                  "many seconds."),
        requests: int = typer.Option(None, help="Replay at most (synthetic: exactly) this "
                                                "many requests."),
        seed: Seed = 0,
        kv_link: str = typer.Option(None, help="KV fabric (default: the plan's)."),
        sample_s: float = typer.Option(None, "--sample-s",
                                       help="schedule.json: seconds simulated per slot "
                                            "(default 120; the slot's length replays it all)."),
        baselines: bool = typer.Option(True, help="schedule.json: also replay the static peak "
                                                  "plan and the reactive autoscaler."),
        out: out_dir("Directory for sim.json and latency_cdf.png (a schedule: "
                     "horizon_sim.json).") = None,
        as_json: as_json("Print the results as JSON.") = False,
    ) -> None:
        """Replay a trace on a plan: latency percentiles, SLO attainment, utilization."""
        from hetplan.plan import load_plan, plan_errors
        from hetplan.schedule.simulate import is_schedule_file
        from hetplan.simulate import SimOptions, report_text, simulate_plan

        if is_schedule_file(plan_path):
            _simulate_schedule(plan_path, scenario, seed, sample_s, baselines, out, as_json,
                               echo_json, trace=trace, duration=duration, requests=requests,
                               kv_link=kv_link)
            return
        if sample_s is not None:
            raise InputError("--sample-s applies to a schedule.json", field="--sample-s")

        if duration is not None and not 0 < duration <= MAX_DURATION_S:
            raise InputError(f"must be > 0 and <= {MAX_DURATION_S:g} s", field="--duration")
        if requests is not None and not 1 <= requests <= MAX_SYNTHETIC_REQUESTS:
            raise InputError(f"must be in [1, {MAX_SYNTHETIC_REQUESTS:,}]", field="--requests")
        if kv_link is not None:
            from hetplan.catalog import unknown_name_message
            from hetplan.perf.links import load_links
            links = load_links().links
            if kv_link not in links:
                raise InputError(unknown_name_message("link", kv_link, links),
                                 field="--kv-link")
        plan = load_plan(plan_path)
        tr, pm, _ = load_sim_inputs(plan, trace, scenario, duration, requests)
        with plan_errors(plan_path):
            report, res = simulate_plan(plan, tr, pm, SimOptions(seed=seed, kv_link=kv_link),
                                        progress=_progress)
        if sys.stderr.isatty():
            typer.echo("\r\033[K", err=True, nl=False)
        written = save_sim_outputs(out, report, res) if out else []
        if as_json:
            echo_json(report.summary())
            return
        typer.echo(report_text(report))
        if written:
            typer.echo("wrote " + " and ".join(str(p) for p in written))


def _simulate_schedule(path: Path, scenario: Path | None, seed: int, sample_s: float | None,
                       baselines: bool, out: Path | None, as_json: bool, echo_json,
                       **plan_only) -> None:
    """`hetplan simulate schedule.json`: attainment per slot over the horizon."""
    from hetplan.io import dumps_json, output_folder, write_atomic
    from hetplan.schedule.simulate import (DEFAULT_SAMPLE_S, horizon_text,
                                           simulate_schedule_file)

    for name, value in plan_only.items():
        if value is not None:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} applies to a plan; a schedule replays its scenario's "
                             "horizon (see --sample-s)", field=flag)
    results = simulate_schedule_file(path, scenario, seed,
                                     DEFAULT_SAMPLE_S if sample_s is None else sample_s,
                                     baselines)
    summary = {k: r.summary() for k, r in results.items()}
    if out is not None:
        with output_folder(out, owns=lambda p: p.name == "horizon_sim.json") as tmp:
            write_atomic(tmp / "horizon_sim.json", dumps_json(summary))
    if as_json:
        echo_json(summary)
        return
    typer.echo(horizon_text(results))
    if out is not None:
        typer.echo(f"wrote {out / 'horizon_sim.json'}")
