"""The `hetplan` command line: parses arguments, calls the library, prints.

Bad input ends with one line on stderr (`error: FILE: FIELD: what is wrong`) and exit 2.
"""

from __future__ import annotations

import json
import sys

import typer

from hetplan.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Plan heterogeneous, disaggregated LLM serving.")


def echo_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


from hetplan.cli import emit, inspect, perf, plan, sim, workload  # noqa: E402,I001

for _group in (inspect, emit, perf, plan, sim, workload):
    _group.register(app, echo_json)


def main() -> None:
    """Console entry point: one-line errors with exit code 2 for bad input."""
    try:
        app()
    except InputError as e:
        typer.echo(f"error: {e.one_line()}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
