"""The committed deploy/ configs match a fresh solve + emit of every scenario in workloads/
(scripts/regenerate_configs.sh, which the CI workflow runs too), and the script catches drift."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "regenerate_configs.sh"


def run_script(*args: str, env_extra: dict[str, str] | None = None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


SCENARIOS = sorted((ROOT / "workloads").glob("*.yaml"))
# The drift test below regenerates this scenario (the cheapest shipped one to validate: the
# tuner passes it in one round) and compares the result with deploy/, so it also proves this
# scenario's committed configs fresh; the check-mode run here would repeat its solve.
DRIFT = "splitwise-conversation"


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.stem != DRIFT],
                         ids=[s.stem for s in SCENARIOS if s.stem != DRIFT])
def test_committed_deploy_configs_are_fresh(scenario):
    """One scenario per test, so pytest-xdist spreads the solve --validate runs (the tuner
    simulates up to 16 plans each) over the workers."""
    r = run_script(env_extra={"HETPLAN_SCENARIOS": str(scenario.relative_to(ROOT))})
    assert r.returncode == 0, f"deploy/ is stale:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert "up to date for" in r.stderr


def test_deploy_holds_exactly_the_scenarios():
    """What the per-scenario checks cannot see: a committed folder with no scenario."""
    committed = {p.name for p in (ROOT / "deploy").iterdir() if p.is_dir()}
    assert committed == {s.stem for s in SCENARIOS}
    assert (ROOT / "workloads" / f"{DRIFT}.yaml") in SCENARIOS


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_script_reports_drift_with_a_diff_and_write_restores_the_committed_configs(tmp_path):
    """Check mode on a tampered copy of deploy/DRIFT fails with the diff; --write then
    regenerates exactly the committed files (so deploy/DRIFT is fresh, too)."""
    deploy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy" / DRIFT, deploy / DRIFT)
    router = deploy / DRIFT / "vllm" / "router.sh"
    router.write_text(router.read_text().replace("--port 30000", "--port 30001"))
    (deploy / DRIFT / "k8s" / "router.yaml").unlink()
    (deploy / DRIFT / "vllm" / "stray.sh").write_text("echo left over\n")
    env = {"HETPLAN_DEPLOY_DIR": str(deploy), "HETPLAN_SCENARIOS": f"workloads/{DRIFT}.yaml"}
    r = run_script(env_extra=env)
    assert r.returncode == 1, r.stderr
    assert "-  --port 30001" in r.stdout and "+  --port 30000" in r.stdout
    assert "router.yaml" in r.stdout and "stray.sh" in r.stdout
    assert "stale" in r.stderr

    w = run_script("--write", env_extra=env)
    assert w.returncode == 0, w.stderr
    fresh, committed = _tree(deploy / DRIFT), _tree(ROOT / "deploy" / DRIFT)
    assert sorted(fresh) == sorted(committed), "deploy/ is stale: files differ"
    stale = [name for name in committed if fresh[name] != committed[name]]
    assert not stale, f"deploy/{DRIFT} is stale: {stale}"
