"""Shared fixtures: small catalogs and configs written into tmp dirs per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture
def write(tmp_path: Path):
    """write('name.yaml', text) -> path of a file under the test's tmp dir."""
    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return p
    return _write


# How `pytest -n 2` (pyproject: --dist loadgroup --no-loadscope-reorder) spreads the suite.
# The longest tests start first, longest first, so the two workers even out on the many short
# tests after them instead of one worker finishing alone with a long one (CPU-s measured on
# one core, before the simulator speedups, in the comments). A prefix matches the end of a node id.
SLOW_FIRST = (
    "test_deploy_configs.py::test_committed_deploy_configs_are_fresh[mooncake]",   # ~88
    "test_notebooks.py::test_notebook_runs",                 # 40-65 each
    "test_emit_vllm.py::",                                   # ~34 (vLLM import ~20)
    "test_deploy_configs.py::",                              # 20-40 each (solve --validate)
    "test_solve_e2e.py::",                                   # 66 in all, up to 19
    "test_fuzz.py::",                                        # 31, up to 15
)
# Modules whose module-scoped fixtures cost seconds (solves, fits): each runs on one worker,
# so the fixture is built once, not once per worker that gets some of its tests.
ONE_WORKER = (      # longest first (wall s of each module under load, ~4.7x CI's, measured)
    "test_placement_cli.py", "test_plots.py", "test_emit_schemas.py",    # ~190, 180, 150
    "test_whatif.py", "test_published_perf.py", "test_emit_safety.py",   # ~105, 95, 60
    "test_slo_capacity.py", "test_emit.py", "test_simulate.py", "test_moe_ep.py",
    "test_prefix.py", "test_hardening_more.py", "test_modern_perf.py", "test_emit_llmd.py",
)


def _slow_rank(nodeid: str) -> int:
    """SLOW_FIRST's order, then the ONE_WORKER modules in their order (each a unit of many
    seconds that must not start last: test_whatif.py, last by name, ran alone at the end),
    then the rest, short tests that even out the workers' finish."""
    path, _, rest = nodeid.partition("::")        # a parameter id may hold a "/"
    module = path.rsplit("/", 1)[-1]
    tail = f"{module}::{rest}"
    rank = next((i for i, p in enumerate(SLOW_FIRST) if tail.startswith(p)), None)
    if rank is not None:
        return rank
    return len(SLOW_FIRST) + (ONE_WORKER.index(module) if module in ONE_WORKER
                              else len(ONE_WORKER))


@pytest.hookimpl(tryfirst=True)   # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        if module in ONE_WORKER:
            item.add_marker(pytest.mark.xdist_group(module))
    items.sort(key=lambda item: _slow_rank(item.nodeid))     # stable: collection order within
