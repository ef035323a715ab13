"""Map a function over independent cases (sweep points, schedule slots) on local processes
or a Ray cluster, results in case order.

`Parallel(workers, backend)` is what the sweeps take (library default `INLINE`) and the
CLI's `--workers` and `--backend` build (default: `default_workers()` local processes).
Assumptions:
- `fn` and every case pickle (a module-level function and plain data), and `fn` is
  deterministic: each solve runs single-threaded (`milp.backends`), so a sweep gives the
  same results, in the same order, whatever the worker count or backend.
- `workers=1`, or a single case, runs inline in this process (no pickling, no start-up).
- Local processes start by `forkserver` where the platform has it (one clean server
  process that imports hetplan once and forks each worker from it; forking this process
  itself could inherit a solver's threads mid-use), `spawn` elsewhere.
- `backend="ray"` needs the `hetplan[ray]` extra. It joins the cluster of `RAY_ADDRESS`
  when that is set, else the one `ray.init` already joined, else starts a local instance;
  at most `workers` cases run at once.
- A case that raises makes the whole map raise the error of the first such case (in case
  order), after every case has finished.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hetplan.errors import InputError

BACKENDS = ("local", "ray")
MAX_DEFAULT_WORKERS = 8          # the default never asks for more processes than this
MAX_WORKERS = 1024               # a larger --workers is a typo
# what the forkserver imports once for all its workers: the sweeps' stages
PRELOAD = ("hetplan.planner", "hetplan.schedule.plan", "hetplan.compare", "hetplan.whatif")


def default_workers() -> int:
    """The machine's cores, capped at MAX_DEFAULT_WORKERS (each worker holds a solver)."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def check_workers(n: int) -> int:
    if not 1 <= n <= MAX_WORKERS:
        raise InputError(f"must be in [1, {MAX_WORKERS}], not {n}", field="--workers")
    return n


def check_backend(b: str) -> str:
    if b not in BACKENDS:
        raise InputError(f"must be one of {', '.join(BACKENDS)}, not {b!r}", field="--backend")
    return b


@dataclass(frozen=True)
class Parallel:
    """How a sweep runs its cases: `workers` at once on `backend`."""

    workers: int = 1
    backend: str = "local"

    def __post_init__(self) -> None:
        check_workers(self.workers)
        check_backend(self.backend)

    def map(self, fn: Callable[[Any], Any], cases: Sequence[Any], *,
            progress: Callable[[str], None] | None = None, label: str = "") -> list[Any]:
        """[fn(c) for c in cases], computed in parallel; `progress` (called here, in this
        process) gets "label done/total" as cases finish."""
        cases = list(cases)
        say = _counter(progress, label, len(cases))
        if self.backend == "ray":
            return _ray_map(fn, cases, self.workers, say)
        if self.workers == 1 or len(cases) <= 1:
            out = []
            for c in cases:
                out.append(fn(c))
                say()
            return out
        with cf.ProcessPoolExecutor(max_workers=min(self.workers, len(cases)),
                                    mp_context=_context(_modules(fn, cases))) as ex:
            futures = [ex.submit(fn, c) for c in cases]
            for _ in cf.as_completed(futures):
                say()
            return [f.result() for f in futures]

    def calls(self, jobs: Sequence[tuple[Callable, tuple, dict]], *,
              progress: Callable[[str], None] | None = None, label: str = "") -> list[Any]:
        """[fn(*args, **kwargs) for fn, args, kwargs in jobs], as `map` computes it."""
        return self.map(call, jobs, progress=progress, label=label)


INLINE = Parallel()              # one case after another, in this process


def call(job: tuple[Callable, tuple, dict]) -> Any:
    """fn(*args, **kwargs) for a job (fn, args, kwargs): what `Parallel.calls` maps."""
    fn, args, kwargs = job
    return fn(*args, **kwargs)


def _counter(progress: Callable[[str], None] | None, label: str, total: int
             ) -> Callable[[], None]:
    done = 0

    def say() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(f"{label} {done}/{total}".strip())

    return say


def _modules(fn: Callable, cases: list) -> list[str]:
    """The modules of the functions a map runs (`call` jobs name theirs)."""
    fns = [c[0] for c in cases] if fn is call else [fn]
    names = {getattr(f, "__module__", None) for f in fns}
    return sorted(n for n in names if n and n != "__main__")


def _context(modules: list[str]) -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # imported once in the server, not in every worker (no effect once it runs)
        ctx.set_forkserver_preload([*PRELOAD, *modules])
        return ctx
    return mp.get_context("spawn")


def _ray_map(fn: Callable, cases: list, workers: int, say: Callable[[], None]) -> list:
    try:
        import ray
    except ImportError:
        raise InputError("the ray backend needs Ray: pip install 'hetplan[ray]'",
                         field="--backend") from None
    if not ray.is_initialized():
        ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    task = ray.remote(num_cpus=1)(fn)
    refs: list = [None] * len(cases)
    pending: list = []
    nxt = 0
    while nxt < len(cases) or pending:
        while nxt < len(cases) and len(pending) < workers:
            refs[nxt] = task.remote(cases[nxt])
            pending.append(refs[nxt])
            nxt += 1
        ready, pending = ray.wait(pending, num_returns=1)
        for _ in ready:
            say()
    out, first_error = [], None
    for r in refs:
        try:
            out.append(ray.get(r))
        except ray.exceptions.RayTaskError as e:
            first_error = first_error or getattr(e, "cause", None) or e
            out.append(None)
    if first_error is not None:
        raise first_error
    return out
