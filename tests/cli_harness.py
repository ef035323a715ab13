"""Run the `hetplan` CLI in-process (or as a subprocess) under a memory and time guard, and
snapshot folders, for the hostile-input and fuzz tests.

`run_main` calls `hetplan.cli.main()` the way the console script does (sys.argv patched,
stdout/stderr captured). An exception escaping `main()` (anything but SystemExit) is what a
user would see as a traceback; it is returned in `Run.exc`, never raised. The guard turns
a runaway allocation into MemoryError (address-space limit) and a hang into `TimedOut`, so
a hostile input that is not yet refused fails its test instead of the machine.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUARD_EXTRA_BYTES = 6 << 30          # address space allowed on top of what is mapped now
OK_CODES = (0, 2, 3)                 # success, bad input, infeasible
PLAN_FIXTURE = REPO / "tests" / "data" / "emit_plan.json"

# A scenario that solves in well under a second: 8B model, two GPU types, fixed lengths.
TINY_SCENARIO = {
    "name": "tiny", "model": "llama-3.1-8b",
    "workload": {"synthetic": {"arrival": {"process": "poisson", "rate_rps": 5.0},
                               "input_tokens": {"dist": "fixed", "value": 256},
                               "output_tokens": {"dist": "fixed", "value": 128},
                               "duration_s": 60, "seed": 0}},
    "slo": {"ttft_ms": 1000, "tpot_ms": 50, "percentile": 90},
    "catalog": {"gpus": ["L40S", "H100-SXM"], "prices": "2026-04-17-seed"},
    "constraints": {"max_tp": 2, "target_utilization": 0.8},
    "objective": "min_cost",
}


class TimedOut(Exception):
    """The command ran past its time budget (raised by SIGALRM inside the command)."""


@dataclass
class Run:
    code: int | None          # exit status; None when an exception escaped main()
    out: str
    err: str
    exc: BaseException | None
    seconds: float
    tb: str = ""              # formatted traceback of `exc`

    @property
    def err_lines(self) -> list[str]:
        """stderr lines that are not progress output (carriage-return redraws)."""
        return [ln for ln in self.err.replace("\r", "\n").splitlines()
                if ln.strip() and "\033[K" not in ln]

    def describe(self) -> str:
        return (f"exit {self.code}, {self.seconds:.1f} s, exception "
                f"{type(self.exc).__name__ if self.exc else None}\n--- stderr:\n"
                f"{self.err[-3000:]}\n--- stdout:\n{self.out[-1500:]}\n{self.tb[-3000:]}")


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


@contextmanager
def guard(budget_s: float):
    """Limit address space growth and wall time of the enclosed in-process call."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_bytes() + GUARD_EXTRA_BYTES
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)

    def on_alarm(signum, frame):
        raise TimedOut(f"still running after {budget_s:g} s")

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.setitimer(signal.ITIMER_REAL, budget_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_main(*args, budget_s: float = 30.0) -> Run:
    """`hetplan ARGS...` in this process via `hetplan.cli.main`."""
    from hetplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["hetplan", *map(str, args)]
    code, exc, tb = None, None, ""
    t0 = time.monotonic()
    try:
        with redirect_stdout(out), redirect_stderr(err), guard(budget_s):
            main()
        code = 0
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:                                    # sys.exit("message"): printed, status 1
            code = 1
            err.write(f"{e.code}\n")
    except BaseException as e:                   # noqa: BLE001 - what a user sees as a traceback
        if isinstance(e, KeyboardInterrupt):
            raise
        exc = e
        tb = "".join(traceback.format_exception(e))
        e.__traceback__ = None                   # free the frames (and any big arrays)
    finally:
        sys.argv = old_argv
    return Run(code, out.getvalue(), err.getvalue(), exc, time.monotonic() - t0, tb)


def _limit_child():
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.RLIM_INFINITY))


def run_cli(*args, timeout_s: float = 60.0, env: dict | None = None, cwd=REPO) -> Run:
    """`python -m hetplan.cli ARGS...` as a subprocess of the worktree's interpreter."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "hetplan.cli", *map(str, args)],
                           capture_output=True, text=True, timeout=timeout_s, cwd=cwd,
                           env={**os.environ, **(env or {})}, preexec_fn=_limit_child)
    except subprocess.TimeoutExpired as e:
        return Run(None, (e.stdout or b"").decode(errors="replace") if isinstance(
            e.stdout, bytes) else (e.stdout or ""), str(e.stderr or ""),
            TimedOut(f"still running after {timeout_s:g} s"), time.monotonic() - t0)
    exc = None
    if "Traceback (most recent call last)" in r.stderr:
        exc = RuntimeError("traceback on stderr")
    return Run(r.returncode, r.stdout, r.stderr, exc, time.monotonic() - t0)


def assert_finite_json(text: str, what: str = "JSON output") -> None:
    """`text` parses as strict JSON: no NaN or Infinity."""
    def bad(token):
        raise AssertionError(f"{what}: non-finite {token} in JSON")
    json.loads(text, parse_constant=bad)


def snapshot(root: Path) -> dict[str, bytes | None] | None:
    """{relative path: bytes (None for a folder)} of everything under `root`; None when
    `root` does not exist; a plain file maps '' to its bytes."""
    root = Path(root)
    if not root.exists():
        return None
    if root.is_file():
        return {"": root.read_bytes()}
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def temp_files(snap: dict | None) -> list[str]:
    """Names in a snapshot that look like leftovers of an interrupted atomic write."""
    return [k for k in (snap or {}) if Path(k).name.endswith((".tmp", "~"))
            or Path(k).name.startswith(".")]
