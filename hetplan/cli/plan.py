"""CLI: `hetplan solve`, `hetplan compare`, `hetplan frontier`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hetplan.cli.options import AsJson, Solver, TimeLimit, as_json, check_out_dir, out_dir
from hetplan.errors import InputError


PLOT_FRONTIER_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)   # `solve --plots`: SLO multipliers
MAX_FRONTIER_POINTS = 50                             # `frontier --factors`: one solve each


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        typer.echo(f"\r{msg}\033[K", err=True, nl=False)


def register(app: typer.Typer, echo_json) -> None:
    @app.command("solve")
    def solve_cmd(
        scenario: Path = typer.Argument(..., help="Scenario YAML (see workloads/default.yaml)."),
        out: out_dir("Directory for plan.json and report.md.") = None,
        solver: Solver = "highs",
        time_limit: TimeLimit = 60.0,
        as_json: as_json("Print the plan summary as JSON.") = False,
        validate: bool = typer.Option(False, "--validate", help="Simulate the plan on the "
                                      "scenario's workload; lower the target utilization and "
                                      "re-solve while the SLO is missed."),
        max_rounds: int = typer.Option(5, min=1, max=100,
                                       help="Most solve-and-simulate rounds (--validate)."),
        failed: list[str] = typer.Option(None, "--failed", help="Inventory node(s) lost "
                                         "(repeat or comma-separate): re-plan moving the "
                                         "fewest replicas."),
        previous: Path = typer.Option(None, "--previous", help="plan.json to re-plan from "
                                      "(--failed; default: the scenario's plan on its full "
                                      "inventory)."),
        plots: bool = typer.Option(False, "--plots", help="Also write cost_breakdown.png and "
                                   "slo_frontier.png (5 more solves at 0.5-2x the SLO) into "
                                   "--out; --validate adds latency_cdf.png."),
        emit: str = typer.Option(None, "--emit", help="Also emit configs (vllm | k8s | "
                                 "dynamo) under --out/<target>."),
    ) -> None:
        """Plan the cheapest mix (or most goodput under a budget) that meets the SLO."""
        from hetplan.catalog import load_catalog
        from hetplan.io import write_atomic
        from hetplan.planner import Infeasible, plan_scenario
        from hetplan.report import plan_report
        from hetplan.scenario import load_scenario

        from hetplan.emit import TARGETS

        # every argument is checked before solving, and nothing is written before the plan
        if plots and out is None:
            raise InputError("--plots needs --out DIR", field="--plots")
        if emit and not out:
            raise InputError("--emit needs --out", field="--emit")
        if emit and emit not in TARGETS:
            raise InputError(f"unknown target {emit!r}; expected one of {', '.join(TARGETS)}",
                             field="--emit")
        if emit:
            check_out_dir(out / emit)
        cat = load_catalog()
        s = load_scenario(scenario, cat)
        val = None

        def show_round(r) -> None:       # a result line; stderr keeps --json output clean
            _progress("")
            typer.echo(r.line(), err=as_json)

        failed_ids = sorted({f.strip() for x in failed or [] for f in x.split(",") if f.strip()})
        if previous and not failed_ids:
            raise InputError("--previous goes with --failed", field="--previous")
        if validate and failed_ids:
            raise InputError("--validate and --failed do not combine; simulate the re-plan "
                             "with `hetplan simulate`", field="--validate")
        try:
            if failed_ids:
                from hetplan.placement.replan import replan
                from hetplan.plan import load_plan
                plan = replan(s, cat, failed_ids, load_plan(previous) if previous else None,
                              solver=solver, time_limit_s=time_limit, progress=_progress)
            elif validate:
                from hetplan.simulate.repair import solve_validated
                plan, val = solve_validated(s, cat, solver=solver, time_limit_s=time_limit,
                                            max_rounds=max_rounds, progress=_progress,
                                            on_round=show_round)
            else:
                plan = plan_scenario(s, cat, solver=solver, time_limit_s=time_limit,
                                     progress=_progress)
        except Infeasible as e:
            _progress("")
            typer.echo("infeasible: no plan meets the scenario", err=True)
            for r in e.reasons:
                typer.echo(f"  - {r}", err=True)
            raise typer.Exit(3) from None
        _progress("")
        report = plan_report(plan) + (val.markdown() if val else "")
        written: list[Path] = []
        if out:
            write_atomic(out / "plan.json", plan.to_json())
            if emit:
                from hetplan.cli.emit import emit_options, emit_to
                emit_to(plan, emit, out / emit, emit_options(None, None, "nixl"), False)
            write_atomic(out / "report.md", report)
            if val:
                from hetplan.cli.sim import write_sim_outputs
                written += write_sim_outputs(out, val.report, val.result)
            if plots:
                from hetplan.compare import frontier
                from hetplan.plots import write_plan_plots
                rows = frontier(s, cat, "slo", PLOT_FRONTIER_FACTORS, solver=solver,
                                time_limit_s=min(time_limit, 30.0), progress=_progress)
                _progress("")
                written += write_plan_plots(out, plan, rows)
        if as_json:
            echo_json(plan.summary() | ({"validation": val.summary()} if val else {}))
            return
        moved = plan.placement.moved_replicas if plan.placement else None
        typer.echo(report if not out else
                   f"{plan.status}: ${plan.cost_usd_per_hour:.2f}/h, "
                   f"${plan.usd_per_million_tokens:.3f} per M tokens, P:D {plan.golden_ratio}"
                   + (f", {moved} replica(s) moved" if moved is not None else "")
                   + f"; wrote {out / 'plan.json'} and {out / 'report.md'}"
                   + "".join(f", {p}" for p in written))

    @app.command("compare")
    def compare_cmd(
        scenario: Path = typer.Argument(..., help="Scenario YAML."),
        solver: Solver = "highs", time_limit: TimeLimit = 60.0, as_json: AsJson = False,
    ) -> None:
        """Homogeneous vs heterogeneous, colocated vs disaggregated, side by side."""
        from hetplan.catalog import load_catalog
        from hetplan.compare import compare, compare_table
        from hetplan.scenario import load_scenario

        cat = load_catalog()
        rows = compare(load_scenario(scenario, cat), cat, solver=solver,
                       time_limit_s=time_limit, progress=_progress)
        _progress("")
        if as_json:
            echo_json(rows)
        else:
            typer.echo(compare_table(rows))

    @app.command("frontier")
    def frontier_cmd(
        scenario: Path = typer.Argument(..., help="Scenario YAML."),
        vary: str = typer.Option("slo", help="slo (TTFT and TPOT together) | ttft | tpot | "
                                             "budget"),
        factors: str = typer.Option("0.5,0.75,1,1.5,2,3",
                                    help="Multipliers of the scenario's SLO or budget."),
        out: out_dir("Directory for frontier.csv and frontier.png.") = Path("frontier"),
        solver: Solver = "highs", time_limit: TimeLimit = 30.0,
    ) -> None:
        """Cost vs SLO (or goodput vs budget) Pareto sweep: a table and a PNG."""
        from hetplan.catalog import load_catalog
        from hetplan.compare import frontier, frontier_outputs
        from hetplan.scenario import load_scenario

        try:
            fs = [float(x) for x in factors.split(",") if x.strip()]
        except ValueError:
            raise InputError("expected comma-separated numbers", field="--factors") from None
        if vary not in ("slo", "ttft", "tpot", "budget"):
            raise InputError(f"must be slo, ttft, tpot or budget, not {vary!r}", field="--vary")
        if not fs or len(fs) > MAX_FRONTIER_POINTS or not all(0 < f <= 1e3 for f in fs):
            raise InputError(f"expected 1 to {MAX_FRONTIER_POINTS} factors in (0, 1000]",
                             field="--factors")
        cat = load_catalog()
        rows = frontier(load_scenario(scenario, cat), cat, vary, fs, solver=solver,
                        time_limit_s=time_limit, progress=_progress)
        _progress("")
        typer.echo(frontier_outputs(rows, vary, out))
        typer.echo(f"wrote {out / 'frontier.csv'} and {out / 'frontier.png'}")
