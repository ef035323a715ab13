"""The `hetplan` command line: parses arguments, calls the library, prints.

Every failure ends with one line on stderr: bad input `error: FILE: FIELD: what is wrong`
(exit 2), no feasible plan `infeasible: ...` (exit 3), anything unexpected
`internal error: ...` (exit 70; `--debug` anywhere on the line prints the traceback).
"""

from __future__ import annotations

import json
import sys
import traceback

import typer

from hetplan.bounds import escape_control
from hetplan.cli.options import new_app

try:                                    # typer >= 0.20 ships its own copy of click
    from typer._click import exceptions as _click
except ImportError:                     # older typer runs on click itself
    from click import exceptions as _click
_NO_ARGS_IS_HELP = getattr(_click, "NoArgsIsHelpError", ())    # click < 8.2: a plain exit
from hetplan.errors import InputError

EXIT_INPUT, EXIT_INFEASIBLE, EXIT_INTERNAL = 2, 3, 70

app = new_app(help="Plan heterogeneous, disaggregated LLM serving.")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="On an internal error, print "
                                     "the traceback (accepted anywhere on the line).")) -> None:
    """Plan heterogeneous, disaggregated LLM serving."""


def echo_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False))


from hetplan.cli import emit, inspect, perf, plan, schedule, sim, workload  # noqa: E402,I001

for _group in (inspect, emit, perf, plan, schedule, sim, workload):
    _group.register(app, echo_json)


def _one_line(text: str) -> str:
    return escape_control(" ".join(str(text).split()))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and turns every exception into one line on stderr
    and an exit code (2 input, 3 infeasible, 70 internal error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    debug = "--debug" in args[:cut]
    args = [a for i, a in enumerate(args) if not (i < cut and a == "--debug")]
    try:
        code = app(args=args, prog_name="hetplan", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)     # typer.Exit(n) returns n here
    except SystemExit:
        raise
    except _NO_ARGS_IS_HELP as e:       # `hetplan calibrate` alone: the group's help
        e.show()
        sys.exit(e.exit_code)
    except _click.UsageError as e:      # a bad option value, a missing argument: one line
        where = e.ctx.command_path if e.ctx is not None else "hetplan"
        typer.echo(f"error: {where}: {_one_line(e.format_message())} (see --help)", err=True)
        sys.exit(EXIT_INPUT)
    except _click.ClickException as e:
        typer.echo(f"error: {_one_line(e.format_message())}", err=True)
        sys.exit(e.exit_code)
    except typer.Abort:                 # Ctrl-D at a prompt
        typer.echo("aborted", err=True)
        sys.exit(1)
    except InputError as e:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {_one_line(e.one_line())}", err=True)
        sys.exit(EXIT_INPUT)
    except BrokenPipeError:                 # `hetplan ... | head`: the reader left
        sys.stderr.close()
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 (the last guard: one line, not a traceback)
        from hetplan.planner import Infeasible
        if isinstance(e, Infeasible):
            typer.echo("infeasible: " + _one_line("; ".join(e.reasons) or str(e)), err=True)
            sys.exit(EXIT_INFEASIBLE)
        if debug:
            traceback.print_exc()
        typer.echo(f"internal error: {type(e).__name__}: {_one_line(e)[:300]} (a bug in "
                   "hetplan; rerun with --debug for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
