"""Options shared by several commands, declared once: `--json`, `--out`, `--solver`,
`--time-limit`, `--seed`, `--workers`, `--backend`, and the `Typer` apps' common settings.

Use them as annotations with the command's own default, e.g.
`as_json: AsJson = False`, `out: OutDir = None`, `time_limit: TimeLimit = 60.0`.
Each option checks its value when parsed, so a bad value fails before any work or write.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from hetplan.bounds import MAX_SEED
from hetplan.errors import InputError
from hetplan.parallel import (BACKENDS, MAX_DEFAULT_WORKERS, Parallel, check_backend,
                              check_workers, default_workers)

MAX_TIME_LIMIT_S = 7 * 86_400.0     # a solver time limit beyond a week is a typo


def new_app(**kwargs) -> typer.Typer:
    """A Typer app with hetplan's settings: plain help (typer's rich help prints `<bool>`
    after every flag as if it took a value; click's plain help shows flags as flags) and no
    pretty tracebacks (the entry point prints one line per error)."""
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False,
                       add_completion=False, **kwargs)


def check_out_dir(out: Path | None, param: typer.CallbackParam = None) -> Path | None:
    """An output directory: absent (created on write) or a directory, never a file, and no
    file where one of its parents should be. `param`: the option (typer passes it), whose
    name the error gives."""
    if out is None:
        return out
    flag = param.opts[0] if param is not None and param.opts else "--out"
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise InputError("exists and is not a directory" if p == out else
                                 f"{p} is a file, not a directory", file=out, field=flag)
            break
    return out


def check_out_file(out: Path | None) -> Path | None:
    """An output file: not an existing directory, and no file where a parent should be."""
    if out is not None and out.is_dir():
        raise InputError("is a directory; give a file name", file=out, field="--out")
    if out is not None:
        check_out_dir(out.parent)
    return out


def check_seconds(v: float, field: str) -> float:
    """A time limit or budget option: > 0 and at most MAX_TIME_LIMIT_S."""
    if not (math.isfinite(v) and 0 < v <= MAX_TIME_LIMIT_S):
        raise InputError(f"must be > 0 and <= {MAX_TIME_LIMIT_S:g} s, not {v:g}", field=field)
    return v


def _time_limit(v: float) -> float:
    return check_seconds(v, "--time-limit")


def _solver(v: str) -> str:
    from hetplan.milp.backends import SOLVERS
    if v not in SOLVERS:
        raise InputError(f"unknown solver {v!r}; expected one of {', '.join(SOLVERS)}",
                         field="--solver")
    return v


def _seed(v: int | None) -> int | None:
    if v is not None and not 0 <= v <= MAX_SEED:
        raise InputError(f"must be in [0, 2**63), not {v}", field="--seed")
    return v


def as_json(help: str = "Print JSON instead of text."):
    return Annotated[bool, typer.Option("--json", help=help)]


def out_dir(help: str = "Output directory (created if missing)."):
    """`--out DIR`, refused up front when DIR is an existing file."""
    return Annotated[Path, typer.Option("--out", callback=check_out_dir, help=help)]


AsJson = as_json()
OutDir = out_dir()
Solver = Annotated[str, typer.Option("--solver", callback=_solver,
                                     help="MILP solver: highs | cbc | ortools.")]
TimeLimit = Annotated[float, typer.Option("--time-limit", callback=_time_limit,
                                          help="Solver time limit, seconds.")]
Seed = Annotated[int, typer.Option("--seed", callback=_seed,
                                   help="Random seed (0 <= seed < 2**63).")]


def _workers(v: int | None) -> int | None:
    return v if v is None else check_workers(v)


Workers = Annotated[int | None, typer.Option(
    "--workers", callback=_workers,
    help="Independent cases (sweep points, schedule slots) solved at once (default: the "
         f"machine's cores, at most {MAX_DEFAULT_WORKERS}; 1: one after another in this "
         "process). Results do not depend on it.")]
Backend = Annotated[str, typer.Option(
    "--backend", callback=check_backend,
    help=f"Where the cases run: {' | '.join(BACKENDS)} (local processes, or a Ray cluster: "
         "RAY_ADDRESS, else a local Ray instance; needs the hetplan[ray] extra).")]


def parallel_of(workers: int | None, backend: str) -> Parallel:
    """The `Parallel` that `--workers` and `--backend` ask for."""
    return Parallel(default_workers() if workers is None else workers, backend)
