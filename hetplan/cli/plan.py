"""CLI: `hetplan solve`, `hetplan compare`, `hetplan frontier`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hetplan.bounds import VALIDATE_ROUNDS
from hetplan.cli.options import (AsJson, Backend, Solver, TimeLimit, Workers, as_json,
                                 check_out_dir, out_dir, parallel_of)
from hetplan.errors import InputError


PLOT_FRONTIER_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)   # `solve --plots`: SLO multipliers
MAX_FRONTIER_POINTS = 50                             # `frontier --factors`: one solve each


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        typer.echo(f"\r{msg}\033[K", err=True, nl=False)


SOLVE_FILES = ("plan.json", "report.md")


def frontier_rows(s, cat, solver: str, time_limit: float) -> list[dict]:
    """The SLO frontier `solve --plots` draws."""
    from hetplan.compare import frontier
    rows = frontier(s, cat, "slo", PLOT_FRONTIER_FACTORS, solver=solver,
                    time_limit_s=min(time_limit, 30.0), progress=_progress)
    _progress("")
    return rows


def _write_solve_outputs(out: Path, plan, report: str, val, emit: str | None,
                         rows_for_plots) -> list[Path]:
    """plan.json, report.md, and (per option) sim.json + latency_cdf.png, the plots and the
    emitted `<target>/` folder, written into a temporary folder and swapped into `out` as a
    whole: a failure (a refused --emit) leaves the previous outputs as they were, and a
    file of an earlier solve that this one does not write (sim.json after a run without
    --validate) is removed. Other entries of `out`, and emit folders of other targets,
    stay. Returns the extra paths written (beside plan.json and report.md)."""
    from hetplan.cli.sim import SIM_FILES, write_sim_outputs
    from hetplan.io import output_folder, write_atomic
    from hetplan.plots import PLAN_PLOTS

    owned = set(SOLVE_FILES) | set(SIM_FILES) | set(PLAN_PLOTS) | ({emit} if emit else set())
    written: list[Path] = []
    with output_folder(out, owns=lambda p: p.name in owned) as tmp:
        write_atomic(tmp / "plan.json", plan.to_json())
        if emit:
            from hetplan.cli.emit import emit_options
            from hetplan.emit import emit as emit_files
            from hetplan.emit import write_into
            write_into(tmp / emit, emit_files(plan, emit, emit_options(None, None, "nixl")))
        write_atomic(tmp / "report.md", report)
        if val:
            written += write_sim_outputs(tmp, val.report, val.result)
        if rows_for_plots:
            from hetplan.plots import write_plan_plots
            written += write_plan_plots(tmp, plan, rows_for_plots())
    return [out / p.relative_to(tmp) for p in written]


def register(app: typer.Typer, echo_json) -> None:
    @app.command("solve")
    def solve_cmd(
        scenario: Path = typer.Argument(..., help="Scenario YAML (see workloads/default.yaml)."),
        out: out_dir("Directory for plan.json and report.md.") = None,
        solver: Solver = "highs",
        time_limit: TimeLimit = 60.0,
        as_json: as_json("Print the plan summary as JSON.") = False,
        validate: bool = typer.Option(False, "--validate", help="Simulate the plan on the "
                                      "scenario's workload and tune it: add replicas to the "
                                      "pools that miss, remove them where there is slack, "
                                      "re-solve with the learnt capacities; keep the cheapest "
                                      "plan that passes. Fleet files: each member's plan is "
                                      "simulated on its own workload and a member that "
                                      "misses gets replicas added within the fleet's "
                                      "shared GPUs and budget (no re-solve)."),
        max_rounds: int = typer.Option(VALIDATE_ROUNDS, min=1, max=100,
                                       help="Most simulated plans (--validate)."),
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
                                 "dynamo | llm-d) under --out/<target>."),
    ) -> None:
        """Plan the cheapest mix (or most goodput under a budget) that meets the SLO."""
        from hetplan.catalog import load_catalog
        from hetplan.errors import Infeasible
        from hetplan.planner import plan_scenario
        from hetplan.report import plan_report
        from hetplan.scenario import load_scenario

        from hetplan.fleet.spec import is_fleet_file
        if is_fleet_file(scenario):
            from hetplan.cli.fleet import solve_fleet
            if emit:
                from hetplan.emit import check_target
                check_target(emit, field="--emit")
                if not out:
                    raise InputError("--emit needs --out", field="--emit")
            return solve_fleet(scenario, out, solver, time_limit, emit, as_json, echo_json,
                               _progress, {"--failed": bool(failed),
                                           "--previous": previous is not None,
                                           "--plots": plots}, validate=validate,
                               max_rounds=max_rounds)
        # every argument is checked before solving, and nothing is written before the plan
        if plots and out is None:
            raise InputError("--plots needs --out DIR", field="--plots")
        if emit and not out:
            raise InputError("--emit needs --out", field="--emit")
        if emit:
            from hetplan.emit import check_target
            check_target(emit, field="--emit")
            check_out_dir(out / emit)
        cat = load_catalog()
        rs = load_scenario(scenario, cat)
        val = None

        def show_round(r) -> None:       # a result line; stderr keeps --json output clean
            _progress("")
            typer.echo(r.line(), err=as_json)

        failed_ids = sorted({f.strip() for x in failed or [] for f in x.split(",") if f.strip()})
        if failed and not failed_ids:
            raise InputError("names no node", field="--failed")
        if previous and not failed_ids:
            raise InputError("--previous goes with --failed", field="--previous")
        if validate and failed_ids:
            raise InputError("--validate and --failed do not combine; simulate the re-plan "
                             "with `hetplan simulate`", field="--validate")
        try:
            if failed_ids:
                from hetplan.plan import load_plan
                from hetplan.replan import replan
                plan = replan(rs, cat, failed_ids, load_plan(previous) if previous else None,
                              solver=solver, time_limit_s=time_limit, progress=_progress)
            elif validate:
                from hetplan.simulate.repair import solve_validated
                plan, val = solve_validated(rs, cat, solver=solver, time_limit_s=time_limit,
                                            max_rounds=max_rounds, progress=_progress,
                                            on_round=show_round)
            else:
                plan = plan_scenario(rs, cat, solver=solver, time_limit_s=time_limit,
                                     progress=_progress)
                from hetplan.bursts import NOTE_PREFIX
                for note in plan.notes:
                    if note.startswith(NOTE_PREFIX):
                        typer.echo(f"warning: {note}", err=True)
            if not plan.pools:          # max_goodput: the budget buys no useful replica
                budget = rs.scenario.constraints.budget_usd_per_hour
                raise Infeasible([f"constraints.budget_usd_per_hour: ${budget:g}/h buys no "
                                  "replica that serves a class within the SLO"])
        except Infeasible:
            _progress("")               # the entry point prints the reasons on one line
            raise
        _progress("")
        report = plan_report(plan) + (val.markdown() if val else "")
        written: list[Path] = []
        if out:
            written = _write_solve_outputs(out, plan, report, val, emit, plots and (
                lambda: frontier_rows(rs, cat, solver, time_limit)))
        if as_json:
            echo_json(plan.summary() | ({"validation": val.summary()} if val else {}))
            return
        moved = plan.placement.moved_replicas if plan.placement else None
        typer.echo(report if not out else
                   f"{plan.status}: ${plan.cost_usd_per_hour:.2f}/h, "
                   f"${plan.usd_per_million_tokens:.3f} per M tokens, P:D {plan.golden_ratio}"
                   + (f", {moved} replica(s) moved" if moved is not None else "")
                   + (f"; tuned: {val.gap_line()}, SLO {'met' if val.slo_met else 'NOT met'}"
                      if val else "")
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

        from hetplan.fleet.spec import is_fleet_file
        if is_fleet_file(scenario):
            from hetplan.cli.fleet import compare_fleet
            return compare_fleet(scenario, solver, time_limit, as_json, echo_json, _progress)
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
        workers: Workers = None, backend: Backend = "local",
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
                        time_limit_s=time_limit, progress=_progress,
                        parallel=parallel_of(workers, backend))
        _progress("")
        typer.echo(frontier_outputs(rows, vary, out))
        typer.echo(f"wrote {out / 'frontier.csv'} and {out / 'frontier.png'}")
